-- lock_list: read the threads an agent holds locks on, and the server
-- time. Writes nothing; the caller keeps the live locks.
--
-- KEYS[1]  the agent's lock set
-- ARGV[2]  agent id
-- Returns  {"ok", now, thread hash...}

local out = {'ok', NOW}
for _, tid in ipairs(redis.call('SMEMBERS', K.agentlocks(ARGV[2]))) do
  out[#out + 1] = redis.call('HGETALL', K.thread(tid))
end
return out
