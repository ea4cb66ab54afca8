package store

import "testing"

func TestPageLimit_DefaultsTo50AndCapsAt500(t *testing.T) {
	for in, want := range map[int]int{-1: 50, 0: 50, 1: 1, 7: 7, 500: 500, 501: 500, 100000: 500} {
		if got := PageLimit(in); got != want {
			t.Errorf("PageLimit(%d) = %d, want %d", in, got, want)
		}
	}
}

// TestThreadFilter_AuthorMatchesAHandleInAnyCase: ?author= and `switchboard
// forget` find @MariaG by "@mariag" or "mariag"; ids stay exact.
func TestThreadFilter_AuthorMatchesAHandleInAnyCase(t *testing.T) {
	th := &Thread{Author: Author{ID: "U-99", Handle: "@MariaG"}}
	for _, c := range []struct {
		author string
		want   bool
	}{
		{"@MariaG", true}, {"@mariag", true}, {"mariag", true}, {"MARIAG", true}, {"U-99", true},
		{"u-99", false}, {"@maria", false}, {"@", false}, {"@@mariag", false},
	} {
		f := ThreadFilter{Author: c.author}
		if got := f.Match(th); got != c.want {
			t.Errorf("author %q matches @MariaG: %v, want %v", c.author, got, c.want)
		}
	}
	noHandle := &Thread{Author: Author{ID: "u-1"}}
	if f := (ThreadFilter{Author: "@"}); f.Match(noHandle) {
		t.Error(`author "@" matches a thread without a handle`)
	}
}

// TestTeamUsers_InUseCountsOnlyOpenThreads: a count that drifted below
// zero is none, and the wording counts what is left: both stores refuse
// exactly when a count is above zero.
func TestTeamUsers_InUseCountsOnlyOpenThreads(t *testing.T) {
	for _, c := range []struct {
		u    TeamUsers
		want string
	}{
		{TeamUsers{}, ""},
		{TeamUsers{Queued: -1}, ""},
		{TeamUsers{Queued: 1, Pending: -1}, "1 queued thread"},
		{TeamUsers{Queued: 2, Assigned: -1}, "2 queued threads"},
		{TeamUsers{Queued: 3, Assigned: 1}, "3 queued, 1 assigned threads"},
		{TeamUsers{Rules: []string{"b", "a"}, Pending: 1}, "rules a, b; 1 pending thread"},
	} {
		got := ""
		if e := c.u.InUse(); e != nil {
			got = e.By
		}
		if got != c.want {
			t.Errorf("%+v: in use by %q, want %q", c.u, got, c.want)
		}
	}
}

// TestTeamUsers_InUseWordsEachKindOfUser: up to five ids of a kind are all
// named (six are five and one more), and an open-thread count that drifted
// below zero is none.
func TestTeamUsers_InUseWordsEachKindOfUser(t *testing.T) {
	for _, c := range []struct {
		u    TeamUsers
		want string // "" for nil: nothing refers to the team
	}{
		{TeamUsers{}, ""},
		{TeamUsers{Agents: []string{"e", "d", "c", "b", "a"}}, "agents a, b, c, d, e"},
		{TeamUsers{Agents: []string{"f", "e", "d", "c", "b", "a"}}, "agents a, b, c, d, e and 1 more"},
		{TeamUsers{Rules: []string{"r"}, Queued: -1}, "rule r"},
		{TeamUsers{Queued: -2, Pending: 1}, "1 pending thread"},
		{TeamUsers{Queued: -1, Assigned: -1, Pending: -1}, ""},
	} {
		got := c.u.InUse()
		switch {
		case c.want == "" && got != nil:
			t.Errorf("%+v: in use by %q, want nil", c.u, got.By)
		case c.want != "" && (got == nil || got.By != c.want):
			t.Errorf("%+v: %v, want in use by %q", c.u, got, c.want)
		}
	}
}
