-- key_delete: revoke an API key at once.
--
-- KEYS[1]  the key
-- ARGV[2]  key id
-- Returns  {"ok"} | {"not_found"}

local id = ARGV[2]
if redis.call('EXISTS', K.key(id)) == 0 then return not_found('key', id) end
delete_key(id)
return ok()
