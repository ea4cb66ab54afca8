package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/bolt"
	"github.com/switchboard/switchboard/store/storetest"
)

// TestParity_BoltAndRedisAgreeOnARandomDay runs one seeded random sequence
// of ingest and lock steps against a bbolt store and a Redis store side by
// side, and fails on the first step where they disagree: in the class of
// the error, or in what the step returned (thread status, team, priority,
// tags, assignee, lock holder and fence, version). At the end every
// thread, every agent's open locks and lock list are compared too.
//
// Leases are long, so time never decides a result. Queue order follows
// waiting_since, which each store reads from its own clock; steps run one
// at a time, one message per ingest, so both stores order threads as the
// steps came. Tokens differ between the stores, so each grant is kept as
// the pair of them and later steps pass each store its own. A failure
// names the seed and the step; one seed runs alone with
// -run 'TestParity_BoltAndRedisAgreeOnARandomDay/seed=N'.
//
// It lives in package redis (not redis_test) to open its Redis store the
// way the conformance harness does, on the shared test server.
func TestParity_BoltAndRedisAgreeOnARandomDay(t *testing.T) {
	requireRedis(t)
	seeds, steps := uint64(8), 250
	if testing.Short() {
		seeds = 2
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			p := newParity(t, seed)
			p.run(steps)
		})
	}
}

// parityTTL is every lease of the test: none runs out while it runs.
const parityTTL = time.Hour

// parityTags are the tags steps add and remove.
var parityTags = []string{"vip", "lead", "refund", "spam"}

// parity drives the two stores, side 0 bbolt and side 1 Redis, through one
// seed's steps.
type parity struct {
	t      *testing.T
	ctx    context.Context
	seed   uint64
	r      *rand.Rand
	stores [2]store.Store
	step   int // the step running, for failure messages
	n      int // ids given so far

	teams, networks []string
	agents          []store.Agent
	threads         []parityThread
	sent            []store.IngestParams     // messages stored, to deliver again
	grants          map[string][]parityGrant // by thread id, oldest first
	locked          map[string]bool          // by thread id, as last seen
}

// parityThread is a thread both stores created, with its key.
type parityThread struct{ id, network, ext string }

// parityGrant is one lock as both stores granted it: the same agent and
// fence, each store's own token (none when a step goes without one).
type parityGrant struct {
	agent string
	fence int64
	token [2]string
}

var paritySides = [2]string{"bolt", "redis"}

func newParity(t *testing.T, seed uint64) *parity {
	bs, err := bolt.Open(filepath.Join(t.TempDir(), "switchboard.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	p := &parity{t: t, ctx: ctxT(t), seed: seed, r: rand.New(rand.NewPCG(seed, 0x5b0a4d)),
		stores: [2]store.Store{bs, openStore(t, newPrefix())}, grants: map[string][]parityGrant{}, locked: map[string]bool{}}
	p.world()
	return p
}

// world sets up the same small world on both stores: 2-3 teams (one
// round robin), 2-3 networks, 3-4 agents with capacities 1-3, some limited
// to one network, ana a supervisor in half the seeds, most online.
func (p *parity) world() {
	p.networks = routing.Networks[:2+p.r.IntN(2)]
	teams := []store.Team{
		{ID: "care", Function: "care", Strategy: "claim", SLAFirstResponseSeconds: 3600},
		{ID: "sales", Function: "sales", Strategy: "round_robin"},
		{ID: "social", Function: "engagement", Strategy: "least_loaded", SLAFirstResponseSeconds: 7200},
	}[:2+p.r.IntN(2)]
	for _, tm := range teams {
		tm.Name = "Team " + tm.ID
		p.teams = append(p.teams, tm.ID)
		p.setup("TeamCreate "+tm.ID, func(s store.Store) error { _, err := s.TeamCreate(p.ctx, tm); return err })
	}
	for i, id := range []string{"ana", "bo", "cy", "di"}[:3+p.r.IntN(2)] {
		a := store.Agent{ID: id, Name: "Agent " + id, Role: store.RoleAgent, Capacity: 1 + p.r.IntN(3), Timezone: "UTC",
			Teams: p.subset(p.teams)}
		if i == 0 && p.r.IntN(2) == 0 {
			a.Role = store.RoleSupervisor
		}
		if p.r.IntN(3) == 0 {
			a.Networks = []string{storetest.Pick(p.r, p.networks)}
		}
		key := store.Key{ID: "key-" + id, Role: a.Role, Name: id, AgentID: id, Hash: []byte("hash-" + id)}
		p.setup("AgentCreate "+id, func(s store.Store) error { _, err := s.AgentCreate(p.ctx, a, key); return err })
		if p.r.IntN(3) > 0 {
			p.setup("AgentSetStatus "+id, func(s store.Store) error { _, err := s.AgentSetStatus(p.ctx, id, store.AgentOnline); return err })
		}
		p.agents = append(p.agents, a)
	}
}

func (p *parity) setup(what string, do func(store.Store) error) {
	p.t.Helper()
	for i, s := range p.stores {
		if err := do(s); err != nil {
			p.t.Fatalf("seed %d: setup %s on %s: %v", p.seed, what, paritySides[i], err)
		}
	}
}

func (p *parity) run(steps int) {
	menu := []struct {
		weight int
		do     func()
	}{
		{18, p.ingestNew}, {10, p.followUp}, {3, p.deliverAgain},
		{14, p.claimNext}, {8, p.claim}, {9, p.release}, {10, p.reply},
		{6, p.transfer}, {6, p.assign}, {3, p.unlock}, {7, p.tag}, {3, p.close}, {3, p.lockListStep},
	}
	total := 0
	for _, m := range menu {
		total += m.weight
	}
	for p.step = 1; p.step <= steps; p.step++ {
		n := p.r.IntN(total)
		for _, m := range menu {
			if n -= m.weight; n < 0 {
				m.do()
				break
			}
		}
	}
	p.step = 0 // the final comparison
	for _, th := range p.threads {
		p.get(th.id)
	}
	for _, a := range p.agents {
		both(p, "AgentGet "+a.ID, func(_ int, s store.Store) (store.Agent, error) { return s.AgentGet(p.ctx, a.ID) },
			func(a store.Agent) string { return fmt.Sprintf("%s open_locks=%d", a.ID, a.OpenLocks) })
		p.lockList(a.ID)
	}
}

// --- comparing ---

// both runs do on each store and fails unless they agree: the same class
// of error, or on success the same view of the result. ok is whether the
// step succeeded.
func both[T any](p *parity, what string, do func(side int, s store.Store) (T, error), view func(T) string) (res [2]T, ok bool) {
	p.t.Helper()
	var errs [2]error
	for i, s := range p.stores {
		res[i], errs[i] = do(i, s)
	}
	class := [2]string{errClass(errs[0]), errClass(errs[1])}
	switch {
	case class[0] == "" || class[1] == "":
		p.fail(what, "an error of no store sentinel\n  bolt:  %v\n  redis: %v", errs[0], errs[1])
	case class[0] != class[1]:
		p.fail(what, "the stores disagree\n  bolt:  %s (%v)\n  redis: %s (%v)", class[0], errs[0], class[1], errs[1])
	case errs[0] != nil:
		return res, false
	}
	if v := [2]string{view(res[0]), view(res[1])}; v[0] != v[1] {
		p.fail(what, "the stores disagree\n  bolt:  %s\n  redis: %s", v[0], v[1])
	}
	return res, true
}

func (p *parity) fail(what, format string, args ...any) {
	p.t.Helper()
	at := fmt.Sprintf("step %d", p.step)
	if p.step == 0 {
		at = "the final comparison"
	}
	p.t.Fatalf("seed %d, %s, %s: "+format, append([]any{p.seed, at, what}, args...)...)
}

// paritySentinels are the errors a step may answer with; any other is a
// broken test or store.
var paritySentinels = []error{store.ErrNotFound, store.ErrAlreadyExists, store.ErrInUse, store.ErrLockLost,
	store.ErrCapacity, store.ErrConflict, store.ErrEmpty, store.ErrClosed, store.ErrUnknownTeam,
	store.ErrUnknownAgent, store.ErrStaleConfig, store.ErrDeletedBefore}

// errClass names the sentinel err matches ("ok" for nil, "" for none); a
// held lock is named with its holder.
func errClass(err error) string {
	var held *store.LockHeldError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &held):
		return "lock held by " + held.AgentID
	}
	for _, s := range paritySentinels {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return ""
}

// threadView is what of a thread both stores must agree on: all but its
// times (only whether they are set) and its lock's token and expiry.
func threadView(th store.Thread) string {
	lock := "-"
	if th.Lock != nil {
		lock = fmt.Sprintf("%s#%d", th.Lock.AgentID, th.Lock.Fence)
	}
	return fmt.Sprintf("%s v%d %s/%s/%s %s team=%s priority=%s tags=[%s] assignee=%s lock=%s "+
		"answered=%v outbound=%v sla=%v breached=%v autoclose=%v",
		th.ID, th.Version, th.Network, th.Profile, th.ExternalID, th.Status, th.Team, th.Priority,
		strings.Join(th.Tags, " "), th.AssigneeID(), lock,
		th.FirstResponseAt != nil, th.LastOutboundAt != nil, th.SLADueAt != nil, th.SLABreached, th.AutoCloseAt != nil)
}

func grantView(g *store.Grant) string {
	if g == nil {
		return "-"
	}
	return fmt.Sprintf("%s#%d", g.AgentID, g.Fence)
}

func lockView(r store.LockResult) string { return threadView(r.Thread) + " grant=" + grantView(r.Lock) }

// --- grants ---

// keep remembers the grant a step returned. A lock granted to someone else
// (an offer) its holder finds in its lock list, as it would on being told.
func (p *parity) keep(th store.Thread, g [2]*store.Grant) {
	p.locked[th.ID] = th.Lock != nil
	switch {
	case g[0] != nil:
		p.remember(th.ID, g)
	case th.Lock != nil && !slices.ContainsFunc(p.grants[th.ID], func(k parityGrant) bool { return k.fence == th.Lock.Fence }):
		p.lockList(th.Lock.AgentID)
	}
}

// remember keeps a grant both stores returned (once per fence).
func (p *parity) remember(threadID string, g [2]*store.Grant) {
	if slices.ContainsFunc(p.grants[threadID], func(k parityGrant) bool { return k.fence == g[0].Fence }) {
		return
	}
	p.grants[threadID] = append(p.grants[threadID], parityGrant{agent: g[0].AgentID, fence: g[0].Fence,
		token: [2]string{g[0].Token, g[1].Token}})
}

// grant picks a token for a step on the thread: mostly the newest grant
// seen, sometimes an older one (maybe stale), sometimes none.
func (p *parity) grant(threadID string) parityGrant {
	gs := p.grants[threadID]
	switch n := p.r.IntN(10); {
	case len(gs) == 0 || n == 0:
		return parityGrant{}
	case n == 1:
		return storetest.Pick(p.r, gs)
	}
	return gs[len(gs)-1]
}

// actor is who acts with g: its agent, sometimes (or without one) another.
func (p *parity) actor(g parityGrant) string {
	if g.agent == "" || p.r.IntN(6) == 0 {
		return p.agent().ID
	}
	return g.agent
}

func (p *parity) lockList(agentID string) {
	p.t.Helper()
	res, ok := both(p, "LockList "+agentID, func(_ int, s store.Store) ([]store.LockResult, error) {
		return s.LockList(p.ctx, agentID)
	}, func(ls []store.LockResult) string {
		views := make([]string, len(ls))
		for i, l := range ls {
			views[i] = lockView(l)
		}
		slices.Sort(views) // in no promised order
		return strings.Join(views, "\n         ")
	})
	if !ok {
		return
	}
	for _, l := range res[0] {
		i := slices.IndexFunc(res[1], func(r store.LockResult) bool { return r.Thread.ID == l.Thread.ID })
		p.remember(l.Thread.ID, [2]*store.Grant{l.Lock, res[1][i].Lock})
	}
}

// --- picking arguments ---

func (p *parity) id(prefix string) string { p.n++; return fmt.Sprintf("%s-%04d", prefix, p.n) }

func (p *parity) agent() store.Agent { return storetest.Pick(p.r, p.agents) }

// threadID is a thread both stores have, now and then one neither has.
func (p *parity) threadID() string {
	if len(p.threads) == 0 || p.r.IntN(25) == 0 {
		return "t-none"
	}
	return storetest.Pick(p.r, p.threads).id
}

// lockedThreadID is, most of the time, a thread last seen locked, so that
// steps that take a token do not mostly fail; else any.
func (p *parity) lockedThreadID() string {
	var locked []string
	for _, th := range p.threads {
		if p.locked[th.id] {
			locked = append(locked, th.id)
		}
	}
	if len(locked) == 0 || p.r.IntN(4) == 0 {
		return p.threadID()
	}
	return storetest.Pick(p.r, locked)
}

// subset is a random non-empty subset of s, in s's order.
func (p *parity) subset(s []string) []string {
	for {
		var out []string
		for _, x := range s {
			if p.r.IntN(2) == 0 {
				out = append(out, x)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
}

// maybePriority is a priority floor one time in n, else none.
func (p *parity) maybePriority(n int) string {
	if p.r.IntN(n) > 0 {
		return ""
	}
	return storetest.Pick(p.r, routing.Priorities)
}

func (p *parity) maybeTags(n int) []string {
	if p.r.IntN(n) > 0 {
		return nil
	}
	return p.subset(parityTags)
}

// get reads a thread from both stores, compares it and returns it.
func (p *parity) get(id string) (store.Thread, bool) {
	p.t.Helper()
	res, ok := both(p, "ThreadGet "+id, func(_ int, s store.Store) (store.Thread, error) { return s.ThreadGet(p.ctx, id) }, threadView)
	if ok {
		p.locked[id] = res[0].Lock != nil
	}
	return res[0], ok
}

// version is 0 (no check) most of the time, else the thread's version or,
// now and then, the one before it.
func (p *parity) version(id string) int64 {
	if p.r.IntN(4) > 0 {
		return 0
	}
	th, _ := p.get(id)
	if p.r.IntN(3) == 0 {
		return th.Version - 1
	}
	return th.Version
}

// --- the steps ---

// inbound is a new message on the thread, decided on version.
func (p *parity) inbound(th parityThread, version int64) store.IngestParams {
	id := p.id("m")
	ip := store.IngestParams{
		Message: store.Message{ID: id, Network: th.network, ExternalID: "x-" + id, Kind: "dm",
			Author: &store.Author{ID: "u-" + th.ext}, Text: "hello",
			SentAt: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)},
		Profile: "@acme", ThreadExternalID: th.ext, NewThreadID: th.id, ThreadVersion: version,
		Tags: p.maybeTags(6),
	}
	ip.Route.Priority, ip.Route.AddTags = p.maybePriority(3), p.maybeTags(4)
	if p.r.IntN(4) == 0 {
		ip.Route.OfferTo, ip.Route.OfferTTL = p.agent().ID, parityTTL
	}
	return ip
}

func (p *parity) ingestNew() {
	th := parityThread{id: p.id("t"), network: storetest.Pick(p.r, p.networks), ext: p.id("conv")}
	ip := p.inbound(th, 0)
	ip.Route.Team = storetest.Pick(p.r, p.teams)
	ip.Route.RuledTeam = ip.Route.Team
	ip.Route.Close = p.r.IntN(15) == 0
	if res, ok := p.ingest(ip); ok && res.Created {
		p.threads = append(p.threads, th)
	}
}

// followUp is a new message on a thread, decided on its version as read
// now or, now and then, the one before.
func (p *parity) followUp() {
	if len(p.threads) == 0 {
		p.ingestNew()
		return
	}
	th := storetest.Pick(p.r, p.threads)
	cur, _ := p.get(th.id)
	version := cur.Version
	if p.r.IntN(8) == 0 {
		version--
	}
	p.ingest(p.inbound(th, version))
}

// deliverAgain sends a stored message again: a duplicate.
func (p *parity) deliverAgain() {
	if len(p.sent) == 0 {
		p.ingestNew()
		return
	}
	p.ingest(storetest.Pick(p.r, p.sent))
}

func (p *parity) ingest(ip store.IngestParams) (store.IngestResult, bool) {
	what := fmt.Sprintf("ThreadIngest %s on %s/%s v%d route=%+v tags=%v", ip.Message.ID, ip.Message.Network,
		ip.ThreadExternalID, ip.ThreadVersion, ip.Route, ip.Tags)
	res, ok := both(p, what, func(_ int, s store.Store) (store.IngestResult, error) {
		rs, err := s.ThreadIngest(p.ctx, []store.IngestParams{ip})
		if err != nil {
			return store.IngestResult{}, err
		}
		if len(rs) != 1 {
			p.fail(what, "%d results for 1 item", len(rs))
		}
		return rs[0], rs[0].Err
	}, func(r store.IngestResult) string {
		return fmt.Sprintf("created=%v duplicate=%v message %s on %s; %s",
			r.Created, r.Duplicate, r.Message.ID, r.Message.ThreadID, threadView(r.Thread))
	})
	if ok {
		if !res[0].Duplicate {
			p.sent = append(p.sent, ip)
		}
		p.keep(res[0].Thread, [2]*store.Grant{})
	}
	return res[0], ok
}

// lock runs a step that answers a LockResult and keeps its grant.
func (p *parity) lock(what string, do func(side int, s store.Store) (store.LockResult, error)) {
	p.t.Helper()
	if res, ok := both(p, what, do, lockView); ok {
		p.keep(res[0].Thread, [2]*store.Grant{res[0].Lock, res[1].Lock})
	}
}

func (p *parity) claimNext() {
	a := p.agent()
	teams := a.Teams
	if a.Role == store.RoleSupervisor || p.r.IntN(5) == 0 {
		teams = p.subset(p.teams)
	}
	var networks []string
	if p.r.IntN(3) == 0 {
		networks = p.subset(p.networks)
	}
	cp := store.ClaimNextParams{AgentID: a.ID, Teams: teams, Networks: networks, TTL: parityTTL}
	p.lock(fmt.Sprintf("ThreadClaimNext %+v", cp), func(_ int, s store.Store) (store.LockResult, error) {
		return s.ThreadClaimNext(p.ctx, cp)
	})
}

func (p *parity) claim() {
	a := p.agent()
	cp := store.ClaimParams{ThreadID: p.threadID(), AgentID: a.ID, TTL: parityTTL}
	if p.r.IntN(4) == 0 { // the caller's scope
		cp.Teams, cp.Networks = a.Teams, a.Networks
	}
	p.lock(fmt.Sprintf("ThreadClaim %+v", cp), func(_ int, s store.Store) (store.LockResult, error) {
		return s.ThreadClaim(p.ctx, cp)
	})
}

func (p *parity) release() {
	id := p.lockedThreadID()
	g := p.grant(id)
	lp := store.LockParams{ThreadID: id, Actor: p.actor(g), Holder: p.r.IntN(3) == 0}
	p.lock(fmt.Sprintf("ThreadRelease %s with %s#%d by %s holder=%v", id, g.agent, g.fence, lp.Actor, lp.Holder),
		func(side int, s store.Store) (store.LockResult, error) {
			lp.Token = g.token[side]
			return s.ThreadRelease(p.ctx, lp)
		})
}

func (p *parity) reply() {
	id := p.lockedThreadID()
	g := p.grant(id)
	rp := store.ReplyParams{ThreadID: id, Actor: p.actor(g), Close: p.r.IntN(4) == 0,
		Message: store.Message{ID: p.id("r"), Text: "on it"}}
	if p.r.IntN(5) == 0 {
		rp.IdempotencyKey = storetest.Pick(p.r, []string{"k1", "k2"})
	}
	what := fmt.Sprintf("ThreadReply %s %s with %s#%d by %s close=%v key=%q", id, rp.Message.ID, g.agent, g.fence,
		rp.Actor, rp.Close, rp.IdempotencyKey)
	res, ok := both(p, what, func(side int, s store.Store) (store.ReplyResult, error) {
		rp.Token = g.token[side]
		return s.ThreadReply(p.ctx, rp)
	}, func(r store.ReplyResult) string {
		return fmt.Sprintf("message %s %s by %s repeated=%v; %s grant=%s",
			r.Message.ID, r.Message.Direction, r.Message.AgentID, r.Repeated, threadView(r.Thread), grantView(r.Lock))
	})
	if ok {
		p.keep(res[0].Thread, [2]*store.Grant{res[0].Lock, res[1].Lock})
	}
}

func (p *parity) transfer() {
	id := p.lockedThreadID()
	g := p.grant(id)
	tp := store.TransferParams{ThreadID: id, Force: p.r.IntN(2) == 0, Actor: p.actor(g), Reason: "other",
		Priority: p.maybePriority(4), AddTags: p.maybeTags(4), TTL: parityTTL}
	if tp.Force {
		tp.Actor = "sup"
	}
	switch p.r.IntN(3) {
	case 0:
		tp.Team = storetest.Pick(p.r, p.teams)
	case 1:
		tp.AgentID = p.agent().ID
	default:
		tp.Team, tp.AgentID = storetest.Pick(p.r, p.teams), p.agent().ID
	}
	p.lock(fmt.Sprintf("ThreadTransfer %s with %s#%d force=%v by %s to team %q agent %q priority=%q tags=%v",
		id, g.agent, g.fence, tp.Force, tp.Actor, tp.Team, tp.AgentID, tp.Priority, tp.AddTags),
		func(side int, s store.Store) (store.LockResult, error) {
			tp.Token = g.token[side]
			return s.ThreadTransfer(p.ctx, tp)
		})
}

func (p *parity) assign() {
	id := p.threadID()
	ap := store.AssignParams{ThreadID: id, AgentID: p.agent().ID, Actor: "sup", TTL: parityTTL,
		OnlyIfQueued: p.r.IntN(3) == 0, ThreadVersion: p.version(id)}
	if p.r.IntN(4) == 0 { // to oneself: the grant comes back
		ap.Actor = ap.AgentID
	}
	p.lock(fmt.Sprintf("ThreadAssign %+v", ap), func(_ int, s store.Store) (store.LockResult, error) {
		return s.ThreadAssign(p.ctx, ap)
	})
}

func (p *parity) unlock() {
	up := store.UnlockParams{ThreadID: p.threadID(), Actor: "sup"}
	p.lock(fmt.Sprintf("ThreadUnlock %+v", up), func(_ int, s store.Store) (store.LockResult, error) {
		return s.ThreadUnlock(p.ctx, up)
	})
}

func (p *parity) tag() {
	id := p.lockedThreadID()
	g := p.grant(id)
	tp := store.TagParams{ThreadID: id, Force: p.r.IntN(2) == 0, Actor: p.actor(g), Add: p.maybeTags(2),
		Remove: p.maybeTags(3), Priority: p.maybePriority(4), Close: p.r.IntN(15) == 0, ThreadVersion: p.version(id)}
	if p.r.IntN(6) == 0 {
		tp.Team = storetest.Pick(p.r, p.teams)
	}
	p.lock(fmt.Sprintf("ThreadTag %s with %s#%d force=%v by %s add=%v remove=%v priority=%q team=%q close=%v v%d",
		id, g.agent, g.fence, tp.Force, tp.Actor, tp.Add, tp.Remove, tp.Priority, tp.Team, tp.Close, tp.ThreadVersion),
		func(side int, s store.Store) (store.LockResult, error) {
			tp.Token = g.token[side]
			return s.ThreadTag(p.ctx, tp)
		})
}

func (p *parity) close() {
	id := p.lockedThreadID()
	g := p.grant(id)
	lp := store.LockParams{ThreadID: id, Actor: p.actor(g), Force: p.r.IntN(2) == 0}
	p.lock(fmt.Sprintf("ThreadClose %s with %s#%d by %s force=%v", id, g.agent, g.fence, lp.Actor, lp.Force),
		func(side int, s store.Store) (store.LockResult, error) {
			lp.Token = g.token[side]
			return s.ThreadClose(p.ctx, lp)
		})
}

func (p *parity) lockListStep() { p.lockList(p.agent().ID) }
