package routing

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on what a rule, a shift list or a time-off list may hold.
const (
	MaxRules       = 1000 // rules in one RuleSet
	MaxListLen     = 100  // items in any list of a rule, shift list or time-off list
	MaxRegexLen    = 512  // characters of when.text_regex
	MaxTextAnyLen  = 200  // characters of one when.text_any item
	MaxProfileLen  = 200  // characters of one when.profiles item
	MaxLanguageLen = 35   // characters of one when.languages item (a BCP 47 tag)
	MaxTagLen      = 64   // characters of a tag
	MaxSlugLen     = 64   // characters of an id slug
)

// MaxRegexProgram bounds the compiled size of when.text_regex, in
// regexp/syntax instructions. Matching is linear in the text but costs up to
// one step per instruction per byte of text, and counted repetition
// multiplies a short pattern ("[^z]{1000}" is 12 characters and about 1000
// instructions), so the length cap alone does not bound the cost.
const MaxRegexProgram = 1000

// ValidSlug reports whether s is an id slug: [a-z0-9][a-z0-9-]{0,63}.
func ValidSlug(s string) bool {
	if len(s) == 0 || len(s) > MaxSlugLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}

// NormalizeTag is the form tags are stored and compared in: trimmed and
// lowercased. Callers normalise user input before validating it.
func NormalizeTag(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// ValidTag reports whether s is a normalised tag: 1 to 64 characters, each an
// ASCII lowercase letter, a digit, '-', '_' or ':'.
func ValidTag(s string) bool {
	if len(s) == 0 || len(s) > MaxTagLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == ':':
		default:
			return false
		}
	}
	return true
}

// LoadZone loads an IANA time zone; "" means UTC. "Local" is refused because
// it would depend on the server's settings.
func LoadZone(field, name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, fieldErr(field, `"Local" is not allowed; use an IANA time zone name such as "Europe/Madrid"`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fieldErr(field, fmt.Sprintf("unknown time zone %q", name))
	}
	return loc, nil
}

// ValidateShifts checks a list of shifts (or schedule windows): field is the
// list's own path ("shifts", "when.schedule.windows") and errors name items
// below it ("shifts[1].days[2]", "shifts[0].end").
func ValidateShifts(field string, shifts []Shift) error {
	if len(shifts) > MaxListLen {
		return fieldErr(field, fmt.Sprintf("at most %d items", MaxListLen))
	}
	for i, s := range shifts {
		if _, err := parseShift(fmt.Sprintf("%s[%d]", field, i), s); err != nil {
			return err
		}
	}
	return nil
}

// RFC3339Year reports whether t, in UTC, is in years 0000-9999: what RFC
// 3339, and so the stores' JSON, can hold. A time with an offset can be
// valid as given and out of range in UTC.
func RFC3339Year(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 0 && y <= 9999
}

// ValidateTimeOff checks a list of time-off intervals: both ends set, in
// years 0000-9999 once in UTC, and To after From. It puts both ends in UTC
// in place (the contract's times are UTC; an offset would be stored and
// shown as given). field is the list's path ("time_off").
func ValidateTimeOff(field string, offs []TimeOff) error {
	if len(offs) > MaxListLen {
		return fieldErr(field, fmt.Sprintf("at most %d items", MaxListLen))
	}
	for i := range offs {
		o := &offs[i]
		p := fmt.Sprintf("%s[%d]", field, i)
		if o.From.IsZero() {
			return fieldErr(p+".from", "required")
		}
		if o.To.IsZero() {
			return fieldErr(p+".to", "required")
		}
		o.From, o.To = o.From.UTC(), o.To.UTC()
		if !RFC3339Year(o.From) {
			return fieldErr(p+".from", "must be between years 0000 and 9999 in UTC")
		}
		if !RFC3339Year(o.To) {
			return fieldErr(p+".to", "must be between years 0000 and 9999 in UTC")
		}
		if !o.To.After(o.From) {
			return fieldErr(p+".to", "must be after from")
		}
	}
	return nil
}

// ValidateRule checks a rule as the contract defines it. It does not check
// that then.team exists: that needs the store.
//
// New rules also get a bound on the pattern's compiled size
// (MaxRegexProgram); Compile does not apply it, so rules stored before the
// bound existed keep routing.
func ValidateRule(r Rule) error {
	if _, err := compileRule(r); err != nil {
		return err
	}
	// A rule only on tag changes has no message to test: it could never
	// fire, and a rule that silently never fires is worse than a refusal.
	// Checked on writes only: a stored rule must still load (one that does
	// not compile would stop routing by every rule).
	if w := r.When; slices.Contains(r.On, "tag") && !slices.Contains(r.On, "message") {
		for _, c := range []struct {
			field string
			set   bool
		}{{"when.text_any", len(w.TextAny) > 0}, {"when.text_regex", w.TextRegex != ""}, {"when.languages", len(w.Languages) > 0}} {
			if c.set {
				return fieldErr(c.field, `needs a message: a rule only "on" tag changes cannot test it`)
			}
		}
	}
	return checkRegexProgram(r.When.TextRegex)
}

// checkRegexProgram refuses a pattern that compiles (as compileRule
// compiles it) to more than MaxRegexProgram instructions.
func checkRegexProgram(pattern string) error {
	if pattern == "" {
		return nil
	}
	re, err := syntax.Parse("(?i)"+pattern, syntax.Perl)
	if err != nil {
		return nil // compileRule has refused it already
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil
	}
	if n := len(prog.Inst); n > MaxRegexProgram {
		return fieldErr("when.text_regex", fmt.Sprintf("too complex: compiles to %d steps, at most %d; "+
			"counted repetitions such as {1000} multiply the pattern", n, MaxRegexProgram))
	}
	return nil
}

// span is a parsed shift: a weekday bitmask (bit i = time.Weekday(i)) and
// start/end in minutes after midnight; end is 1..1440 and may be <= start for
// an overnight shift.
type span struct {
	days       uint8
	start, end int
}

func (s span) overnight() bool { return s.end <= s.start }

func parseShift(field string, s Shift) (span, error) {
	var sp span
	if len(s.Days) == 0 {
		return sp, fieldErr(field+".days", "at least one day is required")
	}
	if len(s.Days) > MaxListLen {
		return sp, fieldErr(field+".days", fmt.Sprintf("at most %d items", MaxListLen))
	}
	for j, d := range s.Days {
		i := slices.Index(Days, d)
		if i < 0 {
			return sp, fieldErr(fmt.Sprintf("%s.days[%d]", field, j), fmt.Sprintf("unknown day %q; one of %s", d, strings.Join(Days, ", ")))
		}
		sp.days |= 1 << i
	}
	var ok bool
	if sp.start, ok = parseClock(s.Start, false); !ok {
		return sp, fieldErr(field+".start", fmt.Sprintf("invalid time %q; want HH:MM from 00:00 to 23:59", s.Start))
	}
	if sp.end, ok = parseClock(s.End, true); !ok {
		return sp, fieldErr(field+".end", fmt.Sprintf("invalid time %q; want HH:MM from 00:00 to 24:00", s.End))
	}
	if sp.end == sp.start {
		return sp, fieldErr(field+".end", "must differ from start")
	}
	if sp.end == 0 {
		sp.end = 24 * 60 // "00:00" as an end is the next midnight, the same as "24:00"
	}
	return sp, nil
}

// parseClock parses a strict "HH:MM" into minutes after midnight. allow24
// admits "24:00".
func parseClock(s string, allow24 bool) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	hh := int(s[0]-'0')*10 + int(s[1]-'0')
	mm := int(s[3]-'0')*10 + int(s[4]-'0')
	switch {
	case mm > 59:
		return 0, false
	case hh == 24 && mm == 0 && allow24:
	case hh > 23:
		return 0, false
	}
	return hh*60 + mm, true
}

// compiledRule is a validated rule with its matchers prepared.
type compiledRule struct {
	id       string
	position int
	enabled  bool
	on       []string
	stop     bool

	networks  []string
	kinds     []string
	profiles  []string // folded
	textAny   []string // folded
	re        *regexp.Regexp
	tagsAny   []string
	verified  *bool
	minFollow *int
	languages []string // folded
	schedule  *compiledSchedule

	// Set by Compile for evaluation.
	kindMask uint32  // bit i: Kinds[i]; 0 when kinds is empty
	textLits []int32 // textAny in the set's literal table
	reIdx    int32   // index of re among the set's distinct regexes
	schedIdx int32   // index of schedule among the set's distinct schedules
	rank     int     // PriorityRank(priority)

	team     string
	addTags  []string
	priority string
	close    bool
}

type compiledSchedule struct {
	loc    *time.Location
	inside bool
	spans  []span
}

func checkLen(field string, n int) error {
	if n > MaxListLen {
		return fieldErr(field, fmt.Sprintf("at most %d items", MaxListLen))
	}
	return nil
}

// checkEnum checks that every item of list is one of allowed.
func checkEnum(field string, list, allowed []string, what string) error {
	if err := checkLen(field, len(list)); err != nil {
		return err
	}
	for i, v := range list {
		if !slices.Contains(allowed, v) {
			return fieldErr(field+"["+strconv.Itoa(i)+"]", fmt.Sprintf("unknown %s %q; one of %s", what, v, strings.Join(allowed, ", ")))
		}
	}
	return nil
}

// checkText checks that every item of list is non-blank and at most max
// characters long.
func checkText(field string, list []string, max int) error {
	if err := checkLen(field, len(list)); err != nil {
		return err
	}
	for i, v := range list {
		f := field + "[" + strconv.Itoa(i) + "]"
		if strings.TrimSpace(v) == "" {
			return fieldErr(f, "must not be empty")
		}
		if utf8.RuneCountInString(v) > max {
			return fieldErr(f, fmt.Sprintf("at most %d characters", max))
		}
	}
	return nil
}

func checkTags(field string, list []string) error {
	if err := checkLen(field, len(list)); err != nil {
		return err
	}
	for i, v := range list {
		if !ValidTag(v) {
			return fieldErr(field+"["+strconv.Itoa(i)+"]", fmt.Sprintf("invalid tag %q; 1 to %d characters: a-z, 0-9, '-', '_', ':'", v, MaxTagLen))
		}
	}
	return nil
}

// compileRule validates r and prepares its matchers. Errors are *FieldError
// with paths relative to the rule.
func compileRule(r Rule) (*compiledRule, error) {
	if !ValidSlug(r.ID) {
		return nil, fieldErr("id", "must match [a-z0-9][a-z0-9-]{0,63}")
	}
	if r.Position < 0 {
		return nil, fieldErr("position", "must be 0 or more")
	}
	if err := checkEnum("on", r.On, RuleEvents, "event"); err != nil {
		return nil, err
	}
	w, t := r.When, r.Then
	if err := checkEnum("when.networks", w.Networks, Networks, "network"); err != nil {
		return nil, err
	}
	if err := checkEnum("when.kinds", w.Kinds, Kinds, "kind"); err != nil {
		return nil, err
	}
	if err := checkText("when.profiles", w.Profiles, MaxProfileLen); err != nil {
		return nil, err
	}
	if err := checkText("when.text_any", w.TextAny, MaxTextAnyLen); err != nil {
		return nil, err
	}
	if err := checkTags("when.tags_any", w.TagsAny); err != nil {
		return nil, err
	}
	if err := checkText("when.languages", w.Languages, MaxLanguageLen); err != nil {
		return nil, err
	}
	if w.MinFollowers != nil && *w.MinFollowers < 0 {
		return nil, fieldErr("when.min_followers", "must be 0 or more")
	}
	c := &compiledRule{
		id:        r.ID,
		position:  r.Position,
		enabled:   r.Enabled == nil || *r.Enabled,
		on:        slices.Clone(r.On),
		stop:      r.Stop,
		networks:  slices.Clone(w.Networks),
		kinds:     slices.Clone(w.Kinds),
		profiles:  mapAll(w.Profiles, foldString),
		textAny:   mapAll(w.TextAny, func(s string) string { return foldString(nfkc(s)) }),
		tagsAny:   slices.Clone(w.TagsAny),
		languages: mapAll(w.Languages, foldString),
		team:      t.Team,
		addTags:   slices.Clone(t.AddTags),
		priority:  t.Priority,
		close:     t.Close,
	}
	if len(c.on) == 0 {
		c.on = []string{"message"}
	}
	if w.AuthorVerified != nil {
		v := *w.AuthorVerified
		c.verified = &v
	}
	if w.MinFollowers != nil {
		v := *w.MinFollowers
		c.minFollow = &v
	}
	if w.TextRegex != "" {
		if utf8.RuneCountInString(w.TextRegex) > MaxRegexLen {
			return nil, fieldErr("when.text_regex", fmt.Sprintf("at most %d characters", MaxRegexLen))
		}
		// Checked as written, so the error quotes the admin's pattern, not
		// the (?i) added to it.
		if _, err := regexp.Compile(w.TextRegex); err != nil {
			return nil, fieldErr("when.text_regex", "invalid regular expression: "+strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		c.re = regexp.MustCompile("(?i)" + w.TextRegex)
	}
	if s := w.Schedule; s != nil {
		loc, err := LoadZone("when.schedule.timezone", s.Timezone)
		if err != nil {
			return nil, err
		}
		if len(s.Windows) == 0 {
			return nil, fieldErr("when.schedule.windows", "at least one window is required")
		}
		if err := checkLen("when.schedule.windows", len(s.Windows)); err != nil {
			return nil, err
		}
		cs := &compiledSchedule{loc: loc, inside: s.Inside == nil || *s.Inside}
		for i, win := range s.Windows {
			sp, err := parseShift(fmt.Sprintf("when.schedule.windows[%d]", i), win)
			if err != nil {
				return nil, err
			}
			cs.spans = append(cs.spans, sp)
		}
		c.schedule = cs
	}
	if t.Team != "" && !ValidSlug(t.Team) {
		return nil, fieldErr("then.team", "must match [a-z0-9][a-z0-9-]{0,63}")
	}
	if err := checkTags("then.add_tags", t.AddTags); err != nil {
		return nil, err
	}
	if t.Priority != "" && PriorityRank(t.Priority) < 0 {
		return nil, fieldErr("then.priority", fmt.Sprintf("unknown priority %q; one of %s", t.Priority, strings.Join(Priorities, ", ")))
	}
	return c, nil
}
