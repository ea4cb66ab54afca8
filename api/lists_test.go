package api_test

import (
	"fmt"
	"slices"
	"testing"
)

// pageOf is one page of a list, items reduced to their ids.
type pageOf struct {
	Items []struct {
		ID string `json:"id"`
	} `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// walk lists path page by page with limit and returns the ids in order and
// how many pages it took; between pages it calls between(page number).
func walk(t *testing.T, s *testServer, path string, limit int, between func(int)) ([]string, int) {
	t.Helper()
	var ids []string
	cursor := ""
	for pages := 1; ; pages++ {
		var p pageOf
		s.do(t, "GET", fmt.Sprintf("%s?limit=%d&cursor=%s", path, limit, cursor), s.admin, nil).want(t, 200).decode(t, &p)
		if len(p.Items) > limit {
			t.Fatalf("GET %s: %d items on a page of %d", path, len(p.Items), limit)
		}
		for _, it := range p.Items {
			ids = append(ids, it.ID)
		}
		if cursor = p.NextCursor; cursor == "" {
			return ids, pages
		}
		if between != nil {
			between(pages)
		}
	}
}

// TestLists_ConfigurationListsArePagedLikeEveryList: teams, agents, rules,
// keys and the rest take ?limit= and ?cursor= as the contract says of every
// list (default 50, at most 500, bad values refused with the field named),
// in the order each is listed in, and a record deleted or added between
// two pages neither repeats nor hides another.
func TestLists_ConfigurationListsArePagedLikeEveryList(t *testing.T) {
	t.Parallel()
	s := newTestServer(t)
	for i := range 60 {
		s.team(t, map[string]any{"id": fmt.Sprintf("team-%02d", i)})
	}
	var p pageOf
	s.do(t, "GET", "/api/v1/teams", s.admin, nil).want(t, 200).decode(t, &p)
	if len(p.Items) != 50 || p.NextCursor == "" {
		t.Fatalf("GET /teams without a limit: %d items, next %q; want the default 50 and a cursor", len(p.Items), p.NextCursor)
	}
	all, _ := walk(t, s, "/api/v1/teams", 500, nil)
	ids, pages := walk(t, s, "/api/v1/teams", 7, func(page int) {
		if page == 2 {
			// One already listed and one not yet listed go; one comes.
			s.do(t, "DELETE", "/api/v1/teams/team-03", s.admin, nil).want(t, 204)
			s.do(t, "DELETE", "/api/v1/teams/team-40", s.admin, nil).want(t, 204)
			s.team(t, map[string]any{"id": "team-99"})
		}
	})
	want := slices.DeleteFunc(slices.Clone(all), func(id string) bool { return id == "team-40" })
	want = append(want, "team-99")
	slices.Sort(want)
	if !slices.Equal(ids, want) || pages != (len(all)+6)/7 {
		t.Fatalf("paged by 7 (%d pages): %v\nwant %v", pages, ids, want)
	}

	// Rules page in the order they are evaluated: position, then id.
	for i := range 12 {
		s.rule(t, map[string]any{"id": fmt.Sprintf("rule-%02d", i), "position": 200 - i*10 + i%3, "then": map[string]any{"team": "team-00"}})
	}
	all, _ = walk(t, s, "/api/v1/rules", 500, nil)
	if ids, _ := walk(t, s, "/api/v1/rules", 5, nil); !slices.Equal(ids, all) || all[0] != "rule-11" {
		t.Fatalf("rules by 5: %v, all at once: %v (want rule-11 first, the lowest position)", ids, all)
	}

	for _, path := range []string{"/api/v1/teams", "/api/v1/agents", "/api/v1/rules", "/api/v1/keys",
		"/api/v1/webhooks", "/api/v1/saved-replies", "/api/v1/me/colleagues", "/api/v1/me/locks"} {
		key := s.admin
		if path == "/api/v1/me/colleagues" || path == "/api/v1/me/locks" {
			key = s.agent(t, map[string]any{"id": fmt.Sprintf("a%d", len(path)), "teams": []string{"team-00"}})
		}
		for _, q := range []string{"limit=0", "limit=501", "limit=abc"} {
			s.do(t, "GET", path+"?"+q, key, nil).wantErr(t, 400, "invalid_request", "limit")
		}
		s.do(t, "GET", path+"?cursor=%25%25", key, nil).wantErr(t, 400, "invalid_request", "cursor")
		s.do(t, "GET", path+"?limit=500", key, nil).want(t, 200)
	}
}
