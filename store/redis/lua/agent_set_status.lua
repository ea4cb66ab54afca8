-- agent_set_status: set an agent's status (online, away, offline).
--
-- KEYS[1]  the agent
-- ARGV[2]  agent id
-- ARGV[3]  status
-- Returns  {"ok", now, agent hash, open locks} | {"not_found"}

expire_due(EXPIRE_LIMIT)
local id = ARGV[2]
local key = K.agent(id)
local cur = redis.call('HGET', key, 'status')
if not cur then return not_found('agent', id) end
if cur ~= ARGV[3] then
  redis.call('HSET', key, 'status', ARGV[3], 'status_at', istr(NOW))
  bump_config()
end
return ok(NOW, redis.call('HGETALL', key), live_locks(id, ''))
