-- key_read: find a key by the hex SHA-256 of its secret, or a session by
-- the hex SHA-256 of its cookie, with the server time. Writes nothing.
--
-- KEYS[1]  the key hash index
-- ARGV[2]  "key" or "session"
-- ARGV[3]  hex SHA-256
-- Returns  {"ok", now, hash} | {"not_found"}

if ARGV[2] == 'key' then
  local id = redis.call('HGET', K.keyhash(), ARGV[3])
  if not id then return not_found('key', 'by hash') end
  local f = redis.call('HGETALL', K.key(id))
  if #f == 0 then return not_found('key', id) end
  return ok(NOW, f)
end
local f = redis.call('HGETALL', K.session(ARGV[3]))
if #f == 0 then return not_found('session', 'by hash') end
return ok(NOW, f)
