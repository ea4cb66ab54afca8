-- agent_delete: release the agent's locks, revoke its keys, delete it.
--
-- KEYS[1]  the agent
-- ARGV[2]  agent id
-- ARGV[3]  actor
-- Returns  {"ok"} | {"not_found"}

expire_due(EXPIRE_LIMIT)
local id = ARGV[2]
if redis.call('EXISTS', K.agent(id)) == 0 then return not_found('agent', id) end
for _, tid in ipairs(redis.call('SMEMBERS', K.agentlocks(id))) do
  local t = load_live(tid)
  if t and t.lock_agent == id then
    local before = copy(t)
    end_lock(t)
    event(t, 'thread.released', ARGV[3], {'agent_id', id, 'status', t.status, 'reason', 'agent_deleted'})
    save_thread(before, t)
  end
end
for _, kid in ipairs(redis.call('SMEMBERS', K.agentkeys(id))) do delete_key(kid) end
redis.call('DEL', K.agent(id), K.agentlocks(id), K.agentkeys(id))
redis.call('SREM', K.agents(), id)
bump_config()
return ok()
