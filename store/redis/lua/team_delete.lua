-- team_delete: delete a team unless a rule, another team's fallback_team,
-- an agent, a saved reply or an open (queued, assigned or pending) thread
-- refers to it.
--
-- KEYS[1]  the team
-- ARGV[2]  team id
-- Returns  {"ok"} | {"not_found"} |
--          {"in_use", message, rules, fallbacks, agents, saved_replies, queued, assigned, pending}
--          (every user, as lists of ids; store.TeamUsers words them)

expire_due(EXPIRE_LIMIT)
local id = ARGV[2]
if redis.call('EXISTS', K.team(id)) == 0 then return not_found('team', id) end
local rules, fallbacks, agents, replies = {}, {}, {}, {}
for _, rid in ipairs(redis.call('SMEMBERS', K.rules())) do
  local j = redis.call('HGET', K.rule(rid), 'json')
  if j then
    local th = cjson.decode(j)['then']
    if type(th) == 'table' and th.team == id then rules[#rules + 1] = rid end
  end
end
for _, tid in ipairs(redis.call('SMEMBERS', K.teams())) do
  local c = team_conf(tid)
  if tid ~= id and c and c.fallback_team == id then fallbacks[#fallbacks + 1] = tid end
end
for _, aid in ipairs(redis.call('SMEMBERS', K.agents())) do
  local j = redis.call('HGET', K.agent(aid), 'json')
  if j and contains(list(cjson.decode(j).teams), id) then agents[#agents + 1] = aid end
end
for _, sid in ipairs(redis.call('SMEMBERS', K.savedreplies())) do
  local j = redis.call('HGET', K.savedreply(sid), 'json')
  if j and contains(list(cjson.decode(j).teams), id) then replies[#replies + 1] = sid end
end
-- Open threads would be stranded.
local open, any = {}, false
for i, st in ipairs({'queued', 'assigned', 'pending'}) do
  open[i] = tonumber(redis.call('HGET', K.counters(), c_status(id, st)) or '0')
  if open[i] > 0 then any = true end
end
if any or #rules + #fallbacks + #agents + #replies > 0 then
  return fail('in_use', 'in use', rules, fallbacks, agents, replies, open[1], open[2], open[3])
end
redis.call('DEL', K.team(id), K.frt(id))
redis.call('SREM', K.teams(), id)
-- Its counts go too (a team made again with its id inherited them). The
-- count of closed threads stays while they do: retention erasing them
-- counts it down.
redis.call('HDEL', K.counters(), c_status(id, 'queued'), c_status(id, 'assigned'), c_status(id, 'pending'), c_breaches(id))
bump_config()
return ok()
