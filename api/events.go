package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/inbox"
)

// streams counts open event streams per key, to bound them.
type streams struct {
	mu    sync.Mutex
	byKey map[string]int
	max   int
}

func (st *streams) acquire(key string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.byKey[key] >= st.max {
		return false
	}
	st.byKey[key]++
	return true
}

func (st *streams) release(key string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.byKey[key]--; st.byKey[key] <= 0 {
		delete(st.byKey, key)
	}
}

// reauthenticator authenticates c's caller again, later, from a copy of
// its credentials (the request's buffers are reused once the handler
// returns), the way authenticate did.
func (s *server) reauthenticator(c *fiber.Ctx) func(context.Context) (inbox.Principal, error) {
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		key, _ := bearerKey(h) // authenticate took it
		key = strings.Clone(key)
		return func(ctx context.Context) (inbox.Principal, error) { return s.svc.Authenticate(ctx, key) }
	}
	cookie := strings.Clone(s.sessionCookie(c))
	return func(ctx context.Context) (inbox.Principal, error) { return s.svc.AuthenticateSession(ctx, cookie) }
}

// events serves GET /api/v1/events as Server-Sent Events: the events the
// caller may see, heartbeats, and resume from Last-Event-ID.
func (s *server) events(c *fiber.Ctx) error {
	p := principal(c)
	sp := inbox.StreamParams{Team: c.Query("team"), Recheck: s.reauthenticator(c), RecheckEvery: s.deps.Heartbeat,
		Fresh: s.deps.StreamFresh}
	last := c.Get("Last-Event-ID")
	if last == "" {
		last = c.Query("last_event_id")
	}
	if last != "" {
		id, err := strconv.ParseUint(last, 10, 64)
		if err != nil {
			return &inbox.FieldError{Field: "Last-Event-ID", Message: "must be an event id"}
		}
		sp.After, sp.Resume = id, true
	}
	if !s.streams.acquire(p.KeyID) {
		return &RateLimitedError{RetryAfter: 5 * time.Second, Reason: "too many event streams for this key"}
	}
	ctx, cancel := context.WithCancel(context.Background())
	evs, err := s.svc.Subscribe(ctx, p, sp)
	if err != nil {
		cancel()
		s.streams.release(p.KeyID)
		return err
	}
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	conn := c.Context().Conn()
	// The connection ends with the stream, so that gone (below) is the only
	// reader of what the client sends after its request.
	c.Context().SetConnectionClose()
	heartbeat, writeTimeout := s.deps.Heartbeat, s.deps.StreamWriteTimeout
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.streams.release(p.KeyID)
		defer cancel()
		gone := clientGone(conn)
		// Each write gets its own deadline: a client that stops reading is
		// dropped instead of holding a goroutine and a buffer forever.
		flush := func() bool {
			conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			return w.Flush() == nil
		}
		defer s.svc.Streaming(p.AgentID)() // a sign of life while it lasts
		fmt.Fprintf(w, "retry: 3000\n: connected\n\n")
		if !flush() {
			return
		}
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		for {
			select {
			case ev, ok := <-evs:
				if !ok {
					return
				}
				data, err := json.Marshal(ev)
				if err != nil {
					return
				}
				fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.ID, ev.Type, data)
			case <-t.C:
				w.WriteString(": heartbeat\n\n")
			case <-gone:
				// Closed by the client: its place in the key's streams is
				// free now, not at the next heartbeat's failed write.
				return
			}
			if !flush() {
				return
			}
		}
	})
	return nil
}

// clientGone is closed when the client closes the connection (or sends
// anything, which a stream's client never does). A client only reads an
// event stream, so without this its going away would show only when a
// write fails, at the next event or heartbeat.
func clientGone(conn net.Conn) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		conn.SetReadDeadline(time.Time{})
		var b [1]byte
		conn.Read(b[:])
	}()
	return gone
}
