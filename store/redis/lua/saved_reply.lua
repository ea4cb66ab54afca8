-- saved_reply: create, replace or delete a saved reply.
--
-- KEYS[1]  the saved reply
-- ARGV[2]  "create" | "update" | "delete"
-- ARGV[3]  saved reply id
-- ARGV[4]  JSON without created_at and updated_at (create, update)
-- ARGV[5]  teams, JSON array (create, update)
-- Returns  {"ok", created, updated} | {"ok"} (delete) | {"already_exists"} |
--          {"not_found"} | {"unknown_team"}

local op, id, key = ARGV[2], ARGV[3], K.savedreply(ARGV[3])
local exists = redis.call('EXISTS', key) == 1
if op == 'create' and exists then return fail('already_exists', 'saved reply ' .. id) end
if op ~= 'create' and not exists then return not_found('saved reply', id) end
if op == 'delete' then
  redis.call('DEL', key)
  redis.call('SREM', K.savedreplies(), id)
  return ok()
end
for _, team in ipairs(list(cjson.decode(ARGV[5]))) do
  if team_conf(team) == nil then return fail('unknown_team', 'team ' .. team) end
end
local created = istr(NOW)
if exists then created = redis.call('HGET', key, 'created') end
redis.call('HSET', key, 'json', ARGV[4], 'created', created, 'updated', istr(NOW))
redis.call('SADD', K.savedreplies(), id)
return ok(created, istr(NOW))
