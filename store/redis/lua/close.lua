-- close: end the lock the token names (any lock with force) and close.
--
-- KEYS[1]  the thread
-- ARGV[2]  thread id
-- ARGV[3]  lock token
-- ARGV[4]  actor
-- ARGV[5]  "1" to skip the token check (supervisors)
-- Returns  {"ok", now, thread} | {"not_found"} | {"lock_lost"}

expire_due(EXPIRE_LIMIT)
local t = load_live(ARGV[2])
if t == nil then return not_found('thread', ARGV[2]) end
local err = check_token(t, ARGV[3], ARGV[5] == '1')
if err then return err end
if t.status == 'closed' then return ok(NOW, flat(t)) end
local before = copy(t)
local data = {'from', t.status}
if t.lock_agent then
  data[3], data[4] = 'agent_id', t.lock_agent
end
clear_lock(t)
t.status, t.auto_close = 'closed', nil
event(t, 'thread.closed', ARGV[4], data)
return ok(NOW, save_thread(before, t))
