-- team_delete: delete a team unless a rule, another team's fallback_team,
-- an agent, a saved reply or an open (queued, assigned or pending) thread
-- refers to it.
--
-- KEYS[1]  the team
-- ARGV[2]  team id
-- Returns  {"ok"} | {"not_found"} | {"in_use", message, by}

expire_due(EXPIRE_LIMIT)
local id = ARGV[2]
if redis.call('EXISTS', K.team(id)) == 0 then return not_found('team', id) end
local function sorted(ids)
  table.sort(ids, lt)
  return ids
end
local function in_use(by) return fail('in_use', 'in use by ' .. by, by) end
for _, rid in ipairs(sorted(redis.call('SMEMBERS', K.rules()))) do
  local j = redis.call('HGET', K.rule(rid), 'json')
  if j then
    local r = cjson.decode(j)
    local th = r['then']
    if type(th) == 'table' and th.team == id then return in_use('rule ' .. rid) end
  end
end
for _, tid in ipairs(sorted(redis.call('SMEMBERS', K.teams()))) do
  local c = team_conf(tid)
  if tid ~= id and c and c.fallback_team == id then return in_use('team ' .. tid .. ' (fallback_team)') end
end
for _, aid in ipairs(sorted(redis.call('SMEMBERS', K.agents()))) do
  local j = redis.call('HGET', K.agent(aid), 'json')
  if j and contains(list(cjson.decode(j).teams), id) then return in_use('agent ' .. aid) end
end
for _, sid in ipairs(sorted(redis.call('SMEMBERS', K.savedreplies()))) do
  local j = redis.call('HGET', K.savedreply(sid), 'json')
  if j and contains(list(cjson.decode(j).teams), id) then return in_use('saved reply ' .. sid) end
end
-- Open threads would be stranded.
for _, st in ipairs({'queued', 'assigned', 'pending'}) do
  if tonumber(redis.call('HGET', K.counters(), c_status(id, st)) or '0') > 0 then
    return in_use(st .. ' threads')
  end
end
redis.call('DEL', K.team(id), K.frt(id))
redis.call('SREM', K.teams(), id)
-- Its counts go too (a team made again with its id inherited them). The
-- count of closed threads stays while they do: retention erasing them
-- counts it down.
redis.call('HDEL', K.counters(), c_status(id, 'queued'), c_status(id, 'assigned'), c_status(id, 'pending'), c_breaches(id))
bump_config()
return ok()
