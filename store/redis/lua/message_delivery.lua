-- message_delivery: record a connector's delivery report on an outbound
-- message.
--
-- KEYS[1]  the message
-- ARGV[2]  message id
-- ARGV[3]  delivery JSON
-- Returns  {"ok", message hash} | {"not_found"}

local key = K.message(ARGV[2])
local dir = redis.call('HGET', key, 'dir')
if not dir then return not_found('message', ARGV[2]) end
if dir ~= 'outbound' then return not_found('message', ARGV[2] .. ' is inbound') end
redis.call('HSET', key, 'delivery', ARGV[3])
return ok(redis.call('HGETALL', key))
