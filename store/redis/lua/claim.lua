-- claim: lock one queued or pending thread for an agent.
--
-- KEYS[1]  the thread
-- ARGV[2]  thread id
-- ARGV[3]  agent id
-- ARGV[4]  lease in microseconds
-- ARGV[5]  lock token
-- ARGV[6]  the caller's teams as a JSON array, or "" for no restriction
-- ARGV[7]  the caller's networks as a JSON array ([] = all)
-- Returns  {"ok", now, thread, grant} | {"not_found"} | {"lock_held", msg,
--          agent, expires} | {"closed"} | {"capacity"}

expire_due(EXPIRE_LIMIT)
local t = load_step(ARGV[2])
if t == nil then return not_found('thread', ARGV[2]) end
if not sees(t, ARGV[6], ARGV[7]) then return not_found('thread', ARGV[2]) end
local agent = ARGV[3]
if t.lock_agent then
  -- A retried claim returns the lock the agent already holds.
  if t.lock_agent == agent then return ok(NOW, flat(t), grant_of(t)) end
  return fail('lock_held', 'thread ' .. t.id .. ' is locked', t.lock_agent, istr(t.lock_exp))
end
if t.status == 'closed' then return fail('closed', 'thread ' .. t.id) end
if not agent_exists(agent) then return not_found('agent', agent) end
local err = check_capacity(agent, '')
if err then return err end
if not may_work(agent_scope(agent), t) then return not_found('thread', ARGV[2]) end
local before = copy(t)
grant(t, agent, tonumber(ARGV[4]), ARGV[5])
event(t, 'thread.claimed', agent, {'agent_id', agent, 'fence', t.lock_fence,
  'expires_at', T(t.lock_exp), 'from', before.status})
return ok(NOW, save_thread(before, t), grant_of(t))
