package store

import "testing"

func TestPageLimit_DefaultsTo50AndCapsAt500(t *testing.T) {
	for in, want := range map[int]int{-1: 50, 0: 50, 1: 1, 7: 7, 500: 500, 501: 500, 100000: 500} {
		if got := PageLimit(in); got != want {
			t.Errorf("PageLimit(%d) = %d, want %d", in, got, want)
		}
	}
}
