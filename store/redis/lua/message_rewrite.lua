-- message_rewrite: change an inbound message its author deleted or edited
-- on the network (the new JSON made by the caller from the JSON it read),
-- with an event of the given type (message.deleted, message.edited) on its
-- thread. The message must still be as the caller read it.
--
-- KEYS[1]  the message
-- ARGV[2]  message id
-- ARGV[3]  the message's JSON as the caller read it
-- ARGV[4]  its new JSON
-- ARGV[5]  the event's type
-- Returns  {"ok", message hash} | {"not_found"} | {"conflict"}

local key = K.message(ARGV[2])
local f = redis.call('HMGET', key, 'json', 'thread', 'dir')
if not f[1] or f[3] ~= 'inbound' then return not_found('message', ARGV[2]) end
if f[1] ~= ARGV[3] then return fail('conflict', 'message ' .. ARGV[2] .. ' changed meanwhile') end
redis.call('HSET', key, 'json', ARGV[4])
local t = load_thread(f[2])
if t then event(t, ARGV[5], 'system', {'message_id', ARGV[2]}) end
return ok(redis.call('HGETALL', key))
