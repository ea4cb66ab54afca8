-- key_create: store an API key; with "bootstrap" only if no admin key
-- exists yet.
--
-- KEYS[1]    the key
-- KEYS[2]    the key hash index (hex SHA-256 -> key id)
-- ARGV[2]    "create" or "bootstrap"
-- ARGV[3..8] the key: id, role, name, agent id, hex SHA-256, created ("" = now)
-- Returns    {"ok", created "0"|"1", created_at} | {"already_exists"}

expire_due(EXPIRE_LIMIT)
if ARGV[2] == 'bootstrap' then
  for _, kid in ipairs(redis.call('SMEMBERS', K.keys())) do
    if redis.call('HGET', K.key(kid), 'role') == 'admin' then return ok('0', '') end
  end
end
if not key_free(ARGV[3], ARGV[7]) then return fail('already_exists', 'key ' .. ARGV[3]) end
put_key(ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
return ok('1', redis.call('HGET', K.key(ARGV[3]), 'created'))
