-- close: end the lock the token names (any lock with force) and close.
--
-- KEYS[1]  the thread
-- ARGV[2]  thread id
-- ARGV[3]  lock token
-- ARGV[4]  actor
-- ARGV[5]  "1" to skip the token check (supervisors)
-- ARGV[6]  "1" when the caller must hold the lock itself and see the
--          thread (store.LockParams.Holder; not with ARGV[5]), else ""
-- ARGV[7]  with ARGV[6]: the caller's teams as a JSON array, or "" for all
-- ARGV[8]  with ARGV[6]: the caller's networks as a JSON array ([] = all)
-- Returns  {"ok", now, thread} | {"not_found"} | {"lock_lost"}

expire_due(EXPIRE_LIMIT)
local t = load_step(ARGV[2])
if t == nil then return not_found('thread', ARGV[2]) end
local force = ARGV[5] == '1'
local holder = ARGV[6] == '1' and not force
if holder and not sees(t, ARGV[7], ARGV[8]) then return not_found('thread', ARGV[2]) end
local err = check_token(t, ARGV[3], force)
if err then return err end
if holder then
  err = check_holder(t, ARGV[4])
  if err then return err end
end
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
