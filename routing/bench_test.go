package routing

import (
	"fmt"
	"testing"
	"time"
)

// benchRules builds n rules that look like a large real setup: most filter
// on networks and kinds and look for keywords, some use a regex, tags,
// followers or a schedule, and a few match the benchmark message.
func benchRules(tb testing.TB, n int) *RuleSet {
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

func benchmarkEvaluate(b *testing.B, n int) {
	rs := benchRules(b, n)
	now := utc("2026-11-23T20:00:00Z")
	if d := rs.Evaluate("message", benchFacts, now); len(d.Matched) == 0 {
		b.Fatal("benchmark message matches nothing")
	}
	b.ReportAllocs()
	for b.Loop() {
		rs.Evaluate("message", benchFacts, now)
	}
}

func BenchmarkEvaluate100Rules(b *testing.B)  { benchmarkEvaluate(b, 100) }
func BenchmarkEvaluate1000Rules(b *testing.B) { benchmarkEvaluate(b, 1000) }

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
		last := ""
		for b.Loop() {
			last, _ = Pick(StrategyRoundRobin, cands, last)
		}
	})
	b.Run("least_loaded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Pick(StrategyLeastLoaded, cands, "")
		}
	})
}
