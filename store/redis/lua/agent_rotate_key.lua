-- agent_rotate_key: revoke the agent's keys and store a new one.
--
-- KEYS[1]    the agent
-- ARGV[2]    agent id
-- ARGV[3..8] the key: id, role (ignored: the agent's as stored now, so a
--            demotion meanwhile leaves no supervisor's key), name, agent id,
--            hex SHA-256, created ("" = now)
-- Returns    {"ok"} | {"not_found"} | {"already_exists"}

expire_due(EXPIRE_LIMIT)
local id = ARGV[2]
local prof = redis.call('HGET', K.agent(id), 'json')
if not prof then return not_found('agent', id) end
local role = cjson.decode(prof).role
if not key_free(ARGV[3], ARGV[7]) then return fail('already_exists', 'key ' .. ARGV[3]) end
for _, kid in ipairs(redis.call('SMEMBERS', K.agentkeys(id))) do delete_key(kid) end
put_key(ARGV[3], role, ARGV[5], ARGV[6], ARGV[7], ARGV[8])
return ok()
