package routing

import (
	"bytes"
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// RuleSet is a compiled, ordered set of rules. It is immutable once built and
// safe for concurrent use by many goroutines.
type RuleSet struct {
	rules []*compiledRule // by (position, id)
	teams []string        // teams named by any rule, sorted, unique

	// lists[i][j] are the indexes in rules of the enabled rules listening to
	// events[i] whose networks condition admits networks[j] (j ==
	// len(networks): a network not in the list), in order.
	events   []string
	networks []string
	lists    [][][]int32
	// regexes are the distinct patterns: rules with the same pattern share
	// one, so it runs at most once per evaluation, and only when its
	// prefilter passes.
	regexes []setRegex
	// nSched is the number of distinct schedules (zone and windows), each
	// checked at most once per evaluation.
	nSched int
	// lits holds the folded text_any items and prefilter literals, each
	// searched for at most once per evaluation.
	lits litTable
}

type setRegex struct {
	re   *regexp.Regexp
	pre  *req // nil: no prefilter
	lead *req // nil: run over the whole text (see regexPrefilter)
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
	regexes := map[string]int32{}
	schedules := map[string]int32{}
	for _, r := range rules {
		c, err := compileRule(r)
		if err != nil {
			return nil, err
		}
		c.reIdx, c.schedIdx = -1, -1
		if c.re != nil {
			if i, ok := regexes[c.re.String()]; ok {
				c.re, c.reIdx = rs.regexes[i].re, i
			} else {
				c.reIdx = int32(len(rs.regexes))
				regexes[c.re.String()] = c.reIdx
				pre, lead := regexPrefilter(r.When.TextRegex, &rs.lits)
				rs.regexes = append(rs.regexes, setRegex{re: c.re, pre: pre, lead: lead})
			}
		}
		if s := c.schedule; s != nil {
			key := fmt.Sprint(s.loc.String(), s.spans)
			i, ok := schedules[key]
			if !ok {
				i = int32(len(schedules))
				schedules[key] = i
			}
			c.schedIdx = i
		}
		for _, t := range c.textAny {
			c.textLits = append(c.textLits, rs.lits.add(t))
		}
		c.kindMask = maskOf(c.kinds, Kinds)
		c.rank = PriorityRank(c.priority)
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
	rs.nSched = len(schedules)
	rs.events, rs.networks = slices.Clone(RuleEvents), slices.Clone(Networks)
	rs.lists = make([][][]int32, len(rs.events))
	for i, ev := range rs.events {
		rs.lists[i] = make([][]int32, len(rs.networks)+1)
		for j := range rs.lists[i] {
			for k, r := range rs.rules {
				if r.enabled && slices.Contains(r.on, ev) &&
					(len(r.networks) == 0 || j < len(rs.networks) && slices.Contains(r.networks, rs.networks[j])) {
					rs.lists[i][j] = append(rs.lists[i][j], int32(k))
				}
			}
		}
	}
	return rs, nil
}

// maskOf sets bit i for every item of list that is all[i]; compileRule has
// checked that every item is one of all.
func maskOf(list, all []string) uint32 {
	var m uint32
	for _, v := range list {
		if i := slices.Index(all, v); i >= 0 && i < 32 {
			m |= 1 << i
		}
	}
	return m
}

// bitOf is the bit of v in all, as maskOf sets it, or 0.
func bitOf(v string, all []string) uint32 {
	if i := slices.Index(all, v); i >= 0 && i < 32 {
		return 1 << i
	}
	return 0
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
//
// Each rule's cheap conditions are checked before its text conditions; the
// text is case-folded at most once, each distinct text_any item and regex
// literal is searched for at most once, and each distinct regex and schedule
// is evaluated at most once per call (a regex only when the literals it needs
// are in the text). Nothing is allocated but the Decision's slices, and
// the text's NFKC form when it is not in that form already (foldedText).
func (rs *RuleSet) Evaluate(on string, f Facts, now time.Time) Decision {
	var d Decision
	if rs == nil {
		return d
	}
	i := slices.Index(rs.events, on)
	if i < 0 {
		return d
	}
	j := slices.Index(rs.networks, f.Network)
	if j < 0 {
		j = len(rs.networks)
	}
	list := rs.lists[i][j]
	if len(list) == 0 {
		return d
	}

	e := evalStates.Get().(*evalState)
	e.reset(rs, &f, now)
	nTags := 0
	for _, k := range list {
		if r := rs.rules[k]; r.matches(e) {
			e.matched = append(e.matched, k)
			nTags += len(r.addTags)
			if r.stop {
				break
			}
		}
	}
	if len(e.matched) > 0 {
		d.Matched = make([]string, len(e.matched))
		if nTags > 0 {
			d.AddTags = make([]string, 0, nTags)
		}
		rank := -1
		for n, k := range e.matched {
			r := rs.rules[k]
			d.Matched[n] = r.id
			if d.Team == "" && r.team != "" {
				d.Team = r.team
			}
			for _, t := range r.addTags {
				if !slices.Contains(d.AddTags, t) {
					d.AddTags = append(d.AddTags, t)
				}
			}
			if r.rank > rank {
				rank, d.Priority = r.rank, r.priority
			}
			d.Close = d.Close || r.close
		}
	}
	e.release()
	return d
}

// evalState holds what one evaluation derives from the facts, each on first
// use. States are pooled so that evaluating allocates nothing of its own.
type evalState struct {
	rs  *RuleSet
	f   Facts
	now time.Time

	kindBit uint32

	haveText  bool
	sent      string // f.Text as sent, when foldedText changed it to its NFKC form
	norm      []byte // foldedText's buffer for the NFKC form
	text      []byte // foldString of f.Text in NFKC form (foldedText)
	sameWidth int    // text[:sameWidth] has the offsets of f.Text in NFKC form
	sketch    textSketch
	haveFold  bool
	profile   []byte // foldString(f.Profile)
	language  []byte // foldString(f.Language)
	haveTags  bool
	tags      []string // NormalizeTag of each of f.Tags
	lits      []int    // by literal: 0 not searched yet, -1 absent, else 1 + first index in text
	regexes   []uint8  // by regex: 0 not looked at, 1 no match, 2 match, 3 prefilter passed, 4 only sent to try
	schedules []uint8  // by schedule: 0 not checked yet, 1 outside its windows, 2 inside
	matched   []int32  // indexes of the matching rules in rs.rules
}

var evalStates = sync.Pool{New: func() any { return new(evalState) }}

// zeroed returns s resized to n, all zero.
func zeroed[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

func (e *evalState) reset(rs *RuleSet, f *Facts, now time.Time) {
	e.rs, e.f, e.now = rs, *f, now
	e.kindBit = bitOf(f.Kind, Kinds)
	e.haveText, e.haveFold, e.haveTags, e.sent = false, false, false, ""
	e.lits = zeroed(e.lits, len(rs.lits.lits))
	e.regexes = zeroed(e.regexes, len(rs.regexes))
	e.schedules = zeroed(e.schedules, rs.nSched)
	e.matched = e.matched[:0]
}

// release returns e to the pool without keeping the facts or the rule set
// alive. Buffers that grew past 64 KiB are dropped rather than kept.
func (e *evalState) release() {
	e.rs, e.f, e.sent = nil, Facts{}, ""
	clear(e.tags)
	if cap(e.text) > 64<<10 {
		e.text = nil
	}
	if cap(e.norm) > 64<<10 {
		e.norm = nil
	}
	evalStates.Put(e)
}

// foldedText puts the message's text in NFKC form, the form text
// conditions are compiled in (see nfkc), and returns its case fold. The text
// is normalised only when appendFold and the norm package's quick check
// cannot tell that it is already, so the common text costs one pass and no
// allocation. A text that NFKC lengthens (one "ﷺ" is 18 letters) is cut at
// twice its length and 256 bytes: a customer's message must not make
// routing arbitrarily slow. The text as sent is kept in sent.
func (e *evalState) foldedText() []byte {
	if !e.haveText {
		var stable bool
		e.text, e.sameWidth, stable = appendFold(e.text[:0], e.f.Text)
		if !stable && norm.NFKC.QuickSpanString(e.f.Text) != len(e.f.Text) {
			e.norm = appendNFKC(e.norm[:0], e.f.Text, 2*len(e.f.Text)+256)
			if string(e.norm) != e.f.Text {
				e.sent, e.f.Text = e.f.Text, string(e.norm)
				e.text, e.sameWidth, _ = appendFold(e.text[:0], e.f.Text)
			}
		}
		e.sketch.reset(e.text)
		e.haveText = true
	}
	return e.text
}

func (e *evalState) foldProfileAndLanguage() {
	if !e.haveFold {
		e.profile, _, _ = appendFold(e.profile[:0], e.f.Profile)
		e.language, _, _ = appendFold(e.language[:0], e.f.Language)
		e.haveFold = true
	}
}

func (e *evalState) normalizedTags() []string {
	if !e.haveTags {
		e.tags = e.tags[:0]
		for _, t := range e.f.Tags {
			e.tags = append(e.tags, NormalizeTag(t))
		}
		e.haveTags = true
	}
	return e.tags
}

// find returns the first index at or after from of literal i in the folded
// text, or -1.
func (e *evalState) find(i int32, from int) int {
	text, l := e.foldedText(), &e.rs.lits.lits[i]
	c := e.lits[i]
	if c == 0 {
		c = -1
		if e.sketch.mayContain(l) {
			if p := bytes.Index(text, l.b); p >= 0 {
				c = p + 1
			}
		}
		e.lits[i] = c
	}
	if c < 0 {
		return -1
	}
	if c-1 >= from {
		return c - 1
	}
	if p := bytes.Index(text[from:], l.b); p >= 0 {
		return from + p
	}
	return -1
}

// reqEnd returns the least end of a witness of r in the folded text starting
// at or after from (see req).
func (e *evalState) reqEnd(r *req, from int) (int, bool) {
	switch r.op {
	case reqLit:
		p := e.find(r.lit, from)
		if p < 0 {
			return 0, false
		}
		return p + len(e.rs.lits.lits[r.lit].b), true
	case reqAlt:
		best := -1
		for _, s := range r.subs {
			if end, ok := e.reqEnd(s, from); ok && (best < 0 || end < best) {
				best = end
			}
		}
		return best, best >= 0
	case reqSeq:
		for _, s := range r.subs {
			var ok bool
			if from, ok = e.reqEnd(s, from); !ok {
				return 0, false
			}
		}
		return from, true
	}
	return from, true
}

// regexMayMatch reports whether the prefilter of the set's regex number i
// passes; regexMatch runs the regex. Each is done at most once per
// evaluation, however many rules share the pattern.
func (e *evalState) regexMayMatch(i int32) bool {
	if e.regexes[i] == 0 {
		e.regexes[i] = 3 // not run yet
		if pre := e.rs.regexes[i].pre; pre != nil {
			if _, ok := e.reqEnd(pre, 0); !ok {
				e.regexes[i] = 1
				if e.sent != "" {
					e.regexes[i] = 4 // the text as sent is still to try
				}
			}
		}
	}
	return e.regexes[i] != 1
}

// regexMatch runs regex i over the text in NFKC form and, when that differs
// from the text as sent and does not match, over the text as sent: a
// pattern matches either, so one written for the plain letters matches
// styled ones, and one written for the styled letters (a spam rule's
// [\x{1D400}-\x{1D7FF}]) still matches them.
func (e *evalState) regexMatch(i int32) bool {
	if !e.regexMayMatch(i) {
		return false
	}
	x := &e.rs.regexes[i]
	if e.regexes[i] == 3 {
		e.regexes[i] = 1
		e.foldedText() // puts e.f.Text in NFKC form
		text, run := e.f.Text, true
		if x.lead != nil {
			start := -1
			for _, l := range x.lead.subs {
				if p := e.find(l.lit, 0); p >= 0 && (start < 0 || p < start) {
					start = p
				}
			}
			// With no lead literal there is no match in this text: every
			// match starts with one.
			run = start >= 0
			if run && start <= e.sameWidth {
				text = text[start:]
			}
		}
		if run && x.re.MatchString(text) {
			e.regexes[i] = 2
		} else if e.sent != "" {
			e.regexes[i] = 4
		}
	}
	if e.regexes[i] == 4 {
		e.regexes[i] = 1
		if x.re.MatchString(e.sent) {
			e.regexes[i] = 2
		}
	}
	return e.regexes[i] == 2
}

// inSchedule reports whether now is inside the windows of r's schedule,
// checked once per evaluation for each distinct schedule.
func (e *evalState) inSchedule(r *compiledRule) bool {
	i := r.schedIdx
	if e.schedules[i] == 0 {
		e.schedules[i] = 1
		if s := r.schedule; inSpans(s.loc, s.spans, e.now) {
			e.schedules[i] = 2
		}
	}
	return e.schedules[i] == 2
}

// matches reports whether every present condition of r holds but networks,
// which the lists of rules by network have checked. Cheap checks
// come first, then text_any and the regex's prefilter (searches of the folded
// text, each done once per evaluation), then the schedule, then the regex.
func (r *compiledRule) matches(e *evalState) bool {
	if r.kindMask != 0 && r.kindMask&e.kindBit == 0 {
		return false
	}
	if r.verified != nil && *r.verified != e.f.AuthorVerified {
		return false
	}
	if r.minFollow != nil && e.f.AuthorFollowers < *r.minFollow {
		return false
	}
	if len(r.tagsAny) > 0 {
		tags := e.normalizedTags()
		if !slices.ContainsFunc(tags, func(t string) bool { return slices.Contains(r.tagsAny, t) }) {
			return false
		}
	}
	if len(r.profiles) > 0 || len(r.languages) > 0 {
		e.foldProfileAndLanguage()
		if len(r.profiles) > 0 && !containsBytes(r.profiles, e.profile) {
			return false
		}
		if len(r.languages) > 0 && !slices.ContainsFunc(r.languages, func(l string) bool { return languageMatches(l, e.language) }) {
			return false
		}
	}
	if len(r.textLits) > 0 && !slices.ContainsFunc(r.textLits, func(i int32) bool { return e.find(i, 0) >= 0 }) {
		return false
	}
	if r.re != nil && !e.regexMayMatch(r.reIdx) {
		return false
	}
	if r.schedule != nil && e.inSchedule(r) != r.schedule.inside {
		return false
	}
	if r.re != nil && !e.regexMatch(r.reIdx) {
		return false
	}
	return true
}

// languageMatches reports whether a message in language lang (folded) is
// in rule language l (folded): the same tag, or one of its subtags, so
// that "pt" takes "pt-BR", while "pt-BR" takes only "pt-BR" and its own
// subtags. Meta's "pt_BR" is "pt-BR", on either side.
func languageMatches(l string, lang []byte) bool {
	if len(lang) < len(l) {
		return false
	}
	for i := range len(l) {
		if dash(l[i]) != dash(lang[i]) {
			return false
		}
	}
	return len(lang) == len(l) || dash(lang[len(l)]) == '-'
}

// dash reads '_' as '-', as the language tags of Meta and BCP 47 differ.
func dash(c byte) byte {
	if c == '_' {
		return '-'
	}
	return c
}

func containsBytes(list []string, b []byte) bool {
	for _, s := range list {
		if s == string(b) {
			return true
		}
	}
	return false
}

// mapAll returns f of every item of list, nil for none.
func mapAll(list []string, f func(string) string) []string {
	if len(list) == 0 {
		return nil
	}
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = f(s)
	}
	return out
}

// nfkc returns s in Unicode normalisation form NFKC, the form text
// conditions compare in: an accent sent as a combining mark ("e" + U+0301)
// is the composed "é" a keyword is typed with, and compatibility forms, the
// "bold" and "script" letters of styled posts, full-width letters and
// ligatures, are their plain letters.
func nfkc(s string) string { return norm.NFKC.String(s) }

// appendNFKC appends the NFKC form of s to dst, up to the first segment
// that ends past limit bytes of dst.
func appendNFKC(dst []byte, s string, limit int) []byte {
	var it norm.Iter
	it.InitString(norm.NFKC, s)
	for !it.Done() && len(dst) < limit {
		dst = append(dst, it.Next()...)
	}
	return dst
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
