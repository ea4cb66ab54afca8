package main

import (
	"runtime/debug"
	"testing"
)

func TestTuneGC_DefaultsTo400AndLeavesAnExplicitGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	debug.SetGCPercent(100)
	tuneGC()
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Fatalf("GOGC unset: GC percent %d, want %d", got, gcPercent)
	}
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150) // what the runtime read from GOGC at start
	tuneGC()
	if got := debug.SetGCPercent(100); got != 150 {
		t.Fatalf("GOGC=150: GC percent %d, want 150 kept", got)
	}
}
