-- tag: add and remove tags and apply what tag rules decided (a priority
-- floor, a team: the thread moves there and its lock ends).
--
-- KEYS[1]   the thread
-- ARGV[2]   thread id
-- ARGV[3]   lock token
-- ARGV[4]   "1" to skip the token check (supervisors)
-- ARGV[5]   actor
-- ARGV[6]   tags to add, JSON array
-- ARGV[7]   tags to remove, JSON array
-- ARGV[8]   priority floor, or ""
-- ARGV[9]   team, or ""
-- ARGV[10]  ids of the rules that decided, JSON array
-- ARGV[11]  thread version the rules were evaluated on (0 = any)
-- ARGV[12]  "1" when a tag rule closes the thread (after any move)
-- Returns   {"ok", now, thread, grant} | {"not_found"} | {"lock_lost"} |
--           {"conflict"} | {"unknown_team"}

expire_due(EXPIRE_LIMIT)
local t = load_step(ARGV[2])
if t == nil then return not_found('thread', ARGV[2]) end
local force = ARGV[4] == '1'
local err = check_token(t, ARGV[3], force)
if err then return err end
local version = tonumber(ARGV[11]) or 0
if version ~= 0 and version ~= t.version then return fail('conflict', 'thread ' .. t.id .. ' changed') end
local actor, team = ARGV[5], ARGV[9]
local move = team ~= '' and team ~= t.team
if move and team_conf(team) == nil then return fail('unknown_team', 'team ' .. team) end
local before = copy(t)
add_tags(t, cjson.decode(ARGV[6]), cjson.decode(ARGV[7]), actor)
raise_priority(t, ARGV[8], actor)
if move then
  local data = {'from_team', t.team, 'to_team', team, 'reason', 'rule', 'rules', list(cjson.decode(ARGV[10]))}
  if t.lock_agent then data[#data + 1], data[#data + 2] = 'from_agent', t.lock_agent end
  t.team = team
  clear_lock(t)
  t.assignee, t.auto_close = nil, nil
  if t.status ~= 'closed' then t.status = 'queued' end
  moved_sla(t)
  event(t, 'thread.transferred', actor, data)
end
if ARGV[12] == '1' and t.status ~= 'closed' then
  local data = {'from', t.status, 'reason', 'rule', 'rules', list(cjson.decode(ARGV[10]))}
  if t.lock_agent then data[#data + 1], data[#data + 2] = 'agent_id', t.lock_agent end
  clear_lock(t)
  t.status, t.auto_close = 'closed', nil
  event(t, 'thread.closed', actor, data)
end
save_thread(before, t)
local g = {}
if not force then g = grant_of(t) end
return ok(NOW, flat(t), g)
