-- session_create: store a browser session. The key expires with the
-- session (PEXPIREAT on the server's clock, the same clock reads check).
--
-- KEYS[1]  the session
-- ARGV[2]  key id
-- ARGV[3]  created in microseconds ("" = now)
-- ARGV[4]  expires in microseconds
-- ARGV[5]  lifetime in microseconds, or "": with it, the session is created
--          now and expires now + lifetime, on the server's clock (ARGV[3]
--          and ARGV[4] are then not used)
-- Returns  {"ok"}

local key = KEYS[1]
local created, expires = ARGV[3], tonumber(ARGV[4])
if ARGV[5] ~= '' then
  created, expires = istr(NOW), NOW + tonumber(ARGV[5])
end
if expires <= NOW then
  redis.call('DEL', key)
  return ok()
end
if created == '' then created = istr(NOW) end
redis.call('DEL', key)
redis.call('HSET', key, 'key_id', ARGV[2], 'created', created, 'expires', istr(expires))
redis.call('PEXPIREAT', key, math.floor(expires / 1000) + 1)
return ok()
