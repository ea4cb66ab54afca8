-- lib.lua: helpers shared by every script. scripts.go builds two forms
-- from it: one Redis function library (lib.lua once, then each script as
-- the body of a registered function: FUNCTION LOAD once, FCALL per step),
-- and for servers without functions (Redis < 7) one EVAL body per script,
-- this file's needed blocks followed by the script. Either way a script
-- starts with begin(KEYS, ARGV); nothing here runs Redis commands when it
-- is loaded.
--
-- Conventions for every script:
--   ARGV[1]  the deployment's key prefix "{tag}:"; every key a script
--            derives is built from it by the K.* functions below (they
--            mirror keys.go), so all keys share the hash tag of KEYS.
--   NOW      the Redis server's TIME in microseconds, read once per script:
--            the only clock of the store.
--   return   {"ok", ...} on success, {code, message, ...} on a refusal the
--            contract names (codes in errors.go). A refusal changes nothing.
--
-- Times are integer microseconds since the Unix epoch (exact in a Lua
-- double until the year 2255). Lua compares strings with strcoll, which
-- follows the server's locale, so byte order is done by hand (lt).

-- P is the key prefix, NOW the server clock, CALL counts calls (for
-- per-call caches); begin sets them at the start of every call.
local P, NOW, CALL = nil, nil, 0

-- begin checks ARGV[1] (the prefix) and that every key lies under it, and
-- reads the clock. It returns an error reply to return, or nil.
local function begin(keys, argv)
  P = argv[1]
  CALL = CALL + 1
  if type(P) ~= 'string' or string.sub(P, 1, 1) ~= '{' or string.sub(P, -2) ~= '}:' then
    return redis.error_reply('switchboard: ARGV[1] must be the key prefix {tag}:')
  end
  for i = 1, #keys do
    if string.sub(keys[i], 1, #P) ~= P then
      return redis.error_reply('switchboard: key outside the prefix: ' .. keys[i])
    end
  end
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000000 + tonumber(t[2])
  return nil
end

-- Keys (keep in step with keys.go; TestKeys_LuaMatchesGo checks).
local K = {}
function K.meta() return P .. 'meta' end
function K.counters() return P .. 'counters' end
function K.team(id) return P .. 'team:' .. id end
function K.teams() return P .. 'teams' end
function K.agent(id) return P .. 'agent:' .. id end
function K.agents() return P .. 'agents' end
function K.rule(id) return P .. 'rule:' .. id end
function K.rules() return P .. 'rules' end
function K.key(id) return P .. 'key:' .. id end
function K.keys() return P .. 'keys' end
function K.keyhash() return P .. 'keyhash' end
function K.agentkeys(agent) return P .. 'agentkeys:' .. agent end
function K.session(hash) return P .. 'session:' .. hash end
function K.thread(id) return P .. 'thread:' .. id end
function K.threadkey() return P .. 'threadkey' end
function K.threadseq() return P .. 'threadseq' end
function K.message(id) return P .. 'msg:' .. id end
function K.messagekey() return P .. 'msgkey' end
function K.outboundkey() return P .. 'outkey' end
function K.tombstones() return P .. 'tombstones' end
function K.tombexp() return P .. 'tombexp' end
function K.earlyfailed() return P .. 'earlyfailed' end
function K.earlyfailedexp() return P .. 'earlyfailedexp' end
function K.threadmsgs(tid) return P .. 'threadmsgs:' .. tid end
function K.notes(tid) return P .. 'notes:' .. tid end
function K.idempotency() return P .. 'idempotency' end
function K.idem(k) return P .. 'idem:' .. k end
function K.queue(team, network) return P .. 'queue:' .. team .. ':' .. network end
function K.lockexp() return P .. 'lockexp' end
function K.agentlocks(agent) return P .. 'agentlocks:' .. agent end
function K.sladue() return P .. 'sladue' end
function K.autoclose() return P .. 'autoclose' end
function K.frt(team) return P .. 'frt:' .. team end
function K.events() return P .. 'events' end
function K.threadevents(tid) return P .. 'threadevents:' .. tid end
function K.evlog(tid) return P .. 'evlog:' .. tid end
function K.erasedevents() return P .. 'erasedevents' end
function K.webhook(id) return P .. 'webhook:' .. id end
function K.webhooks() return P .. 'webhooks' end
function K.savedreply(id) return P .. 'savedreply:' .. id end
function K.savedreplies() return P .. 'savedreplies' end

-- Counter fields of K.counters() (mirror of the bbolt counters bucket).
local function c_status(team, status) return 'status\0' .. team .. '\0' .. status end
local function c_breaches(team) return 'breaches\0' .. team end
local function c_replies(agent, date) return 'replies\0' .. agent .. '\0' .. date end

local NETWORKS = {'twitter', 'instagram', 'facebook', 'linkedin', 'tiktok', 'youtube', 'whatsapp', 'other'}
local DELETED_TEXT = '[deleted by the customer]' -- store.DeletedText
local RANK = {low = 0, normal = 1, high = 2, urgent = 3}
local function rank(p) return RANK[p] or -1 end

-- remember_deletion remembers for ms milliseconds that the message with
-- dedupe key mkey was deleted by its author: ingest refuses it meanwhile
-- (deleted_before), so that it is stored emptied. One already remembered
-- keeps its time.
local function remember_deletion(mkey, ms)
  if redis.call('HSETNX', K.tombstones(), mkey, '') == 1 then
    redis.call('ZADD', K.tombexp(), NOW + ms * 1000, mkey)
  end
end

-- Byte-wise string order (Lua's < follows the locale).
local function lt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function istr(n) return string.format('%d', n) end

-- list turns a decoded JSON array (or null) into a Lua list.
local function list(x)
  if x == nil or x == cjson.null or type(x) ~= 'table' then return {} end
  return x
end

local function contains(l, v)
  for _, x in ipairs(l) do if x == v then return true end end
  return false
end

-- --- time ---

-- now_text is fmt_time(NOW) once formatted in call now_text_call.
local now_text, now_text_call = nil, 0

-- fmt_time formats microseconds as RFC 3339 UTC with six fraction digits
-- (days to civil date after Howard Hinnant's algorithm).
local function fmt_time(us)
  if us == NOW and now_text_call == CALL then return now_text end
  local secs = math.floor(us / 1000000)
  local frac = us - secs * 1000000
  local days = math.floor(secs / 86400)
  local rem = secs - days * 86400
  local h = math.floor(rem / 3600)
  rem = rem - h * 3600
  local mi = math.floor(rem / 60)
  local s = rem - mi * 60
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m
  if mp < 10 then m = mp + 3 else m = mp - 9 end
  if m <= 2 then y = y + 1 end
  local text = string.format('%04d-%02d-%02dT%02d:%02d:%02d.%06dZ', y, m, d, h, mi, s, frac)
  if us == NOW then now_text, now_text_call = text, CALL end
  return text
end

-- --- JSON building (cjson cannot tell an empty array from an object) ---

local JNULL = {}
local function RAW(s) return {raw = s} end
local function T(us) return {time = us} end

local function jstr(s) return cjson.encode(s) end

local function jarr(l)
  local parts = {}
  for i, v in ipairs(l) do parts[i] = jstr(v) end
  return '[' .. table.concat(parts, ',') .. ']'
end

local function jval(v)
  local tv = type(v)
  if tv == 'string' then return jstr(v) end
  if tv == 'number' then
    if v == math.floor(v) and math.abs(v) < 1e15 then return istr(v) end
    return string.format('%.17g', v)
  end
  if tv == 'boolean' then return v and 'true' or 'false' end
  if v == JNULL or v == nil then return 'null' end
  if v.raw then return v.raw end
  if v.time then return jstr(fmt_time(v.time)) end
  return jarr(v)
end

-- jobj encodes a flat list {k1, v1, k2, v2, ...} as a JSON object.
local function jobj(kv)
  local parts = {}
  for i = 1, #kv, 2 do
    parts[#parts + 1] = jstr(kv[i]) .. ':' .. jval(kv[i + 1])
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- jappend adds the fields of kv to a JSON object encoded by Go.
local function jappend(obj, kv)
  local extra = string.sub(jobj(kv), 2, -2)
  if extra == '' then return obj end
  local body = string.sub(obj, 1, -2)
  if string.match(body, '^%s*{%s*$') then return body .. extra .. '}' end
  return body .. ',' .. extra .. '}'
end

-- --- results ---

local function ok(...) return {'ok', ...} end
local function fail(code, msg, ...) return {code, msg or code, ...} end

-- --- configuration records ---

-- team_cache holds the teams read in this call (a library outlives calls).
local team_cache, team_cache_call = {}, 0
local function team_conf(id)
  if id == nil or id == '' then return nil end
  if team_cache_call ~= CALL then team_cache, team_cache_call = {}, CALL end
  local c = team_cache[id]
  if c == nil then
    local j = redis.call('HGET', K.team(id), 'json')
    if not j then
      team_cache[id] = false
      return nil
    end
    c = cjson.decode(j)
    team_cache[id] = c
  end
  if c == false then return nil end
  return c
end

-- bump_config moves the configuration version on, to the call's time in
-- microseconds when that is ahead: a version is never handed out twice,
-- even after Redis lost acknowledged writes (a replica promoted while
-- behind, an older file loaded), or nodes would keep routing on a snapshot
-- of a configuration Redis no longer has, its version handed out again.
local function bump_config()
  local v = tonumber(redis.call('HGET', K.meta(), 'config_version') or '0')
  redis.call('HSET', K.meta(), 'config_version', istr(math.max(v + 1, NOW)))
end

-- --- threads ---

-- Thread hash fields, in storage order. Times are microseconds; tags a
-- JSON array; author the JSON Go encoded; absent fields are nil/null.
local THREAD_FIELDS = {'id', 'network', 'profile', 'external_id', 'kind', 'author', 'status', 'team',
  'priority', 'tags', 'assignee', 'lock_agent', 'lock_fence', 'lock_exp', 'lock_token', 'ws', 'frt',
  'sla_due', 'sla_breached', 'last_in', 'last_out', 'auto_close', 'created', 'updated', 'version',
  'max_fence', 'seq'}
local THREAD_NUM = {lock_fence = true, lock_exp = true, ws = true, frt = true, sla_due = true,
  last_in = true, last_out = true, auto_close = true, created = true, updated = true, version = true,
  max_fence = true, seq = true}

local function thread_from_flat(flat)
  local t = {}
  for i = 1, #flat, 2 do
    local k, v = flat[i], flat[i + 1]
    if THREAD_NUM[k] then v = tonumber(v) end
    t[k] = v
  end
  t.tags = list(cjson.decode(t.tags or '[]'))
  t.sla_breached = (t.sla_breached == '1')
  return t
end

local function load_thread(id)
  if id == nil or id == '' then return nil end
  local flat = redis.call('HGETALL', K.thread(id))
  if #flat == 0 then return nil end
  return thread_from_flat(flat)
end

-- flat is the thread as stored and as scripts return it to Go.
local function flat(t)
  local out = {}
  for _, f in ipairs(THREAD_FIELDS) do
    local v = t[f]
    if f == 'tags' then
      v = jarr(t.tags)
    elseif f == 'sla_breached' then
      v = t.sla_breached and '1' or '0'
    elseif THREAD_NUM[f] and v ~= nil then
      v = istr(v)
    end
    if v ~= nil then
      out[#out + 1] = f
      out[#out + 1] = v
    end
  end
  return out
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  local tags = {}
  for i, v in ipairs(t.tags) do tags[i] = v end
  c.tags = tags
  return c
end

local function in_queue(t) return t.status == 'queued' and t.lock_agent == nil end
-- moved_sla gives a thread moved unanswered to another team (an
-- escalation to care, a lead to sales) that team's first-response
-- deadline, counted from the move, unless the one it has is sooner.
local function moved_sla(t)
  if t.frt ~= nil or t.sla_breached or t.status == 'closed' then return end
  local team = team_conf(t.team)
  local sla = team and tonumber(team.sla_first_response_seconds) or 0
  if sla <= 0 then
    t.sla_due = nil -- a team without an SLA sets no deadline
    return
  end
  local due = NOW + sla * 1000000
  if t.sla_due == nil or due < t.sla_due then t.sla_due = due end
end

local function sla_active(t)
  return t.sla_due ~= nil and t.frt == nil and not t.sla_breached and t.status ~= 'closed'
end
local function autoclose_active(t) return t.status == 'pending' and t.auto_close ~= nil end

-- qmember is the thread's member in its (team, network) queue: the queue
-- sorted set has every score 0, so members sort by bytes: priority rank
-- (0 = urgent), waiting_since as 17 fixed digits, thread id.
local function qmember(t)
  return string.format('%d|%017d|%s', 3 - rank(t.priority), t.ws, t.id)
end
local QMEMBER_ID_AT = 21 -- where the thread id starts in a member

-- save_thread writes after and moves its index entries from what before
-- had (nil for a new thread); it bumps the version and updated, and
-- returns flat(after), what it stored. Only what changed is written: each
-- write of a script is also fed to the AOF.
local function save_thread(before, after)
  after.version = (after.version or 0) + 1
  after.updated = NOW
  local id = after.id
  local b = before or {}
  -- The (team, network) queue.
  local qkb, qmb, qka, qma
  if before and in_queue(before) then qkb, qmb = K.queue(before.team, before.network), qmember(before) end
  if in_queue(after) then qka, qma = K.queue(after.team, after.network), qmember(after) end
  if qkb and (qkb ~= qka or qmb ~= qma) then redis.call('ZREM', qkb, qmb) end
  if qka and (qkb ~= qka or qmb ~= qma) then redis.call('ZADD', qka, 0, qma) end
  -- The lease index and the holder's lock set.
  if b.lock_agent and not after.lock_agent then redis.call('ZREM', K.lockexp(), id) end
  if after.lock_agent and after.lock_exp ~= b.lock_exp then redis.call('ZADD', K.lockexp(), after.lock_exp, id) end
  if b.lock_agent and b.lock_agent ~= after.lock_agent then redis.call('SREM', K.agentlocks(b.lock_agent), id) end
  if after.lock_agent and after.lock_agent ~= b.lock_agent then redis.call('SADD', K.agentlocks(after.lock_agent), id) end
  -- Timers.
  local sb, sa = before and sla_active(before) and before.sla_due, sla_active(after) and after.sla_due
  if sb and not sa then redis.call('ZREM', K.sladue(), id) end
  if sa and sa ~= sb then redis.call('ZADD', K.sladue(), sa, id) end
  local ab, aa = before and autoclose_active(before) and before.auto_close, autoclose_active(after) and after.auto_close
  if ab and not aa then redis.call('ZREM', K.autoclose(), id) end
  if aa and aa ~= ab then redis.call('ZADD', K.autoclose(), aa, id) end
  -- Status counters.
  if before == nil then
    redis.call('HINCRBY', K.counters(), c_status(after.team, after.status), 1)
  elseif before.team ~= after.team or before.status ~= after.status then
    redis.call('HINCRBY', K.counters(), c_status(before.team, before.status), -1)
    redis.call('HINCRBY', K.counters(), c_status(after.team, after.status), 1)
  end
  -- The thread's hash: changed fields set, vanished ones deleted.
  local fa = flat(after)
  if before == nil then
    redis.call('HSET', K.thread(id), unpack(fa))
    return fa
  end
  local old = {}
  local fb = flat(before)
  for i = 1, #fb, 2 do old[fb[i]] = fb[i + 1] end
  local set = {}
  for i = 1, #fa, 2 do
    local f, v = fa[i], fa[i + 1]
    if old[f] ~= v then
      set[#set + 1] = f
      set[#set + 1] = v
    end
    old[f] = nil
  end
  redis.call('HSET', K.thread(id), unpack(set)) -- version and updated always change
  local gone = {}
  for f in pairs(old) do gone[#gone + 1] = f end
  if #gone > 0 then redis.call('HDEL', K.thread(id), unpack(gone)) end
  return fa
end

-- --- events ---

-- event_json numbers a new event on thread t and returns its id, the id
-- as a string and store.Event's JSON, built with one string.format: steps
-- record several events each. data is a flat {k, v, ...} list.
local function event_json(t, typ, actor, data)
  local id = redis.call('HINCRBY', K.meta(), 'event_seq', 1)
  local agent = nil
  for i = 1, #data, 2 do
    if data[i] == 'to_agent' then agent = data[i + 1] end
  end
  if agent == nil and typ == 'thread.offered' and t.lock_agent then agent = t.lock_agent end
  local tail = '}'
  if agent and agent ~= '' then tail = ',"agent_id":' .. jstr(agent) .. '}' end
  local sid = istr(id)
  return id, sid, string.format(
    '{"id":%s,"type":%s,"thread_id":%s,"actor":%s,"at":%s,"data":%s,"team":%s,"network":%s%s',
    sid, jstr(typ), jstr(t.id), jstr(actor), jval(T(NOW)), jobj(data), jval(t.team), jval(t.network), tail)
end

-- event records an event on thread t. The event itself is appended to
-- the thread's event string; the log's entry and the thread's event index
-- say where it is ("offset:length"), so erasing the thread (DEL of the
-- string) takes every byte of its events with it. (A stream entry's bytes
-- stay in the stream's node after XDEL, until the whole node is deleted.)
local function event(t, typ, actor, data)
  local id, sid, json = event_json(t, typ, actor, data)
  local ref = istr(redis.call('APPEND', K.evlog(t.id), json) - #json) .. ':' .. istr(#json)
  redis.call('XADD', K.events(), sid .. '-0', 't', t.id, 'r', ref)
  redis.call('ZADD', K.threadevents(t.id), id, ref)
  return id
end

-- event_at reads the event at ref ("offset:length") of thread tid's event
-- string.
local function event_at(tid, ref)
  local o, n = string.match(ref, '^(%d+):(%d+)$')
  return redis.call('GETRANGE', K.evlog(tid), o, tonumber(o) + tonumber(n) - 1)
end

-- --- locks ---

-- answered: the thread's last reply is no older than its last inbound
-- message (store.Thread.Answered).
local function answered(t)
  return t.last_out ~= nil and t.last_out >= t.last_in
end

-- released_status: pending if a reply is newer than the last inbound
-- message, queued otherwise.
local function released_status(t)
  if answered(t) then return 'pending' end
  return 'queued'
end

local function set_autoclose(t)
  t.auto_close = nil
  local team = team_conf(t.team)
  if team and tonumber(team.auto_close_pending_seconds or 0) > 0 then
    t.auto_close = NOW + tonumber(team.auto_close_pending_seconds) * 1000000
  end
end

local function clear_lock(t)
  t.lock_agent, t.lock_fence, t.lock_exp, t.lock_token = nil, nil, nil, nil
end

-- end_lock removes the lock and sets the status a release gives.
local function end_lock(t)
  clear_lock(t)
  if t.status == 'assigned' then
    t.status = released_status(t)
    if t.status == 'pending' then set_autoclose(t) end
  end
end

-- expire_thread ends t's lock if its lease has run out, recording
-- lock.expired; it reports whether it did.
local function expire_thread(t)
  if t.lock_agent == nil or t.lock_exp > NOW then return false end
  local before = copy(t)
  local agent, fence = t.lock_agent, t.lock_fence
  end_lock(t)
  event(t, 'lock.expired', 'system', {'agent_id', agent, 'fence', fence, 'status', t.status})
  save_thread(before, t)
  return true
end

-- raise_priority raises the priority to floor, never lowering it.
local function raise_priority(t, floor, actor)
  if floor and rank(floor) > rank(t.priority) then
    local from = t.priority
    t.priority = floor
    event(t, 'thread.priority_changed', actor, {'from', from, 'to', floor})
  end
end

-- breach_thread records a passed first-response deadline: sla.breached
-- once, priority urgent, the team's breach counted (the sweep, and the lock
-- steps through load_step). A deadline whose team has since turned its
-- SLA off is dropped instead: no breach for a team without an SLA.
local function breach_thread(t)
  if not sla_active(t) or t.sla_due > NOW then return false end
  local before = copy(t)
  local team = team_conf(t.team)
  if not team or tonumber(team.sla_first_response_seconds or 0) <= 0 then
    t.sla_due = nil
    save_thread(before, t)
    return false
  end
  t.sla_breached = true
  event(t, 'sla.breached', 'system', {'sla_due_at', T(t.sla_due), 'team', t.team})
  raise_priority(t, 'urgent', 'system')
  redis.call('HINCRBY', K.counters(), c_breaches(t.team), 1)
  save_thread(before, t)
  return true
end

-- breach_due breaches up to limit threads whose first-response deadline
-- has passed, oldest first (see breach_thread), dropping entries of
-- threads that can no longer breach; it returns how many breached and how
-- many entries it looked at.
local function breach_due(limit)
  local due = redis.call('ZRANGEBYSCORE', K.sladue(), '-inf', NOW, 'LIMIT', 0, limit)
  local n = 0
  for _, id in ipairs(due) do
    local t = load_thread(id)
    if t == nil or not sla_active(t) then
      redis.call('ZREM', K.sladue(), id)
    elseif breach_thread(t) then
      n = n + 1
    end
  end
  return n, #due
end

-- expire_due expires up to limit leases that have run out, oldest first,
-- and returns how many it expired and whether more are due.
local function expire_due(limit)
  local ids = redis.call('ZRANGEBYSCORE', K.lockexp(), '-inf', NOW, 'LIMIT', 0, limit)
  local n = 0
  for _, id in ipairs(ids) do
    local t = load_thread(id)
    if t == nil then
      redis.call('ZREM', K.lockexp(), id)
    elseif expire_thread(t) then
      n = n + 1
    elseif t.lock_agent == nil then
      redis.call('ZREM', K.lockexp(), id)
    end
  end
  return n, #ids == limit
end

local EXPIRE_LIMIT = 100

-- live_locks counts the agent's live locks, not counting one on except; a
-- lock of the agent whose lease ran out is expired on the way.
local function live_locks(agent, except)
  local n = 0
  for _, tid in ipairs(redis.call('SMEMBERS', K.agentlocks(agent))) do
    if tid ~= except then
      local t = load_thread(tid)
      if t == nil or t.lock_agent ~= agent then
        redis.call('SREM', K.agentlocks(agent), tid)
      elseif not expire_thread(t) then
        n = n + 1
      end
    end
  end
  return n
end

local function agent_exists(id)
  return id ~= nil and id ~= '' and redis.call('EXISTS', K.agent(id)) == 1
end

-- check_capacity refuses when the agent holds capacity live locks, not
-- counting one on except (a thread it would keep).
local function check_capacity(agent, except)
  local cap = tonumber(redis.call('HGET', K.agent(agent), 'capacity') or '0')
  local n = live_locks(agent, except)
  if n >= cap then
    return fail('capacity', 'agent ' .. agent .. ' holds ' .. n .. ' of ' .. cap .. ' locks')
  end
  return nil
end

-- grant gives the agent a new lock with the thread's next fence.
local function grant(t, agent, ttl, token)
  t.max_fence = (t.max_fence or 0) + 1
  t.lock_agent, t.lock_fence, t.lock_exp, t.lock_token = agent, t.max_fence, NOW + ttl, token
  t.status = 'assigned'
  t.assignee = agent
  t.auto_close = nil
end

-- offer_stamp is the last_offered of an offer made now. Round robin takes
-- the agent with the newest stamp as the one whose turn it was, so stamps
-- never tie: offers of one script run (one clock reading) or made while
-- the clock did not move each get a microsecond after the one before.
local function offer_stamp()
  local at = NOW
  local last = tonumber(redis.call('HGET', K.meta(), 'last_offer') or '0')
  if at <= last then at = last + 1 end
  redis.call('HSET', K.meta(), 'last_offer', istr(at))
  return at
end

-- offer grants the thread to an agent on the system's behalf after
-- checking capacity; it changes nothing when it refuses.
local function offer(t, agent, ttl, token)
  if not agent_exists(agent) then return fail('unknown_agent', 'agent ' .. tostring(agent)) end
  local err = check_capacity(agent, t.id)
  if err then return err end
  grant(t, agent, ttl, token)
  redis.call('HSET', K.agent(agent), 'last_offered', istr(offer_stamp()))
  return nil
end

local function check_token(t, token, force)
  if force then return nil end
  if t.lock_agent == nil or token == nil or token == '' or t.lock_token ~= token then
    return fail('lock_lost', 'thread ' .. t.id .. ': lock lost')
  end
  return nil
end

-- check_holder refuses unless the thread's lock is actor's: a token is no
-- use to another agent.
local function check_holder(t, actor)
  if t.lock_agent ~= actor then
    return fail('lock_lost', 'thread ' .. t.id .. ' is locked by another agent')
  end
  return nil
end

-- load_live loads a thread for a step, expiring its lease if it ran out.
local function load_live(id)
  local t = load_thread(id)
  if t then expire_thread(t) end
  return t
end

-- load_step is load_live for the lock steps (claim, renew, release, reply,
-- close, transfer, tag), which also breach a passed SLA deadline first, as
-- the bbolt store's do: an answer after the deadline counts as late even
-- before the sweep has seen it.
local function load_step(id)
  local t = load_live(id)
  if t then breach_thread(t) end
  return t
end

-- not_found says what is missing the way the bbolt store does ("team x"; the
-- Go side adds ": not found").
local function not_found(what, id) return fail('not_found', what .. ' ' .. tostring(id)) end

-- agent_read returns {agent hash (empty if there is none), live locks}.
local function agent_read(id)
  local n = 0
  for _, tid in ipairs(redis.call('SMEMBERS', K.agentlocks(id))) do
    local f = redis.call('HMGET', K.thread(tid), 'lock_agent', 'lock_exp')
    if f[1] == id and tonumber(f[2]) > NOW then n = n + 1 end
  end
  return {redis.call('HGETALL', K.agent(id)), n}
end

-- add_tags adds and removes tags, recording thread.tagged when something
-- changed.
local function add_tags(t, add, remove, actor)
  local added, removed = {}, {}
  for _, tag in ipairs(list(add)) do
    if tag ~= '' and not contains(t.tags, tag) then
      t.tags[#t.tags + 1] = tag
      added[#added + 1] = tag
    end
  end
  for _, tag in ipairs(list(remove)) do
    if not contains(added, tag) then
      for i, x in ipairs(t.tags) do
        if x == tag then
          table.remove(t.tags, i)
          removed[#removed + 1] = tag
          break
        end
      end
    end
  end
  if #added + #removed > 0 then
    event(t, 'thread.tagged', actor, {'added', added, 'removed', removed, 'tags', t.tags})
  end
  return added
end

-- put_note stores an internal note (Go's JSON without thread_id and
-- created_at) and records note.added.
local function put_note(t, note_json, note_id, actor)
  local j = jappend(note_json, {'thread_id', t.id, 'created_at', T(NOW)})
  redis.call('RPUSH', K.notes(t.id), j)
  event(t, 'note.added', actor, {'note_id', note_id})
  return j
end

-- visible: teams nil = all; networks empty = all.
local function visible(t, teams, networks)
  return (teams == nil or contains(teams, t.team)) and (#networks == 0 or contains(networks, t.network))
end

-- sees is visible with the caller's teams as a JSON array ("" = all) and
-- networks as a JSON array ([] = all), as the steps receive them.
local function sees(t, teams_json, networks_json)
  local teams = nil
  if teams_json ~= '' then teams = list(cjson.decode(teams_json)) end
  return visible(t, teams, list(cjson.decode(networks_json)))
end

-- may_work reports whether the agent, as stored now (its agent_scope), may work t: an agent
-- (not a supervisor) only in its teams and networks. A claim checks it
-- because the caller's scope was read before: an agent moved out of a team
-- meanwhile would hold a lock on a thread it no longer sees, which its
-- update would have ended.
-- agent_scope reads what may_work needs of the agent, once per script.
local function agent_scope(agent)
  local a = cjson.decode(redis.call('HGET', K.agent(agent), 'json') or '{}')
  return {role = a.role, teams = list(a.teams), networks = list(a.networks)}
end

local function may_work(scope, t)
  return scope.role ~= 'agent' or visible(t, scope.teams, scope.networks)
end

-- end_agent_locks releases the agent's locks on the threads keep refuses
-- (keep nil: all of them), recording why.
local function end_agent_locks(id, actor, reason, keep)
  for _, tid in ipairs(redis.call('SMEMBERS', K.agentlocks(id))) do
    local t = load_live(tid)
    if t and t.lock_agent == id and not (keep and keep(t)) then
      local before = copy(t)
      end_lock(t)
      event(t, 'thread.released', actor, {'agent_id', id, 'status', t.status, 'reason', reason})
      save_thread(before, t)
    end
  end
end

-- grant_result is the {token, fence, agent, expires} a holder sees.
local function grant_of(t)
  if t.lock_agent == nil then return {} end
  return {t.lock_token, istr(t.lock_fence), t.lock_agent, istr(t.lock_exp)}
end

-- --- keys (API keys, not Redis keys) ---

local function key_free(id, hash)
  return redis.call('EXISTS', K.key(id)) == 0 and redis.call('HEXISTS', K.keyhash(), hash) == 0
end

-- put_key stores an API key: its hash (hex SHA-256 of the secret) indexes it.
local function put_key(id, role, name, agent, hash, created)
  if created == nil or created == '' then created = istr(NOW) end
  redis.call('HSET', K.key(id), 'id', id, 'role', role, 'name', name, 'agent_id', agent, 'hash', hash, 'created', created)
  redis.call('HSET', K.keyhash(), hash, id)
  redis.call('SADD', K.keys(), id)
  if agent ~= '' then redis.call('SADD', K.agentkeys(agent), id) end
end

local function delete_key(id)
  local f = redis.call('HMGET', K.key(id), 'hash', 'agent_id')
  if f[1] then redis.call('HDEL', K.keyhash(), f[1]) end
  if f[2] and f[2] ~= '' then redis.call('SREM', K.agentkeys(f[2]), id) end
  redis.call('DEL', K.key(id))
  redis.call('SREM', K.keys(), id)
end

-- date is the UTC date (YYYY-MM-DD) of a time.
local function date(us) return string.sub(fmt_time(us), 1, 10) end
