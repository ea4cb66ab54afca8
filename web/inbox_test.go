package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
)

func TestSignIn_ShowsTheAgentAndKeepsNoKeyInThePage(t *testing.T) {
	f := newCareFixture(t)
	p := signedIn(t, f.server, "ana", f.ana)

	p.waitText("#me-name", "Ana Ruiz")
	p.waitText("#me-teams", "Customer care")
	p.waitText("#on-shift", "On shift")
	if v := eval[string](p, `document.querySelector('#status').value`); v != "online" {
		t.Errorf("status switch shows %q, want online", v)
	}

	// The key is in no storage the page can reach, not in the DOM, and the
	// session cookie is HttpOnly and SameSite=Strict.
	leaks := eval[[]string](p, fmt.Sprintf(`(() => {
		const key = %s, out = [];
		for (const s of [localStorage, sessionStorage]) for (let i = 0; i < s.length; i++) {
			const k = s.key(i); if (k.includes(key) || (s.getItem(k) || '').includes(key)) out.push('storage ' + k);
		}
		if (localStorage.length || sessionStorage.length) out.push('web storage is not empty');
		if (document.cookie.includes('sb_session')) out.push('document.cookie shows sb_session');
		if (document.documentElement.outerHTML.includes(key)) out.push('the DOM holds the key');
		if (document.querySelector('#key').value !== '') out.push('the key field is not empty');
		return out;
	})()`, js(f.ana)))
	if len(leaks) > 0 {
		t.Errorf("the key leaks: %v", leaks)
	}
	cookies, err := chromedp.Run(p.ctx, chromedp.Action[[]*network.Cookie](func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		r, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{f.url}})
		return r.Cookies, err
	}))
	if err != nil {
		t.Fatal(err)
	}
	var session *network.Cookie
	for _, c := range cookies {
		if c.Name == "sb_session" {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict {
		t.Errorf("session cookie %+v, want sb_session HttpOnly SameSite=Strict", session)
	}

	// The status switch changes the agent's status.
	eval[bool](p, `(() => { const s = document.querySelector('#status'); s.value = 'away';
		s.dispatchEvent(new Event('change')); return true; })()`)
	p.waitText("#status-msg", "away")
	var ana struct {
		Status string `json:"status"`
	}
	f.must(t, 200, "GET", "/api/v1/agents/ana", f.admin, nil, &ana)
	if ana.Status != "away" {
		t.Errorf("status after the switch: %q, want away", ana.Status)
	}

	// Signing out ends the session: a reload shows the sign-in form.
	p.click("#signout")
	p.waitFor("the sign-in form", `!document.querySelector('#signin-view').hidden`)
	p.do(chromedp.Reload())
	p.waitFor("the sign-in form after reload", `!document.querySelector('#signin-view').hidden && document.querySelector('#app').hidden`)

	// A wrong key is refused with a message.
	p.do(chromedp.SendKeys(chromedp.CSS("#key"), "sbk_wrong"), chromedp.Click(chromedp.CSS("#signin-submit")))
	p.waitText("#signin-msg", "not accepted")
}

func TestTwoAgents_RaceForOneThread_OneRepliesTheOtherSeesItLocked(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "race-1", Text: "My order #4411 arrived broken"})
	b := newBrowser(t)
	ana := newPage(t, b, f.server, "ana", 1280, 800)
	bea := newPage(t, b, f.server, "bea", 1280, 800)
	for _, p := range []*page{ana, bea} {
		p.signIn(map[string]string{"ana": f.ana, "bea": f.bea}[p.name])
		p.waitText(queueItem(id), "My order #4411 arrived broken")
		// Remember if a reply box ever appears in this page.
		eval[bool](p, `(() => { window.sawReplyBox = false;
			new MutationObserver(() => { if (document.getElementById('reply-text')) window.sawReplyBox = true; })
				.observe(document.body, {subtree: true, childList: true}); return true; })()`)
	}

	// Both click Claim at the same time.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range []*page{ana, bea} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = chromedp.Run(p.ctx, chromedp.Evaluate[bool](clickJS(queueItem(id)+" .qclaim")))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	for _, p := range []*page{ana, bea} {
		p.waitFor("the claim's outcome", `document.querySelector('#lockbar.held, #lockbar.locked') !== null`)
	}
	th := f.thread(t, id)
	if th.Lock == nil {
		t.Fatal("nobody holds the thread after both claimed")
	}
	winner, loser, winnerName := ana, bea, "Ana Ruiz"
	if th.Lock.AgentID == "bea" {
		winner, loser, winnerName = bea, ana, "Bea Costa"
	}
	winner.waitFor("the reply box", `document.querySelector('#reply-text') !== null && document.querySelector('#lockbar.held') !== null`)
	loser.waitText("#lockbar", winnerName+" is replying")
	loser.waitText("#alert", winnerName+" is replying")

	// The winner replies; the reply shows in both conversations.
	winner.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "So sorry! A replacement is on its way."))
	winner.click("#reply-send")
	winner.waitText("#conversation .msg.out", "So sorry! A replacement is on its way.")
	loser.waitText("#conversation .msg.out", "So sorry! A replacement is on its way.")
	loser.waitText("#lockbar", winnerName+" is replying")
	if eval[bool](loser, `window.sawReplyBox || document.querySelector('#reply-text') !== null || document.querySelector('#reply-form') !== null`) {
		t.Error("the loser was shown a reply box for a thread the winner holds")
	}

	var msgs struct {
		Items []struct {
			Direction string `json:"direction"`
			AgentID   string `json:"agent_id"`
			Text      string `json:"text"`
		}
	}
	f.must(t, 200, "GET", "/api/v1/threads/"+id+"/messages", f.admin, nil, &msgs)
	var out []string
	for _, m := range msgs.Items {
		if m.Direction == "outbound" {
			out = append(out, m.AgentID+": "+m.Text)
		}
	}
	if want := th.Lock.AgentID + ": So sorry! A replacement is on its way."; !slices.Equal(out, []string{want}) {
		t.Errorf("outbound messages %q, want exactly [%q]", out, want)
	}
}

func TestLive_NewMessageAppearsInTheQueueWithoutReload(t *testing.T) {
	f := newCareFixtureTTL(t, 2*time.Second) // leases expire during the test
	p := signedIn(t, f.server, "ana", f.ana)
	p.waitText("#queue-list", "Nobody is waiting")
	p.settled()

	id := f.ingest(t, msg{ExternalID: "live-1", Network: "twitter", Kind: "mention", Text: "Is the app down?\nNothing loads",
		Author: map[string]any{"id": "u-9", "handle": "@jonas", "name": "Jonas"}})
	p.waitText(queueItem(id), "Is the app down?")
	item := eval[string](p, fmt.Sprintf(`document.querySelector(%q).textContent`, queueItem(id)))
	for _, want := range []string{"X", "Jonas", "@jonas", "waiting", "SLA"} {
		if !strings.Contains(item, want) {
			t.Errorf("queue item %q lacks %q", item, want)
		}
	}
	if strings.Contains(item, "Nothing loads") {
		t.Errorf("queue item %q shows more than the first line", item)
	}
	p.waitText(`#team-tabs [data-team="care"] .count`, "1")

	// A claim elsewhere takes it off the queue, and the lease's expiry
	// brings it back, live too.
	f.must(t, 200, "POST", "/api/v1/threads/"+id+"/claim", f.bea, map[string]any{}, nil)
	p.waitFor("the claimed thread to leave the queue", fmt.Sprintf(`document.querySelector(%q) === null`, queueItem(id)))
	p.waitText(queueItem(id), "Is the app down?")
	if th := f.thread(t, id); th.Lock != nil || th.Status != "queued" {
		t.Errorf("after the lease: %+v, want queued and unlocked", th)
	}
}

// holdStreams makes the page's event streams wait for window.openStreams()
// before they connect: the page has read its queues and locks by then, and
// the server takes the stream on only when it connects.
const holdStreams = `(() => {
	const Real = window.EventSource, held = [];
	window.openStreams = () => { for (const open of held.splice(0)) open(); return true; };
	window.EventSource = class extends EventTarget {
		static CONNECTING = 0; static OPEN = 1; static CLOSED = 2;
		constructor(url, opts) {
			super();
			this.url = url; this.readyState = 0; this.types = new Set();
			held.push(() => {
				if (this.readyState === 2) return;
				const es = this.real = new Real(url, opts);
				es.onopen = (e) => { this.readyState = 1; this.onopen?.(e); };
				es.onerror = (e) => { this.readyState = es.readyState; this.onerror?.(e); };
				es.onmessage = (e) => this.onmessage?.(e);
				for (const t of this.types) es.addEventListener(t, (e) => this.dispatchEvent(new MessageEvent(t, { data: e.data, lastEventId: e.lastEventId })));
			});
		}
		addEventListener(t, fn, opts) { this.types.add(t); super.addEventListener(t, fn, opts); }
		close() { this.readyState = 2; this.real?.close(); }
	};
})()`

// TestLive_WhatCameBeforeTheStreamOpenedIsShown: a message and an offer
// that came after the page read its queues and locks, but before the
// server took its event stream on, were in neither: the queue stayed
// without the message until some later event, and the offer ran out
// unseen. The page also said "Live" before its stream was open.
func TestLive_WhatCameBeforeTheStreamOpenedIsShown(t *testing.T) {
	f, olga := offerFixtureTTL(t, time.Minute) // no offer runs out (an event) while the test waits
	p := newPage(t, newBrowser(t), f.server, "olga", 1280, 800)
	p.onNewDocument(holdStreams)
	p.submitKey(olga)
	p.waitText("#queue-list", "Nobody is waiting")
	if live := eval[string](p, `document.querySelector('#live-state').textContent`); live == "Live" {
		t.Fatal(`the page says "Live" while its stream is not open`)
	}
	queued := f.ingest(t, msg{ExternalID: "gap-1", Text: "Hello care"})
	offered := f.ingest(t, msg{ExternalID: "gap-2", Text: "an offer for you"})
	if th := f.thread(t, offered); th.Lock == nil || th.Lock.AgentID != "olga" {
		t.Fatalf("the push team's thread: %+v, want offered to olga", th)
	}
	eval[bool](p, `window.openStreams()`)
	p.waitFor("the stream open", `document.querySelector('#live-state').textContent === 'Live'`)
	p.waitFor("the message in the queue", fmt.Sprintf(`document.querySelector(%q) !== null`, queueItem(queued)))
	p.waitFor("the offer in her threads", fmt.Sprintf(`document.querySelector('#mine-list li[data-thread=%q]') !== null`, offered))
}

// TestThread_AReadQueuedBehindTheOpeningOneLeavesTheFocus: a thread's
// opening moved the focus (to the reply box after a claim) once every read
// queued behind its own had landed, so a person who had moved on meanwhile
// (here, to the note box) had the focus taken from them. It moves when the
// thread is first drawn now.
func TestThread_AReadQueuedBehindTheOpeningOneLeavesTheFocus(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "focus-1", Thread: "focus", Text: "first"})
	p := newPage(t, newBrowser(t), f.server, "ana", 1280, 800)
	// With window.hold set, the page's reads of the thread wait for
	// window.release().
	p.onNewDocument(`(() => {
		const orig = window.fetch, read = /\/threads\/[^/?]+(\?|$|\/(messages|notes|events))/, held = [];
		window.hold = false; window.held = () => held.length;
		window.release = () => { for (const go of held.splice(0)) go(); return true; };
		window.fetch = (url, init) => window.hold && read.test(String(url)) && !(init && init.method && init.method !== 'GET')
			? new Promise((go) => held.push(go)).then(() => orig(url, init)) : orig(url, init);
	})()`)
	p.signIn(f.ana)
	eval[bool](p, `(location.hash = '#t/`+id+`', true)`)
	p.waitFor("the thread", `document.querySelector('#claim-this') !== null`)
	eval[bool](p, `window.hold = true`)
	f.ingest(t, msg{ExternalID: "focus-2", Thread: "focus", Text: "second"})
	p.waitFor("its read again, held", `window.held() === 4`)
	p.click("#claim-this") // the opening joins the read under way, and one more is queued
	p.waitText("#status-msg", "You claimed")
	eval[bool](p, `window.release()`)
	p.waitFor("the reply box, focused, and the queued read held", `document.activeElement?.id === 'reply-text' && window.held() === 4`)
	p.do(chromedp.Focus(chromedp.CSS("#note-text")))
	f.ingest(t, msg{ExternalID: "focus-3", Thread: "focus", Text: "third"})
	eval[bool](p, `window.release()`)
	p.waitText("#conversation", "third")
	if got := eval[string](p, `document.activeElement?.id || ''`); got != "note-text" {
		t.Fatalf("the focus is on %q after the queued read, want it left in the note box", got)
	}
}

// TestLive_TheQueueKeepsUpWhileEventsKeepComing: on a busy team, events
// arrive more often than the page's refresh delay (every new thread brings
// three). The queue must refresh while they keep coming, not only once
// they stop.
func TestLive_TheQueueKeepsUpWhileEventsKeepComing(t *testing.T) {
	f := newCareFixture(t)
	p := signedIn(t, f.server, "ana", f.ana)
	p.waitText("#queue-list", "Nobody is waiting")
	stop := f.postEvery(t, func(n int) map[string]any {
		return map[string]any{"network": "instagram", "external_id": fmt.Sprintf("busy-%d", n),
			"profile": "@acme", "kind": "dm", "text": "Hello?", "author": map[string]any{"id": fmt.Sprintf("u-busy-%d", n)}}
	})
	p.waitFor("the queue to show threads while messages keep coming", `document.querySelectorAll('#queue-list li[data-thread]').length > 0`)
	stop()
}

// TestLive_TheOpenThreadKeepsUpWhileItsMessagesKeepComing: a customer
// writing many messages fast into the thread an agent has open: it showed
// none of them until they stopped (the reload was a debounce the events
// kept putting off).
func TestLive_TheOpenThreadKeepsUpWhileItsMessagesKeepComing(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "flood-0", Thread: "flood", Text: "first"})
	p := signedIn(t, f.server, "ana", f.ana)
	p.do(chromedp.Navigate(f.url + "/#t/" + id))
	p.waitFor("the thread", `document.querySelectorAll('#conversation .msg').length === 1`)
	stop := f.postEvery(t, func(n int) map[string]any {
		return map[string]any{"network": "instagram", "external_id": fmt.Sprintf("flood-%d", n+1), "thread_external_id": "flood",
			"profile": "@acme", "kind": "dm", "text": "and another thing", "author": map[string]any{"id": "u-flood"}}
	})
	p.waitFor("the conversation to grow while messages keep coming", `document.querySelectorAll('#conversation .msg').length > 2`)
	stop()
}

// firstReplyLostOnTheWayBack makes the page's first reply reach the server
// and then fail as if the network dropped the answer; window.replyKeys
// records the Idempotency-Key of every reply sent.
func firstReplyLostOnTheWayBack(p *page) {
	p.t.Helper()
	eval[bool](p, `(() => {
		const orig = window.fetch; window.replyKeys = []; let failed = false;
		window.fetch = (url, init) => {
			if (String(url).endsWith('/replies')) {
				window.replyKeys.push(init.headers['Idempotency-Key']);
				if (!failed) { failed = true; return orig(url, init).then(() => { throw new TypeError('network down'); }); }
			}
			return orig(url, init);
		};
		return true; })()`)
}

// slowFetch delays the page's answers to URLs matching a pattern by some
// milliseconds (a fetch wrapper installed before the page's scripts).
const slowFetch = `(() => { const f = window.fetch; window.fetch = async (u, o) => {
  const r = await f(u, o);
  if (new RegExp(%q).test(String(u))) await new Promise((res) => setTimeout(res, %d));
  return r; }; })()`

// TestLive_TheOpenThreadKeepsUpWhenItsLoadsAreSlow: with loads slower than
// the events coming in, each new load superseded the last before it
// landed, and the conversation never grew; loads now run one at a time.
func TestLive_TheOpenThreadKeepsUpWhenItsLoadsAreSlow(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "slow-0", Thread: "slow", Text: "first"})
	p := newPage(t, newBrowser(t), f.server, "ana", 1280, 800)
	p.onNewDocument(fmt.Sprintf(slowFetch, `events.limit=500`, 400))
	p.signIn(f.ana)
	p.do(chromedp.Navigate(f.url + "/#t/" + id))
	p.waitFor("the thread", `document.querySelectorAll('#conversation .msg').length === 1`)
	stop := f.postEvery(t, func(n int) map[string]any {
		return map[string]any{"network": "instagram", "external_id": fmt.Sprintf("slow-%d", n+1), "thread_external_id": "slow",
			"profile": "@acme", "kind": "dm", "text": "and another thing", "author": map[string]any{"id": "u-slow"}}
	})
	p.waitFor("the conversation to grow while messages keep coming", `document.querySelectorAll('#conversation .msg').length > 2`)
	stop()
}

// postEvery posts the messages body(0), body(1), ... every 60 ms (at most
// for twice the wait) until the returned stop is called, which fails the
// test if they had stopped already, or if fewer than two went in.
func (s *server) postEvery(t *testing.T, body func(n int) map[string]any) (stop func()) {
	t.Helper()
	quit, posted := make(chan struct{}), make(chan int, 1)
	go func() {
		n := 0
		defer func() { posted <- n }()
		tick := time.NewTicker(60 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(2 * waitTimeout)
		for {
			select {
			case <-quit:
				return
			case <-deadline:
				return
			case <-tick.C:
			}
			b, _ := json.Marshal(body(n))
			req, _ := http.NewRequest("POST", s.url+"/api/v1/messages", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+s.admin)
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
				if res.StatusCode == 201 {
					n++
				}
			}
		}
	}()
	return func() {
		t.Helper()
		select {
		case n := <-posted:
			t.Fatalf("the messages stopped (%d posted) before the page showed them", n)
		default:
		}
		close(quit)
		if n := <-posted; n < 2 {
			t.Fatalf("only %d messages posted", n)
		}
	}
}

func TestLock_RenewsWhileTheAgentIsActive(t *testing.T) {
	f := newCareFixtureTTL(t, 3*time.Second)
	id := f.ingest(t, msg{ExternalID: "renew-1", Text: "Can I change my delivery address?"})
	p := signedIn(t, f.server, "ana", f.ana)
	p.claim(id) // a click is activity
	first := f.lockExpiry(t, id)

	// The page renews at half-life (the click was activity): wait until
	// the lease it shows runs past two of the first.
	p.waitHeldPast("two renewals", first.Add(3500*time.Millisecond))
	var now struct {
		Lock *struct {
			AgentID   string    `json:"agent_id"`
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"lock"`
	}
	f.must(t, 200, "GET", "/api/v1/threads/"+id, f.admin, nil, &now)
	if now.Lock == nil || now.Lock.AgentID != "ana" || !now.Lock.ExpiresAt.After(first.Add(3*time.Second)) {
		t.Fatalf("lock %+v after two leases, want ana's, renewed past %v", now.Lock, first)
	}
	if !eval[bool](p, `document.querySelector('#reply-text') !== null && document.querySelector('#lockbar.held') !== null`) {
		t.Error("the reply box went away although the lock was renewed")
	}
	// The lock bar counts down the renewed lease, not the first one (it
	// showed "0:00 left" while the lock was held).
	p.waitFor("the lock bar to show the renewed lease",
		`document.querySelector('#lockbar.held .until')?.dataset.until === document.querySelector('#mine-list [data-until]')?.dataset.until`)
}

// TestLock_AColleaguesRenewedLockIsShownRenewed: a renewal sends no event,
// so the page reads the thread again when the lock it shows has run out;
// it showed the holder's first lease at "0:00 left" for as long as they
// kept renewing.
func TestLock_AColleaguesRenewedLockIsShownRenewed(t *testing.T) {
	f := newCareFixtureTTL(t, 3*time.Second)
	id := f.ingest(t, msg{ExternalID: "renewed-1", Text: "Where is my order?"})
	b := newBrowser(t)
	bea := newPage(t, b, f.server, "bea", 1280, 800)
	bea.signIn(f.bea)
	bea.claim(id) // a click is activity: bea renews
	ana := newPage(t, b, f.server, "ana", 1280, 800)
	ana.signIn(f.ana)
	ana.do(chromedp.Navigate(f.url + "/#t/" + id))
	ana.waitText("#lockbar", "Bea Costa is replying")
	first := eval[string](ana, `document.querySelector('#lockbar.locked .until').dataset.until`)
	ana.waitFor("the lock shown renewed", fmt.Sprintf(`Date.parse(document.querySelector('#lockbar.locked .until')?.dataset.until) > Date.parse(%q) + 1000`, first))
}

func TestThreadView_SavedReplyRetryWithOneIdempotencyKeyNoteAndLead(t *testing.T) {
	f := newCareFixture(t)
	f.must(t, 201, "POST", "/api/v1/saved-replies", f.admin, map[string]any{"id": "hello", "title": "Hello",
		"text": "Hi {{author.name}} ({{author.handle}}), {{agent.name}} here.", "teams": []string{"care"}}, nil)
	id := f.ingest(t, msg{ExternalID: "act-1", Text: "What does the pro plan cost?",
		Author: map[string]any{"id": "u-5", "handle": "@noor", "name": "Noor"}})
	p := signedIn(t, f.server, "ana", f.ana)
	p.click(queueItem(id) + " .qclaim")
	p.waitFor("the saved replies", `document.querySelector('#saved-reply option[value="hello"]') !== null`)

	// The saved reply is filled in.
	eval[bool](p, `(() => { const s = document.querySelector('#saved-reply'); s.value = 'hello';
		s.dispatchEvent(new Event('change')); return true; })()`)
	p.waitFor("the filled-in reply", `document.querySelector('#reply-text').value === 'Hi Noor (@noor), Ana Ruiz here.'`)

	// The first send fails on the network; the retry reuses its
	// Idempotency-Key, and one reply goes out.
	firstReplyLostOnTheWayBack(p)
	p.click("#reply-send")
	p.waitText("#alert", "Your reply may not have been sent")
	p.click("#reply-send")
	p.waitFor("the retry", `window.replyKeys.length === 2`)
	p.waitText("#status-msg", "Reply sent.")
	p.waitText("#conversation .msg.out", "Hi Noor (@noor), Ana Ruiz here.")
	// The failed try's alert went with the retry that worked.
	if a := eval[string](p, `document.querySelector('#alert').textContent`); strings.Contains(a, "may not have been sent") {
		t.Errorf("after the retry was sent, the alert still says %q", a)
	}
	keys := eval[[]string](p, `window.replyKeys`)
	if len(keys) != 2 || keys[0] != keys[1] || !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(keys[0]) {
		t.Errorf("Idempotency-Keys %q, want one UUID sent twice", keys)
	}
	var msgs struct {
		Items []struct {
			Direction string `json:"direction"`
		} `json:"items"`
	}
	f.must(t, 200, "GET", "/api/v1/threads/"+id+"/messages", f.admin, nil, &msgs)
	if n := len(msgs.Items); n != 2 {
		t.Errorf("%d messages after a retried reply, want 2 (one in, one out)", n)
	}

	// A note, a tag, the audit trail.
	p.do(chromedp.SendKeys(chromedp.CSS("#note-text"), "Asked about pricing; sales should follow up."))
	p.click("#note-add")
	p.waitText(".note-list", "Asked about pricing")
	p.do(chromedp.SendKeys(chromedp.CSS("#tag-input"), "pricing"))
	p.click("#act-tag")
	p.waitText(".thread-head .tags", "pricing")
	p.click(".audit summary")
	p.waitText(".audit-list", "Claimed by Ana Ruiz")
	p.waitText(".audit-list", "Reply sent by Ana Ruiz")

	// Hand to sales as a lead: the thread leaves Ana's teams.
	p.click("#act-lead")
	p.waitText("#status-msg", "Handed to Sales as a lead.")
	var th struct {
		Team string   `json:"team"`
		Tags []string `json:"tags"`
	}
	f.must(t, 200, "GET", "/api/v1/threads/"+id, f.admin, nil, &th)
	if th.Team != "sales" || !slices.Contains(th.Tags, "lead") {
		t.Errorf("after the hand-off: team %q tags %v, want sales with lead", th.Team, th.Tags)
	}
	p.waitFor("the thread view to close", `document.querySelector('#thread-body').hidden`)
}

func TestClaimNext_ByKeyboardShortcut_ThenRelease(t *testing.T) {
	f := newCareFixture(t)
	p := signedIn(t, f.server, "ana", f.ana)

	p.key("n")
	p.waitText("#status-msg", "Nothing to claim")

	id := f.ingest(t, msg{ExternalID: "kb-1", Text: "How much is the premium plan?"})
	p.waitText(queueItem(id), "premium plan")
	p.key("n")
	p.waitFor("the claimed thread with a reply box", `document.querySelector('#lockbar.held') !== null && document.activeElement?.id === 'reply-text'`)
	p.waitText("#mine-list", "María")
	if th := f.thread(t, id); th.Lock == nil || th.Lock.AgentID != "ana" {
		t.Fatalf("after N: lock %+v, want ana's", th.Lock)
	}

	// A reload recovers the held lock (the token is kept only in memory
	// and comes back from GET /api/v1/me/locks) and reopens the thread.
	p.do(chromedp.Reload())
	p.waitFor("the recovered lock", `document.querySelector('#lockbar.held') !== null && document.querySelector('#reply-text') !== null`)
	// Web storage holds which threads the tab took up, and no token.
	var locks struct {
		Items []struct {
			Lock struct {
				Token string `json:"token"`
				Fence int64  `json:"fence"`
			} `json:"lock"`
		} `json:"items"`
	}
	f.must(t, 200, "GET", "/api/v1/me/locks", f.ana, nil, &locks)
	if len(locks.Items) != 1 || locks.Items[0].Lock.Token == "" {
		t.Fatalf("ana's locks: %+v", locks)
	}
	stored := eval[string](p, `JSON.stringify([{ ...localStorage }, { ...sessionStorage }])`)
	if want := fmt.Sprintf(`[{},{"switchboard.engaged":"{\"%s\":%d}"}]`, id, locks.Items[0].Lock.Fence); stored != want ||
		strings.Contains(stored, locks.Items[0].Lock.Token) {
		t.Errorf("web storage holds %s, want only %s", stored, want)
	}

	// Esc leaves the reply box; U releases.
	p.do(chromedp.Focus(chromedp.CSS("#reply-text")), chromedp.KeyEvent(kb.Escape))
	p.key("u")
	p.waitFor("the release", `document.querySelector('#reply-text') === null && document.querySelector('#lockbar.free') !== null`)
	p.waitText("#status-msg", "Released")
	p.waitText(queueItem(id), "premium plan")
	if th := f.thread(t, id); th.Lock != nil || th.Status != "queued" {
		t.Errorf("after U: %+v, want queued and unlocked", th)
	}
}

func TestLostLock_SupervisorUnlocks(t *testing.T) {
	f := newCareFixture(t)
	id1 := f.ingest(t, msg{ExternalID: "lost-1", Text: "Where is my refund?", Author: map[string]any{"id": "u-1", "name": "Li"}})
	id2 := f.ingest(t, msg{ExternalID: "lost-2", Text: "Still waiting for an answer", Author: map[string]any{"id": "u-2", "name": "Omar"}})
	b := newBrowser(t)

	t.Run("the page hears of it", func(t *testing.T) {
		p := newPage(t, b, f.server, "bea", 1280, 800)
		p.signIn(f.bea)
		p.claim(id2)
		f.must(t, 200, "POST", "/api/v1/threads/"+id2+"/unlock", f.sam, nil, nil)
		p.waitText("#alert", "You no longer hold this thread")
		p.waitText("#alert", "Sam Supervisor broke your lock")
		p.waitFor("the reply box to go", `document.querySelector('#reply-text') === null`)

		// An admin erases a thread she holds: she hears of it, and it
		// leaves her queue.
		id3 := f.ingest(t, msg{ExternalID: "lost-3", Text: "Please delete my data", Author: map[string]any{"id": "u-3", "name": "Ida"}})
		p.claim(id3)
		f.must(t, 204, "DELETE", "/api/v1/threads/"+id3, f.admin, nil, nil)
		p.waitText("#alert", "erased it and everything on it")
		p.waitFor("the reply box to go", `document.querySelector('#reply-text') === null`)
		p.waitFor("the erased thread to leave the queue", `document.querySelector(`+strconv.Quote(queueItem(id3))+`) === null`)
	})

	t.Run("the reply is refused", func(t *testing.T) {
		// The event stream is blocked, so the page learns of the lost lock
		// only from the reply's 409 lock_lost; the dropped stream shows.
		p := newPage(t, b, f.server, "ana", 1280, 800)
		p.block(f.url + "/api/v1/events*")
		p.submitKey(f.ana)
		p.waitFor("the reconnecting banner", `!document.querySelector('#conn-banner').hidden`)
		p.waitText("#conn-banner", "reconnecting")
		p.claim(id1)

		f.must(t, 200, "POST", "/api/v1/threads/"+id1+"/unlock", f.sam, nil, nil)
		p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "Refund sent today"))
		p.click("#reply-send")
		p.waitText("#alert", "You no longer hold this thread")
		p.waitFor("the reply box to go", `document.querySelector('#reply-text') === null`)
		var msgs struct {
			Items []struct{ Direction string }
		}
		f.must(t, 200, "GET", "/api/v1/threads/"+id1+"/messages", f.admin, nil, &msgs)
		for _, m := range msgs.Items {
			if m.Direction == "outbound" {
				t.Error("a reply went out through a lost lock")
			}
		}
	})
}

// TestLock_AssignedToItsHolderAgainKeepsTheReplyBox: a supervisor who
// assigns a thread to the agent already holding it replaces her lock with
// a new one. The page takes the new lock: no "you no longer hold" alert,
// the reply box stays, and the reply goes out.
func TestLock_AssignedToItsHolderAgainKeepsTheReplyBox(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "again-1", Text: "My parcel never came", Author: map[string]any{"id": "u-1", "name": "Li"}})
	p := signedIn(t, f.server, "bea", f.bea)
	p.claim(id)
	// The thread's own reload is held back, so the view still shows the old
	// lock when she sends: the new lock must count, not the stale view.
	p.block(f.url + "/api/v1/threads/" + id)
	f.must(t, 200, "POST", "/api/v1/threads/"+id+"/assign", f.sam, map[string]any{"agent_id": "bea"}, nil)
	p.waitText("#status-msg", "A thread is waiting for you: Li")
	if alert := eval[string](p, `document.querySelector('#alert').textContent`); strings.Contains(alert, "no longer hold") {
		t.Fatalf("assigned to her again, the page says %q", alert)
	}
	p.waitFor("the reply box", `document.querySelector('#reply-text') !== null`)
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "It ships again today"))
	p.click("#reply-send")
	p.waitText("#status-msg", "Reply sent.")
	var msgs struct {
		Items []struct{ Direction, Text string }
	}
	f.must(t, 200, "GET", "/api/v1/threads/"+id+"/messages", f.sam, nil, &msgs)
	if last := msgs.Items[len(msgs.Items)-1]; last.Direction != "outbound" || last.Text != "It ships again today" {
		t.Fatalf("the thread's last message is %+v, want her reply", last)
	}
}

// TestQueue_AFailedLoadsAlertGoesWhenALoadSucceeds: while the queue cannot
// be loaded the page says so; once a load succeeds the alert goes.
func TestQueue_AFailedLoadsAlertGoesWhenALoadSucceeds(t *testing.T) {
	f := newCareFixture(t)
	p := signedIn(t, f.server, "ana", f.ana)
	p.waitText("#queue-list", "Nobody is waiting")
	p.settled()
	p.block(f.url + "/api/v1/queue*")
	f.ingest(t, msg{ExternalID: "blocked-1", Text: "Anyone there?"})
	p.waitText("#alert", "Some queues could not be loaded")
	p.block()
	id := f.ingest(t, msg{ExternalID: "blocked-2", Text: "Hello again"})
	p.waitText(queueItem(id), "Hello again")
	p.waitFor("the alert to go", `document.querySelector('#alert').textContent === ''`)
}

func TestRevokedKey_BackToSignInWithAMessage(t *testing.T) {
	f := newCareFixture(t)
	p := signedIn(t, f.server, "ana", f.ana)
	f.must(t, 200, "POST", "/api/v1/agents/ana/rotate-key", f.admin, nil, nil)
	p.key("n")
	p.waitFor("the sign-in form", `!document.querySelector('#signin-view').hidden && document.querySelector('#app').hidden`)
	p.waitText("#signin-msg", "revoked")
}

func TestSupervisor_SeesAllTeamsWithCounts(t *testing.T) {
	f := newCareFixture(t)
	f.team(t, "engagement-twitter", "Engagement · X", "engagement")
	f.rule(t, "twitter", 5, map[string]any{"networks": []string{"twitter"}}, map[string]any{"team": "engagement-twitter"})
	f.rule(t, "leads", 1, map[string]any{"text_any": []string{"price"}}, map[string]any{"team": "sales", "add_tags": []string{"lead"}})
	for i, m := range []msg{
		{Text: "broken again"}, {Text: "refund please"}, {Text: "no answer yet"},
		{Network: "twitter", Text: "love it"}, {Network: "twitter", Text: "hello"},
		{Text: "what is the price?"},
	} {
		m.ExternalID = fmt.Sprintf("sup-%d", i)
		f.ingest(t, m)
	}
	p := signedIn(t, f.server, "sam", f.sam)
	p.waitFor("the overview", `!document.querySelector('#overview').hidden`)
	want := map[string]string{"care": "3", "engagement-twitter": "2", "sales": "1", "triage": "0"}
	for team, n := range want {
		p.waitText(fmt.Sprintf(`#overview-rows tr[data-team=%q] .queued`, team), n)
		p.waitText(fmt.Sprintf(`#team-tabs [data-team=%q] .count`, team), n)
	}
	rows := eval[int](p, `document.querySelectorAll('#overview-rows tr').length`)
	if rows != len(want) {
		t.Errorf("overview has %d rows, want %d teams", rows, len(want))
	}
	p.waitFor("an oldest wait", `/\ds/.test(document.querySelector('#overview-rows tr[data-team="care"] .oldest').textContent)`)

	// Counts follow the live stream.
	p.settled()
	f.ingest(t, msg{ExternalID: "sup-live", Text: "one more"})
	p.waitText(`#overview-rows tr[data-team="care"] .queued`, "4")
}

func TestPhoneWidth_OneColumnWithoutHorizontalScrolling(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "phone-1", Text: "Averyveryverylongwordwithoutanyspacesthatcouldpushthelayoutwiderthanthescreen " + strings.Repeat("and more text ", 20)})
	b := newBrowser(t)
	p := newPage(t, b, f.server, "ana", 390, 844)
	p.signIn(f.ana)
	p.waitText(queueItem(id), "Averyvery")
	noOverflow := `document.documentElement.scrollWidth <= window.innerWidth`
	if !eval[bool](p, noOverflow) {
		t.Errorf("queue view overflows: scrollWidth %d > innerWidth %d",
			eval[int](p, `document.documentElement.scrollWidth`), eval[int](p, `window.innerWidth`))
	}
	p.click(queueItem(id) + " .qclaim")
	p.waitFor("the thread alone on screen", `document.querySelector('#reply-text') !== null && getComputedStyle(document.querySelector('#queues')).display === 'none'`)
	if !eval[bool](p, noOverflow) {
		t.Errorf("thread view overflows: scrollWidth %d > innerWidth %d",
			eval[int](p, `document.documentElement.scrollWidth`), eval[int](p, `window.innerWidth`))
	}
	p.click("#thread .back")
	p.waitFor("the queues again", `getComputedStyle(document.querySelector('#queues')).display !== 'none' && getComputedStyle(document.querySelector('#thread')).display === 'none'`)
}

// TestOverview_TheOldestWaitIsCountedByTheServersClock: with the
// browser's clock ten minutes behind, the supervisors' "oldest wait" said
// 10m for a thread queued just now (its base was read on the browser's
// clock, its ticks on the server's).
func TestOverview_TheOldestWaitIsCountedByTheServersClock(t *testing.T) {
	f := newCareFixture(t)
	f.ingest(t, msg{ExternalID: "skew-1", Text: "Hello?"})
	p := newPage(t, newBrowser(t), f.server, "sam", 1280, 800)
	p.onNewDocument(`(() => { const real = Date.now; Date.now = () => real.call(Date) - 600000; })()`)
	p.signIn(f.sam)
	p.waitFor("the care row of the overview", `!!document.querySelector('#overview-rows tr[data-team="care"] .oldest')`)
	p.waitFor("the oldest wait to show", `/\d/.test(document.querySelector('#overview-rows tr[data-team="care"] .oldest').textContent)`)
	if got := eval[string](p, `document.querySelector('#overview-rows tr[data-team="care"] .oldest').textContent`); strings.Contains(got, "m") {
		t.Fatalf("oldest wait %q for a thread queued seconds ago", got)
	}
}

// TestPhone_ALongNameWrapsInsteadOfWideningThePage: names come from the
// networks; a 48-character one without a space made a phone's page 650 px
// wide, the reply box and Send off screen.
func TestPhone_ALongNameWrapsInsteadOfWideningThePage(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "long-1", Text: "Hi", Author: map[string]any{"id": "u-long", "name": "Customer_Service_Complaints_Department_2024_XYZ",
		"handle": "@Customer_Service_Complaints_Dept_2024"}})
	p := newPage(t, newBrowser(t), f.server, "ana", 360, 740)
	p.signIn(f.ana)
	p.waitFor("the queue item", fmt.Sprintf(`!!document.querySelector(%q)`, queueItem(id)))
	if w := eval[int](p, `document.documentElement.scrollWidth`); w > 360 {
		t.Fatalf("the queue is %d px wide at 360", w)
	}
	p.claim(id)
	if w := eval[int](p, `document.documentElement.scrollWidth`); w > 360 {
		t.Fatalf("the thread is %d px wide at 360", w)
	}
	// The questions put in place of a button wrap too.
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "Hello"))
	p.click("#act-release")
	p.click("#signout")
	p.waitFor("both questions", `!!document.querySelector('#act-release-q') && !document.querySelector('#signout-confirm').hidden`)
	if w := eval[int](p, `document.documentElement.scrollWidth`); w > 360 {
		t.Fatalf("the thread with its questions is %d px wide at 360", w)
	}
}

// TestHandOver_ToATeamOfOthersKeepsTheConfirmationAndFocus: handing a
// thread to sales takes it off the page of a care agent; the confirmation
// stays and focus goes back to the queue (the reload's 404 replaced the
// message and focus was lost on the page's body).
func TestHandOver_ToATeamOfOthersKeepsTheConfirmationAndFocus(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "lead-1", Text: "How much for 500 units?"})
	p := signedIn(t, f.server, "ana", f.ana)
	p.claim(id)
	p.click("#act-lead")
	p.waitText("#status-msg", "Handed to Sales as a lead.")
	p.waitFor("the thread to close", `document.querySelector('#thread-body').hidden`)
	if el := eval[string](p, `document.activeElement.tagName`); el == "BODY" {
		t.Fatal("focus was lost on the page's body")
	}
	if got := eval[string](p, `document.querySelector('#status-msg').textContent`); !strings.Contains(got, "Handed to Sales") {
		t.Fatalf("status %q", got)
	}
}

// TestHandOver_TheThreadOpenedMeanwhileStaysOpen: the hand-over's answer
// closed whatever thread was open when it came, not the one handed over.
func TestHandOver_TheThreadOpenedMeanwhileStaysOpen(t *testing.T) {
	f := newCareFixture(t)
	a := f.ingest(t, msg{ExternalID: "lead-a", Thread: "ta", Text: "How much for 500 units?"})
	b := f.ingest(t, msg{ExternalID: "other-b", Thread: "tb", Text: "Where is my order?", Author: map[string]any{"id": "u-b", "name": "Bob B"}})
	p := newPage(t, newBrowser(t), f.server, "ana", 1280, 800)
	p.onNewDocument(fmt.Sprintf(slowFetch, `/transfer`, 1500))
	p.signIn(f.ana)
	p.claim(a)
	p.click("#act-lead")
	p.click(queueItem(b) + " .qopen")
	p.waitText("#thread-h", "Bob B")
	p.waitText("#status-msg", "Handed to Sales as a lead.")
	if hidden := eval[bool](p, `document.querySelector('#thread-body').hidden`); hidden || !strings.HasSuffix(eval[string](p, `location.hash`), b) {
		t.Fatalf("the thread opened while the hand-over was under way was closed (hash %q)", eval[string](p, `location.hash`))
	}
}

// anaEditsAfterAnUncertainSend is Ana's first send of "Yes, it is" lost on
// its way back (it reached the server), then her edit sent with the same
// key: the server answered with the first text, and the page kept the
// edit, to send under a new key.
func anaEditsAfterAnUncertainSend(t *testing.T) (*careFixture, string, *page) {
	t.Helper()
	f, id, p := anaTyping(t, "Is it in stock?", "Yes, it is")
	firstReplyLostOnTheWayBack(p)
	p.click("#reply-send")
	p.waitText("#alert", "may not have been sent")
	// Edit and send in one go: the reload after the failed send redraws
	// the reply box (from the draft, which the input event updates).
	eval[bool](p, `(() => { const ta = document.querySelector('#reply-text');
		ta.value = 'Yes, it is, and it ships today'; ta.dispatchEvent(new Event('input', { bubbles: true }));
		document.querySelector('#reply-send').click(); return true; })()`)
	p.waitText("#alert", "this edited text was not sent")
	return f, id, p
}

// TestReply_AnEditAfterAnUncertainSendIsNotLost: a send that failed on the
// network had reached the server; the agent edited the text and sent
// again with the same key, the server answered with the first text, and
// the page said "Reply sent." and threw the edit away.
func TestReply_AnEditAfterAnUncertainSendIsNotLost(t *testing.T) {
	f, id, p := anaEditsAfterAnUncertainSend(t)
	if v := eval[string](p, `document.querySelector('#reply-text').value`); v != "Yes, it is, and it ships today" {
		t.Fatalf("the reply box holds %q, want the edit kept", v)
	}
	p.click("#reply-send") // under a new key: another reply
	p.waitText("#status-msg", "Reply sent.")
	out := f.replies(t, id)
	if strings.Join(out, "|") != "Yes, it is|Yes, it is, and it ships today" {
		t.Fatalf("replies sent: %q", out)
	}
	if keys := eval[[]string](p, `window.replyKeys`); len(keys) != 3 || keys[0] != keys[1] || keys[2] == keys[1] {
		t.Fatalf("Idempotency-Keys %q, want the first twice, then a new one", keys)
	}
}

// TestRTL_MessagesAndRepliesRunInTheirOwnDirection: Arabic text was laid
// out left to right, with punctuation and numbers at the wrong end.
func TestRTL_MessagesAndRepliesRunInTheirOwnDirection(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "rtl-1", Text: "مرحبا، طلبي وصل مكسورا! رقم الطلب 4411."})
	p := signedIn(t, f.server, "ana", f.ana)
	p.waitFor("the queue item", fmt.Sprintf(`!!document.querySelector(%q)`, queueItem(id)))
	if d := eval[string](p, `getComputedStyle(document.querySelector('#queue-list .preview')).direction`); d != "rtl" {
		t.Fatalf("the preview runs %s", d)
	}
	p.claim(id)
	if d := eval[string](p, `getComputedStyle(document.querySelector('#conversation .msg .text')).direction`); d != "rtl" {
		t.Fatalf("the message runs %s", d)
	}
	if d := eval[string](p, `document.querySelector('#reply-text').dir`); d != "auto" {
		t.Fatalf("the reply box's dir is %q, want auto", d)
	}
}

// recordRequests (a pattern for fmt) records, in window.requests, each
// request the page makes whose URL matches the regular expression: its URL,
// body and time (performance.now()).
const recordRequests = `(() => {
	const orig = window.fetch, match = new RegExp(%q); window.requests = [];
	window.fetch = (url, init) => {
		if (match.test(String(url))) window.requests.push({ url: String(url), body: init && init.body, at: performance.now() });
		return orig(url, init);
	};
})()`

// TestLive_QueuesAreReloadedOnceASecondAndOnlyOnScreen: while events keep
// coming, a page reloads the queue on screen at most about once a second,
// leaves the other tabs for later, and does not redraw a queue that has not
// changed. It reloaded every tab within 200 ms of every event and redrew
// the list each time: a team of pages multiplied each event into a load the
// server could not carry, a supervisor with many teams hit their own rate
// limit, and clicks on a queue item were lost to the redraws.
func TestLive_QueuesAreReloadedOnceASecondAndOnlyOnScreen(t *testing.T) {
	f := newCareFixture(t)
	f.rule(t, "to-sales", 5, map[string]any{"text_any": []string{"buy"}}, map[string]any{"team": "sales"})
	f.ingest(t, msg{ExternalID: "waiting", Thread: "waiting", Text: "hello"})
	p := newPage(t, newBrowser(t), f.server, "sam", 1280, 800)
	p.onNewDocument(fmt.Sprintf(recordRequests, `/queue\?team=`))
	p.signIn(f.sam)
	p.waitFor("the care queue on screen", `document.querySelectorAll('#queue-list li[data-thread]').length === 1 && document.querySelector('#team-tabs [data-team="care"]').getAttribute('aria-pressed') === 'true'`)
	eval[bool](p, `(window.marked = document.querySelector('#queue-list li[data-thread]'), window.start = performance.now(), true)`)

	// Messages for sales, off screen: events the supervisor's page follows,
	// none of which changes the care queue.
	stop := f.postEvery(t, func(n int) map[string]any {
		return map[string]any{"network": "instagram", "external_id": fmt.Sprintf("buy-%d", n),
			"profile": "@acme", "kind": "dm", "text": "I want to buy", "author": map[string]any{"id": fmt.Sprintf("u-buy-%d", n)}}
	})
	p.waitFor("four reloads of the care queue while the events come",
		`window.requests.filter((r) => r.url.includes('team=care&') && r.at > window.start).length >= 4`)
	stop()
	type counts struct{ Care, Sales, Elapsed float64 }
	c := eval[counts](p, `(() => {
		const since = window.requests.filter((r) => r.at > window.start);
		return { care: since.filter((r) => r.url.includes('team=care&')).length, sales: since.filter((r) => r.url.includes('team=sales&')).length,
			elapsed: performance.now() - window.start };
	})()`)
	if c.Care > c.Elapsed/1000+2 {
		t.Fatalf("the queue on screen was loaded %v times in %.1f s, want about once a second at most", c.Care, c.Elapsed/1000)
	}
	if c.Sales > 1 {
		t.Fatalf("the queue off screen was loaded %v times in %.1f s of events, want it left for later", c.Sales, c.Elapsed/1000)
	}
	if !eval[bool](p, `window.marked === document.querySelector('#queue-list li[data-thread]')`) {
		t.Fatal("the care queue was redrawn though nothing in it changed")
	}
	// Selected, the stale tab is loaded at once.
	p.click(`#team-tabs [data-team="sales"]`)
	p.waitFor("the sales queue", `document.querySelectorAll('#queue-list li[data-thread]').length > 0`)
}

// TestReply_TheBoxIsNotReplacedWhileTheCustomerWrites: a new message from
// the customer redraws the conversation around the reply box, not the box:
// it was rebuilt with each message, so the agent's undo history (and an
// input method's composition) was lost while they typed.
func TestReply_TheBoxIsNotReplacedWhileTheCustomerWrites(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "typing-0", Thread: "typing", Text: "My parcel is late"})
	p := signedIn(t, f.server, "ana", f.ana)
	p.click(queueItem(id) + " .qclaim")
	p.waitFor("the reply box", `document.querySelector('#reply-text') !== null && document.querySelectorAll('#conversation .msg').length === 1`)
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "Sorry to hear"))
	eval[bool](p, `(window.box = document.querySelector('#reply-text'), true)`)
	f.ingest(t, msg{ExternalID: "typing-1", Thread: "typing", Text: "It was due on Monday"})
	p.waitFor("the customer's new message", `document.querySelectorAll('#conversation .msg').length === 2`)
	if !eval[bool](p, `window.box === document.querySelector('#reply-text') && document.activeElement === window.box && window.box.value === 'Sorry to hear'`) {
		t.Fatal("the reply box was replaced (or lost its text or focus) when the customer's message came in")
	}
	// It is still the thread's box: what is typed on goes out.
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), ", Noor."), chromedp.Click(chromedp.CSS("#reply-send")))
	p.waitFor("the reply", `[...document.querySelectorAll('#conversation .msg.out')].some((m) => m.textContent.includes('Sorry to hear, Noor.'))`)
}

// longThread posts n messages of one customer into the conversation
// thread (as the fixture's msg does), in batches of 500.
func (s *server) longThread(t *testing.T, thread string, n int) {
	t.Helper()
	for start := 0; start < n; start += 500 {
		var batch []map[string]any
		for i := start; i < min(start+500, n); i++ {
			batch = append(batch, map[string]any{"network": "instagram", "external_id": fmt.Sprintf("%s-%d", thread, i),
				"thread_external_id": thread, "profile": "@acme", "kind": "dm", "text": "and another thing",
				"author": map[string]any{"id": "u-" + thread}})
		}
		s.must(t, 200, "POST", "/api/v1/messages/batch", s.admin, map[string]any{"messages": batch}, nil)
	}
}

// TestThread_TheAuditTrailOfALongThreadEndsWithItsNewestEvent: a thread
// with more than 500 events showed its first 500 ("Audit trail (500)"),
// without the claim that had just happened; the page now follows the
// list's pages.
func TestThread_TheAuditTrailOfALongThreadEndsWithItsNewestEvent(t *testing.T) {
	f := newCareFixture(t)
	f.longThread(t, "long", 600)
	id := f.ingest(t, msg{ExternalID: "long-last", Thread: "long", Text: "hello?"})
	p := signedIn(t, f.server, "ana", f.ana)
	p.click(queueItem(id) + " .qclaim")
	p.waitFor("the claim at the end of the audit trail",
		`document.querySelectorAll('.audit-list li').length > 600 && document.querySelector('.audit-list li:last-child')?.textContent.includes('Claimed by Ana Ruiz')`)
}

// TestThread_AConversationLongerThanThePageShowsSaysSo: the page reads
// at most 5,000 messages of a thread, oldest first; past that the newest
// (the ones to answer) were missing with no sign of it.
func TestThread_AConversationLongerThanThePageShowsSaysSo(t *testing.T) {
	f := newCareFixture(t)
	f.longThread(t, "huge", 5000)
	id := f.ingest(t, msg{ExternalID: "huge-last", Thread: "huge", Text: "the newest"})
	p := signedIn(t, f.server, "ana", f.ana)
	p.click(queueItem(id) + " .qopen")
	p.waitFor("the conversation and a note that it goes on",
		`document.querySelectorAll('#conversation .msg').length === 5000 && document.querySelector('#conversation li[role="note"]')?.textContent.includes('the newest are not')`)
}

// TestThread_ALongThreadThatGrowsIsReadFromItsLastPage: each new message
// reloaded the whole open thread, page after page, so a conversation of
// thousands of messages cost the agent's page (and the server) more with
// every message. Now the lists are read again only from their last page
// (paging is stable while items arrive).
func TestThread_ALongThreadThatGrowsIsReadFromItsLastPage(t *testing.T) {
	f := newCareFixture(t)
	f.longThread(t, "grows", 1200)
	id := f.ingest(t, msg{ExternalID: "grows-last", Thread: "grows", Text: "still there?"})
	p := newPage(t, newBrowser(t), f.server, "ana", 1280, 800)
	p.onNewDocument(fmt.Sprintf(recordRequests, `/threads/`+id+`/(messages|events)\?`))
	p.signIn(f.ana)
	p.click(queueItem(id) + " .qopen")
	p.waitFor("the whole conversation", `document.querySelectorAll('#conversation .msg').length === 1201`)
	eval[bool](p, `(window.start = performance.now(), true)`)

	f.ingest(t, msg{ExternalID: "grows-new", Thread: "grows", Text: "hello again"})
	p.waitFor("the new message at the end", `document.querySelectorAll('#conversation .msg').length === 1202 && document.querySelector('#conversation .msg:last-of-type')?.textContent.includes('hello again')`)
	type read struct{ Requests, FromStart float64 }
	got := eval[read](p, `(() => {
		const since = window.requests.filter((r) => r.at > window.start);
		return { requests: since.length, fromStart: since.filter((r) => !r.url.includes('cursor=')).length };
	})()`)
	if got.Requests == 0 || got.FromStart > 0 {
		t.Fatalf("after one new message the page read %v pages of messages and events, %v of them from the start; want only their last pages", got.Requests, got.FromStart)
	}
	if n := eval[float64](p, `document.querySelectorAll('.audit-list li').length`); n < 1202 {
		t.Fatalf("the audit trail shows %v events after the new message, want all of them (at least 1202)", n)
	}

	// A message long before the last page changes (its customer deleted
	// it on the network): that one is read again too.
	if _, err := f.svc.MessageDeleted(context.Background(), inbox.Principal{Role: store.RoleIngest}, "instagram", "grows-0"); err != nil {
		t.Fatal(err)
	}
	p.waitFor("the first message emptied", `document.querySelector('#conversation .msg')?.textContent.includes(`+js(store.DeletedText)+`)`)
	// Or edited it.
	if _, err := f.svc.MessageEdited(context.Background(), inbox.Principal{Role: store.RoleIngest}, "instagram", "grows-1", "edited long ago", time.Time{}); err != nil {
		t.Fatal(err)
	}
	p.waitFor("the second message edited", `document.querySelectorAll('#conversation .msg')[1]?.textContent.includes('edited long ago')`)
}

// TestThread_AMessageChangedDuringALoadIsReadAgain: a message deleted
// while the thread was loading (the deletion's mark was on the lists the
// load then replaced) kept its text on screen.
func TestThread_AMessageChangedDuringALoadIsReadAgain(t *testing.T) {
	f := newCareFixture(t)
	f.longThread(t, "during", 600)
	id := f.ingest(t, msg{ExternalID: "during-last", Thread: "during", Text: "still there?"})
	p := newPage(t, newBrowser(t), f.server, "ana", 1280, 800)
	p.onNewDocument(fmt.Sprintf(slowFetch, `messages.limit=500.*cursor=`, 1500))
	p.onNewDocument(fmt.Sprintf(recordRequests, `/threads/`+id+`/messages\?`))
	p.signIn(f.ana)
	p.click(queueItem(id) + " .qopen")
	p.waitFor("the whole conversation", `document.querySelectorAll('#conversation .msg').length === 601`)
	eval[bool](p, `(window.start = performance.now(), true)`)

	f.ingest(t, msg{ExternalID: "during-new", Thread: "during", Text: "hello again"})
	p.waitFor("a load under way", `window.requests.some((r) => r.at > window.start)`)
	if _, err := f.svc.MessageDeleted(context.Background(), inbox.Principal{Role: store.RoleIngest}, "instagram", "during-0"); err != nil {
		t.Fatal(err)
	}
	p.waitFor("the first message emptied", `document.querySelector('#conversation .msg')?.textContent.includes(`+js(store.DeletedText)+`)`)
}

// TestReply_WhatIsTypedAfterASentReplyIsKeptAsTheDraft: the reply box
// stays across redraws, so after a reply went out (its draft done with) the
// text typed next must go to a new draft: it went to the old one, and
// opening another thread and coming back showed an empty box.
func TestReply_WhatIsTypedAfterASentReplyIsKeptAsTheDraft(t *testing.T) {
	f := newCareFixture(t)
	a := f.ingest(t, msg{ExternalID: "draft-a", Thread: "draft-a", Text: "first thread"})
	b := f.ingest(t, msg{ExternalID: "draft-b", Thread: "draft-b", Text: "second thread"})
	p := signedIn(t, f.server, "ana", f.ana)
	p.claim(a)
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "one"))
	p.click("#reply-send")
	p.waitText("#status-msg", "Reply sent.")
	p.waitFor("the reply shown", `document.querySelectorAll('#conversation .msg.out').length === 1`)
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "second draft"))
	p.click(queueItem(b) + " .qopen")
	p.waitFor("the other thread", `document.querySelector('#thread-h')?.textContent.includes('second thread') || (document.querySelector('#conversation')?.textContent.includes('second thread') && !document.querySelector('#reply-text'))`)
	p.click(`#mine-list li[data-thread="` + a + `"] .mine-open`)
	p.waitFor("the draft back in the reply box", `document.querySelector('#reply-text')?.value === 'second draft'`)
}

// TestThread_ANewMessageAndAFailedDeliveryAreAnnounced: the customer
// writing again in the open thread is said in the page's polite status
// region, and a reply the connector could not deliver is shown and said as
// an alert. The page never learned of a failed delivery (no event was
// sent for it), and said nothing of a new message, so an agent with a
// screen reader, typing, missed both.
func TestThread_ANewMessageAndAFailedDeliveryAreAnnounced(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "say-0", Thread: "say", Text: "Where is my parcel?"})
	p := signedIn(t, f.server, "ana", f.ana)
	p.claim(id)
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "On its way"), chromedp.Click(chromedp.CSS("#reply-send")))
	p.waitFor("the reply, not yet delivered", `document.querySelector('#conversation .msg.out .delivery')?.textContent === 'Awaiting delivery'`)

	f.ingest(t, msg{ExternalID: "say-1", Thread: "say", Text: "Thanks!"})
	p.waitText("#status-msg", "New message from")

	f.replyFailed(t, id, "blocked by the user")
	p.waitFor("the failed delivery shown", `document.querySelector('#conversation .msg.out .delivery')?.textContent === 'Not delivered: blocked by the user'`)
	p.waitText("#alert", "was not delivered: blocked by the user")
}

// TestThread_AnEditedMessageShowsItsNewTextMarkedEdited: the customer
// edited a message while the agent had the thread open; the page kept the
// first text.
func TestThread_AnEditedMessageShowsItsNewTextMarkedEdited(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "edit-0", Thread: "edit", Text: "My order is #123"})
	p := signedIn(t, f.server, "ana", f.ana)
	p.click(queueItem(id) + " .qopen")
	p.waitFor("the message", `document.querySelector('#conversation .msg.in .text')?.textContent === 'My order is #123'`)
	if _, err := f.svc.MessageEdited(context.Background(), inbox.Principal{Role: store.RoleIngest}, "instagram", "edit-0", "My order is #124", time.Time{}); err != nil {
		t.Fatal(err)
	}
	p.waitFor("the new text, marked edited", `document.querySelector('#conversation .msg.in .text')?.textContent === 'My order is #124' &&
		document.querySelector('#conversation .msg.in .edited')?.textContent === 'edited'`)
}

// replyFailed reports, as a connector does, that the thread's reply was
// not delivered.
func (s *server) replyFailed(t *testing.T, threadID, why string) {
	t.Helper()
	var th struct {
		Items []struct{ ID, Direction string } `json:"items"`
	}
	s.must(t, 200, "GET", "/api/v1/threads/"+threadID+"/messages", s.admin, nil, &th)
	out := ""
	for _, m := range th.Items {
		if m.Direction == "outbound" {
			out = m.ID
		}
	}
	s.must(t, 200, "POST", "/api/v1/messages/"+out+"/delivery", s.admin, map[string]any{"status": "failed", "error": why}, nil)
}

// anaAnswersLenaAndCloses signs Ana in, and has her claim Lena's new
// thread, answer it and close it; it returns Ana's page and the thread.
func (f *careFixture) anaAnswersLenaAndCloses(t *testing.T) (*page, string) {
	t.Helper()
	id := f.ingest(t, msg{ExternalID: "lena-0", Thread: "lena-0", Text: "Where is my parcel?",
		Author: map[string]any{"id": "u-lena", "handle": "@lena", "name": "Lena"}})
	p := signedIn(t, f.server, "ana", f.ana)
	p.claim(id)
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "On its way"))
	p.click("#reply-close")
	p.click("#reply-send")
	p.waitText("#status-msg", "Reply sent and thread closed.")
	return p, id
}

// TestReply_AFailedDeliveryIsSaidAfterTheAgentMovedOn: an agent answers
// and closes the thread, opens the next one, and the first reply then
// fails. Only the thread on screen said so, and the agent had moved on:
// the customer was left without an answer and nobody knew.
func TestReply_AFailedDeliveryIsSaidAfterTheAgentMovedOn(t *testing.T) {
	f := newCareFixture(t)
	next := f.ingest(t, msg{ExternalID: "moved-1", Thread: "moved-1", Text: "Next question"})
	p, first := f.anaAnswersLenaAndCloses(t)
	p.click(queueItem(next) + " .qopen")
	p.waitFor("the next thread", `document.querySelector('#conversation')?.textContent.includes('Next question')`)

	f.replyFailed(t, first, "blocked by the user")
	p.waitText("#alert", "Your reply to Lena was not delivered: blocked by the user")
}

// TestReply_TheNextPersonSignedInIsNotToldOfTheLastOnesReplies: the page
// remembers the replies it sent, to say when one fails; the next person
// signed in on the same page was told of the last one's, with the names of
// the customers they had answered.
func TestReply_TheNextPersonSignedInIsNotToldOfTheLastOnesReplies(t *testing.T) {
	f := newCareFixture(t)
	p, first := f.anaAnswersLenaAndCloses(t)
	p.click("#signout")
	p.waitFor("the sign-in form", `!document.querySelector('#signin-view').hidden`)
	p.do(chromedp.SendKeys(chromedp.CSS("#key"), f.sam), chromedp.Click(chromedp.CSS("#signin-submit"))) // no reload
	p.waitFor("Sam's inbox", `document.querySelector('#me-name').textContent.includes('Sam') && document.querySelector('#live-state').textContent === 'Live'`)

	f.replyFailed(t, first, "blocked by the user")
	p.waitEvent("message.delivery") // the failure's
	if a := eval[string](p, `document.querySelector('#alert').textContent`); strings.Contains(a, "Your reply") {
		t.Fatalf("Sam was told of Ana's reply: %q", a)
	}
}

// TestThread_AMessageChangedDuringItsFirstLoadIsReadAgain: the thread was
// not on screen yet, so the change was not marked, and its first load
// kept the old text.
func TestThread_AMessageChangedDuringItsFirstLoadIsReadAgain(t *testing.T) {
	f := newCareFixture(t)
	f.longThread(t, "first", 600)
	id := f.ingest(t, msg{ExternalID: "first-last", Thread: "first", Text: "still there?"})
	p := newPage(t, newBrowser(t), f.server, "ana", 1280, 800)
	p.onNewDocument(fmt.Sprintf(slowFetch, `messages.limit=500.*cursor=`, 1500))
	p.onNewDocument(fmt.Sprintf(recordRequests, `/threads/`+id+`/messages\?.*cursor=`))
	p.signIn(f.ana)
	p.click(queueItem(id) + " .qopen")
	p.waitFor("the first load under way", `window.requests.length > 0`)
	if _, err := f.svc.MessageDeleted(context.Background(), inbox.Principal{Role: store.RoleIngest}, "instagram", "first-0"); err != nil {
		t.Fatal(err)
	}
	p.waitFor("the first message emptied", `document.querySelector('#conversation .msg')?.textContent.includes(`+js(store.DeletedText)+`)`)
}

// TestLock_AnIdleAgentIsWarnedBeforeTheLockEndsAndCanKeepIt: the page
// renews a lock only while the agent is active (keys, clicks, focus), and
// someone reading with a screen reader sends none: the lock ended without
// a word before. Now, 30 s before its end, an alert says so, and "Keep the
// lock" renews it.
func TestLock_AnIdleAgentIsWarnedBeforeTheLockEndsAndCanKeepIt(t *testing.T) {
	f := newCareFixtureTTL(t, 35*time.Second) // warned 5 s after a grant
	id := f.ingest(t, msg{ExternalID: "idle-1", Text: "Hello?"})
	p := newPage(t, newBrowser(t), f.server, "ana", 1280, 800)
	p.onNewDocument(`window.switchboardActiveMs = 500`) // idle after half a second
	p.signIn(f.ana)
	p.claim(id)
	var first struct {
		Lock struct {
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"lock"`
	}
	f.must(t, 200, "GET", "/api/v1/threads/"+id, f.admin, nil, &first)
	p.waitText("#alert", "ends in")
	p.click("#alert-action") // "Keep the lock", beside the alert: no thread need be open
	deadline := time.Now().Add(waitTimeout)
	for {
		var now struct {
			Lock *struct {
				ExpiresAt time.Time `json:"expires_at"`
			} `json:"lock"`
		}
		f.must(t, 200, "GET", "/api/v1/threads/"+id, f.admin, nil, &now)
		if now.Lock != nil && now.Lock.ExpiresAt.After(first.Lock.ExpiresAt) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock %+v after Keep the lock, want renewed past %v", now.Lock, first.Lock.ExpiresAt)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Renewed: the warning is out of date (the next comes 5 s on).
	p.waitFor("the warning gone", `!document.querySelector('#alert').textContent.includes('ends in')`)
}

// TestKeyboard_FocusStaysWhereTheAgentWorks: with only a keyboard, the
// focus is never dropped to the top of the page: after signing in it is on
// the inbox (and the sign-in is said), after Send (a button disabled while
// sending) it is back in the reply box, and a redraw of "Your threads" (a
// renewal) keeps it on the thread it was on.
func TestKeyboard_FocusStaysWhereTheAgentWorks(t *testing.T) {
	f := newCareFixtureTTL(t, 3*time.Second) // renewed, and "Your threads" redrawn, every 1.5 s
	id := f.ingest(t, msg{ExternalID: "kb-1", Text: "Is it in stock?"})
	p := signedIn(t, f.server, "ana", f.ana)
	if got := eval[string](p, `document.activeElement.id`); got != "inbox-h" {
		t.Errorf("after signing in the focus is on %q, want the inbox heading", got)
	}
	p.waitText("#status-msg", "Signed in as Ana Ruiz")

	p.click(queueItem(id) + " .qclaim")
	p.waitFor("the reply box", `document.activeElement?.id === 'reply-text'`)
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "Yes, it is"), chromedp.Focus(chromedp.CSS("#reply-send")), chromedp.KeyEvent(kb.Enter))
	p.waitText("#status-msg", "Reply sent.")
	p.waitFor("the focus back in the reply box", `document.activeElement?.id === 'reply-text'`)

	p.do(chromedp.Focus(chromedp.CSS(`#mine-list li[data-thread="` + id + `"] .mine-open`)))
	eval[bool](p, `(window.mineButton = document.activeElement, true)`)
	p.waitFor("a redraw of Your threads", `window.mineButton !== document.querySelector('#mine-list .mine-open')`)
	if !eval[bool](p, `document.activeElement === document.querySelector('#mine-list li[data-thread="`+id+`"] .mine-open')`) {
		t.Fatalf("after Your threads was redrawn the focus is on %s", eval[string](p, `document.activeElement.outerHTML.slice(0, 80)`))
	}
}

// TestStatus_ArrowingThroughTheSwitchSetsOnlyTheChoice: arrow keys on the
// closed status switch change its value option by option; each change set
// the status (away, then offline), changing who gets threads on the way.
func TestStatus_ArrowingThroughTheSwitchSetsOnlyTheChoice(t *testing.T) {
	f := newCareFixture(t)
	p := newPage(t, newBrowser(t), f.server, "ana", 1280, 800)
	p.onNewDocument(fmt.Sprintf(recordRequests, `/status$`))
	p.signIn(f.ana)
	eval[bool](p, `(() => { const s = document.querySelector('#status');
		for (const v of ['away', 'offline']) { s.value = v; s.dispatchEvent(new Event('change')); } return true; })()`)
	p.waitText("#status-msg", "Your status is now offline")
	if puts := eval[[]string](p, `window.requests.map((r) => r.body)`); len(puts) != 1 || !strings.Contains(puts[0], "offline") {
		t.Fatalf("status requests %q, want one, for offline", puts)
	}
}

// TestOverview_ARedrawKeepsTheFocusOnItsTeam: the supervisors' overview is
// redrawn as events come; the focus on a team's row went to the page's top
// each time.
func TestOverview_ARedrawKeepsTheFocusOnItsTeam(t *testing.T) {
	f := newCareFixture(t)
	p := signedIn(t, f.server, "sam", f.sam)
	p.waitFor("the overview", `document.querySelector('#overview-rows tr[data-team="sales"] button') !== null`)
	p.do(chromedp.Focus(chromedp.CSS(`#overview-rows tr[data-team="sales"] button`)))
	eval[bool](p, `(window.salesButton = document.activeElement, true)`)
	f.ingest(t, msg{ExternalID: "ov-1", Text: "Hello"})
	p.waitFor("the overview redrawn with the new thread", `window.salesButton !== document.querySelector('#overview-rows tr[data-team="sales"] button') &&
		document.querySelector('#overview-rows tr[data-team="care"] .queued').textContent === '1'`)
	if !eval[bool](p, `document.activeElement === document.querySelector('#overview-rows tr[data-team="sales"] button')`) {
		t.Fatalf("after the overview was redrawn the focus is on %s", eval[string](p, `document.activeElement.outerHTML.slice(0, 80)`))
	}
}

// TestKeyboard_SingleKeyShortcutsCanBeTurnedOff: a speech-input user's
// words, or a stray key, must not claim or release threads: the one-letter
// shortcuts can be turned off, and stay off in this browser.
func TestKeyboard_SingleKeyShortcutsCanBeTurnedOff(t *testing.T) {
	f := newCareFixture(t)
	f.ingest(t, msg{ExternalID: "sk-1", Thread: "sk-1", Text: "Hello"})
	f.ingest(t, msg{ExternalID: "sk-2", Thread: "sk-2", Text: "Hello again"})
	p := newPage(t, newBrowser(t), f.server, "ana", 1280, 800)
	p.onNewDocument(fmt.Sprintf(recordRequests, `/claim`))
	p.signIn(f.ana)
	p.click("#single-keys")
	p.waitText("#status-msg", "Single-key shortcuts are off")
	p.do(chromedp.Reload())
	p.waitFor("the inbox again", `!document.querySelector('#app').hidden && document.querySelectorAll('#queue-list li[data-thread]').length === 2`)
	if eval[bool](p, `document.querySelector('#single-keys').checked`) {
		t.Fatal("the setting did not stay off across a reload")
	}
	p.do(chromedp.Focus(chromedp.CSS("#inbox-h")), chromedp.KeyEvent("n"))
	if n := eval[int](p, `window.requests.length`); n != 0 {
		t.Fatalf("N with the shortcuts off sent %d claims", n)
	}
	p.do(chromedp.Click(chromedp.CSS("#single-keys"))) // on again: N claims
	p.do(chromedp.Focus(chromedp.CSS("#inbox-h")), chromedp.KeyEvent("n"))
	p.waitFor("the claim by N", `document.querySelector('#lockbar.held') !== null`)
	var mine struct {
		Items []any `json:"items"`
	}
	f.must(t, 200, "GET", "/api/v1/me/locks", f.ana, nil, &mine)
	if len(mine.Items) != 1 {
		t.Fatalf("ana holds %d threads, want the one N claimed once the shortcuts were on (not one more while they were off)", len(mine.Items))
	}
}

// TestTabs_FollowTheAgentsTeamsWithoutAReload: an agent an admin moves
// from one team to another gets the new team's tab, and loses the old
// one's, when they come back to the page (and each minute), not only on a
// reload.
func TestTabs_FollowTheAgentsTeamsWithoutAReload(t *testing.T) {
	f := newCareFixture(t)
	f.ingest(t, msg{ExternalID: "tab-1", Text: "I want to buy"})
	f.must(t, 200, "PUT", "/api/v1/rules/to-care", f.admin, map[string]any{"position": 10, "when": map[string]any{}, "then": map[string]any{"team": "sales"}}, nil)
	f.ingest(t, msg{ExternalID: "tab-2", Thread: "tab-2", Text: "A price list?"})
	p := signedIn(t, f.server, "ana", f.ana)
	p.waitFor("the care tab only", `[...document.querySelectorAll('#team-tabs [data-team]')].map((b) => b.dataset.team).join() === 'care'`)
	f.must(t, 200, "PUT", "/api/v1/agents/ana", f.admin, map[string]any{"name": "Ana Ruiz", "teams": []string{"sales"}}, nil)
	eval[bool](p, `(window.dispatchEvent(new Event('focus')), true)`)
	p.waitFor("the sales tab shown with its queue, the care tab gone",
		`[...document.querySelectorAll('#team-tabs [data-team]')].map((b) => b.dataset.team).join() === 'sales' && document.querySelector('#team-tabs [data-team="sales"]').getAttribute('aria-pressed') === 'true' && document.querySelector('#queue-list').textContent.includes('A price list?')`)
}

// TestStatus_AChoiceJustBeforeLeavingIsStillSet: the status switch waits a
// moment before it sets a choice (arrow keys pass through options); one
// made just before the page closes must still go out.
func TestStatus_AChoiceJustBeforeLeavingIsStillSet(t *testing.T) {
	f := newCareFixture(t)
	p := signedIn(t, f.server, "ana", f.ana)
	eval[bool](p, `(() => { const s = document.querySelector('#status'); s.value = 'offline'; s.dispatchEvent(new Event('change')); return true; })()`)
	p.do(chromedp.Navigate("about:blank"))
	deadline := time.Now().Add(waitTimeout)
	for {
		var ana struct {
			Status string `json:"status"`
		}
		f.must(t, 200, "GET", "/api/v1/agents/ana", f.admin, nil, &ana)
		if ana.Status == "offline" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ana is %q after choosing offline and leaving the page", ana.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReply_ASlowSendLeavesTheNextThreadsBoxAlone: a reply still on its way
// when the agent opens another held thread and types there: its success
// emptied whatever reply box was open, the other thread's.
func TestReply_ASlowSendLeavesTheNextThreadsBoxAlone(t *testing.T) {
	f := newCareFixture(t)
	a := f.ingest(t, msg{ExternalID: "slow-a", Thread: "slow-a", Text: "first thread"})
	b := f.ingest(t, msg{ExternalID: "slow-b", Thread: "slow-b", Text: "second thread"})
	p := newPage(t, newBrowser(t), f.server, "ana", 1280, 800)
	p.onNewDocument(fmt.Sprintf(slowFetch, `replies$`, 1500))
	p.signIn(f.ana)
	p.click(queueItem(b) + " .qclaim")
	p.waitFor("b's reply box", `document.querySelector('#reply-text') !== null`)
	p.click(queueItem(a) + " .qclaim")
	p.waitFor("a's reply box", `document.querySelector('#reply-text') !== null && document.querySelector('#conversation').textContent.includes('first thread')`)
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "for a"), chromedp.Click(chromedp.CSS("#reply-send")))
	p.click(`#mine-list li[data-thread="` + b + `"] .mine-open`)
	p.waitFor("b's reply box", `document.querySelector('#reply-text') !== null && document.querySelector('#conversation').textContent.includes('second thread')`)
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "for b"))
	p.waitText("#status-msg", "Reply sent.")
	if v := eval[string](p, `document.querySelector('#reply-text').value`); v != "for b" {
		t.Fatalf("b's reply box holds %q after a's reply went out, want what was typed in it", v)
	}
}

// TestTabs_ARedrawKeepsAStatusBeingChosen: the tabs redrawn for a change
// of teams while the agent is choosing a status (the switch waits a moment
// before it sets it) put the old status back, and the choice was lost.
func TestTabs_ARedrawKeepsAStatusBeingChosen(t *testing.T) {
	f := newCareFixture(t)
	p := signedIn(t, f.server, "ana", f.ana)
	f.must(t, 200, "PUT", "/api/v1/agents/ana", f.admin, map[string]any{"name": "Ana Ruiz", "teams": []string{"care", "sales"}}, nil)
	eval[bool](p, `(() => { const s = document.querySelector('#status'); s.focus(); s.value = 'offline'; s.dispatchEvent(new Event('change'));
		window.dispatchEvent(new Event('focus')); return true; })()`)
	p.waitFor("the sales tab", `document.querySelector('#team-tabs [data-team="sales"]') !== null`)
	p.waitText("#status-msg", "Your status is now offline")
	var ana struct {
		Status string `json:"status"`
	}
	f.must(t, 200, "GET", "/api/v1/agents/ana", f.admin, nil, &ana)
	if ana.Status != "offline" {
		t.Fatalf("ana is %q after choosing offline while the tabs changed", ana.Status)
	}
}

// TestQueue_TheOpenThreadsButtonIsTheCurrentOne: aria-current was on the
// list item, and a screen reader on the button the agent tabs to did not
// say which thread was open.
func TestQueue_TheOpenThreadsButtonIsTheCurrentOne(t *testing.T) {
	f := newCareFixture(t)
	a := f.ingest(t, msg{ExternalID: "cur-a", Thread: "cur-a", Text: "first"})
	b := f.ingest(t, msg{ExternalID: "cur-b", Thread: "cur-b", Text: "second"})
	p := signedIn(t, f.server, "ana", f.ana)
	current := func(id string) string {
		return `document.querySelector('` + queueItem(id) + ` .qopen')?.getAttribute('aria-current') === 'true' && document.querySelectorAll('[aria-current]').length === 1`
	}
	p.click(queueItem(a) + " .qopen")
	p.waitFor("the first thread's button current", current(a))
	p.click(queueItem(b) + " .qopen")
	p.waitFor("the second thread's button current, alone", current(b))
	if eval[bool](p, `getComputedStyle(document.querySelector('`+queueItem(b)+`')).boxShadow === 'none'`) {
		t.Fatal("the open thread's item is not marked on screen")
	}
}

// TestThread_ThePageTitleNamesTheOpenThread: a screen reader says the
// page's title when the agent switches tabs or windows; it said
// "Switchboard inbox" whatever thread was open.
func TestThread_ThePageTitleNamesTheOpenThread(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "title-1", Text: "Hello"})
	p := signedIn(t, f.server, "ana", f.ana)
	p.click(queueItem(id) + " .qopen")
	// The title is set as the thread is read, before it is drawn.
	p.waitFor("the title and the thread", `document.title === 'María · Switchboard inbox' && document.querySelector('.back') !== null`)
	eval[bool](p, `(document.querySelector('.back').click(), true)`) // "Back to queues" (shown at phone width)
	p.waitFor("the title back", `document.title === 'Switchboard inbox'`)
}

// TestReply_ASentReplyLeavesAnotherThreadsFailureAlertAlone: the alert
// that a reply may not have been sent is about its thread; a reply going
// out in another thread cleared it, and the agent forgot the first.
func TestReply_ASentReplyLeavesAnotherThreadsFailureAlertAlone(t *testing.T) {
	f := newCareFixture(t)
	a := f.ingest(t, msg{ExternalID: "alert-a", Thread: "alert-a", Text: "first thread"})
	b := f.ingest(t, msg{ExternalID: "alert-b", Thread: "alert-b", Text: "second thread"})
	p := signedIn(t, f.server, "ana", f.ana)
	p.click(queueItem(b) + " .qclaim")
	p.waitFor("b's reply box", `document.querySelector('#reply-text') !== null`)
	p.click(queueItem(a) + " .qclaim")
	p.waitFor("a's reply box", `document.querySelector('#reply-text') !== null && document.querySelector('#conversation').textContent.includes('first thread')`)
	firstReplyLostOnTheWayBack(p)
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "for a"), chromedp.Click(chromedp.CSS("#reply-send")))
	p.waitText("#alert", "Your reply may not have been sent")
	p.click(`#mine-list li[data-thread="` + b + `"] .mine-open`)
	p.waitFor("b's reply box", `document.querySelector('#reply-text') !== null && document.querySelector('#conversation').textContent.includes('second thread')`)
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "for b"), chromedp.Click(chromedp.CSS("#reply-send")))
	p.waitText("#status-msg", "Reply sent.")
	if a := eval[string](p, `document.querySelector('#alert').textContent`); !strings.Contains(a, "may not have been sent") {
		t.Fatalf("after b's reply went out the alert about a's says %q", a)
	}
}

// TestReply_AFailedSendStaysSaidWhenTheLoadsAfterItFail: with the server
// gone, the alert that the reply may not have gone out was replaced within
// milliseconds by the thread's and the queues' failed loads, so the agent
// never saw it. Those are background alerts now, and give way.
func TestReply_AFailedSendStaysSaidWhenTheLoadsAfterItFail(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "down-1", Text: "Are you there?"})
	p := signedIn(t, f.server, "ana", f.ana)
	p.claim(id)
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "Yes, we are"))
	// The page's requests that failed, noted before the page handles them.
	eval[bool](p, `(() => { const orig = window.fetch; window.failedURLs = [];
		window.fetch = (url, init) => orig(url, init).catch((e) => { window.failedURLs.push(String(url)); throw e; });
		return true; })()`)
	p.block(f.url + "/api/v1/*")
	p.click("#reply-send")
	p.waitText("#alert", "may not have been sent")
	p.waitFor("the thread and a queue failing to load after the send", fmt.Sprintf(
		`window.failedURLs.some((u) => u.endsWith('/threads/%s')) && window.failedURLs.some((u) => u.includes('/queue?'))`, id))
	if a := eval[string](p, `document.querySelector('#alert').textContent`); !strings.Contains(a, "may not have been sent") {
		t.Fatalf("alert %q, want the failed send still said", a)
	}
}

// TestSignIn_AnAdminKeyIsNamedAndShownNoClaims: an admin key has no agent:
// the page said "Signed in as undefined." and pointed to claim shortcuts
// an admin cannot use.
func TestSignIn_AnAdminKeyIsNamedAndShownNoClaims(t *testing.T) {
	f := newCareFixture(t)
	p := signedIn(t, f.server, "admin", f.admin)
	p.waitText("#status-msg", "Signed in with an admin key.")
	p.waitText("#me-name", "Admin key")
	if shown := eval[bool](p, `[...document.querySelectorAll('.person-only')].some((el) => el.getClientRects().length > 0)`); shown {
		t.Fatal("claim, reply and release are pointed to for an admin key")
	}
}

// TestReload_AReleaseDuringALocksReadStaysReleased: a read of the
// person's locks begun before a release answered with the released lock,
// and the page showed it again as "A thread is waiting for you".
func TestReload_AReleaseDuringALocksReadStaysReleased(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "stale-1", Text: "Hello?"})
	p := newPage(t, newBrowser(t), f.server, "ana", 1280, 800)
	// In each document, the answers of the page's second and later reads
	// of its locks wait for window.letLocks().
	p.onNewDocument(`(() => { const orig = window.fetch; let n = 0; const held = [];
		window.heldLocks = () => held.length;
		window.letLocks = () => { for (const go of held.splice(0)) go(); return true; };
		window.fetch = (url, init) => /\/me\/locks/.test(String(url)) && ++n > 1
			? orig(url, init).then((r) => new Promise((go) => held.push(() => go(r)))) : orig(url, init); })()`)
	p.signIn(f.ana)
	p.claim(id)
	p.do(chromedp.Reload()) // the thread in the address; the locks are read at the start, and again once the stream is open
	p.waitFor("the second read's answer held", `window.heldLocks() === 1 && document.querySelector('#act-release') !== null`)
	p.click("#act-release")
	p.waitText("#status-msg", "Released")
	eval[bool](p, `window.letLocks()`)
	p.waitFor("every read of her locks answered", `(() => {
		window.letLocks(); // and those begun since (the release's event asks again)
		const asked = window.__log.filter((l) => l.split(' ')[1] === 'GET' && l.includes('/api/v1/me/locks')).length;
		return window.__log.filter((l) => l.includes(' read GET /api/v1/me/locks')).length === asked;
	})()`)
	if n := eval[int](p, `document.querySelectorAll('#mine-list li[data-thread]').length`); n != 0 {
		t.Fatalf("her threads show %d after the release, want none (status %q)", n, eval[string](p, `document.querySelector('#status-msg').textContent`))
	}
}

// TestReload_AStartThatIsRefusedForAMomentIsTriedAgain: a reload whose
// start-up reads got a 429 showed the sign-in form for good, with the
// session still valid. Only a 401 means signed out; the rest is retried.
func TestReload_AStartThatIsRefusedForAMomentIsTriedAgain(t *testing.T) {
	f := newCareFixture(t)
	p := signedIn(t, f.server, "ana", f.ana)
	p.onNewDocument(`(() => { const orig = window.fetch; let refused = false;
		window.fetch = (url, init) => {
			if (!refused && String(url).includes('/api/v1/teams')) {
				refused = true;
				return Promise.resolve(new Response('{"error": {"code": "rate_limited", "message": "too many requests"}}',
					{ status: 429, headers: { 'Retry-After': '1', 'Content-Type': 'application/json' } }));
			}
			return orig(url, init);
		}; })()`)
	p.do(chromedp.Reload())
	p.waitText("#signin-msg", "Trying again in 1 s")
	p.waitFor("the inbox without signing in again", `!document.querySelector('#app').hidden && document.querySelector('#signin-view').hidden &&
		document.querySelector('#me-name').textContent === 'Ana Ruiz'`)
}

// TestSignOut_SetsTheAgentOfflineAndReleasesTheirThreads: signing out left
// the agent online and their threads locked, so each lock ran out and its
// thread was offered straight back to them.
func TestSignOut_SetsTheAgentOfflineAndReleasesTheirThreads(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "leave-1", Text: "Hello?"})
	p := signedIn(t, f.server, "ana", f.ana)
	p.claim(id)
	p.click("#signout")
	p.waitText("#signin-msg", "You are signed out and offline. The thread you held was released.")
	if th := f.thread(t, id); th.Lock != nil || th.Status != "queued" {
		t.Fatalf("thread after sign-out: %+v, want queued and unlocked", th)
	}
	var ana struct {
		Status string `json:"status"`
	}
	f.must(t, 200, "GET", "/api/v1/agents/ana", f.admin, nil, &ana)
	if ana.Status != "offline" {
		t.Fatalf("ana is %q after signing out, want offline", ana.Status)
	}
	// Back, she is told why nothing is offered to her.
	p.do(chromedp.SendKeys(chromedp.CSS("#key"), f.ana), chromedp.Click(chromedp.CSS("#signin-submit")))
	p.waitText("#status-msg", "You are offline: no thread is offered to you")
}

// TestOffer_NotOpenedIsLeftToRunOut: the page renewed every lock it held
// while the agent was active, offers never opened included, so an ignored
// offer never went back to the queue (the contract: ignoring an offer lets
// it expire). An offer is renewed once opened.
func TestOffer_NotOpenedIsLeftToRunOut(t *testing.T) {
	f, olga := offerFixture(t)
	p := signedIn(t, f.server, "olga", olga) // typing her key was activity
	id := f.ingest(t, msg{ExternalID: "offer-1", Text: "an offer for you"})
	p.waitText("#mine-list", "offered")
	until := fmt.Sprintf(`document.querySelector('#mine-list li[data-thread=%q] [data-until]')?.dataset.until`, id)
	first := eval[string](p, until)
	f.waitExpired(t, id) // she is active: only an offer the page leaves alone runs out
	// Offered again (she is the one eligible), and opened: kept. The page
	// shows the new offer first (the old one's button opens a lost lock).
	p.waitFor("the new offer shown", fmt.Sprintf(`Date.parse(%s) > Date.parse(%q)`, until, first))
	p.openMine()
	p.waitHeldPast("the opened offer renewed", f.lockExpiry(t, id).Add(time.Second))
	if txt := eval[string](p, `document.querySelector('#mine-list').textContent`); strings.Contains(txt, "offered") {
		t.Fatalf("your threads: %q, want the opened offer no longer marked offered", txt)
	}
}

// TestSupervisor_OffersAThreadToAnAgentAndMovesIt: the page let a
// supervisor only break a lock; the contract lets them offer a thread to
// an agent (assign) and hand it to a team (transfer).
func TestSupervisor_OffersAThreadToAnAgentAndMovesIt(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "move-1", Text: "Can someone help?"})
	ana := signedIn(t, f.server, "ana", f.ana)
	ana.claim(id)
	// In care, the first care team, escalating puts it back in its queue.
	if esc := eval[string](ana, `document.querySelector('#act-escalate').textContent`); esc != "Escalate: back to the queue at high priority" {
		t.Fatalf("a care thread's escalate button says %q", esc)
	}
	sam := signedIn(t, f.server, "sam", f.sam)
	eval[bool](sam, `(location.hash = '#t/`+id+`', true)`)
	sam.waitFor("Bea among the agents to offer to", `document.querySelector('#assign-agent option[value="bea"]') !== null`)
	if eval[bool](sam, `document.querySelector('#assign-agent option[value="ana"]') !== null`) {
		t.Fatal("Ana, who holds it, is offered it")
	}
	// Escalating, offering or moving a thread Ana holds takes it from her,
	// who may be typing: each asks first.
	sam.click("#act-escalate")
	sam.waitText("#act-escalate-q", "Ana Ruiz holds this thread and may be typing a reply. Escalate it anyway?")
	sam.click("#act-escalate-no")
	sam.waitFor("an offer to Bea, asked about", `(() => { const s = document.querySelector('#assign-agent'); if (!s) return false;
		s.value = 'bea'; document.querySelector('#act-assign').click(); return true; })()`)
	sam.waitText("#act-assign-q", "Offer it anyway?")
	if th := f.thread(t, id); th.Lock == nil || th.Lock.AgentID != "ana" || th.Team != "care" {
		t.Fatalf("thread while Sam is asked: %+v, want still Ana's, in care", th)
	}
	sam.click("#act-assign-yes")
	ana.waitText("#alert", "assigned it to Bea Costa")
	if th := f.thread(t, id); th.Lock == nil || th.Lock.AgentID != "bea" {
		t.Fatalf("thread after the offer: %+v, want locked for bea", th)
	}
	sam.waitText("#status-msg", "Offered to Bea Costa.")
	// A question is about the lock shown: click once Bea's is.
	sam.waitText("#lockbar", "Bea Costa is replying")
	sam.waitFor("a move to sales", `(() => { const s = document.querySelector('#move-team'); if (!s) return false;
		s.value = 'sales'; document.querySelector('#act-move').click(); return true; })()`)
	sam.waitText("#act-move-q", "Bea Costa holds this thread") // the offer's lock
	sam.click("#act-move-yes")
	sam.waitText("#status-msg", "Moved to Sales.")
	if th := f.thread(t, id); th.Team != "sales" || th.Lock != nil {
		t.Fatalf("thread after the move: %+v, want in sales, unlocked", th)
	}
}

// TestPresence_AnIdlePagePausesSoTheAgentGoesAway: an open page was
// presence to the server (its stream, its requests), so an agent who left
// it open stayed online and was offered threads at an empty desk. Idle
// long enough, the page pauses and the presence sweep sets them away; a key
// carries on, and the agent is online again.
func TestPresence_AnIdlePagePausesSoTheAgentGoesAway(t *testing.T) {
	s := newServerWith(t, time.Now, 0, func(c *inbox.Config) { c.PresenceTTL = time.Second })
	s.team(t, "care", "Customer care", "care")
	key := s.agent(t, map[string]any{"id": "ana", "name": "Ana Ruiz", "teams": []string{"care"}})
	p := newPage(t, newBrowser(t), s, "ana", 1280, 800)
	// Any request while paused is noted: each is presence to the server.
	p.onNewDocument(`window.switchboardIdleMs = 1500; window.whilePaused = [];
		(() => { const orig = window.fetch; window.fetch = (url, init) => {
			const b = document.querySelector('#idle-banner');
			if (b && !b.hidden) window.whilePaused.push(String(url));
			return orig(url, init); }; })()`)
	p.signIn(key)
	p.waitFor("the page paused", `!document.querySelector('#idle-banner').hidden && document.querySelector('#live-state').textContent === 'Paused'`)
	status := func(want string) {
		t.Helper()
		deadline := time.Now().Add(waitTimeout)
		for {
			var a struct {
				Status   string `json:"status"`
				IdleAway bool   `json:"idle_away"`
			}
			s.must(t, 200, "GET", "/api/v1/agents/ana", s.admin, nil, &a)
			if a.Status == want && a.IdleAway == (want == "away") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("ana is %+v, want %s", a, want)
			}
			time.Sleep(50 * time.Millisecond) // polling the server, which says no sooner
		}
	}
	status("away")
	if asked := eval[[]string](p, `window.whilePaused`); len(asked) > 0 || eval[string](p, `document.querySelector('#live-state').textContent`) != "Paused" {
		t.Fatalf("while paused the page asked for %q and its stream is %q", asked, eval[string](p, `document.querySelector('#live-state').textContent`))
	}
	resumedAt := eval[int](p, `window.__log.length`)
	p.key("j")
	p.waitFor("the page live again", `document.querySelector('#idle-banner').hidden && document.querySelector('#live-state').textContent === 'Live'`)
	status("online")
	// No event came before the pause, so the stream opened again from
	// nothing and read everything once open: once, not once more when the
	// page carried on.
	p.waitFor("the locks read after the stream opened", fmt.Sprintf(`(() => {
		const log = window.__log.slice(%d);
		const open = log.findIndex((l) => l.endsWith(' stream open'));
		return open >= 0 && log.slice(open).some((l) => l.includes(' read GET /api/v1/me/locks'));
	})()`, resumedAt))
	if asked := eval[[]string](p, fmt.Sprintf(`window.__log.slice(%d).filter((l) => l.split(' ')[1] === 'GET' && l.includes(' /api/v1/me/locks'))`, resumedAt)); len(asked) != 1 {
		t.Fatalf("carrying on, the page read its locks %d times: %q", len(asked), asked)
	}
}

// offerFixture: a round-robin team "push" whose one member, Olga, is
// offered every thread a message saying "offer" starts.
func offerFixture(t *testing.T) (*careFixture, string) {
	t.Helper()
	return offerFixtureTTL(t, 3*time.Second)
}

// offerFixtureTTL is offerFixture with offers and locks lasting lockTTL.
func offerFixtureTTL(t *testing.T, lockTTL time.Duration) (*careFixture, string) {
	t.Helper()
	f := newCareFixtureTTL(t, lockTTL)
	f.must(t, 201, "POST", "/api/v1/teams", f.admin, map[string]any{"id": "push", "name": "Push", "function": "engagement", "strategy": "round_robin"}, nil)
	f.rule(t, "to-push", 1, map[string]any{"text_any": []string{"offer"}}, map[string]any{"team": "push"})
	return f, f.agent(t, map[string]any{"id": "olga", "name": "Olga", "teams": []string{"care", "push"}})
}

// waitExpired waits until the thread's lock has expired once (its audit
// trail says lock.expired).
func (s *server) waitExpired(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		var evs struct {
			Items []struct{ Type string }
		}
		s.must(t, 200, "GET", "/api/v1/threads/"+id+"/events", s.admin, nil, &evs)
		if slices.ContainsFunc(evs.Items, func(e struct{ Type string }) bool { return e.Type == "lock.expired" }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %+v, want the lock expired", evs.Items)
		}
		time.Sleep(50 * time.Millisecond) // polling the server, which says no sooner
	}
}

// TestOffer_AReloadKeepsWhatWasTakenUpAndLetsOffersRunOut: after a reload
// every lock held was renewed, offers never opened included; now the tab
// remembers which it took up.
func TestOffer_AReloadKeepsWhatWasTakenUpAndLetsOffersRunOut(t *testing.T) {
	f, olga := offerFixture(t)
	p := signedIn(t, f.server, "olga", olga)
	worked := f.ingest(t, msg{ExternalID: "worked-1", Text: "Hello care"})
	p.claim(worked)
	offered := f.ingest(t, msg{ExternalID: "offer-2", Text: "an offer for you"})
	p.waitText("#mine-list", "offered")
	p.do(chromedp.Navigate(f.url + "/")) // a reload, with no thread in the address
	p.waitFor("her two threads after the reload", `document.querySelectorAll('#mine-list li[data-thread]').length === 2`)
	f.waitExpired(t, offered)
	if th := f.thread(t, worked); th.Lock == nil || th.Lock.AgentID != "olga" {
		t.Fatalf("the thread she worked: %+v, want still hers (renewed)", th)
	}
}

// TestOffer_TakenUpInAnotherWindowIsNotDropped: an offer opened in one
// window is renewed there, unseen by the other, whose own count then ran
// out: it said the offer went back to its queue and dropped it. The other
// window now asks the server.
func TestOffer_TakenUpInAnotherWindowIsNotDropped(t *testing.T) {
	f, olga := offerFixture(t)
	a := signedIn(t, f.server, "olga-a", olga)
	b := signedIn(t, f.server, "olga-b", olga)
	id := f.ingest(t, msg{ExternalID: "offer-3", Text: "an offer for you"})
	a.waitText("#mine-list", "offered")
	b.openMine()
	a.waitHeldPast("window A to follow the renewal", f.lockExpiry(t, id).Add(time.Second))
	if msg := eval[string](a, `document.querySelector('#status-msg').textContent`); strings.Contains(msg, "not opened in time") {
		t.Fatalf("window A says %q", msg)
	}
}

// TestPresence_ABusyInboxIsNotSomeoneAtTheDesk: the page moves the focus
// itself when it redraws (a tab, a queue row), and that counted as
// activity: with messages coming in, an agent whose focus rested on a tab
// never went away.
func TestPresence_ABusyInboxIsNotSomeoneAtTheDesk(t *testing.T) {
	f := newCareFixture(t)
	p := newPage(t, newBrowser(t), f.server, "ana", 1280, 800)
	p.onNewDocument(`window.switchboardIdleMs = 1500`)
	p.signIn(f.ana)
	p.do(chromedp.Focus(chromedp.CSS("#team-tabs .tab")))
	paused := `!document.querySelector('#idle-banner').hidden`
	deadline := time.Now().Add(waitTimeout)
	for i := 0; !eval[bool](p, paused); i++ {
		if time.Now().After(deadline) {
			t.Fatal("the page never paused while messages kept coming")
		}
		id := f.ingest(t, msg{ExternalID: fmt.Sprintf("busy-%d", i), Text: "hello"})
		p.waitFor("the message in the queue, or the pause", fmt.Sprintf(`document.querySelector(%q) !== null || %s`, queueItem(id), paused))
	}
}

// TestOffer_RunOutWhilePausedIsANoticeNotAnAlert: an offer that ran out
// while the page was paused was reported, when the agent came back, as a
// thread they had lost ("You no longer hold this thread"), in an alert.
func TestOffer_RunOutWhilePausedIsANoticeNotAnAlert(t *testing.T) {
	f, olga := offerFixture(t)
	p := newPage(t, newBrowser(t), f.server, "olga", 1280, 800)
	p.onNewDocument(`window.switchboardIdleMs = 1500`)
	p.signIn(olga)
	id := f.ingest(t, msg{ExternalID: "offer-4", Text: "an offer for you"})
	p.waitText("#mine-list", "offered")
	p.waitFor("the page paused", `!document.querySelector('#idle-banner').hidden`)
	// Away (set by a supervisor): not offered it again once it runs out.
	f.must(t, 200, "PUT", "/api/v1/agents/olga/status", f.admin, map[string]any{"status": "away"}, nil)
	f.waitExpired(t, id)
	// Neither her locks nor the events can be read: the thread's own read
	// says the offer ended.
	p.block(f.url+"/api/v1/me/locks*", f.url+"/api/v1/events*")
	p.key("j")
	p.waitFor("the offer gone from her threads", `document.querySelector('#idle-banner').hidden && document.querySelectorAll('#mine-list li[data-thread]').length === 0`)
	p.waitText("#status-msg", "offered to you")
	if a := eval[string](p, `document.querySelector('#alert').textContent`); a != "" {
		t.Fatalf("alert %q, want a notice only", a)
	}
}

// TestSupervisor_BreakingALockIsAskedFirst: "Break the lock" and "Close"
// took a thread from an agent perhaps typing a reply with one click; a
// supervisor now confirms in place, and "Cancel" leaves it. Nothing tested
// the page's lock break at all.
func TestSupervisor_BreakingALockIsAskedFirst(t *testing.T) {
	f, id, ana, sam := samOnAnasThread(t, "Hello?")
	// Asked, with the focus on Cancel (a held Enter would press Yes);
	// Escape or Cancel leaves the thread as it is.
	sam.click("#act-close")
	sam.waitFor("the question, focus on Cancel", `document.activeElement?.id === 'act-close-no'`)
	sam.do(chromedp.KeyEvent(kb.Escape))
	sam.waitFor("the button back", `document.activeElement?.id === 'act-close'`)
	sam.click("#act-unlock")
	sam.click("#act-unlock-no")
	sam.waitFor("the button back", `document.activeElement?.id === 'act-unlock'`)
	if th := f.thread(t, id); th.Lock == nil || th.Lock.AgentID != "ana" || th.Status == "closed" {
		t.Fatalf("thread after two cancels: %+v, want still ana's", th)
	}
	sam.click("#act-unlock")
	sam.click("#act-unlock-yes")
	ana.waitText("#alert", "Sam Supervisor broke your lock.")
	sam.waitText("#status-msg", "Lock broken.")
	if th := f.thread(t, id); th.Lock != nil {
		t.Fatalf("thread after the break: %+v, want unlocked", th)
	}
	// A question is about one lock: asked about Bea's, it is not put to
	// Sam again for Ana's.
	f.must(t, 200, "POST", "/api/v1/threads/"+id+"/claim", f.bea, map[string]any{}, nil)
	sam.waitText("#lockbar", "Bea Costa is replying")
	sam.click("#act-close")
	f.must(t, 200, "POST", "/api/v1/threads/"+id+"/assign", f.sam, map[string]any{"agent_id": "ana"}, nil)
	sam.waitFor("Ana's lock, and the question gone", `document.querySelector('#lockbar').textContent.includes('Ana Ruiz is replying') &&
		document.querySelector('#act-close-yes') === null`)
	sam.click("#act-close")
	sam.click("#act-close-yes")
	sam.waitText("#status-msg", "Thread closed.")
	if th := f.thread(t, id); th.Status != "closed" || th.Lock != nil {
		t.Fatalf("thread after the close: %+v, want closed", th)
	}
}

// TestSupervisor_AQuestionIsDroppedWithItsThread: a supervisor asked "Close it
// anyway?" on one thread and went to another; back on the first, the
// question was still up, the "Yes" one click away.
func TestSupervisor_AQuestionIsDroppedWithItsThread(t *testing.T) {
	f := newCareFixture(t)
	a := f.ingest(t, msg{ExternalID: "q-a", Thread: "qa", Text: "Hello?"})
	b := f.ingest(t, msg{ExternalID: "q-b", Thread: "qb", Text: "Anyone?", Author: map[string]any{"id": "u-b", "name": "Bob B"}})
	ana := signedIn(t, f.server, "ana", f.ana)
	ana.claim(a)
	sam := signedIn(t, f.server, "sam", f.sam)
	eval[bool](sam, `(location.hash = '#t/`+a+`', true)`)
	sam.click("#act-close")
	sam.waitFor("the question", `document.querySelector('#act-close-yes') !== null`)
	eval[bool](sam, `(location.hash = '#t/`+b+`', true)`)
	sam.waitText("#thread-h", "Bob B")
	eval[bool](sam, `(location.hash = '#t/`+a+`', true)`)
	sam.waitFor("the first thread again, its lock shown", `!(document.querySelector('#thread-h')?.textContent || '').includes('Bob B') &&
		(document.querySelector('#lockbar')?.textContent || '').includes('Ana Ruiz is replying')`)
	sam.waitFor("the Close button", `document.querySelector('#act-close') !== null || document.querySelector('#act-close-yes') !== null`)
	if eval[bool](sam, `document.querySelector('#act-close-yes') !== null`) {
		t.Fatal("the question asked on the thread left is still put, its Yes one click away")
	}
}

// TestLock_AClaimInAnotherWindowIsSaidAndKept: a thread the agent claimed
// in another window is one they took up, not an offer: the first window
// says so and does not mark it "offered".
func TestLock_AClaimInAnotherWindowIsSaidAndKept(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "two-1", Text: "Hello?"})
	a := signedIn(t, f.server, "ana-a", f.ana)
	b := signedIn(t, f.server, "ana-b", f.ana)
	b.claim(id)
	a.waitText("#status-msg", "You claimed the thread of")
	a.waitText("#status-msg", "in another window.")
	a.waitFor("the thread among hers", `document.querySelector('#mine-list li[data-thread]') !== null`)
	if txt := eval[string](a, `document.querySelector('#mine-list').textContent`); strings.Contains(txt, "offered") {
		t.Fatalf("the other window shows %q: the thread she claimed is marked offered", txt)
	}
}

// TestSupervisor_TheOfferListLeavesOutWhoCannotTakeIt: an agent who serves
// other networks only cannot be assigned the thread (the server says no);
// "Offer to" does not list them.
func TestSupervisor_TheOfferListLeavesOutWhoCannotTakeIt(t *testing.T) {
	f := newCareFixture(t)
	f.agent(t, map[string]any{"id": "wes", "name": "Wes WhatsApp", "teams": []string{"care"}, "networks": []string{"whatsapp"}})
	id := f.ingest(t, msg{ExternalID: "net-1", Text: "Hello?"}) // instagram
	sam := signedIn(t, f.server, "sam", f.sam)
	eval[bool](sam, `(location.hash = '#t/`+id+`', true)`)
	sam.waitFor("Bea among the agents to offer to", `document.querySelector('#assign-agent option[value="bea"]') !== null`)
	if eval[bool](sam, `document.querySelector('#assign-agent option[value="wes"]') !== null`) {
		t.Fatal("Wes, who serves WhatsApp only, is listed for an Instagram thread")
	}
}

// TestSupervisor_AMoveCarriesItsNote: the note for the next team goes with a
// supervisor's move as with an escalation.
func TestSupervisor_AMoveCarriesItsNote(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "mv-1", Text: "I want to buy"})
	sam := signedIn(t, f.server, "sam", f.sam)
	eval[bool](sam, `(location.hash = '#t/`+id+`', true)`)
	sam.waitFor("a move to sales with a note", `(() => { const s = document.querySelector('#move-team'); const n = document.querySelector('#handover-note');
		if (!s || !n) return false; s.value = 'sales'; n.value = 'Wants 500 units'; document.querySelector('#act-move').click(); return true; })()`)
	sam.waitText("#status-msg", "Moved to Sales.")
	var notes struct {
		Items []struct {
			Text string `json:"text"`
		} `json:"items"`
	}
	f.must(t, 200, "GET", "/api/v1/threads/"+id+"/notes", f.admin, nil, &notes)
	if len(notes.Items) != 1 || notes.Items[0].Text != "Wants 500 units" {
		t.Fatalf("notes after the move: %+v, want the note typed", notes.Items)
	}
}

// TestOffer_AnOpenedOfferIsRenewedNotOfferedAgain: an offer opened is
// renewed under its own lock; left to run out, it is offered again under
// a new one (and the agent's box may go with it), which "Your threads"
// alone does not tell apart.
func TestOffer_AnOpenedOfferIsRenewedNotOfferedAgain(t *testing.T) {
	f, olga := offerFixture(t)
	p := signedIn(t, f.server, "olga", olga)
	id := f.ingest(t, msg{ExternalID: "offer-m1", Text: "an offer for you"})
	p.waitText("#mine-list", "offered")
	p.openMine()
	fence := f.lock(t, id).Fence
	p.waitHeldPast("the opened offer renewed", f.lockExpiry(t, id).Add(time.Second))
	if got := f.lock(t, id).Fence; got != fence {
		t.Fatalf("lock fence %d, then %d: the opened offer ran out and was offered again instead of renewed", fence, got)
	}
}

// TestSignOut_SigningOutAfterALockWasLostUnseen: a lock broken while the page
// could not hear of it is no longer the agent's to release; signing out
// does not say it "stays locked until its lock runs out".
func TestSignOut_SigningOutAfterALockWasLostUnseen(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "lost-1", Text: "Hello?"})
	p := newPage(t, newBrowser(t), f.server, "ana", 1280, 800)
	// window.deaf: the page hears no more events (a stream that went quiet).
	p.onNewDocument(`window.EventSource = class extends window.EventSource {
		addEventListener(type, fn, opts) { super.addEventListener(type, (ev) => { if (!window.deaf) fn(ev); }, opts); } }`)
	p.signIn(f.ana)
	p.claim(id)
	eval[bool](p, `(window.deaf = true)`)
	f.must(t, 200, "POST", "/api/v1/threads/"+id+"/unlock", f.sam, map[string]any{}, nil)
	p.click("#signout")
	p.waitText("#signin-msg", "You are signed out and offline.")
	if msg := eval[string](p, `document.querySelector('#signin-msg').textContent`); strings.Contains(msg, "could not be released") {
		t.Fatalf("sign-out says %q about a lock broken meanwhile", msg)
	}
}

// TestOffer_AnOfferRunOutIsANoticeNotAnAlert: an offer the agent never
// opened that runs out while they work goes back to its queue, as ignored
// offers do: a notice, not the alert of a thread lost.
func TestOffer_AnOfferRunOutIsANoticeNotAnAlert(t *testing.T) {
	f, olga := offerFixture(t)
	p := signedIn(t, f.server, "olga", olga)
	f.ingest(t, msg{ExternalID: "offer-m2", Text: "an offer for you"})
	p.waitText("#mine-list", "offered")
	// Away (set by a supervisor): not offered it again once it runs out.
	f.must(t, 200, "PUT", "/api/v1/agents/olga/status", f.admin, map[string]any{"status": "away"}, nil)
	p.waitText("#status-msg", "was not opened in time")
	if a := eval[string](p, `document.querySelector('#alert').textContent`); a != "" {
		t.Fatalf("alert %q, want a notice only", a)
	}
}

// TestPresence_APausedPageAsksNothingWhenALockRunsOut: paused, the page asks
// the server nothing (each request is presence); a lock it held running
// out by its own count is checked when the agent carries on, not then.
func TestPresence_APausedPageAsksNothingWhenALockRunsOut(t *testing.T) {
	f, olga := offerFixture(t)
	id := f.ingest(t, msg{ExternalID: "paused-1", Text: "Hello care"})
	p := newPage(t, newBrowser(t), f.server, "olga", 1280, 800)
	p.onNewDocument(`window.switchboardIdleMs = 1500; window.whilePaused = [];
		(() => { const orig = window.fetch; window.fetch = (url, init) => {
			const b = document.querySelector('#idle-banner');
			if (b && !b.hidden) window.whilePaused.push(String(url));
			return orig(url, init); }; })()`)
	p.signIn(olga)
	p.claim(id)
	p.waitFor("the page paused", `!document.querySelector('#idle-banner').hidden`)
	// Its count of the lock runs out (the tick that shows 0:00 is the one
	// that finds it ended).
	p.waitFor("the lock's count run out", `document.querySelector('#mine-list [data-until]')?.textContent === '0:00'`)
	if asked := eval[[]string](p, `window.whilePaused`); len(asked) > 0 {
		t.Fatalf("while paused the page asked for %q", asked)
	}
}

// TestPresence_APausedPageRunsNoRoundOfReads: a paused page asks the server
// nothing (each request is presence); its rounds (the stale queues every
// 15 s, the statistics every 30 s, the agent every 60 s) read nothing.
func TestPresence_APausedPageRunsNoRoundOfReads(t *testing.T) {
	f := newCareFixture(t)
	p := newPage(t, newBrowser(t), f.server, "sam", 1280, 800)
	// window.rounds are the page's repeated reads, for the test to run.
	p.onNewDocument(`window.switchboardIdleMs = 1500; window.whilePaused = []; window.rounds = [];
		(() => { const orig = window.setInterval; window.setInterval = (fn, ms, ...rest) => {
			if ([15000, 30000, 60000].includes(ms)) window.rounds.push(fn); return orig(fn, ms, ...rest); }; })();
		(() => { const orig = window.fetch; window.fetch = (url, init) => {
			const b = document.querySelector('#idle-banner');
			if (b && !b.hidden) window.whilePaused.push(String(url));
			return orig(url, init); }; })()`)
	p.signIn(f.sam)
	id := f.ingest(t, msg{ExternalID: "stale-1", Text: "Hello"}) // every tab's queue is stale now
	p.waitFor("the message in the queue", `document.querySelector(`+js(queueItem(id))+`) !== null`)
	p.waitFor("the page paused", `!document.querySelector('#idle-banner').hidden`)
	if n := eval[int](p, `(window.rounds.forEach((fn) => fn()), window.rounds.length)`); n != 3 {
		t.Fatalf("%d rounds, want 3", n)
	}
	if asked := eval[[]string](p, `window.whilePaused`); len(asked) > 0 {
		t.Fatalf("while paused the page asked for %q", asked)
	}
}

// TestReload_ASignInCallsOffTheRetry: the page was waiting to try Ana's
// session again (a 429) when Bea signed in with her key; the retry, had it
// come due, would have read the session again and started the page over.
func TestReload_ASignInCallsOffTheRetry(t *testing.T) {
	f := newCareFixture(t)
	p := signedIn(t, f.server, "shared", f.ana)
	// The first /me after the reload is refused for a minute; window.due
	// holds the minute-long timers not called off.
	p.onNewDocument(`(() => { const orig = window.fetch; let n = 0; window.due = {};
		const st = window.setTimeout, ct = window.clearTimeout;
		window.setTimeout = (fn, ms, ...rest) => { const id = st(fn, ms, ...rest); if (ms === 60000) window.due[id] = true; return id; };
		window.clearTimeout = (id) => { delete window.due[id]; return ct(id); };
		window.fetch = (url, init) => {
			if (String(url).endsWith('/api/v1/me') && ++n === 1) {
				return Promise.resolve(new Response('{"error": {"code": "rate_limited", "message": "too many requests"}}',
					{ status: 429, headers: { 'Retry-After': '60', 'Content-Type': 'application/json' } }));
			}
			return orig(url, init);
		}; })()`)
	p.do(chromedp.Reload())
	p.waitText("#signin-msg", "Trying again in 60 s")
	p.do(chromedp.SendKeys(chromedp.CSS("#key"), f.bea), chromedp.Click(chromedp.CSS("#signin-submit")))
	p.waitText("#me-name", "Bea Costa")
	if n := eval[int](p, `Object.keys(window.due).length`); n != 0 {
		t.Fatal("the retry of Ana's session still comes due after Bea signed in")
	}
}

// TestPresence_AStreamRetryUnderWayStaysClosedWhenPaused: the stream dropped
// and its retry was checking the session when the page paused; the check
// answered and the retry opened the stream again, presence while paused.
func TestPresence_AStreamRetryUnderWayStaysClosedWhenPaused(t *testing.T) {
	f := newCareFixture(t)
	p := newPage(t, newBrowser(t), f.server, "ana", 1280, 800)
	// window.streams: the streams opened while paused; window.holdMe holds
	// the session check until window.letMe(); window.meDone says the page has had its answer.
	p.onNewDocument(`window.switchboardIdleMs = 1500; window.streams = []; window.holdMe = false; window.meDone = false;
		(() => { const paused = () => { const b = document.querySelector('#idle-banner'); return b && !b.hidden; };
		window.EventSource = class extends window.EventSource {
			constructor(url, opts) { super(url, opts); window.lastStream = this; if (paused()) window.streams.push(url); } };
		const orig = window.fetch; window.fetch = (url, init) => {
			if (window.holdMe && String(url).endsWith('/api/v1/me')) {
				return new Promise((resolve) => { window.letMe = resolve; })
					.then(() => orig(url, init)).then((r) => { const text = r.text.bind(r);
					r.text = () => text().then((v) => { setTimeout(() => { window.meDone = true; }, 0); return v; }); return r; });
			}
			return orig(url, init); }; })()`)
	p.signIn(f.ana)
	// The stream drops: its retry checks the session, held until paused.
	eval[bool](p, `(window.holdMe = true, window.lastStream.close(), window.lastStream.onerror(), true)`)
	p.waitFor("the check under way", `typeof window.letMe === 'function'`)
	p.waitFor("the page paused", `!document.querySelector('#idle-banner').hidden`)
	eval[bool](p, `(window.letMe(), true)`)
	p.waitFor("the check answered", `window.meDone`)
	if opened := eval[[]string](p, `window.streams`); len(opened) > 0 || eval[string](p, `document.querySelector('#live-state').textContent`) != "Paused" {
		t.Fatalf("while paused the page opened the stream %q (it shows %q)", opened, eval[string](p, `document.querySelector('#live-state').textContent`))
	}
}

// TestReload_ASignInOvertakesARetryUnderWay: the page was retrying to pick
// up Ana's session (a 429) when Bea signed in with her key; the retry's
// answer, Ana, came after and must not replace Bea on the page.
func TestReload_ASignInOvertakesARetryUnderWay(t *testing.T) {
	f := newCareFixture(t)
	p := signedIn(t, f.server, "shared", f.ana)
	// The first /me after the reload is refused; the second is answered
	// only on window.letMe(); window.meDone says the page has had it.
	p.onNewDocument(`(() => { const orig = window.fetch; let n = 0; window.meDone = false;
		window.fetch = (url, init) => {
			if (String(url).endsWith('/api/v1/me') && ++n <= 2) {
				if (n === 1) return Promise.resolve(new Response('{"error": {"code": "rate_limited", "message": "too many requests"}}',
					{ status: 429, headers: { 'Retry-After': '1', 'Content-Type': 'application/json' } }));
				const sent = orig(url, init);
				return new Promise((resolve) => { window.letMe = resolve; }).then(() => sent).then((r) => { const text = r.text.bind(r);
					r.text = () => text().then((v) => { setTimeout(() => { window.meDone = true; }, 0); return v; }); return r; });
			}
			return orig(url, init);
		}; })()`)
	p.do(chromedp.Reload())
	p.waitText("#signin-msg", "Trying again in 1 s")
	p.waitFor("the retry under way", `typeof window.letMe === 'function'`)
	p.do(chromedp.SendKeys(chromedp.CSS("#key"), f.bea), chromedp.Click(chromedp.CSS("#signin-submit")))
	p.waitText("#me-name", "Bea Costa")
	eval[bool](p, `(window.letMe(), true)`)
	p.waitFor("the retry answered", `window.meDone`)
	// Taken up, Ana's answer would end Bea's session on the page at once
	// (and draw Ana's inbox once read).
	if shown := eval[string](p, `document.querySelector('#app').hidden ? 'the sign-in form' : document.querySelector('#me-name').textContent`); shown != "Bea Costa" {
		t.Fatalf("the page shows %s, signed in as Bea", shown)
	}
}

// TestSupervisor_ASupervisorOffersOnTheThreadTheyHold: a supervisor who holds a
// thread and offers it to an agent ended their own lock with their own
// step; that is no news for an alert ("You no longer hold this thread").
func TestSupervisor_ASupervisorOffersOnTheThreadTheyHold(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "own-1", Text: "Can someone help?"})
	sam := signedIn(t, f.server, "sam", f.sam)
	sam.claim(id)
	sam.waitFor("an offer to Bea", `(() => { const s = document.querySelector('#assign-agent'); if (!s || !s.querySelector('option[value="bea"]')) return false;
		s.value = 'bea'; document.querySelector('#act-assign').click(); return true; })()`)
	sam.waitText("#status-msg", "Offered to Bea Costa.")
	sam.waitFor("the thread gone from his threads", `document.querySelectorAll('#mine-list li[data-thread]').length === 0`)
	if th := f.thread(t, id); th.Lock == nil || th.Lock.AgentID != "bea" {
		t.Fatalf("thread after the offer: %+v, want locked for bea", th)
	}
	// The assignment's event has come, and the open thread shows Bea's lock.
	sam.waitEvent("thread.assigned")
	sam.waitText("#lockbar", "Bea Costa")
	if a := eval[string](sam, `document.querySelector('#alert').textContent`); a != "" {
		t.Fatalf("alert %q about his own offer", a)
	}
}

// TestReply_ASavedReplyAfterTypedTextIsSpaced: a saved reply inserted
// after what the agent typed was glued to it ("…writesHi María").
func TestReply_ASavedReplyAfterTypedTextIsSpaced(t *testing.T) {
	f := newCareFixture(t)
	f.must(t, 201, "POST", "/api/v1/saved-replies", f.admin, map[string]any{"id": "hi", "title": "Hi",
		"text": "Hi {{author.name}}.", "teams": []string{"care"}}, nil)
	id := f.ingest(t, msg{ExternalID: "space-1", Text: "Hello?"})
	p := signedIn(t, f.server, "ana", f.ana)
	p.claim(id)
	p.waitFor("the saved replies", `document.querySelector('#saved-reply option[value="hi"]') !== null`)
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "Thanks!"))
	eval[bool](p, `(() => { const s = document.querySelector('#saved-reply'); s.value = 'hi';
		s.dispatchEvent(new Event('change')); return true; })()`)
	p.waitFor("the saved reply after a space", `document.querySelector('#reply-text').value === 'Thanks! Hi María.'`)
}

// TestThread_AClosedUnansweredThreadShowsNoSLA: a thread closed without
// an answer kept counting down (then overdue) its first-response SLA,
// though nothing is due any more.
func TestThread_AClosedUnansweredThreadShowsNoSLA(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "sla-closed-1", Text: "Never mind"})
	p := signedIn(t, f.server, "ana", f.ana)
	p.claim(id)
	p.waitFor("the SLA countdown", `document.querySelector('#thread-body .sla') !== null`)
	p.click("#act-close")
	p.waitText("#lockbar", "This thread is closed")
	if n := eval[int](p, `document.querySelectorAll('#thread-body .sla').length`); n != 0 {
		t.Fatalf("a closed thread shows %d SLA countdowns", n)
	}
}

// TestSupervisor_MoveAndOfferWithNothingChosenSayWhatIsMissing: "Move" with
// no team chosen, or "Assign" with no agent, says what to choose and
// sends nothing.
func TestSupervisor_MoveAndOfferWithNothingChosenSayWhatIsMissing(t *testing.T) {
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "unchosen-1", Text: "Hello?"})
	sam := signedIn(t, f.server, "sam", f.sam)
	sam.claim(id)
	sam.click("#act-move")
	sam.waitText("#alert", "Choose the team to move the thread to.")
	sam.click("#act-assign")
	sam.waitText("#alert", "Choose the agent to offer the thread to.")
	if th := f.thread(t, id); th.Team != "care" || th.Lock == nil || th.Lock.AgentID != "sam" {
		t.Fatalf("thread after two empty choices: %+v, want still Sam's, in care", th)
	}
}

// replies are the texts of the thread's replies stored, oldest first.
func (f *careFixture) replies(t *testing.T, id string) []string {
	t.Helper()
	var msgs struct {
		Items []struct{ Direction, Text string }
	}
	f.must(t, 200, "GET", "/api/v1/threads/"+id+"/messages", f.admin, nil, &msgs)
	var out []string
	for _, m := range msgs.Items {
		if m.Direction == "outbound" {
			out = append(out, m.Text)
		}
	}
	return out
}

// samOnAnasThread is Ana holding a new thread of the customer's text, and
// Sam the supervisor with that thread open.
func samOnAnasThread(t *testing.T, text string) (*careFixture, string, *page, *page) {
	t.Helper()
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "held-by-ana", Text: text})
	ana := signedIn(t, f.server, "ana", f.ana)
	ana.claim(id)
	sam := signedIn(t, f.server, "sam", f.sam)
	eval[bool](sam, `(location.hash = '#t/`+id+`', true)`)
	return f, id, ana, sam
}

// anaTyping is Ana holding a new thread of the customer's text, with
// draft typed in its reply box and not sent.
func anaTyping(t *testing.T, text, draft string) (*careFixture, string, *page) {
	t.Helper()
	f := newCareFixture(t)
	id := f.ingest(t, msg{ExternalID: "typing-1", Text: text})
	p := signedIn(t, f.server, "ana", f.ana)
	p.claim(id)
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), draft))
	return f, id, p
}

// TestReply_UnsentTextIsAskedAboutBeforeTheLockEnds: releasing (U or the
// button), closing or handing over a thread with a reply typed and not
// sent let the lock go with one key; the page now asks first, and the
// draft stays for a claim again.
func TestReply_UnsentTextIsAskedAboutBeforeTheLockEnds(t *testing.T) {
	f, id, p := anaTyping(t, "Where is my order?", "It left the warehouse")
	p.do(chromedp.KeyEvent(kb.Escape)) // out of the box, for U
	p.key("u")
	p.waitFor("the question, focus on Cancel", `document.activeElement?.id === 'act-release-no'`)
	p.waitText("#act-release-q", "Your reply is not sent. Release the thread anyway?")
	p.do(chromedp.KeyEvent(kb.Escape))
	p.waitFor("the button back", `document.activeElement?.id === 'act-release'`)
	for _, act := range []string{"close", "escalate", "lead"} {
		p.click("#act-" + act)
		p.waitText("#act-"+act+"-q", "Your reply is not sent.")
		p.click("#act-" + act + "-no")
	}
	if th := f.thread(t, id); th.Lock == nil || th.Lock.AgentID != "ana" || th.Status == "closed" || th.Team != "care" {
		t.Fatalf("thread after four cancels: %+v, want still Ana's, open, in care", th)
	}
	p.click("#act-release")
	p.click("#act-release-yes")
	p.waitText("#status-msg", "Released")
	if th := f.thread(t, id); th.Lock != nil {
		t.Fatalf("thread after Yes: %+v, want released", th)
	}
	// Claimed again, the text is there; sent, nothing is asked.
	p.click("#claim-this")
	p.waitFor("the draft back", `document.querySelector('#reply-text')?.value === 'It left the warehouse'`)
	p.click("#reply-send")
	p.waitFor("the reply sent and the box empty", `document.querySelector('#reply-text')?.value === '' &&
		document.querySelector('#conversation').textContent.includes('It left the warehouse')`)
	p.click("#act-release")
	p.waitFor("the release, not asked", `document.querySelector('#reply-text') === null && document.querySelector('#lockbar.free') !== null &&
		document.querySelector('#act-release-q') === null`)
	if th := f.thread(t, id); th.Lock != nil {
		t.Fatalf("thread after a release with nothing unsent: %+v, want released", th)
	}
}

// TestSignOut_UnsentRepliesAreAskedAbout: signing out lost a typed reply
// without a word (drafts do not outlive the session); it now asks first.
func TestSignOut_UnsentRepliesAreAskedAbout(t *testing.T) {
	f, id, p := anaTyping(t, "Hello?", "Hi there")
	p.click("#signout")
	p.waitFor("the question, focus on Cancel", `document.activeElement?.id === 'signout-no'`)
	p.waitText("#signout-q", "A reply you typed is not sent and will be lost. Sign out anyway?")
	p.do(chromedp.KeyEvent(kb.Escape))
	p.waitFor("the button back", `document.activeElement?.id === 'signout' && document.querySelector('#signout-confirm').hidden`)
	if th := f.thread(t, id); th.Lock == nil || th.Lock.AgentID != "ana" {
		t.Fatalf("thread after Cancel: %+v, want still Ana's", th)
	}
	p.click("#signout")
	p.click("#signout-yes")
	p.waitText("#signin-msg", "You are signed out")
	if th := f.thread(t, id); th.Lock != nil {
		t.Fatalf("thread after signing out: %+v, want released", th)
	}
}

// TestReply_ADraftSurvivesAReload: a reply typed and not sent was lost with
// a reload, and with it the Idempotency-Key of a send that may have gone
// out, so sending again after the reload answered the customer twice.
func TestReply_ADraftSurvivesAReload(t *testing.T) {
	f, id, p := anaTyping(t, "Is my parcel lost?", "Checking now")
	p.click("#reply-close")
	p.do(chromedp.Reload())
	p.waitFor("the draft back, to close after sending", `document.querySelector('#reply-text')?.value === 'Checking now' &&
		document.querySelector('#reply-close').checked`)
	p.click("#reply-close")
	firstReplyLostOnTheWayBack(p)
	p.click("#reply-send")
	p.waitText("#alert", "may not have been sent")
	p.do(chromedp.Reload())
	p.waitFor("the draft back, not to close", `document.querySelector('#reply-text')?.value === 'Checking now' &&
		!document.querySelector('#reply-close').checked`)
	p.click("#reply-send")
	p.waitText("#status-msg", "Reply sent.")
	out := f.replies(t, id)
	if len(out) != 1 || out[0] != "Checking now" {
		t.Fatalf("replies stored: %q, want the one sent once", out)
	}
	if kept := eval[bool](p, `sessionStorage.getItem('switchboard.drafts') !== null`); kept {
		t.Fatal("a sent reply's draft is still kept")
	}
	// Signing out removes what is kept.
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "One more thing"))
	if kept := eval[bool](p, `sessionStorage.getItem('switchboard.drafts') !== null`); !kept {
		t.Fatal("a draft typed is not kept")
	}
	p.click("#signout")
	p.click("#signout-yes")
	p.waitFor("the sign-in form", `!document.querySelector('#signin-view').hidden`)
	if kept := eval[string](p, `JSON.stringify({ ...sessionStorage })`); kept != "{}" {
		t.Fatalf("after signing out the tab keeps %s", kept)
	}
}

// TestReply_KeptDraftsAreTheirAgentsOnly: another tab of the browser signing
// in as someone else changes the session cookie; this tab reloaded is then
// Bea's, and Ana's kept drafts are not hers.
func TestReply_KeptDraftsAreTheirAgentsOnly(t *testing.T) {
	f, _, p := anaTyping(t, "Hello?", "Ana's words")
	eval[bool](p, `(fetch('/api/v1/session', { method: 'POST', headers: { 'Content-Type': 'application/json' },
		body: JSON.stringify({ key: `+js(f.bea)+` }) }).then((r) => { window.beaIn = r.ok; }), true)`)
	p.waitFor("Bea's session", `window.beaIn === true`)
	p.do(chromedp.Reload())
	noDraftsOfAnasFor(t, p)
}

// TestReply_AFailedStartLeavesNoDraftsForTheNextPerson: a reload whose
// start failed (the teams could not be read) showed the sign-in form with
// Ana's drafts loaded; Bea signing in on it got them, in her reply box.
func TestReply_AFailedStartLeavesNoDraftsForTheNextPerson(t *testing.T) {
	f, _, p := anaTyping(t, "Hello?", "Ana's words")
	p.block(f.url + "/api/v1/teams*")
	p.do(chromedp.Reload())
	p.waitFor("the sign-in form", `!document.querySelector('#signin-view').hidden`)
	p.block()
	p.do(chromedp.SendKeys(chromedp.CSS("#key"), f.bea), chromedp.Click(chromedp.CSS("#signin-submit")))
	noDraftsOfAnasFor(t, p)
}

// noDraftsOfAnasFor checks that Bea, signed in on p after Ana, finds none of
// Ana's drafts: none kept in the tab, none to ask about at sign-out.
func noDraftsOfAnasFor(t *testing.T, p *page) {
	t.Helper()
	p.waitText("#me-name", "Bea Costa")
	if kept := eval[bool](p, `sessionStorage.getItem('switchboard.drafts') !== null`); kept {
		t.Fatal("Ana's draft is kept in the tab during Bea's session")
	}
	p.click("#signout") // nothing of hers unsent: not asked
	p.waitFor("the sign-in form", `!document.querySelector('#signin-view').hidden`)
}

// TestReply_ADraftOutlivesAnEndedSession: a session that ended without a
// sign-out (expired, ended in another tab) removed the kept drafts and the
// Idempotency-Key of a send that may have gone out, so the agent signing
// in again typed the reply anew and the customer got it twice.
func TestReply_ADraftOutlivesAnEndedSession(t *testing.T) {
	f, id, p := anaTyping(t, "Is it shipped?", "Yes, today")
	firstReplyLostOnTheWayBack(p)
	p.click("#reply-send")
	p.waitText("#alert", "may not have been sent")
	eval[bool](p, `(fetch('/api/v1/session', { method: 'DELETE' }).then((r) => { window.gone = r.ok; }), true)`)
	p.waitFor("the session ended", `window.gone === true`)
	p.do(chromedp.KeyEvent(kb.Escape)) // out of the reply box
	p.key("n")                         // the page's next request finds the session ended
	p.waitText("#signin-msg", "Your session has ended")
	p.signIn(f.ana)
	p.openMine()
	p.waitFor("the draft back", `document.querySelector('#reply-text').value === 'Yes, today'`)
	p.click("#reply-send")
	p.waitText("#status-msg", "Reply sent.")
	if out := f.replies(t, id); len(out) != 1 {
		t.Fatalf("replies stored: %q, want the one sent once", out)
	}
}

// TestReply_ABlankReplyIsNotAskedAbout: a reply box holding only spaces
// has nothing to lose: releasing and signing out do not ask.
func TestReply_ABlankReplyIsNotAskedAbout(t *testing.T) {
	f, id, p := anaTyping(t, "Hello?", "   ")
	p.click("#act-release")
	p.waitFor("the release, not asked", `document.querySelector('#lockbar.free') !== null && document.querySelector('#act-release-q') === null`)
	if th := f.thread(t, id); th.Lock != nil {
		t.Fatalf("thread after Release: %+v, want released", th)
	}
	p.click("#signout")
	p.waitFor("the sign-in form, not asked", `!document.querySelector('#signin-view').hidden`)
}

// TestSignOut_TheQuestionCountsTheRepliesInPlaceOfTheButton: with replies
// typed in two threads the question says how many, where the Sign out
// button was.
func TestSignOut_TheQuestionCountsTheRepliesInPlaceOfTheButton(t *testing.T) {
	f, _, p := anaTyping(t, "Hello?", "Hi there")
	id := f.ingest(t, msg{ExternalID: "typing-2", Text: "Still waiting"})
	p.claim(id)
	p.waitFor("the second thread's reply box", `document.querySelector('#conversation')?.textContent.includes('Still waiting') &&
		document.querySelector('#reply-text')?.value === ''`)
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "On it"))
	p.click("#signout")
	p.waitText("#signout-q", "2 replies you typed are not sent and will be lost. Sign out anyway?")
	if eval[bool](p, `!document.querySelector('#signout').hidden`) {
		t.Fatal("the Sign out button is shown beside its question")
	}
}

// TestSignOut_AFailedSignOutPutsTheButtonBack: Yes was pressed and signing
// out failed: the page says so and shows the Sign out button again, not
// the question.
func TestSignOut_AFailedSignOutPutsTheButtonBack(t *testing.T) {
	f, _, p := anaTyping(t, "Hello?", "Hi there")
	p.block(f.url + "/api/v1/session")
	p.click("#signout")
	p.click("#signout-yes")
	p.waitText("#alert", "Signing out failed")
	p.waitFor("the Sign out button back", `!document.querySelector('#signout').hidden && document.querySelector('#signout-confirm').hidden`)
}

// TestSignOut_AQuestionOpenWhenTheSessionEndsGoesWithIt: the session ended
// (the key was rotated) while "Sign out anyway?" was asked; whoever signs
// in next in this page is not shown it.
func TestSignOut_AQuestionOpenWhenTheSessionEndsGoesWithIt(t *testing.T) {
	f, _, p := anaTyping(t, "Hello?", "Hi there")
	p.click("#signout")
	p.waitFor("the question", `!document.querySelector('#signout-confirm').hidden`)
	var rotated struct {
		APIKey string `json:"api_key"`
	}
	f.must(t, 200, "POST", "/api/v1/agents/ana/rotate-key", f.admin, nil, &rotated)
	p.key("n")
	p.waitText("#signin-msg", "revoked")
	eval[bool](p, `(document.querySelector('#key').value = `+js(rotated.APIKey)+`, document.querySelector('#signin-submit').click(), true)`)
	p.waitFor("the inbox after sign-in", `!document.querySelector('#app').hidden && document.querySelector('#me-name').textContent !== ''`)
	if eval[bool](p, `!document.querySelector('#signout-confirm').hidden || document.querySelector('#signout').hidden`) {
		t.Fatal("after signing in again the page asks the last session's question")
	}
}

// TestSupervisor_SeesNoReleaseOnAThreadAnotherHolds: Release is for the
// holder; a supervisor looking at Ana's thread has Close, not Release.
func TestSupervisor_SeesNoReleaseOnAThreadAnotherHolds(t *testing.T) {
	_, _, _, sam := samOnAnasThread(t, "Hello?")
	sam.waitFor("the Close button", `document.querySelector('#act-close') !== null`)
	if eval[bool](sam, `document.querySelector('#act-release') !== null`) {
		t.Fatal("a supervisor not holding the thread is shown Release")
	}
}

// TestSupervisor_AnAnsweredQuestionIsNotAskedAgain: Yes was pressed and
// the close failed; once the thread is shown again (the customer wrote)
// it has its Close button, not the question already answered.
func TestSupervisor_AnAnsweredQuestionIsNotAskedAgain(t *testing.T) {
	f := newCareFixture(t)
	customer := map[string]any{"id": "u-held-2", "name": "María"}
	id := f.ingest(t, msg{ExternalID: "held-2", Thread: "conv-held-2", Text: "Hello?", Author: customer})
	ana := signedIn(t, f.server, "ana", f.ana)
	ana.claim(id)
	sam := signedIn(t, f.server, "sam", f.sam)
	eval[bool](sam, `(location.hash = '#t/`+id+`', true)`)
	sam.click("#act-close")
	sam.waitText("#act-close-q", "Ana Ruiz holds this thread")
	sam.block(f.url + "/api/v1/threads/" + id + "/close")
	sam.click("#act-close-yes")
	sam.waitText("#alert", "That did not work")
	// The answered question went at once (it stayed, its Yes one click
	// away, until something redrew the thread), and is not put again
	// when the thread is drawn anew.
	sam.waitFor("the Close button", `document.querySelector('#act-close') !== null && document.querySelector('#act-close-yes') === null`)
	if again := f.ingest(t, msg{ExternalID: "held-2b", Thread: "conv-held-2", Text: "Anyone there?", Author: customer}); again != id {
		t.Fatalf("the customer's second message went to thread %s, want %s", again, id)
	}
	sam.waitText("#conversation", "Anyone there?")
	if eval[bool](sam, `document.querySelector('#act-close-yes') !== null`) {
		t.Fatal("the answered question is put again")
	}
}

// TestReply_ASavedReplyInsertedSurvivesAReload: a saved reply put in the
// box is a draft like typed text.
func TestReply_ASavedReplyInsertedSurvivesAReload(t *testing.T) {
	f := newCareFixture(t)
	f.must(t, 201, "POST", "/api/v1/saved-replies", f.admin, map[string]any{"id": "wait", "title": "Wait",
		"text": "Thanks for waiting, {{author.name}}.", "teams": []string{"care"}}, nil)
	id := f.ingest(t, msg{ExternalID: "saved-1", Text: "Hello?", Author: map[string]any{"id": "u-7", "name": "Noor"}})
	p := signedIn(t, f.server, "ana", f.ana)
	p.claim(id)
	p.waitFor("the saved replies", `document.querySelector('#saved-reply option[value="wait"]') !== null`)
	eval[bool](p, `(() => { const s = document.querySelector('#saved-reply'); s.value = 'wait';
		s.dispatchEvent(new Event('change')); return true; })()`)
	p.waitFor("the filled-in reply", `document.querySelector('#reply-text').value === 'Thanks for waiting, Noor.'`)
	p.do(chromedp.Reload())
	p.waitFor("the reply back after the reload", `document.querySelector('#reply-text')?.value === 'Thanks for waiting, Noor.'`)
}

// TestReply_AnEditKeptAfterAnUncertainSendSurvivesAReload: the edit kept
// (under a new key) after the earlier send turned out to have gone is,
// after a reload, sent as another reply, not taken for the first again.
func TestReply_AnEditKeptAfterAnUncertainSendSurvivesAReload(t *testing.T) {
	f, id, p := anaEditsAfterAnUncertainSend(t)
	p.do(chromedp.Reload())
	p.waitFor("the edit back", `document.querySelector('#reply-text')?.value === 'Yes, it is, and it ships today'`)
	p.click("#reply-send")
	p.waitText("#status-msg", "Reply sent.")
	if out := f.replies(t, id); strings.Join(out, "|") != "Yes, it is|Yes, it is, and it ships today" {
		t.Fatalf("replies sent: %q", out)
	}
}

// TestReply_ARetypedReplyAfterAnUncertainSendAndAReloadGoesOutOnce: the
// box emptied after a send that may have gone out, then the page
// reloaded: the send's key is kept, so the same reply typed again is not
// sent twice.
func TestReply_ARetypedReplyAfterAnUncertainSendAndAReloadGoesOutOnce(t *testing.T) {
	f, id, p := anaTyping(t, "Is my parcel lost?", "Checking now")
	firstReplyLostOnTheWayBack(p)
	p.click("#reply-send")
	p.waitText("#alert", "may not have been sent")
	eval[bool](p, `(() => { const ta = document.querySelector('#reply-text');
		ta.value = ''; ta.dispatchEvent(new Event('input', { bubbles: true })); return true; })()`)
	p.do(chromedp.Reload())
	p.waitFor("the reply box, empty", `document.querySelector('#reply-text')?.value === ''`)
	p.do(chromedp.SendKeys(chromedp.CSS("#reply-text"), "Checking now"))
	p.click("#reply-send")
	p.waitText("#status-msg", "Reply sent.")
	if out := f.replies(t, id); len(out) != 1 {
		t.Fatalf("replies stored: %q, want the one sent once", out)
	}
}

// TestSupervisor_AMoveWithNothingChosenSaysSoBeforeAsking: Ana holds the
// thread; Move with no team chosen says what is missing at once, and
// asks nothing (a Yes would only have led to that).
func TestSupervisor_AMoveWithNothingChosenSaysSoBeforeAsking(t *testing.T) {
	_, _, _, sam := samOnAnasThread(t, "Hello?")
	sam.click("#act-move")
	sam.waitText("#alert", "Choose the team to move the thread to.")
	if eval[bool](sam, `document.querySelector('#act-move-q') !== null`) {
		t.Fatal("a move with no team chosen asks whether to take the thread from Ana")
	}
}
