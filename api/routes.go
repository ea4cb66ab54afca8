package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/inbox/connect"
	"github.com/switchboard/switchboard/store"
)

// routes is the route table. Roles are checked by inbox, per method.
func (s *server) routes(app *fiber.App) {
	app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/readyz", s.readyz)
	app.Get("/version", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"version": s.deps.Version}) })
	if s.deps.Registry != nil && !s.deps.MetricsElsewhere {
		app.Get("/metrics", metricsHandler(s.deps.Registry))
	}

	// Native network webhooks: authenticated by signature, not by key.
	app.Get("/webhooks/meta", s.metaVerify)
	app.Post("/webhooks/meta", s.metaWebhook)
	app.Get("/webhooks/x", s.xCRC)
	app.Post("/webhooks/x", s.xWebhook)
	app.Post("/webhooks/generic/:source", s.genericWebhook)

	// Answers carry keys (a new agent's, a rotated one) and customers'
	// messages: no cache, the browser's or a proxy's, keeps them.
	v1 := app.Group("/api/v1", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.Next()
	})
	v1.Post("/session", s.limitByAddress, s.sessionCreate) // authenticates by the key in its body
	v1.Use(s.authenticate)
	v1.Delete("/session", s.sessionDelete)
	v1.Get("/me", s.me)
	v1.Get("/me/locks", s.myLocks)
	v1.Get("/me/colleagues", s.colleagues)

	// Ingest: ingest and admin keys.
	v1.Post("/messages", s.ingest)
	v1.Post("/messages/batch", s.ingestBatch)
	v1.Post("/messages/:id/delivery", s.delivery)

	// Configuration: admin writes; people read.
	v1.Post("/keys", s.keyCreate)
	v1.Get("/keys", s.keyList)
	v1.Delete("/keys/:id", s.keyDelete)
	v1.Post("/teams", s.teamCreate)
	v1.Get("/teams", s.teamList)
	v1.Get("/teams/:id", s.teamGet)
	v1.Put("/teams/:id", s.teamUpdate)
	v1.Delete("/teams/:id", s.teamDelete)
	v1.Post("/agents", s.agentCreate)
	v1.Get("/agents", s.agentList)
	v1.Get("/agents/:id", s.agentGet)
	v1.Put("/agents/:id", s.agentUpdate)
	v1.Delete("/agents/:id", s.agentDelete)
	v1.Put("/agents/:id/status", s.agentStatus)
	v1.Post("/agents/:id/rotate-key", s.agentRotateKey)
	v1.Post("/rules", s.ruleCreate)
	v1.Get("/rules", s.ruleList)
	v1.Get("/rules/:id", s.ruleGet)
	v1.Put("/rules/:id", s.ruleUpdate)
	v1.Delete("/rules/:id", s.ruleDelete)
	v1.Post("/config", s.configApply) // configuration as code: `switchboard apply -f`
	v1.Get("/config", s.configExport)
	v1.Post("/routing/preview", s.routePreview) // what the rules and shifts would do with a message; stores nothing

	// Threads: agents of the thread's team and network, supervisors, admins.
	v1.Get("/threads", s.threadList)
	v1.Get("/threads/:id", s.threadGet)
	v1.Delete("/threads/:id", s.threadErase)
	v1.Get("/threads/:id/messages", s.messageList)
	v1.Get("/threads/:id/events", s.threadEvents)
	v1.Post("/threads/:id/notes", s.noteCreate)
	v1.Get("/threads/:id/notes", s.noteList)

	// Queue and locks.
	v1.Get("/queue", s.queue)
	v1.Post("/queue/claim", s.claimNext)
	v1.Post("/threads/:id/claim", s.claim)
	v1.Post("/threads/:id/renew", s.tokenStep(s.svc.Renew))
	v1.Post("/threads/:id/replies", s.reply)
	v1.Post("/threads/:id/release", s.tokenStep(s.svc.Release))
	v1.Post("/threads/:id/close", s.tokenStep(s.svc.Close))
	v1.Post("/threads/:id/transfer", s.transfer)
	v1.Post("/threads/:id/tags", s.tags)
	v1.Post("/threads/:id/assign", s.assign)
	v1.Post("/threads/:id/unlock", s.unlock)

	// Operations: the live event stream, stats, outbound webhooks (admin),
	// saved replies (supervisors write, agents read their teams').
	v1.Get("/events", s.events)
	v1.Get("/stats", s.stats)
	v1.Get("/backup", s.backup)
	v1.Post("/webhooks", s.webhookCreate)
	v1.Get("/webhooks", s.webhookList)
	v1.Get("/webhooks/:id", s.webhookGet)
	v1.Delete("/webhooks/:id", s.webhookDelete)
	v1.Post("/saved-replies", s.savedReplyCreate)
	v1.Get("/saved-replies", s.savedReplyList)
	v1.Get("/saved-replies/:id", s.savedReplyGet)
	v1.Put("/saved-replies/:id", s.savedReplyUpdate)
	v1.Delete("/saved-replies/:id", s.savedReplyDelete)

	if s.deps.Web != nil {
		// The page is small and changes with each release: browsers check
		// for a new version on every load instead of running stale scripts.
		app.Use("/", func(c *fiber.Ctx) error {
			c.Set(fiber.HeaderCacheControl, "no-cache")
			c.Set(fiber.HeaderContentSecurityPolicy, webCSP)
			c.Set(fiber.HeaderXFrameOptions, "DENY")
			c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
			c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
			return c.Next()
		}, filesystem.New(filesystem.Config{Root: http.FS(s.deps.Web), Index: "index.html"}))
	}
	app.Use(func(c *fiber.Ctx) error { return fiber.ErrNotFound })
}

// webCSP lets the page run only its own scripts and styles, talk only to
// its own origin, and never be framed (its sign-in form included).
const webCSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

func (s *server) readyz(c *fiber.Ctx) error {
	if err := s.svc.Store().Ping(c.UserContext()); err != nil {
		if errors.Is(err, store.ErrCannotWrite) {
			return store.ErrCannotWrite
		}
		return store.ErrUnavailable
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

// --- authentication ---

func principal(c *fiber.Ctx) inbox.Principal {
	p, _ := c.Locals("principal").(inbox.Principal)
	return p
}

// routeOf is a request's method and path as the router matches them: HEAD
// is answered by the GET route, and a path in any case, without its
// trailing slashes.
func routeOf(method, path string) (string, string) {
	if method == fiber.MethodHead {
		method = fiber.MethodGet
	}
	return method, strings.TrimRight(strings.ToLower(path), "/")
}

// refusedByRoute reports whether a key of role may not call method on path
// at all, judged by the route before the body is read, so that a malformed
// body from it is a 403, not a 400 (the service checks each call again):
// an ingest key reaches only the message routes, /me and sign-out (a
// connector's key, the one most often copied around, reaches nothing
// else); people's keys post no messages; admin-only routes are for admin
// keys.
func refusedByRoute(role, method, path string) bool {
	switch role {
	case store.RoleAdmin:
		return false
	case store.RoleIngest:
		return !ingestMay(method, path)
	}
	return adminOnly(method, path) || method == fiber.MethodPost && ingestMay(method, path)
}

// ingestMay reports whether an ingest key may call method on path (under
// /api/v1): post messages and delivery reports, and say who it is.
func ingestMay(method, path string) bool {
	method, p := routeOf(method, path)
	switch method {
	case fiber.MethodGet:
		return p == "/api/v1/me"
	case fiber.MethodDelete:
		return p == "/api/v1/session"
	case fiber.MethodPost:
		rest, ok := strings.CutPrefix(p, "/api/v1/messages/")
		id, delivery := strings.CutSuffix(rest, "/delivery")
		return p == "/api/v1/messages" || ok && (rest == "batch" || delivery && id != "" && !strings.Contains(id, "/"))
	}
	return false
}

// authenticate accepts a bearer key or the session cookie.
func (s *server) authenticate(c *fiber.Ctx) error {
	var (
		p   inbox.Principal
		err error
	)
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		key, ok := bearerKey(h)
		if !ok {
			return inbox.ErrUnauthorized
		}
		p, err = s.svc.Authenticate(c.UserContext(), key)
	} else {
		cookie := s.sessionCookie(c)
		if s.sessionCookies(c) > 1 {
			// Two of them: one was set by someone else, a sibling
			// subdomain's page writing a cookie of this name for the
			// parent domain, to sign this browser in as themselves.
			return fmt.Errorf("more than one %s cookie: %w", s.sessionCookieName(c), inbox.ErrUnauthorized)
		}
		// Signing out needs no label, as the contract writes it: no other
		// origin can send a DELETE without a preflight, and at worst it
		// would only sign the browser out.
		signOut := c.Method() == fiber.MethodDelete && bytes.EqualFold(routedPath([]byte(c.OriginalURL())), []byte("/api/v1/session"))
		if cookie != "" && !signOut {
			if err := requireJSONType(c); err != nil {
				return err
			}
		}
		p, err = s.svc.AuthenticateSession(c.UserContext(), cookie)
	}
	if errors.Is(err, inbox.ErrUnauthorized) {
		// A wrong key or cookie spends its address's sign-in budget, so
		// keys cannot be guessed here faster than at the sign-in.
		if ok, wait := s.limits.allow(s.addrBudget(c), s.deps.RateLimits.PerIP); !ok {
			return &RateLimitedError{RetryAfter: wait}
		}
	}
	if err != nil {
		return err
	}
	if refusedByRoute(p.Role, c.Method(), c.Path()) {
		return inbox.ErrForbidden
	}
	limit := s.deps.RateLimits.PerKey
	if p.Role == store.RoleIngest {
		limit = s.deps.RateLimits.PerIngestKey
	}
	if ok, wait := s.limits.allow("key:"+p.KeyID, limit); !ok {
		return &RateLimitedError{RetryAfter: wait}
	}
	c.Locals("principal", p)
	s.svc.Seen(p.AgentID)
	return c.Next()
}

// adminOnly reports whether method on path (under /api/v1) is for admin
// keys alone: keys, configuration writes, webhooks, backups and erasure.
func adminOnly(method, path string) bool {
	method, p := routeOf(method, path)
	rest, ok := strings.CutPrefix(p, "/api/v1/")
	if !ok {
		return false
	}
	seg := strings.Split(rest, "/")
	switch {
	case seg[0] == "keys", seg[0] == "webhooks", seg[0] == "backup":
		return true
	case seg[0] == "config":
		return method == fiber.MethodPost
	case seg[0] == "teams" || seg[0] == "rules":
		return method != fiber.MethodGet
	case seg[0] == "agents":
		return len(seg) <= 2 && method != fiber.MethodGet || len(seg) == 3 && seg[2] == "rotate-key"
	case seg[0] == "threads":
		return len(seg) == 2 && method == fiber.MethodDelete
	}
	return false
}

// limitByAddress rate-limits unauthenticated requests by client address:
// the sign-in, where keys could be guessed. (Network webhooks are not
// limited: Meta and X deliver from few addresses, and a bad signature is
// refused at the cost of one HMAC.)
func (s *server) limitByAddress(c *fiber.Ctx) error {
	if ok, wait := s.limits.allow(s.addrBudget(c), s.deps.RateLimits.PerIP); !ok {
		return &RateLimitedError{RetryAfter: wait}
	}
	return c.Next()
}

// bearerKey reads an Authorization header's key: "Bearer KEY", the scheme
// in any case (schemes are case-insensitive).
func bearerKey(h string) (string, bool) {
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(key), true
}

// sessionCookieName is the name of the session cookie a request sets and
// reads: SecureSessionCookie over HTTPS (or with --secure-cookies), where
// a plain sb_session, which any sibling subdomain may set, is not read.
func (s *server) sessionCookieName(c *fiber.Ctx) string {
	if s.deps.SecureCookies || c.Protocol() == "https" {
		return SecureSessionCookie
	}
	return SessionCookie
}

// sessionCookie is the request's session cookie, "" when it has none.
func (s *server) sessionCookie(c *fiber.Ctx) string {
	return c.Cookies(s.sessionCookieName(c))
}

// sessionCookies counts the request's session cookies.
func (s *server) sessionCookies(c *fiber.Ctx) int {
	n, want := 0, s.sessionCookieName(c)
	for _, line := range c.Request().Header.PeekAll(fiber.HeaderCookie) {
		for _, pair := range strings.Split(string(line), ";") {
			if name, _, _ := strings.Cut(strings.TrimSpace(pair), "="); name == want {
				n++
			}
		}
	}
	return n
}

// requireJSONType refuses a write that does not say its body is JSON.
// Only a script can label a request application/json, and a script on
// another origin that does so needs a CORS preflight, which this server
// never grants; a form or a preflight-free fetch (no-cors, a Blob body)
// sends text/plain, form-encoded, multipart, some other type or none. So
// requiring the label keeps another site from writing with the session
// cookie (SameSite=Strict withholds it cross-site, not from a sibling
// subdomain or another port) or from signing a browser in with the
// attacker's key. A write with no body is held to it too: a cross-site
// POST needs no body to claim or release. The page labels every write.
// Bearer-key requests need none of this (no browser sends the key by
// itself) and stay lenient: `curl -d` labels JSON as a form.
func requireJSONType(c *fiber.Ctx) error {
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return nil
	}
	ct, _, _ := strings.Cut(c.Get(fiber.HeaderContentType), ";")
	if !strings.EqualFold(strings.TrimSpace(ct), fiber.MIMEApplicationJSON) {
		return &inbox.FieldError{Field: "Content-Type", Message: "must be application/json"}
	}
	return nil
}

func (s *server) sessionCreate(c *fiber.Ctx) error {
	if err := requireJSONType(c); err != nil {
		return err
	}
	var in struct {
		Key string `json:"key"`
	}
	if err := decode(c, &in); err != nil {
		return err
	}
	if in.Key == "" {
		return &inbox.FieldError{Field: "key", Message: "is required"}
	}
	cookie, p, err := s.svc.SessionCreate(c.UserContext(), in.Key)
	if err != nil {
		return err
	}
	name := s.sessionCookieName(c)
	c.Cookie(&fiber.Cookie{Name: name, Value: cookie, Path: "/", HTTPOnly: true,
		SameSite: fiber.CookieSameSiteStrictMode, Secure: name == SecureSessionCookie,
		MaxAge: int(s.svc.Config().SessionTTL.Seconds())})
	me, err := s.svc.Me(c.UserContext(), p)
	if err != nil {
		return err
	}
	return c.JSON(me)
}

func (s *server) sessionDelete(c *fiber.Ctx) error {
	if err := s.svc.SessionDelete(c.UserContext(), s.sessionCookie(c)); err != nil {
		return err
	}
	// An expiry in the past: Fiber drops a negative MaxAge, which left the
	// browser an empty session cookie.
	name := s.sessionCookieName(c)
	c.Cookie(&fiber.Cookie{Name: name, Value: "", Path: "/", HTTPOnly: true,
		SameSite: fiber.CookieSameSiteStrictMode, Secure: name == SecureSessionCookie,
		Expires: time.Unix(0, 0)})
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) me(c *fiber.Ctx) error {
	me, err := s.svc.Me(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(me)
}

func (s *server) myLocks(c *fiber.Ctx) error {
	locks, err := s.svc.MyLocks(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	return listPaged(c, lockViews(locks), func(l lockView) string { return l.Thread.ID })
}

func lockViews(rs []store.LockResult) []lockView {
	out := make([]lockView, len(rs))
	for i, r := range rs {
		out[i] = lockView{Thread: r.Thread, Lock: r.Lock}
	}
	return out
}

// --- ingest ---

func (s *server) routePreview(c *fiber.Ctx) error {
	if !principal(c).CanSupervise() {
		return inbox.ErrForbidden // before its body is decoded, as for every route a role may not call
	}
	var in inbox.RoutePreviewInput
	if err := decode(c, &in); err != nil {
		return err
	}
	res, err := s.svc.PreviewRoute(c.UserContext(), principal(c), in)
	if err != nil {
		return err
	}
	return c.JSON(res)
}

func (s *server) ingest(c *fiber.Ctx) error {
	var in inbox.MessageInput
	if err := decode(c, &in); err != nil {
		if principalMayIngest(principal(c)) == nil {
			s.svc.Rejected(1) // a message refused, as one that fails validation is
		}
		return err
	}
	res, err := s.svc.Ingest(c.UserContext(), principal(c), in)
	if err != nil {
		return err
	}
	status := fiber.StatusCreated
	if res.Duplicate {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON((*ingestView)(&res))
}

type batchItem struct {
	MessageID string     `json:"message_id,omitempty"`
	ThreadID  string     `json:"thread_id,omitempty"`
	Duplicate *bool      `json:"duplicate,omitempty"`
	Error     *errorBody `json:"-"`
}

func (b batchItem) MarshalJSON() ([]byte, error) {
	if b.Error != nil {
		return json.Marshal(b.Error)
	}
	type plain batchItem
	return json.Marshal(plain(b))
}

func (s *server) ingestBatch(c *fiber.Ctx) error {
	// The role first: only an ingest-capable key gets its 8 MiB decoded.
	if err := principalMayIngest(principal(c)); err != nil {
		return err
	}
	done, err := s.admitBatch(c)
	if err != nil {
		return err
	}
	defer done()
	if err := checkEncoding(c); err != nil {
		return err
	}
	messages, err := inbox.DecodeBatch(c.Request().Body())
	if err != nil {
		return err
	}
	if n := len(messages); n > inbox.MaxBatch {
		return fiber.NewError(fiber.StatusRequestEntityTooLarge, fmt.Sprintf("a batch takes at most %d messages, not %d", inbox.MaxBatch, n))
	}
	items := make([]connect.GenericItem, len(messages))
	for i, raw := range messages {
		items[i].Err = inbox.DecodeJSON(raw, &items[i].Input)
	}
	return s.answerBatch(c, principal(c), items, false)
}

// admitBatch waits for room in the batch budget for this request's body,
// before it is decoded (see DefaultBatchBudget); done gives the room back.
func (s *server) admitBatch(c *fiber.Ctx) (done func(), err error) {
	// The raw length: Ctx.Body would inflate a compressed body first,
	// which decode refuses unread.
	n := min(max(int64(len(c.Request().Body())), 1), DefaultBatchBudget)
	ctx, cancel := context.WithTimeout(c.UserContext(), s.deps.BatchWait)
	defer cancel()
	if err := s.deps.BatchBudget.Acquire(ctx, n); err != nil {
		return nil, errBatchesBusy
	}
	return func() { s.deps.BatchBudget.Release(n) }, nil
}

// answerBatch ingests the items that decoded and answers one result per
// item, in order: the item's own error, or its message and thread. With
// retryWhole (a webhook, whose sender reads the status only), an item
// refused for a while (busy, unavailable) makes the answer 503 with the
// same results: the sender sends it all again, and what was stored comes
// back as duplicates.
func (s *server) answerBatch(c *fiber.Ctx, p inbox.Principal, items []connect.GenericItem, retryWhole bool) error {
	out := make([]batchItem, len(items))
	var inputs []inbox.MessageInput
	var idx []int
	for i, it := range items {
		if it.Err != nil {
			_, body := mapError(it.Err)
			out[i].Error = &body
			continue
		}
		inputs = append(inputs, it.Input)
		idx = append(idx, i)
	}
	results, err := s.svc.IngestBatch(c.UserContext(), p, inputs)
	if err != nil {
		return err
	}
	s.svc.Rejected(len(items) - len(inputs)) // the items refused before the service saw them
	status := fiber.StatusOK
	for j, r := range results {
		i := idx[j]
		if r.Err != nil {
			code, body := mapError(r.Err)
			out[i].Error = &body
			if retryWhole && code == fiber.StatusServiceUnavailable {
				status = code
				c.Set(fiber.HeaderRetryAfter, "1")
			}
			continue
		}
		dup := r.Duplicate
		out[i] = batchItem{MessageID: r.Message.ID, ThreadID: r.Thread.ID, Duplicate: &dup}
	}
	return c.Status(status).JSON(fiber.Map{"results": out})
}

func principalMayIngest(p inbox.Principal) error {
	if p.Role != store.RoleIngest && p.Role != store.RoleAdmin {
		return inbox.ErrForbidden
	}
	return nil
}

func (s *server) delivery(c *fiber.Ctx) error {
	var in inbox.DeliveryInput
	if err := decode(c, &in); err != nil {
		return err
	}
	m, err := s.svc.MessageDelivery(c.UserContext(), principal(c), c.Params("id"), in)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"message": m})
}

// --- configuration ---

func (s *server) keyCreate(c *fiber.Ctx) error {
	var in inbox.KeyInput
	if err := decode(c, &in); err != nil {
		return err
	}
	k, err := s.svc.KeyCreate(c.UserContext(), principal(c), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(k)
}

func (s *server) keyList(c *fiber.Ctx) error {
	keys, err := s.svc.KeyList(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	return listPaged(c, keys, func(k store.Key) string { return createdKey(k.CreatedAt, k.ID) })
}

func (s *server) keyDelete(c *fiber.Ctx) error {
	if err := s.svc.KeyDelete(c.UserContext(), principal(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) teamCreate(c *fiber.Ctx) error {
	var t store.Team
	if err := decode(c, &t); err != nil {
		return err
	}
	t, err := s.svc.TeamCreate(c.UserContext(), principal(c), t)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(t)
}

func (s *server) teamList(c *fiber.Ctx) error {
	teams, err := s.svc.TeamList(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	return listPaged(c, teams, func(t store.Team) string { return t.ID })
}

func (s *server) teamGet(c *fiber.Ctx) error {
	t, err := s.svc.TeamGet(c.UserContext(), principal(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(t)
}

func (s *server) teamUpdate(c *fiber.Ctx) error {
	var t store.Team
	if err := decode(c, &t); err != nil {
		return err
	}
	t.ID = c.Params("id")
	t, err := s.svc.TeamUpdate(c.UserContext(), principal(c), t)
	if err != nil {
		return err
	}
	return c.JSON(t)
}

func (s *server) teamDelete(c *fiber.Ctx) error {
	if err := s.svc.TeamDelete(c.UserContext(), principal(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) agentCreate(c *fiber.Ctx) error {
	var a inbox.AgentInput
	if err := decode(c, &a); err != nil {
		return err
	}
	out, err := s.svc.AgentCreate(c.UserContext(), principal(c), a)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (s *server) agentList(c *fiber.Ctx) error {
	agents, err := s.svc.AgentList(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	return listPaged(c, agents, func(a inbox.AgentView) string { return a.ID })
}

func (s *server) agentGet(c *fiber.Ctx) error {
	a, err := s.svc.AgentGet(c.UserContext(), principal(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(a)
}

func (s *server) agentUpdate(c *fiber.Ctx) error {
	var a inbox.AgentInput
	if err := decode(c, &a); err != nil {
		return err
	}
	a.ID = c.Params("id")
	out, err := s.svc.AgentUpdate(c.UserContext(), principal(c), a)
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *server) agentDelete(c *fiber.Ctx) error {
	if err := s.svc.AgentDelete(c.UserContext(), principal(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) agentStatus(c *fiber.Ctx) error {
	var in struct {
		Status string `json:"status"`
	}
	if err := decode(c, &in); err != nil {
		return err
	}
	a, err := s.svc.AgentSetStatus(c.UserContext(), principal(c), c.Params("id"), in.Status)
	if err != nil {
		return err
	}
	return c.JSON(a)
}

func (s *server) agentRotateKey(c *fiber.Ctx) error {
	out, err := s.svc.AgentRotateKey(c.UserContext(), principal(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(out)
}

func (s *server) ruleCreate(c *fiber.Ctx) error {
	var r store.Rule
	if err := decode(c, &r); err != nil {
		return err
	}
	r, err := s.svc.RuleCreate(c.UserContext(), principal(c), r)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(ruleResponse{r, ruleWarnings(c.Body(), r)})
}

func (s *server) ruleList(c *fiber.Ctx) error {
	rules, err := s.svc.RuleList(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	return listPaged(c, rules, func(r store.Rule) string { return positionKey(r.Position, r.ID) })
}

func (s *server) ruleGet(c *fiber.Ctx) error {
	r, err := s.svc.RuleGet(c.UserContext(), principal(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(r)
}

func (s *server) ruleUpdate(c *fiber.Ctx) error {
	var r store.Rule
	if err := decode(c, &r); err != nil {
		return err
	}
	r.ID = c.Params("id")
	r, err := s.svc.RuleUpdate(c.UserContext(), principal(c), r)
	if err != nil {
		return err
	}
	return c.JSON(ruleResponse{r, ruleWarnings(c.Body(), r)})
}

func (s *server) ruleDelete(c *fiber.Ctx) error {
	if err := s.svc.RuleDelete(c.UserContext(), principal(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// --- threads ---

func (s *server) threadList(c *fiber.Ctx) error {
	pp, err := pageParams(c)
	if err != nil {
		return err
	}
	page, err := s.svc.ThreadList(c.UserContext(), principal(c), inbox.ThreadFilter{
		Status: c.Query("status"), Team: c.Query("team"), Assignee: c.Query("assignee"),
		Network: c.Query("network"), Tag: c.Query("tag"), Author: c.Query("author"), PageParams: pp})
	if err != nil {
		return err
	}
	return list(c, page.Items, page.Next)
}

func (s *server) threadGet(c *fiber.Ctx) error {
	t, err := s.svc.ThreadGet(c.UserContext(), principal(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(t)
}

func (s *server) threadErase(c *fiber.Ctx) error {
	if err := s.svc.ThreadErase(c.UserContext(), principal(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) messageList(c *fiber.Ctx) error {
	pp, err := pageParams(c)
	if err != nil {
		return err
	}
	page, err := s.svc.MessageList(c.UserContext(), principal(c), c.Params("id"), pp)
	if err != nil {
		return err
	}
	return list(c, page.Items, page.Next)
}

func (s *server) threadEvents(c *fiber.Ctx) error {
	pp, err := pageParams(c)
	if err != nil {
		return err
	}
	var after uint64
	if pp.Cursor != "" {
		if after, err = strconv.ParseUint(pp.Cursor, 10, 64); err != nil {
			return &inbox.FieldError{Field: "cursor", Message: "malformed"}
		}
	}
	limit := pp.Limit
	if limit == 0 {
		limit = 50
	}
	events, err := s.svc.ThreadEvents(c.UserContext(), principal(c), c.Params("id"), after, limit+1)
	if err != nil {
		return err
	}
	next := ""
	if len(events) > limit {
		events = events[:limit]
		next = strconv.FormatUint(events[limit-1].ID, 10)
	}
	return list(c, events, next)
}

func (s *server) noteCreate(c *fiber.Ctx) error {
	var in inbox.NoteInput
	if err := decode(c, &in); err != nil {
		return err
	}
	n, err := s.svc.NoteCreate(c.UserContext(), principal(c), c.Params("id"), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(n)
}

func (s *server) noteList(c *fiber.Ctx) error {
	pp, err := pageParams(c)
	if err != nil {
		return err
	}
	page, err := s.svc.NoteList(c.UserContext(), principal(c), c.Params("id"), pp)
	if err != nil {
		return err
	}
	return list(c, page.Items, page.Next)
}

// --- queue and locks ---

func (s *server) queue(c *fiber.Ctx) error {
	pp, err := pageParams(c)
	if err != nil {
		return err
	}
	page, err := s.svc.Queue(c.UserContext(), principal(c), c.Query("team"), pp)
	if err != nil {
		return err
	}
	items, err := s.svc.WithPreviews(c.UserContext(), page.Items)
	if err != nil {
		return err
	}
	return list(c, items, page.Next)
}

func lockResponse(c *fiber.Ctx, r store.LockResult) error {
	return c.JSON(&lockView{Thread: r.Thread, Lock: r.Lock})
}

func (s *server) claimNext(c *fiber.Ctx) error {
	var in inbox.ClaimInput
	if err := decode(c, &in); err != nil {
		return err
	}
	r, err := s.svc.ClaimNext(c.UserContext(), principal(c), in)
	if errors.Is(err, store.ErrEmpty) {
		return c.SendStatus(fiber.StatusNoContent)
	}
	if err != nil {
		return err
	}
	return lockResponse(c, r)
}

func (s *server) claim(c *fiber.Ctx) error {
	var in inbox.ClaimInput
	if err := decode(c, &in); err != nil {
		return err
	}
	r, err := s.svc.Claim(c.UserContext(), principal(c), c.Params("id"), in)
	if err != nil {
		return err
	}
	return lockResponse(c, r)
}

// tokenStep serves a step whose body is a token.
func (s *server) tokenStep(step func(context.Context, inbox.Principal, string, inbox.TokenInput) (store.LockResult, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var in inbox.TokenInput
		if err := decode(c, &in); err != nil {
			return err
		}
		r, err := step(c.UserContext(), principal(c), c.Params("id"), in)
		if err != nil {
			return err
		}
		return lockResponse(c, r)
	}
}

func (s *server) reply(c *fiber.Ctx) error {
	var in inbox.ReplyInput
	if err := decode(c, &in); err != nil {
		return err
	}
	r, err := s.svc.Reply(c.UserContext(), principal(c), c.Params("id"), in, c.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	status := fiber.StatusCreated
	if r.Repeated {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON(&replyView{Lock: r.Lock, Message: r.Message, Thread: r.Thread})
}

func (s *server) transfer(c *fiber.Ctx) error {
	var in inbox.TransferInput
	if err := decode(c, &in); err != nil {
		return err
	}
	r, err := s.svc.Transfer(c.UserContext(), principal(c), c.Params("id"), in)
	if err != nil {
		return err
	}
	return lockResponse(c, r)
}

func (s *server) tags(c *fiber.Ctx) error {
	var in inbox.TagInput
	if err := decode(c, &in); err != nil {
		return err
	}
	r, err := s.svc.Tag(c.UserContext(), principal(c), c.Params("id"), in)
	if err != nil {
		return err
	}
	return lockResponse(c, r)
}

func (s *server) assign(c *fiber.Ctx) error {
	var in inbox.AssignInput
	if err := decode(c, &in); err != nil {
		return err
	}
	r, err := s.svc.Assign(c.UserContext(), principal(c), c.Params("id"), in)
	if err != nil {
		return err
	}
	return lockResponse(c, r)
}

func (s *server) unlock(c *fiber.Ctx) error {
	r, err := s.svc.Unlock(c.UserContext(), principal(c), c.Params("id"))
	if err != nil {
		return err
	}
	return lockResponse(c, r)
}
