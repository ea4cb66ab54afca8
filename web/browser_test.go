package web_test

// The harness of the browser tests: a real server (api.New over a real
// bbolt file, on a 127.0.0.1 listener, the page embedded) and Debian's
// Chromium driven headless with chromedp. Each agent gets its own browser
// context (its own cookies and storage), as two people at two machines.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	cdpage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store/bolt"
	"github.com/switchboard/switchboard/web"
)

// testTimeout bounds one test: server, browser and every wait in it.
const testTimeout = 60 * time.Second

// waitTimeout bounds one wait for a condition in the page.
const waitTimeout = 10 * time.Second

// --- server ---

type server struct {
	url   string
	svc   *inbox.Service
	admin string
}

// newServerWith starts a server with a clock for the store and the service, a
// default lock lease (0: the service's default), and any other settings.
func newServerWith(t *testing.T, clock func() time.Time, lockTTL time.Duration, settings ...func(*inbox.Config)) *server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := bolt.Open(filepath.Join(t.TempDir(), "switchboard.db"), bolt.Options{Logger: log, Clock: clock})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	cfg := inbox.Config{Logger: log, Clock: clock, LockTTL: lockTTL, SweepInterval: 100 * time.Millisecond}
	for _, set := range settings {
		set(&cfg)
	}
	svc := inbox.New(st, cfg)
	admin, err := svc.Bootstrap(context.Background(), "")
	if err != nil || admin == "" {
		t.Fatalf("bootstrap: %q, %v", admin, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc.Start(ctx)
	// Rate limits as the server runs by default, so the page is tested
	// within them.
	app := api.New(api.Deps{Service: svc, Logger: log, Web: web.FS(), Heartbeat: 2 * time.Second,
		RateLimits: api.RateLimits{PerKey: 50, PerIP: 20}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	t.Cleanup(func() {
		cancel()
		svc.Stop() // ends the event streams
		app.ShutdownWithTimeout(3 * time.Second)
		st.Close()
	})
	return &server{url: "http://" + ln.Addr().String(), svc: svc, admin: admin}
}

// call sends one API request with a bearer key and decodes the answer into
// out (if not nil); it returns the status.
func (s *server) call(t *testing.T, method, path, key string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil && len(data) > 0 && res.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
	return res.StatusCode
}

// must is call that fails the test unless the status is want.
func (s *server) must(t *testing.T, want int, method, path, key string, body, out any) {
	t.Helper()
	if got := s.call(t, method, path, key, body, out); got != want {
		t.Fatalf("%s %s: status %d, want %d", method, path, got, want)
	}
}

func (s *server) team(t *testing.T, id, name, function string) {
	t.Helper()
	s.must(t, 201, "POST", "/api/v1/teams", s.admin, map[string]any{"id": id, "name": name, "function": function,
		"strategy": "claim", "sla_first_response_seconds": 900}, nil)
}

// agent creates an online agent and returns its key.
func (s *server) agent(t *testing.T, fields map[string]any) string {
	t.Helper()
	var out struct {
		APIKey string `json:"api_key"`
	}
	s.must(t, 201, "POST", "/api/v1/agents", s.admin, fields, &out)
	s.must(t, 200, "PUT", "/api/v1/agents/"+fields["id"].(string)+"/status", s.admin, map[string]any{"status": "online"}, nil)
	return out.APIKey
}

func (s *server) rule(t *testing.T, id string, position int, when, then map[string]any) {
	t.Helper()
	s.must(t, 201, "POST", "/api/v1/rules", s.admin, map[string]any{"id": id, "position": position, "when": when, "then": then}, nil)
}

type msg struct {
	Network, ExternalID, Thread, Kind, Text string
	Author                                  map[string]any
}

// ingest posts an inbound message and returns its thread id.
func (s *server) ingest(t *testing.T, m msg) string {
	t.Helper()
	if m.Network == "" {
		m.Network = "instagram"
	}
	if m.Kind == "" {
		m.Kind = "dm"
	}
	if m.Author == nil {
		m.Author = map[string]any{"id": "u-" + m.ExternalID, "handle": "@maria", "name": "María"}
	}
	body := map[string]any{"network": m.Network, "external_id": m.ExternalID, "profile": "@acme", "kind": m.Kind,
		"text": m.Text, "author": m.Author}
	if m.Thread != "" {
		body["thread_external_id"] = m.Thread
	}
	var out struct {
		Thread struct {
			ID string `json:"id"`
		} `json:"thread"`
	}
	s.must(t, 201, "POST", "/api/v1/messages", s.admin, body, &out)
	return out.Thread.ID
}

type threadView struct {
	ID     string `json:"id"`
	Team   string `json:"team"`
	Status string `json:"status"`
	Lock   *struct {
		AgentID string `json:"agent_id"`
	} `json:"lock"`
}

type lockView struct {
	AgentID   string    `json:"agent_id"`
	Fence     int64     `json:"fence"`
	ExpiresAt time.Time `json:"expires_at"`
}

// lock is the thread's lock as the server shows it; the test fails if
// there is none.
func (s *server) lock(t *testing.T, id string) lockView {
	t.Helper()
	var th struct {
		Lock *lockView `json:"lock"`
	}
	s.must(t, 200, "GET", "/api/v1/threads/"+id, s.admin, nil, &th)
	if th.Lock == nil {
		t.Fatalf("thread %s has no lock", id)
	}
	return *th.Lock
}

// lockExpiry is when the thread's lock ends, as the server says.
func (s *server) lockExpiry(t *testing.T, id string) time.Time {
	t.Helper()
	return s.lock(t, id).ExpiresAt
}

// waitHeldPast waits until "Your threads" shows the page's lock lasting
// past at (a renewal it made or read).
func (p *page) waitHeldPast(what string, at time.Time) {
	p.t.Helper()
	p.waitFor(what, fmt.Sprintf(`Date.parse(document.querySelector('#mine-list [data-until]')?.dataset.until) > %d`, at.UnixMilli()))
}

func (s *server) thread(t *testing.T, id string) threadView {
	t.Helper()
	var out threadView
	s.must(t, 200, "GET", "/api/v1/threads/"+id, s.admin, nil, &out)
	return out
}

// careFixture: a care team with agents Ana and Bea, a supervisor Sam, and a
// rule sending everything to care.
type careFixture struct {
	*server
	ana, bea, sam string
}

func newCareFixture(t *testing.T) *careFixture { return newCareFixtureTTL(t, 0) }

// newCareFixtureTTL is newCareFixture with a default lock lease.
func newCareFixtureTTL(t *testing.T, lockTTL time.Duration) *careFixture {
	t.Helper()
	s := newServerWith(t, time.Now, lockTTL)
	s.team(t, "care", "Customer care", "care")
	s.team(t, "sales", "Sales", "sales")
	s.rule(t, "to-care", 10, map[string]any{}, map[string]any{"team": "care"})
	return &careFixture{server: s,
		ana: s.agent(t, map[string]any{"id": "ana", "name": "Ana Ruiz", "teams": []string{"care"}}),
		bea: s.agent(t, map[string]any{"id": "bea", "name": "Bea Costa", "teams": []string{"care"}}),
		sam: s.agent(t, map[string]any{"id": "sam", "name": "Sam Supervisor", "role": "supervisor", "teams": []string{"care"}}),
	}
}

// --- browser ---

// chromium finds the browser: $CHROMIUM, else Debian's. Without one the
// tests skip locally and fail in CI.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (CI=true): install the chromium package")
	}
	t.Skip("chromium is not installed; skipping the browser tests")
	return ""
}

// newBrowser starts a headless Chromium for the test and returns a context
// to open pages in. Everything under it ends with the test or after
// testTimeout.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil {
		bcancel()
		acancel()
		cancel()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		bcancel()
		acancel()
		cancel()
	})
	return bctx
}

// page is one person's tab in a browser context of its own.
type page struct {
	t    *testing.T
	ctx  context.Context
	name string
	url  string
}

func newPage(t *testing.T, browser context.Context, s *server, name string, width, height int64) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	p := &page{t: t, ctx: ctx, name: name, url: s.url}
	p.do(chromedp.EmulateViewport(width, height))
	p.onNewDocument(traceJS)
	return p
}

// traceJS logs the page's requests and stream events in window.__log, with
// the time since the document began: diagnose shows the last of them when a
// test fails, and settled and waitEvent read them. "read" lines say the page
// has the answer's body (what it does with it follows in the same task).
const traceJS = `(() => {
	const log = window.__log = [];
	const note = (s) => log.push((performance.now() / 1000).toFixed(3) + ' ' + s);
	const fetch = window.fetch;
	window.fetch = (url, init) => {
		const what = ((init && init.method) || 'GET') + ' ' + url;
		note(what);
		return fetch(url, init).then((r) => {
			note(r.status + ' ' + what);
			const text = r.text.bind(r);
			r.text = () => text().then((v) => { note('read ' + what); return v; });
			return r;
		}, (e) => { note('failed ' + what); throw e; });
	};
	const add = EventTarget.prototype.addEventListener;
	EventSource.prototype.addEventListener = function (type, fn, opt) {
		if (!this.__traced) {
			this.__traced = true;
			note('stream ' + this.url);
			add.call(this, 'open', () => note('stream open'));
			add.call(this, 'error', () => note('stream error, state ' + this.readyState));
		}
		add.call(this, type, (e) => note('event ' + type + ' ' + e.lastEventId));
		return add.call(this, type, fn, opt);
	};
})()`

// signedIn opens a browser of its own with one page, signed in as name with
// key.
func signedIn(t *testing.T, s *server, name, key string) *page {
	t.Helper()
	p := newPage(t, newBrowser(t), s, name, 1280, 800)
	p.signIn(key)
	return p
}

func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v%s", p.name, err, p.diagnose())
	}
}

// block makes the browser refuse requests to URLs matching the patterns
// (`*` is a wildcard); no pattern lifts the block.
func (p *page) block(patterns ...string) {
	p.t.Helper()
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		bp := []*network.BlockPattern{}
		for _, pat := range patterns {
			bp = append(bp, &network.BlockPattern{URLPattern: pat, Block: true})
		}
		_, err := cdp.Call(ctx, tg, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: bp})
		return err
	}))
}

// onNewDocument runs src in every document the page loads from now on,
// before the page's own scripts.
func (p *page) onNewDocument(src string) {
	p.t.Helper()
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdpage.AddScriptToEvaluateOnNewDocument, cdpage.AddScriptToEvaluateOnNewDocumentParams{Source: src})
		return err
	}))
}

// eval runs JavaScript in the page.
func eval[T any](p *page, js string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.t.Fatalf("%s: eval %s: %v%s", p.name, js, err, p.diagnose())
	}
	return v
}

// waitFor polls a JavaScript condition until it is true.
func (p *page) waitFor(what, js string) {
	p.t.Helper()
	_, err := chromedp.Run(p.ctx, chromedp.Poll[chromedp.Void](js,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(waitTimeout)))
	if err != nil {
		p.t.Fatalf("%s: waiting for %s: %v%s", p.name, what, err, p.diagnose())
	}
}

// waitText waits until the element's text contains want.
func (p *page) waitText(sel, want string) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("%s to contain %q", sel, want),
		fmt.Sprintf(`(document.querySelector(%q)?.textContent || '').includes(%q)`, sel, want))
}

// diagnose describes what the page shows, for failure messages.
func (p *page) diagnose() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[
		'alert: ' + (document.querySelector('#alert')?.textContent || ''),
		'status: ' + (document.querySelector('#status-msg')?.textContent || ''),
		'sign-in: ' + (document.querySelector('#signin-msg')?.textContent || ''),
		'lockbar: ' + (document.querySelector('#lockbar')?.textContent || ''),
		'live: ' + (document.querySelector('#live-state')?.textContent || '') +
			(document.querySelector('#idle-banner')?.hidden === false ? ' (paused)' : ''),
		'tab: ' + (document.querySelector('#team-tabs [aria-pressed="true"]')?.textContent || ''),
		'focus: ' + (document.activeElement ? document.activeElement.tagName + '#' + document.activeElement.id : ''),
		'queue: ' + (document.querySelector('#queue-list')?.innerText || '').slice(0, 300).replace(/\n/g, ' | '),
		'trace:', ...(window.__log || []).slice(-40),
	].join('\n')`))
	if err != nil {
		return ""
	}
	return "\npage state:\n" + v
}

// click clicks the element once it is shown and enabled. The check and the
// click run in one step in the page, so a re-render in between cannot make
// the click miss.
func (p *page) click(sel string) {
	p.t.Helper()
	p.waitFor("a click on "+sel, clickJS(sel))
}

func clickJS(sel string) string {
	return fmt.Sprintf(`(() => { const el = document.querySelector(%q);
		if (!el || el.disabled || !el.getClientRects().length) return false;
		el.click(); return true; })()`, sel)
}

// key presses a key with nothing focused in a text field.
func (p *page) key(k string) {
	p.t.Helper()
	p.do(chromedp.KeyEvent(k))
}

// signIn opens the page and signs in with key.
func (p *page) signIn(key string) {
	p.t.Helper()
	p.submitKey(key)
	p.waitFor("the inbox after sign-in", `!document.querySelector('#app').hidden && document.querySelector('#me-name').textContent !== ''`)
	p.waitFor("the event stream, and the sign-in done", `document.querySelector('#live-state').textContent === 'Live' && !document.querySelector('#signin-submit').disabled`)
}

// settled waits for what the page reads again once its stream is open (the
// queue on screen; a supervisor's statistics): until then, a change the
// test makes may show by that read rather than by its event.
func (p *page) settled() {
	p.t.Helper()
	p.waitFor("the reads after the stream opened", `(() => {
		const log = window.__log || [];
		let open = -1;
		log.forEach((l, i) => { if (l.endsWith(' stream open')) open = i; });
		if (open < 0) return false;
		// Asked after the stream opened (the first reads may end after it), and answered.
		const reread = (path) => {
			const asked = log.findIndex((l, i) => i > open && l.split(' ')[1] === 'GET' && l.includes(' /api/v1/' + path));
			return asked >= 0 && log.slice(asked).some((l) => l.includes(' read GET /api/v1/' + path));
		};
		return (!document.querySelector('#team-tabs .tab') || reread('queue?')) &&
			(document.querySelector('#overview').hidden || reread('stats'));
	})()`)
}

// waitEvent waits until the page's stream has brought an event of type typ
// (its handler has run by then: the log's line is written in the same
// dispatch, before it).
func (p *page) waitEvent(typ string) {
	p.t.Helper()
	p.waitFor("a "+typ+" event", fmt.Sprintf(`window.__log.some((l) => l.includes(' event ' + %q + ' '))`, typ))
}

// submitKey opens the page and signs in with key, waiting for nothing.
func (p *page) submitKey(key string) {
	p.t.Helper()
	p.do(chromedp.Navigate(p.url+"/"), chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), key), chromedp.Click(chromedp.CSS("#signin-submit")))
}

// claim claims the thread from the shown queue and waits for its reply box.
func (p *page) claim(threadID string) {
	p.t.Helper()
	p.click(queueItem(threadID) + " .qclaim")
	p.waitFor("the reply box", `document.querySelector('#reply-text') !== null`)
}

// openMine opens the first of "Your threads" (an offer, taking it up) and
// waits for its reply box.
func (p *page) openMine() {
	p.t.Helper()
	p.click("#mine-list .mine-open")
	p.waitFor("the reply box", `document.querySelector('#reply-text') !== null`)
}

// queueItem is the CSS selector of a thread in the shown queue.
func queueItem(threadID string) string {
	return fmt.Sprintf(`#queue-list li[data-thread=%q]`, threadID)
}

func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
