package inbox

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/routing"
)

// RoutePreviewInput is a message as ingest takes it (its ids may be left
// out), and the time to route it at.
type RoutePreviewInput struct {
	MessageInput
	// At is when to decide (rule schedules, shifts, time off); now when
	// absent.
	At *time.Time `json:"at"`
}

// RoutePreview is what routing would do with a message that starts a new
// thread: the rules that match and what they decide, and the teams looked
// at for someone on shift, in order.
type RoutePreview struct {
	At        time.Time   `json:"at"`
	Rules     []string    `json:"rules"` // ids of the matching rules, in evaluation order
	Tags      []string    `json:"tags"`  // the new thread's: the message's, then the rules'
	Priority  string      `json:"priority"`
	Close     bool        `json:"close"`      // a rule closes it at once
	RuledTeam string      `json:"ruled_team"` // the rules' team, or the default team
	Team      string      `json:"team"`       // the queue it goes to
	Staffing  []RouteStep `json:"staffing"`
}

// RouteStep is a team looked at for someone on shift: the rules' team,
// then its fallback_team chain, up to the first staffed one.
type RouteStep struct {
	Team    string   `json:"team"`
	Staffed bool     `json:"staffed"`
	OnShift []string `json:"on_shift"` // its members on shift then
}

// PreviewRoute routes a message as ingest would route a new thread, and
// stores nothing: for those who write rules, shifts and fallback teams
// to see what a message would do, at a given time. Supervisors and
// admins only. Which agent a push team would offer it to is not shown:
// that depends on who is online and what they hold at the time.
func (s *Service) PreviewRoute(ctx context.Context, p Principal, in RoutePreviewInput) (RoutePreview, error) {
	if !p.CanSupervise() {
		return RoutePreview{}, ErrForbidden
	}
	now := s.now()
	if in.At != nil {
		now = in.At.UTC()
		if !routing.RFC3339Year(now) {
			return RoutePreview{}, fieldErr("at", "must be between years 0000 and 9999 in UTC")
		}
	}
	// No message is stored, so its ids are not needed.
	if strings.TrimSpace(in.ExternalID) == "" {
		in.ExternalID = "preview"
	}
	if strings.TrimSpace(in.Author.ID) == "" {
		in.Author.ID = "preview"
	}
	if err := in.Validate(now); err != nil {
		return RoutePreview{}, err
	}
	sn, err := s.snapshot(ctx)
	if err != nil {
		return RoutePreview{}, err
	}
	d := sn.rules.Evaluate("message", messageFacts(&in.MessageInput), now)
	res := RoutePreview{At: now, Rules: nonNilSlice(d.Matched), Priority: newThreadPriority(d.Priority), Close: d.Close, Staffing: []RouteStep{}}
	res.Tags = []string{}
	for _, tag := range append(slices.Clone(in.Tags), d.AddTags...) {
		if !slices.Contains(res.Tags, tag) {
			res.Tags = append(res.Tags, tag)
		}
	}
	res.RuledTeam, res.Team = s.routedTeam(sn, d, now, func(team string, staffed bool) {
		step := RouteStep{Team: team, Staffed: staffed, OnShift: []string{}}
		for _, id := range sn.members[team] {
			if a := sn.agents[id]; sn.onShift(&a, now) {
				step.OnShift = append(step.OnShift, id)
			}
		}
		res.Staffing = append(res.Staffing, step)
	})
	return res, nil
}
