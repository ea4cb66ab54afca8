-- assign: offer the thread to an agent (a lock granted by the system),
-- ending any other lock on it; with only-if-queued (push assignment) only
-- while the thread is still queued and unlocked.
--
-- KEYS[1]  the thread
-- ARGV[2]  thread id
-- ARGV[3]  agent id
-- ARGV[4]  actor
-- ARGV[5]  lease in microseconds
-- ARGV[6]  "1" for only-if-queued
-- ARGV[7]  lock token
-- ARGV[8]  thread version the agent was chosen on (0 = any)
-- Returns  {"ok", now, thread, grant} | {"not_found"} | {"closed"} | {"conflict"} |
--          {"unknown_agent"} | {"capacity"}

expire_due(EXPIRE_LIMIT)
local t = load_live(ARGV[2])
if t == nil then return not_found('thread', ARGV[2]) end
if t.status == 'closed' then return fail('closed', 'thread ' .. t.id) end
local only = ARGV[6] == '1'
if only and not in_queue(t) then return fail('conflict', 'thread ' .. t.id .. ' is no longer queued') end
local version = tonumber(ARGV[8]) or 0
if version ~= 0 and version ~= t.version then return fail('conflict', 'thread ' .. t.id .. ' changed') end
-- An agent chosen on a record read before, which no longer works here, or
-- (push) is no longer online.
if agent_exists(ARGV[3]) and (not may_work(agent_scope(ARGV[3]), t)
    or only and redis.call('HGET', K.agent(ARGV[3]), 'status') ~= 'online') then
  return fail('conflict', 'agent ' .. ARGV[3] .. " no longer works thread " .. t.id .. "'s team or network, or is not online")
end
local before = copy(t)
local agent = ARGV[3]
local err = offer(t, agent, tonumber(ARGV[5]), ARGV[7])
if err then return err end
if not only then
  local data = {'to_agent', agent, 'fence', t.lock_fence}
  if before.lock_agent then data[5], data[6] = 'from_agent', before.lock_agent end
  event(t, 'thread.assigned', ARGV[4], data)
end
event(t, 'thread.offered', ARGV[4], {'to_agent', agent, 'fence', t.lock_fence, 'expires_at', T(t.lock_exp)})
return ok(NOW, save_thread(before, t), grant_of(t))
