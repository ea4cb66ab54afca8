package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// ConfigDoc is configuration as code: teams, agents, rules and saved
// replies in one document (YAML or JSON, in the API's shapes).
type ConfigDoc struct {
	Teams        []store.Team       `json:"teams,omitempty"`
	Agents       []AgentInput       `json:"agents,omitempty"`
	Rules        []store.Rule       `json:"rules,omitempty"`
	SavedReplies []store.SavedReply `json:"saved_replies,omitempty"`
}

// MarshalJSON writes agents with their configuration only: status, times
// and lock counts belong to the running system, and an export read back
// by `switchboard apply` or shown to an admin should not carry them.
func (d ConfigDoc) MarshalJSON() ([]byte, error) {
	type agentConfig struct {
		ID       string            `json:"id"`
		Name     string            `json:"name"`
		Role     string            `json:"role"`
		Teams    []string          `json:"teams"`
		Networks []string          `json:"networks"`
		Capacity *int              `json:"capacity,omitempty"`
		Timezone string            `json:"timezone"`
		Shifts   []routing.Shift   `json:"shifts"`
		TimeOff  []routing.TimeOff `json:"time_off"`
	}
	type plain ConfigDoc
	out := struct {
		plain
		Agents []agentConfig `json:"agents,omitempty"`
	}{plain: plain(d)}
	for _, a := range d.Agents {
		if a.Capacity == nil && a.Agent.Capacity != 0 {
			a.Capacity = &a.Agent.Capacity
		}
		out.Agents = append(out.Agents, agentConfig{ID: a.ID, Name: a.Name, Role: a.Role, Teams: nonNilSlice(a.Teams),
			Networks: nonNilSlice(a.Networks), Capacity: a.Capacity, Timezone: a.Timezone,
			Shifts: nonNilSlice(a.Shifts), TimeOff: nonNilSlice(a.TimeOff)})
	}
	return json.Marshal(out)
}

// ApplyResult says what Apply did, as "kind/id" names.
type ApplyResult struct {
	Created   []string `json:"created"`
	Updated   []string `json:"updated"`
	Unchanged []string `json:"unchanged"`
	// Kept lists what the store has and the document does not: apply
	// removes nothing, and says what it left (see Prune).
	Kept []string `json:"kept"`
	// Deleted lists what Prune deleted; NotDeleted what it could not, and
	// why ("team/x: in use by agent a").
	Deleted    []string `json:"deleted,omitempty"`
	NotDeleted []string `json:"not_deleted,omitempty"`
	// AgentKeys are the keys of agents created now, shown once.
	AgentKeys map[string]string `json:"agent_keys,omitempty"`
	// DryRun says nothing was written: the lists say what Apply would do
	// (and Kept what Prune would try to delete).
	DryRun bool `json:"dry_run,omitempty"`
}

func (r *ApplyResult) note(kind, id string, created, changed bool) {
	name := kind + "/" + id
	switch {
	case created:
		r.Created = append(r.Created, name)
	case changed:
		r.Updated = append(r.Updated, name)
	default:
		r.Unchanged = append(r.Unchanged, name)
	}
}

// maxFieldErrors is how many of a document's mistakes are said at once.
const maxFieldErrors = 20

// FieldErrors are a document's mistakes: the first of each item's own
// (in document order), then every id written twice and every team named
// that does not exist. It unwraps to the first, the field the contract's
// error names; the others go in its details. Only the first
// maxFieldErrors are listed; More counts the others.
type FieldErrors struct {
	List []*FieldError
	More int
}

func (e *FieldErrors) Error() string {
	if n := len(e.List) - 1 + e.More; n > 0 {
		return fmt.Sprintf("%s (and %d more)", e.List[0].Error(), n)
	}
	return e.List[0].Error()
}

func (e *FieldErrors) Unwrap() error { return e.List[0] }

// prefixed puts a field error under the document path of the item.
func prefixed(path string, err error) error {
	if err == nil {
		return nil
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return fieldErr(path+"."+fe.Field, fe.Message)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// Apply creates or updates everything in the document (admin); applying
// the same document again changes nothing. The whole document is
// validated before anything is written. Agents' status and keys are kept;
// new agents get a key, returned once.
func (s *Service) Apply(ctx context.Context, p Principal, doc ConfigDoc) (ApplyResult, error) {
	return s.apply(ctx, p, doc, false)
}

// Plan is Apply without writing: the same checks and the same answer,
// with DryRun set, so a change can be reviewed before it is made.
func (s *Service) Plan(ctx context.Context, p Principal, doc ConfigDoc) (ApplyResult, error) {
	return s.apply(ctx, p, doc, true)
}

func (s *Service) apply(ctx context.Context, p Principal, doc ConfigDoc, dry bool) (ApplyResult, error) {
	res := ApplyResult{Created: []string{}, Updated: []string{}, Unchanged: []string{}, Kept: []string{}, DryRun: dry}
	if err := p.require(store.RoleAdmin); err != nil {
		return res, err
	}
	// Every item is checked, and their mistakes said together (the first
	// of each item), so a file is not fixed one run per mistake.
	var mistakes FieldErrors
	add := func(fe *FieldError) {
		if len(mistakes.List) < maxFieldErrors {
			mistakes.List = append(mistakes.List, fe)
		} else {
			mistakes.More++
		}
	}
	check := func(at string, err error) error {
		var fe *FieldError
		if err = prefixed(at, err); err == nil || !errors.As(err, &fe) {
			return err
		}
		add(fe)
		return nil
	}
	for i := range doc.Teams {
		if err := check(fmt.Sprintf("teams[%d]", i), validateTeam(&doc.Teams[i])); err != nil {
			return res, err
		}
	}
	for i := range doc.Agents {
		if err := check(fmt.Sprintf("agents[%d]", i), validateAgent(&doc.Agents[i])); err != nil {
			return res, err
		}
	}
	for i := range doc.Rules {
		if err := check(fmt.Sprintf("rules[%d]", i), s.validateRule(&doc.Rules[i])); err != nil {
			return res, err
		}
	}
	for i := range doc.SavedReplies {
		err := fieldErr("id", "is required (it makes apply idempotent)")
		if doc.SavedReplies[i].ID != "" { // (validation would make one up)
			err = validateSavedReply(&doc.SavedReplies[i])
		}
		if err := check(fmt.Sprintf("saved_replies[%d]", i), err); err != nil {
			return res, err
		}
	}
	// Then ids named twice and teams named that do not exist, all of them.
	for _, fe := range uniqueIDs(&doc) {
		add(fe)
	}
	refs, err := s.checkRefs(ctx, &doc)
	if err != nil {
		return res, err
	}
	for _, fe := range refs {
		add(fe)
	}
	if len(mistakes.List) > 0 {
		return res, &mistakes
	}

	// The rules after this apply (the document's and those it leaves) must
	// compile: past routing.MaxRules nothing would be routed by rules.
	existing, err := s.st.RuleList(ctx)
	if err != nil {
		return res, err
	}
	ids := map[string]bool{}
	for _, r := range slices.Concat(doc.Rules, existing) {
		ids[r.ID] = true
	}
	total := len(ids)
	if total > routing.MaxRules {
		return res, fieldErr("rules", fmt.Sprintf("at most %d rules in all (%d with the ones already stored)", routing.MaxRules, total))
	}

	// Teams first, without fallbacks (they may name each other), then
	// with them (the loop after this one updates them).
	for i, t := range doc.Teams {
		created, changed, err := upsert(dry, func() (store.Team, error) { return s.st.TeamGet(ctx, t.ID) },
			func() error {
				bare := t
				bare.FallbackTeam = ""
				_, err := s.st.TeamCreate(ctx, bare)
				return prefixed(fmt.Sprintf("teams[%d]", i), err)
			},
			func(old store.Team) bool { return sameTeam(old, t) },
			func() error { return nil })
		if err != nil {
			return res, err
		}
		res.note("team", t.ID, created, changed)
	}
	for i, t := range doc.Teams {
		if dry { // the first pass has said what would change
			break
		}
		old, err := s.st.TeamGet(ctx, t.ID)
		if err != nil {
			return res, err
		}
		if !sameTeam(old, t) {
			if _, err := s.st.TeamUpdate(ctx, t); err != nil {
				return res, prefixed(fmt.Sprintf("teams[%d]", i), unknownRef(err, "fallback_team"))
			}
		}
	}
	for i := range doc.Agents {
		a, at := doc.Agents[i].Agent, fmt.Sprintf("agents[%d]", i)
		created, changed, err := upsert(dry, func() (store.Agent, error) { return s.st.AgentGet(ctx, a.ID) },
			func() error {
				k, secret := newKey(a.Role, "agent "+a.ID, a.ID)
				if _, err := s.st.AgentCreate(ctx, a, k); err != nil {
					return prefixed(at, unknownRef(err, "teams"))
				}
				if res.AgentKeys == nil {
					res.AgentKeys = map[string]string{}
				}
				res.AgentKeys[a.ID] = secret
				return nil
			},
			func(old store.Agent) bool { return sameAgent(old, a) },
			func() error { _, err := s.st.AgentUpdate(ctx, a); return prefixed(at, unknownRef(err, "teams")) })
		if err != nil {
			return res, err
		}
		res.note("agent", a.ID, created, changed)
	}
	for i, r := range doc.Rules {
		at := fmt.Sprintf("rules[%d]", i)
		created, changed, err := upsert(dry, func() (store.Rule, error) { old, err := s.st.RuleGet(ctx, r.ID); return withDefaults(old), err },
			func() error { _, err := s.st.RuleCreate(ctx, r); return prefixed(at, unknownRef(err, "then.team")) },
			func(old store.Rule) bool { return sameJSON(old.Rule, r.Rule) },
			func() error { _, err := s.st.RuleUpdate(ctx, r); return prefixed(at, unknownRef(err, "then.team")) })
		if err != nil {
			return res, err
		}
		res.note("rule", r.ID, created, changed)
	}
	for i, r := range doc.SavedReplies {
		at := fmt.Sprintf("saved_replies[%d]", i)
		created, changed, err := upsert(dry, func() (store.SavedReply, error) { return s.st.SavedReplyGet(ctx, r.ID) },
			func() error { _, err := s.st.SavedReplyCreate(ctx, r); return prefixed(at, unknownRef(err, "teams")) },
			func(old store.SavedReply) bool {
				return old.Title == r.Title && old.Text == r.Text && slices.Equal(old.Teams, r.Teams)
			},
			func() error { _, err := s.st.SavedReplyUpdate(ctx, r); return prefixed(at, unknownRef(err, "teams")) })
		if err != nil {
			return res, err
		}
		res.note("saved_reply", r.ID, created, changed)
	}
	if !dry {
		s.wake()
	}
	// What was kept is said if it can be read: the apply itself is done.
	if kept, err := s.notInDoc(ctx, p, &doc); err == nil {
		res.Kept = append(res.Kept, kept...)
	}
	return res, nil
}

// Prune deletes what an apply kept (res.Kept: stored, not in its
// document), so the configuration becomes the document's: rules and saved
// replies first, then agents (their keys are revoked, their locks
// released), then teams. One that cannot go (a team open threads still
// use, or something the document still names, a store failure) stays, said
// with why in NotDeleted; the rest go on. The default team is never pruned.
func (s *Service) Prune(ctx context.Context, p Principal, res *ApplyResult) error {
	if err := p.require(store.RoleAdmin); err != nil {
		return err
	}
	del := map[string]func(string) error{
		"rule":        func(id string) error { return s.RuleDelete(ctx, p, id) },
		"saved_reply": func(id string) error { return s.SavedReplyDelete(ctx, p, id) },
		"agent":       func(id string) error { return s.AgentDelete(ctx, p, id) },
		"team":        func(id string) error { return s.TeamDelete(ctx, p, id) },
	}
	var kept []string
	refused := map[string]string{}
	for _, kind := range []string{"rule", "saved_reply", "agent", "team"} {
		todo := slices.DeleteFunc(slices.Clone(res.Kept), func(name string) bool { return !strings.HasPrefix(name, kind+"/") })
		// A team another pruned team falls back to goes once that one
		// has: teams are tried again while some go.
		for progress := true; progress && len(todo) > 0; {
			progress = false
			var again []string
			for _, name := range todo {
				var inUse *store.InUseError
				switch err := del[kind](strings.TrimPrefix(name, kind+"/")); {
				case err == nil, errors.Is(err, store.ErrNotFound):
					res.Deleted = append(res.Deleted, name)
					progress = true
				case errors.As(err, &inUse):
					refused[name] = "in use by " + inUse.By
					again = append(again, name)
				default:
					// The store failed (unavailable, say): the rest is still
					// tried, and the answer says what went and what did not.
					refused[name] = err.Error()
					again = append(again, name)
				}
			}
			todo = again
		}
		for _, name := range todo {
			res.NotDeleted = append(res.NotDeleted, name+": "+refused[name])
			kept = append(kept, name)
		}
	}
	res.Kept = append([]string{}, kept...)
	return nil
}

// notInDoc lists the teams, agents, rules and saved replies stored and not
// in doc, as kind/id. The default team is not listed: the server makes it
// and needs it, so a file need not name it, and prune could not delete it.
func (s *Service) notInDoc(ctx context.Context, p Principal, doc *ConfigDoc) ([]string, error) {
	stored, err := s.Export(ctx, p)
	if err != nil {
		return nil, err
	}
	stored.Teams = slices.DeleteFunc(stored.Teams, func(t store.Team) bool { return t.ID == s.cfg.DefaultTeam })
	// In the order Prune deletes them (what uses a team before the team),
	// so a dry run lists them as the prune would go.
	return slices.Concat(
		missing("rule", stored.Rules, doc.Rules, func(r store.Rule) string { return r.ID }),
		missing("saved_reply", stored.SavedReplies, doc.SavedReplies, func(r store.SavedReply) string { return r.ID }),
		missing("agent", stored.Agents, doc.Agents, func(a AgentInput) string { return a.ID }),
		missing("team", stored.Teams, doc.Teams, func(t store.Team) string { return t.ID })), nil
}

// missing lists as kind/id what is stored and not in the document.
func missing[T any](kind string, stored, inDoc []T, id func(T) string) []string {
	have := map[string]bool{}
	for _, v := range inDoc {
		have[id(v)] = true
	}
	var out []string
	for _, v := range stored {
		if !have[id(v)] {
			out = append(out, kind+"/"+id(v))
		}
	}
	return out
}

// checkRefs refuses a document naming a team that is neither in it nor
// stored, before anything is written.
func (s *Service) checkRefs(ctx context.Context, doc *ConfigDoc) ([]*FieldError, error) {
	stored, err := s.st.TeamList(ctx)
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, t := range stored {
		known[t.ID] = true
	}
	for _, t := range doc.Teams {
		known[t.ID] = true
	}
	var out []*FieldError
	check := func(field, team string) {
		if team != "" && !known[team] {
			out = append(out, &FieldError{Field: field, Message: "no team " + team + " in the document or the store"})
		}
	}
	for i, t := range doc.Teams {
		check(fmt.Sprintf("teams[%d].fallback_team", i), t.FallbackTeam)
	}
	for i, a := range doc.Agents {
		for j, t := range a.Teams {
			check(fmt.Sprintf("agents[%d].teams[%d]", i, j), t)
		}
	}
	for i, r := range doc.Rules {
		check(fmt.Sprintf("rules[%d].then.team", i), r.Then.Team)
	}
	for i, r := range doc.SavedReplies {
		for j, t := range r.Teams {
			check(fmt.Sprintf("saved_replies[%d].teams[%d]", i, j), t)
		}
	}
	return out, nil
}

// upsert stores one record of a document: created when get finds none,
// updated when it differs from the stored one (same is false), else left
// as it is. A create refused as already existing means another node
// applies the same file at the same moment (several nodes started with
// --config): the record is read again and compared instead. A dry run
// reads and compares, and writes nothing.
func upsert[T any](dry bool, get func() (T, error), create func() error, same func(T) bool, update func() error) (created, changed bool, err error) {
	for retry := true; ; retry = false {
		old, err := get()
		switch {
		case errors.Is(err, store.ErrNotFound) && dry:
			return true, false, nil
		case errors.Is(err, store.ErrNotFound):
			err := create()
			if errors.Is(err, store.ErrAlreadyExists) && retry {
				continue
			}
			return err == nil, false, err
		case err != nil:
			return false, false, err
		case same(old):
			return false, false, nil
		case dry:
			return false, true, nil
		}
		return false, true, update()
	}
}

// Export returns the configuration as a document Apply accepts. Admins
// and supervisors read it: supervisors read configuration (it holds no
// key or webhook secret), admins write it.
func (s *Service) Export(ctx context.Context, p Principal) (ConfigDoc, error) {
	var doc ConfigDoc
	if err := p.require(store.RoleAdmin, store.RoleSupervisor); err != nil {
		return doc, err
	}
	var err error
	if doc.Teams, err = s.st.TeamList(ctx); err != nil {
		return doc, err
	}
	agents, err := s.st.AgentList(ctx)
	if err != nil {
		return doc, err
	}
	for _, a := range agents {
		doc.Agents = append(doc.Agents, AgentInput{Agent: store.Agent{ID: a.ID, Name: a.Name, Role: a.Role, Teams: a.Teams,
			Networks: a.Networks, Capacity: a.Capacity, Timezone: a.Timezone, Shifts: a.Shifts, TimeOff: a.TimeOff}})
	}
	if doc.Rules, err = rulesWithDefaults(s.st.RuleList(ctx)); err != nil {
		return doc, err
	}
	doc.SavedReplies, err = s.st.SavedReplyList(ctx)
	return doc, err
}

func sameTeam(a, b store.Team) bool {
	return a.Name == b.Name && a.Function == b.Function && a.Strategy == b.Strategy &&
		a.SLAFirstResponseSeconds == b.SLAFirstResponseSeconds && a.FallbackTeam == b.FallbackTeam &&
		a.AutoClosePendingSeconds == b.AutoClosePendingSeconds
}

func sameAgent(a, b store.Agent) bool {
	return a.Name == b.Name && a.Role == b.Role && slices.Equal(a.Teams, b.Teams) &&
		slices.Equal(nonNilSlice(a.Networks), nonNilSlice(b.Networks)) && a.Capacity == b.Capacity &&
		a.Timezone == b.Timezone && sameJSON(a.Shifts, b.Shifts) && sameJSON(a.TimeOff, b.TimeOff)
}

// sameJSON compares two values as the API shows them.
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		return reflect.DeepEqual(a, b)
	}
	var va, vb any
	json.Unmarshal(ja, &va)
	json.Unmarshal(jb, &vb)
	return reflect.DeepEqual(normalizeEmpty(va), normalizeEmpty(vb))
}

// normalizeEmpty treats null and empty lists alike.
func normalizeEmpty(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		if len(x) == 0 {
			return nil
		}
		for i := range x {
			x[i] = normalizeEmpty(x[i])
		}
	case map[string]any:
		for k, e := range x {
			if e = normalizeEmpty(e); e == nil {
				delete(x, k)
			} else {
				x[k] = e
			}
		}
	}
	return v
}

// uniqueIDs refuses a document that names one team, agent, rule or saved
// reply twice: the last would silently win, and applying it again would
// rewrite both each time.
func uniqueIDs(doc *ConfigDoc) []*FieldError {
	return slices.Concat(
		unique("teams", doc.Teams, func(t store.Team) string { return t.ID }),
		unique("agents", doc.Agents, func(a AgentInput) string { return a.ID }),
		unique("rules", doc.Rules, func(r store.Rule) string { return r.ID }),
		unique("saved_replies", doc.SavedReplies, func(r store.SavedReply) string { return r.ID }))
}

// unique names each item of section whose id an earlier one has.
func unique[T any](section string, items []T, id func(T) string) []*FieldError {
	var out []*FieldError
	seen := make(map[string]bool, len(items))
	for i, it := range items {
		if seen[id(it)] {
			out = append(out, &FieldError{Field: fmt.Sprintf("%s[%d].id", section, i), Message: fmt.Sprintf("%q appears earlier in the document", id(it))})
		}
		seen[id(it)] = true
	}
	return out
}
