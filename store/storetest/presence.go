package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

var presenceScenarios = []scenario{
	{"Presence_SweepSetsIdleOnlineAgentsAway", presenceSweep},
	{"Presence_AnAgentSweptAwayIsOnlineAgainAtTheirNextSignOfLife", presenceBack},
}

// presenceBack: the sweep's away is the system's guess (a closed laptop),
// so the agent's next sign of life (a request, an event stream) sets them
// online again; an away they chose themselves stays, whatever they do.
func presenceBack(t *testing.T, e *env) {
	e.team("care")
	// What the store sets is not taken from the caller.
	made, err := e.s.AgentCreate(e.ctx, store.Agent{ID: "zed", Name: "zed", Role: store.RoleAgent, Teams: []string{"care"},
		Capacity: 1, IdleAway: true, LastSeenAt: time.Now()}, store.Key{ID: "k-zed", Role: store.RoleAgent, Hash: []byte("zed-0123456789abcdef0123456789ab")})
	must(t, err)
	if got := e.getAgent("zed"); got.IdleAway || !got.LastSeenAt.IsZero() || made.IdleAway {
		t.Fatalf("an agent created with idle_away and last_seen_at given: %+v", got)
	}
	for _, id := range []string{"bob", "dan", "eve"} {
		e.agent(id, []string{"care"})
		e.setStatus(id, store.AgentOnline)
	}
	e.setStatus("dan", store.AgentAway)
	var gone []string
	eventually(t, "bob and eve are swept away", func() bool {
		gone = append(gone, e.sweepPresence(time.Now())...)
		return len(gone) == 2
	})
	for _, id := range []string{"bob", "eve"} {
		if a := e.getAgent(id); a.Status != store.AgentAway || !a.IdleAway {
			t.Fatalf("%s after the sweep: status %s, idle_away %v", id, a.Status, a.IdleAway)
		}
	}
	// eve chooses away herself: no longer the sweep's.
	e.setStatus("eve", store.AgentAway)
	wantEqual(t, "eve's idle_away after she set away herself", e.getAgent("eve").IdleAway, false)

	cv, err := e.s.ConfigVersion(e.ctx)
	must(t, err)
	must(t, e.s.AgentTouch(e.ctx, []string{"bob", "dan", "eve"}))
	bob := e.getAgent("bob")
	if bob.Status != store.AgentOnline || bob.IdleAway || !bob.StatusAt.Equal(bob.LastSeenAt) {
		t.Fatalf("bob after a sign of life: status %s, idle_away %v, status_at %s, last_seen_at %s",
			bob.Status, bob.IdleAway, bob.StatusAt, bob.LastSeenAt)
	}
	wantEqual(t, "dan's status after a sign of life", e.getAgent("dan").Status, store.AgentAway)
	wantEqual(t, "eve's status after a sign of life", e.getAgent("eve").Status, store.AgentAway)
	cv2, err := e.s.ConfigVersion(e.ctx)
	must(t, err)
	if cv2 <= cv {
		t.Fatalf("config version %d after bob came back online, want above %d (routing must see him)", cv2, cv)
	}
}

// presenceTTL is how long an online agent may go unseen in these scenarios.
const presenceTTL = 200 * time.Millisecond

func (e *env) getAgent(id string) store.Agent {
	e.t.Helper()
	a, err := e.s.AgentGet(e.ctx, id)
	must(e.t, err)
	return a
}

func (e *env) setStatus(id, status string) {
	e.t.Helper()
	_, err := e.s.AgentSetStatus(e.ctx, id, status)
	must(e.t, err)
}

// sweepPresence sweeps with presenceTTL. The agents in fresh showed a sign
// of life at since (just before the call): one of them swept although less
// than the ttl has passed fails the test; if more has passed (a stalled
// machine) it is set online again and left out of the result.
func (e *env) sweepPresence(since time.Time, fresh ...string) []string {
	e.t.Helper()
	swept, err := e.s.AgentPresenceSweep(e.ctx, presenceTTL)
	must(e.t, err)
	elapsed := time.Since(since)
	var out []string
	for _, id := range swept {
		if !slices.Contains(fresh, id) {
			out = append(out, id)
			continue
		}
		if elapsed < presenceTTL {
			e.t.Fatalf("agent %s swept away %s after a sign of life (ttl %s)", id, elapsed, presenceTTL)
		}
		e.t.Logf("agent %s swept after a %s stall; set online again", id, elapsed)
		e.setStatus(id, store.AgentOnline)
	}
	return out
}

func presenceSweep(t *testing.T, e *env) {
	e.team("care")
	for _, id := range []string{"ana", "bob", "cat", "dan", "eve"} {
		e.agent(id, []string{"care"})
	}
	// ana stays active, bob never shows up, eve shows up once; cat stays
	// offline and dan away.
	e.setStatus("ana", store.AgentOnline)
	e.setStatus("bob", store.AgentOnline)
	e.setStatus("eve", store.AgentOnline)
	e.setStatus("dan", store.AgentAway)
	cat0, dan0 := e.getAgent("cat"), e.getAgent("dan")

	// Going online is a sign of life: nobody is idle for a minute.
	swept, err := e.s.AgentPresenceSweep(e.ctx, longTTL)
	must(t, err)
	wantIDs(t, "swept with a one-minute ttl", swept, nil)

	// AgentTouch records last_seen_at and changes no status set by hand;
	// unknown ids are no error and create nothing.
	before := time.Now()
	must(t, e.s.AgentTouch(e.ctx, []string{"ana", "eve", "cat"}))
	after := time.Now()
	for _, id := range []string{"ana", "eve", "cat"} {
		within(t, id+" last_seen_at", e.getAgent(id).LastSeenAt, before, after)
	}
	wantEqual(t, "cat's status after a touch", e.getAgent("cat").Status, store.AgentOffline)
	must(t, e.s.AgentTouch(e.ctx, []string{"ghost", "ana"}))
	must(t, e.s.AgentTouch(e.ctx, nil))
	_, err = e.s.AgentGet(e.ctx, "ghost")
	wantErr(t, err, store.ErrNotFound)

	// bob and eve go away once the ttl passes; ana, touched before every
	// sweep, stays; cat and dan are never swept.
	cv, err := e.s.ConfigVersion(e.ctx)
	must(t, err)
	var gone []string
	eventually(t, "bob and eve are swept away", func() bool {
		since := time.Now()
		must(t, e.s.AgentTouch(e.ctx, []string{"ana"}))
		for _, id := range e.sweepPresence(since, "ana") {
			if id != "bob" && id != "eve" {
				t.Fatalf("sweep returned %s, want only online agents not seen for the ttl", id)
			}
			if slices.Contains(gone, id) {
				t.Fatalf("sweep returned %s twice", id)
			}
			gone = append(gone, id)
		}
		return len(gone) == 2
	})
	for _, id := range []string{"bob", "eve"} {
		wantEqual(t, id+"'s status after the sweep", e.getAgent(id).Status, store.AgentAway)
	}
	wantEqual(t, "ana's status", e.getAgent("ana").Status, store.AgentOnline)
	for _, a := range []store.Agent{cat0, dan0} {
		got := e.getAgent(a.ID)
		wantEqual(t, a.ID+"'s status", got.Status, a.Status)
		wantTime(t, a.ID+"'s status_at", got.StatusAt, a.StatusAt)
	}
	cv2, err := e.s.ConfigVersion(e.ctx)
	must(t, err)
	if cv2 <= cv {
		t.Fatalf("config version %d after agents went away, want above %d", cv2, cv)
	}

	// eve comes back online: a sign of life although her last touch is
	// old. Nobody is swept twice.
	since := time.Now()
	must(t, e.s.AgentTouch(e.ctx, []string{"ana"}))
	e.setStatus("eve", store.AgentOnline)
	wantIDs(t, "swept after eve came back", e.sweepPresence(since, "ana", "eve"), nil)

	// An update of ana's profile keeps her presence.
	ana := e.getAgent("ana")
	_, err = e.s.AgentUpdate(e.ctx, store.Agent{ID: "ana", Name: "Ana B", Role: store.RoleAgent, Teams: []string{"care"}, Capacity: 5, Timezone: "UTC"})
	must(t, err)
	got := e.getAgent("ana")
	wantEqual(t, "ana's status after an update", got.Status, ana.Status)
	wantTime(t, "ana's status_at after an update", got.StatusAt, ana.StatusAt)
	wantTime(t, "ana's last_seen_at after an update", got.LastSeenAt, ana.LastSeenAt)
}
