// Package inbox is Switchboard's service: ingest -> route -> store, claims,
// locks and hand-offs, configuration, keys, and the background loops (lease
// expiry). It knows nothing of HTTP: handlers decode, call a method here and
// encode; errors are store sentinels, the ones below, or *FieldError.
package inbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// Errors of the service's own rules.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
)

// FieldError is a validation error naming the offending field; it maps to
// 400 invalid_request.
type FieldError = routing.FieldError

func fieldErr(field, msg string) error { return &FieldError{Field: field, Message: msg} }

// Config configures the service.
type Config struct {
	// DefaultTeam receives new threads no rule sends elsewhere; it is
	// created at first start.
	DefaultTeam string
	// LockTTL is the lease of a claim that asks for none, and of offers.
	LockTTL time.Duration
	// SweepInterval is how often leases, SLA and auto-close timers are
	// swept and push teams' queues offered (default 1s).
	SweepInterval time.Duration
	// PresenceTTL: an agent with no request and no event stream for this
	// long drops from online to away (default 5m).
	PresenceTTL time.Duration
	// SessionTTL is how long a browser session lasts (default 12h).
	SessionTTL time.Duration
	// Webhooks configures outbound webhook delivery.
	Webhooks WebhookConfig
	// Retention, when set, erases pending and closed threads with no
	// activity (updated_at) for this long, with everything on them
	// (0: keep everything). RetentionInterval is how often it looks
	// (default 1m).
	Retention, RetentionInterval time.Duration
	// NodeID names this process among several sharing a store (default:
	// random; embeddedNodeID on a store only one process can open).
	NodeID string
	// Clock is the node's time for shifts, retention, webhook backoff
	// and presence (default store.SteadyNow: it never steps back).
	Clock   func() time.Time
	Logger  *slog.Logger
	Metrics *Metrics
}

// Service is the inbox service over a store.
type Service struct {
	st      store.Store
	cfg     Config
	log     *slog.Logger
	metrics *Metrics

	snapMu sync.Mutex
	snap   atomic.Pointer[snapshot]
	// rulesLeftOut is what routing last left out of the stored rules (see
	// compileRules), so that it is logged when it changes.
	rulesLeftOut atomic.Pointer[string]
	// badZones is the agents whose time zone did not load in the last
	// snapshot, logged when it changes.
	badZones atomic.Pointer[string]

	// loopLogged is when each background step's failure was last logged
	// (see loopFailed).
	loopLogged sync.Map // message -> time.Time

	presence presence
	// nudge wakes the assigner when someone may have become eligible.
	nudge chan struct{}

	// retainAfter is where the next retention run goes on (see retain),
	// retainFailed the thread whose erase ended the last run, and
	// retainSkip the threads passed over until the pass starts over; only
	// that loop uses them.
	retainAfter  uint64
	retainFailed string
	retainSkip   map[string]bool

	// delivering holds the ids of webhooks whose delivery is under way;
	// leased, those this node has leased (released at Stop).
	delivering sync.Map
	leased     sync.Map
	// hookHealth is what this node logged of failing webhooks.
	hookHealth webhookHealth

	// ingestStripes serialise, within this node, the retries of messages
	// whose thread changed under them (see IngestBatch).
	ingestStripes [64]chan struct{} // a one-slot semaphore each

	stop chan struct{}
	wg   sync.WaitGroup
}

// New returns a service over st. Call Start to run its background loops.
// embeddedNodeID is the node id on a store that reports Exclusive (bbolt).
const embeddedNodeID = "embedded"

func New(st store.Store, cfg Config) *Service {
	if cfg.DefaultTeam == "" {
		cfg.DefaultTeam = "triage"
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = 120 * time.Second
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Second
	}
	if cfg.PresenceTTL <= 0 {
		cfg.PresenceTTL = 5 * time.Minute
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.RetentionInterval <= 0 {
		cfg.RetentionInterval = time.Minute
	}
	if cfg.NodeID == "" {
		cfg.NodeID = uuid.NewString()
		if x, ok := st.(store.Exclusiver); ok && x.Exclusive() {
			// No other process can use this store, so a lease held under
			// this name was left by an earlier run of this one: after a
			// restart, webhook deliveries resume at once instead of when
			// the old lease runs out.
			cfg.NodeID = embeddedNodeID
		}
	}
	cfg.Webhooks.defaults()
	if cfg.Clock == nil {
		cfg.Clock = store.SteadyNow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	s := &Service{st: st, cfg: cfg, log: cfg.Logger.With("component", "inbox"), metrics: cfg.Metrics,
		presence: presence{seen: map[string]struct{}{}, streams: map[string]int{}, wake: make(chan struct{}, 1), woken: map[string]bool{}}, nudge: make(chan struct{}, 1), stop: make(chan struct{})}
	for i := range s.ingestStripes {
		s.ingestStripes[i] = make(chan struct{}, 1)
	}
	s.registerStoreMetrics()
	return s
}

// Store returns the service's store.
func (s *Service) Store() store.Store { return s.st }

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

func (s *Service) now() time.Time { return s.cfg.Clock().UTC() }

// Start runs the background loops until Stop: lease and timer sweeps, push
// assignment, presence, and webhook delivery. Every node of a cluster runs
// them; each step they take is atomic in the store, so nothing happens twice.
func (s *Service) Start(ctx context.Context) {
	s.every(ctx, s.cfg.SweepInterval, nil, s.sweep)
	s.every(ctx, s.cfg.SweepInterval, s.nudge, s.assignQueued)
	s.every(ctx, presenceInterval(s.cfg.PresenceTTL), s.presence.wake, s.presenceTick)
	s.every(ctx, s.cfg.Webhooks.PollInterval, nil, s.deliverWebhooks)
	if s.cfg.Retention > 0 {
		s.every(ctx, s.cfg.RetentionInterval, nil, s.retain)
	}
}

// Stop ends the background loops and open event streams, and waits for the
// loops.
func (s *Service) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.wg.Wait()
	s.releaseWebhooks()
}

// every runs fn every interval, or sooner when wake fires, until Stop.
func (s *Service) every(ctx context.Context, interval time.Duration, wake <-chan struct{}, fn func(context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.stop:
				return
			case <-t.C:
			case <-wake:
			}
			fn(ctx)
		}
	}()
}

// loopFailed logs a background step's failure, unless it is the store's
// refusal to write, which the store logs itself, once; and each kind at
// most once a minute: the loops run every second, and a store away for an
// hour wrote thousands of the same lines.
func (s *Service) loopFailed(ctx context.Context, msg string, err error, attrs ...any) {
	if err == nil || ctx.Err() != nil || errors.Is(err, store.ErrCannotWrite) {
		return
	}
	now := time.Now()
	if last, ok := s.loopLogged.Load(msg); ok && now.Sub(last.(time.Time)) < loopLogEvery {
		return
	}
	s.loopLogged.Store(msg, now)
	s.log.Warn(msg, append(attrs, "err", err, "next_at_most_in", loopLogEvery)...)
}

// loopLogEvery is how often one kind of background failure is logged.
const loopLogEvery = time.Minute

// sweep expires leases and runs SLA and auto-close timers. Reads and
// writes apply lease expiry themselves; the sweep makes expiries happen
// (and lock.expired appear) even when nobody touches the thread.
func (s *Service) sweep(ctx context.Context) {
	n, err := s.st.LockSweep(ctx)
	s.loopFailed(ctx, "lease sweep failed", err)
	if n > 0 {
		s.wake()
	}
	_, err = s.st.ThreadTimerSweep(ctx)
	s.loopFailed(ctx, "timer sweep failed", err)
}

// retentionBatch bounds the threads one retention run erases, and
// retentionScan those it reads, so a store that turns retention on with
// years of threads works through them over several runs instead of one
// long burst of writes, and a large store is read a slice a run.
const (
	retentionBatch = 1000
	retentionScan  = 10 * retentionBatch
)

// retain erases pending and closed threads idle for longer than Retention.
// Runs walk the threads in creation order, each going on where the last
// one stopped and starting over after the newest: a pass reads every
// thread once, whatever the clock said when it was created. The erase is
// at the version read, so a customer writing meanwhile keeps the thread.
// A thread whose erase fails ends the run; failing again in the next run,
// it is passed over until the next pass. thread.erased events older than
// Retention leave the event log too.
func (s *Service) retain(ctx context.Context) {
	cutoff := s.now().Add(-s.cfg.Retention)
	if _, err := s.st.EventTrimErased(ctx, cutoff, retentionBatch); err != nil && ctx.Err() == nil {
		s.log.Warn("retention: trimming thread.erased events failed", "err", err)
	}
	erased, read := 0, 0
	for erased < retentionBatch && read < retentionScan {
		page, next, err := s.st.ThreadOldest(ctx, s.retainAfter, 200)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("retention: listing threads failed", "err", err)
			}
			return
		}
		read += len(page)
		for _, t := range page {
			idle := (t.Status == store.StatusPending || t.Status == store.StatusClosed) && t.UpdatedAt.Before(cutoff)
			if !idle || s.retainSkip[t.ID] {
				continue
			}
			err := s.st.ThreadErase(ctx, store.EraseParams{ThreadID: t.ID, Actor: store.ActorSystem, Version: t.Version,
				RememberDeleted: RememberDeletions})
			switch {
			case err == nil:
				erased++
				s.metrics.Erased.WithLabelValues("retention").Inc()
			case errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound):
				// The customer wrote again, or another node erased it.
			case ctx.Err() != nil:
				return
			case t.ID != s.retainFailed:
				// Perhaps the store is away for a moment: the next run
				// starts again here.
				s.log.Warn("retention: erasing a thread failed", "thread", t.ID, "err", err)
				s.retainFailed = t.ID
				return
			default:
				// It failed twice running: it waits for the next pass
				// rather than stopping every run here.
				s.log.Warn("retention: erasing a thread failed again; it is left until the next pass", "thread", t.ID, "err", err)
				if s.retainSkip == nil {
					s.retainSkip = map[string]bool{}
				}
				s.retainSkip[t.ID] = true
			}
		}
		s.retainAfter = next // 0 after the newest: the next run starts over
		if next == 0 {
			s.retainSkip = nil // a new pass tries them again
			return
		}
	}
}

// wake nudges the assigner without blocking.
func (s *Service) wake() {
	select {
	case s.nudge <- struct{}{}:
	default:
	}
}

// --- configuration snapshot ---

// snapshot is what routing needs from the configuration, rebuilt when the
// store's config version moves.
type snapshot struct {
	version uint64
	teams   map[string]store.Team
	ordered []store.Team // by id
	agents  map[string]store.Agent
	zones   map[string]*time.Location
	members map[string][]string // team -> agent ids
	rules   *routing.RuleSet
}

func (s *Service) snapshot(ctx context.Context) (*snapshot, error) {
	v, err := s.st.ConfigVersion(ctx)
	if err != nil {
		return nil, err
	}
	if sn := s.snap.Load(); sn != nil && sn.version == v {
		return sn, nil
	}
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if sn := s.snap.Load(); sn != nil && sn.version == v {
		return sn, nil
	}
	sn, err := s.loadSnapshot(ctx, v)
	if err != nil {
		return nil, err
	}
	s.snap.Store(sn)
	return sn, nil
}

func (s *Service) loadSnapshot(ctx context.Context, v uint64) (*snapshot, error) {
	teams, err := s.st.TeamList(ctx)
	if err != nil {
		return nil, err
	}
	agents, err := s.st.AgentList(ctx)
	if err != nil {
		return nil, err
	}
	rules, err := s.st.RuleList(ctx)
	if err != nil {
		return nil, err
	}
	sn := &snapshot{version: v, teams: map[string]store.Team{}, agents: map[string]store.Agent{},
		zones: map[string]*time.Location{}, members: map[string][]string{}}
	for _, t := range teams {
		sn.teams[t.ID] = t
	}
	sn.ordered = teams
	sort.Slice(sn.ordered, func(i, j int) bool { return sn.ordered[i].ID < sn.ordered[j].ID })
	var bad []string
	for _, a := range agents {
		sn.agents[a.ID] = a
		// Validated on write, a zone may still not load on this host (a
		// name only some hosts' zone files have): the agent's shifts
		// cannot be read, so they count as off shift, as their view says.
		loc, err := routing.LoadZone("timezone", a.Timezone)
		if err != nil {
			bad = append(bad, fmt.Sprintf("agent %s: %q", a.ID, a.Timezone))
		}
		sn.zones[a.ID] = loc
		for _, t := range a.Teams {
			sn.members[t] = append(sn.members[t], a.ID)
		}
	}
	if msg := strings.Join(bad, ", "); newProblem(&s.badZones, msg) {
		s.log.Error("time zones that do not load here: those agents count as off shift whenever they have shifts", "agents", msg)
	}
	sn.rules = s.compileRules(rules)
	return sn, nil
}

// compileRules compiles the stored rules for routing. Rules are validated
// on write, but what is stored may still not compile as a whole: more than
// routing.MaxRules (two creates at the limit at once), or a rule that no
// longer compiles (a time zone removed from the system). Such rules are
// left out, with an error logged, and the others route: all of them left
// out would route every message to the default team, spam unclosed.
func (s *Service) compileRules(rules []store.Rule) *routing.RuleSet {
	rr := make([]routing.Rule, len(rules))
	for i, r := range rules {
		rr[i] = r.Rule
	}
	set, err := routing.Compile(rr)
	if err == nil {
		newProblem(&s.rulesLeftOut, "")
		return set
	}
	slices.SortFunc(rr, func(a, b routing.Rule) int { // evaluation order
		return cmp.Or(cmp.Compare(a.Position, b.Position), strings.Compare(a.ID, b.ID))
	})
	var ok []routing.Rule
	var why []string // what is left out, logged when it changes (a snapshot is loaded at every presence change)
	for i, r := range rr {
		if len(ok) == routing.MaxRules {
			why = append(why, fmt.Sprintf("the last %d rules, past the first %d", len(rr)-i, routing.MaxRules))
			break
		}
		if _, err := routing.Compile([]routing.Rule{r}); err != nil {
			why = append(why, fmt.Sprintf("rule %s: %v", r.ID, err))
			continue
		}
		ok = append(ok, r)
	}
	if msg := strings.Join(why, "; "); newProblem(&s.rulesLeftOut, msg) {
		s.log.Error("routing leaves out rules it cannot take", "left_out", msg)
	}
	set, _ = routing.Compile(ok)
	return set
}

// newProblem keeps msg, what a snapshot found wrong ("" for nothing), in p
// and reports whether it is to be logged: something, and not what p held
// (a snapshot is loaded at every presence change).
func newProblem(p *atomic.Pointer[string], msg string) bool {
	if msg == "" {
		p.Store(nil)
		return false
	}
	old := p.Swap(&msg)
	return old == nil || *old != msg
}

func (sn *snapshot) onShift(a *store.Agent, now time.Time) bool {
	return onShiftIn(sn.zones[a.ID], a, now)
}

// onShiftIn reports whether the agent is on shift at now in loc, their
// time zone; nil when it does not load, and then they are off shift if
// they have shifts (which cannot be read without it).
func onShiftIn(loc *time.Location, a *store.Agent, now time.Time) bool {
	if loc == nil && len(a.Shifts) > 0 {
		return false
	}
	return routing.OnShift(loc, a.Shifts, a.TimeOff, now)
}

// staffed reports whether some member of the team is on shift.
func (sn *snapshot) staffed(team string, now time.Time) bool {
	for _, id := range sn.members[team] {
		a := sn.agents[id]
		if sn.onShift(&a, now) {
			return true
		}
	}
	return false
}

// firstTeam returns the first team (by id) with the given function.
func (sn *snapshot) firstTeam(function string) string {
	for _, t := range sn.ordered {
		if t.Function == function {
			return t.ID
		}
	}
	return ""
}

// --- principals ---

// Principal is who calls: a key, and the agent behind it for people.
type Principal struct {
	KeyID   string
	Role    string
	AgentID string
	// agent is the agent's record as read with the key, when Authenticate
	// made the principal: the request's own read of it (see agentOf).
	agent *store.Agent
}

// Actor names the principal in the audit trail.
func (p Principal) Actor() string {
	if p.AgentID != "" {
		return p.AgentID
	}
	return "key:" + p.KeyID
}

// IsPerson reports whether the principal is an agent or supervisor.
func (p Principal) IsPerson() bool { return p.AgentID != "" }

// CanSupervise reports whether the principal may act on any thread.
func (p Principal) CanSupervise() bool {
	return p.Role == store.RoleAdmin || p.Role == store.RoleSupervisor
}

func (p Principal) require(roles ...string) error {
	if slices.Contains(roles, p.Role) {
		return nil
	}
	return ErrForbidden
}

// scope is what threads a principal may see: nil slices mean all.
type scope struct {
	teams, networks []string
}

func (s *Service) scope(ctx context.Context, p Principal) (scope, error) {
	if p.Role != store.RoleAgent {
		return personScope(p, store.Agent{})
	}
	a, err := s.agentOf(ctx, p)
	if errors.Is(err, store.ErrNotFound) {
		return scope{}, ErrUnauthorized
	}
	if err != nil {
		return scope{}, err // the store is unreachable: not the key's fault
	}
	return personScope(p, a)
}

// agentOf is the caller's agent record: the one read with its key when the
// request was authenticated (one round trip for both on Redis), else a
// fresh read.
func (s *Service) agentOf(ctx context.Context, p Principal) (store.Agent, error) {
	if p.agent != nil && p.agent.ID == p.AgentID {
		return *p.agent, nil
	}
	return s.st.AgentGet(ctx, p.AgentID)
}

// personScope is the scope of p, given its agent record a (read by
// person; ignored for the roles that see everything).
func personScope(p Principal, a store.Agent) (scope, error) {
	switch p.Role {
	case store.RoleAdmin, store.RoleSupervisor:
		return scope{}, nil
	case store.RoleAgent:
		return scope{teams: nonNilSlice(a.Teams), networks: a.Networks}, nil
	}
	return scope{}, ErrForbidden
}

func (sc scope) sees(t *store.Thread) bool { return sc.allows(t.Team, t.Network) }

// allows reports whether threads of team on network are in the scope.
func (sc scope) allows(team, network string) bool {
	return (sc.teams == nil || slices.Contains(sc.teams, team)) &&
		(len(sc.networks) == 0 || slices.Contains(sc.networks, network))
}

// newID is the id of a new thread, message or note: a UUIDv7, time-ordered,
// so new records land at the end of the store's B-trees (and records made
// together sit together) instead of on a random page each. Ids are not
// secrets (tokens and keys are crypto-random, see bolt's newToken and
// newSecret); a v7 id tells when it was made, as the record itself does.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
