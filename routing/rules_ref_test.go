package routing

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// refEvaluate is (*RuleSet).Evaluate written the plain way, from the rules as
// given: every rule in (position, id) order, every condition checked for
// itself, the text folded and each regex compiled and run per rule. The
// optimized Evaluate must agree with it on every input.
func refEvaluate(t testing.TB, res refRegexes, rules []Rule, on string, f Facts, now time.Time) Decision {
	sorted := slices.Clone(rules)
	slices.SortStableFunc(sorted, func(a, b Rule) int {
		if c := cmp.Compare(a.Position, b.Position); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	var d Decision
	for _, r := range sorted {
		listens := r.On
		if len(listens) == 0 {
			listens = []string{"message"}
		}
		if (r.Enabled != nil && !*r.Enabled) || !slices.Contains(listens, on) || !refMatches(t, res, r.When, f, now) {
			continue
		}
		d.Matched = append(d.Matched, r.ID)
		if d.Team == "" && r.Then.Team != "" {
			d.Team = r.Then.Team
		}
		for _, tag := range r.Then.AddTags {
			if !slices.Contains(d.AddTags, tag) {
				d.AddTags = append(d.AddTags, tag)
			}
		}
		d.Priority = MaxPriority(d.Priority, r.Then.Priority)
		d.Close = d.Close || r.Then.Close
		if r.Stop {
			break
		}
	}
	return d
}

// refRegexMatch is a text_regex condition: the pattern matches the text in
// NFKC form or as sent.
func refRegexMatch(re *regexp.Regexp, text string) bool {
	return re.MatchString(norm.NFKC.String(text)) || re.MatchString(text)
}

func refMatches(t testing.TB, res refRegexes, w When, f Facts, now time.Time) bool {
	foldEq := func(a string) func(string) bool {
		return func(b string) bool { return foldString(a) == foldString(b) }
	}
	switch {
	case len(w.Networks) > 0 && !slices.Contains(w.Networks, f.Network),
		len(w.Kinds) > 0 && !slices.Contains(w.Kinds, f.Kind),
		len(w.Profiles) > 0 && !slices.ContainsFunc(w.Profiles, foldEq(f.Profile)),
		len(w.Languages) > 0 && !slices.ContainsFunc(w.Languages, func(l string) bool {
			// Meta writes pt_BR where BCP 47 writes pt-BR: the same tag.
			dash := strings.NewReplacer("_", "-")
			lang, l := dash.Replace(foldString(f.Language)), dash.Replace(foldString(l))
			return lang == l || strings.HasPrefix(lang, l+"-")
		}),
		w.AuthorVerified != nil && *w.AuthorVerified != f.AuthorVerified,
		w.MinFollowers != nil && f.AuthorFollowers < *w.MinFollowers:
		return false
	}
	if len(w.TextAny) > 0 && !slices.ContainsFunc(w.TextAny, func(s string) bool {
		return strings.Contains(foldString(norm.NFKC.String(f.Text)), foldString(norm.NFKC.String(s)))
	}) {
		return false
	}
	if w.TextRegex != "" && !refRegexMatch(res.get(t, w.TextRegex), f.Text) {
		return false
	}
	if len(w.TagsAny) > 0 && !slices.ContainsFunc(f.Tags, func(tag string) bool {
		return slices.Contains(w.TagsAny, NormalizeTag(tag))
	}) {
		return false
	}
	if s := w.Schedule; s != nil {
		loc, err := LoadZone("tz", s.Timezone)
		if err != nil {
			t.Fatal(err)
		}
		if InWindows(loc, s.Windows, now) != (s.Inside == nil || *s.Inside) {
			return false
		}
	}
	return true
}

// refRegexes caches the reference's compiled patterns, for speed only; nil
// compiles every time.
type refRegexes map[string]*regexp.Regexp

func (res refRegexes) get(t testing.TB, pattern string) *regexp.Regexp {
	if re, ok := res[pattern]; ok {
		return re
	}
	re, err := regexp.Compile("(?i)" + pattern)
	if err != nil {
		t.Fatalf("reference: %v", err)
	}
	if res != nil {
		res[pattern] = re
	}
	return re
}

// refContainsFold is case-insensitive containment read from the definition,
// sharing nothing with foldString: some rune boundary of text starts a run of
// runes, each in the simple folding orbit of the corresponding rune of sub
// (an invalid byte reads as U+FFFD, as regexp reads it).
func refContainsFold(text, sub string) bool {
	sameOrbit := func(a, b rune) bool {
		for f := unicode.SimpleFold(a); ; f = unicode.SimpleFold(f) {
			if f == b {
				return true
			}
			if f == a {
				return false
			}
		}
	}
	for i := 0; ; {
		j, k := i, 0
		for k < len(sub) && j < len(text) {
			a, n := utf8.DecodeRuneInString(text[j:])
			b, m := utf8.DecodeRuneInString(sub[k:])
			if !sameOrbit(a, b) {
				break
			}
			j, k = j+n, k+m
		}
		if k == len(sub) {
			return true
		}
		if i >= len(text) {
			return false
		}
		_, n := utf8.DecodeRuneInString(text[i:])
		i += n
	}
}

// gen makes random rules and facts from a shared vocabulary, so that rules
// and messages often meet: words in many scripts whose case folding is
// unusual (Kelvin sign, long s, sharp s, final sigma, dotted I, titlecase
// digraphs, the micro, ohm and angstrom signs), written with a random member
// of each rune's folding orbit; invalid UTF-8, empty fields and unknown
// networks; regexes built from literals, classes, groups, repetition,
// anchors, word boundaries and inline flags.
type gen struct{ r *rand.Rand }

var genWords = []string{"refund", "reembolso", "order", "pedido", "help", "ayuda", "now", "ya", "broken",
	"straße", "strasse", "ΟΔΟΣ", "οδος", "σοφός", "возврат", "échec", "echec", "kelvin", "\u212a", "ſ", "ß", "ẞ",
	"ς", "İstanbul", "ırmak", "ǅemal", "µs", "Ω", "\u212b", "ǰ", "ﬀ", "ʼn", "😀", "東京", "عربى",
	"#123", "12345", "41", "1", "k", "s", "a", "ab", "aba", "x_y", "no-op", "\u00a0", "\xff", "\xe2\x82", "\ufffd",
	"order #41", "pedido #12345", "i", "I", "ı", "K", "S"}

var genSeps = []string{" ", "", " ", "\n", ", ", "-", "\t", ". ", "_"}

func (g gen) pick(list []string) string { return list[g.r.IntN(len(list))] }

// orbitCase writes every rune of s as a random member of its folding orbit.
func (g gen) orbitCase(s string) string {
	if g.r.IntN(3) == 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteByte(s[i])
			i++
			continue
		}
		orbit := []rune{r}
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			orbit = append(orbit, f)
		}
		b.WriteRune(orbit[g.r.IntN(len(orbit))])
		i += n
	}
	return b.String()
}

func (g gen) text() string {
	if g.r.IntN(10) == 0 {
		return ""
	}
	var b strings.Builder
	for range g.r.IntN(12) {
		b.WriteString(g.orbitCase(g.pick(genWords)))
		b.WriteString(g.pick(genSeps))
	}
	return b.String()
}

func (g gen) regexAtom() string {
	switch g.r.IntN(24) {
	case 0, 1, 2, 3, 4, 5:
		return regexp.QuoteMeta(g.orbitCase(g.pick(genWords)))
	case 6:
		return `\d+`
	case 7:
		return `\s*`
	case 8:
		return `#?`
	case 9:
		return `.`
	case 10:
		return `.*`
	case 11:
		return `\b`
	case 12:
		return g.pick([]string{`^`, `$`, `\A`, `\z`, `(?m:^)`, `(?m:$)`, `\B`})
	case 13:
		return g.pick([]string{`[a-z]`, `[^a-z]`, `\w+`, `[ſk]`, `\x{212A}`, `\pL`, `\p{Greek}+`, `[[:alpha:]]`, `(?s:.)`, `[\x{FFFD}]`, `[ßs]`, `[^\n]`})
	case 14:
		return `(?-i:` + regexp.QuoteMeta(g.orbitCase(g.pick(genWords))) + `)`
	case 15, 16:
		return `(` + g.regexSeq(2) + `|` + g.regexSeq(2) + `)`
	case 17:
		return `(?:` + g.regexSeq(2) + `)` + g.pick([]string{`?`, `*`, `+`, `{2}`, `{1,3}`, `{0,2}`, `{2,}`, `??`, `+?`})
	case 18:
		return regexp.QuoteMeta(g.orbitCase(g.pick(genWords))) + g.pick([]string{`?`, `*`, `+`, `{2}`})
	case 19:
		return `(?i:` + g.regexSeq(2) + `)`
	case 20:
		return `[` + regexp.QuoteMeta(g.orbitCase(g.pick(genWords))) + `]`
	case 21:
		return `(order|pedido)\s*#?` + fmt.Sprint(g.r.IntN(50)) + `\d*`
	case 22:
		return `\b(help|ayuda)\b.*\b(now|ya)\b`
	}
	return `(?:)`
}

func (g gen) regexSeq(max int) string {
	var b strings.Builder
	for range 1 + g.r.IntN(max) {
		b.WriteString(g.regexAtom())
	}
	return b.String()
}

// regex returns a random pattern that compileRule accepts.
func (g gen) regex() string {
	for {
		p := g.regexSeq(4)
		if g.r.IntN(5) == 0 {
			p += "|" + g.regexSeq(3)
		}
		if _, err := compileRule(Rule{ID: "r", When: When{TextRegex: p}}); err == nil {
			return p
		}
	}
}

func (g gen) textItem() string {
	for {
		s := g.orbitCase(g.pick(genWords))
		if g.r.IntN(3) == 0 {
			s += g.pick(genSeps) + g.orbitCase(g.pick(genWords))
		}
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
}

func (g gen) subset(list []string) []string {
	var out []string
	for _, v := range list {
		if g.r.IntN(3) == 0 {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		out = append(out, g.pick(list))
	}
	return out
}

var (
	genProfiles  = []string{"@acme", "@Acme", "@ACME", "@straße", "@STRASSE", "@σοφός", "@ΣΟΦΟΣ", "@\u212aelvin", "@kelvin", "x", "\xff"}
	genLanguages = []string{"es", "ES", "en", "pt", "pt-BR", "pt-br", "pt_BR", "PT-BR-x-a", "ptb", "", "\u212a", "k"}
	genTags      = []string{"vip", "es", "lead", "spam", "a:b", "b_c"}
	genZones     = []string{"", "UTC", "Europe/Madrid", "America/New_York", "Asia/Kathmandu", "Pacific/Apia"}
)

func (g gen) when(allowRegex bool) When {
	var w When
	if g.r.IntN(3) == 0 {
		w.Networks = g.subset(Networks)
	}
	if g.r.IntN(4) == 0 {
		w.Kinds = g.subset(Kinds)
	}
	if g.r.IntN(5) == 0 {
		for range 1 + g.r.IntN(2) {
			if p := g.pick(genProfiles); strings.TrimSpace(p) != "" {
				w.Profiles = append(w.Profiles, p)
			}
		}
	}
	if g.r.IntN(2) == 0 {
		for range 1 + g.r.IntN(3) {
			w.TextAny = append(w.TextAny, g.textItem())
		}
	}
	if allowRegex && g.r.IntN(2) == 0 {
		w.TextRegex = g.regex()
	}
	if g.r.IntN(5) == 0 {
		w.TagsAny = g.subset(genTags)
	}
	if g.r.IntN(6) == 0 {
		w.AuthorVerified = ptr(g.r.IntN(2) == 0)
	}
	if g.r.IntN(6) == 0 {
		w.MinFollowers = ptr(g.r.IntN(3) * 5000)
	}
	if g.r.IntN(6) == 0 {
		for range 1 + g.r.IntN(2) {
			if l := g.pick(genLanguages); strings.TrimSpace(l) != "" {
				w.Languages = append(w.Languages, l)
			}
		}
	}
	if g.r.IntN(5) == 0 {
		s := &Schedule{Timezone: g.pick(genZones)}
		if g.r.IntN(2) == 0 {
			s.Inside = ptr(g.r.IntN(2) == 0)
		}
		for range 1 + g.r.IntN(2) {
			start, end := g.r.IntN(24)*60, g.r.IntN(25)*60
			if end == start {
				end = (start + 60) % (24 * 60)
			}
			s.Windows = append(s.Windows, Shift{Days: g.subset(Days),
				Start: fmt.Sprintf("%02d:%02d", start/60, start%60), End: fmt.Sprintf("%02d:%02d", end/60, end%60)})
		}
		w.Schedule = s
	}
	return w
}

func (g gen) rules(n int, allowRegex bool) []Rule {
	rules := make([]Rule, n)
	for i := range rules {
		r := Rule{ID: fmt.Sprintf("r%d", i), Position: g.r.IntN(6), When: g.when(allowRegex), Stop: g.r.IntN(12) == 0}
		switch g.r.IntN(4) {
		case 0:
			r.Enabled = ptr(false)
		case 1:
			r.Enabled = ptr(true)
		}
		switch g.r.IntN(6) {
		case 0:
			r.On = []string{"tag"}
		case 1:
			r.On = []string{"message", "tag"}
		case 2:
			r.On = []string{"message"}
		}
		if g.r.IntN(2) == 0 {
			r.Then.Team = fmt.Sprintf("team-%d", g.r.IntN(3))
		}
		if g.r.IntN(2) == 0 {
			r.Then.AddTags = g.subset(genTags)
		}
		if g.r.IntN(2) == 0 {
			r.Then.Priority = g.pick(Priorities)
		}
		r.Then.Close = g.r.IntN(8) == 0
		// Rules sharing a pattern share a compiled regex.
		if i > 0 && g.r.IntN(6) == 0 {
			r.When.TextRegex = rules[g.r.IntN(i)].When.TextRegex
		}
		if slices.Equal(r.On, []string{"tag"}) { // refused on writes: nothing to test
			r.When.TextAny, r.When.TextRegex, r.When.Languages = nil, "", nil
		}
		rules[i] = r
	}
	return rules
}

func (g gen) facts() Facts {
	f := Facts{
		Network:         g.pick(append([]string{"", "unknown"}, Networks...)),
		Kind:            g.pick(append([]string{"", "DM"}, Kinds...)),
		Profile:         g.pick(genProfiles),
		Text:            g.text(),
		Language:        g.pick(genLanguages),
		AuthorVerified:  g.r.IntN(2) == 0,
		AuthorFollowers: g.r.IntN(12000),
	}
	for range g.r.IntN(3) {
		f.Tags = append(f.Tags, g.pick([]string{"vip", " VIP ", "Lead", "es", "spam", "", "Ünï"}))
	}
	return f
}

// aim changes f so that it often meets w's conditions: its network, kind,
// profile, language, tags and author from w's lists, and a text made of w's
// words.
func (g gen) aim(f *Facts, w When) {
	if len(w.Networks) > 0 {
		f.Network = g.pick(w.Networks)
	}
	if len(w.Kinds) > 0 {
		f.Kind = g.pick(w.Kinds)
	}
	if len(w.Profiles) > 0 {
		f.Profile = g.orbitCase(g.pick(w.Profiles))
	}
	if len(w.Languages) > 0 {
		f.Language = g.orbitCase(g.pick(w.Languages))
	}
	if len(w.TagsAny) > 0 {
		f.Tags = append(f.Tags, strings.ToUpper(g.pick(w.TagsAny)))
	}
	if w.AuthorVerified != nil && g.r.IntN(4) > 0 {
		f.AuthorVerified = *w.AuthorVerified
	}
	if w.MinFollowers != nil && g.r.IntN(4) > 0 {
		f.AuthorFollowers = *w.MinFollowers + g.r.IntN(2)
	}
	var text []string
	if len(w.TextAny) > 0 {
		text = append(text, g.orbitCase(g.pick(w.TextAny)))
	}
	if w.TextRegex != "" {
		text = append(text, regexText(g, w.TextRegex))
	}
	text = append(text, f.Text)
	f.Text = strings.Join(text, g.pick(genSeps))
}

func (g gen) now() time.Time {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(g.r.Int64N(int64(365 * 24 * time.Hour))))
}

// TestEvaluate_AgreesWithReference compares Evaluate with refEvaluate over
// thousands of random rule sets and messages.
func TestEvaluate_AgreesWithReference(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	g := gen{rand.New(rand.NewPCG(seed, 17))}
	sets, evals, matched, regexMatches := 3000, 0, 0, 0
	if testing.Short() {
		sets = 300
	} else if raceEnabled {
		sets = 1000 // the race detector makes each evaluation ~10x slower
	}
	for range sets {
		rules := g.rules(1+g.r.IntN(12), true)
		rs, err := Compile(rules)
		if err != nil {
			t.Fatalf("seed %d: compile: %v", seed, err)
		}
		res := refRegexes{}
		for range 8 {
			f, on, now := g.facts(), g.pick([]string{"message", "message", "message", "tag", "tag", "", "reply"}), g.now()
			if g.r.IntN(3) > 0 {
				g.aim(&f, rules[g.r.IntN(len(rules))].When)
			}
			got, want := rs.Evaluate(on, f, now), refEvaluate(t, res, rules, on, f, now)
			if !equalDecision(got, want) || (got.Matched == nil) != (want.Matched == nil) || (got.AddTags == nil) != (want.AddTags == nil) {
				t.Fatalf("seed %d: on %q facts %#v now %s\nrules %s\ngot  %+v\nwant %+v", seed, on, f, now, dumpRules(rules), got, want)
			}
			evals++
			matched += len(got.Matched)
			for _, r := range rules {
				if r.When.TextRegex != "" && refRegexMatch(res.get(t, r.When.TextRegex), f.Text) {
					regexMatches++
				}
			}
		}
	}
	t.Logf("seed %d: %d evaluations, %d rule matches, %d (rule, text) pairs where the regex matched", seed, evals, matched, regexMatches)
	if matched < evals/4 || regexMatches < evals/20 {
		t.Fatalf("the generator rarely makes rules match (%d rule matches, %d regex matches in %d evaluations)", matched, regexMatches, evals)
	}
}

func dumpRules(rules []Rule) string {
	var b strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&b, "\n  %#v", r)
	}
	return b.String()
}

// TestEvaluate_RegexAgreesWithRegexp checks the regex path alone: a rule
// holding only a random pattern matches exactly when regexp says the
// case-insensitive pattern matches, so the literal prefilter never rejects a
// text the regex matches and starting the regex at the first lead literal
// never changes its answer.
func TestEvaluate_RegexAgreesWithRegexp(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	g := gen{rand.New(rand.NewPCG(seed, 23))}
	n, hits := 5000, 0
	if testing.Short() {
		n = 500
	} else if raceEnabled {
		n = 1500 // the race detector makes each evaluation ~10x slower
	}
	for range n {
		pattern := g.regex()
		rs := mustCompile(t, Rule{ID: "r", When: When{TextRegex: pattern}})
		re := refRegexes(nil).get(t, pattern)
		for range 8 {
			text := g.text()
			switch g.r.IntN(3) {
			case 0:
				text = regexText(g, pattern) + g.pick(genSeps) + text
			case 1:
				text = g.text() + g.pick(genSeps) + regexText(g, pattern) + g.pick(genSeps) + text
			}
			want := refRegexMatch(re, text)
			if got := len(rs.Evaluate("message", Facts{Text: text}, monday10).Matched) == 1; got != want {
				t.Fatalf("seed %d: pattern %q text %+q: Evaluate says %v, regexp says %v (prefilter %s)",
					seed, pattern, text, got, want, rs.regexes[0].pre.String(&rs.lits))
			}
			if want {
				hits++
			}
		}
	}
	t.Logf("seed %d: %d of %d texts matched", seed, hits, 8*n)
	if hits < n {
		t.Fatalf("only %d of %d texts matched: the test says little", hits, 8*n)
	}
}

// regexText makes a text likely to match pattern: its literal parts, in
// order, with the case of each rune changed within its orbit.
func regexText(g gen, pattern string) string {
	var b strings.Builder
	for _, w := range regexp.MustCompile(`[\pL\pN#:\x{FFFD}😀]+`).FindAllString(pattern, -1) {
		if g.r.IntN(5) > 0 {
			b.WriteString(g.orbitCase(w))
			b.WriteString(g.pick([]string{" ", "", " #"}))
		}
	}
	return b.String()
}

// FuzzRegexPrefilter: for any pattern compileRule accepts and any text, a
// rule with that pattern matches exactly when regexp says it does.
func FuzzRegexPrefilter(f *testing.F) {
	for _, seed := range [][2]string{
		{`(order|pedido)\s*#?41\d*`, "Hola, mi PEDIDO #41 llegó"},
		{`\b(help|ayuda)\b.*\b(now|ya)\b`, "ya ayuda"},
		{`\b(help|ayuda)\b.*\b(now|ya)\b`, "AYUDA, ya"},
		{`k\b`, "\u212a"},
		{`\bs`, "xſ"},
		{`straße`, "STRAẞE"},
		{`οδος`, "ΟΔΟΣ"},
		{`(?-i:ABC)d`, "ABCD"},
		{`(?-i:ABC)d`, "abcd"},
		{`\x{FFFD}x`, "\xffX"},
		{`\x{FFFD}x`, "\ufffdX"},
		{`[ſk]{2}`, "SK"},
		{`^abc`, "xabc"},
		{`(?m:^)abc`, "x\nABC"},
		{`abc$`, "abc\n"},
		{`\Bab`, "xab"},
		{`(ab|cd)+ef`, "ABCDEF"},
		{`(?:ab){2}c`, "ababc"},
		{`a.b`, "a\nb"},
		{`(?s:a.b)`, "a\nb"},
		{`K.*S`, "\u212a\xffſ"},
		{`ǅ`, "ǆ"},
		{`(?:x|)y`, "y"},
		{`ﬀ`, "ff"},
		{`[\x{212A}]`, "k"},
		{`[^k]`, "\u212a"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, text string) {
		rs, err := Compile([]Rule{{ID: "r", When: When{TextRegex: pattern}}})
		if err != nil || checkRegexProgram(pattern) != nil {
			return
		}
		want := refRegexMatch(refRegexes(nil).get(t, pattern), text)
		if got := len(rs.Evaluate("message", Facts{Text: text}, monday10).Matched) == 1; got != want {
			t.Fatalf("pattern %q text %+q: Evaluate says %v, regexp says %v (prefilter %s)",
				pattern, text, got, want, rs.regexes[0].pre.String(&rs.lits))
		}
	})
}

// TestFold_AppendFoldIsFoldString: the allocation-free fold Evaluate uses is
// foldString, byte for byte, on random and invalid UTF-8, the prefix it
// reports as keeping offsets does keep them, and a text it reports as stable
// is in NFKC form.
func TestFold_AppendFoldIsFoldString(t *testing.T) {
	t.Parallel()
	var buf []byte
	for r := rune(0); r <= unicode.MaxRune; r++ {
		s := string(r)
		if buf, _, _ = appendFold(buf[:0], s); string(buf) != foldString(s) {
			t.Fatalf("appendFold(%+q) = %+q, foldString says %+q", s, buf, foldString(s))
		}
	}
	seed := uint64(time.Now().UnixNano())
	g := gen{rand.New(rand.NewPCG(seed, 29))}
	var stable []rune
	for r := rune(utf8.RuneSelf); r < 0x530; r++ {
		if _, _, ok := appendFold(nil, string(r)); ok {
			stable = append(stable, r)
		}
	}
	if len(stable) < 500 {
		t.Fatalf("only %d runes below U+0530 are marked stable: the table is wrong", len(stable))
	}
	for range 20000 {
		var b strings.Builder
		for range 1 + g.r.IntN(4) {
			if g.r.IntN(3) == 0 {
				b.WriteByte(byte(' ' + g.r.IntN(95)))
			} else {
				b.WriteRune(stable[g.r.IntN(len(stable))])
			}
		}
		if s := b.String(); !norm.NFKC.IsNormalString(s) {
			t.Fatalf("seed %d: %+q is made of runes marked stable, but NFKC changes it to %+q", seed, s, norm.NFKC.String(s))
		}
	}
	buf = append(buf[:0], "junk"...)
	for range 20000 {
		s := g.text()
		if g.r.IntN(4) == 0 {
			b := []byte(s)
			for range g.r.IntN(3) {
				if len(b) > 0 {
					b[g.r.IntN(len(b))] = byte(g.r.IntN(256))
				}
			}
			s = string(b)
		}
		var same int
		var isStable bool
		buf, same, isStable = appendFold(buf[:0], s)
		if string(buf) != foldString(s) {
			t.Fatalf("seed %d: appendFold(%+q) = %+q, foldString says %+q", seed, s, buf, foldString(s))
		}
		if isStable && !norm.NFKC.IsNormalString(s) {
			t.Fatalf("seed %d: appendFold(%+q) says it is in NFKC form, but NFKC changes it", seed, s)
		}
		// Every rune boundary of s up to same is the same offset in the fold.
		for i := 0; ; {
			if i <= same && len(foldString(s[:i])) != i {
				t.Fatalf("seed %d: appendFold(%+q) says offsets up to %d are kept, but %d moves", seed, s, same, i)
			}
			if i == len(s) {
				break
			}
			_, n := utf8.DecodeRuneInString(s[i:])
			i += n
		}
		if same > len(buf) || same > len(s) {
			t.Fatalf("seed %d: appendFold(%+q) says offsets up to %d are kept, past the end", seed, s, same)
		}
		for _, item := range []string{g.textItem(), g.textItem()} {
			if got, want := strings.Contains(foldString(s), foldString(item)), refContainsFold(s, item); got != want {
				t.Fatalf("seed %d: folded containment of %+q in %+q is %v, by the definition %v", seed, item, s, got, want)
			}
		}
	}
}

// TestEvaluate_AllocatesOnlyTheDecision: a decision costs its Matched and
// AddTags slices and nothing else, and no decision costs nothing.
func TestEvaluate_AllocatesOnlyTheDecision(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	rs := benchRules(t, 100)
	now := utc("2026-11-23T20:00:00Z")
	if n := testing.AllocsPerRun(200, func() { rs.Evaluate("message", benchFacts, now) }); n > 2 {
		t.Errorf("Evaluate with a decision: %v allocations, want at most 2", n)
	}
	quiet := benchFacts
	quiet.Network, quiet.Text, quiet.Tags = "tiktok", "nothing to see here", nil
	if d := rs.Evaluate("message", quiet, now); len(d.Matched) != 0 {
		t.Fatalf("expected no match, got %+v", d)
	}
	if n := testing.AllocsPerRun(200, func() { rs.Evaluate("message", quiet, now) }); n > 0 {
		t.Errorf("Evaluate without a decision: %v allocations, want 0", n)
	}
	// Text already in NFKC form costs nothing, in any script: the norm
	// package's check allocated once a call past the fold table's scripts.
	for _, text := range []string{"it’s fine, thanks 😀", "中文文本、谢谢", "مرحبا، شكرا", "ok… नमस्ते"[len("ok… "):]} {
		quiet.Text = text
		if n := testing.AllocsPerRun(200, func() { rs.Evaluate("message", quiet, now) }); n > 0 {
			t.Errorf("Evaluate of %q: %v allocations, want 0", text, n)
		}
	}
}

// TestEvaluate_TheNFKCFormIsBounded: NFKC makes one "ﷺ" 18 letters, so a
// message of them would be matched at 11 times its size; the form is cut
// at twice the text's length and 256 bytes.
func TestEvaluate_TheNFKCFormIsBounded(t *testing.T) {
	rs := mustCompile(t, Rule{ID: "r", When: When{TextAny: []string{"zzz"}}})
	text := strings.Repeat("ﷺ", 20000)
	e := new(evalState)
	f := Facts{Network: "twitter", Text: text}
	e.reset(rs, &f, monday10)
	e.foldedText()
	if limit := 2*len(text) + 256 + 64; len(e.f.Text) > limit || e.sent != text {
		t.Fatalf("the NFKC form of %d bytes: %d bytes, want at most %d (text as sent kept: %v)", len(text), len(e.f.Text), limit, e.sent == text)
	}
	// A text that NFKC lengthens within the bound is matched whole.
	for _, text := range []string{strings.Repeat("ǆ", 5000) + " zzz", "Muhammad ﷺ said: zzz"} {
		if d := rs.Evaluate("message", Facts{Network: "twitter", Text: text}, monday10); len(d.Matched) != 1 {
			t.Fatalf("%.40q...: %+v, want the keyword at its end matched", text, d)
		}
	}
}

// TestEvaluate_ConcurrentUse: one RuleSet evaluated from many goroutines
// (pooled state must not leak between calls) agrees with the reference.
func TestEvaluate_ConcurrentUse(t *testing.T) {
	t.Parallel()
	g := gen{rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 31))}
	rules := g.rules(60, true)
	rs := mustCompile(t, rules...)
	type input struct {
		f   Facts
		now time.Time
		d   Decision
	}
	inputs := make([]input, 200)
	for i := range inputs {
		f, now := g.facts(), g.now()
		inputs[i] = input{f, now, refEvaluate(t, refRegexes{}, rules, "message", f, now)}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for k := range 400 {
				in := inputs[(k*7+w*13)%len(inputs)]
				if got := rs.Evaluate("message", in.f, in.now); !equalDecision(got, in.d) {
					t.Errorf("concurrent evaluation: got %+v, want %+v", got, in.d)
					return
				}
			}
		})
	}
	wg.Wait()
}
