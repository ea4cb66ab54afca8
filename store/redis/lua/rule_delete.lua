-- rule_delete: delete a routing rule.
--
-- KEYS[1]  the rule
-- ARGV[2]  rule id
-- Returns  {"ok"} | {"not_found"}

expire_due(EXPIRE_LIMIT)
local id = ARGV[2]
if redis.call('EXISTS', K.rule(id)) == 0 then return not_found('rule', id) end
redis.call('DEL', K.rule(id))
redis.call('SREM', K.rules(), id)
bump_config()
return ok()
