package inbox

import (
	"context"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/store"
)

// TeamStats is one team's line in GET /api/v1/stats.
type TeamStats struct {
	Team                    string   `json:"team"`
	Queued                  int      `json:"queued"`
	Assigned                int      `json:"assigned"`
	Pending                 int      `json:"pending"`
	OldestWaitSeconds       float64  `json:"oldest_wait_seconds"`
	OnShiftAgents           int      `json:"on_shift_agents"`
	SLABreaches             int      `json:"sla_breaches"`
	FirstResponseP50Seconds *float64 `json:"first_response_p50_seconds"`
	FirstResponseP90Seconds *float64 `json:"first_response_p90_seconds"`
}

// AgentStats is one agent's line in GET /api/v1/stats.
type AgentStats struct {
	AgentID      string `json:"agent_id"`
	Status       string `json:"status"`
	OnShift      bool   `json:"on_shift"`
	OpenLocks    int    `json:"open_locks"`
	RepliesToday int    `json:"replies_today"`
}

// Stats is GET /api/v1/stats.
type Stats struct {
	Teams  []TeamStats  `json:"teams"`
	Agents []AgentStats `json:"agents"`
}

// Stats: supervisors and admins see every team and agent.
func (s *Service) Stats(ctx context.Context, p Principal) (Stats, error) {
	if !p.CanSupervise() {
		return Stats{}, ErrForbidden
	}
	raw, err := s.st.Stats(ctx)
	if err != nil {
		return Stats{}, err
	}
	sn, err := s.snapshot(ctx)
	if err != nil {
		return Stats{}, err
	}
	now := s.now()
	out := Stats{Teams: []TeamStats{}, Agents: []AgentStats{}}
	for _, t := range raw.Teams {
		ts := TeamStats{Team: t.Team, Queued: t.Queued, Assigned: t.Assigned, Pending: t.Pending, SLABreaches: t.SLABreaches}
		ts.OldestWaitSeconds = oldestWait(&raw, &t, now)
		for _, id := range sn.members[t.Team] {
			a := sn.agents[id]
			if sn.onShift(&a, now) {
				ts.OnShiftAgents++
			}
		}
		ts.FirstResponseP50Seconds = percentile(t.FirstResponseSeconds, 0.5)
		ts.FirstResponseP90Seconds = percentile(t.FirstResponseSeconds, 0.9)
		out.Teams = append(out.Teams, ts)
	}
	for _, a := range raw.Agents {
		as := AgentStats{AgentID: a.AgentID, OpenLocks: a.OpenLocks, RepliesToday: a.RepliesToday}
		if ag, ok := sn.agents[a.AgentID]; ok {
			as.Status, as.OnShift = ag.Status, sn.onShift(&ag, now)
		}
		out.Agents = append(out.Agents, as)
	}
	slices.SortFunc(out.Teams, func(a, b TeamStats) int { return strings.Compare(a.Team, b.Team) })
	slices.SortFunc(out.Agents, func(a, b AgentStats) int { return strings.Compare(a.AgentID, b.AgentID) })
	return out, nil
}

// percentile is the nearest-rank percentile of a sample, nil when empty.
func percentile(sample []float64, q float64) *float64 {
	if len(sample) == 0 {
		return nil
	}
	s := slices.Clone(sample)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	v := s[max(i, 0)]
	return &v
}

// oldestWait is how long the team's oldest queued thread has waited, by
// the store's clock (the one that stamped waiting_since; Redis TIME on
// Redis) when it gave one, so a node whose clock is off does not skew it.
func oldestWait(st *store.Stats, t *store.TeamStats, nodeNow time.Time) float64 {
	if t.OldestWaitingSince == nil {
		return 0
	}
	now := st.Now
	if now.IsZero() {
		now = nodeNow
	}
	return math.Max(0, now.Sub(*t.OldestWaitingSince).Seconds())
}
