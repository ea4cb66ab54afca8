-- agent_create: store an agent (status offline) with its first key.
--
-- KEYS[1]   the agent
-- ARGV[2]   agent id
-- ARGV[3]   agent JSON (profile: name, role, teams, networks, capacity,
--           timezone, shifts, time_off)
-- ARGV[4]   capacity
-- ARGV[5]   teams, JSON array
-- ARGV[6..11] the key: id, role, name, agent id, hex SHA-256, created ("" = now)
-- Returns   {"ok", now} | {"already_exists"} | {"unknown_team"}

expire_due(EXPIRE_LIMIT)
local id = ARGV[2]
if redis.call('EXISTS', K.agent(id)) == 1 then return fail('already_exists', 'agent ' .. id) end
for _, team in ipairs(list(cjson.decode(ARGV[5]))) do
  if team_conf(team) == nil then return fail('unknown_team', 'team ' .. team) end
end
if not key_free(ARGV[6], ARGV[10]) then return fail('already_exists', 'key ' .. ARGV[6]) end
local now = istr(NOW)
redis.call('HSET', K.agent(id), 'json', ARGV[3], 'capacity', ARGV[4], 'status', 'offline',
  'status_at', now, 'created', now, 'updated', now)
redis.call('SADD', K.agents(), id)
put_key(ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11])
bump_config()
return ok(NOW)
