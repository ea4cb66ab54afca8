-- trim_erased: remove thread.erased events recorded at or before a
-- time from the event log, oldest first (see store.Store.EventTrimErased).
--
-- KEYS[1]  the index of thread.erased events (stream ids scored by time)
-- ARGV[2]  the time, in microseconds
-- ARGV[3]  most events to remove
-- Returns  {"ok", removed}

local ids = redis.call('ZRANGEBYSCORE', K.erasedevents(), '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
if #ids > 0 then
  redis.call('XDEL', K.events(), unpack(ids))
  redis.call('ZREM', K.erasedevents(), unpack(ids))
end
return ok(#ids)
