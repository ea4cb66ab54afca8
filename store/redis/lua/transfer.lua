-- transfer: the holder (or a supervisor, with force) hands the thread to a
-- team (queued there) or an agent (offered to them, with a new lock).
--
-- KEYS[1]   the thread
-- ARGV[2]   thread id
-- ARGV[3]   lock token
-- ARGV[4]   "1" to skip the token check (supervisors)
-- ARGV[5]   actor
-- ARGV[6]   team, or ""
-- ARGV[7]   agent id, or ""
-- ARGV[8]   reason
-- ARGV[9]   priority floor, or ""
-- ARGV[10]  tags to add, JSON array
-- ARGV[11]  lease of the offer in microseconds
-- ARGV[12]  lock token for the offer
-- ARGV[13]  thread version the decision was made on (0 = any)
-- ARGV[14]  note JSON without thread_id and created_at, or ""
-- ARGV[15]  note id
-- ARGV[16]  "1" when a tag rule closes the thread once moved (no offer)
-- ARGV[17]  ids of the matching tag rules, JSON array
-- Returns   {"ok", now, thread, grant} | {"not_found"} | {"lock_lost"} | {"closed"} |
--           {"conflict"} | {"unknown_team"} | {"unknown_agent"} | {"capacity"}

expire_due(EXPIRE_LIMIT)
local t = load_step(ARGV[2])
if t == nil then return not_found('thread', ARGV[2]) end
local err = check_token(t, ARGV[3], ARGV[4] == '1')
if err then return err end
if t.status == 'closed' then return fail('closed', 'thread ' .. t.id) end
local version = tonumber(ARGV[13]) or 0
if version ~= 0 and version ~= t.version then return fail('conflict', 'thread ' .. t.id .. ' changed') end
local actor, team, agent = ARGV[5], ARGV[6], ARGV[7]
local close = ARGV[16] == '1'
if close then agent = '' end
if team ~= '' and team_conf(team) == nil then return fail('unknown_team', 'team ' .. team) end
if agent ~= '' then
  if not agent_exists(agent) then return fail('unknown_agent', 'agent ' .. agent) end
  err = check_capacity(agent, t.id)
  if err then return err end
  -- Where the thread goes, as the agent is now: one who left that team
  -- meanwhile would hold a lock on a thread it cannot see.
  local dest = {team = (team ~= '' and team) or t.team, network = t.network}
  if not may_work(agent_scope(agent), dest) then
    return fail('conflict', 'agent ' .. agent .. ' no longer works team ' .. dest.team .. ' or network ' .. t.network)
  end
end
local before = copy(t)
local data = {'from_team', t.team, 'reason', ARGV[8]}
local closed = {'from', t.status, 'reason', 'rule', 'rules', list(cjson.decode(ARGV[17]))}
if t.lock_agent then
  data[#data + 1], data[#data + 2] = 'from_agent', t.lock_agent
  closed[#closed + 1], closed[#closed + 2] = 'agent_id', t.lock_agent
elseif t.assignee then
  data[#data + 1], data[#data + 2] = 'from_agent', t.assignee
end
local moved = team ~= '' and team ~= t.team
if team ~= '' then t.team = team end
data[#data + 1], data[#data + 2] = 'to_team', t.team
if ARGV[14] ~= '' then put_note(t, ARGV[14], ARGV[15], actor) end
add_tags(t, cjson.decode(ARGV[10]), {}, actor)
raise_priority(t, ARGV[9], actor)
clear_lock(t)
if agent ~= '' then
  data[#data + 1], data[#data + 2] = 'to_agent', agent
  event(t, 'thread.transferred', actor, data)
  grant(t, agent, tonumber(ARGV[11]), ARGV[12])
  redis.call('HSET', K.agent(agent), 'last_offered', istr(offer_stamp()))
  event(t, 'thread.offered', actor, {'to_agent', agent, 'fence', t.lock_fence,
    'expires_at', T(t.lock_exp), 'reason', 'transfer'})
else
  t.status, t.assignee, t.auto_close = 'queued', nil, nil
  event(t, 'thread.transferred', actor, data)
end
if moved then moved_sla(t) end
if close then
  t.status, t.auto_close = 'closed', nil
  event(t, 'thread.closed', actor, closed)
end
return ok(NOW, save_thread(before, t), grant_of(t))
