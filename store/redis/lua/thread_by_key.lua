-- thread_by_key: read the thread keyed (network, profile, thread external
-- id) and the server time. Writes nothing.
--
-- KEYS[1]  the thread key index
-- ARGV[2]  network \0 profile \0 thread external id
-- Returns  {"ok", now, thread hash} | {"not_found"}

local id = redis.call('HGET', K.threadkey(), ARGV[2])
if not id then return not_found('thread', 'by key') end
return ok(NOW, redis.call('HGETALL', K.thread(id)))
