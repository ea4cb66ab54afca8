-- webhook: create, delete, lease or save the delivery state of an outbound
-- webhook. A new webhook starts at the current end of the event log; the
-- lease gives one node at a time the right to deliver it.
--
-- KEYS[1]  the webhook
-- ARGV[2]  "create" | "delete" | "lease" | "save"
-- ARGV[3]  webhook id
-- create:  ARGV[4] webhook JSON (id, url, events), ARGV[5] secret
-- lease:   ARGV[4] owner, ARGV[5] lease in microseconds
-- save:    ARGV[4] owner, ARGV[5] state JSON
-- Returns  create: {"ok", created, cursor}; delete, save: {"ok"};
--          lease: {"ok", webhook hash} | {"lock_held", msg, owner, until};
--          {"not_found"} | {"already_exists"} | {"lock_lost"}

local op, id, key = ARGV[2], ARGV[3], K.webhook(ARGV[3])
local exists = redis.call('EXISTS', key) == 1
if op == 'create' then
  if exists then return fail('already_exists', 'webhook ' .. id) end
  -- Deliveries start with the events after this one.
  local cursor = redis.call('HGET', K.meta(), 'event_seq') or '0'
  redis.call('HSET', key, 'json', ARGV[4], 'secret', ARGV[5], 'created', istr(NOW),
    'state', '{"cursor":' .. cursor .. '}')
  redis.call('SADD', K.webhooks(), id)
  return ok(istr(NOW), cursor)
end
if not exists then return not_found('webhook', id) end
if op == 'delete' then
  redis.call('DEL', key)
  redis.call('SREM', K.webhooks(), id)
  return ok()
end
local f = redis.call('HMGET', key, 'lease_owner', 'lease_until')
local owner, untilus = f[1] or '', tonumber(f[2] or '0')
if op == 'lease' then
  if owner ~= '' and owner ~= ARGV[4] and NOW < untilus then
    return fail('lock_held', 'webhook ' .. id .. ' is leased', owner, istr(untilus))
  end
  redis.call('HSET', key, 'lease_owner', ARGV[4], 'lease_until', istr(NOW + tonumber(ARGV[5])))
  return ok(redis.call('HGETALL', key))
end
if op == 'save' then
  if owner ~= ARGV[4] or not (NOW < untilus) then return fail('lock_lost', 'webhook ' .. id .. ' lease lost') end
  redis.call('HSET', key, 'state', ARGV[5])
  return ok()
end
return redis.error_reply('webhook: unknown op ' .. op)
