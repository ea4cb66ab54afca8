-- key_read: find a key by the hex SHA-256 of its secret (with its agent,
-- for "key_agent"), or a session by the hex SHA-256 of its cookie, with
-- the server time. Writes nothing.
--
-- KEYS[1]  the key hash index
-- ARGV[2]  "key", "key_agent" or "session"
-- ARGV[3]  hex SHA-256
-- Returns  {"ok", now, hash} | {"ok", now, key hash, {agent hash, live
--          locks}} for "key_agent" and a key with an agent | {"not_found"}

if ARGV[2] == 'key' or ARGV[2] == 'key_agent' then
  local id = redis.call('HGET', K.keyhash(), ARGV[3])
  if not id then return not_found('key', 'by hash') end
  local f = redis.call('HGETALL', K.key(id))
  if #f == 0 then return not_found('key', id) end
  if ARGV[2] == 'key_agent' then
    for i = 1, #f, 2 do
      if f[i] == 'agent_id' and f[i + 1] ~= '' then return ok(NOW, f, agent_read(f[i + 1])) end
    end
  end
  return ok(NOW, f)
end
local f = redis.call('HGETALL', K.session(ARGV[3]))
if #f == 0 then return not_found('session', 'by hash') end
return ok(NOW, f)
