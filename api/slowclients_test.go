package api_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
)

// Slow and broken clients over a real socket: connections that send a
// request a byte at a time (slowloris), keep-alive connections left idle,
// and a client that asks for a large response and never reads it. Each is
// cut off by its timeout while everyone else is served, and the server's
// goroutines return to where they were. A client of the event stream that
// never reads is covered in sse_test.go.
//
// These tests count the process's goroutines, so they do not run in
// parallel with other tests.

// slowServer is an opsServer whose socket timeouts the test chooses.
func slowServer(t *testing.T, deps func(*api.Deps)) (*opsServer, string) {
	t.Helper()
	s := newOpsServer(t, opsOptions{deps: deps})
	// fasthttp keeps the goroutine of a finished connection for reuse
	// for up to MaxIdleWorkerDuration (10s by default): shortened, so the
	// goroutine count settles in a moment rather than ten seconds.
	s.app.Server().MaxIdleWorkerDuration = 100 * time.Millisecond
	base := s.listen(t)
	return s, strings.TrimPrefix(base, "http://")
}

// timedGet sends GET path with key on a connection of its own and reports
// the status and how long the answer took.
func timedGet(t *testing.T, client *http.Client, base, path, key string) (int, time.Duration) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

// rawConn is a client connection whose reads a goroutine drains, noting
// what arrived and when the server closed it.
type rawConn struct {
	net.Conn
	opened time.Time
	mu     sync.Mutex
	got    []byte
	closed chan time.Time // receives once, when a read fails
}

func dialRaw(t *testing.T, addr string, d *net.Dialer) *rawConn {
	t.Helper()
	if d == nil {
		d = &net.Dialer{}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, opened: time.Now(), closed: make(chan time.Time, 1)}
}

// drain reads until the connection fails.
func (c *rawConn) drain() {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		c.mu.Lock()
		c.got = append(c.got, buf[:n]...)
		c.mu.Unlock()
		if err != nil {
			c.closed <- time.Now()
			return
		}
	}
}

func (c *rawConn) received() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.got)
}

// waitClosed waits (bounded) until the server has closed c and says after
// how long, counted from dial.
func (c *rawConn) waitClosed(t *testing.T, within time.Duration) time.Duration {
	t.Helper()
	select {
	case at := <-c.closed:
		return at.Sub(c.opened)
	case <-time.After(within):
		t.Fatalf("connection still open %v after it was opened; it received %q", time.Since(c.opened), c.received())
	}
	return 0
}

func TestSlowClients_SlowlorisIsCutOffByTheReadTimeoutWhileOthersAreServed(t *testing.T) {
	const readTimeout = 2 * time.Second
	s, addr := slowServer(t, func(d *api.Deps) { d.ReadTimeout = readTimeout })
	client := streamClient() // a connection per request: none lingers idle
	base := "http://" + addr
	if code, _ := timedGet(t, client, base, "/api/v1/me", s.admin); code != 200 {
		t.Fatalf("GET /api/v1/me: %d", code)
	}
	baseline := quietGoroutines()

	// 200 connections: half send the request line and headers a byte at a
	// time and never finish them; half send complete headers promising a
	// body and then send the body a byte at a time.
	const slow = 200
	conns := make([]*rawConn, slow)
	for i := range conns {
		c := dialRaw(t, addr, nil)
		if i%2 == 0 {
			fmt.Fprintf(c, "GET /api/v1/me HTTP/1.1\r\nHost: test\r\nX-Slow: ")
		} else {
			fmt.Fprintf(c, "POST /api/v1/messages HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\n"+
				"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"text\": \"", s.admin)
		}
		go c.drain()
		conns[i] = c
	}
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, c := range conns {
				c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				c.Write([]byte("x")) // fails once the server has closed it
			}
		}
	}()
	var once sync.Once
	stopTrickle := func() { once.Do(func() { close(stop); <-trickled }) }
	defer stopTrickle()

	// (a) Meanwhile a normal client is served promptly.
	attack := conns[0].opened
	for i := range 20 {
		code, took := timedGet(t, client, base, "/api/v1/me", s.admin)
		if code != 200 || took > time.Second {
			t.Fatalf("request %d during the attack: status %d after %v", i, code, took)
		}
	}
	s.ingest(t, msg("during", nil))
	if since := time.Since(attack); since >= readTimeout {
		t.Fatalf("the normal requests took %v, past the slow clients' timeout: the test shows nothing", since)
	}
	for i, c := range conns {
		select {
		case <-c.closed:
			t.Fatalf("slow connection %d closed after %v, before the read timeout", i, time.Since(c.opened))
		default:
		}
	}

	// (b) The server closes every slow connection at its read timeout,
	// answering 408 in the contract's error shape.
	for i, c := range conns {
		after := c.waitClosed(t, readTimeout+10*time.Second)
		if after < readTimeout-100*time.Millisecond || after > readTimeout+5*time.Second {
			t.Fatalf("slow connection %d closed after %v, want about %v", i, after, readTimeout)
		}
		if got := c.received(); got != "" && (!strings.HasPrefix(got, "HTTP/1.1 408") || !strings.Contains(got, `"code":"timeout"`)) {
			t.Fatalf("slow connection %d got %q", i, got)
		}
	}
	if got := conns[0].received(); !strings.HasPrefix(got, "HTTP/1.1 408") {
		t.Fatalf("a slow client's answer: %q, want 408", got)
	}
	stopTrickle()
	client.CloseIdleConnections()
	settle(t, "after the slow clients were cut off", baseline+3)
}

// TestSlowClients_ABodyOverTheLimitIsRefusedBeforeItIsRead: a request whose
// Content-Length is over its route's limit is answered 413 as soon as its
// headers are in. The server used to read every body up to the batch
// endpoint's 8 MiB first, so a client could make it buffer that much per
// connection on any route; here the body never comes, and the answer must
// not wait for it (the read timeout is far longer than the test's bound).
func TestSlowClients_ABodyOverTheLimitIsRefusedBeforeItIsRead(t *testing.T) {
	s, addr := slowServer(t, func(d *api.Deps) { d.ReadTimeout = time.Minute })
	ana := s.agent(t, map[string]any{"id": "ana", "teams": []string{"triage"}})
	// Only the batch endpoint has the larger limit: not a team whose id is
	// "batch", nor a query that ends in it. And only for a key that may
	// ingest: without one, nobody can make the server hold 8 MiB.
	for _, tc := range []struct{ path, auth string }{
		{"/api/v1/messages", "Bearer " + s.admin},
		{"/api/v1/threads/t-1/notes?x=/batch", "Bearer " + s.admin},
		{"/api/v1/teams/batch", "Bearer " + s.admin},
		{"/api/v1/messages/batch", ""},
		{"/api/v1/messages/batch", "Bearer sbk_not-a-key"},
		{"/api/v1/messages/batch", "Basic " + s.admin},
		{"/api/v1/messages/batch", "Bearer " + ana}, // an agent may not ingest
	} {
		c := dialRaw(t, addr, nil)
		auth := ""
		if tc.auth != "" {
			auth = "Authorization: " + tc.auth + "\r\n"
		}
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: test\r\n%s"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{", tc.path, auth, api.BodyLimit+1)
		go c.drain()
		c.waitClosed(t, 10*time.Second)
		if got := c.received(); !strings.HasPrefix(got, "HTTP/1.1 413") || !strings.Contains(got, `"code":"payload_too_large"`) {
			t.Fatalf("POST %s (%.12s) with a body over the limit got %q", tc.path, tc.auth, got)
		}
	}
}

// TestSlowClients_ARequestThatCannotBeReadIsNotQuotedBack: fasthttp's
// error for a request it cannot read quotes the request, and the 400 sent
// it back whole, Authorization and Cookie headers included (a proxy that
// logs answers would keep them).
func TestSlowClients_ARequestThatCannotBeReadIsNotQuotedBack(t *testing.T) {
	_, addr := slowServer(t, nil)
	c := dialRaw(t, addr, nil)
	fmt.Fprintf(c, "POST /api/v1/messages?token=MKQUERY HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer sbk_MKKEY\r\n"+
		"Cookie: sb_session=MKCOOKIE\r\nContent-Length: twelve\r\n\r\n{}")
	go c.drain()
	c.waitClosed(t, 10*time.Second)
	got := c.received()
	if !strings.HasPrefix(got, "HTTP/1.1 400") || !strings.Contains(got, "malformed HTTP request") {
		t.Fatalf("a request with a bad Content-Length got %q", got)
	}
	for _, leak := range []string{"MKQUERY", "MKKEY", "MKCOOKIE"} {
		if strings.Contains(got, leak) {
			t.Fatalf("the answer quotes %s: %q", leak, got)
		}
	}
}

// TestSlowClients_KeysTriedThroughTheBodyLimitSpendTheAddressBudget: the
// batch endpoint's 8 MiB is granted by the key, checked before the body is
// read, so a 413 there says the key is no ingest key. Each such refusal
// spends the address's budget, as a wrong key does elsewhere: keys cannot
// be tried through it without limit.
func TestSlowClients_KeysTriedThroughTheBodyLimitSpendTheAddressBudget(t *testing.T) {
	_, addr := slowServer(t, func(d *api.Deps) { d.ReadTimeout = time.Minute; d.RateLimits = api.RateLimits{PerIP: 1} })
	var codes []string
	for i := range 4 {
		c := dialRaw(t, addr, nil)
		fmt.Fprintf(c, "POST /api/v1/messages/batch HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer sbk_guess-%d\r\n"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{", i, 2<<20)
		go c.drain()
		c.waitClosed(t, 10*time.Second)
		got := c.received()
		if len(got) < 12 {
			t.Fatalf("guess %d: %q", i, got)
		}
		codes = append(codes, got[9:12])
	}
	if fmt.Sprint(codes) != "[413 413 429 429]" {
		t.Fatalf("statuses %v, want [413 413 429 429] (a burst of two, then the budget is spent)", codes)
	}
}

func TestSlowClients_IdleKeepAliveConnectionsAreClosedAfterTheIdleTimeout(t *testing.T) {
	const idle = time.Second
	// The read timeout is long: what closes them is the idle timeout.
	_, addr := slowServer(t, func(d *api.Deps) { d.ReadTimeout = 30 * time.Second; d.IdleTimeout = idle })
	client := streamClient()
	if code, _ := timedGet(t, client, "http://"+addr, "/healthz", ""); code != 200 {
		t.Fatalf("GET /healthz: %d", code)
	}
	baseline := quietGoroutines()

	const n = 50
	conns := make([]*rawConn, n)
	served := make([]time.Time, n)
	for i := range conns {
		c := dialRaw(t, addr, nil)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 || resp.Close {
			t.Fatalf("keep-alive request %d: %v %v", i, resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		served[i] = time.Now()
		go c.drain()
		conns[i] = c
	}
	for i, c := range conns {
		c.waitClosed(t, idle+10*time.Second)
		if after := time.Since(served[i]); after < idle-100*time.Millisecond {
			t.Fatalf("idle connection %d closed %v after its request, before the idle timeout", i, after)
		}
	}
	client.CloseIdleConnections()
	settle(t, "after the idle connections were closed", baseline+3)
}

func TestSlowClients_ClientThatNeverReadsALargeResponseIsCutOffByTheWriteTimeout(t *testing.T) {
	const writeTimeout = time.Second
	s := newOpsServer(t, opsOptions{deps: func(d *api.Deps) { d.WriteTimeout = writeTimeout }})
	s.app.Server().MaxIdleWorkerDuration = 100 * time.Millisecond
	// A store of a megabyte or more: its backup is far more than the
	// socket buffers between server and client hold.
	var batch []any
	for i := range 100 {
		batch = append(batch, msg(fmt.Sprintf("big-%d", i), map[string]any{"text": strings.Repeat("lorem ipsum ", 800)}))
	}
	s.do(t, "POST", "/api/v1/messages/batch", s.admin, map[string]any{"messages": batch}).want(t, 200)
	fi, err := os.Stat(s.path)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(s.listenOn(t, func(l net.Listener) net.Listener { return smallBuffers{l} }), "http://")
	client := streamClient()
	if code, _ := timedGet(t, client, "http://"+addr, "/healthz", ""); code != 200 {
		t.Fatalf("GET /healthz: %d", code)
	}
	baseline := quietGoroutines()

	// It asks for the backup (a read transaction held while it streams)
	// and reads nothing.
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c := dialRaw(t, addr, d)
	fmt.Fprintf(c, "GET /api/v1/backup HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\n\r\n", s.admin)
	time.Sleep(writeTimeout + 2*time.Second) // the server blocks on the full socket, then its deadline passes

	// Others are served meanwhile and after.
	if code, took := timedGet(t, client, "http://"+addr, "/api/v1/me", s.admin); code != 200 || took > time.Second {
		t.Fatalf("GET /api/v1/me beside the stuck client: %d after %v", code, took)
	}
	go c.drain()
	c.waitClosed(t, 10*time.Second)
	if got := len(c.received()); int64(got) >= fi.Size() {
		t.Fatalf("the client that did not read got all %d bytes of a %d-byte store: it was not cut off", got, fi.Size())
	}
	t.Logf("the client that did not read got %d bytes of a %d-byte store before it was cut off", len(c.received()), fi.Size())
	client.CloseIdleConnections()
	settle(t, "after the client that never reads was cut off", baseline+3)
	// The store is still writable: the backup's read transaction ended.
	s.ingest(t, msg("after-stuck-backup", nil))
}

// A chunked body has no length to refuse it by: the limit must stop it at
// the chunk that crosses it, not after the client has sent (or failed to
// send) the rest. The body's end never comes, so only that answers in time.
func TestSlowClients_AChunkedBodyIsStoppedAtItsRoutesLimit(t *testing.T) {
	s, addr := slowServer(t, func(d *api.Deps) { d.ReadTimeout = time.Minute })
	chunk := strings.Repeat(" ", 64<<10)
	send := func(path string, size int, end bool) *rawConn {
		c := dialRaw(t, addr, nil)
		w := bufio.NewWriter(c)
		fmt.Fprintf(w, "POST %s HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\n"+
			"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", path, s.admin)
		for sent := 0; sent < size; sent += len(chunk) {
			fmt.Fprintf(w, "%x\r\n%s\r\n", len(chunk), chunk)
		}
		if end {
			fmt.Fprintf(w, "0\r\n\r\n")
		}
		if err := w.Flush(); err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		return c
	}

	// Exactly the limit, then one more chunk's header that never gets its data.
	c := send("/api/v1/messages", api.BodyLimit, false)
	fmt.Fprintf(c, "1\r\n")
	go c.drain()
	c.waitClosed(t, 10*time.Second)
	if got := c.received(); !strings.HasPrefix(got, "HTTP/1.1 413") || !strings.Contains(got, `"code":"payload_too_large"`) {
		t.Fatalf("a chunked body over the limit got %q", got)
	}

	// The same body, ended, is within the batch route's limit: read whole and
	// judged as JSON, not refused for its size. The router serves the batch
	// endpoint with a trailing slash and in any case too; so does the limit.
	for _, path := range []string{"/api/v1/messages/batch", "/api/v1/messages/batch/", "/API/v1/Messages/BATCH"} {
		c = send(path, api.BodyLimit+len(chunk), true)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("POST %s, a chunked batch body under its limit: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 400 || !strings.Contains(string(body), `"code":"invalid_request"`) {
			t.Fatalf("POST %s, a chunked batch body under its limit, got %d %s", path, resp.StatusCode, body)
		}
	}
}
