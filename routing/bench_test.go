package routing

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// benchRules builds n rules that look like a large real setup: most filter
// on networks and kinds and look for keywords, some use a regex, tags,
// followers or a schedule, and a few match the benchmark message.
func benchRules(tb testing.TB, n int) *RuleSet { return benchRuleSet(tb, n, true) }

// benchRuleSet is benchRules; without regexes, the rules that would have one
// look for the same things with text_any instead.
func benchRuleSet(tb testing.TB, n int, regexes bool) *RuleSet {
	words := []string{"refund", "reembolso", "broken", "cancel", "outage", "invoice", "password",
		"delivery", "precio", "comprar", "pricing", "demo", "scam", "giveaway", "crash", "login"}
	rules := make([]Rule, 0, n)
	for i := range n {
		r := Rule{ID: fmt.Sprintf("rule-%04d", i), Position: (i * 7919) % 1000}
		r.When.Networks = []string{Networks[i%len(Networks)], Networks[(i+3)%len(Networks)]}
		switch i % 5 {
		case 0:
			r.When.TextAny = []string{words[i%len(words)], words[(i+5)%len(words)], fmt.Sprintf("kw%d", i)}
			r.Then.AddTags = []string{"kw-" + words[i%len(words)]}
		case 1:
			r.When.TextRegex = fmt.Sprintf(`(order|pedido)\s*#?%d\d*`, i)
			if !regexes {
				r.When.TextRegex, r.When.TextAny = "", []string{fmt.Sprintf("order #%d", i), fmt.Sprintf("pedido #%d", i)}
			}
			r.Then.Priority = "high"
		case 2:
			r.When.Kinds = []string{"dm", "comment"}
			r.When.TextAny = []string{fmt.Sprintf("product-%d", i)}
			r.When.Languages = []string{"es", "en"}
			r.Then.Team = fmt.Sprintf("team-%d", i%10)
		case 3:
			r.When.TagsAny = []string{"vip", fmt.Sprintf("segment-%d", i)}
			r.When.MinFollowers = ptr(10000)
			r.Then.Priority = "urgent"
		case 4:
			r.When.TextRegex = `\b(help|ayuda)\b.*\b(now|ya)\b`
			if !regexes {
				r.When.TextRegex, r.When.TextAny = "", []string{"help now", "ayuda ya"}
			}
			r.When.Schedule = &Schedule{Timezone: "Europe/Madrid", Inside: ptr(false),
				Windows: []Shift{{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "09:00", End: "18:00"}}}
			r.Then.AddTags = []string{"after-hours"}
		}
		rules = append(rules, r)
	}
	rs, err := Compile(rules)
	if err != nil {
		tb.Fatal(err)
	}
	return rs
}

var benchFacts = Facts{
	Network: "instagram", Kind: "dm", Profile: "@acme", Language: "es",
	Text: "Hola, mi pedido #12345 llegó roto y quiero un REEMBOLSO ya. Llevo tres días esperando " +
		"respuesta y nadie me ayuda. Es la segunda vez que pasa con vuestra tienda online.",
	Tags: []string{"vip", "es"}, AuthorFollowers: 20000,
}

func benchmarkEvaluate(b *testing.B, n int, regexes bool, f Facts) {
	rs := benchRuleSet(b, n, regexes)
	now := utc("2026-11-23T20:00:00Z")
	if d := rs.Evaluate("message", f, now); len(d.Matched) == 0 {
		b.Fatal("benchmark message matches nothing")
	}
	b.ReportAllocs()
	for b.Loop() {
		rs.Evaluate("message", f, now)
	}
}

func BenchmarkEvaluate100Rules(b *testing.B)  { benchmarkEvaluate(b, 100, true, benchFacts) }
func BenchmarkEvaluate1000Rules(b *testing.B) { benchmarkEvaluate(b, 1000, true, benchFacts) }

// The same rule sets without regexes: the rules that had one look for the
// same words with text_any.
func BenchmarkEvaluate100RulesNoRegex(b *testing.B)  { benchmarkEvaluate(b, 100, false, benchFacts) }
func BenchmarkEvaluate1000RulesNoRegex(b *testing.B) { benchmarkEvaluate(b, 1000, false, benchFacts) }

// longFacts is the benchmark message grown to about 1 KB with more of the
// same words (and a newline between repeats), so that the help-now regex's
// literals are there in order and it has to run over the whole text.
var longFacts = func() Facts {
	f := benchFacts
	f.Text = strings.Repeat(benchFacts.Text+"\n", 1024/len(benchFacts.Text)+1)
	return f
}()

func BenchmarkEvaluate100Rules1KB(b *testing.B) { benchmarkEvaluate(b, 100, true, longFacts) }

// BenchmarkRegex1KB is the cost of one case-insensitive regex over about 1 KB
// of text that contains its literals but does not match it: what Evaluate pays
// for each distinct regex its prefilter cannot rule out.
func BenchmarkRegex1KB(b *testing.B) {
	re := regexp.MustCompile(`(?i)\b(help|ayuda)\b.*\b(now|ya)\b`)
	if re.MatchString(longFacts.Text) {
		b.Fatal("matches")
	}
	b.SetBytes(int64(len(longFacts.Text)))
	for b.Loop() {
		re.MatchString(longFacts.Text)
	}
}

func BenchmarkOnShift(b *testing.B) {
	loc := mustLoc(b, "Europe/Madrid")
	shifts := []Shift{
		{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "09:00", End: "17:00"},
		{Days: []string{"sat"}, Start: "10:00", End: "14:00"},
		{Days: []string{"fri"}, Start: "22:00", End: "06:00"},
	}
	off := []TimeOff{{From: utc("2026-12-24T00:00:00Z"), To: utc("2026-12-27T00:00:00Z")}}
	now := utc("2026-11-21T04:30:00Z") // Saturday 05:30 in Madrid, in the overnight shift
	if !OnShift(loc, shifts, off, now) {
		b.Fatal("expected on shift")
	}
	b.ReportAllocs()
	for b.Loop() {
		OnShift(loc, shifts, off, now)
	}
}

func BenchmarkPick(b *testing.B) {
	cands := make([]Candidate, 50)
	t0 := utc("2026-11-23T10:00:00Z")
	for i := range cands {
		cands[i] = Candidate{ID: fmt.Sprintf("agent-%02d", (i*17)%50), OpenLocks: i % 6, Capacity: 5,
			LastOfferedAt: t0.Add(time.Duration(i%7) * time.Minute)}
	}
	b.Run("round_robin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Pick(StrategyRoundRobin, cands)
		}
	})
	b.Run("least_loaded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Pick(StrategyLeastLoaded, cands)
		}
	})
}
