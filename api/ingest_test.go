package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

func TestIngest_CreatesThenDeduplicates(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	ingest := s.ingestKey(t)

	m := msg("ig-17890001", map[string]any{"thread_external_id": "ig-conv-42", "text": "My order #123 arrived broken",
		"attachments": []any{map[string]any{"type": "image", "url": "https://cdn.example/1.jpg"}},
		"author":      map[string]any{"id": "u-991", "handle": "@maria", "name": "María", "followers": 120, "verified": false},
		"language":    "es", "sent_at": "2026-11-22T09:58:00Z", "tags": []string{}})
	r := s.do(t, "POST", "/api/v1/messages", ingest, m).want(t, 201)
	raw := r.obj(t)
	if raw["duplicate"] != false {
		t.Fatalf("duplicate = %v", raw["duplicate"])
	}
	var first ingestResp
	r.decode(t, &first)
	th := first.Thread
	if th.Network != "instagram" || th.Profile != "@acme" || th.ExternalID != "ig-conv-42" || th.Status != "queued" ||
		th.Team != "triage" || th.Priority != "normal" || th.Author.ID != "u-991" || th.Lock != nil || th.Assignee != nil {
		t.Fatalf("thread = %+v", th)
	}
	if first.Message.Direction != "inbound" || first.Message.ThreadID != th.ID || first.Message.ExternalID != "ig-17890001" ||
		!first.Message.SentAt.Equal(time.Date(2026, 11, 22, 9, 58, 0, 0, time.UTC)) || len(first.Message.Attachments) != 1 {
		t.Fatalf("message = %+v", first.Message)
	}

	// The same (network, external_id) again: 200, same ids, nothing new.
	m["text"] = "edited text is ignored"
	var dup ingestResp
	r = s.do(t, "POST", "/api/v1/messages", ingest, m).want(t, 200)
	r.decode(t, &dup)
	if !dup.Duplicate || dup.Message.ID != first.Message.ID || dup.Thread.ID != th.ID {
		t.Fatalf("duplicate = %+v", dup)
	}
	if msgs := s.messages(t, s.admin, th.ID); len(msgs) != 1 || msgs[0].Text != "My order #123 arrived broken" {
		t.Fatalf("messages after a duplicate = %+v", msgs)
	}

	// The same external id on another network is another message.
	other := s.ingest(t, msg("ig-17890001", map[string]any{"network": "twitter"}))
	if other.Message.ID == first.Message.ID || other.Thread.ID == th.ID {
		t.Fatal("a message on another network was taken for a duplicate")
	}
}

func TestIngest_ThreadKeyedByNetworkProfileAndThreadExternalID(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	a := s.ingest(t, msg("m1", map[string]any{"thread_external_id": "conv-1"}))
	b := s.ingest(t, msg("m2", map[string]any{"thread_external_id": "conv-1"}))
	if a.Thread.ID != b.Thread.ID {
		t.Fatal("two messages of one conversation made two threads")
	}
	otherProfile := s.ingest(t, msg("m3", map[string]any{"thread_external_id": "conv-1", "profile": "@acme-es"}))
	otherNetwork := s.ingest(t, msg("m4", map[string]any{"thread_external_id": "conv-1", "network": "facebook"}))
	// thread_external_id defaults to external_id.
	own := s.ingest(t, msg("m5", nil))
	if own.Thread.ExternalID != "m5" {
		t.Fatalf("thread external_id = %q, want m5", own.Thread.ExternalID)
	}
	joins := s.ingest(t, msg("m6", map[string]any{"thread_external_id": "m5"}))
	all := []string{a.Thread.ID, otherProfile.Thread.ID, otherNetwork.Thread.ID, own.Thread.ID}
	if len(slices.Compact(slices.Sorted(slices.Values(all)))) != 4 || joins.Thread.ID != own.Thread.ID {
		t.Fatalf("threads = %v, m6 in %s", all, joins.Thread.ID)
	}
	if n := len(s.threads(t, s.admin, "")); n != 4 {
		t.Fatalf("%d threads, want 4", n)
	}
	if msgs := s.messages(t, s.admin, a.Thread.ID); len(msgs) != 2 || msgs[0].ExternalID != "m1" || msgs[1].ExternalID != "m2" {
		t.Fatalf("conversation messages = %+v", msgs)
	}
}

func TestIngest_RoutesByRules(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care", "function": "care"})
	s.team(t, map[string]any{"id": "vip-desk", "function": "care"})
	s.rule(t, map[string]any{"id": "complaints", "position": 10,
		"when": map[string]any{"networks": []string{"instagram"}, "text_any": []string{"refund", "BROKEN"}},
		"then": map[string]any{"team": "care", "add_tags": []string{"complaint"}, "priority": "high"}})
	s.rule(t, map[string]any{"id": "orders", "position": 20,
		"when": map[string]any{"text_regex": `order\s*#\d+`},
		"then": map[string]any{"team": "vip-desk", "add_tags": []string{"order"}}})
	s.rule(t, map[string]any{"id": "spam", "position": 5,
		"when": map[string]any{"text_any": []string{"cheap followers"}},
		"then": map[string]any{"add_tags": []string{"spam"}, "close": true}, "stop": true})
	s.rule(t, map[string]any{"id": "famous", "position": 30,
		"when": map[string]any{"min_followers": 10000},
		"then": map[string]any{"add_tags": []string{"influencer"}, "priority": "urgent"}})

	// Both complaint and order rules match: tags from both, the first team.
	r := s.ingest(t, msg("m1", map[string]any{"text": "My order #123 arrived Broken"}))
	th := s.thread(t, s.admin, r.Thread.ID)
	if th.Team != "care" || th.Priority != "high" || strings.Join(th.Tags, ",") != "complaint,order" || th.Status != "queued" {
		t.Fatalf("routed thread = %+v", th)
	}
	// No rule names a team: the default team.
	r = s.ingest(t, msg("m2", map[string]any{"text": "hi there"}))
	if th := s.thread(t, s.admin, r.Thread.ID); th.Team != "triage" || th.Priority != "normal" || len(th.Tags) != 0 {
		t.Fatalf("unmatched thread = %+v", th)
	}
	// Spam closes at once and stops evaluation.
	r = s.ingest(t, msg("m3", map[string]any{"text": "Buy CHEAP followers, refund guaranteed", "author": map[string]any{"id": "bot", "followers": 50000}}))
	if th := s.thread(t, s.admin, r.Thread.ID); th.Status != "closed" || strings.Join(th.Tags, ",") != "spam" || th.Priority != "normal" {
		t.Fatalf("spam thread = %+v", th)
	}
	// Priority is raised by the highest matching rule.
	r = s.ingest(t, msg("m4", map[string]any{"text": "refund please", "author": map[string]any{"id": "star", "followers": 20000}}))
	if th := s.thread(t, s.admin, r.Thread.ID); th.Team != "care" || th.Priority != "urgent" || strings.Join(th.Tags, ",") != "complaint,influencer" {
		t.Fatalf("influencer thread = %+v", th)
	}

	// A follow-up runs rules for tags and priority but never moves the thread.
	first := s.ingest(t, msg("f1", map[string]any{"thread_external_id": "conv-f", "text": "hello"}))
	if first.Thread.Team != "triage" {
		t.Fatalf("first message team = %q", first.Thread.Team)
	}
	s.ingest(t, msg("f2", map[string]any{"thread_external_id": "conv-f", "text": "where is my refund for order #9"}))
	th = s.thread(t, s.admin, first.Thread.ID)
	if th.Team != "triage" || th.Priority != "high" || strings.Join(th.Tags, ",") != "complaint,order" {
		t.Fatalf("after follow-up = %+v", th)
	}
	// Priority is never lowered by a later, calmer message.
	s.ingest(t, msg("f3", map[string]any{"thread_external_id": "conv-f", "text": "thanks"}))
	if th := s.thread(t, s.admin, first.Thread.ID); th.Priority != "high" {
		t.Fatalf("priority lowered to %q", th.Priority)
	}
}

func TestIngest_UnstaffedTeamFallsBack(t *testing.T) {
	t.Parallel()
	s := newFallbackServer(t)
	r := s.ingest(t, msg("m1", map[string]any{"text": "need care"}))
	if r.Thread.Team != "overnight" {
		t.Fatalf("unstaffed care sent the thread to %q, want overnight", r.Thread.Team)
	}
	ev := s.events(t, s.admin, r.Thread.ID)
	if routed := findEvent(ev, "thread.routed"); routed == nil || routed.Data["team"] != "overnight" || routed.Data["ruled_team"] != "care" {
		t.Fatalf("thread.routed = %+v", routed)
	}
	// A cycle of unstaffed teams ends; the thread stays where the rules put it.
	r = s.ingest(t, msg("m2", map[string]any{"text": "ring ring"}))
	if r.Thread.Team != "ring-a" {
		t.Fatalf("fallback cycle sent the thread to %q, want ring-a", r.Thread.Team)
	}

	// At 19:00 eve is on shift: care is staffed and keeps its threads.
	s.clock.Advance(9 * time.Hour)
	r = s.ingest(t, msg("m3", map[string]any{"text": "need care"}))
	if r.Thread.Team != "care" {
		t.Fatalf("staffed care: thread went to %q", r.Thread.Team)
	}
	// A follow-up on the overnight thread does not move it back.
	s.ingest(t, msg("m4", map[string]any{"thread_external_id": "m1", "text": "still need care"}))
	if th := s.thread(t, s.admin, s.threadOf(t, "m1")); th.Team != "overnight" {
		t.Fatalf("follow-up moved the thread to %q", th.Team)
	}
}

// newFallbackServer has teams whose fallback chains end in a staffed team
// and in a cycle, and rules sending messages to each.
func newFallbackServer(t *testing.T) *testServer {
	t.Helper()
	s := newTestServer(t)
	// t0 is Monday 10:00 UTC.
	s.team(t, map[string]any{"id": "overnight", "function": "care"})
	s.team(t, map[string]any{"id": "care", "function": "care", "fallback_team": "overnight"})
	s.team(t, map[string]any{"id": "ring-a"})
	s.team(t, map[string]any{"id": "ring-b", "fallback_team": "ring-a"})
	s.do(t, "PUT", "/api/v1/teams/ring-a", s.admin, map[string]any{"fallback_team": "ring-b"}).want(t, 200)
	s.rule(t, map[string]any{"id": "to-care", "when": map[string]any{"text_any": []string{"care"}}, "then": map[string]any{"team": "care"}})
	s.rule(t, map[string]any{"id": "to-ring", "when": map[string]any{"text_any": []string{"ring"}}, "then": map[string]any{"team": "ring-a"}})

	// care's only members: one works evenings, one is on holiday. Status is
	// ignored: both are online.
	s.onlineAgent(t, map[string]any{"id": "eve", "teams": []string{"care"},
		"shifts": []any{map[string]any{"days": []string{"mon", "tue"}, "start": "18:00", "end": "02:00"}}})
	s.onlineAgent(t, map[string]any{"id": "hol", "teams": []string{"care"},
		"time_off": []any{map[string]any{"from": "2026-11-20T00:00:00Z", "to": "2026-11-24T00:00:00Z"}}})
	// overnight's member is on shift now but offline: staffing ignores status.
	s.agent(t, map[string]any{"id": "owl", "teams": []string{"overnight"}})
	s.agent(t, map[string]any{"id": "ringer", "teams": []string{"ring-a", "ring-b"},
		"shifts": []any{map[string]any{"days": []string{"sat"}, "start": "09:00", "end": "10:00"}}})
	return s
}

// TestRoutingPreview_ShowsTheRulesAndTheStaffingWalk: what the rules and
// shifts would do with a message, and why, as ingest then does it; a
// preview stores nothing.
func TestRoutingPreview_ShowsTheRulesAndTheStaffingWalk(t *testing.T) {
	t.Parallel()
	s := newFallbackServer(t)
	s.rule(t, map[string]any{"id": "vip", "position": 100, "when": map[string]any{"min_followers": 1000},
		"then": map[string]any{"add_tags": []string{"vip"}, "priority": "high"}})
	type step struct {
		Team    string   `json:"team"`
		Staffed bool     `json:"staffed"`
		OnShift []string `json:"on_shift"`
	}
	type preview struct {
		At        time.Time `json:"at"`
		Rules     []string  `json:"rules"`
		Tags      []string  `json:"tags"`
		Priority  string    `json:"priority"`
		Close     bool      `json:"close"`
		RuledTeam string    `json:"ruled_team"`
		Team      string    `json:"team"`
		Staffing  []step    `json:"staffing"`
	}
	ask := func(body map[string]any) preview {
		t.Helper()
		var p preview
		s.do(t, "POST", "/api/v1/routing/preview", s.admin, body).want(t, 200).decode(t, &p)
		return p
	}
	big := map[string]any{"id": "u-1", "followers": 5000}

	// Now (Monday 10:00): care has nobody on shift, overnight has owl.
	got := ask(map[string]any{"network": "instagram", "text": "need care", "tags": []string{"Order"}, "author": big})
	want := preview{At: t0, Rules: []string{"to-care", "vip"}, Tags: []string{"order", "vip"}, Priority: "high",
		RuledTeam: "care", Team: "overnight", Staffing: []step{{"care", false, []string{}}, {"overnight", true, []string{"owl"}}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("preview now:\n got %+v\nwant %+v", got, want)
	}
	// As ingest does.
	if r := s.ingest(t, msg("p1", map[string]any{"text": "need care", "author": big})); r.Thread.Team != got.Team || r.Thread.Priority != got.Priority {
		t.Fatalf("ingested: team %q priority %q, previewed %q %q", r.Thread.Team, r.Thread.Priority, got.Team, got.Priority)
	}
	// At 19:00 eve's shift has begun; a cycle of unstaffed teams is walked once.
	evening := t0.Add(9 * time.Hour)
	if got := ask(map[string]any{"network": "instagram", "text": "need care", "at": evening}); got.Team != "care" ||
		!reflect.DeepEqual(got.Staffing, []step{{"care", true, []string{"eve"}}}) || got.Priority != "normal" {
		t.Fatalf("preview at 19:00: %+v", got)
	}
	if got := ask(map[string]any{"network": "instagram", "text": "ring ring"}); got.Team != "ring-a" ||
		!reflect.DeepEqual(got.Staffing, []step{{"ring-a", false, []string{}}, {"ring-b", false, []string{}}}) {
		t.Fatalf("preview of a cycle: %+v", got)
	}
	// Bad input names its field; nothing is stored by any preview.
	s.do(t, "POST", "/api/v1/routing/preview", s.admin, map[string]any{"network": "myspace", "text": "x"}).wantErr(t, 400, "invalid_request", "network")
	s.do(t, "POST", "/api/v1/routing/preview", s.admin, map[string]any{"network": "instagram"}).wantErr(t, 400, "invalid_request", "text")
	if n := len(s.threads(t, s.admin, "")); n != 1 {
		t.Fatalf("%d threads stored, want only the one ingested", n)
	}
}

// threadOf finds the thread of an inbound external id (instagram, @acme).
func (s *testServer) threadOf(t *testing.T, extID string) string {
	t.Helper()
	for _, th := range s.threads(t, s.admin, "") {
		if th.ExternalID == extID {
			return th.ID
		}
	}
	t.Fatalf("no thread %s", extID)
	return ""
}

func findEvent(evs []store.Event, typ string) *store.Event {
	for i := range evs {
		if evs[i].Type == typ {
			return &evs[i]
		}
	}
	return nil
}

// batchResp is the batch endpoint's answer; failed items have only "error".
type batchResp struct {
	Results []struct {
		MessageID string    `json:"message_id"`
		ThreadID  string    `json:"thread_id"`
		Duplicate *bool     `json:"duplicate"`
		Error     *struct{} `json:"error"`
	} `json:"results"`
}

func TestIngestBatch_ResultsInOrderWithPerItemErrors(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	ingest := s.ingestKey(t)
	s.ingest(t, msg("old", nil))

	items := []any{
		msg("b1", nil),
		msg("b2", map[string]any{"author": map[string]any{"id": "x", "followers": "many"}}), // wrong type
		msg("b3", map[string]any{"author": map[string]any{"handle": "@nobody"}}),            // no author.id
		msg("b4", map[string]any{"network": "myspace"}),                                     // unknown network
		msg("old", nil), // duplicate
		msg("b5", map[string]any{"thread_external_id": "b1"}),
		"not an object",
		msg("b6", map[string]any{"kind": "letter"}),
		msg("b1", map[string]any{"thread_external_id": "elsewhere"}), // duplicate of an item above
	}
	r := s.do(t, "POST", "/api/v1/messages/batch", ingest, map[string]any{"messages": items}).want(t, 200)
	var raw struct {
		Results []map[string]json.RawMessage `json:"results"`
	}
	r.decode(t, &raw)
	if len(raw.Results) != len(items) {
		t.Fatalf("%d results for %d items", len(raw.Results), len(items))
	}
	wantErrs := map[int]string{1: "author.followers", 2: "author.id", 3: "network", 6: "body", 7: "kind"}
	var threadIDs []string
	for i, res := range raw.Results {
		if field, bad := wantErrs[i]; bad {
			var e errBody
			data, _ := json.Marshal(res)
			if err := json.Unmarshal(data, &e); err != nil || len(res) != 1 {
				t.Fatalf("result %d = %s, want only an error", i, data)
			}
			if e.Error.Code != "invalid_request" || e.Error.Details["field"] != field || e.Error.Message == "" {
				t.Fatalf("result %d = %s, want invalid_request on %s", i, data, field)
			}
			continue
		}
		var ok struct {
			MessageID string `json:"message_id"`
			ThreadID  string `json:"thread_id"`
			Duplicate *bool  `json:"duplicate"`
		}
		data, _ := json.Marshal(res)
		json.Unmarshal(data, &ok)
		if ok.MessageID == "" || ok.ThreadID == "" || ok.Duplicate == nil || *ok.Duplicate != (i == 4 || i == 8) || res["error"] != nil {
			t.Fatalf("result %d = %s", i, data)
		}
		threadIDs = append(threadIDs, ok.ThreadID)
	}
	// b1 and b5 share a thread; old is the existing one; the repeated b1
	// is b1.
	if threadIDs[0] != threadIDs[2] || threadIDs[3] != threadIDs[0] {
		t.Fatalf("b1 and b5 in different threads: %v", threadIDs)
	}
	got := ids(s.threads(t, s.admin, ""))
	if len(got) != 2 {
		t.Fatalf("%d threads stored, want 2 (old, b1)", len(got))
	}
	if msgs := s.messages(t, s.admin, threadIDs[0]); len(msgs) != 2 || msgs[0].ExternalID != "b1" || msgs[1].ExternalID != "b5" {
		t.Fatalf("b1 thread messages = %+v", msgs)
	}
}

func TestIngest_RefusedRequestsStoreNothing(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	ingest := s.ingestKey(t)
	s.ingest(t, msg("keep", nil))
	before := s.snapshot(t)

	withText := func(text string) map[string]any { return msg("t1", map[string]any{"text": text}) }
	cases := []struct {
		name  string
		body  any
		field string
	}{
		{"text of 20001 characters", withText(strings.Repeat("é", 20001)), "text"},
		{"malformed JSON", `{"network": "instagram", "external_id": `, "body"},
		{"not an object", `[1,2,3]`, "body"},
		// The decoder would store U+FFFD for the bad bytes: text nobody sent.
		{"text not UTF-8", []byte("{\"network\": \"instagram\", \"external_id\": \"t1\", \"author\": {\"id\": \"u\"}, \"text\": \"bad \xff here\"}"), "body"},
		{"followers of the wrong type", msg("t1", map[string]any{"author": map[string]any{"id": "u", "followers": "many"}}), "author.followers"},
		{"missing network", msg("t1", map[string]any{"network": ""}), "network"},
		{"unknown network", msg("t1", map[string]any{"network": "myspace"}), "network"},
		{"unknown kind", msg("t1", map[string]any{"kind": "letter"}), "kind"},
		{"missing external_id", msg("", nil), "external_id"},
		{"missing author.id", msg("t1", map[string]any{"author": map[string]any{"handle": "@x"}}), "author.id"},
		{"no text nor attachments", withText(""), "text"},
		{"bad attachment url", msg("t1", map[string]any{"attachments": []any{map[string]any{"type": "image", "url": "ftp://x"}}}), "attachments[0].url"},
		{"bad sent_at", msg("t1", map[string]any{"sent_at": "yesterday"}), "sent_at"},
		{"bad tag", msg("t1", map[string]any{"tags": []string{"ok", "not ok!"}}), "tags[1]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.do(t, "POST", "/api/v1/messages", ingest, c.body).wantErr(t, 400, "invalid_request", c.field)
		})
	}
	// Size limits.
	big := withText(strings.Repeat("a", 1<<20))
	s.do(t, "POST", "/api/v1/messages", ingest, big).wantErr(t, 413, "payload_too_large", "")
	var many []any
	for i := range 501 {
		many = append(many, msg(fmt.Sprintf("n%d", i), nil))
	}
	// Each says which limit it is.
	if e := s.do(t, "POST", "/api/v1/messages/batch", ingest, map[string]any{"messages": many}).wantErr(t, 413, "payload_too_large", ""); e.Error.Message != "a batch takes at most 500 messages, not 501" {
		t.Fatalf("batch of 501: %q", e.Error.Message)
	}
	huge := bytes.Repeat([]byte("x"), 8<<20)
	e := s.do(t, "POST", "/api/v1/messages/batch", ingest,
		[]byte(`{"messages": [{"network": "instagram", "external_id": "h1", "author": {"id": "u"}, "text": "`+string(huge)+`"}]}`)).
		wantErr(t, 413, "payload_too_large", "")
	if e.Error.Message != "body over the size limit" {
		t.Fatalf("batch over 8 MiB: %q", e.Error.Message)
	}
	s.do(t, "POST", "/api/v1/messages/batch", ingest, `{"messages": `).wantErr(t, 400, "invalid_request", "body")
	s.do(t, "POST", "/api/v1/messages/batch", ingest, `{}`).wantErr(t, 400, "invalid_request", "messages")
	s.unchanged(t, before)

	// 20000 characters are fine, though they take 40000 bytes.
	r := s.ingestAs(t, ingest, withText(strings.Repeat("é", 20000)))
	if got := s.messages(t, s.admin, r.Thread.ID); len([]rune(got[0].Text)) != 20000 {
		t.Fatalf("stored text of %d characters", len([]rune(got[0].Text)))
	}
	// A batch of 500 is within the limit; a batch body over 1 MiB is fine.
	many = many[:500]
	many[0] = msg("n0", map[string]any{"text": strings.Repeat("b", 1<<20)})
	var br batchResp
	s.do(t, "POST", "/api/v1/messages/batch", ingest, map[string]any{"messages": many}).want(t, 200).decode(t, &br)
	if len(br.Results) != 500 {
		t.Fatalf("%d results", len(br.Results))
	}
	// n0's text is over 20000 characters: refused on its own.
	if br.Results[0].MessageID != "" || br.Results[0].Error == nil || br.Results[1].MessageID == "" || br.Results[499].MessageID == "" {
		t.Fatalf("batch of 500: first %+v, second %+v", br.Results[0], br.Results[1])
	}
	if n := len(s.threads(t, s.admin, "")); n != 2+499 {
		t.Fatalf("%d threads, want %d", n, 2+499)
	}
}

func TestIngest_DeliveryReportOnOutboundReply(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care"})
	ana := s.agent(t, map[string]any{"id": "ana", "teams": []string{"care"}})
	s.rule(t, map[string]any{"id": "all", "then": map[string]any{"team": "care"}})
	ingest := s.ingestKey(t)
	in := s.ingestAs(t, ingest, msg("m1", nil))
	lock := s.claim(t, ana, in.Thread.ID)
	var rep replyResp
	s.do(t, "POST", "/api/v1/threads/"+in.Thread.ID+"/replies", ana, map[string]any{"token": lock.Lock.Token, "text": "On it"}).want(t, 201).decode(t, &rep)
	if rep.Message.Delivery == nil || rep.Message.Delivery.Status != "pending" {
		t.Fatalf("new reply delivery = %+v", rep.Message.Delivery)
	}

	path := "/api/v1/messages/" + rep.Message.ID + "/delivery"
	s.do(t, "POST", path, ana, map[string]any{"status": "sent"}).wantErr(t, 403, "forbidden", "")
	s.do(t, "POST", path, ingest, map[string]any{"status": "delivered"}).wantErr(t, 400, "invalid_request", "status")
	s.do(t, "POST", "/api/v1/messages/nope/delivery", ingest, map[string]any{"status": "sent"}).wantErr(t, 404, "not_found", "")
	s.do(t, "POST", "/api/v1/messages/"+in.Message.ID+"/delivery", ingest, map[string]any{"status": "sent"}).wantErr(t, 404, "not_found", "")
	s.do(t, "POST", path, ingest, map[string]any{"status": "failed", "error": "rate limited by network"}).want(t, 200)
	s.do(t, "POST", path, ingest, map[string]any{"status": "sent", "external_id": "ig-out-1"}).want(t, 200)

	msgs := s.messages(t, ana, in.Thread.ID)
	if len(msgs) != 2 || msgs[1].ID != rep.Message.ID || msgs[1].Delivery == nil ||
		*msgs[1].Delivery != (store.Delivery{Status: "sent", ExternalID: "ig-out-1"}) || msgs[0].Delivery != nil {
		t.Fatalf("messages = %+v", msgs)
	}
}

// TestIngestBatch_DeepNestingIs400AndOnlyIngestKeysGetDecoded: 8 MiB of "["
// overflowed the decoder's stack and killed the process; now it is a 400
// naming the body, and a key that may not ingest is refused before its
// body is decoded at all (before it is read, past the ordinary 1 MiB).
func TestIngestBatch_DeepNestingIs400AndOnlyIngestKeysGetDecoded(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	ingest := s.ingestKey(t)
	agent := s.agent(t, map[string]any{"id": "deep", "teams": []string{"triage"}})
	bomb := []byte(`{"messages":` + strings.Repeat("[", 8<<20-20))
	s.do(t, "POST", "/api/v1/messages/batch", ingest, bomb).wantErr(t, 400, "invalid_request", "body")
	// A key that may not ingest gets only the ordinary limit, so its
	// bomb is refused before it is read; a small body gets the 403.
	s.do(t, "POST", "/api/v1/messages/batch", agent, bomb).wantErr(t, 413, "payload_too_large", "")
	s.do(t, "POST", "/api/v1/messages/batch", agent, []byte(`{"messages":`+strings.Repeat("[", 1<<19))).wantErr(t, 403, "forbidden", "")
	s.do(t, "POST", "/api/v1/session", "", []byte(`{"key":"x","junk":`+strings.Repeat("[", 1<<12)+`}`)).
		wantErr(t, 400, "invalid_request", "body")
	// A larger one is not read at all without credentials (see
	// TestBodyLimit_StrangersSendOnlyASmallBody).
	s.do(t, "POST", "/api/v1/session", "", []byte(`{"key":"x","junk":`+strings.Repeat("[", 1<<19)+`}`)).
		wantErr(t, 413, "payload_too_large", "")
	// The server is still up.
	s.do(t, "POST", "/api/v1/messages/batch", ingest, map[string]any{"messages": []any{msg("after", nil)}}).want(t, 200)
}

// TestIngestBatch_IdsThatAreNotUTF8AreRefusedItemByItem: the decoder makes
// U+FFFD of bytes that are not UTF-8 and of lone surrogate escapes, so two
// such ids would be one, and the second message dropped as a duplicate.
// They are refused, each item on its own (bytes that are not UTF-8 refuse
// the item's body, a lone surrogate its id): the rest of the batch is
// stored.
func TestIngestBatch_IdsThatAreNotUTF8AreRefusedItemByItem(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	item := func(id string) string {
		return `{"network":"twitter","external_id":"` + id + `","kind":"dm","text":"hi","author":{"id":"u-1"}}`
	}
	body := []byte(`{"messages":[` + item("ok-1") + `,` + item("bad-\xff") + `,` + item(`bad-\ud800`) + `,` + item(`bad-\ud801`) + `]}`)
	var res struct {
		Results []map[string]any `json:"results"`
	}
	s.send(t, req{method: "POST", path: "/api/v1/messages/batch", key: s.admin, body: body,
		header: map[string]string{"Content-Type": "application/json"}}).want(t, 200).decode(t, &res)
	if len(res.Results) != 4 || res.Results[0]["message_id"] == nil {
		t.Fatalf("results %v", res.Results)
	}
	for i, r := range res.Results[1:] {
		field := "external_id"
		if i == 0 {
			field = "body"
		}
		e, _ := r["error"].(map[string]any)
		if d, _ := e["details"].(map[string]any); e["code"] != "invalid_request" || d["field"] != field {
			t.Fatalf("item %d: %v, want a 400 naming %s", i+1, r, field)
		}
	}
	if n := len(s.threads(t, s.admin, "")); n != 1 {
		t.Fatalf("%d threads, want the one good item's", n)
	}
}

// TestIngest_InReplyToJoinsTheAnsweredMessagesThread: a message naming the
// message it answers (in_reply_to) joins that message's thread when it is
// the same author's, also when the answered message is earlier in the same
// batch (a chain in one request was split across two threads); another
// author answering stays in a thread of their own.
func TestIngest_InReplyToJoinsTheAnsweredMessagesThread(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	author := map[string]any{"id": "u-lena", "handle": "@lena"}
	first := s.ingest(t, msg("tw-1", map[string]any{"network": "twitter", "thread_external_id": "conv:tw-1:u-lena", "author": author}))
	s.do(t, "POST", "/api/v1/messages/batch", s.admin, map[string]any{"messages": []any{
		msg("tw-2", map[string]any{"network": "twitter", "thread_external_id": "conv:tw-1:u-lena", "in_reply_to": "tw-1", "author": author}),
		msg("tw-3", map[string]any{"network": "twitter", "thread_external_id": "conv:tw-2:u-lena", "in_reply_to": "tw-2", "author": author}),
		msg("tw-4", map[string]any{"network": "twitter", "thread_external_id": "conv:tw-3:u-lena", "in_reply_to": "tw-3", "author": author}),
		msg("tw-5", map[string]any{"network": "twitter", "thread_external_id": "conv:tw-3:u-other", "in_reply_to": "tw-3"}),
	}}).want(t, 200)
	var ids []string
	for _, m := range s.messages(t, s.admin, first.Thread.ID) {
		ids = append(ids, m.ExternalID)
	}
	if !slices.Equal(ids, []string{"tw-1", "tw-2", "tw-3", "tw-4"}) {
		t.Fatalf("the first thread holds %q, want the chain tw-1..tw-4", ids)
	}
	if n := len(s.threads(t, s.admin, "network=twitter")); n != 2 {
		t.Fatalf("%d threads, want the chain's and the other author's", n)
	}
	// A message of another profile (another of the brand's accounts) is
	// not joined to the answered one's thread, stored or earlier in the
	// same batch.
	other := s.ingest(t, msg("tw-7", map[string]any{"network": "twitter", "profile": "@acmesupport", "thread_external_id": "conv:7:u-lena",
		"in_reply_to": "tw-1", "author": author}))
	if other.Thread.ExternalID != "conv:7:u-lena" || other.Thread.ID == first.Thread.ID {
		t.Fatalf("an answer in another profile joined %s (%s)", other.Thread.ExternalID, other.Thread.ID)
	}
	s.do(t, "POST", "/api/v1/messages/batch", s.admin, map[string]any{"messages": []any{
		msg("tw-8", map[string]any{"network": "twitter", "thread_external_id": "conv:8:u-lena", "author": author}),
		msg("tw-9", map[string]any{"network": "twitter", "profile": "@acmesupport", "thread_external_id": "conv:9:u-lena", "in_reply_to": "tw-8", "author": author}),
	}}).want(t, 200)
	if th := s.threads(t, s.admin, "network=twitter&author=u-lena"); len(th) != 4 {
		t.Fatalf("%d threads of u-lena, want the chain's, tw-7's, tw-8's and tw-9's own", len(th))
	}
	// in_reply_to is checked like the other ids.
	s.do(t, "POST", "/api/v1/messages", s.admin, msg("tw-6", map[string]any{"in_reply_to": strings.Repeat("x", 257)})).
		wantErr(t, 400, "invalid_request", "in_reply_to")
}

// TestIngestBatch_AnEmptyBodyLacksMessagesAnEmptyListIsAnEmptyBatch: a
// batch with no body at all is refused for its missing messages (not as
// malformed JSON), while a list with nothing in it is a batch of nothing,
// as before.
func TestIngestBatch_AnEmptyBodyLacksMessagesAnEmptyListIsAnEmptyBatch(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	ingest := s.ingestKey(t)
	before := s.snapshot(t)
	s.send(t, req{method: "POST", path: "/api/v1/messages/batch", key: ingest, body: "",
		header: map[string]string{"Content-Type": "application/json"}}).wantErr(t, 400, "invalid_request", "messages")
	s.do(t, "POST", "/api/v1/messages/batch", ingest, map[string]any{}).wantErr(t, 400, "invalid_request", "messages")
	var res struct {
		Results []any `json:"results"`
	}
	s.do(t, "POST", "/api/v1/messages/batch", ingest, map[string]any{"messages": []any{}}).want(t, 200).decode(t, &res)
	if res.Results == nil || len(res.Results) != 0 {
		t.Fatalf("an empty batch answered results %v, want []", res.Results)
	}
	s.unchanged(t, before)
}

// TestRoutingPreview_AnswersInUTCAndRefusesATimePastTheYear9999: "at" may
// carry any offset; the answer is in UTC, as every time the API gives, and
// an "at" that is past 9999 in UTC is refused by name, not a 500.
func TestRoutingPreview_AnswersInUTCAndRefusesATimePastTheYear9999(t *testing.T) {
	t.Parallel()
	s := newFallbackServer(t)
	got := s.do(t, "POST", "/api/v1/routing/preview", s.admin,
		map[string]any{"network": "instagram", "text": "need care", "at": "2026-11-24T04:00:00+09:00"}).want(t, 200).obj(t)
	if got["at"] != "2026-11-23T19:00:00Z" || got["team"] != "care" {
		t.Fatalf("preview at 04:00+09:00 (19:00 UTC, eve's shift): at %v, team %v; want at 2026-11-23T19:00:00Z, team care", got["at"], got["team"])
	}
	s.do(t, "POST", "/api/v1/routing/preview", s.admin,
		map[string]any{"network": "instagram", "text": "need care", "at": "9999-12-31T23:00:00-05:00"}).wantErr(t, 400, "invalid_request", "at")
}

// TestRoutingPreview_ShowsWhatTheRulesDecide: a rule matching the
// message's tags closes it and adds a tag it already has (shown once); a
// message no rule matches lists no rules, as an empty list.
func TestRoutingPreview_ShowsWhatTheRulesDecide(t *testing.T) {
	t.Parallel()
	s := newFallbackServer(t)
	s.rule(t, map[string]any{"id": "spam", "when": map[string]any{"tags_any": []string{"spam"}},
		"then": map[string]any{"add_tags": []string{"spam", "auto-closed"}, "close": true}})
	var p struct {
		Rules []string `json:"rules"`
		Tags  []string `json:"tags"`
		Close bool     `json:"close"`
	}
	s.do(t, "POST", "/api/v1/routing/preview", s.admin,
		map[string]any{"network": "instagram", "text": "win a prize", "tags": []string{"spam"}}).want(t, 200).decode(t, &p)
	if !reflect.DeepEqual(p.Rules, []string{"spam"}) || !reflect.DeepEqual(p.Tags, []string{"spam", "auto-closed"}) || !p.Close {
		t.Fatalf("preview of spam: %+v, want rule spam, tags spam and auto-closed, closed", p)
	}
	raw := s.do(t, "POST", "/api/v1/routing/preview", s.admin, map[string]any{"network": "instagram", "text": "hello"}).want(t, 200).obj(t)
	if rules, ok := raw["rules"].([]any); !ok || len(rules) != 0 || raw["close"] != false {
		t.Fatalf("preview of a message no rule matches: rules %#v, close %v; want [] and false", raw["rules"], raw["close"])
	}
}

// TestRoutingPreview_AnAgentIsRefusedBeforeItsBodyIsRead: as for every
// route a role may not call, a malformed body changes nothing: 403.
func TestRoutingPreview_AnAgentIsRefusedBeforeItsBodyIsRead(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	agent := s.agent(t, map[string]any{"id": "ana"})
	s.send(t, req{method: "POST", path: "/api/v1/routing/preview", key: agent, body: "{bad"}).wantErr(t, 403, "forbidden", "")
}
