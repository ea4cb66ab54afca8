package api_test

import "testing"

// The tests here show that an event did not reach a stream without
// waiting for time to pass: after the event, something the stream must
// show (a marker: a new thread in a team the stream sees) is written, and
// a stream sends events in the log's order, so whatever it was going to
// send of the first comes before the marker.

// newScopeSetup is newStreamSetup plus team gamma (claim), reached by the
// word "gamma", and gina, an agent of gamma only. It returns gina's key.
func newScopeSetup(t *testing.T) (*streamSetup, string) {
	t.Helper()
	s := newStreamSetup(t, nil)
	s.team(t, map[string]any{"id": "gamma"})
	s.rule(t, map[string]any{"id": "gamma", "when": map[string]any{"text_any": []string{"gamma"}}, "then": map[string]any{"team": "gamma"}})
	gina := s.onlineAgent(t, map[string]any{"id": "gina", "teams": []string{"gamma"}})
	return s, gina
}

// noneOfUntil reads st until the marker thread's thread.routed and fails
// if any event of thread came before it.
func noneOfUntil(t *testing.T, st *sseStream, who, thread, marker string) {
	t.Helper()
	for _, ev := range st.readUntil(t, marker, "thread.routed") {
		if ev.thread(t) == thread {
			t.Fatalf("%s got %s %s of a thread it may not see", who, ev.Event, ev.Data)
		}
	}
}

// transferAlphaToBeta has the supervisor move thread th (in alpha) to beta.
func transferAlphaToBeta(t *testing.T, s *streamSetup, th string) {
	t.Helper()
	s.do(t, "POST", "/api/v1/threads/"+th+"/transfer", s.sup, map[string]any{"team": "beta"}).want(t, 200)
}

// TestEvents_TransferBetweenOtherTeamsIsNoNewsToAThirdTeam: a thread
// moving from alpha to beta is news in both teams, but not to an agent who
// works only gamma.
func TestEvents_TransferBetweenOtherTeamsIsNoNewsToAThirdTeam(t *testing.T) {
	t.Parallel()
	s, gina := newScopeSetup(t)
	th := s.ingest(t, msg("alpha to move", map[string]any{"text": "alpha"})).Thread
	ana := mustStream(t, s.base, s.ana, "", "")
	ben := mustStream(t, s.base, s.ben, "", "")
	third := mustStream(t, s.base, gina, "", "")

	transferAlphaToBeta(t, s, th.ID)
	marker := s.ingest(t, msg("gamma marker", map[string]any{"text": "gamma"})).Thread

	ana.readUntil(t, th.ID, "thread.transferred") // the team it left
	ben.readUntil(t, th.ID, "thread.transferred") // the team it went to
	noneOfUntil(t, third, "gina, in gamma only,", th.ID, marker.ID)
}

// TestEvents_AFormerAssigneeHearsNothingOfATransferOutOfTheirTeams: a
// thread keeps its last holder as assignee after a release; once she left
// its team, a transfer of it (from a team she no longer works to one she
// never did) reached her stream, naming the thread and both teams.
func TestEvents_AFormerAssigneeHearsNothingOfATransferOutOfTheirTeams(t *testing.T) {
	t.Parallel()
	s, _ := newScopeSetup(t)
	th := s.ingest(t, msg("alpha, then gamma", map[string]any{"text": "alpha"})).Thread
	l := s.claim(t, s.ana, th.ID)
	s.do(t, "POST", "/api/v1/threads/"+th.ID+"/release", s.ana, map[string]any{"token": l.Lock.Token}).want(t, 200)
	s.do(t, "PUT", "/api/v1/agents/ana", s.admin, map[string]any{"name": "Ana", "teams": []string{"beta"}}).want(t, 200)
	ana := mustStream(t, s.base, s.ana, "", "")

	s.do(t, "POST", "/api/v1/threads/"+th.ID+"/transfer", s.sup, map[string]any{"team": "gamma"}).want(t, 200)
	marker := s.ingest(t, msg("beta marker", map[string]any{"text": "beta"})).Thread
	noneOfUntil(t, ana, "ana, once in beta only,", th.ID, marker.ID)
}

// TestEvents_SupervisorsTeamStreamShowsNoTransferBetweenOtherTeams: a
// supervisor sees every team, but its stream narrowed to gamma shows no
// transfer from alpha to beta; narrowed to either of those, it does.
func TestEvents_SupervisorsTeamStreamShowsNoTransferBetweenOtherTeams(t *testing.T) {
	t.Parallel()
	s, _ := newScopeSetup(t)
	th := s.ingest(t, msg("alpha to move", map[string]any{"text": "alpha"})).Thread
	alpha := mustStream(t, s.base, s.sup, "?team=alpha", "")
	beta := mustStream(t, s.base, s.sup, "?team=beta", "")
	gamma := mustStream(t, s.base, s.sup, "?team=gamma", "")

	transferAlphaToBeta(t, s, th.ID)
	marker := s.ingest(t, msg("gamma marker", map[string]any{"text": "gamma"})).Thread

	alpha.readUntil(t, th.ID, "thread.transferred")
	beta.readUntil(t, th.ID, "thread.transferred")
	noneOfUntil(t, gamma, "the supervisor's gamma stream", th.ID, marker.ID)
}

// TestEvents_OffersToTheCallerKeepToTheStreamsTeam: an agent of alpha and
// beta is offered a beta thread. Its stream narrowed to beta shows the
// offer; narrowed to alpha, it shows nothing of it, though the event
// names the agent.
func TestEvents_OffersToTheCallerKeepToTheStreamsTeam(t *testing.T) {
	t.Parallel()
	s, _ := newScopeSetup(t)
	dual := s.onlineAgent(t, map[string]any{"id": "dual", "teams": []string{"alpha", "beta"}})
	th := s.ingest(t, msg("beta to offer", map[string]any{"text": "beta"})).Thread
	alpha := mustStream(t, s.base, dual, "?team=alpha", "")
	beta := mustStream(t, s.base, dual, "?team=beta", "")

	s.do(t, "POST", "/api/v1/threads/"+th.ID+"/assign", s.sup, map[string]any{"agent_id": "dual"}).want(t, 200)
	marker := s.ingest(t, msg("alpha marker", map[string]any{"text": "alpha"})).Thread

	got := beta.readUntil(t, th.ID, "thread.offered")
	if offer := got[len(got)-1].decoded(t); offer["agent_id"] != "dual" {
		t.Fatalf("the offer on dual's beta stream: %s", got[len(got)-1].Data)
	}
	noneOfUntil(t, alpha, "dual's alpha stream", th.ID, marker.ID)
}
