-- renew: extend the lease of the lock the token names.
--
-- KEYS[1]  the thread
-- ARGV[2]  thread id
-- ARGV[3]  lock token
-- ARGV[4]  lease in microseconds, from now
-- Returns  {"ok", now, thread, grant} | {"not_found"} | {"lock_lost"}

expire_due(EXPIRE_LIMIT)
local t = load_live(ARGV[2])
if t == nil then return not_found('thread', ARGV[2]) end
local err = check_token(t, ARGV[3], false)
if err then return err end
local before = copy(t)
t.lock_exp = NOW + tonumber(ARGV[4])
return ok(NOW, save_thread(before, t), grant_of(t))
