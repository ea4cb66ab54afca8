package web_test

import (
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var screenshot = flag.String("screenshot", "", "write a 1280×800 screenshot of the inbox with demo-like data to this PNG file")

// TestScreenshot renders the inbox with demo-like data and saves it:
//
//	go test ./web/ -run Screenshot -screenshot ../docs/inbox.png
func TestScreenshot(t *testing.T) {
	if *screenshot == "" {
		t.Skip("no -screenshot file given")
	}
	s, open, ana := demoData(t)
	b := newBrowser(t)
	p := newPage(t, b, s, "ana", 1280, 800)
	p.do(chromedp.Navigate(s.url+"/#t/"+open), chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), ana), chromedp.Click(chromedp.CSS("#signin-submit")))
	p.waitFor("the thread with its reply box", `document.querySelector('#reply-text') !== null && document.querySelectorAll('#conversation .msg').length === 3`)
	p.waitFor("the queue", `document.querySelectorAll('#queue-list .qitem').length >= 2`)
	p.waitFor("the live stream", `document.querySelector('#live-state').textContent === 'Live'`)
	p.waitFor("the saved replies", `document.querySelector('#saved-reply option[value="replacement"]') !== null`)
	eval[bool](p, `(() => { const s = document.querySelector('#saved-reply'); s.value = 'replacement';
		s.dispatchEvent(new Event('change')); document.activeElement.blur(); return true; })()`)
	p.waitFor("the saved reply in the box", `document.querySelector('#reply-text').value.startsWith('Hi María López, I')`)
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(*screenshot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", *screenshot, len(png))
}

// demoData is a server with demo-like teams, rules, saved replies and
// threads of several ages; Ana holds one thread (returned) that she has
// answered once. It returns the server, that thread and Ana's key.
func demoData(t *testing.T) (*server, string, string) {
	t.Helper()
	// The clock starts in the past, so threads have waited a while and some
	// SLAs ran out.
	var offset atomic.Int64
	offset.Store(int64(-47 * time.Minute))
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	at := func(ago time.Duration) { offset.Store(int64(-ago)) }

	s := newServerWith(t, clock, 0)
	for _, tm := range [][3]string{
		{"care", "Customer care", "care"},
		{"engagement-instagram", "Engagement · Instagram", "engagement"},
		{"engagement-twitter", "Engagement · X", "engagement"},
		{"sales", "Sales", "sales"},
	} {
		s.team(t, tm[0], tm[1], tm[2])
	}
	s.rule(t, "complaints", 10, map[string]any{"text_any": []string{"refund", "broken", "not working", "complaint"}},
		map[string]any{"team": "care", "add_tags": []string{"complaint"}, "priority": "high"})
	s.rule(t, "buying-intent", 20, map[string]any{"text_any": []string{"price", "quote", "how much"}},
		map[string]any{"team": "sales", "add_tags": []string{"lead"}})
	s.rule(t, "instagram", 30, map[string]any{"networks": []string{"instagram"}}, map[string]any{"team": "engagement-instagram"})
	s.rule(t, "twitter", 40, map[string]any{"networks": []string{"twitter"}}, map[string]any{"team": "engagement-twitter"})
	s.rule(t, "others", 50, map[string]any{}, map[string]any{"team": "care"})
	s.rule(t, "vip", 60, map[string]any{"min_followers": 10000}, map[string]any{"add_tags": []string{"vip"}, "priority": "high"})
	ana := s.agent(t, map[string]any{"id": "ana", "name": "Ana García", "teams": []string{"care", "engagement-instagram", "engagement-twitter"}})
	bea := s.agent(t, map[string]any{"id": "bea", "name": "Bea Costa", "teams": []string{"care"}})
	s.must(t, 201, "POST", "/api/v1/saved-replies", s.admin, map[string]any{"id": "replacement", "title": "Apology + replacement",
		"text": "Hi {{author.name}}, I'm so sorry about that! A replacement is on its way and you'll get the tracking number by email today. — {{agent.name}}"}, nil)
	s.must(t, 201, "POST", "/api/v1/saved-replies", s.admin, map[string]any{"id": "looking", "title": "Looking into it",
		"text": "Thanks {{author.handle}}, we're looking into it and will get back to you shortly."}, nil)

	people := map[string]map[string]any{
		"maria": {"id": "u-991", "handle": "@maria", "name": "María López", "followers": 120},
		"jonas": {"id": "u-17", "handle": "@jonas", "name": "Jonas Berg", "followers": 54000, "verified": true},
		"li":    {"id": "u-3", "handle": "@li.wei", "name": "Li Wei", "followers": 800},
		"sam":   {"id": "u-42", "handle": "@sam_k", "name": "Sam K", "followers": 15},
		"fan":   {"id": "u-7", "handle": "@acme_fan", "name": "Acme fan", "followers": 2300},
		"noor":  {"id": "u-8", "handle": "@noor", "name": "Noor Haddad", "followers": 310},
		"tom":   {"id": "u-9", "handle": "@tomr", "name": "Tom Reyes", "followers": 95},
	}
	n := 0
	post := func(ago time.Duration, network, kind, who, thread, text string) string {
		at(ago)
		n++
		return s.ingest(t, msg{Network: network, Kind: kind, ExternalID: fmt.Sprintf("shot-%d", n), Thread: thread, Text: text, Author: people[who]})
	}
	open := post(41*time.Minute, "instagram", "dm", "maria", "ig-conv-42", "My order #4411 arrived broken 😞 I want a refund")
	post(33*time.Minute, "twitter", "mention", "jonas", "", "@acme the app is not working since this morning, is there an outage?")
	post(27*time.Minute, "facebook", "comment", "li", "", "Still waiting for an answer to my complaint from last week")
	post(19*time.Minute, "instagram", "comment", "fan", "", "Love the new collection! When does the green one restock?")
	post(12*time.Minute, "whatsapp", "dm", "noor", "", "Hi, my package says delivered but it's not here. Order #5120")
	post(8*time.Minute, "twitter", "dm", "tom", "", "Do you ship to Canada? And how long does it take?")
	post(5*time.Minute, "instagram", "dm", "sam", "", "Quick question about sizes: do the shoes run small?")
	post(3*time.Minute, "youtube", "comment", "li", "", "Great video! Which mic do you use?")
	post(2*time.Minute, "linkedin", "comment", "tom", "", "What's the price for 50 seats? Can I get a quote?")

	// Ana claimed María's thread, answered, and María wrote back.
	at(38 * time.Minute)
	var claim struct {
		Lock struct {
			Token string `json:"token"`
		} `json:"lock"`
	}
	s.must(t, 200, "POST", "/api/v1/threads/"+open+"/claim", ana, map[string]any{"ttl_seconds": 3600}, &claim)
	var reply struct {
		Message struct {
			ID string `json:"id"`
		} `json:"message"`
	}
	s.must(t, 201, "POST", "/api/v1/threads/"+open+"/replies", ana, map[string]any{"token": claim.Lock.Token,
		"text": "Hi María, I'm sorry to hear that! Could you send us a photo of the damage?"}, &reply)
	s.must(t, 200, "POST", "/api/v1/messages/"+reply.Message.ID+"/delivery", s.admin, map[string]any{"status": "sent", "external_id": "ig-out-1"}, nil)
	at(36 * time.Minute)
	s.must(t, 201, "POST", "/api/v1/threads/"+open+"/notes", bea, map[string]any{"text": "Second broken order this month for her — offer express shipping."}, nil)
	post(31*time.Minute, "instagram", "dm", "maria", "ig-conv-42", "Here it is. The box was crushed too.")
	at(0)
	s.must(t, 200, "POST", "/api/v1/threads/"+open+"/renew", ana, map[string]any{"token": claim.Lock.Token, "ttl_seconds": 120}, nil)

	return s, open, ana
}
