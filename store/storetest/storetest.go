// Package storetest is the conformance suite every store backend runs
// unchanged (bbolt now, Redis later), in the manner of riverqueue's
// riverdrivertest.Exercise. A backend is done when Run passes.
//
// The suite only uses the store.Store interface and real time: leases are a
// few hundred milliseconds and waits are bounded polls on a condition, so it
// runs the same against a backend that reads its own clock (bbolt) or the
// server's (Redis TIME). Every scenario gets a fresh, empty store.
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

// Harness builds stores for the suite.
type Harness struct {
	// New returns a fresh, empty store (a new file / a fresh Redis DB). It
	// closes the store when the test ends.
	New func(t *testing.T) store.Store
	// Reopen closes s and opens the same data again (a restart), returning
	// the new store, which it closes when the test ends.
	Reopen func(t *testing.T, s store.Store) store.Store
	// Dump, when set, returns everything the store keeps, keys and values,
	// as raw bytes: scenarios search it for what must be gone.
	Dump func(t *testing.T, s store.Store) []byte
}

// scenario is one behaviour the suite checks.
type scenario struct {
	name string
	fn   func(t *testing.T, e *env)
}

// Run runs every scenario as a parallel subtest, each against its own
// fresh store.
func Run(t *testing.T, h Harness) {
	if h.New == nil || h.Reopen == nil {
		t.Fatal("storetest: Harness.New and Harness.Reopen are required")
	}
	var all []scenario
	all = append(all, configScenarios...)
	all = append(all, ingestScenarios...)
	all = append(all, readScenarios...)
	all = append(all, queueScenarios...)
	all = append(all, lockScenarios...)
	all = append(all, concurrencyScenarios...)
	all = append(all, timerScenarios...)
	all = append(all, presenceScenarios...)
	all = append(all, statsScenarios...)
	all = append(all, webhookScenarios...)
	all = append(all, savedReplyScenarios...)
	all = append(all, eraseScenarios...)
	seen := map[string]bool{}
	for _, sc := range all {
		if seen[sc.name] {
			t.Fatalf("storetest: duplicate scenario %s", sc.name)
		}
		seen[sc.name] = true
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			t.Cleanup(cancel)
			e := &env{t: t, h: h, ctx: ctx}
			e.s = h.New(t)
			sc.fn(t, e)
		})
	}
}

// --- the scenario environment ---

// Timings. Short leases are real: the suite never steers a clock.
const (
	longTTL  = time.Minute            // a lease that must not run out during a scenario
	shortTTL = 300 * time.Millisecond // a lease that must run out
	waitFor  = 5 * time.Second        // upper bound of every poll
)

type env struct {
	t   *testing.T
	s   store.Store
	h   Harness
	ctx context.Context
	n   atomic.Int64
}

// id returns a fresh id with the prefix; ids sort in creation order.
func (e *env) id(prefix string) string { return fmt.Sprintf("%s-%05d", prefix, e.n.Add(1)) }

// reopen restarts the store.
func (e *env) reopen() { e.s = e.h.Reopen(e.t, e.s) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

// eventually polls cond every 10 ms until it holds, failing after waitFor.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", waitFor, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// --- configuration fixtures ---

func (e *env) team(id string, mods ...func(*store.Team)) store.Team {
	e.t.Helper()
	tm := store.Team{ID: id, Name: "Team " + id, Function: "care", Strategy: "claim", SLAFirstResponseSeconds: 900}
	for _, m := range mods {
		m(&tm)
	}
	got, err := e.s.TeamCreate(e.ctx, tm)
	must(e.t, err)
	return got
}

// agentKey is the key an agent is created with.
func agentKey(agentID, secret string) store.Key {
	return store.Key{ID: "key-" + secret, Role: store.RoleAgent, Name: agentID, AgentID: agentID, Hash: hash(secret)}
}

// agent creates an agent (capacity 5, all networks) with the key secret
// "secret-<id>".
func (e *env) agent(id string, teams []string, mods ...func(*store.Agent)) store.Agent {
	e.t.Helper()
	a := store.Agent{ID: id, Name: "Agent " + id, Role: store.RoleAgent, Teams: teams, Capacity: 5, Timezone: "UTC"}
	for _, m := range mods {
		m(&a)
	}
	got, err := e.s.AgentCreate(e.ctx, a, agentKey(id, "secret-"+id))
	must(e.t, err)
	return got
}

// online sets the agents online, as push offers want them.
func (e *env) online(ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		_, err := e.s.AgentSetStatus(e.ctx, id, store.AgentOnline)
		must(e.t, err)
	}
}

func capacity(n int) func(*store.Agent)        { return func(a *store.Agent) { a.Capacity = n } }
func networks(nw ...string) func(*store.Agent) { return func(a *store.Agent) { a.Networks = nw } }
func sla(seconds int) func(*store.Team) {
	return func(t *store.Team) { t.SLAFirstResponseSeconds = seconds }
}
func function(f string) func(*store.Team) { return func(t *store.Team) { t.Function = f } }
func autoClose(seconds int) func(*store.Team) {
	return func(t *store.Team) { t.AutoClosePendingSeconds = seconds }
}
func priority(p string) func(*store.IngestParams) {
	return func(ip *store.IngestParams) { ip.Route.Priority = p }
}
func author(id string) func(*store.IngestParams) {
	return func(ip *store.IngestParams) { ip.Message.Author = &store.Author{ID: id, Handle: "@" + id} }
}
func msgTags(tags ...string) func(*store.IngestParams) {
	return func(ip *store.IngestParams) { ip.Tags = tags }
}
func routeTags(tags ...string) func(*store.IngestParams) {
	return func(ip *store.IngestParams) { ip.Route.AddTags = tags }
}
func closeRoute(ip *store.IngestParams) { ip.Route.Close = true }
func offerTo(agent string, ttl time.Duration) func(*store.IngestParams) {
	return func(ip *store.IngestParams) { ip.Route.OfferTo, ip.Route.OfferTTL = agent, ttl }
}
func routeTeam(team string) func(*store.IngestParams) {
	return func(ip *store.IngestParams) { ip.Route.Team = team }
}

// --- ingest fixtures ---

// msg builds an inbound message for the thread (network, "@acme",
// threadExt) routed to team.
func (e *env) msg(network, threadExt, team string, opts ...func(*store.IngestParams)) store.IngestParams {
	id := e.id("m")
	p := store.IngestParams{
		Message: store.Message{ID: id, Network: network, ExternalID: "ext-" + id, Kind: "dm",
			Author: &store.Author{ID: "u-1", Handle: "@u1", Name: "User One"},
			Text:   "hello " + id, SentAt: time.Now().UTC().Truncate(time.Second)},
		Profile:          "@acme",
		ThreadExternalID: threadExt,
		NewThreadID:      e.id("t"),
		Route:            store.Route{Team: team},
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

// ingest stores one message and fails the test on any error.
func (e *env) ingest(p store.IngestParams) store.IngestResult {
	e.t.Helper()
	res, err := e.s.ThreadIngest(e.ctx, []store.IngestParams{p})
	must(e.t, err)
	if len(res) != 1 {
		e.t.Fatalf("ThreadIngest returned %d results for 1 item", len(res))
	}
	must(e.t, res[0].Err)
	return res[0]
}

// thread creates a new thread on network in team.
func (e *env) thread(network, team string, opts ...func(*store.IngestParams)) store.Thread {
	e.t.Helper()
	res := e.ingest(e.msg(network, e.id("conv"), team, opts...))
	if !res.Created {
		e.t.Fatalf("thread %s: Created = false for a new thread", res.Thread.ID)
	}
	return res.Thread
}

// followUp ingests a new message on th, decided against its current version.
func (e *env) followUp(th store.Thread, opts ...func(*store.IngestParams)) store.IngestResult {
	e.t.Helper()
	cur := e.get(th.ID)
	p := e.msg(cur.Network, cur.ExternalID, "", opts...)
	p.Profile = cur.Profile
	p.ThreadVersion = cur.Version
	res := e.ingest(p)
	if res.Created || res.Thread.ID != th.ID {
		e.t.Fatalf("follow-up created thread %s (created=%v), want message on %s", res.Thread.ID, res.Created, th.ID)
	}
	return res
}

func (e *env) get(id string) store.Thread {
	e.t.Helper()
	th, err := e.s.ThreadGet(e.ctx, id)
	must(e.t, err)
	return th
}

// --- lock fixtures ---

func (e *env) claim(threadID, agentID string, ttl time.Duration) *store.Grant {
	e.t.Helper()
	res, err := e.s.ThreadClaim(e.ctx, store.ClaimParams{ThreadID: threadID, AgentID: agentID, TTL: ttl})
	must(e.t, err)
	if res.Lock == nil || res.Lock.Token == "" || res.Lock.AgentID != agentID {
		e.t.Fatalf("claim of %s by %s: grant %+v", threadID, agentID, res.Lock)
	}
	return res.Lock
}

func (e *env) reply(threadID, token, actor string) store.ReplyResult {
	e.t.Helper()
	res, err := e.s.ThreadReply(e.ctx, store.ReplyParams{ThreadID: threadID, Token: token, Actor: actor,
		Message: store.Message{ID: e.id("out"), Kind: "dm", Text: "we are on it"}})
	must(e.t, err)
	return res
}

func (e *env) release(threadID, token, actor string) store.LockResult {
	e.t.Helper()
	res, err := e.s.ThreadRelease(e.ctx, store.LockParams{ThreadID: threadID, Token: token, Actor: actor})
	must(e.t, err)
	return res
}

// pending makes th pending: claimed by agent, answered, released.
func (e *env) pending(th store.Thread, agentID string) store.Thread {
	e.t.Helper()
	g := e.claim(th.ID, agentID, longTTL)
	e.reply(th.ID, g.Token, agentID)
	res := e.release(th.ID, g.Token, agentID)
	if res.Thread.Status != store.StatusPending {
		e.t.Fatalf("thread %s after reply and release: status %s, want pending", th.ID, res.Thread.Status)
	}
	return res.Thread
}

// locks returns the live locks agentID holds, by thread id.
func (e *env) locks(agentID string) map[string]*store.Grant {
	e.t.Helper()
	ls, err := e.s.LockList(e.ctx, agentID)
	must(e.t, err)
	out := map[string]*store.Grant{}
	for _, l := range ls {
		if l.Lock == nil {
			e.t.Fatalf("LockList(%s): thread %s without a grant", agentID, l.Thread.ID)
		}
		out[l.Thread.ID] = l.Lock
	}
	return out
}

// --- events ---

// events returns every event of the thread (all events when threadID is
// empty), oldest first.
func (e *env) events(threadID string) []store.Event {
	e.t.Helper()
	var out []store.Event
	var after uint64
	for {
		evs, err := e.s.EventList(e.ctx, store.EventFilter{ThreadID: threadID, After: after, Limit: 500})
		must(e.t, err)
		if len(evs) == 0 {
			return out
		}
		out = append(out, evs...)
		after = evs[len(evs)-1].ID
	}
}

func types(evs []store.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type
	}
	return out
}

func ofType(evs []store.Event, typ string) []store.Event {
	var out []store.Event
	for _, ev := range evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// --- comparisons ---

func ids(ths []store.Thread) []string {
	out := make([]string, len(ths))
	for i, th := range ths {
		out[i] = th.ID
	}
	return out
}

func wantIDs(t testing.TB, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("%s = [%s], want [%s]", what, strings.Join(got, " "), strings.Join(want, " "))
	}
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	sort.Strings(c)
	return c
}

func wantEqual[T comparable](t testing.TB, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func wantTime(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s = %s, want %s", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
}

func assignee(th store.Thread) string { return th.AssigneeID() }
