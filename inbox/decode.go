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
		field := fieldPath(te.Field)
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
// contract names fields ("time_off[0].from").
func fieldPath(p string) string {
	var b strings.Builder
	for i, part := range strings.Split(p, ".") {
		switch {
		case part != "" && strings.Trim(part, "0123456789") == "":
			b.WriteString("[" + part + "]")
		case i > 0:
			b.WriteString("." + part)
		default:
			b.WriteString(part)
		}
	}
	return b.String()
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
