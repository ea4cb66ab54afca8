package api_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/inbox"
)

// Field limits of the thread actions, delivery reports and ingest: the
// value at the limit passes, one character more is a 400 invalid_request
// naming the field, and the refused request changes nothing stored.
// Limits count characters, so the long values are made of "é" (two bytes
// each): a check counting bytes would refuse the value at the limit.

// runes is n characters of two bytes each.
func runes(n int) string { return strings.Repeat("é", n) }

// threadRecord is everything stored on one thread that a refused request
// must leave alone: the thread, its messages (with their delivery), notes
// and audit trail, as an admin reads them.
func (s *testServer) threadRecord(t *testing.T, id string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{"", "/messages?limit=500", "/notes?limit=500", "/events?limit=500"} {
		r := s.do(t, "GET", "/api/v1/threads/"+id+p, s.admin, nil).want(t, 200)
		fmt.Fprintf(&b, "%s %s\n", p, r.Body)
	}
	return b.String()
}

// threadUnchanged fails if the thread's record differs from before.
func (s *testServer) threadUnchanged(t *testing.T, id, before string) {
	t.Helper()
	if after := s.threadRecord(t, id); after != before {
		t.Fatalf("a refused request changed thread %s:\nbefore: %s\nafter:  %s", id, before, after)
	}
}

// heldThread makes team sales and a thread in care that ana holds, to be
// transferred there; it returns the thread's id and ana's token.
func heldThread(t *testing.T, s careSetup, extID string) (string, string) {
	t.Helper()
	s.team(t, map[string]any{"id": "sales", "function": "sales"})
	id := s.ingest(t, msg(extID, nil)).Thread.ID
	return id, s.claim(t, s.ana, id).Lock.Token
}

// TestTransfer_NoteAndReasonOverTheirLimitsAreRefusedAndNothingMoves: a
// transfer's note (kept as an internal note) and reason (kept in the
// event).
func TestTransfer_NoteAndReasonOverTheirLimitsAreRefusedAndNothingMoves(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		field string
		limit int
	}{{"note", inbox.MaxTextRunes}, {"reason", 64}} {
		t.Run(c.field, func(t *testing.T) {
			t.Parallel()
			s := newCareSetup(t)
			id, token := heldThread(t, s, c.field+"-limit")
			path := "/api/v1/threads/" + id + "/transfer"

			before, record := s.snapshot(t), s.threadRecord(t, id)
			s.do(t, "POST", path, s.ana, map[string]any{"token": token, "team": "sales", c.field: runes(c.limit + 1)}).
				wantErr(t, 400, "invalid_request", c.field)
			s.unchanged(t, before)
			s.threadUnchanged(t, id, record)
			if th := s.thread(t, s.admin, id); th.Team != "care" || th.Lock == nil || th.Lock.AgentID != "ana" {
				t.Fatalf("after the refused transfer the thread is %+v, want still ana's in care", th)
			}
			if n := s.notes(t, s.admin, id); len(n) != 0 {
				t.Fatalf("the refused transfer stored notes %+v", n)
			}

			// At the limit: transferred, and a note kept whole.
			var lr lockResp
			s.do(t, "POST", path, s.ana, map[string]any{"token": token, "team": "sales", c.field: runes(c.limit)}).
				want(t, 200).decode(t, &lr)
			if lr.Thread.Team != "sales" || lr.Thread.Lock != nil {
				t.Fatalf("transfer with a %s at the limit = %+v", c.field, lr.Thread)
			}
			if n := s.notes(t, s.admin, id); c.field == "note" && (len(n) != 1 || n[0].Text != runes(c.limit)) {
				t.Fatalf("notes after the transfer: %d, want the one note of %d characters", len(n), c.limit)
			}
		})
	}
}

func TestTags_MoreThanMaxTagsToAddOrRemoveIsRefusedAndTagsStay(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	id := s.ingest(t, msg("tags-limit", map[string]any{"tags": []string{"vip"}})).Thread.ID
	token := s.claim(t, s.ana, id).Lock.Token
	path := "/api/v1/threads/" + id + "/tags"
	tags := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("t%d", i)
		}
		return out
	}

	before, record := s.snapshot(t), s.threadRecord(t, id)
	for _, field := range []string{"add", "remove"} {
		s.do(t, "POST", path, s.ana, map[string]any{"token": token, field: tags(inbox.MaxTags + 1)}).
			wantErr(t, 400, "invalid_request", field)
		// A supervisor, without a token, is held to the same limit.
		s.do(t, "POST", path, s.sue, map[string]any{field: tags(inbox.MaxTags + 1)}).
			wantErr(t, 400, "invalid_request", field)
	}
	s.unchanged(t, before)
	s.threadUnchanged(t, id, record)

	// At the limit: twenty added, then twenty removed.
	var lr lockResp
	s.do(t, "POST", path, s.ana, map[string]any{"token": token, "add": tags(inbox.MaxTags), "remove": []string{"vip"}}).
		want(t, 200).decode(t, &lr)
	if !slices.Equal(lr.Thread.Tags, tags(inbox.MaxTags)) {
		t.Fatalf("tags after adding %d = %v", inbox.MaxTags, lr.Thread.Tags)
	}
	s.do(t, "POST", path, s.ana, map[string]any{"token": token, "remove": tags(inbox.MaxTags)}).
		want(t, 200).decode(t, &lr)
	if len(lr.Thread.Tags) != 0 {
		t.Fatalf("tags after removing %d = %v", inbox.MaxTags, lr.Thread.Tags)
	}
}

func TestDelivery_ErrorOverMaxDeliveryErrorIsRefusedAndDeliveryStays(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	ingest := s.ingestKey(t)
	in := s.ingestAs(t, ingest, msg("delivery-limit", nil))
	lock := s.claim(t, s.ana, in.Thread.ID).Lock
	var rep replyResp
	s.reply(t, s.ana, in.Thread.ID, lock.Token, "On it").want(t, 201).decode(t, &rep)
	path := "/api/v1/messages/" + rep.Message.ID + "/delivery"

	record := s.threadRecord(t, in.Thread.ID)
	s.do(t, "POST", path, ingest, map[string]any{"status": "failed", "error": runes(inbox.MaxDeliveryError + 1)}).
		wantErr(t, 400, "invalid_request", "error")
	s.threadUnchanged(t, in.Thread.ID, record)
	if msgs := s.messages(t, s.admin, in.Thread.ID); len(msgs) != 2 || msgs[1].Delivery == nil || msgs[1].Delivery.Status != "pending" {
		t.Fatalf("after the refused report the messages are %+v, want the reply still pending", msgs)
	}

	s.do(t, "POST", path, ingest, map[string]any{"status": "failed", "error": runes(inbox.MaxDeliveryError)}).want(t, 200)
	msgs := s.messages(t, s.admin, in.Thread.ID)
	if len(msgs) != 2 || msgs[1].Delivery == nil || msgs[1].Delivery.Status != "failed" ||
		msgs[1].Delivery.Error != runes(inbox.MaxDeliveryError) {
		t.Fatalf("after a report at the limit the reply's delivery is %+v", msgs[1].Delivery)
	}
}

func TestIngest_AttachmentTypeEmptyOrOver32IsRefusedAndNothingStored(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	ingest := s.ingestKey(t)
	const url = "https://cdn.example/a.jpg"
	attach := func(types ...string) []any {
		out := make([]any, len(types))
		for i, ty := range types {
			out[i] = map[string]any{"type": ty, "url": url}
		}
		return out
	}

	before := s.snapshot(t)
	for _, c := range []struct {
		name        string
		attachments []any
		field       string
	}{
		{"empty type", attach(""), "attachments[0].type"},
		{"type of 33 characters", attach(strings.Repeat("a", 33)), "attachments[0].type"},
		{"the second attachment's empty type", attach("image", ""), "attachments[1].type"},
		{"the second attachment's type of 33 characters", attach("image", strings.Repeat("a", 33)), "attachments[1].type"},
	} {
		s.do(t, "POST", "/api/v1/messages", ingest, msg("att-refused", map[string]any{"text": "", "attachments": c.attachments})).
			wantErr(t, 400, "invalid_request", c.field)
		s.do(t, "POST", "/api/v1/messages", ingest, msg("att-refused", map[string]any{"attachments": c.attachments})).
			wantErr(t, 400, "invalid_request", c.field)
	}
	s.unchanged(t, before)
	if ths := s.threads(t, s.admin, ""); len(ths) != 0 {
		t.Fatalf("refused messages left threads %v", ids(ths))
	}

	// At the limit: stored, with its attachment as sent.
	out := s.ingestAs(t, ingest, msg("att-32", map[string]any{"text": "", "attachments": attach(strings.Repeat("a", 32))}))
	msgs := s.messages(t, s.admin, out.Thread.ID)
	if len(msgs) != 1 || len(msgs[0].Attachments) != 1 || msgs[0].Attachments[0].Type != strings.Repeat("a", 32) {
		t.Fatalf("message with a type of 32 characters = %+v", msgs)
	}
	// Characters, not bytes: 32 of two bytes each are at the limit too.
	wide := s.ingestAs(t, ingest, msg("att-32-wide", map[string]any{"text": "", "attachments": attach(runes(32))}))
	if msgs := s.messages(t, s.admin, wide.Thread.ID); len(msgs) != 1 || len(msgs[0].Attachments) != 1 || msgs[0].Attachments[0].Type != runes(32) {
		t.Fatalf("message with a type of 32 two-byte characters = %+v", msgs)
	}
	// The URL counts characters too: 2,048 of them pass, two-byte ones
	// included; one more is refused.
	long := func(n int) []any {
		const prefix = "https://cdn.example/"
		return []any{map[string]any{"type": "image", "url": prefix + runes(n-len(prefix))}}
	}
	s.do(t, "POST", "/api/v1/messages", ingest, msg("att-url-2049", map[string]any{"attachments": long(2049)})).
		wantErr(t, 400, "invalid_request", "attachments[0].url")
	longURL := s.ingestAs(t, ingest, msg("att-url-2048", map[string]any{"attachments": long(2048)}))
	if msgs := s.messages(t, s.admin, longURL.Thread.ID); len(msgs) != 1 || len(msgs[0].Attachments) != 1 {
		t.Fatalf("message with a URL of 2,048 characters = %+v", msgs)
	}
	// The same message id refused before is new: nothing was kept of it.
	if r := s.ingestAs(t, ingest, msg("att-refused", nil)); r.Duplicate {
		t.Fatal("a refused message was kept as a duplicate")
	}
}

// TestReply_AttachmentsAreHeldToTheContract: a reply's attachments were
// stored unchecked, so a reply of one empty attachment went out as an
// answer (and stopped the SLA clock), and any URL or number of them reached
// the connectors. They are checked as an inbound message's are.
func TestReply_AttachmentsAreHeldToTheContract(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	id := s.ingest(t, msg("reply-atts", nil)).Thread.ID
	token := s.claim(t, s.ana, id).Lock.Token
	reply := func(atts []any) response {
		return s.do(t, "POST", "/api/v1/threads/"+id+"/replies", s.ana, map[string]any{"token": token, "text": "", "attachments": atts})
	}
	image := map[string]any{"type": "image", "url": "https://cdn.example/a.jpg"}
	var tooMany []any
	for range inbox.MaxAttachments + 1 {
		tooMany = append(tooMany, image)
	}
	before, record := s.snapshot(t), s.threadRecord(t, id)
	for _, c := range []struct {
		atts  []any
		field string
	}{
		{[]any{map[string]any{}}, "attachments[0].type"},
		{[]any{image, map[string]any{"type": "file", "url": "javascript:alert(1)//"}}, "attachments[1].url"},
		{[]any{map[string]any{"type": "file", "url": "file:///etc/passwd"}}, "attachments[0].url"},
		{[]any{map[string]any{"type": strings.Repeat("t", inbox.MaxAttachmentType+1), "url": "https://cdn.example/a"}}, "attachments[0].type"},
		{tooMany, "attachments"},
	} {
		reply(c.atts).wantErr(t, 400, "invalid_request", c.field)
	}
	s.unchanged(t, before)
	s.threadUnchanged(t, id, record)
	var ok replyResp
	reply([]any{image}).want(t, 201).decode(t, &ok)
	if len(ok.Message.Attachments) != 1 || ok.Message.Attachments[0].URL != "https://cdn.example/a.jpg" {
		t.Fatalf("a reply of one image stored %+v", ok.Message.Attachments)
	}
}

func TestReply_IdempotencyKeyOver200CharactersIsRefusedAndNoReplyStored(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	id := s.ingest(t, msg("idem-limit", nil)).Thread.ID
	token := s.claim(t, s.ana, id).Lock.Token
	reply := func(key string) response {
		return s.send(t, req{method: "POST", path: "/api/v1/threads/" + id + "/replies", key: s.ana,
			body: map[string]any{"token": token, "text": "On it"}, header: map[string]string{"Idempotency-Key": key}})
	}

	before, record := s.snapshot(t), s.threadRecord(t, id)
	reply(strings.Repeat("k", 201)).wantErr(t, 400, "invalid_request", "Idempotency-Key")
	s.unchanged(t, before)
	s.threadUnchanged(t, id, record)
	if msgs := s.messages(t, s.admin, id); len(msgs) != 1 {
		t.Fatalf("the refused reply stored messages: %d, want only the inbound one", len(msgs))
	}

	// At the limit: stored, and a retry with that key returns it.
	key := strings.Repeat("k", 200)
	var first, retry replyResp
	reply(key).want(t, 201).decode(t, &first)
	reply(key).want(t, 200).decode(t, &retry)
	if retry.Message.ID != first.Message.ID {
		t.Fatalf("a retry with a key of 200 characters made reply %s, want the first %s", retry.Message.ID, first.Message.ID)
	}
	if msgs := s.messages(t, s.admin, id); len(msgs) != 2 {
		t.Fatalf("messages after a reply and its retry: %d, want 2", len(msgs))
	}
	// Characters, not bytes: 200 of two bytes each are at the limit too.
	var wide replyResp
	reply(runes(200)).want(t, 201).decode(t, &wide)
	if wide.Message.ID == first.Message.ID {
		t.Fatal("a new key returned the earlier reply")
	}
	// The key is compared as it came: bytes that are not UTF-8 (a Latin-1
	// "é" from a browser) are a key like any other.
	var latin1, again replyResp
	reply("caf\xe9-1").want(t, 201).decode(t, &latin1)
	reply("caf\xe9-1").want(t, 200).decode(t, &again)
	if again.Message.ID != latin1.Message.ID {
		t.Fatalf("a retry with a Latin-1 key made reply %s, want the first %s", again.Message.ID, latin1.Message.ID)
	}
}

// TestTransfer_LeadOnAThreadAlreadyTaggedLeadRunsNoTagRules: the tag rules
// run once per change; a lead transfer of a thread that carries lead
// already changes no tag, so a rule on lead does not run again.
func TestTransfer_LeadOnAThreadAlreadyTaggedLeadRunsNoTagRules(t *testing.T) {
	t.Parallel()
	s := newCareSetup(t)
	s.team(t, map[string]any{"id": "sales", "function": "sales"})
	s.rule(t, map[string]any{"id": "lead-close", "on": []string{"tag"}, "when": map[string]any{"tags_any": []string{"lead"}},
		"then": map[string]any{"add_tags": []string{"x"}, "close": true}})

	// The rule is live: a thread without lead is closed by it.
	fresh := s.ingest(t, msg("lead-new", nil)).Thread.ID
	token := s.claim(t, s.ana, fresh).Lock.Token
	var lr lockResp
	s.do(t, "POST", "/api/v1/threads/"+fresh+"/transfer", s.ana, map[string]any{"token": token, "reason": "lead"}).
		want(t, 200).decode(t, &lr)
	if lr.Thread.Status != "closed" || !slices.Equal(lr.Thread.Tags, []string{"lead", "x"}) {
		t.Fatalf("lead transfer of an untagged thread = %+v, want closed with lead,x", lr.Thread)
	}

	// A thread that came tagged lead (message tags run no tag rules).
	id := s.ingest(t, msg("lead-old", map[string]any{"tags": []string{"lead"}})).Thread.ID
	if th := s.thread(t, s.admin, id); !slices.Equal(th.Tags, []string{"lead"}) || th.Status != "queued" {
		t.Fatalf("ingested thread = %+v, want queued with tag lead", th)
	}
	for i, who := range []struct{ key, token string }{{s.ana, s.claim(t, s.ana, id).Lock.Token}, {s.sue, ""}} {
		body := map[string]any{"reason": "lead"}
		if who.token != "" {
			body["token"] = who.token
		}
		s.do(t, "POST", "/api/v1/threads/"+id+"/transfer", who.key, body).want(t, 200).decode(t, &lr)
		if lr.Thread.Status != "queued" || lr.Thread.Team != "sales" || !slices.Equal(lr.Thread.Tags, []string{"lead"}) {
			t.Fatalf("lead transfer %d of a thread tagged lead = %+v, want queued in sales with only lead", i+1, lr.Thread)
		}
	}
	if ev := findEvent(s.events(t, s.admin, id), "thread.closed"); ev != nil {
		t.Fatalf("the thread was closed: %+v", ev)
	}
}
