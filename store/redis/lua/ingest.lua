-- ingest: store inbound messages, each atomically with its dedupe on
-- (network, external_id) and the routing result inbox computed (see
-- store.IngestParams). Items are applied in order; each gets its own result,
-- and an item refused (conflict, unknown team) changes nothing.
--
-- KEYS[1]      meta hash (thread and event sequences)
-- KEYS[2]      message key index (network \0 external id -> message id)
-- KEYS[3]      thread key index (network \0 profile \0 thread external id -> thread id)
-- ARGV[2]      number of items n
-- ARGV[3+3i]   item i: JSON {network, external_id, profile, thread_external_id,
--              new_thread_id, thread_version, kind, author (JSON text),
--              message_id, tags[], route: {team, ruled_team, add_tags[],
--              priority, close, rules[], offer_to, offer_ttl_us},
--              config_version (null: not checked)}
-- ARGV[4+3i]   item i: the message JSON, without thread_id and received_at
-- ARGV[5+3i]   item i: the lock token for the route's offer
-- Returns      {"ok", now, item_1 ... item_n}, each item
--              {"ok", created "0"|"1", duplicate "0"|"1", message hash, thread}
--              or {code, message}; stale_config when the meta hash's
--              config_version is not the item's config_version.

local config_version -- read once per call, when an item asks for it

local function ingest_one(p, mjson, token)
  if p.config_version ~= nil and p.config_version ~= cjson.null then
    config_version = config_version or tonumber(redis.call('HGET', KEYS[1], 'config_version') or '0')
    local v = config_version
    if v ~= tonumber(p.config_version) then
      return fail('stale_config', 'configuration version ' .. istr(v) .. ', decided on ' .. istr(tonumber(p.config_version)))
    end
  end
  local route = p.route
  local mkey = p.network .. '\0' .. p.external_id
  local old = redis.call('HGET', K.messagekey(), mkey)
  if old then
    local t = load_live(redis.call('HGET', K.message(old), 'thread'))
    if t == nil then return fail('not_found', 'thread of message ' .. old) end
    return {'ok', '0', '1', redis.call('HGETALL', K.message(old)), flat(t)}
  end
  if not p.deleted and redis.call('HEXISTS', K.tombstones(), mkey) == 1 then
    return fail('deleted_before', 'message ' .. p.external_id .. ' on ' .. p.network)
  end

  local tkey = p.network .. '\0' .. p.profile .. '\0' .. p.thread_external_id
  local tid = redis.call('HGET', K.threadkey(), tkey)
  local version = tonumber(p.thread_version) or 0
  local t, before
  if tid then
    t = load_live(tid)
    if t == nil then return fail('conflict', 'thread ' .. tid .. ' gone') end
    if t.version ~= version then
      return fail('conflict', 'thread ' .. tid .. ' version ' .. istr(t.version) .. ', decided on ' .. istr(version))
    end
    before = copy(t)
  else
    if version ~= 0 then return fail('conflict', 'thread gone') end
    local team = team_conf(route.team)
    if team == nil then return fail('unknown_team', 'team ' .. tostring(route.team)) end
    -- A new thread takes the routed priority (normal when none); for a
    -- follow-up it is only a floor, applied below.
    local prio = 'normal'
    if rank(route.priority) >= 0 then prio = route.priority end
    t = {id = p.new_thread_id, network = p.network, profile = p.profile, external_id = p.thread_external_id,
      kind = p.kind, author = p.author, status = 'queued', team = team.id, priority = prio, tags = {},
      ws = NOW, created = NOW, sla_breached = false, version = 0, max_fence = 0}
    local sla = tonumber(team.sla_first_response_seconds) or 0
    if sla > 0 then t.sla_due = NOW + sla * 1000000 end
    t.seq = redis.call('HINCRBY', K.meta(), 'thread_seq', 1)
    redis.call('HSET', K.threadkey(), tkey, t.id)
    redis.call('ZADD', K.threadseq(), t.seq, t.id)
  end

  local mid = p.message_id
  local mhash = {'json', jappend(mjson, {'thread_id', t.id, 'received_at', T(NOW)}), 'thread', t.id, 'dir', 'inbound'}
  redis.call('HSET', K.message(mid), unpack(mhash))
  redis.call('HSET', K.messagekey(), mkey, mid)
  redis.call('RPUSH', K.threadmsgs(t.id), mid)
  if before ~= nil and t.status == 'assigned' and answered(t) then
    -- Answered, and held: the customer waits from this message on, which
    -- is where the thread takes its place if it is released.
    t.ws = NOW
  end
  t.last_in = NOW
  if t.last_out ~= nil and t.last_out >= NOW then
    -- A reply of this same script run (one clock reading) or a clock that
    -- stepped back: this message still came after the reply.
    t.last_in = t.last_out + 1
  end

  local msgdata = {'message_id', mid, 'kind', p.kind, 'network', p.network}
  if before == nil then
    event(t, 'thread.created', 'system', {'network', t.network, 'profile', t.profile, 'external_id', t.external_id})
    event(t, 'message.received', 'system', msgdata)
    event(t, 'thread.routed', 'system', {'team', t.team, 'ruled_team', route.ruled_team or '',
      'rules', list(route.rules), 'priority', t.priority})
  else
    event(t, 'message.received', 'system', msgdata)
  end
  local tags = {}
  for _, x in ipairs(list(p.tags)) do tags[#tags + 1] = x end
  for _, x in ipairs(list(route.add_tags)) do tags[#tags + 1] = x end
  add_tags(t, tags, {}, 'system')
  raise_priority(t, route.priority, 'system')

  if before == nil and route.close == true then
    t.status = 'closed'
    event(t, 'thread.closed', 'system', {'reason', 'rule', 'rules', list(route.rules)})
  elseif before ~= nil and (t.status == 'pending' or t.status == 'closed') then
    local from = t.status
    t.status = 'queued'
    t.ws = NOW
    t.auto_close = nil
    -- Never answered (closed by a rule or a supervisor): the first-response
    -- deadline counts from now, not from when it ran while closed.
    if t.frt == nil and not t.sla_breached then
      local team = team_conf(t.team)
      local sla = team and tonumber(team.sla_first_response_seconds) or 0
      t.sla_due = nil -- a team without an SLA (or deleted) sets none
      if sla > 0 then t.sla_due = NOW + sla * 1000000 end
    end
    event(t, 'thread.reopened', 'system', {'from', from})
  end
  if route.offer_to ~= nil and route.offer_to ~= '' and in_queue(t) then
    -- The offer is best effort: a full or vanished agent leaves it queued.
    if offer(t, route.offer_to, tonumber(route.offer_ttl_us), token) == nil then
      event(t, 'thread.offered', 'system', {'to_agent', route.offer_to, 'fence', t.lock_fence,
        'expires_at', T(t.lock_exp)})
    end
  end
  local ft = save_thread(before, t)
  local created = '0'
  if before == nil then created = '1' end
  return {'ok', created, '0', mhash, ft}
end

expire_due(EXPIRE_LIMIT)
local out = {'ok', NOW}
for i = 0, tonumber(ARGV[2]) - 1 do
  out[#out + 1] = ingest_one(cjson.decode(ARGV[3 + 3 * i]), ARGV[4 + 3 * i], ARGV[5 + 3 * i])
end
return out
