-- release: end the lock the token names; the thread becomes pending if it
-- has a reply newer than its last inbound message, else queued again.
--
-- KEYS[1]  the thread
-- ARGV[2]  thread id
-- ARGV[3]  lock token
-- ARGV[4]  actor
-- ARGV[5]  "1" when the caller must hold the lock itself and see the
--          thread (store.LockParams.Holder), else ""
-- ARGV[6]  with ARGV[5]: the caller's teams as a JSON array, or "" for all
-- ARGV[7]  with ARGV[5]: the caller's networks as a JSON array ([] = all)
-- Returns  {"ok", now, thread} | {"not_found"} | {"lock_lost"}

expire_due(EXPIRE_LIMIT)
local t = load_step(ARGV[2])
if t == nil then return not_found('thread', ARGV[2]) end
local holder = ARGV[5] == '1'
if holder and not sees(t, ARGV[6], ARGV[7]) then return not_found('thread', ARGV[2]) end
local err = check_token(t, ARGV[3], false)
if err then return err end
if holder then
  err = check_holder(t, ARGV[4])
  if err then return err end
end
local before = copy(t)
local was = t.lock_agent
end_lock(t)
event(t, 'thread.released', ARGV[4], {'agent_id', was, 'status', t.status})
return ok(NOW, save_thread(before, t))
