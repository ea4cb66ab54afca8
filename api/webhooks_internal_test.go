package api

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
)

func TestWebhookSummary_OnlyValidationRefusalsAreSkipped(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	chunk := []inbox.MessageInput{{Network: "facebook", ExternalID: "a"}, {Network: "facebook", ExternalID: "b"}, {Network: "facebook", ExternalID: "c"}}
	var sum webhookSummary
	err := sum.add(log, chunk, []inbox.IngestResult{{}, {Duplicate: true}, {Err: &inbox.FieldError{Field: "text", Message: "is required"}}})
	if err != nil || sum != (webhookSummary{Stored: 1, Duplicates: 1, Refused: 1}) {
		t.Fatalf("summary %+v, %v", sum, err)
	}
	// Anything else was not stored: the delivery must fail so the network
	// sends it again.
	err = sum.add(log, chunk, []inbox.IngestResult{{}, {Err: store.ErrConflict}, {}})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a message that was not stored answered %v", err)
	}
}
