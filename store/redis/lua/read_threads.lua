-- read_threads: read threads and the server time in one snapshot, so the
-- caller can show each as it is now (store.Thread.View). Writes nothing.
--
-- KEYS[1]    the thread sequence index (a key of the namespace, for routing)
-- ARGV[2..]  thread ids
-- Returns    {"ok", now, thread hash...} (an empty hash for a missing thread)

local out = {'ok', NOW}
for i = 2, #ARGV do out[#out + 1] = redis.call('HGETALL', K.thread(ARGV[i])) end
return out
