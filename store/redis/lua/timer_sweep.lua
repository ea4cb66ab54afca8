-- timer_sweep: raise SLA breaches (sla.breached once, priority urgent) and
-- close pending threads whose auto-close time has come.
--
-- KEYS[1]  the SLA index (unanswered threads scored by sla_due_at)
-- KEYS[2]  the auto-close index (pending threads scored by auto_close_at)
-- ARGV[2]  most threads of each kind to handle in this run
-- Returns  {"ok", breached, auto_closed, more "0"|"1", the server's date}

expire_due(EXPIRE_LIMIT)
local limit = tonumber(ARGV[2])
local closed = 0
local breached, due = breach_due(limit)
local dueClose = redis.call('ZRANGEBYSCORE', K.autoclose(), '-inf', NOW, 'LIMIT', 0, limit)
for _, id in ipairs(dueClose) do
  local t = load_thread(id)
  if t == nil or not autoclose_active(t) then
    redis.call('ZREM', K.autoclose(), id)
  elseif t.auto_close <= NOW then
    local before = copy(t)
    local team = team_conf(t.team)
    if not team or tonumber(team.auto_close_pending_seconds or 0) <= 0 then
      -- The team has turned auto-close off since: the thread stays pending.
      t.auto_close = nil
      save_thread(before, t)
    else
      t.status, t.auto_close = 'closed', nil
      event(t, 'thread.closed', 'system', {'reason', 'auto_close', 'from', 'pending'})
      save_thread(before, t)
      closed = closed + 1
    end
  end
end
-- Deletions of messages that never came are forgotten, and so are failed
-- reports on replies never reported sent.
-- forget drops up to limit entries of hash whose time in index has come,
-- and returns how many.
local function forget(hash, index)
  local gone = redis.call('ZRANGEBYSCORE', index, '-inf', NOW, 'LIMIT', 0, limit)
  for _, k in ipairs(gone) do
    redis.call('HDEL', hash, k)
    redis.call('ZREM', index, k)
  end
  return #gone
end
local gone = forget(K.tombstones(), K.tombexp())
local failed = forget(K.earlyfailed(), K.earlyfailedexp())
local more = '0'
if due == limit or #dueClose == limit or gone == limit or failed == limit then more = '1' end
return ok(breached, closed, more, date(NOW))
