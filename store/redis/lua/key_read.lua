-- key_read: find a key by the hex SHA-256 of its secret (with its agent,
-- for "key_agent"), or a session by the hex SHA-256 of its cookie with its
-- key and the key's agent ("session_agent"), with the server time. Writes
-- nothing.
--
-- KEYS[1]  the key hash index
-- ARGV[2]  "key", "key_agent" or "session_agent"
-- ARGV[3]  hex SHA-256
-- Returns  {"ok", now, key hash[, {agent hash, live locks}]} (the agent for
--          "key_agent" and a key with one) |
--          {"ok", now, session hash, key hash[, {agent hash, live locks}]}
--          for "session_agent" | {"not_found"}

-- with_agent appends to out the agent of the key whose fields are f, if
-- it has one.
local function with_agent(out, f)
  for i = 1, #f, 2 do
    if f[i] == 'agent_id' and f[i + 1] ~= '' then out[#out + 1] = agent_read(f[i + 1]) end
  end
  return out
end

if ARGV[2] == 'key' or ARGV[2] == 'key_agent' then
  local id = redis.call('HGET', K.keyhash(), ARGV[3])
  if not id then return not_found('key', 'by hash') end
  local f = redis.call('HGETALL', K.key(id))
  if #f == 0 then return not_found('key', id) end
  if ARGV[2] == 'key_agent' then return with_agent(ok(NOW, f), f) end
  return ok(NOW, f)
end
local f = redis.call('HGETALL', K.session(ARGV[3]))
if #f == 0 then return not_found('session', 'by hash') end
local id
for i = 1, #f, 2 do
  if f[i] == 'key_id' then id = f[i + 1] end
end
local kf = redis.call('HGETALL', K.key(id or ''))
if #kf == 0 then return not_found('key', tostring(id)) end
return with_agent(ok(NOW, f, kf), kf)
