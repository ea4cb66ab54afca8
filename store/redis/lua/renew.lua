-- renew: extend the lease of the lock the token names (never shorten it:
-- the lease ends at the later of its end and now + the lease given).
--
-- KEYS[1]  the thread
-- ARGV[2]  thread id
-- ARGV[3]  lock token
-- ARGV[4]  lease in microseconds, from now
-- ARGV[5]  actor
-- ARGV[6]  "1" when the caller must hold the lock itself and see the
--          thread (store.LockParams.Holder), else ""
-- ARGV[7]  with ARGV[6]: the caller's teams as a JSON array, or "" for all
-- ARGV[8]  with ARGV[6]: the caller's networks as a JSON array ([] = all)
-- Returns  {"ok", now, thread, grant} | {"not_found"} | {"lock_lost"}

expire_due(EXPIRE_LIMIT)
local t = load_step(ARGV[2])
if t == nil then return not_found('thread', ARGV[2]) end
local holder = ARGV[6] == '1'
if holder and not sees(t, ARGV[7], ARGV[8]) then return not_found('thread', ARGV[2]) end
local err = check_token(t, ARGV[3], false)
if err then return err end
if holder then
  err = check_holder(t, ARGV[5])
  if err then return err end
end
local before = copy(t)
t.lock_exp = math.max(t.lock_exp, NOW + tonumber(ARGV[4]))
return ok(NOW, save_thread(before, t), grant_of(t))
