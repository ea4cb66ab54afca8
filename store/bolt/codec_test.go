package bolt

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

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
