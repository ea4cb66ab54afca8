package inbox_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/routing"
)

// messageFields are the paths a refused message may name, as the API puts
// them into error.details.field.
var messageFields = regexp.MustCompile(`^(network|external_id|thread_external_id|profile|kind|text|language|sent_at|` +
	`tags(\[\d+\])?|attachments(\[\d+\](\.(type|url))?)?|author(\.(id|handle|name|followers))?)$`)

// FuzzMessageJSON decodes arbitrary bytes as an inbound message, the way
// POST /api/v1/messages does, and validates it. Whatever the input, either
// Validate names a field, or the message it leaves is within every limit of
// the contract, encodes to JSON (the stores keep JSON) and validates again to
// itself.
//
// The seed corpus is testdata/fuzz/FuzzMessageJSON plus the f.Add calls;
// `go test` runs them, `go test -fuzz FuzzMessageJSON ./inbox` explores.
func FuzzMessageJSON(f *testing.F) {
	for _, seed := range []string{
		`{"network": "instagram", "external_id": "ig-17890001", "thread_external_id": "ig-conv-42",
		  "profile": "@acme", "kind": "dm", "text": "My order #123 arrived broken",
		  "attachments": [{"type": "image", "url": "https://cdn.example/a.jpg"}],
		  "author": {"id": "u-991", "handle": "@maria", "name": "María", "followers": 120, "verified": false},
		  "language": "ES", "sent_at": "2026-11-22T09:58:00+01:00", "tags": [" VIP ", "lead"]}`,
		`{"network": "twitter", "external_id": "t1", "author": {"id": "u"}, "attachments": [{"type": "video", "url": "http://x"}]}`,
		`{"network": "twitter", "external_id": "t1", "author": {"id": "u"}, "text": ""}`,
		`{"network": "myspace", "external_id": "t1", "author": {"id": "u"}, "text": "x"}`,
		`{"network": "other", "external_id": "   ", "author": {"id": "u"}, "text": "x"}`,
		`{"network": "other", "external_id": "x", "author": {"id": "u", "followers": -1}, "text": "x"}`,
		`{"network": "other", "external_id": "x", "author": {"id": "u"}, "text": "x", "tags": ["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q","r","s","t","u"]}`,
		`{"network": "other", "external_id": "x", "author": {"id": "u"}, "text": "x", "tags": ["not ok!"]}`,
		`{"network": "other", "external_id": "x", "author": {"id": "u"}, "text": "x", "attachments": [{"type": "image", "url": "javascript:alert(1)"}]}`,
		`{"network": "other", "external_id": "x", "author": {"id": "u"}, "text": "x", "sent_at": "9999-12-31T23:59:59-01:00"}`,
		`{"network": "other", "external_id": "x", "author": {"id": "u"}, "text": "x", "sent_at": "0000-01-01T00:00:00+01:00"}`,
		`{"network": "other", "external_id": "x", "author": {"id": "u"}, "text": "x", "sent_at": "0001-01-01T00:00:00Z"}`,
		`{"network": "other", "external_id": "x", "profile": "a\u0000b", "author": {"id": "u"}, "text": "x"}`,
		`{"network": "other", "external_id": "x", "author": {"id": "u"}, "text": "\ud800\udc00 \ud800 \u0000", "language": "İSTANBUL"}`,
		`{"network": "other", "external_id": "x", "author": {"id": "u"}, "text": "x", "kind": "letter"}`,
		`{"network": "other", "external_id": "x", "author": {"id": 7}, "text": "x"}`,
		`[]`, `null`, `{}`, `{"network": `, "\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	// Lengths at and over the limits.
	long := func(field string, n int, r string) []byte {
		m := map[string]any{"network": "other", "external_id": "x", "author": map[string]any{"id": "u"}, "text": "x"}
		m[field] = strings.Repeat(r, n)
		b, _ := json.Marshal(m)
		return b
	}
	f.Add(long("text", inbox.MaxTextRunes+1, "é"))
	f.Add(long("external_id", 256, "x"))
	f.Add(long("external_id", 257, "x"))
	f.Add(long("language", 17, "e"))

	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var in inbox.MessageInput
		err := inbox.DecodeJSON(data, &in)
		if err == nil {
			err = in.Validate(now)
		}
		if err != nil {
			var fe *inbox.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate returned %T %v, want a *FieldError", err, err)
			}
			if !(messageFields.MatchString(fe.Field) || fe.Field == "body") || fe.Message == "" {
				t.Fatalf("Validate error names field %q (%q), not one of the message's", fe.Field, fe.Message)
			}
			return
		}
		checkMessageLimits(t, &in)

		// The stores keep JSON: the message must encode, and what decodes
		// from it validates to the same message.
		enc, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("a valid message does not encode: %v (%+v)", err, in)
		}
		var again inbox.MessageInput
		if err := inbox.DecodeJSON(enc, &again); err != nil {
			t.Fatalf("re-decode %s: %v", enc, err)
		}
		if err := again.Validate(now.Add(time.Hour)); err != nil {
			t.Fatalf("a valid message validated again fails: %v (%s)", err, enc)
		}
		if !again.SentAt.Equal(*in.SentAt) {
			t.Fatalf("sent_at changed on a second validation: %v -> %v", in.SentAt, again.SentAt)
		}
		again.SentAt = in.SentAt
		if !reflect.DeepEqual(normalizedNil(again), normalizedNil(in)) {
			t.Fatalf("validation is not idempotent:\nfirst  %+v\nsecond %+v", in, again)
		}
	})
}

// checkMessageLimits asserts what a validated message guarantees.
func checkMessageLimits(t *testing.T, in *inbox.MessageInput) {
	t.Helper()
	runes := utf8.RuneCountInString
	switch {
	case !slices.Contains(routing.Networks, in.Network):
		t.Fatalf("network %q accepted", in.Network)
	case !slices.Contains(routing.Kinds, in.Kind):
		t.Fatalf("kind %q accepted", in.Kind)
	case strings.TrimSpace(in.ExternalID) == "" || runes(in.ExternalID) > 256:
		t.Fatalf("external_id %q accepted", in.ExternalID)
	case in.ThreadExternalID == "" || runes(in.ThreadExternalID) > 256:
		t.Fatalf("thread_external_id %q after validation", in.ThreadExternalID)
	case strings.TrimSpace(in.Author.ID) == "" || runes(in.Author.ID) > 256:
		t.Fatalf("author.id %q accepted", in.Author.ID)
	case runes(in.Profile) > 256 || runes(in.Author.Handle) > 256 || runes(in.Author.Name) > 256:
		t.Fatalf("profile or author handle/name over 256 characters accepted")
	case in.Author.Followers < 0:
		t.Fatalf("negative followers accepted")
	case runes(in.Language) > 16 || in.Language != strings.ToLower(in.Language):
		t.Fatalf("language %q after validation", in.Language)
	case runes(in.Text) > inbox.MaxTextRunes || !utf8.ValidString(in.Text):
		t.Fatalf("text of %d characters (valid UTF-8: %v) accepted", runes(in.Text), utf8.ValidString(in.Text))
	case in.Text == "" && len(in.Attachments) == 0:
		t.Fatalf("message with neither text nor attachments accepted")
	case len(in.Tags) > inbox.MaxTags:
		t.Fatalf("%d tags accepted", len(in.Tags))
	case len(in.Attachments) > inbox.MaxAttachments:
		t.Fatalf("%d attachments accepted", len(in.Attachments))
	case in.SentAt == nil || in.SentAt.IsZero() || in.SentAt.Location() != time.UTC:
		t.Fatalf("sent_at %v after validation", in.SentAt)
	case in.SentAt.Year() < 0 || in.SentAt.Year() > 9999:
		t.Fatalf("sent_at %v cannot be written as RFC 3339", in.SentAt)
	}
	// The parts of a thread's key are joined with NUL by the stores, so a
	// NUL inside one would let two different keys collide.
	for name, v := range map[string]string{"network": in.Network, "profile": in.Profile,
		"thread_external_id": in.ThreadExternalID, "external_id": in.ExternalID} {
		if strings.ContainsRune(v, 0) {
			t.Fatalf("%s %q with a NUL accepted", name, v)
		}
	}
	for i, tag := range in.Tags {
		if !routing.ValidTag(tag) {
			t.Fatalf("tags[%d] %q accepted", i, tag)
		}
	}
	for i, a := range in.Attachments {
		u, err := url.Parse(a.URL)
		if a.Type == "" || runes(a.Type) > 32 || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || runes(a.URL) > 2048 {
			t.Fatalf("attachments[%d] %+v accepted", i, a)
		}
	}
}

// normalizedNil makes empty and nil slices compare equal (JSON turns one
// into the other).
func normalizedNil(in inbox.MessageInput) inbox.MessageInput {
	if len(in.Tags) == 0 {
		in.Tags = nil
	}
	if len(in.Attachments) == 0 {
		in.Attachments = nil
	}
	return in
}
