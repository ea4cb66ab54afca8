-- queue_list: list queued threads of several queues merged in queue order,
-- after a cursor. Due leases are expired first, so threads whose lock ran
-- out are listed. Each queue is read with ZRANGEBYLEX from the cursor:
-- O(queues x (log n + limit)).
--
-- KEYS[1..n]  the queues, one per (team, network)
-- ARGV[2]     cursor: the member of the last thread returned, or ""
-- ARGV[3]     page size
-- Returns     {"ok", now, next cursor or "", thread hash...} |
--             {"sweep_first"} (more leases are due than one run expires:
--             the caller sweeps and calls again; see claim_next.lua)

local _, more = expire_due(EXPIRE_LIMIT)
if more then return {'sweep_first'} end
local limit = tonumber(ARGV[3])
local from = '-'
if ARGV[2] ~= '' then from = '(' .. ARGV[2] end
local all = {}
for i = 1, #KEYS do
  for _, m in ipairs(redis.call('ZRANGEBYLEX', KEYS[i], from, '+', 'LIMIT', 0, limit + 1)) do
    all[#all + 1] = m
  end
end
table.sort(all, lt)
local out = {'ok', NOW, ''}
local n = math.min(limit, #all)
for i = 1, n do
  out[#out + 1] = redis.call('HGETALL', K.thread(string.sub(all[i], QMEMBER_ID_AT)))
end
if #all > limit then out[3] = all[limit] end
return out
