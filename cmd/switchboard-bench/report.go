package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one measured figure: a ceiling, an ingest level, a claim level
// (saturated or paced) or a memory reading.
type Row struct {
	Section     string             `json:"section"` // ceiling | ingest | claim | paced | memory
	Name        string             `json:"name"`
	Store       string             `json:"store,omitempty"`
	Concurrency int                `json:"concurrency,omitempty"`
	Batch       int                `json:"batch,omitempty"`
	Queue       int                `json:"queue,omitempty"`
	Rate        float64            `json:"rate"`
	Unit        string             `json:"unit"`
	P50ms       float64            `json:"p50_ms,omitempty"`
	P99ms       float64            `json:"p99_ms,omitempty"`
	Errors      int64              `json:"errors,omitempty"`
	Seconds     float64            `json:"seconds,omitempty"`
	Extra       map[string]float64 `json:"extra,omitempty"`
	Ratios      map[string]float64 `json:"ratios,omitempty"`
	Note        string             `json:"note,omitempty"`
	ErrMsgs     []string           `json:"errors_first,omitempty"`
}

// Target is one of the targets with its verdict.
type Target struct {
	Name    string `json:"name"`
	Verdict string `json:"verdict"` // PASS | FAIL | SKIP
	Detail  string `json:"detail"`
}

// Results is everything one run measured.
type Results struct {
	Started    time.Time          `json:"started"`
	Finished   time.Time          `json:"finished"`
	Args       []string           `json:"args"`
	Quick      bool               `json:"quick"`
	Machine    Machine            `json:"machine"`
	Probes     []Probe            `json:"cpu_probes"` // the fixed CPU work, at the start of each phase and at the end
	ServerLog  string             `json:"server_log_level"`
	Rows       []Row              `json:"rows"`
	Contention []contentionResult `json:"contention"`
	Targets    []Target           `json:"targets"`
	Skipped    []string           `json:"skipped,omitempty"`
}

// find returns the row of a section, name, store and concurrency.
func (r *Results) find(section, name, store string, c, queue int) *Row {
	for i := range r.Rows {
		x := &r.Rows[i]
		if x.Section == section && x.Name == name && x.Store == store && (c < 0 || x.Concurrency == c) && (queue < 0 || x.Queue == queue) {
			return x
		}
	}
	return nil
}

// ceiling names.
const (
	ceilNoop    = "http-noop-fiber"
	ceilNetHTTP = "generator-net/http"
	ceilGC      = "bolt-group-commit"
	ceilBatch   = "bolt-Batch"
	ceilSetNX   = "redis-SET-NX"
	ceilEval    = "redis-EVALSHA"
)

func ratio(a float64, b *Row) (float64, bool) {
	if b == nil || b.Rate <= 0 {
		return 0, false
	}
	return a / b.Rate, true
}

// computeRatios sets each Switchboard figure's ratio to its ceiling, and
// the targets.
func (r *Results) computeRatios() {
	maxGC := (*Row)(nil)
	for i := range r.Rows {
		x := &r.Rows[i]
		if x.Section == "ceiling" && x.Name == ceilGC && (maxGC == nil || x.Concurrency > maxGC.Concurrency) {
			maxGC = x
		}
	}
	for i := range r.Rows {
		x := &r.Rows[i]
		if x.Section != "ingest" && x.Section != "claim" {
			continue
		}
		x.Ratios = map[string]float64{}
		set := func(name string, v float64, ceiling *Row) {
			if q, ok := ratio(v, ceiling); ok {
				x.Ratios[name] = q
			}
		}
		noop := r.find("ceiling", ceilNoop, "", x.Concurrency, -1)
		gc := r.find("ceiling", ceilGC, "", x.Concurrency, -1)
		eval := r.find("ceiling", ceilEval, "redis", x.Concurrency, -1)
		switch x.Section {
		case "ingest":
			req := x.Extra["req_per_s"]
			set("req_vs_http_noop", req, noop)
			if x.Store == "bolt" {
				if x.Batch == 0 {
					set("msg_vs_group_commit", x.Rate, gc)
				} else {
					set("msg_vs_group_commit_max", x.Rate, maxGC)
				}
			} else {
				set("msg_vs_evalsha", x.Rate, eval)
			}
		case "claim":
			// A cycle is three requests and three durable writes.
			set("req_vs_http_noop", 3*x.Rate, noop)
			if x.Store == "bolt" {
				set("writes_vs_group_commit", 3*x.Rate, gc)
			} else {
				set("writes_vs_evalsha", 3*x.Rate, eval)
			}
		}
	}
	r.Targets = r.targets()
}

func (r *Results) targets() []Target {
	var out []Target
	add := func(name string, ok bool, skip bool, detail string) {
		v := "PASS"
		switch {
		case skip:
			v = "SKIP"
		case !ok:
			v = "FAIL"
		}
		out = append(out, Target{Name: name, Verdict: v, Detail: detail})
	}
	// Ingest against the group-commit ceiling at 64.
	{
		in := r.find("ingest", "single", "bolt", 64, -1)
		gc := r.find("ceiling", ceilGC, "", 64, -1)
		name := "bbolt durable ingest at 64 clients >= 50% of message-shaped group commit at 64"
		if in == nil || gc == nil {
			add(name, false, true, "not measured (needs 64 clients and the group-commit ceiling)")
		} else {
			q := in.Rate / gc.Rate
			add(name, q >= 0.5, false, fmt.Sprintf("%.0f msg/s vs %.0f msg/s = %.0f%%", in.Rate, gc.Rate, 100*q))
		}
		in256 := r.find("ingest", "single", "bolt", 256, -1)
		name = "bbolt ingest keeps rising from 64 to 256 clients"
		if in == nil || in256 == nil {
			add(name, false, true, "not measured")
		} else {
			add(name, in256.Rate > in.Rate, false, fmt.Sprintf("%.0f -> %.0f msg/s", in.Rate, in256.Rate))
		}
	}
	// Claim latency and flatness, per store.
	for _, st := range []string{"bolt", "redis"} {
		var queues []int
		for _, x := range r.Rows {
			if x.Section == "claim" && x.Store == st && !slices.Contains(queues, x.Queue) {
				queues = append(queues, x.Queue)
			}
		}
		if len(queues) == 0 {
			continue
		}
		slices.Sort(queues)
		big := queues[len(queues)-1]
		name := fmt.Sprintf("%s claim-next p99 <= 5 ms at 100 agents with 1M queued", st)
		if c := r.find("claim", "claim-reply-release", st, 100, 1_000_000); c != nil {
			detail := fmt.Sprintf("p99 %.2f ms (p50 %.2f ms)", c.P99ms, c.P50ms)
			if p := r.find("paced", "claim-reply-release", st, 100, 1_000_000); p != nil {
				detail += fmt.Sprintf("; paced at %.0f cycles/s: p99 %.2f ms (p50 %.2f ms)", p.Extra["offered_cycles_per_s"], p.P99ms, p.P50ms)
			}
			add(name, c.P99ms <= 5, false, detail)
		} else if c := r.find("claim", "claim-reply-release", st, -1, big); c != nil {
			add(name, false, true, fmt.Sprintf("not measured at that size; largest queue %s at %d agents: p99 %.2f ms", human(big), c.Concurrency, c.P99ms))
		}
		if len(queues) < 2 {
			continue
		}
		small := queues[0]
		for _, x := range r.Rows {
			if x.Section != "claim" || x.Store != st || x.Queue != small {
				continue
			}
			y := r.find("claim", "claim-reply-release", st, x.Concurrency, big)
			if y == nil || x.Rate <= 0 {
				continue
			}
			d := y.Rate/x.Rate - 1
			add(fmt.Sprintf("%s claim throughput flat within 20%% from %s to %s queued, %d agents", st, human(small), human(big), x.Concurrency),
				d >= -0.2 && d <= 0.2, false, fmt.Sprintf("%.0f -> %.0f cycles/s (%+.0f%%); p99 %.2f -> %.2f ms", x.Rate, y.Rate, 100*d, x.P99ms, y.P99ms))
		}
	}
	// Redis ingest against EVALSHA.
	{
		name := "Redis ingest at 64 clients >= 25% of raw EVALSHA at 64"
		in := r.find("ingest", "single", "redis", 64, -1)
		ev := r.find("ceiling", ceilEval, "redis", 64, -1)
		switch {
		case in == nil || ev == nil:
			add(name, false, true, "not measured: "+strings.Join(r.Skipped, "; "))
		default:
			q := in.Rate / ev.Rate
			add(name, q >= 0.25, false, fmt.Sprintf("%.0f msg/s vs %.0f ops/s = %.0f%%", in.Rate, ev.Rate, 100*q))
		}
	}
	for _, c := range r.Contention {
		add(fmt.Sprintf("%s: %d agents racing for %d threads never make two holders", c.Store, c.Agents, c.Threads),
			strings.HasPrefix(c.AuditVerdict, "ok"), false, c.AuditVerdict)
	}
	return out
}

func fmtRate(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func fmtMS(v float64) string {
	if v == 0 {
		return "-"
	}
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func fmtRatio(m map[string]float64, keys ...string) string {
	var parts []string
	for _, k := range keys {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%.0f%%", 100*v))
		} else {
			parts = append(parts, "-")
		}
	}
	return strings.Join(parts, "\t")
}

// printReport writes the tables.
func (r *Results) printReport(w io.Writer) {
	fmt.Fprintf(w, "Switchboard benchmark, run %s (%s), quick=%v\n", r.Started.UTC().Format(time.RFC3339),
		r.Finished.Sub(r.Started).Round(time.Second), r.Quick)
	fmt.Fprintf(w, "Machine: %s\n", r.Machine)
	if len(r.Probes) > 0 {
		var ps []string
		for _, p := range r.Probes {
			ps = append(ps, fmt.Sprintf("%.0f ms %s", p.Ms, p.At))
		}
		fmt.Fprintf(w, "CPU probe (the same single-threaded work each time; compare runs by it): %s\n", strings.Join(ps, ", "))
	}
	fmt.Fprintf(w, "Server: the switchboard binary, rate limits off, --log-level %s, over loopback; client: fasthttp, one connection per worker\n\n", r.ServerLog)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "CEILINGS (same run)")
	fmt.Fprintln(tw, "ceiling\tstore\tconc\trate\tunit\tp50 ms\tp99 ms\tbench CPU us/unit\t")
	for _, x := range r.Rows {
		if x.Section == "ceiling" {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%.0f\t\n", x.Name, dash(x.Store), x.Concurrency, fmtRate(x.Rate), x.Unit,
				fmtMS(x.P50ms), fmtMS(x.P99ms), x.Extra["bench_cpu_us_per_unit"])
		}
	}
	tw.Flush()

	fmt.Fprintln(w, "\nINGEST (durable: 2xx after fsync / AOF always)")
	fmt.Fprintln(tw, "store\tmode\tclients\tmsg/s\treq/s\tp50 ms\tp99 ms\terrors\tserver CPU us/msg\tserver cores\tredis scripts/cmds/CPU per msg\tvs group commit\tvs EVALSHA\treq vs no-op\t")
	for _, x := range r.Rows {
		if x.Section == "ingest" {
			gc := fmtRatio(x.Ratios, "msg_vs_group_commit")
			if x.Batch > 0 && x.Store == "bolt" {
				gc = fmtRatio(x.Ratios, "msg_vs_group_commit_max") + " (of max)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%.0f\t%.2f\t%s\t%s\t%s\t%s\t\n", x.Store, x.Name, x.Concurrency, fmtRate(x.Rate),
				fmtRate(x.Extra["req_per_s"]), fmtMS(x.P50ms), fmtMS(x.P99ms), x.Errors,
				x.Extra["server_cpu_us_per_unit"], x.Extra["server_cores"], redisPer(x), gc,
				fmtRatio(x.Ratios, "msg_vs_evalsha"), fmtRatio(x.Ratios, "req_vs_http_noop"))
		}
	}
	tw.Flush()

	fmt.Fprintln(w, "\nCLAIM (cycle = claim-next + reply + release; queue kept full by follow-ups, a new thread after three answers)")
	fmt.Fprintln(tw, "store\tqueue\tagents\tcycles/s\tclaim p50\tclaim p99\tcycle p50\tcycle p99\tqueued before/after\tempty\terrors\tserver CPU us/cycle\tredis scripts/cmds/CPU per cycle\twrites vs gc\twrites vs EVALSHA\treq vs no-op\t")
	for _, x := range r.Rows {
		if x.Section == "claim" {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%.0f/%.0f\t%.0f\t%d\t%.0f\t%s\t%s\t%s\t%s\t\n", x.Store, human(x.Queue), x.Concurrency, fmtRate(x.Rate),
				fmtMS(x.P50ms), fmtMS(x.P99ms), fmtMS(x.Extra["cycle_p50_ms"]), fmtMS(x.Extra["cycle_p99_ms"]),
				x.Extra["queued_before"], x.Extra["queued_after"], x.Extra["empty_claims"], x.Errors, x.Extra["server_cpu_us_per_unit"], redisPer(x),
				fmtRatio(x.Ratios, "writes_vs_group_commit"), fmtRatio(x.Ratios, "writes_vs_evalsha"), fmtRatio(x.Ratios, "req_vs_http_noop"))
		}
	}
	tw.Flush()

	if slices.ContainsFunc(r.Rows, func(x Row) bool { return x.Section == "paced" }) {
		fmt.Fprintln(w, "\nCLAIM PACED (the same cycles on a fixed schedule below saturation; latency counts from the scheduled start)")
		fmt.Fprintln(tw, "store\tqueue\tagents\toffered cycles/s\tcycles/s\tclaim p50\tclaim p99\tcycle p50\tcycle p99\tempty\terrors\tserver CPU us/cycle\tserver cores\t")
		for _, x := range r.Rows {
			if x.Section == "paced" {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s (%.0f%%)\t%s\t%s\t%s\t%s\t%s\t%.0f\t%d\t%.0f\t%.2f\t\n", x.Store, human(x.Queue), x.Concurrency,
					fmtRate(x.Extra["offered_cycles_per_s"]), 100*x.Extra["paced_fraction"], fmtRate(x.Rate),
					fmtMS(x.P50ms), fmtMS(x.P99ms), fmtMS(x.Extra["cycle_p50_ms"]), fmtMS(x.Extra["cycle_p99_ms"]),
					x.Extra["empty_claims"], x.Errors, x.Extra["server_cpu_us_per_unit"], x.Extra["server_cores"])
			}
		}
		tw.Flush()
	}

	if len(r.Contention) > 0 {
		fmt.Fprintln(w, "\nCONTENTION (POST /threads/{id}/claim on the same threads; winners release at once)")
		fmt.Fprintln(tw, "store\tagents\tthreads\tattempts/s\tgrants/s\tconflicts per grant\tp50 ms\tp99 ms\terrors\taudit\t")
		for _, c := range r.Contention {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%.2f\t%s\t%s\t%d\t%s\t\n", c.Store, c.Agents, c.Threads, fmtRate(c.ClaimsPerSec),
				fmtRate(c.SuccessPerSec), c.ConflictsPerOK, fmtMS(c.P50ms), fmtMS(c.P99ms), c.Errors, c.AuditVerdict)
		}
		tw.Flush()
	}

	fmt.Fprintln(w, "\nMEMORY")
	fmt.Fprintln(tw, "store\tqueued threads\tRSS idle MiB\t(anon)\tRSS after claims MiB\t(anon)\tpeak (HWM) MiB\tbytes/thread\tstore size MiB\tprefill s\tAOF rewrite s\t")
	for _, x := range r.Rows {
		if x.Section == "memory" {
			size := x.Extra["file_bytes"] + x.Extra["redis_bytes"]
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%s\t\n", x.Store, human(x.Queue),
				x.Extra["rss_idle_mib"], x.Extra["anon_idle_mib"], x.Extra["rss_after_mib"], x.Extra["anon_after_mib"],
				x.Extra["hwm_mib"], x.Extra["bytes_per_thread"], size/(1<<20), x.Extra["prefill_seconds"], fmtSeconds(x.Extra["aof_rewrite_seconds"]))
		}
	}
	tw.Flush()

	fmt.Fprintln(w, "\nTARGETS")
	for _, t := range r.Targets {
		fmt.Fprintf(w, "  [%s] %s: %s\n", t.Verdict, t.Name, t.Detail)
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "  note: %s\n", s)
	}
	var errs []string
	for _, x := range r.Rows {
		for _, e := range x.ErrMsgs {
			errs = append(errs, fmt.Sprintf("%s %s %s c=%d: %s", x.Section, x.Store, x.Name, x.Concurrency, e))
		}
	}
	for _, c := range r.Contention {
		for _, e := range c.ErrMsgs {
			errs = append(errs, fmt.Sprintf("contention %s: %s", c.Store, e))
		}
	}
	if len(errs) > 0 {
		fmt.Fprintln(w, "\nFIRST ERRORS")
		for _, e := range errs {
			fmt.Fprintln(w, "  "+e)
		}
	}
}

// redisPer shows a Redis row's script calls and commands per unit.
func redisPer(x Row) string {
	sc, ok := x.Extra["redis_scripts_per_unit"]
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f/%.2f, %.0f us", sc, x.Extra["redis_cmds_per_unit"], x.Extra["redis_cpu_us_per_unit"])
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeFiles writes results.json, results.csv and table.txt into dir.
func (r *Results) writeFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), js, 0o644); err != nil {
		return err
	}
	var sb strings.Builder
	r.printReport(&sb)
	if err := os.WriteFile(filepath.Join(dir, "table.txt"), []byte(sb.String()), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "results.csv"))
	if err != nil {
		return err
	}
	defer f.Close()
	cw := csv.NewWriter(f)
	cw.Write([]string{"section", "store", "name", "concurrency", "batch", "queue", "rate", "unit", "p50_ms", "p99_ms", "errors", "seconds", "ratios", "extra"})
	kv := func(m map[string]float64) string {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			parts = append(parts, k+"="+strconv.FormatFloat(m[k], 'g', 6, 64))
		}
		return strings.Join(parts, ";")
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	for _, x := range r.Rows {
		cw.Write([]string{x.Section, x.Store, x.Name, strconv.Itoa(x.Concurrency), strconv.Itoa(x.Batch), strconv.Itoa(x.Queue),
			num(x.Rate), x.Unit, num(x.P50ms), num(x.P99ms), strconv.FormatInt(x.Errors, 10), num(x.Seconds), kv(x.Ratios), kv(x.Extra)})
	}
	for _, c := range r.Contention {
		cw.Write([]string{"contention", c.Store, "claim-race", strconv.Itoa(c.Agents), "0", strconv.Itoa(c.Threads),
			num(c.ClaimsPerSec), "attempt/s", num(c.P50ms), num(c.P99ms), strconv.FormatInt(c.Errors, 10), num(c.MeasuredWindow),
			"", kv(map[string]float64{"conflicts_per_success": c.ConflictsPerOK, "successes_per_s": c.SuccessPerSec,
				"double_holders": float64(c.DoubleHolders), "fence_regressions": float64(c.FenceRegress)})})
	}
	cw.Flush()
	return cw.Error()
}

// fmtSeconds is "-" for nothing measured.
func fmtSeconds(v float64) string {
	if v <= 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}
