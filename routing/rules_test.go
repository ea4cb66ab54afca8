package routing

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// monday10 is Monday 2026-11-23 10:00 UTC (11:00 in Madrid).
var monday10 = utc("2026-11-23T10:00:00Z")

func baseFacts() Facts {
	return Facts{
		Network: "instagram", Kind: "dm", Profile: "@Acme",
		Text:     "My order #123 arrived BROKEN",
		Language: "es", Tags: []string{"vip"},
		AuthorVerified: false, AuthorFollowers: 120,
	}
}

func mustCompile(t testing.TB, rules ...Rule) *RuleSet {
	t.Helper()
	rs, err := Compile(rules)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return rs
}

func TestEvaluate_EachConditionMatchesAndFails(t *testing.T) {
	t.Parallel()
	madridWin := []Shift{{Days: []string{"mon"}, Start: "11:00", End: "12:00"}}
	cases := []struct {
		name  string
		when  When
		facts func(f *Facts)
		now   time.Time
		match bool
	}{
		{"empty when matches everything", When{}, nil, monday10, true},

		{"network listed", When{Networks: []string{"twitter", "instagram"}}, nil, monday10, true},
		{"network not listed", When{Networks: []string{"twitter", "facebook"}}, nil, monday10, false},

		{"kind listed", When{Kinds: []string{"comment", "dm"}}, nil, monday10, true},
		{"kind not listed", When{Kinds: []string{"mention"}}, nil, monday10, false},

		{"profile any case", When{Profiles: []string{"@other", "@ACME"}}, nil, monday10, true},
		{"profile not listed", When{Profiles: []string{"@other"}}, nil, monday10, false},
		{"profile is not a substring match", When{Profiles: []string{"@acm"}}, nil, monday10, false},

		{"text_any one of several", When{TextAny: []string{"refund", "broken"}}, nil, monday10, true},
		{"text_any none", When{TextAny: []string{"refund", "cancel"}}, nil, monday10, false},
		{"text_any rule upper, text lower", When{TextAny: []string{"ORDER #1"}}, nil, monday10, true},
		{"text_any Spanish any case", When{TextAny: []string{"Reembolso"}},
			func(f *Facts) { f.Text = "QUIERO UN REEMBOLSO YA" }, monday10, true},
		{"text_any accented capitals", When{TextAny: []string{"échec"}},
			func(f *Facts) { f.Text = "UN ÉCHEC TOTAL" }, monday10, true},
		{"text_any accents are not ignored", When{TextAny: []string{"echec"}},
			func(f *Facts) { f.Text = "UN ÉCHEC TOTAL" }, monday10, false},
		{"text_any Greek final sigma", When{TextAny: []string{"οδος"}},
			func(f *Facts) { f.Text = "ΟΔΟΣ" }, monday10, true},
		{"text_any sharp s", When{TextAny: []string{"straße"}},
			func(f *Facts) { f.Text = "STRAẞE 5" }, monday10, true},
		{"text_any Cyrillic", When{TextAny: []string{"ВОЗВРАТ"}},
			func(f *Facts) { f.Text = "хочу возврат денег" }, monday10, true},
		{"text_any accent sent as a combining mark", When{TextAny: []string{"réclamation"}},
			func(f *Facts) { f.Text = "une Re\u0301clamation de plus" }, monday10, true},
		{"text_any keyword with a combining mark", When{TextAny: []string{"re\u0301clamation"}},
			func(f *Facts) { f.Text = "une RÉCLAMATION de plus" }, monday10, true},
		{"text_any Vietnamese tone marks sent apart", When{TextAny: []string{"hoàn tiền"}},
			func(f *Facts) { f.Text = "cho tôi hoa\u0300n tie\u0302\u0300n" }, monday10, true},
		{"text_any styled letters", When{TextAny: []string{"refund"}},
			func(f *Facts) { f.Text = "𝐑𝐄𝐅𝐔𝐍𝐃 𝓷𝓸𝔀" }, monday10, true},
		{"text_any full-width letters", When{TextAny: []string{"refund"}},
			func(f *Facts) { f.Text = "ＲＥＦＵＮＤ" }, monday10, true},
		{"text_any ligature", When{TextAny: []string{"profile"}},
			func(f *Facts) { f.Text = "my pro\uFB01le" }, monday10, true},
		{"text_any styled letters keep their accents", When{TextAny: []string{"echec"}},
			func(f *Facts) { f.Text = "ＥＣＨＥ\u0301Ｃ" }, monday10, false},

		{"regex matches", When{TextRegex: `order\s*#\d+`}, nil, monday10, true},
		{"regex is case-insensitive", When{TextRegex: `ORDER\s*#\d+ arrived broken`}, nil, monday10, true},
		{"regex non-ASCII case-insensitive", When{TextRegex: `reembolso\s+\d+`},
			func(f *Facts) { f.Text = "REEMBOLSO 42" }, monday10, true},
		{"regex does not match", When{TextRegex: `^refund`}, nil, monday10, false},
		{"regex over the composed text", When{TextRegex: `^réclamation \d+$`},
			func(f *Facts) { f.Text = "re\u0301clamation 42" }, monday10, true},
		{"regex over styled letters and digits", When{TextRegex: `order\s*#\d+`},
			func(f *Facts) { f.Text = "𝐎𝐑𝐃𝐄𝐑 #𝟒𝟐" }, monday10, true},
		{"regex for styled letters matches the text as sent", When{TextRegex: `[\x{1D400}-\x{1D7FF}]{3,}`},
			func(f *Facts) { f.Text = "𝐅𝐑𝐄𝐄 𝐅𝐎𝐋𝐋𝐎𝐖𝐄𝐑𝐒" }, monday10, true},
		{"regex for a no-break space matches the text as sent", When{TextRegex: `a\x{a0}b`},
			func(f *Facts) { f.Text = "a\u00a0b" }, monday10, true},
		{"regex for a combining mark matches the text as sent", When{TextRegex: `[\x{0300}-\x{036f}]`},
			func(f *Facts) { f.Text = "re\u0301clamation" }, monday10, true},
		{"regex matches neither form", When{TextRegex: `[\x{1D400}-\x{1D7FF}]`},
			func(f *Facts) { f.Text = "plain FREE" }, monday10, false},

		{"tags_any one listed", When{TagsAny: []string{"lead", "vip"}}, nil, monday10, true},
		{"tags_any thread tag in another case", When{TagsAny: []string{"vip"}},
			func(f *Facts) { f.Tags = []string{"VIP"} }, monday10, true},
		{"tags_any none listed", When{TagsAny: []string{"lead"}}, nil, monday10, false},
		{"tags_any thread has no tags", When{TagsAny: []string{"vip"}},
			func(f *Facts) { f.Tags = nil }, monday10, false},

		{"author_verified false equals", When{AuthorVerified: ptr(false)}, nil, monday10, true},
		{"author_verified true differs", When{AuthorVerified: ptr(true)}, nil, monday10, false},
		{"author_verified true equals", When{AuthorVerified: ptr(true)},
			func(f *Facts) { f.AuthorVerified = true }, monday10, true},

		{"min_followers equal", When{MinFollowers: ptr(120)}, nil, monday10, true},
		{"min_followers below", When{MinFollowers: ptr(121)}, nil, monday10, false},
		{"min_followers zero", When{MinFollowers: ptr(0)}, func(f *Facts) { f.AuthorFollowers = 0 }, monday10, true},

		{"language any case", When{Languages: []string{"pt", "ES"}}, nil, monday10, true},
		{"language not listed", When{Languages: []string{"en"}}, nil, monday10, false},
		{"language with a region", When{Languages: []string{"pt"}}, func(f *Facts) { f.Language = "pt-BR" }, monday10, true},
		{"language with a region, Meta's way", When{Languages: []string{"PT"}}, func(f *Facts) { f.Language = "pt_br" }, monday10, true},
		{"language: another that begins alike", When{Languages: []string{"pt"}}, func(f *Facts) { f.Language = "ptb" }, monday10, false},
		{"language: a region, another region", When{Languages: []string{"pt-BR"}}, func(f *Facts) { f.Language = "pt-PT" }, monday10, false},
		{"language: a region, no region", When{Languages: []string{"pt-BR"}}, func(f *Facts) { f.Language = "pt" }, monday10, false},
		{"language: a region, Meta's way in the message", When{Languages: []string{"pt-BR"}}, func(f *Facts) { f.Language = "pt_BR" }, monday10, true},
		{"language: a region, Meta's way in the rule", When{Languages: []string{"pt_BR"}}, func(f *Facts) { f.Language = "pt-br" }, monday10, true},
		{"language: Meta's way, another region", When{Languages: []string{"pt_BR"}}, func(f *Facts) { f.Language = "pt_PT" }, monday10, false},

		{"schedule inside, inside", When{Schedule: &Schedule{
			Windows: []Shift{{Days: []string{"mon"}, Start: "09:00", End: "17:00"}}}}, nil, monday10, true},
		{"schedule inside, outside", When{Schedule: &Schedule{
			Windows: []Shift{{Days: []string{"mon"}, Start: "09:00", End: "17:00"}}}}, nil, utc("2026-11-23T17:00:00Z"), false},
		{"schedule inside, other day", When{Schedule: &Schedule{
			Windows: []Shift{{Days: []string{"mon"}, Start: "09:00", End: "17:00"}}}}, nil, utc("2026-11-24T10:00:00Z"), false},
		{"schedule outside, inside", When{Schedule: &Schedule{Inside: ptr(false),
			Windows: []Shift{{Days: []string{"mon"}, Start: "09:00", End: "17:00"}}}}, nil, monday10, false},
		{"schedule outside, outside", When{Schedule: &Schedule{Inside: ptr(false),
			Windows: []Shift{{Days: []string{"mon"}, Start: "09:00", End: "17:00"}}}}, nil, utc("2026-11-23T08:59:59Z"), true},
		{"schedule in Madrid time, inside", When{Schedule: &Schedule{Timezone: "Europe/Madrid", Windows: madridWin}},
			nil, monday10, true},
		{"schedule in Madrid time, UTC would match", When{Schedule: &Schedule{Timezone: "Europe/Madrid", Windows: madridWin}},
			nil, utc("2026-11-23T11:30:00Z"), false},

		{"AND: all fields match", When{Networks: []string{"instagram"}, Kinds: []string{"dm"},
			TextAny: []string{"broken"}, Languages: []string{"es"}}, nil, monday10, true},
		{"AND: one field fails", When{Networks: []string{"instagram"}, Kinds: []string{"comment"},
			TextAny: []string{"broken"}, Languages: []string{"es"}}, nil, monday10, false},
		{"AND: text matches but regex fails", When{TextAny: []string{"broken"}, TextRegex: `refund`},
			nil, monday10, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rs := mustCompile(t, Rule{ID: "r", When: tc.when, Then: Then{Team: "care"}})
			f := baseFacts()
			if tc.facts != nil {
				tc.facts(&f)
			}
			d := rs.Evaluate("message", f, tc.now)
			want := Decision{}
			if tc.match {
				want = Decision{Team: "care", Matched: []string{"r"}}
			}
			if !equalDecision(d, want) {
				t.Fatalf("got %+v, want %+v", d, want)
			}
		})
	}
}

func equalDecision(a, b Decision) bool {
	return a.Team == b.Team && a.Priority == b.Priority && a.Close == b.Close &&
		slices.Equal(a.AddTags, b.AddTags) && slices.Equal(a.Matched, b.Matched)
}

func TestEvaluate_Decisions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		on    string
		rules []Rule
		want  Decision
	}{
		{
			name: "no rules, empty decision",
			on:   "message",
			want: Decision{},
		},
		{
			name: "runs by position then id, not input order; first team wins",
			on:   "message",
			rules: []Rule{
				{ID: "c", Position: 30, Then: Then{Team: "sales"}},
				{ID: "b", Position: 10, Then: Then{Team: "care"}},
				{ID: "a", Position: 20},
				{ID: "a2", Position: 10, Then: Then{Team: "engagement"}},
			},
			want: Decision{Team: "engagement", Matched: []string{"a2", "b", "a", "c"}},
		},
		{
			name: "tags are a union in rule order without repeats",
			on:   "message",
			rules: []Rule{
				{ID: "one", Position: 1, Then: Then{AddTags: []string{"complaint", "vip"}}},
				{ID: "two", Position: 2, Then: Then{AddTags: []string{"vip", "refund"}}},
				{ID: "three", Position: 3, Then: Then{AddTags: []string{"complaint", "es"}}},
			},
			want: Decision{AddTags: []string{"complaint", "vip", "refund", "es"}, Matched: []string{"one", "two", "three"}},
		},
		{
			name: "priority is never lowered",
			on:   "message",
			rules: []Rule{
				{ID: "a", Position: 1, Then: Then{Priority: "high"}},
				{ID: "b", Position: 2, Then: Then{Priority: "low"}},
				{ID: "c", Position: 3},
				{ID: "d", Position: 4, Then: Then{Priority: "normal"}},
			},
			want: Decision{Priority: "high", Matched: []string{"a", "b", "c", "d"}},
		},
		{
			name: "priority is raised by a later rule",
			on:   "message",
			rules: []Rule{
				{ID: "a", Position: 1, Then: Then{Priority: "low"}},
				{ID: "b", Position: 2, Then: Then{Priority: "urgent"}},
			},
			want: Decision{Priority: "urgent", Matched: []string{"a", "b"}},
		},
		{
			name: "stop ends evaluation after its own actions",
			on:   "message",
			rules: []Rule{
				{ID: "a", Position: 1, Then: Then{AddTags: []string{"x"}}},
				{ID: "b", Position: 2, Stop: true, Then: Then{AddTags: []string{"y"}, Priority: "high", Team: "care"}},
				{ID: "c", Position: 3, Then: Then{AddTags: []string{"z"}, Priority: "urgent", Close: true}},
			},
			want: Decision{Team: "care", AddTags: []string{"x", "y"}, Priority: "high", Matched: []string{"a", "b"}},
		},
		{
			name: "a stop rule that does not match does not stop",
			on:   "message",
			rules: []Rule{
				{ID: "a", Position: 1, Stop: true, When: When{Networks: []string{"twitter"}}, Then: Then{Team: "x"}},
				{ID: "b", Position: 2, Then: Then{Team: "care"}},
			},
			want: Decision{Team: "care", Matched: []string{"b"}},
		},
		{
			name: "close from any matching rule",
			on:   "message",
			rules: []Rule{
				{ID: "spam", Position: 1, When: When{TextAny: []string{"broken"}}, Then: Then{Close: true, AddTags: []string{"spam"}}},
				{ID: "later", Position: 2, Then: Then{Team: "care"}},
			},
			want: Decision{Team: "care", AddTags: []string{"spam"}, Close: true, Matched: []string{"spam", "later"}},
		},
		{
			name: "close is not set by a rule that does not match",
			on:   "message",
			rules: []Rule{
				{ID: "spam", When: When{TextAny: []string{"casino"}}, Then: Then{Close: true}},
			},
			want: Decision{},
		},
		{
			name: "disabled rules are skipped",
			on:   "message",
			rules: []Rule{
				{ID: "off", Position: 1, Enabled: ptr(false), Then: Then{Team: "x", AddTags: []string{"x"}, Close: true}},
				{ID: "on", Position: 2, Enabled: ptr(true), Then: Then{Team: "care"}},
			},
			want: Decision{Team: "care", Matched: []string{"on"}},
		},
		{
			name: "tag rules do not run for messages",
			on:   "message",
			rules: []Rule{
				{ID: "t", Position: 1, On: []string{"tag"}, Then: Then{Team: "sales"}},
				{ID: "m", Position: 2, Then: Then{Team: "care"}},
				{ID: "both", Position: 3, On: []string{"tag", "message"}, Then: Then{AddTags: []string{"b"}}},
			},
			want: Decision{Team: "care", AddTags: []string{"b"}, Matched: []string{"m", "both"}},
		},
		{
			name: "rules sharing a regex and rules with other regexes each get their own answer",
			on:   "message",
			rules: []Rule{
				{ID: "a", Position: 1, When: When{TextRegex: `order\s*#\d+`}, Then: Then{AddTags: []string{"a"}}},
				{ID: "b", Position: 2, When: When{TextRegex: `^refund`}, Then: Then{AddTags: []string{"b"}}},
				{ID: "c", Position: 3, When: When{TextRegex: `order\s*#\d+`}, Then: Then{AddTags: []string{"c"}}},
				{ID: "d", Position: 4, When: When{TextRegex: `^refund`}, Then: Then{AddTags: []string{"d"}}},
				{ID: "e", Position: 5, When: When{TextRegex: `broken$`}, Then: Then{AddTags: []string{"e"}}},
			},
			want: Decision{AddTags: []string{"a", "c", "e"}, Matched: []string{"a", "c", "e"}},
		},
		{
			name: "message rules (the default) do not run for tags",
			on:   "tag",
			rules: []Rule{
				{ID: "t", Position: 1, On: []string{"tag"}, When: When{TagsAny: []string{"vip"}}, Then: Then{Team: "sales"}},
				{ID: "m", Position: 2, Then: Then{Team: "care"}},
				{ID: "both", Position: 3, On: []string{"tag", "message"}, Then: Then{AddTags: []string{"b"}}},
			},
			want: Decision{Team: "sales", AddTags: []string{"b"}, Matched: []string{"t", "both"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rs := mustCompile(t, tc.rules...)
			if got := rs.Evaluate(tc.on, baseFacts(), monday10); !equalDecision(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestEvaluate_OrderDoesNotDependOnInput(t *testing.T) {
	t.Parallel()
	var rules []Rule
	for i, id := range []string{"e", "d", "c", "b", "a", "f", "g", "h"} {
		rules = append(rules, Rule{ID: id, Position: (i % 3) * 10, Then: Then{Team: "team-" + id, AddTags: []string{"t-" + id}}})
	}
	want := mustCompile(t, rules...).Evaluate("message", baseFacts(), monday10)
	if want.Team != "team-b" || !slices.Equal(want.Matched, []string{"b", "e", "g", "a", "d", "h", "c", "f"}) {
		t.Fatalf("unexpected order: %+v", want)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		r.Shuffle(len(rules), func(i, j int) { rules[i], rules[j] = rules[j], rules[i] })
		if got := mustCompile(t, rules...).Evaluate("message", baseFacts(), monday10); !equalDecision(got, want) {
			t.Fatalf("order changed with input order: got %+v, want %+v", got, want)
		}
	}
}

func TestCompile_DoesNotAliasCallerRules(t *testing.T) {
	t.Parallel()
	rules := []Rule{{ID: "a", When: When{TextAny: []string{"broken"}}, Then: Then{AddTags: []string{"x"}}}}
	rs := mustCompile(t, rules...)
	rules[0].When.TextAny[0] = "nothing-like-this"
	rules[0].Then.AddTags[0] = "changed"
	got := rs.Evaluate("message", baseFacts(), monday10)
	if !slices.Equal(got.AddTags, []string{"x"}) {
		t.Fatalf("rule set changed with the caller's slice: %+v", got)
	}
}

func TestRuleSet_LenAndTeams(t *testing.T) {
	t.Parallel()
	rs := mustCompile(t,
		Rule{ID: "a", Then: Then{Team: "sales"}},
		Rule{ID: "b", Enabled: ptr(false), Then: Then{Team: "care"}},
		Rule{ID: "c", Then: Then{Team: "sales"}},
		Rule{ID: "d"},
	)
	if rs.Len() != 4 {
		t.Fatalf("Len = %d", rs.Len())
	}
	if got := rs.Teams(); !slices.Equal(got, []string{"care", "sales"}) {
		t.Fatalf("Teams = %v", got)
	}
	var nilSet *RuleSet
	if nilSet.Len() != 0 || nilSet.Teams() != nil || !equalDecision(nilSet.Evaluate("message", baseFacts(), monday10), Decision{}) {
		t.Fatal("nil rule set must be empty")
	}
}

func TestFoldString(t *testing.T) {
	t.Parallel()
	same := [][2]string{
		{"REEMBOLSO", "reembolso"}, {"ÉCHEC", "échec"}, {"ΟΔΟΣ", "οδος"}, {"ΟΔΟΣ", "οδοσ"},
		{"STRAẞE", "straße"}, {"\u212A", "k"}, {"ſ", "S"}, {"ÅNGSTRÖM", "\u212Bngström"},
	}
	for _, p := range same {
		if a, b := foldString(p[0]), foldString(p[1]); a != b {
			t.Errorf("fold(%q)=%q != fold(%q)=%q", p[0], a, p[1], b)
		}
	}
	if foldString("echec") == foldString("échec") {
		t.Error("accents must not be folded away")
	}
	if s := "already lower 123"; foldString(s) != s {
		t.Error("lowercase ASCII must be unchanged")
	}
}
