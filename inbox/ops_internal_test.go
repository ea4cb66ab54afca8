package inbox

import (
	"math"
	"testing"
	"time"
)

func TestOfferRound_CountsOffersAndTheNewest(t *testing.T) {
	var nilRound *offerRound
	nilRound.add("ann") // a nil round records nothing and does not panic
	if n, newest := nilRound.count("ann"); n != 0 || newest != -1 {
		t.Fatalf("nil round count = %d, %d", n, newest)
	}
	r := &offerRound{}
	for _, id := range []string{"ann", "", "bob", "ann", "cat"} {
		r.add(id)
	}
	for id, want := range map[string][2]int{"ann": {2, 2}, "bob": {1, 1}, "cat": {1, 3}, "dan": {0, -1}} {
		if n, newest := r.count(id); n != want[0] || newest != want[1] {
			t.Fatalf("count(%s) = %d, %d; want %d, %d", id, n, newest, want[0], want[1])
		}
	}
}

func TestBackoff_GrowsExponentiallyWithJitterAndIsCapped(t *testing.T) {
	for _, c := range []struct{ base, max time.Duration }{
		{time.Second, 5 * time.Minute}, {10 * time.Second, 2 * time.Minute}, {20 * time.Second, time.Hour},
		{time.Hour, 24 * time.Hour}, {13*time.Hour + 7*time.Minute + 59*time.Second, 24 * time.Hour},
	} {
		s := New(nil, Config{Webhooks: WebhookConfig{BackoffBase: c.base, BackoffMax: c.max}})
		prevHi := time.Duration(0)
		for attempts := 1; attempts <= 100; attempts++ {
			hi := c.max // base * 2^(attempts-1), computed without overflowing
			if exp := float64(c.base) * math.Pow(2, float64(attempts-1)); exp < float64(c.max) {
				hi = time.Duration(exp)
			}
			if hi < prevHi {
				t.Fatalf("base %s: the bound shrank at attempt %d", c.base, attempts)
			}
			prevHi = hi
			for range 20 {
				if d := s.backoff(attempts); d < hi/2 || d > hi {
					t.Fatalf("base %s max %s: backoff(%d) = %s, want %s..%s", c.base, c.max, attempts, d, hi/2, hi)
				}
			}
		}
	}
}

// A lease always holds two whole attempts: a run posts only while one fits.
func TestWebhookConfig_LeaseHoldsTwoAttempts(t *testing.T) {
	for _, c := range []struct{ lease, timeout, want time.Duration }{
		{0, 0, 30 * time.Second},
		{0, 20 * time.Second, 40 * time.Second},
		{5 * time.Second, time.Second, 5 * time.Second},
		{5 * time.Second, 4 * time.Second, 8 * time.Second},
	} {
		w := WebhookConfig{Lease: c.lease, Timeout: c.timeout}
		w.defaults()
		if w.Lease != c.want {
			t.Fatalf("lease %s, timeout %s: lease became %s, want %s", c.lease, c.timeout, w.Lease, c.want)
		}
	}
}
