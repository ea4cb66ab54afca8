-- team_put: create or replace a team.
--
-- KEYS[1]  the team
-- ARGV[2]  "create" or "update"
-- ARGV[3]  team id
-- ARGV[4]  team JSON, without created_at and updated_at
-- ARGV[5]  fallback team, or ""
-- Returns  {"ok", created, updated} | {"already_exists"} | {"not_found"} |
--          {"unknown_team"}

expire_due(EXPIRE_LIMIT)
local id, key = ARGV[3], K.team(ARGV[3])
local exists = redis.call('EXISTS', key) == 1
if ARGV[2] == 'create' and exists then return fail('already_exists', 'team ' .. id) end
if ARGV[2] == 'update' and not exists then return not_found('team', id) end
local fb = ARGV[5]
if fb ~= '' and fb ~= id and redis.call('EXISTS', K.team(fb)) == 0 then
  return fail('unknown_team', 'fallback_team ' .. fb)
end
local created = istr(NOW)
if exists then created = redis.call('HGET', key, 'created') end
redis.call('HSET', key, 'json', ARGV[4], 'created', created, 'updated', istr(NOW))
redis.call('SADD', K.teams(), id)
bump_config()
return ok(created, istr(NOW))
