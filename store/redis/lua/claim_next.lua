-- claim_next: lock the first queued thread of the given queues for an
-- agent, in queue order across all of them. Each queue is a sorted set
-- whose members sort as (priority, waiting_since, thread id), so its head is
-- ZRANGE 0 0, O(log n); the script compares one head per queue.
--
-- KEYS[1]     the agent
-- KEYS[2..n]  the queues to merge: one per (team, network) the agent works
-- ARGV[2]     agent id
-- ARGV[3]     lease in microseconds
-- ARGV[4]     lock token
-- Returns     {"ok", now, thread, grant} | {"not_found"} (agent) |
--             {"capacity"} | {"empty"} | {"sweep_first"}

-- Claim-next decides which thread an agent gets next, so it expires more
-- than another step does (up to ten rounds): when many leases run out at
-- once and the sweeper has not caught up, a thread must not wait behind
-- its own expired lease while others are handed out. More than that is
-- left to a sweep (which runs in scripts of its own, so no one script
-- blocks Redis for long): "sweep_first" asks the caller to sweep and call
-- again. Only expiries have been written then, as any step writes them.
local more = false
for _ = 1, 10 do
  _, more = expire_due(EXPIRE_LIMIT)
  if not more then break end
end
if more then return {'sweep_first'} end
-- A thread past its first-response deadline is urgent: breached before the
-- choice, as the sweep would, it goes first; bbolt breaches them all. The
-- sweep keeps this short; a backlog of more than ten rounds is left to it,
-- as expiries are ("sweep_first": the caller sweeps and calls again).
for _ = 1, 10 do
  local _, looked = breach_due(EXPIRE_LIMIT)
  more = looked == EXPIRE_LIMIT
  if not more then break end
end
if more then return {'sweep_first'} end
local agent = ARGV[2]
if not agent_exists(agent) then return not_found('agent', agent) end
local err = check_capacity(agent, '')
if err then return err end
local skip = {} -- queues of teams or networks the agent, as it is now, no longer works
local scope = agent_scope(agent)
while true do
  local best, bestkey, besti
  for i = 2, #KEYS do
    local m = not skip[i] and redis.call('ZRANGE', KEYS[i], 0, 0)[1]
    if m and (best == nil or lt(m, best)) then best, bestkey, besti = m, KEYS[i], i end
  end
  if best == nil then return fail('empty', 'nothing to claim') end
  local t = load_thread(string.sub(best, QMEMBER_ID_AT))
  local current = t and in_queue(t) and qmember(t) == best and K.queue(t.team, t.network) == bestkey
  if current and not may_work(scope, t) then
    skip[besti] = true
  elseif current then
    local before = copy(t)
    grant(t, agent, tonumber(ARGV[3]), ARGV[4])
    event(t, 'thread.claimed', agent, {'agent_id', agent, 'fence', t.lock_fence,
      'expires_at', T(t.lock_exp), 'from', before.status})
    return ok(NOW, save_thread(before, t), grant_of(t))
  else
    -- An entry no thread backs (save_thread never leaves one): drop it.
    redis.call('ZREM', bestkey, best)
  end
end
