-- thread_erase: delete a thread, in any state, and everything kept about
-- it: its messages and their dedupe entries, notes, audit events and index
-- entries; a lock on it ends. Only thread.erased remains, in the event log
-- but not under the thread (see store.Store.ThreadErase).
--
-- KEYS[1]  the thread
-- ARGV[2]  thread id
-- ARGV[3]  actor
-- ARGV[4]  the thread's version as the caller read it, or 0 for any
-- ARGV[5]  how long to remember, in milliseconds, the network ids of its
--          inbound messages their authors deleted (0: not), so that one sent
--          again is stored emptied
-- Returns  {"ok", now} | {"not_found"} | {"conflict"}
--
-- Like every step, it first ends leases that ran out, this thread's too: a
-- version read before that is refused, as on bbolt.

expire_due(EXPIRE_LIMIT)
local t = load_live(ARGV[2])
if t == nil then return not_found('thread', ARGV[2]) end
local version = tonumber(ARGV[4]) or 0
if version ~= 0 and t.version ~= version then
  return fail('conflict', 'thread ' .. t.id .. ' version ' .. istr(t.version) .. ', read at ' .. istr(version))
end
local id = t.id
-- Its index entries and status count, as save_thread moves them.
if in_queue(t) then redis.call('ZREM', K.queue(t.team, t.network), qmember(t)) end
if t.lock_agent then
  redis.call('ZREM', K.lockexp(), id)
  redis.call('SREM', K.agentlocks(t.lock_agent), id)
end
redis.call('ZREM', K.sladue(), id)
redis.call('ZREM', K.autoclose(), id)
redis.call('HINCRBY', K.counters(), c_status(t.team, t.status), -1)
local tkey = t.network .. '\0' .. t.profile .. '\0' .. t.external_id
if redis.call('HGET', K.threadkey(), tkey) == id then redis.call('HDEL', K.threadkey(), tkey) end
redis.call('ZREM', K.threadseq(), id)
for _, mid in ipairs(redis.call('LRANGE', K.threadmsgs(id), 0, -1)) do
  local f = redis.call('HMGET', K.message(mid), 'json', 'dir', 'delivery')
  if f[1] and f[2] == 'inbound' then
    local m = cjson.decode(f[1])
    local mkey = m.network .. '\0' .. m.external_id
    if redis.call('HGET', K.messagekey(), mkey) == mid then
      redis.call('HDEL', K.messagekey(), mkey)
      local remember = tonumber(ARGV[5]) or 0
      if m.text == DELETED_TEXT and remember > 0 then remember_deletion(mkey, remember) end
    end
  elseif f[1] and f[3] then
    local ext = cjson.decode(f[3]).external_id
    if type(ext) == 'string' and ext ~= '' then
      local okey = cjson.decode(f[1]).network .. '\0' .. ext
      if redis.call('HGET', K.outboundkey(), okey) == mid then redis.call('HDEL', K.outboundkey(), okey) end
    end
  end
  redis.call('DEL', K.message(mid))
end
-- The log's entries of the thread (they hold only its id and where its
-- event is in the thread's event string, deleted below). XDEL takes many ids; a few hundred per
-- call keep Lua's stack small. Entries written before the events moved to
-- the index hold the event itself: XDEL hides them, but their bytes stay
-- in the stream's node until the whole node is deleted.
local evs = redis.call('ZRANGE', K.threadevents(id), 0, -1, 'WITHSCORES')
for i = 2, #evs, 1000 do
  local ids = {}
  for j = i, math.min(i + 998, #evs), 2 do ids[#ids + 1] = evs[j] .. '-0' end
  redis.call('XDEL', K.events(), unpack(ids))
end
redis.call('DEL', K.thread(id), K.threadmsgs(id), K.notes(id), K.threadevents(id), K.evlog(id))
-- thread.erased has no data of the thread: it is kept in the log itself.
-- Indexed by time, so that retention can trim it when its time is up.
local _, sid, json = event_json(t, 'thread.erased', ARGV[3], {})
redis.call('XADD', K.events(), sid .. '-0', 'e', json)
redis.call('ZADD', K.erasedevents(), NOW, sid .. '-0')
return ok(NOW)
