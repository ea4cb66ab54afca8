package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Contention: many agents race for the same few threads with
// POST /threads/{id}/claim; each winner releases at once. Afterwards every
// thread's audit trail is replayed to check that no thread ever had two
// holders and that fences only grew.

type contentionResult struct {
	Store          string  `json:"store"`
	Agents         int     `json:"agents"`
	Threads        int     `json:"threads"`
	Successes      int64   `json:"successes"` // in the measured window
	Conflicts      int64   `json:"conflicts"` // 409 lock_held in the window
	ConflictsPerOK float64 `json:"conflicts_per_success"`
	ClaimsPerSec   float64 `json:"claim_attempts_per_s"`
	SuccessPerSec  float64 `json:"successes_per_s"`
	P50ms, P99ms   float64 // claim attempt latency
	Errors         int64   `json:"errors"`
	// Audit check over the whole run (warm-up included).
	GrantsClient   int64    `json:"grants_seen_by_clients"`
	GrantsAudit    int64    `json:"grants_in_audit"`
	DoubleHolders  int      `json:"double_holders"`
	FenceRegress   int      `json:"fence_regressions"`
	AuditVerdict   string   `json:"audit_verdict"`
	ErrMsgs        []string `json:"errors_first,omitempty"`
	MeasuredWindow float64  `json:"seconds"`
}

type auditEvent struct {
	ID   uint64         `json:"id"`
	Type string         `json:"type"`
	Data map[string]any `json:"data"`
}

func runContention(ctx context.Context, b *bench, sb storeBackend) error {
	srv, err := sb.fresh(ctx, "contention")
	if err != nil {
		return err
	}
	defer srv.stop()
	key, err := srv.createIngestKey()
	if err != nil {
		return err
	}
	nThreads, nAgents := b.opt.contThreads, b.opt.contAgents
	// The threads to fight over.
	buf := batchJSON(nil, fmt.Sprintf("race-%d", time.Now().UnixNano()), 1, nThreads)
	var br struct {
		Results []struct {
			ThreadID string `json:"thread_id"`
		} `json:"results"`
	}
	if err := srv.admin.expect(200, "POST", "/api/v1/messages/batch", key, buf, &br); err != nil {
		return err
	}
	threads := make([]string, 0, nThreads)
	for _, r := range br.Results {
		if r.ThreadID == "" {
			return fmt.Errorf("contention: a thread was not created")
		}
		threads = append(threads, r.ThreadID)
	}
	agents, err := srv.createAgents(ctx, "race", nAgents, benchTeam)
	if err != nil {
		return err
	}
	cl := newClient(srv.addr, nAgents)
	defer cl.close()
	var grants atomic.Int64
	var succ, conf atomic.Int64 // window counts
	body := []byte(`{}`)
	res := runLoad(ctx, b.progress, runSpec{
		Label: fmt.Sprintf("%s: contention %d agents x %d threads", srv.storeName(), nAgents, nThreads), Workers: nAgents,
		Warmup: b.opt.warmup, Duration: b.opt.duration, Unit: "claim",
		Op: func(ctx context.Context, w int, r *recorder) bool {
			id := threads[rand.IntN(len(threads))]
			var cr claimResp
			t0 := time.Now()
			status, rb, err := cl.do("POST", "/api/v1/threads/"+id+"/claim", agents[w].Key, body, &cr, false)
			if err != nil {
				r.fail(err)
				return true
			}
			r.observe("claim", time.Since(t0))
			switch {
			case status == 200:
				grants.Add(1)
				if r.measuring() {
					succ.Add(1)
				}
				if err := cl.expect(200, "POST", "/api/v1/threads/"+id+"/release", agents[w].Key,
					jsonBody(map[string]string{"token": cr.Lock.Token}), nil); err != nil {
					r.fail(err)
				}
			case status == 409:
				if r.measuring() {
					conf.Add(1)
				}
			default:
				r.fail(&statusError{method: "POST", path: "/api/v1/threads/" + id + "/claim", status: status, body: string(rb)})
			}
			r.done(1)
			return true
		},
	})
	cr := contentionResult{Store: srv.storeName(), Agents: nAgents, Threads: nThreads,
		Successes: succ.Load(), Conflicts: conf.Load(), Errors: res.Errors, ErrMsgs: res.ErrMsgs,
		P50ms: res.Pct("claim", 0.5), P99ms: res.Pct("claim", 0.99), MeasuredWindow: res.Elapsed.Seconds(),
		GrantsClient: grants.Load()}
	if cr.Successes > 0 {
		cr.ConflictsPerOK = float64(cr.Conflicts) / float64(cr.Successes)
	}
	cr.ClaimsPerSec = res.Rate()
	cr.SuccessPerSec = float64(cr.Successes) / max(res.Elapsed.Seconds(), 1e-9)
	if err := auditCheck(ctx, srv, threads, &cr); err != nil {
		return err
	}
	b.addContention(cr)
	return nil
}

// auditCheck replays every thread's events: a grant (claimed, offered,
// assigned) while someone holds the lock is a double holder; a release,
// close, expiry, unlock or transfer ends the holder.
func auditCheck(ctx context.Context, srv *server, threads []string, cr *contentionResult) error {
	var mu sync.Mutex
	var wg sync.WaitGroup
	errc := make(chan error, len(threads))
	sem := make(chan struct{}, 8)
	for _, id := range threads {
		wg.Add(1)
		sem <- struct{}{}
		go func(id string) {
			defer wg.Done()
			defer func() { <-sem }()
			evs, err := threadEvents(srv, id)
			if err != nil {
				errc <- err
				return
			}
			var grants int64
			doubles, regress := 0, 0
			holder := ""
			var lastFence float64
			for _, ev := range evs {
				switch ev.Type {
				case "thread.claimed", "thread.offered", "thread.assigned":
					who, _ := ev.Data["agent_id"].(string)
					if who == "" {
						who, _ = ev.Data["to_agent"].(string)
					}
					if holder != "" {
						doubles++
					}
					holder = who
					grants++
					if f, ok := ev.Data["fence"].(float64); ok {
						if f <= lastFence {
							regress++
						}
						lastFence = f
					}
				case "thread.released", "thread.closed", "lock.expired", "thread.unlocked", "thread.transferred":
					holder = ""
				}
			}
			mu.Lock()
			cr.GrantsAudit += grants
			cr.DoubleHolders += doubles
			cr.FenceRegress += regress
			mu.Unlock()
		}(id)
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	switch {
	case cr.DoubleHolders > 0 || cr.FenceRegress > 0:
		cr.AuditVerdict = fmt.Sprintf("FAIL: %d double holders, %d fence regressions", cr.DoubleHolders, cr.FenceRegress)
	case cr.GrantsAudit != cr.GrantsClient:
		cr.AuditVerdict = fmt.Sprintf("FAIL: clients got %d grants, the audit shows %d", cr.GrantsClient, cr.GrantsAudit)
	default:
		cr.AuditVerdict = fmt.Sprintf("ok: %d grants, never two holders, fences strictly increasing", cr.GrantsAudit)
	}
	return ctx.Err()
}

// threadEvents reads a thread's whole audit trail.
func threadEvents(srv *server, id string) ([]auditEvent, error) {
	var all []auditEvent
	cursor := ""
	for {
		var page struct {
			Items []auditEvent `json:"items"`
			Next  string       `json:"next_cursor"`
		}
		path := "/api/v1/threads/" + id + "/events?limit=500"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		if err := srv.admin.expect(200, "GET", path, adminKey, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.Next == "" || len(page.Items) == 0 {
			return all, nil
		}
		cursor = url.QueryEscape(page.Next)
	}
}
