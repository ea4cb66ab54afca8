package routing

import (
	"strings"
	"testing"
	"time"
)

// validRule is the contract's example rule; each case below breaks one field.
func validRule() Rule {
	return Rule{
		ID: "ig-complaints", Position: 10, Enabled: ptr(true), On: []string{"message"},
		When: When{
			Networks: []string{"instagram"}, Kinds: []string{"dm", "comment"},
			Profiles: []string{"@acme"}, TextAny: []string{"refund", "broken"},
			TextRegex: `order\s*#\d+`, TagsAny: []string{"vip"},
			AuthorVerified: ptr(true), MinFollowers: ptr(10000), Languages: []string{"es"},
			Schedule: &Schedule{Timezone: "UTC", Inside: ptr(false),
				Windows: []Shift{{Days: []string{"mon"}, Start: "09:00", End: "17:00"}}},
		},
		Then: Then{Team: "care", AddTags: []string{"complaint"}, Priority: "high"},
		Stop: true,
	}
}

func TestFieldError_ErrorJoinsFieldAndMessage(t *testing.T) {
	t.Parallel()
	err := error(&FieldError{Field: "when.text_regex", Message: "bad"})
	if got := err.Error(); got != "when.text_regex: bad" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestValidateRule_NamesTheOffendingField(t *testing.T) {
	t.Parallel()
	many := func(n int, s string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	win := func(r *Rule) *Shift { return &r.When.Schedule.Windows[0] }
	cases := []struct {
		name  string
		edit  func(r *Rule)
		field string // "" = valid
	}{
		{"contract example is valid", func(r *Rule) {}, ""},
		{"empty when and then are valid", func(r *Rule) { r.When, r.Then, r.On, r.Enabled = When{}, Then{}, nil, nil }, ""},
		{"empty id", func(r *Rule) { r.ID = "" }, "id"},
		{"uppercase id", func(r *Rule) { r.ID = "Complaints" }, "id"},
		{"id with underscore", func(r *Rule) { r.ID = "ig_complaints" }, "id"},
		{"id starting with dash", func(r *Rule) { r.ID = "-x" }, "id"},
		{"id of 64 chars is valid", func(r *Rule) { r.ID = strings.Repeat("a", 64) }, ""},
		{"id of 65 chars", func(r *Rule) { r.ID = strings.Repeat("a", 65) }, "id"},
		{"negative position", func(r *Rule) { r.Position = -1 }, "position"},
		{"unknown event", func(r *Rule) { r.On = []string{"message", "reply"} }, "on[1]"},
		{"unknown network", func(r *Rule) { r.When.Networks = []string{"twitter", "myspace"} }, "when.networks[1]"},
		{"network in wrong case", func(r *Rule) { r.When.Networks = []string{"Twitter"} }, "when.networks[0]"},
		{"too many networks", func(r *Rule) { r.When.Networks = many(101, "twitter") }, "when.networks"},
		{"unknown kind", func(r *Rule) { r.When.Kinds = []string{"dm", "story"} }, "when.kinds[1]"},
		{"empty profile", func(r *Rule) { r.When.Profiles = []string{""} }, "when.profiles[0]"},
		{"blank text_any item", func(r *Rule) { r.When.TextAny = []string{"ok", "  "} }, "when.text_any[1]"},
		{"text_any item of 200 chars is valid", func(r *Rule) { r.When.TextAny = []string{strings.Repeat("é", 200)} }, ""},
		{"text_any item over 200 chars", func(r *Rule) { r.When.TextAny = []string{strings.Repeat("é", 201)} }, "when.text_any[0]"},
		{"100 text_any items are valid", func(r *Rule) { r.When.TextAny = many(100, "x") }, ""},
		{"101 text_any items", func(r *Rule) { r.When.TextAny = many(101, "x") }, "when.text_any"},
		{"regex that does not compile", func(r *Rule) { r.When.TextRegex = `order(\d+` }, "when.text_regex"},
		{"regex with bad repeat", func(r *Rule) { r.When.TextRegex = `a{2,1}` }, "when.text_regex"},
		{"regex of 512 chars is valid", func(r *Rule) { r.When.TextRegex = strings.Repeat("a", 512) }, ""},
		{"regex over 512 chars", func(r *Rule) { r.When.TextRegex = strings.Repeat("a", 513) }, "when.text_regex"},
		{"uppercase tag in tags_any", func(r *Rule) { r.When.TagsAny = []string{"vip", "VIP"} }, "when.tags_any[1]"},
		{"tag rule testing text", func(r *Rule) { r.On, r.When.TextRegex = []string{"tag"}, "" }, "when.text_any"},
		{"message and tag rule testing a regex is valid (its message half can match)", func(r *Rule) {
			r.On, r.When.TextAny, r.When.TextRegex = []string{"message", "tag"}, nil, "refund"
		}, ""},
		{"tag rule testing a regex", func(r *Rule) { r.On, r.When.TextAny, r.When.TextRegex = []string{"tag"}, nil, "refund" }, "when.text_regex"},
		{"tag rule testing languages", func(r *Rule) {
			r.On, r.When.TextAny, r.When.TextRegex, r.When.Languages = []string{"tag"}, nil, "", []string{"en"}
		}, "when.languages"},
		{"tag rule without text conditions is valid", func(r *Rule) {
			r.On, r.When.TextAny, r.When.TextRegex, r.When.Languages = []string{"tag"}, nil, "", nil
		}, ""},
		{"negative min_followers", func(r *Rule) { r.When.MinFollowers = ptr(-1) }, "when.min_followers"},
		{"zero min_followers is valid", func(r *Rule) { r.When.MinFollowers = ptr(0) }, ""},
		{"empty language", func(r *Rule) { r.When.Languages = []string{"es", ""} }, "when.languages[1]"},
		{"bad timezone", func(r *Rule) { r.When.Schedule.Timezone = "Mars/Olympus_Mons" }, "when.schedule.timezone"},
		{"Local timezone", func(r *Rule) { r.When.Schedule.Timezone = "Local" }, "when.schedule.timezone"},
		{"empty timezone is UTC", func(r *Rule) { r.When.Schedule.Timezone = "" }, ""},
		{"schedule without windows", func(r *Rule) { r.When.Schedule.Windows = nil }, "when.schedule.windows"},
		{"unknown day", func(r *Rule) { win(r).Days = []string{"mon", "funday"} }, "when.schedule.windows[0].days[1]"},
		{"day in wrong case", func(r *Rule) { win(r).Days = []string{"Mon"} }, "when.schedule.windows[0].days[0]"},
		{"no days", func(r *Rule) { win(r).Days = nil }, "when.schedule.windows[0].days"},
		{"start 25:00", func(r *Rule) { win(r).Start = "25:00" }, "when.schedule.windows[0].start"},
		{"start 9:00", func(r *Rule) { win(r).Start = "9:00" }, "when.schedule.windows[0].start"},
		{"start 12:60", func(r *Rule) { win(r).Start = "12:60" }, "when.schedule.windows[0].start"},
		{"start 24:00", func(r *Rule) { win(r).Start = "24:00" }, "when.schedule.windows[0].start"},
		{"start empty", func(r *Rule) { win(r).Start = "" }, "when.schedule.windows[0].start"},
		{"start with seconds", func(r *Rule) { win(r).Start = "09:00:00" }, "when.schedule.windows[0].start"},
		{"start with sign", func(r *Rule) { win(r).Start = "+9:00" }, "when.schedule.windows[0].start"},
		{"end 25:00", func(r *Rule) { win(r).End = "25:00" }, "when.schedule.windows[0].end"},
		{"end 24:01", func(r *Rule) { win(r).End = "24:01" }, "when.schedule.windows[0].end"},
		{"end 7:00", func(r *Rule) { win(r).End = "7:00" }, "when.schedule.windows[0].end"},
		{"end 24:00 is valid", func(r *Rule) { win(r).End = "24:00" }, ""},
		{"end before start (overnight) is valid", func(r *Rule) { win(r).Start, win(r).End = "22:00", "06:00" }, ""},
		{"end equal to start", func(r *Rule) { win(r).Start, win(r).End = "09:00", "09:00" }, "when.schedule.windows[0].end"},
		{"00:00 to 24:00 is valid", func(r *Rule) { win(r).Start, win(r).End = "00:00", "24:00" }, ""},
		{"00:00 to 00:00 is empty", func(r *Rule) { win(r).Start, win(r).End = "00:00", "00:00" }, "when.schedule.windows[0].end"},
		{"bad team slug", func(r *Rule) { r.Then.Team = "Care!" }, "then.team"},
		{"bad tag to add", func(r *Rule) { r.Then.AddTags = []string{"ok", "has space"} }, "then.add_tags[1]"},
		{"tag over 64 chars", func(r *Rule) { r.Then.AddTags = []string{strings.Repeat("t", 65)} }, "then.add_tags[0]"},
		{"unknown priority", func(r *Rule) { r.Then.Priority = "critical" }, "then.priority"},
		{"priority in wrong case", func(r *Rule) { r.Then.Priority = "High" }, "then.priority"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := validRule()
			tc.edit(&r)
			wantField(t, ValidateRule(r), tc.field)
		})
	}
}

// TestValidateRule_ARegexErrorQuotesThePatternAsWritten: the pattern is
// compiled with (?i) in front, which the admin never wrote.
func TestValidateRule_ARegexErrorQuotesThePatternAsWritten(t *testing.T) {
	err := ValidateRule(Rule{ID: "r", When: When{TextRegex: `order(\d+`}})
	if err == nil || strings.Contains(err.Error(), "(?i)") || !strings.Contains(err.Error(), "`order(\\d+`") {
		t.Fatalf("error %v, want the pattern as written", err)
	}
}

func TestValidSlugAndValidTag(t *testing.T) {
	t.Parallel()
	slugs := map[string]bool{
		"care": true, "care-overnight": true, "0": true, "a-": true,
		"": false, "-a": false, "Care": false, "ca re": false, "caré": false, "a_b": false,
		strings.Repeat("x", 64): true, strings.Repeat("x", 65): false,
	}
	for s, want := range slugs {
		if got := ValidSlug(s); got != want {
			t.Errorf("ValidSlug(%q) = %v, want %v", s, got, want)
		}
	}
	tags := map[string]bool{
		"vip": true, "lead": true, "order:123": true, "a_b-c": true, "-x": true,
		"": false, "VIP": false, "two words": false, "café": false, "a/b": false,
		strings.Repeat("t", 64): true, strings.Repeat("t", 65): false,
	}
	for s, want := range tags {
		if got := ValidTag(s); got != want {
			t.Errorf("ValidTag(%q) = %v, want %v", s, got, want)
		}
	}
	if got := NormalizeTag("  VIP:Gold "); got != "vip:gold" {
		t.Errorf("NormalizeTag = %q", got)
	}
}

func TestValidateShifts_NamesTheOffendingField(t *testing.T) {
	t.Parallel()
	ok := Shift{Days: []string{"mon", "tue"}, Start: "09:00", End: "17:00"}
	cases := []struct {
		name   string
		shifts []Shift
		field  string
	}{
		{"none", nil, ""},
		{"valid", []Shift{ok, {Days: []string{"fri"}, Start: "22:00", End: "06:00"}}, ""},
		{"bad day", []Shift{ok, {Days: []string{"mon", "tue", "weds"}, Start: "09:00", End: "17:00"}}, "shifts[1].days[2]"},
		{"bad start", []Shift{{Days: []string{"mon"}, Start: "9:00", End: "17:00"}}, "shifts[0].start"},
		{"bad end", []Shift{ok, ok, {Days: []string{"mon"}, Start: "09:00", End: "12:60"}}, "shifts[2].end"},
		{"no days", []Shift{{Start: "09:00", End: "17:00"}}, "shifts[0].days"},
		{"too many", make([]Shift, 101), "shifts"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantField(t, ValidateShifts("shifts", tc.shifts), tc.field)
		})
	}
}

func TestValidateTimeOff_ToMustBeAfterFrom(t *testing.T) {
	t.Parallel()
	a, b := utc("2026-12-24T00:00:00Z"), utc("2026-12-27T00:00:00Z")
	cases := []struct {
		name  string
		offs  []TimeOff
		field string
	}{
		{"valid", []TimeOff{{From: a, To: b}}, ""},
		{"to before from", []TimeOff{{From: a, To: b}, {From: b, To: a}}, "time_off[1].to"},
		{"to equal to from", []TimeOff{{From: a, To: a}}, "time_off[0].to"},
		{"missing from", []TimeOff{{To: b}}, "time_off[0].from"},
		{"missing to", []TimeOff{{From: a}}, "time_off[0].to"},
		{"past 9999 in UTC", []TimeOff{{From: a, To: mustTime(t, "9999-12-31T23:00:00-05:00")}}, "time_off[0].to"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantField(t, ValidateTimeOff("time_off", tc.offs), tc.field)
		})
	}
	// An offset is put in UTC, the contract's zone for times.
	offs := []TimeOff{{From: mustTime(t, "2026-12-24T00:00:00+01:00"), To: mustTime(t, "2026-12-27T00:00:00-05:00")}}
	if err := ValidateTimeOff("time_off", offs); err != nil {
		t.Fatal(err)
	}
	if got := offs[0].From.Format(time.RFC3339) + " " + offs[0].To.Format(time.RFC3339); got != "2026-12-23T23:00:00Z 2026-12-27T05:00:00Z" {
		t.Fatalf("time off stored as %s, want both ends in UTC", got)
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLoadZone(t *testing.T) {
	t.Parallel()
	loc, err := LoadZone("timezone", "")
	if err != nil || loc != time.UTC {
		t.Fatalf("empty zone: %v %v", loc, err)
	}
	loc, err = LoadZone("timezone", "Europe/Madrid")
	if err != nil || loc.String() != "Europe/Madrid" {
		t.Fatalf("Madrid: %v %v", loc, err)
	}
	_, err = LoadZone("timezone", "Europe/Atlantis")
	wantField(t, err, "timezone")
	_, err = LoadZone("timezone", "../../etc/passwd")
	wantField(t, err, "timezone")
}

func TestCompile_ReturnsTheRulesFieldErrorAndCapsRules(t *testing.T) {
	t.Parallel()
	bad := validRule()
	bad.ID = "bad"
	bad.When.TextRegex = "("
	_, err := Compile([]Rule{validRule(), bad})
	wantField(t, err, "when.text_regex")

	rules := make([]Rule, MaxRules+1)
	for i := range rules {
		rules[i] = Rule{ID: "r" + strings.Repeat("0", 3) + string(rune('a'+i%26))}
	}
	_, err = Compile(rules)
	wantField(t, err, "rules")
	rs, err := Compile(rules[:MaxRules])
	if err != nil || rs.Len() != MaxRules {
		t.Fatalf("1000 rules: len %d, err %v", rs.Len(), err)
	}
	// A rule stored before writes refused text on tag rules still loads:
	// one rule that does not compile stops routing by every rule.
	old := validRule()
	old.On = []string{"tag"}
	if err := ValidateRule(old); err == nil {
		t.Fatal("a tag rule testing text was accepted on write")
	}
	if _, err := Compile([]Rule{validRule(), func() Rule { r := old; r.ID = "old"; return r }()}); err != nil {
		t.Fatalf("a stored tag rule testing text does not load: %v", err)
	}
}

func TestRFC3339Year_IsJudgedInUTC(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"0000-01-01T00:00:00Z":      true,
		"9999-12-31T23:59:59Z":      true,
		"9999-12-31T18:00:00-05:00": true,  // 23:00 UTC
		"9999-12-31T23:00:00-05:00": false, // year 10000 in UTC
		"0000-01-01T00:30:00+01:00": false, // year -1 in UTC
	} {
		if got := RFC3339Year(mustTime(t, s)); got != want {
			t.Errorf("RFC3339Year(%s) = %v, want %v", s, got, want)
		}
	}
}
