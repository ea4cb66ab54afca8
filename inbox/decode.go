package inbox

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	segjson "github.com/segmentio/encoding/json"
)

// MaxJSONDepth is how deeply a request body's arrays and objects may nest.
// The contract's deepest shape is a handful of levels; the decoder
// recurses once per level with no limit of its own, so an 8 MiB body of
// "[" would overflow the stack and kill the process.
const MaxJSONDepth = 64

// DecodeJSON decodes a JSON body into v. A value of the wrong type is a
// FieldError naming its field; anything else malformed names "body", as
// does nesting deeper than MaxJSONDepth. Unknown fields are ignored, as the
// contract says, and a key is the field it names exactly: "Role" beside
// "role" is an unknown field, not a second role that wins (encoding/json
// would match keys in any case, the last one written winning).
func DecodeJSON(body []byte, v any) error {
	if !utf8.Valid(body) {
		// JSON is UTF-8 (RFC 8259); the decoder would put U+FFFD in place
		// of the bad bytes and store text nobody sent.
		return fieldErr("body", "is not valid UTF-8")
	}
	return decodeJSON(body, v)
}

// DecodeBatch reads a batch body, {"messages": [...]}, leaving each message
// as it came, to be decoded (by DecodeJSON) and refused on its own: one
// message's bytes that are not UTF-8 refuse that message, not the batch.
func DecodeBatch(body []byte) ([]json.RawMessage, error) {
	var in struct {
		Messages []json.RawMessage `json:"messages"`
	}
	if len(body) > 0 {
		if err := decodeJSON(body, &in); err != nil {
			return nil, err
		}
	}
	if in.Messages == nil {
		return nil, fieldErr("messages", "is required")
	}
	return in.Messages, nil
}

func decodeJSON(body []byte, v any) error {
	if jsonDepth(body) > MaxJSONDepth {
		return fieldErr("body", "nests arrays and objects too deeply")
	}
	rest, err := segjson.Parse(body, v, segjson.DontMatchCaseInsensitiveStructFields)
	if err == nil && len(rest) > 0 {
		return fieldErr("body", "malformed JSON") // a second value after the first
	}
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := fieldPath(reflect.TypeOf(v), te.Field)
		if field == "" {
			field = "body"
		}
		if te.Type == reflect.TypeFor[time.Time]() {
			return fieldErr(field, "must be an RFC 3339 time")
		}
		return fieldErr(field, "must be "+jsonKind(te.Type.Kind().String()))
	}
	return fieldErr("body", "malformed JSON")
}

// fieldPath writes a decoder's dotted path ("time_off.0.from") the way the
// contract names fields ("time_off[0].from"): each struct step is named by
// its JSON tag, found by walking t, the type decoded into.
func fieldPath(t reflect.Type, p string) string {
	var b strings.Builder
	for i, part := range strings.Split(p, ".") {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case part != "" && strings.Trim(part, "0123456789") == "" &&
			(t == nil || t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
			b.WriteString("[" + part + "]")
			if t != nil {
				t = t.Elem()
			}
			continue
		case t != nil && t.Kind() == reflect.Struct:
			part, t = JSONField(t, part)
		case t != nil && t.Kind() == reflect.Map:
			t = t.Elem()
		default:
			t = nil
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(part)
	}
	return b.String()
}

// JSONField finds the field of struct type t that the JSON key decodes
// into, as DecodeJSON matches keys (exactly; an embedded struct's fields
// count as t's), and returns its contract name and type (nil when no
// field takes the key).
func JSONField(t reflect.Type, key string) (string, reflect.Type) {
	for _, f := range reflect.VisibleFields(t) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case !f.IsExported() || name == "-" || f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			continue
		case name == "":
			name = f.Name
		}
		if name == key {
			return name, f.Type
		}
	}
	return key, nil
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "int", "int64", "uint64":
		return "an integer"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "of another type"
}

// jsonDepth is the deepest nesting of arrays and objects in body, not
// counting brackets inside strings; it stops counting past MaxJSONDepth.
func jsonDepth(body []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			if depth > deepest {
				if deepest = depth; deepest > MaxJSONDepth {
					return deepest
				}
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}
