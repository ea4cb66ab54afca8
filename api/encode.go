package api

import (
	"encoding/json"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/jsonenc"
)

// handEncoded is a response that writes itself with package jsonenc: the
// ones every message and every claim cycle answer with (a thread, a
// message, a lock), where encoding/json's reflection was about a twentieth
// of the server's CPU. The bytes are what encoding/json writes for the same
// value (encode_test.go compares them).
type handEncoded interface {
	encode(e *jsonenc.Enc)
}

// encodeJSON is the app's JSON encoder.
func encodeJSON(v any) ([]byte, error) {
	if h, ok := v.(handEncoded); ok {
		e := jsonenc.Enc{B: make([]byte, 0, 2048)}
		h.encode(&e)
		return e.B, e.Err
	}
	return json.Marshal(v)
}

// ingestView is inbox.IngestResult as POST /messages answers it.
type ingestView inbox.IngestResult

func (v *ingestView) encode(e *jsonenc.Enc) {
	e.Raw(`{"message":`)
	e.Message(&v.Message)
	e.Raw(`,"thread":`)
	e.Thread(&v.Thread)
	e.Raw(`,"duplicate":`)
	e.Bool(v.Duplicate)
	e.Raw(`}`)
}

// lockView is {"thread", "lock"}, the lock only for its holder.
type lockView struct {
	Thread store.Thread `json:"thread"`
	Lock   *store.Grant `json:"lock,omitempty"`
}

func (v *lockView) encode(e *jsonenc.Enc) {
	e.Raw(`{"thread":`)
	e.Thread(&v.Thread)
	if v.Lock != nil {
		e.Raw(`,"lock":`)
		e.Grant(v.Lock)
	}
	e.Raw(`}`)
}

// replyView is a reply's answer: the message sent, the thread and the
// caller's lock (null once the reply released it). The fields are in the
// order encoding/json writes a map's keys, as this answer was first a map.
type replyView struct {
	Lock    *store.Grant  `json:"lock"`
	Message store.Message `json:"message"`
	Thread  store.Thread  `json:"thread"`
}

func (v *replyView) encode(e *jsonenc.Enc) {
	e.Raw(`{"lock":`)
	e.Grant(v.Lock)
	e.Raw(`,"message":`)
	e.Message(&v.Message)
	e.Raw(`,"thread":`)
	e.Thread(&v.Thread)
	e.Raw(`}`)
}
