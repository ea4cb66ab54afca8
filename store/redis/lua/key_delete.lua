-- key_delete: revoke an API key at once; with a tombstone, store it with
-- the key's hash in the key's place.
--
-- KEYS[1]    the key
-- ARGV[2]    key id
-- ARGV[3..5] the tombstone: id, role, name ('' id: none)
-- Returns    {"ok"} | {"not_found"} | {"already_exists"}

local id, tomb = ARGV[2], ARGV[3]
if redis.call('EXISTS', K.key(id)) == 0 then return not_found('key', id) end
if tomb ~= '' and redis.call('EXISTS', K.key(tomb)) == 1 then return fail('already_exists', 'key ' .. tomb) end
local hash = redis.call('HGET', K.key(id), 'hash')
delete_key(id)
if tomb ~= '' then put_key(tomb, ARGV[4], ARGV[5], '', hash, '') end
return ok()
