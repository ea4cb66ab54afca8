-- agent_set_status: set an agent's status (online, away, offline).
--
-- KEYS[1]  the agent
-- ARGV[2]  agent id
-- ARGV[3]  status
-- Returns  {"ok", now, agent hash, open locks} | {"not_found"}

expire_due(EXPIRE_LIMIT)
local id = ARGV[2]
local key = K.agent(id)
local cur = redis.call('HMGET', key, 'status', 'idle_away')
if not cur[1] then return not_found('agent', id) end
if cur[1] ~= ARGV[3] or cur[2] then
  -- The agent's own choice: an away stays until they change it.
  redis.call('HSET', key, 'status', ARGV[3], 'status_at', istr(NOW))
  redis.call('HDEL', key, 'idle_away')
  bump_config()
end
return ok(NOW, redis.call('HGETALL', key), live_locks(id, ''))
