-- note_create: store an internal note on a thread and record note.added.
-- A note is activity on the thread: it moves updated_at (retention keeps
-- the thread) and the version.
--
-- KEYS[1]  the thread
-- ARGV[2]  thread id
-- ARGV[3]  note JSON, without thread_id and created_at
-- ARGV[4]  note id
-- ARGV[5]  actor
-- ARGV[6]  the caller's teams as a JSON array, or "" for no restriction
-- ARGV[7]  the caller's networks as a JSON array ([] = all)
-- ARGV[8]  the note's agent ('' = none): it must work the thread as stored
-- Returns  {"ok", now, note JSON} | {"not_found"}

expire_due(EXPIRE_LIMIT)
local t = load_live(ARGV[2])
if t == nil or not sees(t, ARGV[6], ARGV[7]) then return not_found('thread', ARGV[2]) end
if ARGV[8] ~= '' and not (agent_exists(ARGV[8]) and may_work(agent_scope(ARGV[8]), t)) then
  return not_found('thread', ARGV[2])
end
local before = copy(t)
local note = put_note(t, ARGV[3], ARGV[4], ARGV[5])
save_thread(before, t)
return ok(NOW, note)
