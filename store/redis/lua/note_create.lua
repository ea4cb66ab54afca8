-- note_create: store an internal note on a thread and record note.added.
-- A note is activity on the thread: it moves updated_at (retention keeps
-- the thread) and the version.
--
-- KEYS[1]  the thread
-- ARGV[2]  thread id
-- ARGV[3]  note JSON, without thread_id and created_at
-- ARGV[4]  note id
-- ARGV[5]  actor
-- Returns  {"ok", now, note JSON} | {"not_found"}

expire_due(EXPIRE_LIMIT)
local t = load_live(ARGV[2])
if t == nil then return not_found('thread', ARGV[2]) end
local before = copy(t)
local note = put_note(t, ARGV[3], ARGV[4], ARGV[5])
save_thread(before, t)
return ok(NOW, note)
