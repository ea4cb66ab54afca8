-- session_create: store a browser session. The key expires with the
-- session (PEXPIREAT on the server's clock, the same clock reads check).
--
-- KEYS[1]  the session
-- ARGV[2]  key id
-- ARGV[3]  created in microseconds ("" = now)
-- ARGV[4]  expires in microseconds
-- Returns  {"ok"}

local key = KEYS[1]
local expires = tonumber(ARGV[4])
if expires <= NOW then
  redis.call('DEL', key)
  return ok()
end
local created = ARGV[3]
if created == '' then created = istr(NOW) end
redis.call('DEL', key)
redis.call('HSET', key, 'key_id', ARGV[2], 'created', created, 'expires', ARGV[4])
redis.call('PEXPIREAT', key, math.floor(expires / 1000) + 1)
return ok()
