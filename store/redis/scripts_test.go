package redis

import (
	"regexp"
	"strings"
	"testing"
)

// TestScripts_CarryEveryLibDefinitionTheyUse checks libFor's cut of lib.lua
// independently of its parser: for every script, each name lib.lua defines
// at its top level that the assembled script refers to (outside comments)
// is defined in it. A missing one would only fail when the branch using it
// runs, as "attempt to call a nil value".
func TestScripts_CarryEveryLibDefinitionTheyUse(t *testing.T) {
	lib := luaSource("lib")
	def := regexp.MustCompile(`(?m)^(?:local\s+function\s+([A-Za-z_]\w*)|function\s+([A-Za-z_]\w*\.[A-Za-z_]\w*)|local\s+([A-Za-z_][\w, ]*?)\s*(?:=|$))`)
	defLine := map[string]string{}
	for _, m := range def.FindAllStringSubmatch(lib, -1) {
		names := []string{m[1] + m[2]}
		if m[3] != "" {
			names = strings.Split(m[3], ",")
		}
		for _, n := range names {
			defLine[strings.TrimSpace(n)] = m[0]
		}
	}
	if len(defLine) < 50 || defLine["NOW"] == "" || defLine["K.thread"] == "" || defLine["save_thread"] == "" {
		t.Fatalf("found only %d definitions in lib.lua: the pattern is off", len(defLine))
	}
	entries, err := luaFiles.ReadDir("lua")
	if err != nil {
		t.Fatal(err)
	}
	scripts := 0
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".lua")
		if name == "lib" {
			continue
		}
		scripts++
		body := luaSource(name)
		src := evalSource(name)
		var code strings.Builder
		for _, line := range strings.Split(src, "\n") {
			line, _, _ = strings.Cut(line, "--")
			code.WriteString(line + "\n")
		}
		for n, line := range defLine {
			used := regexp.MustCompile(`(^|[^\w.])` + regexp.QuoteMeta(n) + `\b`).MatchString(code.String())
			if used && !strings.Contains(src, line) {
				t.Errorf("script %s uses %s but does not carry its definition %q", name, n, line)
			}
		}
		if len(src) >= len(lib)+len(body) {
			t.Errorf("script %s carries all of lib.lua", name)
		}
	}
	if scripts < 30 {
		t.Fatalf("only %d scripts found", scripts)
	}
}
