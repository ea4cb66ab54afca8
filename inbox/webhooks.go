package inbox

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/switchboard/switchboard/store"
)

// WebhookConfig configures outbound webhook delivery.
type WebhookConfig struct {
	// DenyPrivate refuses private, loopback and link-local targets, at
	// registration and again when connecting (DNS may change).
	DenyPrivate bool
	// GiveUpAfter bounds how long one event is retried (default 24h);
	// then it counts as failed and delivery moves on.
	GiveUpAfter time.Duration
	// BackoffBase and BackoffMax shape the exponential backoff with jitter
	// (defaults 1s and 5m).
	BackoffBase, BackoffMax time.Duration
	// Timeout bounds one delivery attempt (default 10s).
	Timeout time.Duration
	// PollInterval is how often pending deliveries are looked at (default 1s).
	PollInterval time.Duration
	// Lease is how long a node owns a webhook's delivery (default 30s).
	Lease time.Duration
}

func (c *WebhookConfig) defaults() {
	if c.GiveUpAfter <= 0 {
		c.GiveUpAfter = 24 * time.Hour
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 5 * time.Minute
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
	// A run posts only while a whole attempt fits in its lease (see
	// deliverWebhook), so a lease must hold at least two.
	c.Lease = max(c.Lease, 2*c.Timeout)
}

// EventTypes are the event types a webhook may subscribe to.
var EventTypes = []string{
	store.EventMessageReceived, store.EventThreadCreated, store.EventThreadRouted, store.EventThreadClaimed,
	store.EventThreadOffered, store.EventThreadReplied, store.EventThreadReleased, store.EventThreadTransferred,
	store.EventThreadClosed, store.EventThreadTagged, store.EventThreadReopened, store.EventThreadAssigned,
	store.EventThreadUnlocked, store.EventPriorityChanged, store.EventLockExpired, store.EventSLABreached,
	store.EventNoteAdded, store.EventThreadErased, store.EventMessageDelivery, store.EventMessageDeleted,
	store.EventMessageEdited,
}

// WebhookInput registers a webhook.
type WebhookInput struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Secret string   `json:"secret"`
}

func (s *Service) WebhookCreate(ctx context.Context, p Principal, in WebhookInput) (store.Webhook, error) {
	if err := p.require(store.RoleAdmin); err != nil {
		return store.Webhook{}, err
	}
	u, err := url.Parse(in.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || utf8.RuneCountInString(in.URL) > MaxURL {
		return store.Webhook{}, fieldErr("url", fmt.Sprintf("must be an http(s) URL of at most %d characters", MaxURL))
	}
	if s.cfg.Webhooks.DenyPrivate {
		if err := checkPublicHost(ctx, u.Hostname()); err != nil {
			return store.Webhook{}, fieldErr("url", err.Error())
		}
	}
	if len(in.Events) == 0 {
		return store.Webhook{}, fieldErr("events", "name at least one event type")
	}
	for i, e := range in.Events {
		if !slices.Contains(EventTypes, e) {
			return store.Webhook{}, fieldErr(fmt.Sprintf("events[%d]", i), "unknown event type")
		}
	}
	if len(in.Secret) < 16 || len(in.Secret) > 256 {
		return store.Webhook{}, fieldErr("secret", "must be 16 to 256 characters")
	}
	return s.st.WebhookCreate(ctx, store.Webhook{ID: uuid.NewString(), URL: in.URL, Events: dedupe(in.Events), Secret: in.Secret})
}

func (s *Service) WebhookList(ctx context.Context, p Principal) ([]store.Webhook, error) {
	if err := p.require(store.RoleAdmin); err != nil {
		return nil, err
	}
	return s.st.WebhookList(ctx)
}

func (s *Service) WebhookGet(ctx context.Context, p Principal, id string) (store.Webhook, error) {
	if err := p.require(store.RoleAdmin); err != nil {
		return store.Webhook{}, err
	}
	return s.st.WebhookGet(ctx, id)
}

func (s *Service) WebhookDelete(ctx context.Context, p Principal, id string) error {
	if err := p.require(store.RoleAdmin); err != nil {
		return err
	}
	return s.st.WebhookDelete(ctx, id)
}

// --- delivery ---

// deliverWebhooks moves every webhook's delivery forward. Each webhook is
// leased to one node at a time; its events go out in order, each retried
// with exponential backoff until delivered or given up.
//
// Webhooks are delivered independently: a pass starts each one not still
// busy from an earlier pass, and waits for them at most a poll interval, so
// a slow or hanging receiver holds up only its own webhook.
func (s *Service) deliverWebhooks(ctx context.Context) {
	hooks, err := s.st.WebhookList(ctx)
	if err != nil {
		return
	}
	s.hookHealth.reconcile(s, hooks)
	// The leases of webhooks deleted since are not this node's to end any
	// more (the map grew by every webhook ever delivered).
	s.leased.Range(func(id, _ any) bool {
		if !slices.ContainsFunc(hooks, func(h store.Webhook) bool { return h.ID == id }) {
			s.leased.Delete(id)
		}
		return true
	})
	if len(hooks) == 0 {
		return
	}
	last, err := s.st.EventLastID(ctx)
	if err != nil {
		return
	}
	now := s.now()
	done := make(chan struct{}, len(hooks))
	started := 0
	for _, h := range hooks {
		if h.State.Cursor >= last || s.backingOff(ctx, &h.State, now) {
			continue // nothing new, or backing off: no lease (a durable write) for nothing
		}
		if _, busy := s.delivering.LoadOrStore(h.ID, true); busy {
			continue
		}
		started++
		s.wg.Add(1) // Stop waits for it
		go func() {
			defer s.wg.Done()
			s.deliverWebhook(ctx, h.ID)
			s.delivering.Delete(h.ID)
			done <- struct{}{}
		}()
	}
	wait := time.NewTimer(s.cfg.Webhooks.PollInterval)
	defer wait.Stop()
	for ; started > 0; started-- {
		select {
		case <-done:
		case <-wait.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// backingOff reports whether a webhook waits out a backoff on the event it
// failed: its next attempt is not due and that event is still the next to
// send (an erased one takes its backoff with it).
func (s *Service) backingOff(ctx context.Context, st *store.WebhookState, now time.Time) bool {
	if st.NextAttemptAt == nil || !now.Before(*st.NextAttemptAt) {
		return false
	}
	next, err := s.st.EventList(ctx, store.EventFilter{After: st.Cursor, Limit: 1})
	return err == nil && len(next) == 1 && next[0].ID == st.FailingEvent
}

// releaseWebhooks ends this node's webhook leases once its deliveries have
// stopped (a lease of no time), so that another node delivers at its next
// poll rather than after the lease: a rolling restart does not pause the
// webhooks for a lease each.
func (s *Service) releaseWebhooks() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.leased.Range(func(id, _ any) bool {
		s.st.WebhookLease(ctx, id.(string), s.cfg.NodeID, 0) // refused if another node has it now
		s.leased.Delete(id)
		return ctx.Err() == nil
	})
}

func (s *Service) deliverWebhook(ctx context.Context, id string) {
	// The lease runs from when the store granted it, which is no earlier
	// than this reading.
	leaseEnd := s.now().Add(s.cfg.Webhooks.Lease)
	wh, err := s.st.WebhookLease(ctx, id, s.cfg.NodeID, s.cfg.Webhooks.Lease)
	if err != nil {
		return // another node delivers it, or it was deleted
	}
	s.leased.Store(id, true)
	st := wh.State
	changed := false
	save := func() bool {
		if !changed {
			return true
		}
		changed = false
		// Saved also when the node is stopping (ctx ended), or the events
		// delivered since the last save would be sent again after the
		// restart.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Webhooks.Timeout)
		defer cancel()
		err := s.st.WebhookSaveState(sctx, id, s.cfg.NodeID, st)
		// Deleted meanwhile, or leased by another node: nothing to say.
		if err != nil && !errors.Is(err, store.ErrLockLost) && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("webhook state not saved", "webhook", id, "err", err)
		}
		return err == nil
	}
	defer save()
	// Page after page while the lease lasts: a busy inbox writes hundreds
	// of events a second, most of them of types the webhook skips, and one
	// page per poll left a connector's replies further behind every second.
	for {
		evs, err := s.st.EventList(ctx, store.EventFilter{After: st.Cursor, Limit: webhookPage})
		if err != nil || len(evs) == 0 {
			return
		}
		for _, ev := range evs {
			if !slices.Contains(wh.Events, ev.Type) {
				st.Cursor, changed = ev.ID, true
				continue
			}
			if st.Attempts > 0 && st.FailingEvent != 0 && st.FailingEvent != ev.ID {
				// The failing event was erased with its thread: its retries
				// and backoff are not this event's.
				st.Attempts, st.FailingEvent, st.FirstFailureAt, st.NextAttemptAt, changed = 0, 0, nil, nil, true
			}
			now := s.now()
			if st.NextAttemptAt != nil && now.Before(*st.NextAttemptAt) {
				return
			}
			// An attempt that could outlast the lease could still be in flight
			// when another node takes the webhook over and sends the same
			// event. Stop here; the next poll leases again.
			if leaseEnd.Sub(now) < s.cfg.Webhooks.Timeout {
				return
			}
			// Save progress before a network call, so a lost lease stops us
			// before we send on someone else's turn.
			if !save() {
				return
			}
			err := s.post(ctx, &wh, &ev)
			now = s.now()
			changed = true
			if err == nil {
				s.hookHealth.delivered(s, id, now)
				s.metrics.Webhooks.WithLabelValues("delivered").Inc()
				st.Cursor, st.Delivered, st.Attempts, st.FailingEvent = ev.ID, st.Delivered+1, 0, 0
				st.FirstFailureAt, st.NextAttemptAt, st.LastDeliveredAt = nil, nil, &now
				continue
			}
			if ctx.Err() != nil {
				return
			}
			s.metrics.Webhooks.WithLabelValues("failed").Inc()
			s.hookHealth.failed(s, id, err, st.Delivered, now)
			st.Attempts++
			st.FailingEvent = ev.ID
			st.LastError, st.LastErrorAt = err.Error(), &now
			if st.FirstFailureAt == nil {
				st.FirstFailureAt = &now
			}
			// Retried for GiveUpAfter from when it happened: a dead
			// receiver does not hold the backlog a whole bound per event.
			if now.Sub(ev.At) >= s.cfg.Webhooks.GiveUpAfter {
				s.log.Warn("webhook gave up on an event", "webhook", id, "event", ev.ID, "attempts", st.Attempts)
				s.metrics.Webhooks.WithLabelValues("given_up").Inc()
				st.Cursor, st.Failed, st.Attempts, st.FailingEvent = ev.ID, st.Failed+1, 0, 0
				st.FirstFailureAt, st.NextAttemptAt = nil, nil
				continue
			}
			next := now.Add(s.backoff(st.Attempts))
			st.NextAttemptAt = &next
			return
		}
		if len(evs) < webhookPage || ctx.Err() != nil || leaseEnd.Sub(s.now()) < s.cfg.Webhooks.Timeout {
			return
		}
	}
}

// webhookPage is how many events a delivery run reads at a time.
const webhookPage = 200

// backoff is exponential with full jitter in [d/2, d], d = BackoffBase *
// 2^(attempts-1) up to BackoffMax. It doubles up to the cap rather than
// shifting, which overflows into small values for long bases.
func (s *Service) backoff(attempts int) time.Duration {
	d, limit := s.cfg.Webhooks.BackoffBase, s.cfg.Webhooks.BackoffMax
	for i := 1; i < attempts && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d/2 + rand.N(d/2+1)
}

// WebhookBody is what a delivery posts: the event as the stream shows it.
func WebhookBody(ev *store.Event) ([]byte, error) { return json.Marshal(ev) }

// Sign returns the X-Switchboard-Signature value for body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (s *Service) post(ctx context.Context, wh *store.Webhook, ev *store.Event) error {
	body, err := WebhookBody(ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Webhooks.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, wh.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Switchboard-Webhooks/1")
	req.Header.Set("X-Switchboard-Signature", Sign(wh.Secret, body))
	// The same id on every retry and from every node: receivers drop
	// repeats. The event's time is part of it: a Redis that lost writes
	// hands event ids out again, and a new event under an old id would be
	// dropped as a repeat.
	req.Header.Set("X-Switchboard-Delivery", wh.ID+"-"+strconv.FormatUint(ev.ID, 10)+"-"+strconv.FormatInt(ev.At.UnixMicro(), 36))
	req.Header.Set("X-Switchboard-Event", ev.Type)
	resp, err := s.webhookClient().Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", errors.Unwrap(err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &statusError{resp.StatusCode}
	}
	return nil
}

// statusError is a receiver's answer outside 2xx.
type statusError struct{ code int }

func (e *statusError) Error() string { return fmt.Sprintf("receiver answered %d", e.code) }

// errPrivate is a connection --webhook-deny-private refused.
var errPrivate = errors.New("refusing private address")

// --- logging failing deliveries ---

// webhookFailLogEvery bounds how often one webhook's failing deliveries
// are logged: when they start failing at once, then at most once per
// interval while they go on failing or come and go (a receiver that fails
// every other delivery would otherwise log two lines a retry).
const webhookFailLogEvery = 10 * time.Minute

// webhookHealth is what this node saw and logged of the webhooks whose
// deliveries fail (last_error and the metric say it too, but an operator
// watching the log learnt of a dead receiver only when events were given
// up, a day later). Each node logs the attempts it makes: a webhook's
// delivery is leased to one node at a time, so its lines come from the
// node delivering it, and a node that takes a failing webhook over (a
// restart) says it anew. The lines name the webhook's id and the kind of
// failure, never its URL (its path or query may carry a secret), nor what
// was sent.
type webhookHealth struct {
	mu    sync.Mutex
	hooks map[string]*hookFailing
}

// hookFailing is one webhook's record: a spell of failed attempts with no
// delivery between them, and the last line logged about it.
type hookFailing struct {
	failing bool
	since   time.Time // the spell's first failed attempt
	failed  int       // failed attempts in the spell
	told    bool      // a line has named the spell
	// lastLine is when this webhook was last logged; brief counts the
	// spells that ended since then with no line (nothing was due).
	lastLine time.Time
	brief    int
	// delivered is the webhook's delivered count at the spell's last
	// failure here: when the stored count passes it, another node
	// delivered (the lease moved), and the spell is over.
	delivered uint64
}

// failed notes a failed attempt of webhook id and logs it when due.
func (h *webhookHealth) failed(s *Service, id string, err error, delivered uint64, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hooks == nil {
		h.hooks = map[string]*hookFailing{}
	}
	f := h.hooks[id]
	if f == nil {
		f = &hookFailing{}
		h.hooks[id] = f
	}
	if !f.failing {
		f.failing, f.since, f.failed, f.told = true, now, 0, false
	}
	f.failed++
	f.delivered = delivered
	if !f.lastLine.IsZero() && now.Sub(f.lastLine) < webhookFailLogEvery {
		return
	}
	attrs := []any{"webhook", id, "failure", failureKind(err)}
	if f.brief > 0 {
		attrs = append(attrs, "brief_spells_unlogged", f.brief)
	}
	if f.failed == 1 {
		s.log.Warn("webhook deliveries failing; events wait and are retried",
			append(attrs, "give_up_after", s.cfg.Webhooks.GiveUpAfter)...)
	} else {
		s.log.Warn("webhook deliveries still failing",
			append(attrs, "for", now.Sub(f.since).Round(time.Second), "failed_attempts", f.failed)...)
	}
	f.told, f.lastLine, f.brief = true, now, 0
}

// delivered notes a delivery of webhook id: the end of a failing spell,
// logged if a line named the spell.
func (h *webhookHealth) delivered(s *Service, id string, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f := h.hooks[id]; f != nil && f.failing {
		h.recovered(s, id, f, now, false)
	}
}

func (h *webhookHealth) recovered(s *Service, id string, f *hookFailing, now time.Time, elsewhere bool) {
	f.failing = false
	if !f.told {
		f.brief++
		return
	}
	attrs := []any{"webhook", id, "after", now.Sub(f.since).Round(time.Second), "failed_attempts", f.failed}
	if elsewhere {
		attrs = append(attrs, "delivered_by", "another node")
	}
	s.log.Info("webhook deliveries work again", attrs...)
	f.lastLine = now
}

// reconcile forgets deleted webhooks, and ends the spells of those another
// node has delivered since this one failed.
func (h *webhookHealth) reconcile(s *Service, hooks []store.Webhook) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, f := range h.hooks {
		i := slices.IndexFunc(hooks, func(w store.Webhook) bool { return w.ID == id })
		switch {
		case i < 0:
			delete(h.hooks, id)
		case f.failing && hooks[i].State.Delivered > f.delivered:
			h.recovered(s, id, f, s.now(), true)
		}
	}
}

// failureKind names the kind of a failed attempt for the log: the status
// the receiver answered, or the class of the network error. Not the
// error's text, which may hold the URL.
func failureKind(err error) string {
	var (
		status *statusError
		dns    *net.DNSError
		cert   *tls.CertificateVerificationError
		alert  tls.AlertError
		record tls.RecordHeaderError
		nerr   net.Error
	)
	switch {
	case errors.As(err, &status):
		return "HTTP " + strconv.Itoa(status.code)
	case errors.Is(err, errPrivate):
		return "private address refused"
	case errors.As(err, &dns):
		return "DNS lookup failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
		return "timeout"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.As(err, &cert), errors.As(err, &alert), errors.As(err, &record), errors.Is(err, http.ErrSchemeMismatch):
		// (the last: an https URL whose receiver speaks plain HTTP)
		return "TLS handshake failed"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	return "other error"
}

var (
	clientOnce sync.Once
	clientPub  *http.Client
	clientAny  *http.Client
)

// webhookClient returns an HTTP client that, with DenyPrivate, refuses to
// connect to private addresses whatever DNS says at connect time.
func (s *Service) webhookClient() *http.Client {
	clientOnce.Do(func() {
		mk := func(deny bool) *http.Client {
			d := &net.Dialer{Timeout: 5 * time.Second}
			if deny {
				d.Control = func(_, address string, _ syscall.RawConn) error {
					ap, err := netip.ParseAddrPort(address)
					if err != nil || !public(ap.Addr()) {
						return fmt.Errorf("%w %s", errPrivate, address)
					}
					return nil
				}
			}
			// No response-header timeout of its own: each attempt's context
			// carries the configured Timeout, the one bound.
			t := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4, IdleConnTimeout: 60 * time.Second,
				TLSHandshakeTimeout: 5 * time.Second}
			return &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		}
		clientPub, clientAny = mk(true), mk(false)
	})
	if s.cfg.Webhooks.DenyPrivate {
		return clientPub
	}
	return clientAny
}

// notPublic are the ranges DenyPrivate refuses beyond netip's private,
// loopback and link-local ones: "this network", shared address space (where
// some clouds put their metadata service: 100.100.100.200), IETF protocol
// assignments, benchmarking, reserved and broadcast; and the IPv6
// transition prefixes that lead into a local IPv4 network (local-use NAT64,
// Teredo); IPv4-compatible and IPv4-translated IPv6 (::a.b.c.d,
// ::ffff:0:a.b.c.d), which some stacks route to the IPv4 address; and the
// IPv6 ranges never routed publicly: site-local (fec0::/10), discard-only
// and documentation. Well-known NAT64 and 6to4 addresses carry an IPv4
// address, which public checks in their place.
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001::/32"),
	netip.MustParsePrefix("::/96"),
	netip.MustParsePrefix("::ffff:0:0:0/96"),
	netip.MustParsePrefix("fec0::/10"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001:db8::/32"),
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

func public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(a) {
			return false
		}
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return public(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(a):
		return public(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return true
}

func checkPublicHost(ctx context.Context, host string) error {
	if a, err := netip.ParseAddr(host); err == nil {
		if !public(a) {
			return errors.New("private, loopback and link-local targets are refused (--webhook-deny-private)")
		}
		return nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("cannot resolve %s", host)
	}
	for _, a := range ips {
		if !public(a) {
			return errors.New("resolves to a private, loopback or link-local address (--webhook-deny-private)")
		}
	}
	return nil
}
