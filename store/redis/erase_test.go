package redis

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store"
)

// An erased thread leaves no byte of its data in what Redis keeps: not in
// the events stream's memory (XDEL only flags a stream entry, its bytes
// stay in the node), so not in a DUMP or an RDB snapshot, and not in the
// AOF once it is rewritten. (Review helper's finding, on an uncompressed
// server so the bytes can be searched for.)
func TestErase_NoByteLeftInTheStreamOrARewrittenAOF(t *testing.T) {
	requireRedis(t)
	dir := t.TempDir()
	rs, err := startRedisServer(dir, "", "--rdbcompression", "no")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rs.kill)
	s := openStoreOpts(t, "redis://"+rs.addr+"/0", Options{Prefix: "erase", Logger: quietLog})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = s.TeamCreate(ctx, store.Team{ID: "care", Name: "care", Function: "care", Strategy: "claim"})
	must(t, err)
	const secret = "my-home-address-is-1-main-street"
	in := func(id, text string) store.IngestParams {
		return store.IngestParams{
			Message: store.Message{ID: "m-" + id, Network: "twitter", ExternalID: "x-" + id, Kind: "dm",
				Author: &store.Author{ID: "u-" + id, Handle: "@" + id}, Text: text},
			Profile: "@acme", ThreadExternalID: "c-" + id, NewThreadID: "t-" + id, Route: store.Route{Team: "care"}}
	}
	res, err := s.ThreadIngest(ctx, []store.IngestParams{in("gone", secret), in("kept", "hello")})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatal(err, res)
	}
	_, err = s.AgentCreate(ctx, store.Agent{ID: "ana", Name: "ana", Role: store.RoleAgent, Teams: []string{"care"}, Capacity: 5, Timezone: "UTC"},
		store.Key{ID: "k-ana", Role: store.RoleAgent, Name: "ana", AgentID: "ana", Hash: []byte("0123456789abcdef0123456789abcdef")})
	must(t, err)
	g, err := s.ThreadClaim(ctx, store.ClaimParams{ThreadID: "t-gone", AgentID: "ana", TTL: time.Minute})
	must(t, err)
	_, err = s.ThreadReply(ctx, store.ReplyParams{ThreadID: "t-gone", Token: g.Lock.Token, Actor: "ana",
		Message: store.Message{ID: "out-1", Kind: "dm", Text: "we will visit " + secret}})
	must(t, err)
	must(t, s.ThreadErase(ctx, store.EraseParams{ThreadID: "t-gone", Actor: "admin"}))

	c := goredis.NewClient(&goredis.Options{Addr: rs.addr})
	defer c.Close()
	raw, err := c.Dump(ctx, s.k.events()).Result()
	must(t, err)
	if !strings.Contains(raw, "t-kept") {
		t.Fatal("the stream's DUMP does not have the kept thread: it cannot show what is gone")
	}
	if i := strings.Index(raw, secret); i >= 0 {
		t.Errorf("DUMP of the event stream holds the erased thread: %q", raw[max(0, i-80):min(len(raw), i+80)])
	}

	before := aofRewrites(t, c)
	must(t, c.BgRewriteAOF(ctx).Err())
	deadline := time.Now().Add(15 * time.Second)
	for aofRewrites(t, c) == before || !strings.Contains(c.Info(ctx, "persistence").Val(), "aof_rewrite_in_progress:0") {
		if time.Now().After(deadline) {
			t.Fatal("the AOF rewrite did not finish")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The files the manifest names now (older ones are unlinked in the
	// background).
	aofDir := filepath.Join(dir, "appendonlydir")
	mf, err := os.Open(filepath.Join(aofDir, "appendonly.aof.manifest"))
	must(t, err)
	defer mf.Close()
	sc := bufio.NewScanner(mf)
	n := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[0] != "file" || f[5] == "h" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(aofDir, f[1]))
		must(t, err)
		n++
		if i := bytes.Index(b, []byte(secret)); i >= 0 {
			t.Errorf("after BGREWRITEAOF, %s holds the erased thread: %q", f[1], b[max(0, i-80):min(len(b), i+80)])
		}
	}
	if n == 0 {
		t.Fatal("the AOF manifest names no file")
	}
}

// aofRewrites is INFO's count of AOF rewrites since the server started.
func aofRewrites(t *testing.T, c *goredis.Client) string {
	t.Helper()
	for _, line := range strings.Split(c.Info(context.Background(), "persistence").Val(), "\r\n") {
		if v, ok := strings.CutPrefix(line, "aof_rewrites:"); ok {
			return v
		}
	}
	t.Fatal("INFO persistence has no aof_rewrites")
	return ""
}

// oldEvent writes an event as stores before 2026-11-24 did: the
// event in the log's entry, its id in the thread's index.
var oldEvent = testScript(`
local t = load_thread(ARGV[2])
local id, sid, json = event_json(t, 'note.added', 'ana', {'note_id', ARGV[3]})
redis.call('XADD', K.events(), sid .. '-0', 'e', json)
redis.call('ZADD', K.threadevents(t.id), id, sid)
return sid`)

// Events written before the log's entries only named their thread are
// still listed, in order with the new ones, and go when their thread is
// erased.
func TestEvents_EntriesOfTheOldFormatAreReadAndErased(t *testing.T) {
	requireRedis(t)
	s := openStore(t, newPrefix())
	ctx := ctxT(t)
	careThread(t, s)
	old, err := oldEvent.Run(ctx, s.rdb, []string{s.k.meta()}, s.k.p, "t-1", "note-old").Text()
	must(t, err)
	_, err = s.NoteCreate(ctx, store.Note{ID: "note-new", ThreadID: "t-1", Actor: "ana", Text: "x"}, nil, nil)
	must(t, err)

	for _, threadID := range []string{"", "t-1"} {
		evs, err := s.EventList(ctx, store.EventFilter{ThreadID: threadID})
		must(t, err)
		var got []string
		for _, ev := range evs {
			got = append(got, ev.Type+" "+fmt.Sprint(ev.Data["note_id"]))
		}
		want := []string{"thread.created <nil>", "message.received <nil>", "thread.routed <nil>", "note.added note-old", "note.added note-new"}
		if strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Fatalf("EventList(%q) = %v, want %v", threadID, got, want)
		}
		if fmt.Sprint(evs[3].ID) != old {
			t.Fatalf("the old event's id = %d, want %s", evs[3].ID, old)
		}
	}

	must(t, s.ThreadErase(ctx, store.EraseParams{ThreadID: "t-1", Actor: "admin"}))
	evs, err := s.EventList(ctx, store.EventFilter{})
	must(t, err)
	if len(evs) != 1 || evs[0].Type != store.EventThreadErased || evs[0].ThreadID != "t-1" {
		t.Fatalf("events after the erase: %+v", evs)
	}
	n, err := s.rdb.XLen(ctx, s.k.events()).Result()
	must(t, err)
	if n != 1 {
		t.Fatalf("the log has %d entries after the erase, want thread.erased only", n)
	}
}
