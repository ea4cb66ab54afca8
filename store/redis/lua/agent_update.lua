-- agent_update: replace an agent's profile; status and presence are kept.
-- A new role is carried to the agent's keys. An agent's locks on threads
-- it may no longer work (teams or networks narrowed, a supervisor made an
-- agent) end.
--
-- KEYS[1]  the agent
-- ARGV[2]  agent id
-- ARGV[3]  agent JSON (profile)
-- ARGV[4]  capacity
-- ARGV[5]  teams, JSON array
-- ARGV[6]  role
-- Returns  {"ok", now, agent hash, open locks} | {"not_found"} | {"unknown_team"}

expire_due(EXPIRE_LIMIT)
local id = ARGV[2]
local key = K.agent(id)
local old = redis.call('HGET', key, 'json')
if not old then return not_found('agent', id) end
for _, team in ipairs(list(cjson.decode(ARGV[5]))) do
  if team_conf(team) == nil then return fail('unknown_team', 'team ' .. team) end
end
if cjson.decode(old).role ~= ARGV[6] then
  for _, kid in ipairs(redis.call('SMEMBERS', K.agentkeys(id))) do
    redis.call('HSET', K.key(kid), 'role', ARGV[6])
  end
end
redis.call('HSET', key, 'json', ARGV[3], 'capacity', ARGV[4], 'updated', istr(NOW))
if ARGV[6] == 'agent' then
  local teams, networks = list(cjson.decode(ARGV[5])), list(cjson.decode(ARGV[3]).networks)
  end_agent_locks(id, 'system', 'agent_updated', function(t) return visible(t, teams, networks) end)
end
bump_config()
return ok(NOW, redis.call('HGETALL', key), live_locks(id, ''))
