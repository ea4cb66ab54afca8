package routing

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The fuzz tests below run over their seed corpus (the f.Add calls and
// testdata/fuzz/<Name>) with every `go test`; `go test -fuzz <Name>
// ./routing` explores further.

// ruleFields are the paths a refused rule may name.
var ruleFields = regexp.MustCompile(`^(` +
	`id|position|when\.min_followers|when\.text_regex|when\.schedule\.timezone|then\.team|then\.priority|` +
	`(on|when\.(networks|kinds|profiles|text_any|tags_any|languages)|then\.add_tags)(\[\d+\])?|` +
	`when\.schedule\.windows(\[\d+\](\.days(\[\d+\])?|\.start|\.end))?` +
	`)$`)

// FuzzRuleJSON decodes arbitrary bytes as a rule, as POST /api/v1/rules
// does, and runs it over an arbitrary text. Validation either names a field
// of the rule or accepts a rule whose pattern is within MaxRegexLen;
// Compile agrees with ValidateRule; evaluating never panics and decides only
// what the rule says. Go's regexp (RE2) is linear in the text, so
// "catastrophic" patterns such as (a+)+$ are only long, never slow.
func FuzzRuleJSON(f *testing.F) {
	for _, seed := range []struct{ rule, text string }{
		{`{"id": "ig-complaints", "position": 10, "enabled": true, "on": ["message"],
		   "when": {"networks": ["instagram"], "kinds": ["dm","comment"], "profiles": ["@acme"],
		            "text_any": ["refund","broken"], "text_regex": "order\\s*#\\d+", "tags_any": ["vip"],
		            "author_verified": true, "min_followers": 10000, "languages": ["es"],
		            "schedule": {"timezone": "Europe/Madrid", "inside": false,
		                         "windows": [{"days": ["mon"], "start": "09:00", "end": "17:00"}]}},
		   "then": {"team": "care", "add_tags": ["complaint"], "priority": "high", "close": false}, "stop": true}`,
			"My ORDER #123 arrived broken"},
		{`{"id": "evil", "when": {"text_regex": "(a+)+$"}, "then": {"add_tags": ["x"]}}`, strings.Repeat("a", 5000) + "!"},
		{`{"id": "evil2", "when": {"text_regex": "(a|aa)*b"}}`, strings.Repeat("a", 5000)},
		{`{"id": "evil3", "when": {"text_regex": "(.*a){20}"}}`, strings.Repeat("a", 3000)},
		{`{"id": "evil4", "when": {"text_regex": "(x+x+)+y"}}`, strings.Repeat("x", 5000)},
		{`{"id": "rep", "when": {"text_regex": "a{1000}"}}`, strings.Repeat("a", 1000)},
		{`{"id": "rep2", "when": {"text_regex": "(a{1000}){1000}"}}`, "a"},
		{`{"id": "wide", "when": {"text_regex": "[^z]{1000}z"}}`, strings.Repeat("a", 2000)},
		{`{"id": "wide2", "when": {"text_regex": "` + strings.Repeat(`[^z]{100}`, 19) + `z"}}`, strings.Repeat("a", 2000)},
		{`{"id": "alt", "when": {"text_regex": "` + strings.Repeat("abc|", 200) + `z"}}`, "xyz"},
		{`{"id": "long", "when": {"text_regex": "` + strings.Repeat("a", MaxRegexLen+1) + `"}}`, "a"},
		{`{"id": "bad-re", "when": {"text_regex": "(unclosed"}}`, "x"},
		{`{"id": "flags", "when": {"text_regex": "(?-i)ABC|(?s).\\z|\\pL+|[[:^alpha:]]"}}`, "abc\n"},
		{`{"id": "fold", "when": {"text_any": ["ſtraße", "K"]}}`, "STRASSE \u212a"},
		{`{"id": "tz", "when": {"schedule": {"timezone": "../../etc/passwd", "windows": [{"days": ["mon"], "start": "09:00", "end": "17:00"}]}}}`, ""},
		{`{"id": "win", "when": {"schedule": {"windows": [{"days": ["mon", "xyz"], "start": "9:00", "end": "25:00"}]}}}`, ""},
		{`{"id": "tags", "on": ["tag", "reply"], "then": {"add_tags": ["Upper"], "priority": "urgent!"}}`, ""},
		{`{"id": "x", "position": -1}`, ""},
		{`{"id": "x", "when": {"min_followers": -5}}`, ""},
		{`{"id": "x", "when": {"profiles": [" "]}}`, ""},
		{`{"id": "x", "then": {"team": "Not A Slug"}}`, ""},
		{`{"id": "", "when": null, "then": null}`, ""},
		{`[]`, ""}, {`{"id": 5}`, ""}, {`{`, ""},
	} {
		f.Add([]byte(seed.rule), seed.text)
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte, text string) {
		var r Rule
		if json.Unmarshal(data, &r) != nil {
			return
		}
		err := ValidateRule(r)
		rs, cerr := Compile([]Rule{r})
		// Compile accepts what ValidateRule does, and also stored rules
		// whose pattern predates the bound on its compiled size.
		if cerr != nil && err == nil || err != nil && cerr == nil && checkRegexProgram(r.When.TextRegex) == nil {
			t.Fatalf("ValidateRule says %v, Compile says %v", err, cerr)
		}
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("ValidateRule returned %T %v, want a *FieldError", err, err)
			}
			if !ruleFields.MatchString(fe.Field) || fe.Message == "" {
				t.Fatalf("ValidateRule error names %q (%q), not a field of the rule", fe.Field, fe.Message)
			}
			return
		}
		if n := utf8.RuneCountInString(r.When.TextRegex); n > MaxRegexLen {
			t.Fatalf("a pattern of %d characters was accepted", n)
		}
		if n := programSize(t, r.When.TextRegex); n > MaxRegexProgram {
			t.Fatalf("a pattern compiling to %d instructions was accepted", n)
		}
		for _, on := range RuleEvents {
			facts := Facts{Network: "instagram", Kind: "dm", Profile: text, Text: text, Language: text,
				Tags: []string{NormalizeTag(text), "vip"}, AuthorVerified: len(text)%2 == 0, AuthorFollowers: len(text) * 100}
			d := rs.Evaluate(on, facts, now)
			if len(d.Matched) == 0 {
				if d.Team != "" || len(d.AddTags) > 0 || d.Priority != "" || d.Close {
					t.Fatalf("no rule matched, yet the decision is %+v", d)
				}
				continue
			}
			if !slices.Equal(d.Matched, []string{r.ID}) {
				t.Fatalf("matched %v, want [%s]", d.Matched, r.ID)
			}
			listens := r.On
			if len(listens) == 0 {
				listens = []string{"message"}
			}
			if (r.Enabled != nil && !*r.Enabled) || !slices.Contains(listens, on) {
				t.Fatalf("rule matched on %q though disabled or not listening: %+v", on, r)
			}
			if d.Team != r.Then.Team || d.Priority != r.Then.Priority || d.Close != r.Then.Close {
				t.Fatalf("decision %+v does not follow then %+v", d, r.Then)
			}
		}
	})
}

// programSize is the number of instructions pattern compiles to, as
// compileRule compiles it.
func programSize(t *testing.T, pattern string) int {
	t.Helper()
	if pattern == "" {
		return 0
	}
	re, err := syntax.Parse("(?i)"+pattern, syntax.Perl)
	if err != nil {
		t.Fatalf("an accepted pattern does not parse: %v", err)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		t.Fatalf("an accepted pattern does not compile: %v", err)
	}
	return len(prog.Inst)
}

// TestValidateRule_BoundsTheCompiledPattern: a short pattern with counted
// repetition that compiles past MaxRegexProgram is refused on
// when.text_regex (matching "[^z]{1000}z" over a 20000-character message
// took about a second, and 19 of them in a row five), while long but plain
// patterns and stored rules still compile.
func TestValidateRule_BoundsTheCompiledPattern(t *testing.T) {
	t.Parallel()
	words := make([]string, 50)
	for i := range words {
		words[i] = fmt.Sprintf("word%05d", i)
	}
	for _, c := range []struct {
		pattern string
		field   string
	}{
		{`[^z]{1000}z`, "when.text_regex"},
		{strings.Repeat(`[^z]{100}`, 19) + "z", "when.text_regex"},
		{`(?:a|b|c){999}`, "when.text_regex"},
		{`[^z]{900}z`, ""},
		{`order\s*#\d{1,12}`, ""},
		{`\b(?:` + strings.Join(words, "|") + `)\b`, ""},
		{strings.Repeat("x", MaxRegexLen), ""},
	} {
		r := Rule{ID: "r", When: When{TextRegex: c.pattern}}
		wantField(t, ValidateRule(r), c.field)
		if _, err := Compile([]Rule{r}); err != nil {
			t.Fatalf("Compile(%.40q): %v; stored rules must keep compiling", c.pattern, err)
		}
	}
}

// zones are time zones with unusual histories: a skipped day (Apia), a day
// repeated (Sitka's 1867 change of sides), half-hour and negative DST,
// offsets beyond ±12 hours, Ramadan DST, a station that changes twice a
// year by two hours.
var zones = []string{"UTC", "Europe/Madrid", "America/New_York", "Pacific/Apia", "America/Sitka",
	"Australia/Lord_Howe", "Europe/Dublin", "Africa/Casablanca", "Antarctica/Troll", "Asia/Kathmandu",
	"Pacific/Kiritimati", "Etc/GMT+12", "America/Santiago", "Asia/Manila", "America/St_Johns", "Pacific/Chatham"}

// FuzzSchedule decodes an agent's schedule (timezone, shifts, time_off) as
// the agents endpoints do. Validation names fields; OnShift and NextChange
// never panic, whatever they are given. For a valid schedule OnShift agrees,
// at the fuzzed instant, with a brute-force reading of the contract written
// independently below, and NextChange is the first change: nothing changes
// before it and something does at it.
func FuzzSchedule(f *testing.F) {
	for _, seed := range []struct {
		schedule string
		zone     uint8
		at       int64
	}{
		{`{"timezone": "Europe/Madrid", "shifts": [{"days": ["mon","tue","wed","thu","fri"], "start": "09:00", "end": "17:00"}],
		   "time_off": [{"from": "2026-12-24T00:00:00Z", "to": "2026-12-27T00:00:00Z"}]}`, 0, 1795420800},
		{`{"timezone": "Europe/Madrid", "shifts": [{"days": ["sun"], "start": "01:30", "end": "03:30"}]}`, 0, 1792976400},    // the day clocks go back
		{`{"timezone": "Europe/Madrid", "shifts": [{"days": ["sun"], "start": "02:30", "end": "02:45"}]}`, 0, 1774746000},    // a shift inside the gap
		{`{"timezone": "America/New_York", "shifts": [{"days": ["sat"], "start": "22:00", "end": "06:00"}]}`, 0, 1793527200}, // overnight across a change
		{`{"timezone": "Pacific/Apia", "shifts": [{"days": ["fri"], "start": "09:00", "end": "17:00"}]}`, 0, 1325239200},     // the Friday Samoa skipped
		{`{"timezone": "America/Sitka", "shifts": [{"days": ["fri","sat"], "start": "00:00", "end": "24:00"}]}`, 0, -3225223727},
		{`{"timezone": "Australia/Lord_Howe", "shifts": [{"days": ["sun"], "start": "01:45", "end": "02:15"}]}`, 0, 1775318400},
		{`{"shifts": [{"days": ["mon"], "start": "23:00", "end": "00:00"}, {"days": ["tue"], "start": "00:00", "end": "01:00"}]}`, 3, 1795471200},
		{`{"shifts": [], "time_off": [{"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}, {"from": "2026-01-02T00:00:00Z", "to": "2026-01-03T00:00:00Z"}]}`, 0, 1767225600},
		{`{"timezone": "Local", "shifts": [{"days": ["mon"], "start": "09:00", "end": "09:00"}]}`, 1, 0},
		{`{"timezone": "../../../../etc/passwd", "shifts": [{"days": ["funday"], "start": "9", "end": "24:01"}]}`, 2, 0},
		{`{"time_off": [{"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, {"to": "2026-01-01T00:00:00Z"}]}`, 4, 0},
		{`{"shifts": [{"days": ["mon","mon","sun"], "start": "00:00", "end": "24:00"}]}`, 5, 1 << 40},
		{`{}`, 6, -1 << 40}, {`null`, 7, 0}, {`{"shifts": {}}`, 8, 0},
	} {
		f.Add([]byte(seed.schedule), seed.zone, seed.at)
	}
	f.Fuzz(func(t *testing.T, data []byte, zone uint8, at int64) {
		var sch struct {
			Timezone string    `json:"timezone"`
			Shifts   []Shift   `json:"shifts"`
			TimeOff  []TimeOff `json:"time_off"`
		}
		if json.Unmarshal(data, &sch) != nil {
			return
		}
		valid := true
		loc, err := LoadZone("timezone", sch.Timezone)
		if err != nil {
			wantFieldUnder(t, err, "timezone")
			loc = nil
		}
		if sch.Timezone == "" {
			loc = fuzzZone(t, zone) // "" means UTC; let the fuzzer pick a harder zone
		}
		if err := ValidateShifts("shifts", sch.Shifts); err != nil {
			wantFieldUnder(t, err, "shifts")
			valid = false
		}
		if err := ValidateTimeOff("time_off", sch.TimeOff); err != nil {
			wantFieldUnder(t, err, "time_off")
			valid = false
		}
		// Instants from 1800 to 2200, so history (local mean time, the
		// first DST rules) and the rule-based future are both reached.
		const from, span = -5364662400, 400 * 365 * 86400
		now := time.Unix(from+int64(uint64(at)%span), 0)

		got := OnShift(loc, sch.Shifts, sch.TimeOff, now) // nil loc and invalid shifts must not panic either
		next := NextChange(loc, sch.Shifts, sch.TimeOff, now)
		if loc == nil || !valid || len(sch.Shifts) > 8 || len(sch.TimeOff) > 8 {
			return
		}
		if want := bruteOnShift(loc, sch.Shifts, sch.TimeOff, now); got != want {
			t.Fatalf("OnShift at %s (%s) = %v, brute force says %v; shifts %+v time_off %+v",
				now.In(loc).Format(time.RFC3339), loc, got, want, sch.Shifts, sch.TimeOff)
		}
		if next.IsZero() {
			// Never changes: no sample of the next two weeks differs.
			for h := time.Duration(1); h <= 14*24; h += 7 {
				if s := now.Add(h * time.Hour); bruteOnShift(loc, sch.Shifts, sch.TimeOff, s) != got {
					t.Fatalf("NextChange at %s says no change, but at %s on shift is %v", now, s, !got)
				}
			}
			return
		}
		if !next.After(now) {
			t.Fatalf("NextChange(%s) = %s, not after now", now, next)
		}
		if bruteOnShift(loc, sch.Shifts, sch.TimeOff, next) == got {
			t.Fatalf("NextChange(%s) = %s, but on shift is %v at both", now.In(loc), next.In(loc), got)
		}
		gap := next.Sub(now)
		for i := 1; i < 16; i++ {
			s := now.Add(gap / 16 * time.Duration(i))
			if bruteOnShift(loc, sch.Shifts, sch.TimeOff, s) != got {
				t.Fatalf("NextChange(%s) = %s, but on shift already changes by %s", now.In(loc), next.In(loc), s.In(loc))
			}
		}
		if s := next.Add(-time.Nanosecond); bruteOnShift(loc, sch.Shifts, sch.TimeOff, s) != got {
			t.Fatalf("NextChange(%s) = %s, but on shift already changes just before it", now.In(loc), next.In(loc))
		}
	})
}

// TestOnShift_AgreesWithBruteForceOnRandomSchedules is the fuzz target's
// property over random valid schedules, so that every `go test` checks it
// on random shifts across the zones above, 1800 to 2200.
func TestOnShift_AgreesWithBruteForceOnRandomSchedules(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	clock := func(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }
	for range 500 {
		loc := fuzzZone(t, uint8(rng.IntN(256)))
		var shifts []Shift
		for range rng.IntN(4) {
			days := []string{Days[rng.IntN(7)]}
			for _, d := range Days {
				if rng.IntN(3) == 0 && !slices.Contains(days, d) {
					days = append(days, d)
				}
			}
			start, end := rng.IntN(96)*15, rng.IntN(97)*15
			if end != start {
				shifts = append(shifts, Shift{Days: days, Start: clock(start), End: clock(end)})
			}
		}
		now := time.Unix(-5364662400+rng.Int64N(400*365*86400), 0) // 1800 to 2200
		var off []TimeOff
		if rng.IntN(4) == 0 {
			from := now.Add(time.Duration(rng.IntN(200)-100) * time.Hour)
			off = append(off, TimeOff{From: from, To: from.Add(time.Duration(1+rng.IntN(100)) * time.Hour)})
		}
		got := OnShift(loc, shifts, off, now)
		if want := bruteOnShift(loc, shifts, off, now); got != want {
			t.Fatalf("OnShift at %s (%s) = %v, brute force says %v; shifts %+v time_off %+v",
				now.In(loc).Format(time.RFC3339), loc, got, want, shifts, off)
		}
		next := NextChange(loc, shifts, off, now)
		if next.IsZero() {
			continue
		}
		if bruteOnShift(loc, shifts, off, next) == got || bruteOnShift(loc, shifts, off, next.Add(-time.Nanosecond)) != got {
			t.Fatalf("NextChange(%s) = %s in %s is not where on shift changes; shifts %+v time_off %+v",
				now.In(loc), next.In(loc), loc, shifts, off)
		}
	}
}

func fuzzZone(t *testing.T, i uint8) *time.Location {
	t.Helper()
	name := zones[int(i)%len(zones)]
	loc, err := LoadZone("timezone", name)
	if err != nil {
		t.Fatalf("zone %s: %v", name, err)
	}
	return loc
}

// wantFieldUnder checks that err is a *FieldError naming list or a path
// below it.
func wantFieldUnder(t *testing.T, err error, list string) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("%s: %T %v, want a *FieldError", list, err, err)
	}
	if (fe.Field != list && !strings.HasPrefix(fe.Field, list+"[")) || fe.Message == "" {
		t.Fatalf("%s: error names %q (%q)", list, fe.Field, fe.Message)
	}
}

// bruteOnShift reads the contract literally, sharing no code with shifts.go:
// a shift on local date D runs from the first instant the clocks in loc show
// D start or later, to the first instant they show its end or later (the
// next day's when end <= start); "24:00" and an end of "00:00" are the next
// midnight. Time off wins; no shifts means always on.
func bruteOnShift(loc *time.Location, shifts []Shift, off []TimeOff, now time.Time) bool {
	for _, o := range off {
		if !now.Before(o.From) && now.Before(o.To) {
			return false
		}
	}
	if len(shifts) == 0 {
		return true
	}
	y, m, d := now.In(loc).Date()
	for delta := -2; delta <= 1; delta++ {
		day := time.Date(y, m, d+delta, 12, 0, 0, 0, time.UTC)
		for _, s := range shifts {
			if !slices.Contains(s.Days, strings.ToLower(day.Weekday().String()[:3])) {
				continue
			}
			start, end := minutes(s.Start), minutes(s.End)
			if end == 0 {
				end = 24 * 60
			}
			endDay := day
			if end <= start {
				endDay = day.AddDate(0, 0, 1)
			}
			if !now.Before(firstShowing(loc, day, start)) && now.Before(firstShowing(loc, endDay, end)) {
				return true
			}
		}
	}
	return false
}

func minutes(hhmm string) int {
	t, err := time.Parse("15:04", hhmm)
	if err != nil {
		if hhmm == "24:00" {
			return 24 * 60
		}
		panic("brute force given an unvalidated shift: " + hhmm)
	}
	return t.Hour()*60 + t.Minute()
}

// firstShowing is the first instant at which clocks in loc show the local
// date of day at min minutes after midnight, or later. It walks the periods
// of constant offset around that wall time, found by sampling the offset
// every 20 minutes and bisecting each change to the second (it does not
// trust Time.ZoneBounds, which past the zone's table can report a period
// ending before the instant asked about). Within a period the clock runs
// evenly, so the first instant there is max(period start, wall-offset).
func firstShowing(loc *time.Location, day time.Time, min int) time.Time {
	y, m, d := day.Date()
	wall := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() + int64(min)*60
	offset := func(sec int64) int64 { _, o := time.Unix(sec, 0).In(loc).Zone(); return int64(o) }
	const step = 20 * 60
	limit := wall + 17*3600 // no offset was ever 17 hours
	for t := wall - 17*3600; t < limit; {
		off := offset(t)
		end := t + step
		for end < limit && offset(end) == off {
			end += step
		}
		if offset(end) != off { // bisect the change in (end-step, end]
			lo := max(t, end-step)
			for lo+1 < end {
				if mid := (lo + end) / 2; offset(mid) == off {
					lo = mid
				} else {
					end = mid
				}
			}
		}
		if c := max(t, wall-off); c < end {
			return time.Unix(c, 0)
		}
		t = end
	}
	panic(fmt.Sprintf("no period shows the wall time %d in %s", wall, loc))
}

// FuzzTimeZone gives LoadZone arbitrary names: it never panics, every
// refusal names the field, and it never reads a file outside the zone
// database (an absolute path, or one climbing out with "..").
func FuzzTimeZone(f *testing.F) {
	for _, name := range []string{"", "UTC", "Local", "Europe/Madrid", "America/Argentina/ComodRivadavia", "Etc/GMT+5",
		"posixrules", "zone.tab", "Europe", "Europe/", "europe/madrid", "../../etc/passwd", "/etc/passwd",
		"Europe/../../../../etc/passwd", "..", "./UTC", "Europe//Madrid", "\\etc\\passwd", "UTC\x00",
		"Europe/Madrid\x00../../etc/passwd", strings.Repeat("A/", 3000), "%2e%2e/etc/passwd"} {
		f.Add(name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		loc, err := LoadZone("timezone", name)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "timezone" || fe.Message == "" {
				t.Fatalf("LoadZone(%q): %T %v, want a *FieldError on timezone", name, err, err)
			}
			return
		}
		if loc == nil {
			t.Fatalf("LoadZone(%q) gave neither a zone nor an error", name)
		}
		if escapesZoneDB(name) {
			t.Fatalf("LoadZone(%q) loaded a path outside the zone database", name)
		}
		if name == "Local" {
			t.Fatal(`LoadZone accepted "Local"`)
		}
		_ = time.Date(2026, 3, 29, 2, 30, 0, 0, loc).String() // the zone is usable
	})
}

// escapesZoneDB reports whether a zone name, read as a path below the zone
// database, could name a file outside it.
func escapesZoneDB(name string) bool {
	if strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`) || strings.ContainsRune(name, 0) {
		return true
	}
	for _, part := range strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return true
		}
	}
	return false
}

// TestLoadZone_NeverReadsFilesOutsideTheZoneDatabase plants a valid zone
// file outside the zone database and tries to reach it by absolute and by
// climbing paths: every one is refused, though the file itself is a zone.
func TestLoadZone_NeverReadsFilesOutsideTheZoneDatabase(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("/usr/share/zoneinfo/Europe/Madrid")
	if err != nil {
		t.Skip("no system zone database to copy a zone file from")
	}
	if _, err := time.LoadLocationFromTZData("Zone", src); err != nil {
		t.Fatalf("the planted file is not a zone: %v", err)
	}
	planted := filepath.Join(t.TempDir(), "planted", "Zone")
	if err := os.MkdirAll(filepath.Dir(planted), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planted, src, 0o644); err != nil {
		t.Fatal(err)
	}
	climb := strings.Repeat("../", 20) + strings.TrimPrefix(planted, "/")
	for _, name := range []string{planted, climb, "Europe/" + climb, "./" + climb, `\` + planted, "UTC/../" + climb} {
		if _, err := LoadZone("timezone", name); err == nil {
			t.Errorf("LoadZone(%q) loaded a file outside the zone database", name)
		} else {
			wantField(t, err, "timezone")
		}
	}
}
