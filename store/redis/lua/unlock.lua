-- unlock: a supervisor breaks the thread's lock.
--
-- KEYS[1]  the thread
-- ARGV[2]  thread id
-- ARGV[3]  actor
-- Returns  {"ok", now, thread} | {"not_found"}

expire_due(EXPIRE_LIMIT)
local t = load_live(ARGV[2])
if t == nil then return not_found('thread', ARGV[2]) end
if t.lock_agent then
  local before = copy(t)
  local holder = t.lock_agent
  end_lock(t)
  event(t, 'thread.unlocked', ARGV[3], {'agent_id', holder, 'status', t.status})
  save_thread(before, t)
end
return ok(NOW, flat(t))
