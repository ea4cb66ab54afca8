-- tombstone: remember, for a while, that the customer deleted a message
-- Switchboard has not stored (yet): ingest refuses it meanwhile
-- (deleted_before), so that it is stored emptied.
--
-- KEYS[1]  the tombstones hash
-- ARGV[2]  network \0 external id
-- ARGV[3]  how long to remember it, in milliseconds
-- Returns  {"ok"} | {"ok", "came"} when the message is stored by now

if redis.call('HEXISTS', K.messagekey(), ARGV[2]) == 1 then return ok('came') end
remember_deletion(ARGV[2], tonumber(ARGV[3]))
return ok()
