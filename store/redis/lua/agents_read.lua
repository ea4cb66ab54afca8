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
  out[#out + 1] = agent_read(id)
end
return out
