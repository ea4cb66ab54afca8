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
	"github.com/switchboard/switchboard/store/storetest"
)

// encodeThread writes a thread record as encoding/json does: records
// written before it, and by it, are read with a JSON decoder. (The thread
// itself, messages and events are package jsonenc's, tested there.)

func randThread(r *rand.Rand) *threadRec {
	return &threadRec{Thread: storetest.RandThread(r), LockToken: storetest.Pick(r, storetest.CodecStrings), MaxFence: r.Int64N(100), Seq: r.Uint64()}
}

func TestCodec_ThreadRecordMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		th := randThread(r)
		if i%3 == 0 {
			th.LockToken = ""
		}
		want, err := json.Marshal(th)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeThread([]byte("prefix"), th)
		if err != nil || !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("thread %d: err %v\n got %s\nwant prefix%s", i, err, got, want)
		}
	}
	th := &threadRec{Thread: store.Thread{ID: "t", WaitingSince: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if _, err := encodeThread(nil, th); err == nil {
		t.Fatal("a thread json.Marshal refuses encoded")
	}
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
		ts := storetest.CodecTimes()[:6] // years 0 and 9999 aside: encoding/json writes them, both read them
		th, _ := encodeThread(nil, randThread(r))
		same(i, "thread", th, func() any { return new(threadRec) })
		m, _ := encodeMessage(storetest.RandMessage(r))
		same(i, "message", m, func() any { return new(store.Message) })
		ev, _ := encodeEvent(nil, storetest.RandEvent(r))
		same(i, "event", ev, func() any { return new(store.Event) })
		a := store.Agent{ID: storetest.Pick(r, storetest.CodecStrings), Name: storetest.Pick(r, storetest.CodecStrings), Role: storetest.Pick(r, storetest.CodecStrings),
			Teams: storetest.RandStrings(r), Networks: storetest.RandStrings(r), Capacity: r.IntN(50), Timezone: storetest.Pick(r, storetest.CodecStrings),
			Status: storetest.Pick(r, storetest.CodecStrings), CreatedAt: storetest.Pick(r, ts), UpdatedAt: storetest.Pick(r, ts), StatusAt: storetest.Pick(r, ts),
			LastOfferedAt: storetest.Pick(r, ts), LastSeenAt: storetest.Pick(r, ts)}
		if r.IntN(2) == 0 {
			a.Shifts = []routing.Shift{{Days: storetest.RandStrings(r), Start: "09:00", End: storetest.Pick(r, storetest.CodecStrings)}}
			a.TimeOff = []routing.TimeOff{{From: storetest.Pick(r, ts), To: storetest.Pick(r, ts)}}
		}
		ad, _ := json.Marshal(a)
		same(i, "agent", ad, func() any { return new(store.Agent) })
		tm, _ := json.Marshal(store.Team{ID: storetest.Pick(r, storetest.CodecStrings), Name: storetest.Pick(r, storetest.CodecStrings), SLAFirstResponseSeconds: r.IntN(1 << 20),
			FallbackTeam: storetest.Pick(r, storetest.CodecStrings), CreatedAt: storetest.Pick(r, ts)})
		same(i, "team", tm, func() any { return new(store.Team) })
		k, _ := json.Marshal(keyRec{Key: store.Key{ID: storetest.Pick(r, storetest.CodecStrings), Role: storetest.Pick(r, storetest.CodecStrings), AgentID: storetest.Pick(r, storetest.CodecStrings),
			CreatedAt: storetest.Pick(r, ts)}, HashBytes: []byte(storetest.Pick(r, storetest.CodecStrings))})
		same(i, "key", k, func() any { return new(keyRec) })

		// Damaged records: cut short, or a byte changed.
		lenient = true
		for _, d := range [][]byte{th, m, ev, ad} {
			cut := d[:r.IntN(len(d))]
			same(i, "cut record", cut, func() any { return new(threadRec) })
			flip := bytes.Clone(d)
			flip[r.IntN(len(flip))] = storetest.Pick(r, []byte(`{}[]":,0x\`))
			same(i, "changed record", flip, func() any { return new(threadRec) })
		}
		lenient = false
	}
}
