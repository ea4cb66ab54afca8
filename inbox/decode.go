package inbox

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"time"

	segjson "github.com/segmentio/encoding/json"
)

// DecodeJSON decodes a JSON body into v. A value of the wrong type is a
// FieldError naming its field; anything else malformed names "body".
// Unknown fields are ignored, as the contract says.
func DecodeJSON(body []byte, v any) error {
	err := segjson.Unmarshal(body, v)
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
// contract names fields ("time_off[0].from"). The decoder gives object keys
// as the body spelled them, and a struct field takes its key in any case
// ("Author" fills author), so each struct step is named by its JSON tag,
// found by walking t, the type decoded into.
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
			part, t = structField(t, part)
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

// structField finds the field of struct type t that the JSON key decodes
// into, the way encoding/json matches keys (exactly, else ignoring case),
// and returns its contract name and type (nil when no field takes the key).
func structField(t reflect.Type, key string) (string, reflect.Type) {
	var folded reflect.StructField
	var foldedName string
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
		if foldedName == "" && strings.EqualFold(name, key) {
			folded, foldedName = f, name
		}
	}
	if foldedName != "" {
		return foldedName, folded.Type
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
