package routing

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// RuleSet is a compiled, ordered set of rules. It is immutable once built and
// safe for concurrent use by many goroutines.
type RuleSet struct {
	rules []*compiledRule // by (position, id)
	teams []string        // teams named by any rule, sorted, unique
	// nRegex is the number of distinct regexes; rules with the same pattern
	// share one, so it runs once per evaluation.
	nRegex int
}

// Compile validates rules and prepares them for evaluation: ordered by
// (Position, ID), regular expressions compiled case-insensitively, texts
// case-folded, time zones loaded. The first invalid rule's *FieldError is
// returned as it is (its path is relative to that rule). More than MaxRules
// rules is an error on the field "rules".
func Compile(rules []Rule) (*RuleSet, error) {
	if len(rules) > MaxRules {
		return nil, fieldErr("rules", fmt.Sprintf("at most %d rules", MaxRules))
	}
	rs := &RuleSet{rules: make([]*compiledRule, 0, len(rules))}
	type sharedRegex struct {
		re  *regexp.Regexp
		idx int
	}
	regexes := map[string]sharedRegex{}
	for _, r := range rules {
		c, err := compileRule(r)
		if err != nil {
			return nil, err
		}
		if c.re != nil {
			if i, ok := regexes[c.re.String()]; ok {
				c.re, c.reIdx = i.re, i.idx
			} else {
				c.reIdx = len(regexes)
				regexes[c.re.String()] = sharedRegex{c.re, c.reIdx}
			}
		}
		rs.rules = append(rs.rules, c)
		if c.team != "" && !slices.Contains(rs.teams, c.team) {
			rs.teams = append(rs.teams, c.team)
		}
	}
	slices.SortStableFunc(rs.rules, func(a, b *compiledRule) int {
		if c := cmp.Compare(a.position, b.position); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	slices.Sort(rs.teams)
	rs.nRegex = len(regexes)
	return rs, nil
}

// Len is the number of rules in the set, enabled or not.
func (rs *RuleSet) Len() int {
	if rs == nil {
		return 0
	}
	return len(rs.rules)
}

// Teams lists the teams named by the set's rules (disabled ones included),
// sorted and without repeats: a team in this list is "in use".
func (rs *RuleSet) Teams() []string {
	if rs == nil {
		return nil
	}
	return slices.Clone(rs.teams)
}

// Evaluate runs the enabled rules listening to event on ("message" or "tag")
// over f, in order, and returns what they decide. now is the time schedules
// are checked against.
func (rs *RuleSet) Evaluate(on string, f Facts, now time.Time) Decision {
	var d Decision
	if rs == nil {
		return d
	}
	ev := evalState{f: &f, nRegex: rs.nRegex}
	for _, r := range rs.rules {
		if !r.enabled || !slices.Contains(r.on, on) || !r.matches(&ev, now) {
			continue
		}
		d.Matched = append(d.Matched, r.id)
		if d.Team == "" && r.team != "" {
			d.Team = r.team
		}
		for _, t := range r.addTags {
			if !slices.Contains(d.AddTags, t) {
				d.AddTags = append(d.AddTags, t)
			}
		}
		d.Priority = MaxPriority(d.Priority, r.priority)
		d.Close = d.Close || r.close
		if r.stop {
			break
		}
	}
	return d
}

// evalState holds values derived from the facts once, on first use, for one
// evaluation.
type evalState struct {
	f *Facts

	folded                  bool
	text, profile, language string
	tagsNormalized          bool
	tags                    []string
	nRegex                  int
	regexResults            []uint8 // by regex index: 0 not run yet, 1 no match, 2 match
}

// regexMatch runs re (the set's regex number idx) over the text once per
// evaluation, however many rules share the pattern.
func (e *evalState) regexMatch(re *regexp.Regexp, idx int) bool {
	if e.regexResults == nil {
		e.regexResults = make([]uint8, e.nRegex)
	}
	if e.regexResults[idx] == 0 {
		e.regexResults[idx] = 1
		if re.MatchString(e.f.Text) {
			e.regexResults[idx] = 2
		}
	}
	return e.regexResults[idx] == 2
}

func (e *evalState) fold() {
	if !e.folded {
		e.text, e.profile, e.language = foldString(e.f.Text), foldString(e.f.Profile), foldString(e.f.Language)
		e.folded = true
	}
}

func (e *evalState) normalizedTags() []string {
	if !e.tagsNormalized {
		e.tags = e.f.Tags
		cloned := false
		for i, t := range e.f.Tags {
			if n := NormalizeTag(t); n != t {
				if !cloned {
					e.tags, cloned = slices.Clone(e.f.Tags), true
				}
				e.tags[i] = n
			}
		}
		e.tagsNormalized = true
	}
	return e.tags
}

// matches reports whether every present condition of r holds. Cheap checks
// come first.
func (r *compiledRule) matches(e *evalState, now time.Time) bool {
	f := e.f
	if len(r.networks) > 0 && !slices.Contains(r.networks, f.Network) {
		return false
	}
	if len(r.kinds) > 0 && !slices.Contains(r.kinds, f.Kind) {
		return false
	}
	if r.verified != nil && *r.verified != f.AuthorVerified {
		return false
	}
	if r.minFollow != nil && f.AuthorFollowers < *r.minFollow {
		return false
	}
	if len(r.tagsAny) > 0 {
		tags := e.normalizedTags()
		if !slices.ContainsFunc(tags, func(t string) bool { return slices.Contains(r.tagsAny, t) }) {
			return false
		}
	}
	if len(r.profiles) > 0 || len(r.languages) > 0 || len(r.textAny) > 0 {
		e.fold()
		if len(r.profiles) > 0 && !slices.Contains(r.profiles, e.profile) {
			return false
		}
		if len(r.languages) > 0 && !slices.Contains(r.languages, e.language) {
			return false
		}
		if len(r.textAny) > 0 && !slices.ContainsFunc(r.textAny, func(s string) bool { return strings.Contains(e.text, s) }) {
			return false
		}
	}
	if s := r.schedule; s != nil && inSpans(s.loc, s.spans, now) != s.inside {
		return false
	}
	if r.re != nil && !e.regexMatch(r.re, r.reIdx) {
		return false
	}
	return true
}

// foldAll case-folds every item of list.
func foldAll(list []string) []string {
	if len(list) == 0 {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = foldString(s)
	}
	return out
}

// foldString maps every rune of s to one representative of its Unicode simple
// case-folding orbit, so that two strings are equal (or one contains the
// other) after folding exactly when they are so ignoring case, the same
// equivalence strings.EqualFold and regexp's (?i) use. Unlike strings.ToLower
// it also equates "ς" with "σ" and "ſ" with "s".
func foldString(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return strings.Map(foldRune, s)
		}
	}
	return s
}

// foldRune returns the representative of r's simple folding orbit: its ASCII
// lowercase letter when the orbit has an ASCII member (so "K", "k" and the
// Kelvin sign all give "k"), otherwise the orbit's smallest rune.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	min := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < utf8.RuneSelf {
			return foldRune(f)
		}
		if f < min {
			min = f
		}
	}
	return min
}
