-- stats: per team the status counters, SLA breaches, the oldest waiting
-- queued thread (one ZRANGEBYLEX per queue and priority) and recent
-- first-response times; per agent live locks and replies today (UTC).
-- Due leases are expired first, so a lock that ran out counts as released.
--
-- KEYS[1]  the counters hash
-- Returns  {"ok", now, {team, queued, assigned, pending, breaches,
--          oldest waiting_since or "", {first-response seconds...}}...,
--          "agents", {agent, open locks, replies today}...}

for _ = 1, 100 do
  local _, more = expire_due(EXPIRE_LIMIT)
  if not more then break end
end
local function counter(f) return tonumber(redis.call('HGET', K.counters(), f) or '0') end
local out = {'ok', NOW}
for _, team in ipairs(redis.call('SMEMBERS', K.teams())) do
  local oldest = nil
  for _, nw in ipairs(NETWORKS) do
    for r = 0, 3 do
      local m = redis.call('ZRANGEBYLEX', K.queue(team, nw), '[' .. r .. '|', '(' .. r .. '}', 'LIMIT', 0, 1)[1]
      if m then
        local ws = tonumber(string.sub(m, 3, 19))
        if oldest == nil or ws < oldest then oldest = ws end
      end
    end
  end
  local os = ''
  if oldest then os = istr(oldest) end
  out[#out + 1] = {team, counter(c_status(team, 'queued')), counter(c_status(team, 'assigned')),
    counter(c_status(team, 'pending')), counter(c_breaches(team)), os, redis.call('LRANGE', K.frt(team), 0, -1)}
end
out[#out + 1] = 'agents'
local today = date(NOW)
for _, id in ipairs(redis.call('SMEMBERS', K.agents())) do
  local n = 0
  for _, tid in ipairs(redis.call('SMEMBERS', K.agentlocks(id))) do
    local f = redis.call('HMGET', K.thread(tid), 'lock_agent', 'lock_exp')
    if f[1] == id and tonumber(f[2]) > NOW then n = n + 1 end
  end
  out[#out + 1] = {id, n, counter(c_replies(id, today))}
end
return out
