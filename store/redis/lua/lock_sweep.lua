-- lock_sweep: expire leases that have run out, oldest first, recording
-- lock.expired once for each (a lease another node expired first is no
-- longer in the index).
--
-- KEYS[1]  the lease index (sorted set: thread id scored by expiry)
-- ARGV[2]  most leases to expire in this run
-- Returns  {"ok", expired, more "0"|"1"}

local n, more = expire_due(tonumber(ARGV[2]))
return ok(n, more and '1' or '0')
