package jsonenc_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/jsonenc"
	"github.com/switchboard/switchboard/store/storetest"
)

// The encoders must write exactly what encoding/json writes: records
// written before them, and by them, are read with JSON decoders, and API
// responses are the same bytes whichever wrote them.

func TestEncode_MatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(i int, what string, v any, encode func(e *jsonenc.Enc)) {
		t.Helper()
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		e := jsonenc.Enc{B: []byte("prefix")}
		encode(&e)
		if e.Err != nil || !bytes.Equal(e.B, append([]byte("prefix"), want...)) {
			t.Fatalf("%s %d: err %v\n got %s\nwant prefix%s", what, i, e.Err, e.B, want)
		}
	}
	for i := range 3000 {
		th := storetest.RandThread(r)
		check(i, "thread", th, func(e *jsonenc.Enc) { e.Thread(&th) })
		var g *store.Grant
		if th.Lock != nil {
			g = th.Lock.Grant()
			g.Token = storetest.Pick(r, storetest.CodecStrings)
		}
		check(i, "grant", g, func(e *jsonenc.Enc) { e.Grant(g) })

		m := storetest.RandMessage(r)
		check(i, "message", m, func(e *jsonenc.Enc) { e.Message(m) })
		parts, err := jsonenc.EncodeMessageParts(m)
		if err != nil {
			t.Fatal(err)
		}
		m.ThreadID, m.ReceivedAt = "another <thread>", storetest.CodecTimes()[r.IntN(6)]
		want, _ := json.Marshal(m)
		if got, err := parts.Encode(m.ThreadID, m.ReceivedAt); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("message parts %d: err %v\n got %s\nwant %s", i, err, got, want)
		}

		ev := storetest.RandEvent(r)
		check(i, "event", ev, func(e *jsonenc.Enc) { e.Event(ev) })
	}
}

func TestEncode_FailsWhereEncodingJSONFails(t *testing.T) {
	for _, at := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("odd", 24*3600+60)), time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("secs", 3601))} {
		for what, v := range map[string]any{
			"thread":  &store.Thread{ID: "t", WaitingSince: at},
			"grant":   &store.Grant{ExpiresAt: at},
			"message": &store.Message{SentAt: at},
			"event":   &store.Event{Data: map[string]any{"at": at}},
		} {
			_, jerr := json.Marshal(v)
			var e jsonenc.Enc
			switch v := v.(type) {
			case *store.Thread:
				e.Thread(v)
			case *store.Grant:
				e.Grant(v)
			case *store.Message:
				e.Message(v)
			case *store.Event:
				e.Event(v)
			}
			if (jerr == nil) != (e.Err == nil) {
				t.Fatalf("%s at %v: json.Marshal err %v, jsonenc err %v", what, at, jerr, e.Err)
			}
		}
	}
	var e jsonenc.Enc
	if e.Event(&store.Event{Data: map[string]any{"f": func() {}}}); e.Err == nil {
		t.Fatal("an unencodable data value encoded")
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range storetest.CodecStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := jsonenc.AppendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
	})
}

// TestEncodeMessageBody_IsTheMessageWithoutThreadTimeAndDelivery: the body
// decodes to what encoding/json writes for the message, less those members
// and edited_at.
func TestEncodeMessageBody_IsTheMessageWithoutThreadTimeAndDelivery(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 3000 {
		m := storetest.RandMessage(r)
		full, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		if err := json.Unmarshal(full, &want); err != nil {
			t.Fatal(err)
		}
		delete(want, "thread_id")
		delete(want, "received_at")
		delete(want, "delivery")
		delete(want, "edited_at")
		body, err := jsonenc.EncodeMessageBody(m)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("message %d: %v\n got %s\nwant %v", i, err, body, want)
		}
	}
}
