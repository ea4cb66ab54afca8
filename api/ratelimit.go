package api

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"
)

// RateLimits are per-caller request budgets (requests per second, with a
// burst of twice that). Zero turns a limit off.
type RateLimits struct {
	// PerKey applies to people's and admin keys.
	PerKey float64
	// PerIngestKey applies to ingest keys (connectors send more).
	PerIngestKey float64
	// PerIP applies to sign-in attempts (POST /api/v1/session) and to
	// requests with a wrong key or session cookie, by client address.
	PerIP float64
}

// DefaultRateLimits are the budgets the server runs with unless flags set
// others (--rate-limit, --ingest-rate-limit, --ip-rate-limit).
var DefaultRateLimits = RateLimits{PerKey: 50, PerIngestKey: 2000, PerIP: 20}

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
	ls.mu.Lock()
	defer ls.mu.Unlock()
	// Read the clock under the lock: a bucket given an earlier time after
	// a later one refills the difference twice, and concurrent requests
	// would get more than the budget.
	now := time.Now()
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

// clientAddr is the address a caller's budget is kept under: the peer, or,
// for a request from a trusted proxy, the right-most X-Forwarded-For entry
// that is not a trusted proxy. Each proxy appends the address it saw, and
// whatever a client sends in the header itself stays to the left, so a
// client cannot pick a fresh budget per request (Fiber's c.IP() returns the
// header as sent).
// addrBudget is the key of the client's per-address budget: its address,
// or for IPv6 its /64, which one subscriber usually has whole (a budget
// per address would give such a client 2^64 of them).
func (s *server) addrBudget(c *fiber.Ctx) string {
	addr := s.clientAddr(c)
	a, err := netip.ParseAddr(addr)
	switch {
	case err != nil:
		return "ip:" + addr
	case a.Is4In6():
		return "ip:" + a.Unmap().String()
	case a.Is6():
		return "ip:" + netip.PrefixFrom(a, 64).Masked().String()
	}
	return "ip:" + a.String()
}

func (s *server) clientAddr(c *fiber.Ctx) string {
	peer := c.Context().RemoteIP().String()
	if len(s.deps.TrustedProxies) == 0 || !c.IsProxyTrusted() {
		return peer
	}
	// Every X-Forwarded-For line, in order: a proxy that adds a line of
	// its own (HAProxy's forwardfor) leaves the client's first, and the
	// first alone would let a client choose its budget.
	var hops []string
	for _, line := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		hops = append(hops, strings.Split(string(line), ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if hop == "" {
			continue
		}
		ip, ok := hopAddr(hop)
		if !ok {
			// Not an address: not what a trusted proxy writes for the
			// client it saw, and no budget of its own (a key per string
			// sent would grow the limiter without bound).
			return peer
		}
		if !isTrustedProxy(ip, s.deps.TrustedProxies) {
			return ip
		}
	}
	return peer
}

// hopAddr reads one X-Forwarded-For hop as an IP address, with or without
// a port ("203.0.113.7", "203.0.113.7:51234", "[2001:db8::1]:443").
func hopAddr(hop string) (string, bool) {
	if ap, err := netip.ParseAddrPort(hop); err == nil {
		return ap.Addr().Unmap().String(), true
	}
	if a, err := netip.ParseAddr(strings.Trim(hop, "[]")); err == nil {
		return a.Unmap().String(), true
	}
	return "", false
}

// isTrustedProxy reports whether addr is one of the trusted IPs or inside
// one of the trusted CIDRs.
func isTrustedProxy(addr string, trusted []string) bool {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, t := range trusted {
		if p, err := netip.ParsePrefix(t); err == nil && p.Contains(ip) {
			return true
		}
		if a, err := netip.ParseAddr(t); err == nil && a.Unmap() == ip {
			return true
		}
	}
	return false
}
