-- message_delivery: record a connector's delivery report on an outbound
-- message, with a message.delivery event on its thread when it changed.
-- The message is named by its id, or (id empty) by the network's id for
-- it, which an earlier report recorded in outkey.
--
-- KEYS[1]  the message, or outkey when it is found there
-- ARGV[2]  message id, or ''
-- ARGV[3]  delivery JSON
-- ARGV[4]  network (when ARGV[2] is '')
-- ARGV[5]  the delivery's external id ('' keeps the one recorded)
-- ARGV[6]  ms to remember a failed report no reply was reported under
--          (0: not at all)
-- Returns  {"ok", message hash} | {"not_found"}

local mid = ARGV[2]
if mid == '' then
  local okey = ARGV[4] .. '\0' .. ARGV[5]
  mid = redis.call('HGET', K.outboundkey(), okey)
  if not mid then
    local d = cjson.decode(ARGV[3])
    local ms = tonumber(ARGV[6]) or 0
    if d.status == 'failed' and ms > 0 and redis.call('HSETNX', K.earlyfailed(), okey, d.error or '') == 1 then
      -- The network said it failed before the connector said it sent it:
      -- that report will record it.
      redis.call('ZADD', K.earlyfailedexp(), NOW + ms * 1000, okey)
    end
    return not_found('reply delivered as', ARGV[5] .. ' on ' .. ARGV[4])
  end
end
local key = K.message(mid)
local f = redis.call('HMGET', key, 'dir', 'delivery', 'thread', 'json')
if not f[1] then return not_found('message', mid) end
if f[1] ~= 'outbound' then return not_found('message', mid .. ' is inbound') end
local network = cjson.decode(f[4]).network
local prev = f[2] and cjson.decode(f[2]) or {}
local d = cjson.decode(ARGV[3])
local ext, dj = ARGV[5], ARGV[3]
if ext == '' and type(prev.external_id) == 'string' and prev.external_id ~= '' then
  -- A report naming no id keeps the one recorded before.
  ext, d.external_id = prev.external_id, prev.external_id
  dj = cjson.encode(d)
elseif ext ~= '' then
  local fkey = network .. '\0' .. ext
  local why = redis.call('HGET', K.earlyfailed(), fkey)
  if why then
    redis.call('HDEL', K.earlyfailed(), fkey)
    redis.call('ZREM', K.earlyfailedexp(), fkey)
    if d.status ~= 'failed' then
      -- The network said so before this report came.
      d.status, d.error = 'failed', why
      dj = cjson.encode(d)
    end
  end
end
-- (A delivery stored by an older build may lack a field: '' then.)
local repeated = (prev.status or '') == (d.status or '') and (prev.external_id or '') == (d.external_id or '')
  and (prev.error or '') == (d.error or '')
-- Not a repeated report, nor a late "sent" for what the network since said
-- failed.
if not repeated and not (prev.status == 'failed' and d.status == 'sent' and ARGV[5] ~= '' and prev.external_id == ARGV[5]) then
  local old = prev.external_id or ''
  if type(old) == 'string' and old ~= '' and old ~= ext then
    local okey = network .. '\0' .. old
    if redis.call('HGET', K.outboundkey(), okey) == mid then redis.call('HDEL', K.outboundkey(), okey) end
  end
  if ext ~= '' then redis.call('HSET', K.outboundkey(), network .. '\0' .. ext, mid) end
  redis.call('HSET', key, 'delivery', dj)
  -- Its thread's event, so the page and webhooks learn of it.
  local t = load_thread(f[3])
  if t then
    local data = {'message_id', mid, 'status', d.status}
    if type(d.error) == 'string' and d.error ~= '' then
      data[#data + 1], data[#data + 2] = 'error', d.error
    end
    event(t, 'message.delivery', 'system', data)
  end
end
return ok(redis.call('HGETALL', key))
