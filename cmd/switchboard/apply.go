package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchboard/switchboard/inbox"
)

// parseConfigDoc decodes YAML (or JSON) strictly and returns it as JSON too.
// The YAML is read as YAML 1.2 (yaml.v3): `on`, `no`, `yes` and `off` are
// strings, as a rule's `on:` field and the language code `no` need, not the
// booleans YAML 1.1 made of them. The tree is checked against the
// configuration's shape first (see checkNode), so a mistake is reported at
// its line and a number or boolean written where text is wanted is text.
func parseConfigDoc(data []byte) (inbox.ConfigDoc, []byte, error) {
	var doc inbox.ConfigDoc
	var root, next yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && err != io.EOF {
		return doc, nil, err
	}
	for {
		err := dec.Decode(&next)
		if err == io.EOF {
			break
		}
		if err != nil {
			return doc, nil, err
		}
		if len(next.Content) != 0 && next.Content[0].ShortTag() != "!!null" {
			return doc, nil, fmt.Errorf("line %d: a second document (after ---): write the configuration as one", next.Content[0].Line)
		}
		next = yaml.Node{}
	}
	unaliasScalars(&root)
	if err := checkNode(&root, reflect.TypeOf(doc), "", map[checked]bool{}); err != nil {
		return doc, nil, err
	}
	var tree any
	if err := root.Decode(&tree); err != nil {
		return doc, nil, err
	}
	top, _ := tree.(map[string]any)
	if top == nil {
		top = map[string]any{}
	}
	for k := range top {
		if strings.HasPrefix(k, "x-") {
			delete(top, k)
		}
	}
	tree = top
	js, err := json.Marshal(tree)
	if err != nil {
		return doc, nil, err
	}
	strict := json.NewDecoder(bytes.NewReader(js))
	strict.DisallowUnknownFields()
	if err := strict.Decode(&doc); err != nil {
		// checkNode has seen every field and kind: this is a backstop,
		// worded for a YAML file's author.
		return doc, js, errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return doc, js, nil
}

// checkNode walks a YAML node against the Go type the configuration
// decodes it into (through its JSON field names). It refuses an unknown
// field, or a value of the wrong kind, at its line; and it marks a plain
// number or boolean written where text is wanted (an id 42, a keyword 404,
// a tag 2024, a name true) as the text it was written as, "007" and "1.50"
// included, which YAML would otherwise hand over as 7 and 1.5 or refuse.
func checkNode(n *yaml.Node, t reflect.Type, path string, seen map[checked]bool) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := checkNode(c, t, path, seen); err != nil {
				return err
			}
		}
		return nil
	case yaml.AliasNode:
		// Each anchor once for each type it is used as: aliases of
		// aliases could make the walk exponential (YAML's "billion
		// laughs"), and a list of days used as a rule's and a shift's
		// days is checked as both.
		if seen[checked{n.Alias, t}] {
			return nil
		}
		seen[checked{n.Alias, t}] = true
		return checkNode(n.Alias, t, path, seen)
	case 0: // an empty file
		return nil
	}
	if t == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null") {
		return nil
	}
	want := kindWanted(t)
	switch {
	case t == reflect.TypeFor[time.Time]():
		// YAML reads 2026-12-24 as a time at midnight UTC, not in the
		// agent's time zone: a time is written in full, with its offset.
		if _, err := time.Parse(time.RFC3339Nano, n.Value); n.Kind != yaml.ScalarNode || err != nil {
			return wrongKind(n, path, "want a time with its offset, like 2026-12-24T00:00:00+01:00")
		}
		return nil
	case want == "":
		return nil
	case t.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			return wrongKind(n, path, want)
		}
		if tag := n.ShortTag(); tag == "!!int" || tag == "!!float" || tag == "!!bool" || tag == "!!timestamp" {
			n.Tag = "!!str"
		}
		return nil
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return wrongKind(n, path, want)
		}
		for i, c := range n.Content {
			if err := checkNode(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), seen); err != nil {
				return err
			}
		}
		return nil
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return wrongKind(n, path, want)
		}
		keys := map[string]int{} // field name → line, in this mapping
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			if key.ShortTag() == "!!merge" {
				// `<<: *defaults` (or a list of them) merges mappings of
				// the same shape.
				merged := []*yaml.Node{val}
				if val.Kind == yaml.SequenceNode {
					merged = val.Content
				}
				for _, m := range merged {
					if err := checkNode(m, t, path, seen); err != nil {
						return err
					}
				}
				continue
			}
			if path == "" && strings.HasPrefix(key.Value, "x-") {
				// An extension field at the top, as in Compose files: a
				// place for anchors (`x-weekdays: &weekdays [mon, tue]`).
				continue
			}
			name, ft := inbox.JSONField(t, key.Value)
			if ft == nil {
				return fmt.Errorf("line %d: %sunknown field %q", key.Line, prefix(path), key.Value)
			}
			if first, twice := keys[name]; twice {
				return fmt.Errorf("line %d: %s%q is written twice (line %d)", key.Line, prefix(path), name, first)
			}
			keys[name] = key.Line
			if err := checkNode(val, ft, joinPath(path, key.Value), seen); err != nil {
				return err
			}
		}
		return nil
	}
	// Numbers and booleans.
	ok := n.Kind == yaml.ScalarNode
	if ok {
		switch tag := n.ShortTag(); t.Kind() {
		case reflect.Bool:
			ok = tag == "!!bool"
		case reflect.Float32, reflect.Float64:
			ok = tag == "!!int" || tag == "!!float"
		default:
			// A whole number that fits: 5.0 is one too (YAML's authors
			// write it; the JSON sent is 5), 1e20 does not fit.
			var f float64
			ok = (tag == "!!int" || tag == "!!float") && n.Decode(&f) == nil && f == math.Trunc(f) && fits(f, t)
		}
	}
	if !ok {
		return wrongKind(n, path, want)
	}
	return nil
}

// fits reports whether the whole number f is in the range of integer
// type t.
func fits(f float64, t reflect.Type) bool {
	v := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return f >= 0 && f < math.Exp2(64) && !v.OverflowUint(uint64(f))
	}
	return f >= -math.Exp2(63) && f < math.Exp2(63) && !v.OverflowInt(int64(f))
}

// unaliasScalars replaces each alias of a scalar with a copy of it, at
// the alias's line, so one anchored value can be text in one place and a
// number in another (checkNode marks text where it is used). Aliases of
// lists and mappings stay: copying them could grow the tree without
// bound (YAML's "billion laughs").
func unaliasScalars(n *yaml.Node) {
	for _, c := range n.Content {
		if c.Kind == yaml.AliasNode {
			if c.Alias.Kind == yaml.ScalarNode {
				line, col := c.Line, c.Column
				*c = *c.Alias
				c.Anchor, c.Line, c.Column = "", line, col
			}
			continue
		}
		unaliasScalars(c)
	}
}

// wrongKind says what was wanted at n, and what was written when it fits
// on a line.
func wrongKind(n *yaml.Node, path, want string) error {
	if n.Kind == yaml.ScalarNode {
		return fmt.Errorf("line %d: %s%s, not %q", n.Line, prefix(path), want, n.Value)
	}
	return fmt.Errorf("line %d: %s%s", n.Line, prefix(path), want)
}

// mistakesAt writes the mistakes the service found in a document read
// from data, each at its line: "line 4: agents[0].timezone: ...; line 7: ...".
func mistakesAt(data []byte, err error) error {
	var all *inbox.FieldErrors
	var one *inbox.FieldError
	var list []*inbox.FieldError
	switch {
	case errors.As(err, &all):
		list = all.List
	case errors.As(err, &one):
		list = []*inbox.FieldError{one}
	default:
		return err
	}
	said := make([]string, len(list))
	for i, fe := range list {
		said[i] = atLine(data, fe.Field) + fe.Error()
	}
	if all != nil && all.More > 0 {
		said = append(said, fmt.Sprintf("and %d more", all.More))
	}
	return errors.New(strings.Join(said, "; "))
}

// atLine is "line N: " for the field the path names, or "".
func atLine(data []byte, path string) string {
	if line := fieldLine(data, path); line > 0 {
		return fmt.Sprintf("line %d: ", line)
	}
	return ""
}

// fieldLine finds the line of a field the server named by its path in the
// document ("agents[7].timezone", "rules[2].when.schedule.windows[0]"):
// the line of the deepest part of the path the file writes, 0 if none.
func fieldLine(data []byte, path string) int {
	var root yaml.Node
	if path == "" || yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return 0
	}
	n, line := root.Content[0], 0
	for _, part := range strings.Split(strings.ReplaceAll(path, "[", ".["), ".") {
		for n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		var next *yaml.Node
		if i, err := strconv.Atoi(strings.Trim(part, "[]")); err == nil && strings.HasPrefix(part, "[") {
			if n.Kind == yaml.SequenceNode && i >= 0 && i < len(n.Content) {
				next, line = n.Content[i], n.Content[i].Line
			}
		} else if key, val := member(n, part); key != nil {
			next, line = val, key.Line
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}

// member finds the key and value of a mapping's field in the mapping, or
// in what it merges (`<<`).
func member(n *yaml.Node, name string) (key, val *yaml.Node) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	var merged []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.ShortTag() == "!!merge" && v.Kind == yaml.SequenceNode:
			merged = append(merged, v.Content...)
		case k.ShortTag() == "!!merge":
			merged = append(merged, v)
		case k.Value == name:
			return k, v
		}
	}
	for _, m := range merged {
		if key, val = member(m, name); key != nil {
			return key, val
		}
	}
	return nil, nil
}

// prefix and joinPath write where a value is: teams[2].capacity.
func prefix(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// checked is a node checked as a type.
type checked struct {
	n *yaml.Node
	t reflect.Type
}

// kindWanted says what a value of type t is written as, or "" when the
// value is left to the decoder (a type with a decoder of its own).
func kindWanted(t reflect.Type) string {
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return ""
	}
	switch t.Kind() {
	case reflect.String:
		return "want text"
	case reflect.Bool:
		return "want true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "want a whole number"
	case reflect.Float32, reflect.Float64:
		return "want a number"
	case reflect.Slice:
		return "want a list"
	case reflect.Struct:
		return "want fields (name: value)"
	}
	return ""
}

// apply is `switchboard apply -f FILE`: create or update teams, agents,
// rules and saved replies on a running server from one YAML file.
func apply(args []string) error {
	fs := flag.NewFlagSet("switchboard apply", flag.ContinueOnError)
	file := fs.String("f", "", "YAML or JSON file with teams, agents, rules, saved_replies (required)")
	prune := fs.Bool("prune", false, "also delete the teams, agents (revoking their keys), rules and saved replies the server has and the file does not")
	dryRun := fs.Bool("dry-run", false, "check the file against the server and say what apply would change, changing nothing")
	var r remote
	r.flags(fs)
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("apply: -f FILE is required")
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	_, js, err := parseConfigDoc(data)
	if err != nil {
		return fmt.Errorf("apply: %s: %w", *file, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q := url.Values{}
	if *prune {
		q.Set("prune", "true")
	}
	if *dryRun {
		q.Set("dry_run", "true")
	}
	path := "/api/v1/config"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	resp, err := r.patient(ctx, "POST", path, js)
	if err != nil {
		// The server names the field ("agents[7].timezone"): say where
		// it is in the file, for each mistake it lists.
		var se *statusError
		if errors.As(err, &se) {
			b := se.contract()
			if n := len(b.Details.Errors) + b.Details.More; n > 1 {
				for _, m := range b.Details.Errors {
					fmt.Fprintf(os.Stderr, "%s: %s%s\n", *file, atLine(data, m.Field), m.Error())
				}
				if b.Details.More > 0 {
					fmt.Fprintf(os.Stderr, "%s: and %d more, not listed\n", *file, b.Details.More)
				}
				return fmt.Errorf("apply: %d mistakes in %s (server at %s answered %d); nothing was changed", n, *file, se.url, se.code)
			}
			if line := fieldLine(data, b.Details.Field); line > 0 {
				return fmt.Errorf("apply: %s: line %d: %w", *file, line, err)
			}
		}
		return fmt.Errorf("apply: %w", err)
	}
	defer resp.Body.Close()
	var res struct {
		inbox.ApplyResult
		Warnings []string `json:"warnings"` // what the server ignored (one older than this file's fields)
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &res); err != nil {
		return fmt.Errorf("apply: server at %s answered %d with what is not an apply's answer (%w): is --url Switchboard?", r.shown(), resp.StatusCode, err)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(os.Stderr, "%s: warning: %s\n", *file, w)
	}
	printApply(os.Stdout, res.ApplyResult, *prune)
	if n := len(res.NotDeleted); n > 0 {
		// The server's configuration is not the file's: a script or CI
		// job must see it.
		return fmt.Errorf("apply: %d not deleted (see above): the server still has what the file leaves out", n)
	}
	return nil
}

// printApply writes what an apply did, or (a dry run) would do.
func printApply(w io.Writer, res inbox.ApplyResult, prune bool) {
	created, updated := "created", "updated"
	if res.DryRun {
		created, updated = "would create", "would update"
	}
	for _, line := range []struct {
		what  string
		names []string
	}{{created, res.Created}, {updated, res.Updated}, {"unchanged", res.Unchanged}} {
		for _, n := range line.names {
			fmt.Fprintf(w, "%-9s %s\n", line.what, n)
		}
	}
	for _, n := range res.Deleted {
		fmt.Fprintf(w, "%-9s %s\n", "deleted", n)
	}
	for _, n := range res.NotDeleted {
		fmt.Fprintf(w, "%-9s %s\n", "not deleted", n)
	}
	for _, n := range res.Kept {
		switch {
		case res.DryRun && prune:
			fmt.Fprintf(w, "would delete %s (unless something still uses it)\n", n)
		case !slices.ContainsFunc(res.NotDeleted, func(s string) bool { return strings.HasPrefix(s, n+":") }):
			fmt.Fprintf(w, "%-9s %s (stored, not in the file; --prune deletes it)\n", "kept", n)
		}
	}
	if res.DryRun {
		fmt.Fprintln(w, "dry run: nothing was changed")
	}
	ids := make([]string, 0, len(res.AgentKeys))
	for id := range res.AgentKeys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(w, "key for new agent %s (shown once): %s\n", id, res.AgentKeys[id])
	}
}
