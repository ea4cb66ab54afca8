package bolt

import (
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/jsonenc"
)

// The records every write step produces (threads, messages, events) are
// encoded by hand (package jsonenc), exactly as encoding/json encodes them:
// the writer goroutine is the store's one serial resource, and encoding
// was a tenth of its time. Everything else still goes through
// encoding/json, and every record is read with a JSON decoder.

// encodeThread encodes a thread record as json.Marshal does.
func encodeThread(dst []byte, r *threadRec) ([]byte, error) {
	e := jsonenc.Enc{B: dst}
	e.ThreadFields(&r.Thread)
	if r.LockToken != "" {
		e.Raw(`,"lock_token":`)
		e.Str(r.LockToken)
	}
	e.Raw(`,"max_fence":`)
	e.Int(r.MaxFence)
	e.Raw(`,"seq":`)
	e.Uint(r.Seq)
	e.Raw(`}`)
	return e.B, e.Err
}

// msgParts is a message encoded ahead of its write step, in the caller's
// goroutine, but for its thread id and received_at.
type msgParts = jsonenc.MessageParts

// encodeMessage encodes a complete message as json.Marshal does.
func encodeMessage(m *store.Message) ([]byte, error) {
	e := jsonenc.Enc{}
	e.Message(m)
	return e.B, e.Err
}

// encodeEvent encodes an event as json.Marshal does.
func encodeEvent(dst []byte, ev *store.Event) ([]byte, error) {
	e := jsonenc.Enc{B: dst}
	e.Event(ev)
	return e.B, e.Err
}
