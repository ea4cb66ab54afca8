-- rule_put: create or replace a routing rule.
--
-- KEYS[1]  the rule
-- ARGV[2]  "create" or "update"
-- ARGV[3]  rule id
-- ARGV[4]  rule JSON, without created_at and updated_at
-- ARGV[5]  the rule's then.team, or ""
-- Returns  {"ok", created, updated} | {"already_exists"} | {"not_found"} |
--          {"unknown_team"}

expire_due(EXPIRE_LIMIT)
local id, key = ARGV[3], K.rule(ARGV[3])
local exists = redis.call('EXISTS', key) == 1
if ARGV[2] == 'create' and exists then return fail('already_exists', 'rule ' .. id) end
if ARGV[2] == 'update' and not exists then return not_found('rule', id) end
if ARGV[5] ~= '' and team_conf(ARGV[5]) == nil then return fail('unknown_team', 'team ' .. ARGV[5]) end
local created = istr(NOW)
if exists then created = redis.call('HGET', key, 'created') end
redis.call('HSET', key, 'json', ARGV[4], 'created', created, 'updated', istr(NOW))
redis.call('SADD', K.rules(), id)
bump_config()
return ok(created, istr(NOW))
