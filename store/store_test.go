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
