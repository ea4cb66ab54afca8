package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/routing"
)

// messageText is a typical customer message (about 200 characters).
const messageText = "Hi, my order arrived broken and I would like a refund or a replacement. " +
	"I have been a customer for years and this is the first time it happens. Can you help me today, please?"

// messageJSON appends one inbound message of about 400 bytes. The external
// id is run-n; threadExt "" starts a new thread per message.
func messageJSON(b []byte, run string, n uint64, network, threadExt string) []byte {
	b = append(b, `{"network":`...)
	b = appendQuoted(b, network)
	b = append(b, `,"external_id":"`...)
	b = append(b, run...)
	b = append(b, '-')
	b = strconv.AppendUint(b, n, 10)
	b = append(b, '"')
	if threadExt != "" {
		b = append(b, `,"thread_external_id":`...)
		b = appendQuoted(b, threadExt)
	}
	b = append(b, `,"profile":"@acme","kind":"dm","text":`...)
	b = appendQuoted(b, messageText)
	b = append(b, `,"author":{"id":"u-`...)
	b = strconv.AppendUint(b, n%100000, 10)
	b = append(b, `","handle":"@customer`...)
	b = strconv.AppendUint(b, n%100000, 10)
	b = append(b, `","name":"Bench Customer","followers":120,"verified":false},"language":"en","tags":[]}`...)
	return b
}

// batchJSON appends {"messages":[...]} with size new-thread messages
// numbered from first.
func batchJSON(b []byte, run string, first uint64, size int) []byte {
	b = append(b, `{"messages":[`...)
	for i := range size {
		if i > 0 {
			b = append(b, ',')
		}
		n := first + uint64(i)
		b = messageJSON(b, run, n, routing.Networks[n%uint64(len(routing.Networks))], "")
	}
	return append(b, "]}"...)
}

var errorItem = []byte(`"error":`)

// ingestLevel measures durable ingest at c clients, one message per request
// (batch 0) or batch messages per request.
func ingestLevel(ctx context.Context, b *bench, srv *server, key, storeName string, c, batch int) Row {
	cl := newClient(srv.addr, c)
	defer cl.close()
	run := fmt.Sprintf("in-%s-%d-%d-%d", storeName, c, batch, time.Now().UnixNano())
	var seq atomic.Uint64
	bufs := make([][]byte, c)
	mode, path, unit := "single", "/api/v1/messages", "msg"
	if batch > 0 {
		mode, path = fmt.Sprintf("batch%d", batch), "/api/v1/messages/batch"
	}
	cpu, rm, window := b.meters(srv)
	res := runLoad(ctx, b.progress, runSpec{
		Label: fmt.Sprintf("%s: ingest %s c=%d", storeName, mode, c), Workers: c,
		Warmup: b.opt.warmup, Duration: b.opt.duration, Unit: unit, Window: window,
		Op: func(ctx context.Context, w int, r *recorder) bool {
			if batch == 0 {
				n := seq.Add(1)
				bufs[w] = messageJSON(bufs[w][:0], run, n, routing.Networks[n%uint64(len(routing.Networks))], "")
				t0 := time.Now()
				if err := cl.expect(201, "POST", path, key, bufs[w], nil); err != nil {
					r.fail(err)
					return true
				}
				r.observe("req", time.Since(t0))
				r.done(1)
				return true
			}
			first := seq.Add(uint64(batch)) - uint64(batch) + 1
			bufs[w] = batchJSON(bufs[w][:0], run, first, batch)
			t0 := time.Now()
			status, body, err := cl.do("POST", path, key, bufs[w], nil, true)
			if err == nil && status != 200 {
				err = &statusError{method: "POST", path: path, status: status, body: string(body)}
			}
			if err != nil {
				r.fail(err)
				return true
			}
			r.observe("req", time.Since(t0))
			bad := bytes.Count(body, errorItem)
			if bad > 0 {
				r.fail(fmt.Errorf("batch: %d of %d items refused: %.200s", bad, batch, body))
			}
			r.done(int64(batch - bad))
			return true
		},
	})
	row := Row{Section: "ingest", Name: mode, Store: storeName, Concurrency: c, Batch: batch,
		Rate: res.Rate(), Unit: "msg/s", P50ms: res.Pct("req", 0.5), P99ms: res.Pct("req", 0.99),
		Errors: res.Errors, ErrMsgs: res.ErrMsgs, Seconds: res.Elapsed.Seconds(),
		Extra: map[string]float64{"req_per_s": float64(res.Count("req")) / max(res.Elapsed.Seconds(), 1e-9)}}
	cpu.add(&row, res.Items, res.Elapsed)
	rm.add(&row, res.Items)
	return row
}

// runIngest runs every ingest level against a fresh server.
func runIngest(ctx context.Context, b *bench, sb storeBackend) error {
	srv, err := sb.fresh(ctx, "ingest")
	if err != nil {
		return err
	}
	defer srv.stop()
	key, err := srv.createIngestKey()
	if err != nil {
		return err
	}
	for _, batch := range []int{0, b.opt.batch} {
		for _, c := range b.opt.clients {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			row := ingestLevel(ctx, b, srv, key, sb.name(), c, batch)
			if err := srv.alive(); err != nil {
				return err
			}
			b.add(row)
		}
	}
	return nil
}
