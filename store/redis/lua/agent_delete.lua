-- agent_delete: release the agent's locks, revoke its keys, delete it.
--
-- KEYS[1]  the agent
-- ARGV[2]  agent id
-- ARGV[3]  actor
-- Returns  {"ok"} | {"not_found"}

expire_due(EXPIRE_LIMIT)
local id = ARGV[2]
if redis.call('EXISTS', K.agent(id)) == 0 then return not_found('agent', id) end
end_agent_locks(id, ARGV[3], 'agent_deleted', nil)
for _, kid in ipairs(redis.call('SMEMBERS', K.agentkeys(id))) do delete_key(kid) end
redis.call('DEL', K.agent(id), K.agentlocks(id), K.agentkeys(id))
redis.call('SREM', K.agents(), id)
-- Its reply counts (older days' go in the daily sweep, see ThreadTimerSweep).
redis.call('HDEL', K.counters(), c_replies(id, date(NOW)), c_replies(id, date(NOW - 86400000000)))
bump_config()
return ok()
