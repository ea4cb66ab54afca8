-- message_delivery: record a connector's delivery report on an outbound
-- message, with a message.delivery event on its thread when it changed.
--
-- KEYS[1]  the message
-- ARGV[2]  message id
-- ARGV[3]  delivery JSON
-- Returns  {"ok", message hash} | {"not_found"}

local key = K.message(ARGV[2])
local f = redis.call('HMGET', key, 'dir', 'delivery', 'thread')
if not f[1] then return not_found('message', ARGV[2]) end
if f[1] ~= 'outbound' then return not_found('message', ARGV[2] .. ' is inbound') end
if f[2] ~= ARGV[3] then -- not a repeated report
  redis.call('HSET', key, 'delivery', ARGV[3])
  -- Its thread's event, so the page and webhooks learn of it.
  local t = load_thread(f[3])
  if t then
    local d = cjson.decode(ARGV[3])
    local data = {'message_id', ARGV[2], 'status', d.status}
    if type(d.error) == 'string' and d.error ~= '' then
      data[#data + 1], data[#data + 2] = 'error', d.error
    end
    event(t, 'message.delivery', 'system', data)
  end
end
return ok(redis.call('HGETALL', key))
