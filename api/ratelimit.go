package api

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimits are per-caller request budgets (requests per second, with a
// burst of twice that). Zero turns a limit off.
type RateLimits struct {
	// PerKey applies to people's and admin keys.
	PerKey float64
	// PerIngestKey applies to ingest keys (connectors send more).
	PerIngestKey float64
	// PerIP applies to sign-in attempts (POST /api/v1/session) by client
	// address.
	PerIP float64
}

// limiters hands out one token bucket per caller and forgets idle ones.
type limiters struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	l    *rate.Limiter
	used time.Time
}

// idleAfter is how long an unused bucket is kept (a full bucket then).
const idleAfter = 10 * time.Minute

// allow takes one request from the caller's bucket; when it is empty it
// says how long to wait.
func (ls *limiters) allow(caller string, perSecond float64) (bool, time.Duration) {
	if perSecond <= 0 {
		return true, 0
	}
	now := time.Now()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.buckets == nil {
		ls.buckets = map[string]*bucket{}
	}
	if now.Sub(ls.swept) > idleAfter {
		for k, b := range ls.buckets {
			if now.Sub(b.used) > idleAfter {
				delete(ls.buckets, k)
			}
		}
		ls.swept = now
	}
	b := ls.buckets[caller]
	if b == nil {
		b = &bucket{l: rate.NewLimiter(rate.Limit(perSecond), max(1, int(2*perSecond)))}
		ls.buckets[caller] = b
	}
	b.used = now
	r := b.l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
