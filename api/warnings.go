package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// ruleResponse is a rule as written, with what in the request was not
// understood: the contract ignores unknown fields, but a misspelt
// condition ("network" for "networks") leaves a when that matches every
// message, so the answer says so.
type ruleResponse struct {
	store.Rule
	Warnings []string `json:"warnings,omitempty"`
}

// ruleWarnings lists the members of a rule's JSON body that no field of a
// rule reads, by path ("when.network"), and says when the when they leave
// matches everything.
func ruleWarnings(body []byte, r store.Rule) []string {
	var raw any
	if json.Unmarshal(body, &raw) != nil {
		return nil
	}
	var unknown []string
	unknownMembers(raw, reflect.TypeFor[ruleResponse](), "", &unknown) // an answer sent back is no mistake
	var out []string
	for _, path := range unknown {
		out = append(out, fmt.Sprintf("%s is not a rule field and was ignored", path))
	}
	if noCondition(r.When) && slices.ContainsFunc(unknown, func(p string) bool { return strings.HasPrefix(p, "when.") }) {
		out = append(out, "when has no condition left, so this rule matches every message")
	}
	return out
}

// configUnknown lists the members of a configuration document's JSON
// body that no configuration field reads, by path ("teamz",
// "rules[0].when.network").
func configUnknown(body []byte) []string {
	var raw any
	if json.Unmarshal(body, &raw) != nil {
		return nil
	}
	var unknown []string
	unknownMembers(raw, reflect.TypeFor[inbox.ConfigDoc](), "", &unknown)
	return unknown
}

// configWarnings says what in a configuration document was ignored, and
// which of its rules match every message for it, as ruleWarnings says of
// one rule.
func configWarnings(unknown []string, doc inbox.ConfigDoc) []string {
	var out []string
	for _, path := range unknown {
		out = append(out, path+" is not a configuration field and was ignored")
	}
	for i, r := range doc.Rules {
		at := fmt.Sprintf("rules[%d].when", i)
		if noCondition(r.When) && slices.ContainsFunc(unknown, func(p string) bool { return strings.HasPrefix(p, at+".") }) {
			out = append(out, at+" has no condition left, so this rule matches every message")
		}
	}
	return out
}

// noCondition reports whether w tests nothing (an empty list tests
// nothing either).
func noCondition(w routing.When) bool {
	return len(w.Networks)+len(w.Kinds)+len(w.Profiles)+len(w.TextAny)+len(w.TagsAny)+len(w.Languages) == 0 &&
		w.TextRegex == "" && w.AuthorVerified == nil && w.MinFollowers == nil && w.Schedule == nil
}

// unknownMembers appends to out the path of every member of v, a decoded
// JSON value, that type t (a struct, or a pointer or slice of one) has no
// field for, by their json names; embedded structs count as their fields.
func unknownMembers(v any, t reflect.Type, path string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch x := v.(type) {
	case []any:
		if t.Kind() == reflect.Slice {
			for i, e := range x {
				unknownMembers(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), out)
			}
		}
	case map[string]any:
		if t.Kind() != reflect.Struct {
			return
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if _, ft := inbox.JSONField(t, k); ft != nil { // as DecodeJSON matches them
				unknownMembers(x[k], ft, p, out)
			} else {
				*out = append(*out, p)
			}
		}
	}
}
