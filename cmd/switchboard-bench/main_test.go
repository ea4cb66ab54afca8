package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuickRun runs the whole bench in --quick mode with tiny windows, so
// the tool keeps compiling and working end to end. It is not a timed test:
// it only checks that every phase produced its figures, that the audit
// found no double holder and that the files and plots were written.
func TestQuickRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server and runs the bench end to end; skipped with -short")
	}
	dir := t.TempDir()
	args := []string{"--quick", "--duration", "300ms", "--ceiling-duration", "200ms", "--warmup", "50ms",
		"--queues", "200,2k", "--out", dir, "--plots", dir, "--work", filepath.Join(dir, "work")}
	if _, err := exec.LookPath("redis-server"); err == nil {
		args = append(args, "--redis-server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{"CEILINGS", "INGEST", "CLAIM", "CONTENTION", "MEMORY", "TARGETS"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report has no %s section:\n%s", want, stdout.String())
		}
	}

	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range res.Rows {
		if r.Store == "" || r.Store == "bolt" {
			count[r.Section]++
		}
		if r.Section != "memory" && r.Rate <= 0 {
			t.Errorf("%s %s %s c=%d queue=%d measured nothing (errors: %v)", r.Section, r.Store, r.Name, r.Concurrency, r.Queue, r.ErrMsgs)
		}
	}
	// Ceilings at 1, 4, 16 (no-op, group commit, Batch) plus the net/http
	// generator; ingest single and batch at 1 and 16; claim at 2 queues x 2
	// agent counts, and paced at 16 agents per queue; memory per queue.
	for section, want := range map[string]int{"ceiling": 10, "ingest": 4, "claim": 4, "paced": 2, "memory": 2} {
		if count[section] != want {
			t.Errorf("%d bolt %s rows, want %d", count[section], section, want)
		}
	}
	// On Redis (AOF on) each filled queue's AOF was rewritten before the
	// claims, so no rewrite of the fill runs in a measured window.
	for _, m := range res.Rows {
		if m.Section == "memory" && m.Store == "redis" && m.Extra["aof_rewrite_seconds"] <= 0 {
			t.Errorf("redis queue=%d: no AOF rewrite after the fill (%v)", m.Queue, m.Extra)
		}
	}
	// A paced level offers half the rate its closed loop measured.
	for _, p := range res.Rows {
		if p.Section != "paced" {
			continue
		}
		c := res.find("claim", p.Name, p.Store, p.Concurrency, p.Queue)
		if c == nil {
			t.Errorf("%s paced level at queue=%d c=%d has no closed-loop level", p.Store, p.Queue, p.Concurrency)
		} else if off := p.Extra["offered_cycles_per_s"]; off != 0.5*c.Rate {
			t.Errorf("%s paced level at queue=%d offered %v cycles/s, want half of %v", p.Store, p.Queue, off, c.Rate)
		}
	}
	if !strings.Contains(stdout.String(), "CLAIM PACED") {
		t.Errorf("report has no CLAIM PACED section")
	}
	// The CPU probe ran before each phase and at the end, and is printed.
	var at []string
	for _, p := range res.Probes {
		if p.Ms <= 0 {
			t.Errorf("CPU probe %s: %v ms", p.At, p.Ms)
		}
		at = append(at, p.At)
	}
	if want := "before ceilings,before ingest,before claim,before contention,at the end"; strings.Join(at, ",") != want {
		t.Errorf("CPU probes at %q, want %q", at, want)
	}
	if !strings.Contains(stdout.String(), "CPU probe (") {
		t.Errorf("report has no CPU probe line")
	}
	if len(res.Contention) == 0 {
		t.Fatal("no contention result")
	}
	for _, c := range res.Contention {
		if !strings.HasPrefix(c.AuditVerdict, "ok") {
			t.Errorf("%s contention audit: %s", c.Store, c.AuditVerdict)
		}
		if c.Successes == 0 {
			t.Errorf("%s contention: no grant in the window", c.Store)
		}
	}
	for _, name := range []string{"bench-ingest.png", "bench-claim.png"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(f); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		f.Close()
	}
	for _, name := range []string{"results.csv", "table.txt"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", name, err)
		}
	}
}

func TestParseInts(t *testing.T) {
	got, err := parseInts("1k, 100k,1M,7")
	if err != nil {
		t.Fatal(err)
	}
	want := []int{1000, 100000, 1000000, 7}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("parseInts = %v, want %v", got, want)
		}
	}
	for _, bad := range []string{"", "x", "-1", "0"} {
		if _, err := parseInts(bad); err == nil {
			t.Errorf("parseInts(%q) accepted", bad)
		}
	}
}

// TestParseOptions_AQuickRunWritesOutsideDocs: a quick run's figures do not
// overwrite the committed ones in docs/ unless told to.
func TestParseOptions_AQuickRunWritesOutsideDocs(t *testing.T) {
	o, err := parseOptions([]string{"--quick"}, io.Discard)
	if err != nil || strings.HasPrefix(o.out, "docs") || strings.HasPrefix(o.plots, "docs") || o.out == "" {
		t.Fatalf("--quick writes to %q and %q (%v)", o.out, o.plots, err)
	}
	if o, err := parseOptions([]string{"--quick", "--out", "here", "--plots", ""}, io.Discard); err != nil || o.out != "here" || o.plots != "" {
		t.Fatalf("--quick with --out and --plots: %q %q (%v)", o.out, o.plots, err)
	}
	if o, err := parseOptions(nil, io.Discard); err != nil || o.out != "docs/bench" || o.plots != "docs" {
		t.Fatalf("a full run writes to %q and %q (%v)", o.out, o.plots, err)
	}
}

func TestParseOptions_Paced(t *testing.T) {
	for arg, ok := range map[string]bool{"0": true, "0.5": true, "0.99": true, "1": false, "1.5": false, "-0.1": false} {
		o, err := parseOptions([]string{"--paced", arg}, io.Discard)
		if (err == nil) != ok {
			t.Errorf("--paced %s: %v, want accepted %v", arg, err, ok)
		}
		if ok && fmt.Sprint(o.paced) != arg {
			t.Errorf("--paced %s: %v", arg, o.paced)
		}
	}
	if o, err := parseOptions(nil, io.Discard); err != nil || o.paced != 0.5 {
		t.Errorf("default --paced %v, %v; want 0.5", o.paced, err)
	}
}

// TestRefill_AThreadIsAnsweredAtMostThreeTimes: the claim levels reopen a
// released thread with a follow-up until it has been answered threadCycles
// times, and then refill its place with a new thread, so that a small queue
// does not mean long histories.
func TestRefill_AThreadIsAnsweredAtMostThreeTimes(t *testing.T) {
	f := &refiller{ch: make(chan threadRef, 10)}
	ref := threadRef{Network: "instagram", Profile: "@acme", ExternalID: "pre-7"}
	for i := 1; i <= 2*threadCycles; i++ {
		f.add("t-7", ref)
		got := <-f.ch
		want := ref
		if i%threadCycles == 0 {
			want = threadRef{Network: "instagram"}
		}
		if got != want {
			t.Fatalf("answer %d: refill %+v, want %+v", i, got, want)
		}
	}
	if n := f.pending.Load(); n != 2*threadCycles {
		t.Fatalf("%d refills pending, want %d", n, 2*threadCycles)
	}
}
