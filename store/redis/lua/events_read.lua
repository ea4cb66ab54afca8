-- events_read: events oldest first, of the whole log after an id or of
-- one thread. The log's entry of an event, and the thread's event index,
-- say where the event is in the thread's event string (see event in
-- lib.lua); thread.erased, and entries written before the events moved
-- there, hold the event in the log's entry itself. Writes nothing.
--
-- KEYS[1]  the event log
-- ARGV[2]  list the events after this id
-- ARGV[3]  at most this many
-- ARGV[4]  a thread id: that thread's events; "": the whole log
-- Returns  {"ok", now, event JSON...}

local after, limit, tid = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local out = {'ok', NOW}
if tid == '' then
  for _, e in ipairs(redis.call('XRANGE', K.events(), istr(after + 1) .. '-0', '+', 'COUNT', limit)) do
    local f = e[2] -- {'e', JSON} or {'t', thread id, 'r', ref}
    if f[1] == 'e' then
      out[#out + 1] = f[2]
    else
      out[#out + 1] = event_at(f[2], f[4])
    end
  end
  return out
end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', K.threadevents(tid), '(' .. istr(after), '+inf', 'LIMIT', 0, limit)) do
  if string.find(m, ':', 1, true) then
    out[#out + 1] = event_at(tid, m)
  else -- an event id: the event is in the log's entry
    local e = redis.call('XRANGE', K.events(), m .. '-0', m .. '-0')
    if e[1] then out[#out + 1] = e[1][2][2] end
  end
end
return out
