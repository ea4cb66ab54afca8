package bolt

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// The hand-written encoders must write exactly what encoding/json writes:
// records written before them, and by them, are read with json.Unmarshal.

var codecStrings = []string{"", "plain", "ação ü 日本語 🎉", `quote " backslash \ slash /`, "<script>&amp;</script>",
	"ctl \x00\x01\x1f\x7f \b\f\n\r\t", "bad utf8 \xff\xfe \xc3", "line\u2028sep\u2029", "\u00e9\u0301", "tab\there"}

func codecTimes() []time.Time {
	base := time.Date(2026, 11, 22, 21, 42, 7, 123456789, time.UTC)
	return []time.Time{base, base.Truncate(time.Second), base.Truncate(time.Millisecond), {},
		base.In(time.FixedZone("plus", 5*3600+30*60)), base.In(time.FixedZone("minus", -8*3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(0, 1, 1, 0, 0, 0, 1, time.UTC)}
}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func maybe[T any](r *rand.Rand, v T) *T {
	if r.IntN(2) == 0 {
		return nil
	}
	return &v
}

func randStrings(r *rand.Rand) []string {
	switch r.IntN(3) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	out := make([]string, 1+r.IntN(3))
	for i := range out {
		out[i] = pick(r, codecStrings)
	}
	return out
}

func randThread(r *rand.Rand) *threadRec {
	ts := codecTimes()
	t := &threadRec{Thread: store.Thread{ID: pick(r, codecStrings), Network: pick(r, codecStrings), Profile: pick(r, codecStrings),
		ExternalID: pick(r, codecStrings), Kind: pick(r, codecStrings),
		Author: store.Author{ID: pick(r, codecStrings), Handle: pick(r, codecStrings), Name: pick(r, codecStrings),
			Followers: r.IntN(1 << 20), Verified: r.IntN(2) == 0},
		Status: pick(r, codecStrings), Team: pick(r, codecStrings), Priority: pick(r, codecStrings), Tags: randStrings(r),
		Assignee: maybe(r, pick(r, codecStrings)), WaitingSince: pick(r, ts), FirstResponseAt: maybe(r, pick(r, ts)),
		SLADueAt: maybe(r, pick(r, ts)), SLABreached: r.IntN(2) == 0, LastInboundAt: pick(r, ts), LastOutboundAt: maybe(r, pick(r, ts)),
		AutoCloseAt: maybe(r, pick(r, ts)), CreatedAt: pick(r, ts), UpdatedAt: pick(r, ts), Version: r.Int64N(1000) - 3},
		LockToken: pick(r, codecStrings), MaxFence: r.Int64N(100), Seq: r.Uint64()}
	if r.IntN(2) == 0 {
		t.Lock = &store.Lock{AgentID: pick(r, codecStrings), Fence: r.Int64N(50), ExpiresAt: pick(r, ts), Token: "not-encoded"}
	}
	return t
}

func randMessage(r *rand.Rand) *store.Message {
	ts := codecTimes()
	m := &store.Message{ID: pick(r, codecStrings), ThreadID: pick(r, codecStrings), Direction: pick(r, codecStrings),
		Network: pick(r, codecStrings), ExternalID: pick(r, codecStrings), Kind: pick(r, codecStrings), AgentID: pick(r, codecStrings),
		Text: pick(r, codecStrings) + pick(r, codecStrings), Language: pick(r, codecStrings), SentAt: pick(r, ts), ReceivedAt: pick(r, ts)}
	if r.IntN(2) == 0 {
		m.Author = &store.Author{ID: pick(r, codecStrings), Handle: pick(r, codecStrings), Followers: r.IntN(10)}
	}
	switch r.IntN(3) {
	case 1:
		m.Attachments = []store.Attachment{}
	case 2:
		m.Attachments = []store.Attachment{{Type: "image", URL: "https://x.test/a?b=1&c=<2>"}, {Type: pick(r, codecStrings)}}
	}
	if r.IntN(2) == 0 {
		m.Delivery = &store.Delivery{Status: pick(r, codecStrings), ExternalID: pick(r, codecStrings), Error: pick(r, codecStrings)}
	}
	return m
}

func randEvent(r *rand.Rand) *store.Event {
	ts := codecTimes()
	raw, _ := json.Marshal(randMessage(r))
	values := []any{nil, pick(r, codecStrings), r.Int64N(1 << 40), r.IntN(100), r.IntN(2) == 0, pick(r, ts), maybe(r, pick(r, ts)),
		randStrings(r), json.RawMessage(raw), *randMessage(r), 1.5, map[string]any{"nested": []any{1, "x"}}}
	ev := &store.Event{ID: r.Uint64(), Type: pick(r, codecStrings), ThreadID: pick(r, codecStrings), Actor: pick(r, codecStrings),
		At: pick(r, ts), Team: pick(r, codecStrings), Network: pick(r, codecStrings), Agent: pick(r, codecStrings)}
	if r.IntN(5) > 0 {
		ev.Data = map[string]any{}
		for range r.IntN(10) {
			ev.Data[pick(r, codecStrings)+pick(r, []string{"a", "b", "to_agent", "from"})] = pick(r, values)
		}
	}
	return ev
}

func TestCodec_MatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		th := randThread(r)
		want, err := json.Marshal(th)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeThread([]byte("prefix"), th)
		if err != nil || !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("thread %d: err %v\n got %s\nwant prefix%s", i, err, got, want)
		}

		m := randMessage(r)
		want, _ = json.Marshal(m)
		got, err = encodeMessage(m)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("message %d: err %v\n got %s\nwant %s", i, err, got, want)
		}
		parts, err := encodeMessageParts(m)
		if err != nil {
			t.Fatal(err)
		}
		m.ThreadID, m.ReceivedAt = "another <thread>", codecTimes()[r.IntN(6)]
		want, _ = json.Marshal(m)
		if got, err = parts.encode(m.ThreadID, m.ReceivedAt); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("message parts %d: err %v\n got %s\nwant %s", i, err, got, want)
		}

		ev := randEvent(r)
		want, err = json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if got, err = encodeEvent(nil, ev); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("event %d: err %v\n got %s\nwant %s", i, err, got, want)
		}
	}
}

func TestCodec_FailsWhereEncodingJSONFails(t *testing.T) {
	for _, at := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("odd", 24*3600+60)), time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("secs", 3601))} {
		th := &threadRec{Thread: store.Thread{ID: "t", WaitingSince: at}}
		_, jerr := json.Marshal(th)
		_, err := encodeThread(nil, th)
		if (jerr == nil) != (err == nil) {
			t.Fatalf("%v: json.Marshal err %v, encodeThread err %v", at, jerr, err)
		}
		ev := &store.Event{Data: map[string]any{"at": at}}
		_, jerr = json.Marshal(ev)
		_, err = encodeEvent(nil, ev)
		if (jerr == nil) != (err == nil) {
			t.Fatalf("%v: json.Marshal err %v, encodeEvent err %v", at, jerr, err)
		}
	}
	bad := &store.Event{Data: map[string]any{"f": func() {}}}
	if _, err := encodeEvent(nil, bad); err == nil {
		t.Fatal("an unencodable data value encoded")
	}
}

func FuzzCodec_String(f *testing.F) {
	for _, s := range codecStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

// TestDecode_MatchesEncodingJSON: records read back with unmarshal (the
// store's faster decoder) are what encoding/json would decode, for random
// threads, messages, events, agents, teams and keys as the store writes
// them. On damaged records (cut short, a byte changed) the two may differ
// on what they refuse (segmentio parses times itself: it takes an invalid
// escape inside one, and refuses a comma before the fraction, which
// time.Parse takes), but what both accept decodes the same.
func TestDecode_MatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	lenient := false
	same := func(i int, what string, data []byte, fresh func() any) {
		t.Helper()
		want, got := fresh(), fresh()
		errWant, errGot := json.Unmarshal(data, want), unmarshal(data, got)
		if lenient && (errWant != nil || errGot != nil) {
			return
		}
		if (errWant == nil) != (errGot == nil) {
			t.Fatalf("%s %d: encoding/json says %v, unmarshal says %v\n%s", what, i, errWant, errGot, data)
		}
		if errWant == nil && !reflect.DeepEqual(want, got) {
			t.Fatalf("%s %d:\n got %+v\nwant %+v\n%s", what, i, got, want, data)
		}
	}
	for i := range 3000 {
		ts := codecTimes()[:6] // years 0 and 9999 aside: encoding/json writes them, both read them
		th, _ := encodeThread(nil, randThread(r))
		same(i, "thread", th, func() any { return new(threadRec) })
		m, _ := encodeMessage(randMessage(r))
		same(i, "message", m, func() any { return new(store.Message) })
		ev, _ := encodeEvent(nil, randEvent(r))
		same(i, "event", ev, func() any { return new(store.Event) })
		a := store.Agent{ID: pick(r, codecStrings), Name: pick(r, codecStrings), Role: pick(r, codecStrings),
			Teams: randStrings(r), Networks: randStrings(r), Capacity: r.IntN(50), Timezone: pick(r, codecStrings),
			Status: pick(r, codecStrings), CreatedAt: pick(r, ts), UpdatedAt: pick(r, ts), StatusAt: pick(r, ts),
			LastOfferedAt: pick(r, ts), LastSeenAt: pick(r, ts)}
		if r.IntN(2) == 0 {
			a.Shifts = []routing.Shift{{Days: randStrings(r), Start: "09:00", End: pick(r, codecStrings)}}
			a.TimeOff = []routing.TimeOff{{From: pick(r, ts), To: pick(r, ts)}}
		}
		ad, _ := json.Marshal(a)
		same(i, "agent", ad, func() any { return new(store.Agent) })
		tm, _ := json.Marshal(store.Team{ID: pick(r, codecStrings), Name: pick(r, codecStrings), SLAFirstResponseSeconds: r.IntN(1 << 20),
			FallbackTeam: pick(r, codecStrings), CreatedAt: pick(r, ts)})
		same(i, "team", tm, func() any { return new(store.Team) })
		k, _ := json.Marshal(keyRec{Key: store.Key{ID: pick(r, codecStrings), Role: pick(r, codecStrings), AgentID: pick(r, codecStrings),
			CreatedAt: pick(r, ts)}, HashBytes: []byte(pick(r, codecStrings))})
		same(i, "key", k, func() any { return new(keyRec) })

		// Damaged records: cut short, or a byte changed.
		lenient = true
		for _, d := range [][]byte{th, m, ev, ad} {
			cut := d[:r.IntN(len(d))]
			same(i, "cut record", cut, func() any { return new(threadRec) })
			flip := bytes.Clone(d)
			flip[r.IntN(len(flip))] = pick(r, []byte(`{}[]":,0x\`))
			same(i, "changed record", flip, func() any { return new(threadRec) })
		}
		lenient = false
	}
}
