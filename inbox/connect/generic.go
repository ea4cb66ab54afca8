package connect

import (
	"encoding/json"
	"fmt"

	"github.com/switchboard/switchboard/inbox"
)

// ErrTooManyMessages is returned for a generic batch over inbox.MaxBatch.
var ErrTooManyMessages = fmt.Errorf("more than %d messages", inbox.MaxBatch)

// GenericItem is one message of a generic webhook batch: the decoded input,
// or the error that names the field it failed on.
type GenericItem struct {
	Input inbox.MessageInput
	Err   error
}

// Generic decodes the generic webhook's body: the contract's message JSON
// (as POST /api/v1/messages takes it), or {"messages": [...]} (as
// /api/v1/messages/batch). For a single message the decoding error is
// returned; for a batch each item carries its own, and only a malformed
// body, a "messages" that is not an array or more than inbox.MaxBatch
// messages fail the whole request.
func Generic(body []byte) (items []GenericItem, batch bool, err error) {
	if !jsonObject(body) {
		return nil, false, errMalformed()
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, false, errMalformed()
	}
	raw, batch := probe["messages"]
	if !batch {
		in, err := decodeMessage(body)
		if err != nil {
			return nil, false, err
		}
		return []GenericItem{{Input: in}}, false, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		return nil, true, &inbox.FieldError{Field: "messages", Message: "must be an array"}
	}
	if len(list) > inbox.MaxBatch {
		return nil, true, ErrTooManyMessages
	}
	items = make([]GenericItem, len(list))
	for i, m := range list {
		items[i].Input, items[i].Err = decodeMessage(m)
	}
	return items, true, nil
}

// decodeMessage decodes one message; a type error names its field.
func decodeMessage(raw []byte) (inbox.MessageInput, error) {
	var in inbox.MessageInput
	return in, inbox.DecodeJSON(raw, &in)
}
