-- agents_read: read agents with the number of live locks each holds.
-- Writes nothing.
--
-- KEYS[1]    the agent set
-- ARGV[2..]  agent ids; none = every agent
-- Returns    {"ok", now, {agent hash, open locks}...} (an empty hash for a
--            missing agent)

local ids = {}
for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then ids = redis.call('SMEMBERS', K.agents()) end
local out = {'ok', NOW}
for _, id in ipairs(ids) do
  local n = 0
  for _, tid in ipairs(redis.call('SMEMBERS', K.agentlocks(id))) do
    local f = redis.call('HMGET', K.thread(tid), 'lock_agent', 'lock_exp')
    if f[1] == id and tonumber(f[2]) > NOW then n = n + 1 end
  end
  out[#out + 1] = {redis.call('HGETALL', K.agent(id)), n}
end
return out
