package api_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

func savedTitles(t *testing.T, s *opsServer, key, query string) string {
	t.Helper()
	var page list[store.SavedReply]
	s.do(t, "GET", "/api/v1/saved-replies"+query, key, nil).want(t, 200).decode(t, &page)
	var titles []string
	for _, r := range page.Items {
		titles = append(titles, r.Title)
	}
	return strings.Join(titles, ",")
}

func TestSavedReplies_SupervisorsWriteAgentsReadTheirTeams(t *testing.T) {
	t.Parallel()
	s := newOpsServer(t, opsOptions{})
	s.team(t, map[string]any{"id": "care"})
	s.team(t, map[string]any{"id": "sales"})
	ana := s.agent(t, map[string]any{"id": "ana", "teams": []string{"care"}})
	sam := s.agent(t, map[string]any{"id": "sam", "teams": []string{"sales"}})
	loner := s.agent(t, map[string]any{"id": "loner"}) // no team
	sup := s.agent(t, map[string]any{"id": "sup", "role": "supervisor"})
	ingest := s.ingestKey(t)

	create := func(key string, body map[string]any) store.SavedReply {
		t.Helper()
		var r store.SavedReply
		s.do(t, "POST", "/api/v1/saved-replies", key, body).want(t, 201).decode(t, &r)
		return r
	}
	greet := create(s.admin, map[string]any{"id": "greet", "title": "A greeting", "text": "Hi {{author.name}}, {{agent.name}} here."})
	if greet.ID != "greet" || fmt.Sprint(greet.Teams) != "[]" || greet.Text != "Hi {{author.name}}, {{agent.name}} here." || !greet.CreatedAt.Equal(t0) {
		t.Fatalf("created = %+v", greet)
	}
	create(sup, map[string]any{"id": "refund", "title": "B refund", "text": "We are sorry.", "teams": []string{"care"}})
	create(s.admin, map[string]any{"id": "pricing", "title": "C pricing", "text": "Our plans...", "teams": []string{"sales"}})
	both := create(sup, map[string]any{"title": "D both", "text": "Thanks!", "teams": []string{"care", "sales", "care"}})
	if both.ID == "" || fmt.Sprint(both.Teams) != "[care sales]" {
		t.Fatalf("created without id = %+v", both)
	}

	body := map[string]any{"id": "x", "title": "X", "text": "x"}
	for _, key := range []string{ana, ingest} {
		s.do(t, "POST", "/api/v1/saved-replies", key, body).wantErr(t, 403, "forbidden", "")
		s.do(t, "PUT", "/api/v1/saved-replies/greet", key, body).wantErr(t, 403, "forbidden", "")
		s.do(t, "DELETE", "/api/v1/saved-replies/greet", key, nil).wantErr(t, 403, "forbidden", "")
	}
	s.do(t, "GET", "/api/v1/saved-replies", ingest, nil).wantErr(t, 403, "forbidden", "")

	for _, c := range []struct {
		who, key, query, want string
	}{
		{"ana", ana, "", "A greeting,B refund,D both"},
		{"sam", sam, "", "A greeting,C pricing,D both"},
		{"loner", loner, "", "A greeting"},
		{"sup", sup, "", "A greeting,B refund,C pricing,D both"},
		{"admin", s.admin, "", "A greeting,B refund,C pricing,D both"},
		{"sup care", sup, "?team=care", "A greeting,B refund,D both"},
		{"ana sales", ana, "?team=sales", "A greeting,D both"},
	} {
		if got := savedTitles(t, s, c.key, c.query); got != c.want {
			t.Fatalf("%s lists %q, want %q", c.who, got, c.want)
		}
	}
	s.do(t, "GET", "/api/v1/saved-replies/pricing", ana, nil).wantErr(t, 404, "not_found", "")
	s.do(t, "GET", "/api/v1/saved-replies/pricing", sam, nil).want(t, 200)
	s.do(t, "GET", "/api/v1/saved-replies/greet", loner, nil).want(t, 200)

	s.clock.Advance(time.Hour)
	var upd store.SavedReply
	s.do(t, "PUT", "/api/v1/saved-replies/pricing", sup, map[string]any{"title": "C prices", "text": "New plans", "teams": []string{"sales", "care"}}).
		want(t, 200).decode(t, &upd)
	if upd.ID != "pricing" || upd.Title != "C prices" || !upd.CreatedAt.Equal(t0) || !upd.UpdatedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("updated = %+v", upd)
	}
	if got := savedTitles(t, s, ana, ""); got != "A greeting,B refund,C prices,D both" {
		t.Fatalf("ana after the update lists %q", got)
	}
	s.do(t, "PUT", "/api/v1/saved-replies/nope", s.admin, body).wantErr(t, 404, "not_found", "")
	s.do(t, "DELETE", "/api/v1/saved-replies/refund", sup, nil).want(t, 204)
	s.do(t, "GET", "/api/v1/saved-replies/refund", s.admin, nil).wantErr(t, 404, "not_found", "")
	s.do(t, "DELETE", "/api/v1/saved-replies/refund", s.admin, nil).wantErr(t, 404, "not_found", "")
	if got := savedTitles(t, s, ana, ""); got != "A greeting,C prices,D both" {
		t.Fatalf("ana after the delete lists %q", got)
	}
}

func TestSavedReplies_ValidationNamesTheField(t *testing.T) {
	t.Parallel()
	s := newOpsServer(t, opsOptions{})
	s.team(t, map[string]any{"id": "care"})
	s.do(t, "POST", "/api/v1/saved-replies", s.admin, map[string]any{"id": "taken", "title": "T", "text": "t"}).want(t, 201)
	before := savedTitles(t, s, s.admin, "")
	for _, c := range []struct {
		name  string
		body  any
		field string
	}{
		{"no title", map[string]any{"text": "t"}, "title"},
		{"blank title", map[string]any{"title": "  ", "text": "t"}, "title"},
		{"long title", map[string]any{"title": strings.Repeat("é", 201), "text": "t"}, "title"},
		{"no text", map[string]any{"title": "T"}, "text"},
		{"long text", map[string]any{"title": "T", "text": strings.Repeat("é", 20001)}, "text"},
		{"bad id", map[string]any{"id": "Not A Slug", "title": "T", "text": "t"}, "id"},
		{"bad team", map[string]any{"title": "T", "text": "t", "teams": []string{"care", "Bad Team"}}, "teams[1]"},
		{"unknown team", map[string]any{"title": "T", "text": "t", "teams": []string{"nope"}}, "teams"},
		{"teams not a list", map[string]any{"title": "T", "text": "t", "teams": "care"}, "teams"},
		{"malformed", "{", "body"},
	} {
		s.do(t, "POST", "/api/v1/saved-replies", s.admin, c.body).wantErr(t, 400, "invalid_request", c.field)
		if c.field != "id" { // PUT takes the id from the path
			s.do(t, "PUT", "/api/v1/saved-replies/taken", s.admin, c.body).wantErr(t, 400, "invalid_request", c.field)
		}
	}
	s.do(t, "PUT", "/api/v1/saved-replies/Not-A-Slug", s.admin, map[string]any{"title": "T", "text": "t"}).wantErr(t, 400, "invalid_request", "id")
	s.do(t, "POST", "/api/v1/saved-replies", s.admin, map[string]any{"id": "taken", "title": "T2", "text": "t"}).wantErr(t, 409, "already_exists", "")
	if after := savedTitles(t, s, s.admin, ""); after != before {
		t.Fatalf("refused writes changed the list: %q -> %q", before, after)
	}
	var r store.SavedReply
	s.do(t, "GET", "/api/v1/saved-replies/taken", s.admin, nil).want(t, 200).decode(t, &r)
	if r.Title != "T" || r.Text != "t" {
		t.Fatalf("refused PUTs changed the reply: %+v", r)
	}
}
