package api

import (
	"errors"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
)

func TestWebhookSummary_OnlyValidationRefusalsAreSkipped(t *testing.T) {
	chunk := []inbox.MessageInput{{Network: "facebook", ExternalID: "a"}, {Network: "facebook", ExternalID: "b"}, {Network: "facebook", ExternalID: "c"}}
	var sum webhookSummary
	skipped, err := sum.add([]string{"entry[0]: no id"}, chunk, []inbox.IngestResult{{}, {Duplicate: true}, {Err: &inbox.FieldError{Field: "text", Message: "is required"}}})
	if err != nil || sum != (webhookSummary{Stored: 1, Duplicates: 1, Refused: 1}) {
		t.Fatalf("summary %+v, %v", sum, err)
	}
	if want := []string{"entry[0]: no id", "facebook message c: text is required"}; !slices.Equal(skipped, want) {
		t.Fatalf("skipped %q, want %q", skipped, want)
	}
	// Anything else was not stored: the delivery must fail so the network
	// sends it again.
	_, err = sum.add(nil, chunk, []inbox.IngestResult{{}, {Err: store.ErrConflict}, {}})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a message that was not stored answered %v", err)
	}
}
