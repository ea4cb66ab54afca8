package redis

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// TestJSONWithout_MatchesAMapRoundTrip: jsonWithout writes what decoding
// the encoding into a map, deleting the fields and encoding the map again
// writes, byte for byte (members sorted, values as encoded).
func TestJSONWithout_MatchesAMapRoundTrip(t *testing.T) {
	reference := func(v any, drop ...string) string {
		b, _ := json.Marshal(v)
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range drop {
			delete(m, k)
		}
		out, _ := json.Marshal(m)
		return string(out)
	}
	at := time.Date(2026, 11, 23, 2, 10, 0, 123, time.FixedZone("x", 3600))
	tricky := `quote " backslash \ <script>&amp; ctl ` + "\x01\n\t" + ` ação 🎉 line` + "\u2028"
	for i, c := range []struct {
		v    any
		drop []string
	}{
		{store.Message{ID: "m1", ThreadID: "t1", Direction: "inbound", Network: "x", ExternalID: tricky, Kind: "dm",
			Author: &store.Author{ID: "u", Name: tricky, Followers: 12}, Text: tricky,
			Attachments: []store.Attachment{{Type: "image", URL: "https://x.test/a?b=1&c=<2>"}}, SentAt: at, ReceivedAt: at,
			Delivery: &store.Delivery{Status: "sent"}}, []string{"thread_id", "received_at", "delivery"}},
		{store.Message{ID: "m2", Text: "no attachments"}, []string{"thread_id", "direction", "network", "agent_id", "sent_at", "received_at", "delivery"}},
		{store.Agent{ID: "ana", Name: tricky, Teams: []string{"care"}, Capacity: 3, Shifts: []routing.Shift{{Days: []string{"mon"}, Start: "09:00", End: "17:00"}},
			TimeOff: []routing.TimeOff{{From: at, To: at}}, Status: "online", LastSeenAt: at}, []string{"status", "open_locks", "status_at", "created_at", "updated_at"}},
		{store.Team{ID: "care", Name: tricky, FallbackTeam: "triage", CreatedAt: at}, []string{"created_at", "updated_at"}},
		{store.Team{ID: "all kept"}, nil},
		{store.Team{ID: "nothing to drop"}, []string{"no_such_field"}},
	} {
		got, err := jsonWithout(c.v, c.drop...)
		want := reference(c.v, c.drop...)
		if len(c.drop) == 0 {
			b, _ := json.Marshal(c.v) // as encoded, in struct order
			want = string(b)
		}
		if err != nil || got != want {
			t.Fatalf("case %d: %v\n got %s\nwant %s", i, err, got, want)
		}
	}
}
