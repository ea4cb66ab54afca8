package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchboard/switchboard/inbox"
)

// readConfigDoc reads configuration as code from a YAML (or JSON) file,
// in the API's shapes; unknown fields are refused so typos are caught.
func readConfigDoc(path string) (inbox.ConfigDoc, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return inbox.ConfigDoc{}, nil, err
	}
	doc, js, err := parseConfigDoc(data)
	if err != nil {
		return doc, nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc, js, nil
}

// parseConfigDoc decodes YAML (or JSON) strictly and returns it as JSON too.
// The YAML is read as YAML 1.2 (yaml.v3): `on`, `no`, `yes` and `off` are
// strings, as a rule's `on:` field and the language code `no` need, not the
// booleans YAML 1.1 made of them.
func parseConfigDoc(data []byte) (inbox.ConfigDoc, []byte, error) {
	var doc inbox.ConfigDoc
	var tree any
	if err := yaml.Unmarshal(data, &tree); err != nil {
		return doc, nil, err
	}
	if tree == nil {
		tree = map[string]any{}
	}
	js, err := json.Marshal(tree)
	if err != nil {
		return doc, nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return doc, js, configError(data, err)
	}
	return doc, js, nil
}

// configError words a decoding error for the file's author: the file is
// YAML (or JSON), so no "json:", and an unknown field with its line.
func configError(data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "json: ")
	var field string
	if _, scanErr := fmt.Sscanf(msg, "unknown field %q", &field); scanErr == nil {
		// The line, when the name is on one line only (a name that is a
		// good key elsewhere would point at the wrong place).
		found := 0
		for i, line := range strings.Split(string(data), "\n") {
			k := strings.TrimLeft(line, " -{,\t")
			if strings.HasPrefix(k, field+":") || strings.HasPrefix(k, strconv.Quote(field)+":") ||
				strings.Contains(line, " "+field+":") || strings.Contains(line, "{"+field+":") || strings.Contains(line, strconv.Quote(field)+":") {
				if found != 0 {
					return fmt.Errorf("unknown field %q", field)
				}
				found = i + 1
			}
		}
		if found != 0 {
			return fmt.Errorf("line %d: unknown field %q", found, field)
		}
	}
	return errors.New(msg)
}

// apply is `switchboard apply -f FILE`: create or update teams, agents,
// rules and saved replies on a running server from one YAML file.
func apply(args []string) error {
	fs := flag.NewFlagSet("switchboard apply", flag.ContinueOnError)
	file := fs.String("f", "", "YAML or JSON file with teams, agents, rules, saved_replies (required)")
	prune := fs.Bool("prune", false, "also delete the teams, agents (revoking their keys), rules and saved replies the server has and the file does not")
	var r remote
	r.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("apply: -f FILE is required")
	}
	_, js, err := readConfigDoc(*file)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := "/api/v1/config"
	if *prune {
		path += "?prune=true"
	}
	req, err := http.NewRequestWithContext(ctx, "POST", path, bytes.NewReader(js))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.do(req)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	defer resp.Body.Close()
	var res inbox.ApplyResult
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &res); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	printApply(os.Stdout, res)
	return nil
}

func printApply(w io.Writer, res inbox.ApplyResult) {
	for _, line := range []struct {
		what  string
		names []string
	}{{"created", res.Created}, {"updated", res.Updated}, {"unchanged", res.Unchanged}} {
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
		if !slices.ContainsFunc(res.NotDeleted, func(s string) bool { return strings.HasPrefix(s, n+":") }) {
			fmt.Fprintf(w, "%-9s %s (stored, not in the file; --prune deletes it)\n", "kept", n)
		}
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
