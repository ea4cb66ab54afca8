package inbox_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// TestDecodeJSON_NamesTheField: a value of the wrong type, or a time that
// is not RFC 3339, is refused naming its field (nested fields dotted,
// named as the contract spells them whatever case the body used);
// anything else malformed names the body.
func TestDecodeJSON_NamesTheField(t *testing.T) {
	for _, c := range []struct {
		body, field, message string
		into                 func() any
	}{
		{`{"author": {"id": "u", "followers": "many"}}`, "author.followers", "must be an integer", msgInput},
		{`{"network": 7}`, "network", "must be a string", msgInput},
		{`{"tags": "vip"}`, "tags", "must be an array", msgInput},
		{`{"tags": ["vip", 7]}`, "tags[1]", "must be a string", msgInput},
		{`{"attachments": [{"type": "image"}, {"type": "image", "url": 7}]}`, "attachments[1].url", "must be a string", msgInput},
		{`{"author": true}`, "author", "must be an object", msgInput},
		{`{"when": {"min_followers": "many"}}`, "when.min_followers", "must be an integer", func() any { return new(routing.Rule) }},
		{`{"sent_at": "yesterday"}`, "sent_at", "must be an RFC 3339 time", msgInput},
		{`{"sent_at": 1732267080}`, "sent_at", "must be an RFC 3339 time", msgInput},
		{`{"time_off": [{"from": "monday", "to": "2026-11-30T00:00:00Z"}]}`, "time_off[0].from", "must be an RFC 3339 time",
			func() any { return new(store.Agent) }},
		{`{"network": "x", `, "body", "malformed JSON", msgInput},
		{`{"network": "x"} trailing`, "body", "malformed JSON", msgInput},
		{"\xff\xfe", "body", "is not valid UTF-8", msgInput},
		{"{\"network\": \"x\", \"text\": \"bad \xff\xfe here\"}", "body", "is not valid UTF-8", msgInput},
		{`[1, 2]`, "body", "must be an object", msgInput},
	} {
		err := inbox.DecodeJSON([]byte(c.body), c.into())
		var fe *inbox.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || fe.Message != c.message {
			t.Errorf("%s: %v, want %s %s", c.body, err, c.field, c.message)
		}
	}
	var in inbox.MessageInput
	if err := inbox.DecodeJSON([]byte(`{"network": "x", "sent_at": "2026-11-22T09:58:00+01:00", "unknown": 1}`), &in); err != nil ||
		in.Network != "x" || in.SentAt == nil || in.SentAt.Hour() != 9 {
		t.Fatalf("a good body: %v, %+v", err, in)
	}
}

func msgInput() any { return new(inbox.MessageInput) }

// TestDecodeJSON_AKeyIsTheFieldItNamesExactly: the contract's fields are
// written in lower case; a key in another case is an unknown field,
// ignored, not a second value that wins over the first (encoding/json
// matches keys in any case, the last written winning: {"role": "ingest",
// "Role": "admin"} made an admin key).
func TestDecodeJSON_AKeyIsTheFieldItNamesExactly(t *testing.T) {
	var k struct {
		Role string `json:"role"`
		Name string `json:"name"`
	}
	if err := inbox.DecodeJSON([]byte(`{"role": "ingest", "Role": "admin", "NAME": "x"}`), &k); err != nil || k.Role != "ingest" || k.Name != "" {
		t.Fatalf("decoded %+v, %v; want role ingest and no name", k, err)
	}
	var in inbox.MessageInput
	if err := inbox.DecodeJSON([]byte(`{"Author": {"ID": 7}, "network": "x", "Network": "y"}`), &in); err != nil || in.Author.ID != "" || in.Network != "x" {
		t.Fatalf("decoded %+v, %v", in, err)
	}
}

// TestDecodeJSON_RefusesDeepNesting: the decoder recurses once per level, so
// a body of millions of "[" overflowed the goroutine's stack (a fatal error
// no recover catches: one request killed the process). Bodies nested
// deeper than MaxJSONDepth are a 400 naming the body, before decoding.
func TestDecodeJSON_RefusesDeepNesting(t *testing.T) {
	var in inbox.MessageInput
	deep := func(n int, open, close string) []byte {
		return []byte(`{"text":"x","junk":` + strings.Repeat(open, n) + strings.Repeat(close, n) + `}`)
	}
	for _, body := range [][]byte{
		deep(inbox.MaxJSONDepth, "[", "]"),                  // with the outer object: one too deep
		deep(inbox.MaxJSONDepth, `{"a":`, "}"),              // objects count too
		[]byte(`{"messages":` + strings.Repeat("[", 8<<20)), // the crash: 8 MiB of "[", unclosed
	} {
		err := inbox.DecodeJSON(body, &in)
		var fe *inbox.FieldError
		if !errors.As(err, &fe) || fe.Field != "body" || !strings.Contains(fe.Message, "deeply") {
			t.Fatalf("%.40s...: %v, want a body error about nesting", body, err)
		}
	}
	// Brackets inside strings do not count, and MaxJSONDepth levels decode.
	ok := []byte(`{"text":"` + strings.Repeat("[{", 200) + `\"]","junk":` + strings.Repeat("[", inbox.MaxJSONDepth-1) + strings.Repeat("]", inbox.MaxJSONDepth-1) + `}`)
	if err := inbox.DecodeJSON(ok, &in); err != nil {
		t.Fatalf("%d levels, brackets in a string: %v", inbox.MaxJSONDepth, err)
	}
	if !strings.HasPrefix(in.Text, "[{[{") {
		t.Fatalf("text %q", in.Text)
	}
}

// sent_at with an offset that puts it past year 9999 in UTC cannot be
// stored as RFC 3339: refused, naming sent_at.
func TestMessageInput_SentAtPastYear9999InUTCIsRefused(t *testing.T) {
	in := inbox.MessageInput{Network: "twitter", ExternalID: "m", Profile: "@acme", Text: "x", Author: store.Author{ID: "u"}}
	var sent time.Time
	if err := sent.UnmarshalText([]byte("9999-12-31T23:00:00-05:00")); err != nil {
		t.Fatal(err)
	}
	in.SentAt = &sent
	var fe *inbox.FieldError
	if err := in.Validate(time.Now()); !errors.As(err, &fe) || fe.Field != "sent_at" {
		t.Fatalf("Validate = %v, want a sent_at error", err)
	}
}

// TestAgentInput_TellsZeroFromLeftOut: an agent's "capacity": 0 is
// refused, naming it; left out, the capacity is the default (5), and so it
// is with "Capacity", which DecodeJSON does not read (keys match exactly).
// A Go caller may set the embedded Agent's capacity instead.
func TestAgentInput_TellsZeroFromLeftOut(t *testing.T) {
	svc := bootstrapped(t, openStore(t))
	admin := inbox.Principal{Role: store.RoleAdmin, KeyID: "admin"}
	for i, c := range []struct {
		body string
		want int // 0: refused
	}{
		{`{"capacity": 0}`, 0}, {`{"capacity": 3}`, 3}, {`{}`, 5}, {`{"capacity": null}`, 5}, {`{"Capacity": 0}`, 5}, {`{"capacity": 1001}`, 0},
	} {
		var in inbox.AgentInput
		if err := inbox.DecodeJSON([]byte(c.body), &in); err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
		in.ID = fmt.Sprintf("agent-%d", i)
		out, err := svc.AgentCreate(context.Background(), admin, in)
		var fe *inbox.FieldError
		switch {
		case c.want == 0 && (!errors.As(err, &fe) || fe.Field != "capacity"):
			t.Errorf("%s: %v, want refused naming capacity", c.body, err)
		case c.want != 0 && (err != nil || out.Capacity != c.want):
			t.Errorf("%s: capacity %d, %v; want %d", c.body, out.Capacity, err, c.want)
		}
	}
	out, err := svc.AgentCreate(context.Background(), admin, inbox.AgentInput{Agent: store.Agent{ID: "go", Capacity: 7}})
	if err != nil || out.Capacity != 7 {
		t.Fatalf("the Agent's capacity: %d, %v; want 7", out.Capacity, err)
	}
}
