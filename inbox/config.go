package inbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

var (
	teamFunctions  = []string{"engagement", "care", "sales", "other"}
	teamStrategies = []string{"claim", "round_robin", "least_loaded"}
	agentRoles     = []string{store.RoleAgent, store.RoleSupervisor}
	agentStatuses  = []string{store.AgentOnline, store.AgentAway, store.AgentOffline}
)

const maxSeconds = 366 * 24 * 3600

func checkName(field, v string) error {
	if utf8.RuneCountInString(v) > 200 {
		return fieldErr(field, "must be at most 200 characters")
	}
	return nil
}

func checkEnum(field, v string, allowed []string) error {
	if !slices.Contains(allowed, v) {
		return fieldErr(field, "must be one of "+strings.Join(allowed, ", "))
	}
	return nil
}

// unknownRef turns a store's unknown-team error into a field error.
func unknownRef(err error, field string) error {
	if errors.Is(err, store.ErrUnknownTeam) {
		return fieldErr(field, err.Error())
	}
	if errors.Is(err, store.ErrUnknownAgent) {
		return fieldErr(field, err.Error())
	}
	return err
}

// --- teams ---

func validateTeam(t *store.Team) error {
	if !routing.ValidSlug(t.ID) {
		return fieldErr("id", "must match [a-z0-9][a-z0-9-]{0,63}")
	}
	if t.Name == "" {
		t.Name = t.ID
	}
	if err := checkName("name", t.Name); err != nil {
		return err
	}
	if t.Function == "" {
		t.Function = "other"
	}
	if err := checkEnum("function", t.Function, teamFunctions); err != nil {
		return err
	}
	if t.Strategy == "" {
		t.Strategy = "claim"
	}
	if err := checkEnum("strategy", t.Strategy, teamStrategies); err != nil {
		return err
	}
	if t.SLAFirstResponseSeconds < 0 || t.SLAFirstResponseSeconds > maxSeconds {
		return fieldErr("sla_first_response_seconds", "must be between 0 and one year")
	}
	if t.AutoClosePendingSeconds < 0 || t.AutoClosePendingSeconds > maxSeconds {
		return fieldErr("auto_close_pending_seconds", "must be between 0 and one year")
	}
	if t.FallbackTeam != "" && !routing.ValidSlug(t.FallbackTeam) {
		return fieldErr("fallback_team", "must be a team id")
	}
	if t.FallbackTeam == t.ID && t.ID != "" {
		return fieldErr("fallback_team", "must be another team")
	}
	return nil
}

func (s *Service) TeamCreate(ctx context.Context, p Principal, t store.Team) (store.Team, error) {
	if err := p.require(store.RoleAdmin); err != nil {
		return t, err
	}
	if err := validateTeam(&t); err != nil {
		return t, err
	}
	t, err := s.st.TeamCreate(ctx, t)
	return t, unknownRef(err, "fallback_team")
}

func (s *Service) TeamUpdate(ctx context.Context, p Principal, t store.Team) (store.Team, error) {
	if err := p.require(store.RoleAdmin); err != nil {
		return t, err
	}
	if err := validateTeam(&t); err != nil {
		return t, err
	}
	t, err := s.st.TeamUpdate(ctx, t)
	return t, unknownRef(err, "fallback_team")
}

func (s *Service) TeamGet(ctx context.Context, p Principal, id string) (store.Team, error) {
	if !p.IsPerson() && p.Role != store.RoleAdmin {
		return store.Team{}, ErrForbidden
	}
	return s.st.TeamGet(ctx, id)
}

func (s *Service) TeamList(ctx context.Context, p Principal) ([]store.Team, error) {
	if !p.IsPerson() && p.Role != store.RoleAdmin {
		return nil, ErrForbidden
	}
	return s.st.TeamList(ctx)
}

func (s *Service) TeamDelete(ctx context.Context, p Principal, id string) error {
	if err := p.require(store.RoleAdmin); err != nil {
		return err
	}
	if id == s.cfg.DefaultTeam {
		if _, err := s.st.TeamGet(ctx, id); err != nil {
			return err
		}
		return &store.InUseError{By: "the default team setting"}
	}
	return s.st.TeamDelete(ctx, id)
}

// --- agents ---

// AgentView is an agent as responses show it.
type AgentView struct {
	store.Agent
	OnShift bool `json:"on_shift"`
}

// AgentCreated is a new agent with its key, shown once.
type AgentCreated struct {
	AgentView
	APIKey string `json:"api_key"`
}

func (s *Service) view(a store.Agent) AgentView {
	loc, _ := routing.LoadZone("timezone", a.Timezone)
	a.Teams, a.Networks = nonNilSlice(a.Teams), nonNilSlice(a.Networks)
	if a.Shifts == nil {
		a.Shifts = []routing.Shift{}
	}
	if a.TimeOff == nil {
		a.TimeOff = []routing.TimeOff{}
	}
	return AgentView{Agent: a, OnShift: onShiftIn(loc, &a, s.now())}
}

// AgentInput is an agent as an admin writes it: in POST and PUT
// /agents/{id} and in a configuration document. Its Capacity tells a
// capacity left out (the default, 5) from one written as 0, which is
// refused: an agent meant to take no thread would otherwise take five.
// JSON's "capacity" is read into and written from Capacity only (the
// Agent's is hidden; ConfigDoc.MarshalJSON writes it when Capacity is
// nil); a Go caller may set either. Once validated, the Agent holds the
// capacity in force.
type AgentInput struct {
	store.Agent
	Capacity *int `json:"capacity,omitempty"`
}

// validateAgent checks an agent as written and fills in its defaults.
func validateAgent(in *AgentInput) error {
	a := &in.Agent
	if !routing.ValidSlug(a.ID) {
		return fieldErr("id", "must match [a-z0-9][a-z0-9-]{0,63}")
	}
	if a.Name == "" {
		a.Name = a.ID
	}
	if err := checkName("name", a.Name); err != nil {
		return err
	}
	if a.Role == "" {
		a.Role = store.RoleAgent
	}
	if err := checkEnum("role", a.Role, agentRoles); err != nil {
		return err
	}
	if len(a.Teams) > 100 {
		return fieldErr("teams", "at most 100 teams")
	}
	for i, t := range a.Teams {
		if !routing.ValidSlug(t) {
			return fieldErr(fmt.Sprintf("teams[%d]", i), "must be a team id")
		}
	}
	a.Teams = dedupe(a.Teams)
	for i, n := range a.Networks {
		if err := checkEnum(fmt.Sprintf("networks[%d]", i), n, routing.Networks); err != nil {
			return err
		}
	}
	a.Networks = dedupe(a.Networks)
	switch {
	case in.Capacity != nil:
		a.Capacity = *in.Capacity
	case a.Capacity == 0:
		a.Capacity = 5
	}
	if a.Capacity < 1 || a.Capacity > 1000 {
		return fieldErr("capacity", "must be between 1 and 1000")
	}
	if a.Timezone == "" {
		a.Timezone = "UTC"
	}
	if _, err := routing.LoadZone("timezone", a.Timezone); err != nil {
		return err
	}
	if err := routing.ValidateShifts("shifts", a.Shifts); err != nil {
		return err
	}
	return routing.ValidateTimeOff("time_off", a.TimeOff)
}

func dedupe(s []string) []string {
	out := s[:0:0]
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func (s *Service) AgentCreate(ctx context.Context, p Principal, in AgentInput) (AgentCreated, error) {
	if err := p.require(store.RoleAdmin); err != nil {
		return AgentCreated{}, err
	}
	if err := validateAgent(&in); err != nil {
		return AgentCreated{}, err
	}
	a := in.Agent
	k, secret := newKey(a.Role, "agent "+a.ID, a.ID)
	a, err := s.st.AgentCreate(ctx, a, k)
	if err != nil {
		return AgentCreated{}, unknownRef(err, "teams")
	}
	return AgentCreated{AgentView: s.view(a), APIKey: secret}, nil
}

func (s *Service) AgentUpdate(ctx context.Context, p Principal, in AgentInput) (AgentView, error) {
	if err := p.require(store.RoleAdmin); err != nil {
		return AgentView{}, err
	}
	if err := validateAgent(&in); err != nil {
		return AgentView{}, err
	}
	a, err := s.st.AgentUpdate(ctx, in.Agent)
	if err != nil {
		return AgentView{}, unknownRef(err, "teams")
	}
	// New teams, networks, capacity or shifts may make the agent eligible
	// for threads waiting in push teams.
	s.wake()
	return s.view(a), nil
}

// AgentGet: admins and supervisors read any agent, an agent itself.
func (s *Service) AgentGet(ctx context.Context, p Principal, id string) (AgentView, error) {
	if !p.CanSupervise() && p.AgentID != id {
		return AgentView{}, ErrForbidden
	}
	a, err := s.st.AgentGet(ctx, id)
	if err != nil {
		return AgentView{}, err
	}
	return s.view(a), nil
}

func (s *Service) AgentList(ctx context.Context, p Principal) ([]AgentView, error) {
	if !p.CanSupervise() {
		return nil, ErrForbidden
	}
	agents, err := s.st.AgentList(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]AgentView, len(agents))
	for i, a := range agents {
		out[i] = s.view(a)
	}
	slices.SortFunc(out, func(a, b AgentView) int {
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out, nil
}

// AgentDelete revokes the agent's key and releases its locks.
func (s *Service) AgentDelete(ctx context.Context, p Principal, id string) error {
	if err := p.require(store.RoleAdmin); err != nil {
		return err
	}
	if err := s.st.AgentDelete(ctx, id, p.Actor()); err != nil {
		return err
	}
	s.wake() // its released locks wait for someone else
	return nil
}

// AgentSetStatus: supervisors and admins set anyone's status, an agent its
// own.
func (s *Service) AgentSetStatus(ctx context.Context, p Principal, id, status string) (AgentView, error) {
	if !p.CanSupervise() && p.AgentID != id {
		return AgentView{}, ErrForbidden
	}
	if err := checkEnum("status", status, agentStatuses); err != nil {
		return AgentView{}, err
	}
	a, err := s.st.AgentSetStatus(ctx, id, status)
	if err != nil {
		return AgentView{}, err
	}
	s.wake()
	return s.view(a), nil
}

// AgentRotateKey issues a new key for the agent and revokes the old one.
func (s *Service) AgentRotateKey(ctx context.Context, p Principal, id string) (AgentCreated, error) {
	if err := p.require(store.RoleAdmin); err != nil {
		return AgentCreated{}, err
	}
	a, err := s.st.AgentGet(ctx, id)
	if err != nil {
		return AgentCreated{}, err
	}
	k, secret := newKey(a.Role, "agent "+a.ID, a.ID)
	if err := s.st.AgentRotateKey(ctx, id, k); err != nil {
		return AgentCreated{}, err
	}
	// As it is now: the key took the role stored at the rotation.
	if now, err := s.st.AgentGet(ctx, id); err == nil {
		a = now
	}
	return AgentCreated{AgentView: s.view(a), APIKey: secret}, nil
}

// Me is GET /api/v1/me: the agent, or just the role for other keys.
func (s *Service) Me(ctx context.Context, p Principal) (any, error) {
	if !p.IsPerson() {
		return map[string]string{"role": p.Role, "key_id": p.KeyID}, nil
	}
	a, err := s.agentOf(ctx, p)
	if err != nil {
		return nil, err
	}
	return s.view(a), nil
}

// --- rules ---

func (s *Service) validateRule(r *store.Rule) error {
	// Tags are normalised before they are validated, as on messages and
	// the tags endpoint.
	for i := range r.Then.AddTags {
		r.Then.AddTags[i] = routing.NormalizeTag(r.Then.AddTags[i])
	}
	for i := range r.When.TagsAny {
		r.When.TagsAny[i] = routing.NormalizeTag(r.When.TagsAny[i])
	}
	if err := routing.ValidateRule(r.Rule); err != nil {
		return err
	}
	if r.Enabled == nil {
		t := true
		r.Enabled = &t
	}
	*r = withDefaults(*r)
	if len(r.On) == 0 {
		r.On = []string{"message"}
	}
	return nil
}

func (s *Service) RuleCreate(ctx context.Context, p Principal, r store.Rule) (store.Rule, error) {
	if err := p.require(store.RoleAdmin); err != nil {
		return r, err
	}
	if err := s.validateRule(&r); err != nil {
		return r, err
	}
	rules, err := s.st.RuleList(ctx)
	if err != nil {
		return r, err
	}
	if len(rules) >= routing.MaxRules {
		return r, fieldErr("id", fmt.Sprintf("at most %d rules", routing.MaxRules))
	}
	r, err = s.st.RuleCreate(ctx, r)
	return r, unknownRef(err, "then.team")
}

func (s *Service) RuleUpdate(ctx context.Context, p Principal, r store.Rule) (store.Rule, error) {
	if err := p.require(store.RoleAdmin); err != nil {
		return r, err
	}
	if err := s.validateRule(&r); err != nil {
		return r, err
	}
	r, err := s.st.RuleUpdate(ctx, r)
	return r, unknownRef(err, "then.team")
}

func (s *Service) RuleGet(ctx context.Context, p Principal, id string) (store.Rule, error) {
	if !p.CanSupervise() {
		return store.Rule{}, ErrForbidden
	}
	r, err := s.st.RuleGet(ctx, id)
	return withDefaults(r), err
}

func (s *Service) RuleList(ctx context.Context, p Principal) ([]store.Rule, error) {
	if !p.CanSupervise() {
		return nil, ErrForbidden
	}
	return rulesWithDefaults(s.st.RuleList(ctx))
}

// withDefaults is r with the defaults a rule stored before they were
// written down leaves out filled in, as the contract shows them: a
// schedule is inside its windows unless it says otherwise.
func withDefaults(r store.Rule) store.Rule {
	if sc := r.When.Schedule; sc != nil && sc.Inside == nil {
		c := *sc
		c.Inside = new(true)
		r.When.Schedule = &c
	}
	return r
}

func rulesWithDefaults(rules []store.Rule, err error) ([]store.Rule, error) {
	for i := range rules {
		rules[i] = withDefaults(rules[i])
	}
	return rules, err
}

func (s *Service) RuleDelete(ctx context.Context, p Principal, id string) error {
	if err := p.require(store.RoleAdmin); err != nil {
		return err
	}
	return s.st.RuleDelete(ctx, id)
}
