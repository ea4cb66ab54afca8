package storetest

import (
	"encoding/json"
	"math/rand/v2"
	"time"

	"github.com/switchboard/switchboard/store"
)

// Random records for the tests that compare an encoder or a decoder with
// encoding/json: every field filled from values that are hard to encode
// (escapes, invalid UTF-8, U+2028, times at the ends of the range and in
// odd zones, nil against empty slices).

// CodecStrings are strings every JSON encoder must escape alike.
var CodecStrings = []string{"", "plain", "ação ü 日本語 🎉", `quote " backslash \ slash /`, "<script>&amp;</script>",
	"ctl \x00\x01\x1f\x7f \b\f\n\r\t", "bad utf8 \xff\xfe \xc3", "line\u2028sep\u2029", "\u00e9\u0301", "tab\there"}

// CodecTimes are times in several zones and precisions; the last two are
// the years 9999 and 0, which encoding/json writes and some decoders refuse.
func CodecTimes() []time.Time {
	base := time.Date(2026, 11, 22, 21, 42, 7, 123456789, time.UTC)
	return []time.Time{base, base.Truncate(time.Second), base.Truncate(time.Millisecond), {},
		base.In(time.FixedZone("plus", 5*3600+30*60)), base.In(time.FixedZone("minus", -8*3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(0, 1, 1, 0, 0, 0, 1, time.UTC)}
}

// Pick returns a random element of s.
func Pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// Maybe returns nil or a pointer to v, at random.
func Maybe[T any](r *rand.Rand, v T) *T {
	if r.IntN(2) == 0 {
		return nil
	}
	return &v
}

// RandStrings is nil, empty, or a few CodecStrings.
func RandStrings(r *rand.Rand) []string {
	switch r.IntN(3) {
	case 0:
		return nil
	case 1:
		return []string{}
	}
	out := make([]string, 1+r.IntN(3))
	for i := range out {
		out[i] = Pick(r, CodecStrings)
	}
	return out
}

// RandThread is a thread with every field random, locked half the time.
func RandThread(r *rand.Rand) store.Thread {
	ts := CodecTimes()
	s := func() string { return Pick(r, CodecStrings) }
	t := store.Thread{ID: s(), Network: s(), Profile: s(), ExternalID: s(), Kind: s(),
		Author: store.Author{ID: s(), Handle: s(), Name: s(), Followers: r.IntN(1 << 20), Verified: r.IntN(2) == 0},
		Status: s(), Team: s(), Priority: s(), Tags: RandStrings(r),
		Assignee: Maybe(r, s()), WaitingSince: Pick(r, ts), FirstResponseAt: Maybe(r, Pick(r, ts)),
		SLADueAt: Maybe(r, Pick(r, ts)), SLABreached: r.IntN(2) == 0, LastInboundAt: Pick(r, ts), LastOutboundAt: Maybe(r, Pick(r, ts)),
		AutoCloseAt: Maybe(r, Pick(r, ts)), CreatedAt: Pick(r, ts), UpdatedAt: Pick(r, ts), Version: r.Int64N(1000) - 3}
	if r.IntN(2) == 0 {
		t.Lock = &store.Lock{AgentID: s(), Fence: r.Int64N(50), ExpiresAt: Pick(r, ts), Token: "not-encoded"}
	}
	return t
}

// RandMessage is a message with every field random.
func RandMessage(r *rand.Rand) *store.Message {
	ts := CodecTimes()
	s := func() string { return Pick(r, CodecStrings) }
	m := &store.Message{ID: s(), ThreadID: s(), Direction: s(), Network: s(), ExternalID: s(), Kind: s(), AgentID: s(),
		Text: s() + s(), Language: s(), SentAt: Pick(r, ts), ReceivedAt: Pick(r, ts)}
	if r.IntN(2) == 0 {
		m.Author = &store.Author{ID: s(), Handle: s(), Followers: r.IntN(10)}
	}
	switch r.IntN(3) {
	case 1:
		m.Attachments = []store.Attachment{}
	case 2:
		m.Attachments = []store.Attachment{{Type: "image", URL: "https://x.test/a?b=1&c=<2>"}, {Type: s()}}
	}
	if r.IntN(2) == 0 {
		m.Delivery = &store.Delivery{Status: s(), ExternalID: s(), Error: s()}
	}
	m.EditedAt = Maybe(r, Pick(r, ts))
	return m
}

// RandEvent is an event whose data holds values of every kind the stores
// put there, and some they do not.
func RandEvent(r *rand.Rand) *store.Event {
	ts := CodecTimes()
	s := func() string { return Pick(r, CodecStrings) }
	raw, _ := json.Marshal(RandMessage(r))
	values := []any{nil, s(), r.Int64N(1 << 40), r.IntN(100), r.IntN(2) == 0, Pick(r, ts), Maybe(r, Pick(r, ts)),
		RandStrings(r), json.RawMessage(raw), *RandMessage(r), 1.5, map[string]any{"nested": []any{1, "x"}}}
	ev := &store.Event{ID: r.Uint64(), Type: s(), ThreadID: s(), Actor: s(), At: Pick(r, ts), Team: s(), Network: s(), Agent: s()}
	if r.IntN(5) > 0 {
		ev.Data = map[string]any{}
		for range r.IntN(10) {
			ev.Data[s()+Pick(r, []string{"a", "b", "to_agent", "from"})] = Pick(r, values)
		}
	}
	return ev
}
