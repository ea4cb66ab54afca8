-- reply: send an outbound message through the lock. Only the holder of the
-- current lock replies; an idempotency key (scoped to the actor) makes a
-- retry return the first reply.
--
-- KEYS[1]  the thread
-- KEYS[2]  the idempotency hash of keys written before they expired
--          (actor \0 thread \0 key -> message id; actor \0 key before keys
--          named their thread); new keys are strings of their own, K.idem,
--          that expire after ARGV[13]
-- ARGV[2]  thread id
-- ARGV[3]  lock token
-- ARGV[4]  actor (the agent replying)
-- ARGV[5]  idempotency key, or ""
-- ARGV[6]  message id
-- ARGV[7]  message JSON, without kind, thread_id, direction, network,
--          agent_id, sent_at, received_at and delivery
-- ARGV[8]  "1" to close the thread with the reply
-- ARGV[9]  the message's kind, or "" for the thread's
-- ARGV[10] "1" when the caller sees only some teams and networks
--          (store.ReplyParams.Scoped), else ""
-- ARGV[11] with ARGV[10]: the caller's teams as a JSON array, or "" for all
-- ARGV[12] with ARGV[10]: the caller's networks as a JSON array ([] = all)
-- ARGV[13] how long an idempotency key is kept, in ms (store.IdempotencyTTL)
-- Returns  {"ok", now, repeated "0"|"1", message hash, thread, grant} |
--          {"not_found"} | {"lock_lost"}

expire_due(EXPIRE_LIMIT)
local actor = ARGV[4]
local t = nil
if ARGV[10] == '1' then
  t = load_step(ARGV[2])
  if t == nil or not sees(t, ARGV[11], ARGV[12]) then return not_found('thread', ARGV[2]) end
end
local idem = nil
if ARGV[5] ~= '' then
  -- The key is the actor's for this thread: the same key on another thread
  -- is another reply, and never answers with the first thread (which the
  -- caller may no longer see). Keys written without the thread still
  -- replay on their own thread.
  idem = actor .. '\0' .. ARGV[2] .. '\0' .. ARGV[5]
  local mid = redis.call('GET', K.idem(idem)) or redis.call('HGET', K.idempotency(), idem) or
    redis.call('HGET', K.idempotency(), actor .. '\0' .. ARGV[5])
  if mid and redis.call('HGET', K.message(mid), 'thread') == ARGV[2] then
    local t = load_live(ARGV[2])
    if t == nil then return not_found('thread of message', mid) end
    local g = {}
    if t.lock_agent == actor then g = grant_of(t) end
    return ok(NOW, '1', redis.call('HGETALL', K.message(mid)), flat(t), g)
  end
end
t = t or load_step(ARGV[2])
if t == nil then return not_found('thread', ARGV[2]) end
local err = check_token(t, ARGV[3], false)
if err then return err end
-- Only the holder replies: the reply must not go out in the holder's name.
err = check_holder(t, actor)
if err then return err end
local before = copy(t)
local mid = ARGV[6]
local pending = '{"status":"pending","external_id":"","error":""}'
local kind = ARGV[9]
if kind == '' then kind = t.kind end
local mj = jappend(ARGV[7], {'kind', kind, 'thread_id', t.id, 'direction', 'outbound', 'network', t.network,
  'agent_id', t.lock_agent, 'sent_at', T(NOW), 'received_at', T(NOW)})
local mhash = {'json', mj, 'thread', t.id, 'dir', 'outbound', 'delivery', pending}
redis.call('HSET', K.message(mid), unpack(mhash))
redis.call('RPUSH', K.threadmsgs(t.id), mid)
if idem then redis.call('SET', K.idem(idem), mid, 'PX', ARGV[13]) end
local now = NOW
if now < t.last_in then
  -- The clock stepped back (or an inbound was nudged past a reply of the
  -- same run): the reply still comes after it.
  now = t.last_in
end
t.last_out = now
if t.frt == nil then
  t.frt = now
  redis.call('RPUSH', K.frt(t.team), string.format('%.6f', (now - t.created) / 1000000))
  redis.call('LTRIM', K.frt(t.team), -500, -1)
end
redis.call('HINCRBY', K.counters(), c_replies(t.lock_agent, date(now)), 1)
event(t, 'thread.replied', actor, {'message_id', mid, 'agent_id', t.lock_agent, 'fence', t.lock_fence,
  'message', RAW(jappend(mj, {'delivery', RAW(pending)}))})
if ARGV[8] == '1' then
  local holder = t.lock_agent
  clear_lock(t)
  t.status, t.auto_close = 'closed', nil
  event(t, 'thread.closed', actor, {'agent_id', holder, 'from', before.status})
end
local ft = save_thread(before, t)
return ok(NOW, '0', mhash, ft, grant_of(t))
