-- presence: record that agents were seen now ("touch"; one the sweep set
-- away is online again), or set online agents not seen for a while to away
-- ("sweep").
--
-- KEYS[1]  the agent set
-- ARGV[2]  "touch" or "sweep"
-- touch:   ARGV[3..] agent ids
-- sweep:   ARGV[3] idle time in microseconds
-- Returns  {"ok"} (touch) | {"ok", {ids set away...}} (sweep: one nested
--          array, as the ids may be more than Lua's stack takes as results)

if ARGV[2] == 'touch' then
  local back = false
  for i = 3, #ARGV do
    local key = K.agent(ARGV[i])
    local f = redis.call('HMGET', key, 'status', 'idle_away')
    if f[1] then
      redis.call('HSET', key, 'last_seen', istr(NOW))
      if f[1] == 'away' and f[2] == '1' then
        -- Back from idleness: online again.
        redis.call('HSET', key, 'status', 'online', 'status_at', istr(NOW))
        redis.call('HDEL', key, 'idle_away')
        back = true
      end
    end
  end
  if back then bump_config() end
  return ok()
end
local ttl = tonumber(ARGV[3])
local away = {}
for _, id in ipairs(redis.call('SMEMBERS', K.agents())) do
  local f = redis.call('HMGET', K.agent(id), 'status', 'status_at', 'last_seen')
  if f[1] == 'online' then
    local since = math.max(tonumber(f[2] or '0'), tonumber(f[3] or '0'))
    if since + ttl < NOW then
      redis.call('HSET', K.agent(id), 'status', 'away', 'status_at', istr(NOW), 'idle_away', '1')
      away[#away + 1] = id
    end
  end
end
if #away > 0 then bump_config() end
table.sort(away, lt)
return {'ok', away}
