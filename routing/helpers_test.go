package routing

import (
	"errors"
	"testing"
	"time"
	_ "time/tzdata" // tests must not depend on the machine's zoneinfo
)

func ptr[T any](v T) *T { return &v }

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// wantField checks that err is a *FieldError naming field.
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("want no error, got %v", err)
		}
		return
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("want *FieldError on %q, got %T %v", field, err, err)
	}
	if fe.Field != field {
		t.Fatalf("want field %q, got %q (%v)", field, fe.Field, err)
	}
	if fe.Message == "" {
		t.Fatalf("field %q: empty message", field)
	}
}
