-- release: end the lock the token names; the thread becomes pending if it
-- has a reply newer than its last inbound message, else queued again.
--
-- KEYS[1]  the thread
-- ARGV[2]  thread id
-- ARGV[3]  lock token
-- ARGV[4]  actor
-- Returns  {"ok", now, thread} | {"not_found"} | {"lock_lost"}

expire_due(EXPIRE_LIMIT)
local t = load_live(ARGV[2])
if t == nil then return not_found('thread', ARGV[2]) end
local err = check_token(t, ARGV[3], false)
if err then return err end
local before = copy(t)
local holder = t.lock_agent
end_lock(t)
event(t, 'thread.released', ARGV[4], {'agent_id', holder, 'status', t.status})
return ok(NOW, save_thread(before, t))
