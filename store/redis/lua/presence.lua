-- presence: record that agents were seen now ("touch"), or set online
-- agents not seen for a while to away ("sweep").
--
-- KEYS[1]  the agent set
-- ARGV[2]  "touch" or "sweep"
-- touch:   ARGV[3..] agent ids
-- sweep:   ARGV[3] idle time in microseconds
-- Returns  {"ok"} (touch) | {"ok", {ids set away...}} (sweep: one nested
--          array, as the ids may be more than Lua's stack takes as results)

if ARGV[2] == 'touch' then
  for i = 3, #ARGV do
    if redis.call('EXISTS', K.agent(ARGV[i])) == 1 then
      redis.call('HSET', K.agent(ARGV[i]), 'last_seen', istr(NOW))
    end
  end
  return ok()
end
local ttl = tonumber(ARGV[3])
local away = {}
for _, id in ipairs(redis.call('SMEMBERS', K.agents())) do
  local f = redis.call('HMGET', K.agent(id), 'status', 'status_at', 'last_seen')
  if f[1] == 'online' then
    local since = math.max(tonumber(f[2] or '0'), tonumber(f[3] or '0'))
    if since + ttl < NOW then
      redis.call('HSET', K.agent(id), 'status', 'away', 'status_at', istr(NOW))
      away[#away + 1] = id
    end
  end
end
if #away > 0 then bump_config() end
table.sort(away, lt)
return {'ok', away}
