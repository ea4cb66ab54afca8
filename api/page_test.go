package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/inbox"
)

// The inbox page's two additions: a preview per queued thread and the names
// of colleagues.

func TestQueue_ItemsCarryThePreviewOfTheLatestInboundMessage(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care", "function": "care"})
	s.rule(t, map[string]any{"id": "to-care", "position": 1, "then": map[string]any{"team": "care"}})
	ana := s.onlineAgent(t, map[string]any{"id": "ana", "teams": []string{"care"}})

	first := s.ingest(t, msg("p1", map[string]any{"thread_external_id": "conv", "text": "\n  My order #12 arrived broken  \nplease help"}))
	long := s.ingest(t, msg("p2", map[string]any{"text": strings.Repeat("é", 300)})).Thread.ID
	photo := s.ingest(t, msg("p3", map[string]any{"text": "", "attachments": []map[string]any{{"type": "image", "url": "https://x/y.jpg"}}})).Thread.ID

	preview := func() map[string]string {
		var page list[inbox.QueueItem]
		s.do(t, "GET", "/api/v1/queue?team=care", ana, nil).want(t, 200).decode(t, &page)
		out := map[string]string{}
		for _, it := range page.Items {
			out[it.ID] = it.Preview
		}
		return out
	}
	got := preview()
	if p := got[first.Thread.ID]; p != "My order #12 arrived broken" {
		t.Errorf("preview %q, want the first non-empty line, trimmed", p)
	}
	if p := []rune(got[long]); len(p) != inbox.PreviewRunes || p[len(p)-1] != '…' {
		t.Errorf("long preview has %d runes (%q...), want %d ending in …", len(p), string(p[:5]), inbox.PreviewRunes)
	}
	if p, ok := got[photo]; !ok || p != "" {
		t.Errorf("attachment-only preview %q (listed %v), want empty", p, ok)
	}

	// A follow-up shows instead; a reply (outbound) does not.
	s.ingest(t, msg("p4", map[string]any{"thread_external_id": "conv", "text": "Any news?"}))
	if p := preview()[first.Thread.ID]; p != "Any news?" {
		t.Errorf("after a follow-up: preview %q, want the latest inbound message", p)
	}
}

func TestColleagues_AgentsSeeTeammatesAndSupervisors(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	s.team(t, map[string]any{"id": "care", "function": "care"})
	s.team(t, map[string]any{"id": "sales", "function": "sales"})
	ana := s.agent(t, map[string]any{"id": "ana", "name": "Ana", "teams": []string{"care"}})
	s.agent(t, map[string]any{"id": "bea", "name": "Bea", "teams": []string{"care", "sales"}})
	s.agent(t, map[string]any{"id": "omar", "name": "Omar", "teams": []string{"sales"}})
	sam := s.agent(t, map[string]any{"id": "sam", "name": "Sam", "role": "supervisor", "teams": []string{"sales"}})

	names := func(key string) string {
		var page list[inbox.Colleague]
		s.do(t, "GET", "/api/v1/me/colleagues", key, nil).want(t, 200).decode(t, &page)
		var out []string
		for _, c := range page.Items {
			out = append(out, c.ID+"="+c.Name)
		}
		return strings.Join(out, ",")
	}
	if got, want := names(ana), "ana=Ana,bea=Bea,sam=Sam"; got != want {
		t.Errorf("agent sees %s, want %s", got, want)
	}
	if got, want := names(sam), "ana=Ana,bea=Bea,omar=Omar,sam=Sam"; got != want {
		t.Errorf("supervisor sees %s, want %s", got, want)
	}
	if got, want := names(s.admin), "ana=Ana,bea=Bea,omar=Omar,sam=Sam"; got != want {
		t.Errorf("admin sees %s, want %s", got, want)
	}
	s.do(t, "GET", "/api/v1/me/colleagues", s.ingestKey(t), nil).wantErr(t, 403, "forbidden", "")
	s.do(t, "GET", "/api/v1/me/colleagues", "", nil).wantErr(t, 401, "unauthorized", "")
}

// TestQueue_PreviewOfALongThreadIsItsNewestMessage: the preview reads the
// thread's messages newest first. It used to read them oldest first and
// stop after 2,000, so a longer thread showed a stale line, and every
// listed thread cost up to 2,000 message reads.
func TestQueue_PreviewOfALongThreadIsItsNewestMessage(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	ana := s.onlineAgent(t, map[string]any{"id": "ana", "teams": []string{"triage"}})
	ingest := s.ingestKey(t)
	const n = 2100
	for from := 0; from < n; from += 500 {
		var items []any
		for i := from; i < min(from+500, n); i++ {
			items = append(items, msg(fmt.Sprintf("long-%d", i), map[string]any{"thread_external_id": "long", "text": fmt.Sprintf("message %d", i)}))
		}
		s.do(t, "POST", "/api/v1/messages/batch", ingest, map[string]any{"messages": items}).want(t, 200)
	}
	var page list[inbox.QueueItem]
	s.do(t, "GET", "/api/v1/queue", ana, nil).want(t, 200).decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].Preview != fmt.Sprintf("message %d", n-1) {
		t.Fatalf("queue %+v, want one thread previewing %q", page.Items, fmt.Sprintf("message %d", n-1))
	}
}
