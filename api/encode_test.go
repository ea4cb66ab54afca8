package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// TestEncodeJSON_HandEncodedMatchEncodingJSON: the responses written by
// hand are byte for byte what encoding/json wrote for them before (the
// reply's answer was a map), over random threads, messages and locks.
func TestEncodeJSON_HandEncodedMatchEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 2000 {
		th, m := storetest.RandThread(r), storetest.RandMessage(r)
		var g *store.Grant
		if r.IntN(2) == 0 {
			g = &store.Grant{Token: storetest.Pick(r, storetest.CodecStrings), Fence: r.Int64N(100),
				AgentID: storetest.Pick(r, storetest.CodecStrings), ExpiresAt: storetest.Pick(r, storetest.CodecTimes()[:6])}
		}
		for _, c := range answers(*m, th, g, r.IntN(2) == 0) {
			want, err := json.Marshal(c.was)
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeJSON(c.v)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s %d: err %v\n got %s\nwant %s", c.name, i, err, got, want)
			}
		}
	}
	// Anything else still goes through encoding/json.
	if got, err := encodeJSON(fiber.Map{"b": 1, "a": "<"}); err != nil || string(got) != `{"a":"\u003c","b":1}` {
		t.Fatalf("a map: %s, %v", got, err)
	}
}

// BenchmarkEncodeJSON: the ingest, claim and reply answers, by hand and
// through encoding/json, for a typical new thread and message.
func BenchmarkEncodeJSON(b *testing.B) {
	now := time.Now()
	due := now.Add(time.Hour)
	m := store.Message{ID: "0193b2c4-aaaa-7bbb-8ccc-123456789abc", ThreadID: "0193b2c4-aaaa-7bbb-8ccc-123456789abd",
		Direction: store.Inbound, Network: "instagram", ExternalID: "ig-1789000123", Kind: "dm",
		Text: "My order #123 arrived broken, I would like a refund please", Author: &store.Author{ID: "u-991", Handle: "@maria",
			Name: "María", Followers: 120}, SentAt: now, ReceivedAt: now}
	th := store.Thread{ID: m.ThreadID, Network: "instagram", Profile: "@acme", ExternalID: "ig-conv-42", Kind: "dm",
		Author: *m.Author, Status: store.StatusQueued, Team: "care", Priority: "high", Tags: []string{"complaint"},
		WaitingSince: now, SLADueAt: &due, LastInboundAt: now, CreatedAt: now, UpdatedAt: now, Version: 1}
	g := &store.Grant{Token: "0193b2c4-aaaa-7bbb-8ccc-123456789abe", Fence: 7, AgentID: "ana", ExpiresAt: due}
	for _, c := range answers(m, th, g, false) {
		b.Run(c.name+"/hand", func(b *testing.B) {
			for b.Loop() {
				if _, err := encodeJSON(c.v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/encoding-json", func(b *testing.B) {
			for b.Loop() {
				if _, err := json.Marshal(c.was); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// answer is a hand-encoded answer (v) and what encoding/json wrote for it
// before (was).
type answer struct {
	name   string
	v, was any
}

// answers are the ingest, lock and reply answers for a message, its thread
// and a lock.
func answers(m store.Message, th store.Thread, g *store.Grant, duplicate bool) []answer {
	res := inbox.IngestResult{Message: m, Thread: th, Duplicate: duplicate}
	return []answer{
		{"ingest", (*ingestView)(&res), res},
		{"lock", &lockView{Thread: th, Lock: g}, struct {
			Thread store.Thread `json:"thread"`
			Lock   *store.Grant `json:"lock,omitempty"`
		}{th, g}},
		{"reply", &replyView{Lock: g, Message: m, Thread: th}, fiber.Map{"message": m, "thread": th, "lock": g}},
	}
}
