package inbox

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// ingestRetryBudget bounds how long a message is decided again while its
// thread keeps changing under concurrent writers.
const ingestRetryBudget = 10 * time.Second

// Limits on inbound messages.
const (
	MaxTextRunes   = 20000
	MaxBatch       = 500
	MaxTags        = 20
	MaxAttachments = 20
	// MaxAttachmentType and MaxURL bound an attachment's type and URL (and
	// an outbound webhook's URL), in characters.
	MaxAttachmentType = 32
	MaxURL            = 2048
	maxIDLen          = 256
	// MaxDeliveryError bounds the reason a delivery report gives.
	MaxDeliveryError = 2000
)

// MessageInput is an inbound message as the contract defines it.
type MessageInput struct {
	Network          string             `json:"network"`
	ExternalID       string             `json:"external_id"`
	ThreadExternalID string             `json:"thread_external_id"`
	Profile          string             `json:"profile"`
	Kind             string             `json:"kind"`
	Text             string             `json:"text"`
	Attachments      []store.Attachment `json:"attachments"`
	Author           store.Author       `json:"author"`
	Language         string             `json:"language"`
	SentAt           *time.Time         `json:"sent_at"`
	Tags             []string           `json:"tags"`
	// InReplyTo is the network's id of the message this one answers (an
	// addition to the contract). When Switchboard has that message, a
	// customer's or a reply whose delivery reported that id, in a thread
	// of the same author on the same network and profile, this one joins
	// that thread whatever thread_external_id says: on X, whose posts name
	// only the post they answer, a customer answering the brand's reply
	// stays in the thread. Another customer answering goes to their own
	// thread of the same conversation (keys "<scheme>:<conversation>:<author
	// id>", see joinConversation).
	InReplyTo string `json:"in_reply_to,omitempty"`
}

// IngestResult is the outcome of one inbound message.
type IngestResult struct {
	Message   store.Message `json:"message"`
	Thread    store.Thread  `json:"thread"`
	Duplicate bool          `json:"duplicate"`
	// Err is set (and the rest empty) when the message was refused.
	Err error `json:"-"`
}

func checkLen(field, v string, max int) error {
	if utf8.RuneCountInString(v) > max {
		return fieldErr(field, fmt.Sprintf("must be at most %d characters", max))
	}
	if !utf8.ValidString(v) {
		return fieldErr(field, "must be valid UTF-8")
	}
	return nil
}

// Validate checks and normalises an inbound message.
func (in *MessageInput) Validate(now time.Time) error {
	if in.Network == "" {
		return fieldErr("network", "is required")
	}
	if err := checkEnum("network", in.Network, routing.Networks); err != nil {
		return err
	}
	if strings.TrimSpace(in.ExternalID) == "" {
		return fieldErr("external_id", "is required")
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"external_id", in.ExternalID, maxIDLen}, {"thread_external_id", in.ThreadExternalID, maxIDLen}, {"in_reply_to", in.InReplyTo, maxIDLen},
		{"profile", in.Profile, maxIDLen}, {"author.id", in.Author.ID, maxIDLen},
		{"author.handle", in.Author.Handle, maxIDLen}, {"author.name", in.Author.Name, maxIDLen},
		{"language", in.Language, 16}, {"text", in.Text, MaxTextRunes},
	} {
		if err := checkLen(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	// The stores join a thread's key parts with NUL: one inside a part
	// would let two different threads share a key. U+FFFD is what the
	// decoder makes of bytes that are not UTF-8 and of lone surrogate
	// escapes (\ud800): two ids differing only there would be one, and the
	// second message dropped as a duplicate.
	for _, f := range []struct{ name, v string }{
		{"external_id", in.ExternalID}, {"thread_external_id", in.ThreadExternalID}, {"profile", in.Profile},
		{"author.id", in.Author.ID}, {"in_reply_to", in.InReplyTo},
	} {
		if strings.IndexByte(f.v, 0) >= 0 {
			return fieldErr(f.name, "must not contain NUL characters")
		}
		if strings.ContainsRune(f.v, utf8.RuneError) {
			return fieldErr(f.name, "must be valid UTF-8 (no U+FFFD, no lone surrogate escapes)")
		}
	}
	if in.ThreadExternalID == "" {
		in.ThreadExternalID = in.ExternalID
	}
	if in.Kind == "" {
		in.Kind = "dm"
	}
	if err := checkEnum("kind", in.Kind, routing.Kinds); err != nil {
		return err
	}
	if strings.TrimSpace(in.Author.ID) == "" {
		return fieldErr("author.id", "is required")
	}
	if in.Author.Followers < 0 {
		return fieldErr("author.followers", "must not be negative")
	}
	if err := checkAttachments(in.Attachments); err != nil {
		return err
	}
	if in.Text == "" && len(in.Attachments) == 0 {
		return fieldErr("text", "is required unless attachments are given")
	}
	if len(in.Tags) > MaxTags {
		return fieldErr("tags", fmt.Sprintf("at most %d tags", MaxTags))
	}
	for i := range in.Tags {
		in.Tags[i] = routing.NormalizeTag(in.Tags[i])
		if !routing.ValidTag(in.Tags[i]) {
			return fieldErr(fmt.Sprintf("tags[%d]", i), "must be 1-64 of a-z 0-9 - _ :")
		}
	}
	in.Language = strings.ToLower(in.Language)
	if in.SentAt == nil || in.SentAt.IsZero() {
		t := now
		in.SentAt = &t
	} else {
		t := in.SentAt.UTC()
		if !routing.RFC3339Year(t) {
			return fieldErr("sent_at", "must be between years 0000 and 9999 in UTC")
		}
		in.SentAt = &t
	}
	return nil
}

// checkAttachments holds a message's attachments, inbound or a reply, to
// the contract: at most MaxAttachments, each with a type and an http(s) URL.
func checkAttachments(as []store.Attachment) error {
	if len(as) > MaxAttachments {
		return fieldErr("attachments", fmt.Sprintf("at most %d attachments", MaxAttachments))
	}
	for i, a := range as {
		field := fmt.Sprintf("attachments[%d]", i)
		if a.Type == "" || utf8.RuneCountInString(a.Type) > MaxAttachmentType {
			return fieldErr(field+".type", fmt.Sprintf("is required (at most %d characters)", MaxAttachmentType))
		}
		u, err := url.Parse(a.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || utf8.RuneCountInString(a.URL) > MaxURL {
			return fieldErr(field+".url", fmt.Sprintf("must be an http(s) URL of at most %d characters", MaxURL))
		}
	}
	return nil
}

// joinAnswered puts a message that names the message it answers
// (in_reply_to) in that message's thread, when Switchboard has it on the
// same network and profile and the thread is the same author's. When it is
// another author's thread of a conversation (see joinConversation), the
// message goes to its own author's thread of that conversation. The
// message answered may be earlier in the same batch, not stored yet.
func (s *Service) joinAnswered(ctx context.Context, in *MessageInput, earlier map[string]*MessageInput) error {
	if in.InReplyTo == "" {
		return nil
	}
	if e := earlier[in.Network+"\x00"+in.InReplyTo]; e != nil {
		if e.Profile == in.Profile {
			in.ThreadExternalID = joinConversation(in, e.ThreadExternalID, e.Author.ID)
		}
		return nil
	}
	m, err := s.st.MessageByExternalID(ctx, in.Network, in.InReplyTo)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	t, err := s.st.ThreadGet(ctx, m.ThreadID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // erased meanwhile
	}
	if err != nil {
		return err
	}
	if t.Profile == in.Profile {
		in.ThreadExternalID = joinConversation(in, t.ExternalID, t.Author.ID)
	}
	return nil
}

// joinConversation is the thread in's message joins, given the thread of
// the message it answers and that thread's author: that thread when it is
// in's author's. Threads kept per author within a conversation are keyed
// "<scheme>:<conversation>:<author id>" (X's "conv:", Meta's "post:"):
// when both in's own key and the answered thread's have that form, with
// the same scheme, in's message goes to its author's thread of the
// answered conversation. On X a post names only the post it answers, so
// a customer answering another customer's reply would otherwise open a
// thread of their own for every post they answer. Any other key is kept.
func joinConversation(in *MessageInput, answered, answeredAuthor string) string {
	if answeredAuthor == in.Author.ID {
		return answered
	}
	conv, ok := strings.CutSuffix(answered, ":"+answeredAuthor)
	own, ownOK := strings.CutSuffix(in.ThreadExternalID, ":"+in.Author.ID)
	if !ok || !ownOK || answeredAuthor == "" {
		return in.ThreadExternalID
	}
	scheme, rest, ok := strings.Cut(conv, ":")
	ownScheme, ownRest, ownOK := strings.Cut(own, ":")
	if !ok || !ownOK || rest == "" || ownRest == "" || scheme != ownScheme {
		return in.ThreadExternalID
	}
	if joined := conv + ":" + in.Author.ID; utf8.RuneCountInString(joined) <= maxIDLen {
		return joined
	}
	return in.ThreadExternalID
}

// Ingest stores and routes one inbound message.
func (s *Service) Ingest(ctx context.Context, p Principal, in MessageInput) (IngestResult, error) {
	res, err := s.IngestBatch(ctx, p, []MessageInput{in})
	if err != nil {
		return IngestResult{}, err
	}
	return res[0], res[0].Err
}

// pendingItem is a message waiting for its turn in IngestBatch.
type pendingItem struct {
	idx       int
	in        *MessageInput
	messageID string
	threadID  string
	// lookup: read the thread before deciding. A message that names no
	// other thread (its thread is its own external id) is decided as a new
	// thread without a read, a round trip saved on Redis; in the rare case
	// the thread exists already (a reply delivered before it, or a message
	// of the same thread earlier in the batch), the store refuses the step
	// as a conflict and the item is read and decided again.
	lookup bool
	// moveTo: the follow-up's thread is in a team that no longer exists;
	// after the message is stored the thread moves here, routed as a new
	// thread would be, so it does not wait in a queue nobody works.
	moveTo string
	// deleted: its author deleted it on the network before it came
	// (store.ErrDeletedBefore); it is emptied and stored even so.
	deleted bool
}

func (it *pendingItem) threadKey() string {
	return it.in.Network + "\x00" + it.in.Profile + "\x00" + it.in.ThreadExternalID
}

// IngestBatch stores and routes messages; each result carries its own error
// and one bad item does not fail the others. Messages of one thread are
// applied in input order.
func (s *Service) IngestBatch(ctx context.Context, p Principal, ins []MessageInput) ([]IngestResult, error) {
	if err := p.require(store.RoleIngest, store.RoleAdmin); err != nil {
		return nil, err
	}
	start := time.Now()
	defer func() { s.metrics.IngestSeconds.Observe(time.Since(start).Seconds()) }()
	results := make([]IngestResult, len(ins))
	now := s.now()
	var todo []*pendingItem
	earlier := map[string]*MessageInput{} // network \x00 external id -> an item before in this batch
	for i := range ins {
		if err := ins[i].Validate(now); err != nil {
			results[i].Err = err
			s.metrics.Ingested.WithLabelValues("rejected").Inc()
			continue
		}
		if err := s.joinAnswered(ctx, &ins[i], earlier); err != nil {
			results[i].Err = err
			continue
		}
		earlier[ins[i].Network+"\x00"+ins[i].ExternalID] = &ins[i]
		todo = append(todo, &pendingItem{idx: i, in: &ins[i], messageID: newID(), threadID: newID(),
			lookup: ins[i].ThreadExternalID != ins[i].ExternalID})
	}
	// A message decided against a thread that another writer changed in
	// the meantime is decided again. After a conflict the rest of the
	// request goes one message at a time, each decided and stored under
	// its thread's stripe lock: the node's writers to one busy thread take
	// turns instead of colliding (on Redis each try is two round trips,
	// and hundreds of writers retrying at once let almost none through).
	// Writers on other nodes still collide; a random pause keeps them from
	// doing so in lock-step. Only a thread changing for ingestRetryBudget
	// fails, as a 503: try again.
	deadline := time.Now().Add(ingestRetryBudget)
	serial := false
	for attempt, conflicted := 0, false; len(todo) > 0; attempt++ {
		if conflicted {
			if time.Now().After(deadline) {
				for _, it := range todo {
					results[it.idx].Err = ErrBusy
				}
				break
			}
			select {
			case <-time.After(time.Duration(rand.Int64N(int64(min(attempt, 10))*int64(time.Millisecond) + 1))):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			serial = true
		}
		conflicted = false
		sn, err := s.ingestSnapshot(ctx)
		if err != nil {
			return nil, err
		}
		// One message per thread per round: the next one is decided against
		// the thread as this one leaves it.
		var batch, later []*pendingItem
		seen := map[string]bool{}
		for _, it := range todo {
			if k := it.threadKey(); !seen[k] && (!serial || len(batch) == 0) {
				seen[k] = true
				batch = append(batch, it)
			} else {
				it.lookup = it.lookup || seen[k]
				later = append(later, it)
			}
		}
		stripe := -1
		if serial {
			stripe = stripeOf(batch[0].threadKey(), len(s.ingestStripes))
		}
		out, err := s.ingestRound(ctx, sn, batch, stripe)
		if err != nil {
			return nil, err
		}
		for i, r := range out {
			it := batch[i]
			switch {
			case errors.Is(r.Err, store.ErrConflict):
				// A thread decided on without a read was there already: no
				// race, read it at once. Otherwise another writer got there
				// first: pause.
				conflicted = conflicted || it.lookup
				it.lookup = true
				later = append(later, it)
			case errors.Is(r.Err, store.ErrDeletedBefore) && !it.deleted:
				// Its deletion came first: it keeps its place in the
				// conversation, emptied, and is routed as such.
				in := *it.in
				in.Text, in.Attachments = store.DeletedText, nil
				it.in, it.deleted = &in, true
				later = append(later, it)
			case errors.Is(r.Err, store.ErrUnknownTeam), errors.Is(r.Err, store.ErrStaleConfig):
				// The configuration changed under us: decide again on a
				// fresh snapshot.
				s.snap.Store(nil)
				later = append(later, it)
				conflicted = true
			case r.Err != nil:
				results[it.idx].Err = r.Err
			default:
				if it.moveTo != "" && !r.Duplicate && r.Thread.Team != it.moveTo && r.Thread.Status != store.StatusClosed {
					r.Thread = s.moveFromDeletedTeam(ctx, r.Thread, it.moveTo)
				}
				results[it.idx] = IngestResult{Message: r.Message, Thread: r.Thread, Duplicate: r.Duplicate}
				outcome := "created"
				if r.Duplicate {
					outcome = "duplicate"
				}
				s.metrics.Ingested.WithLabelValues(outcome).Inc()
			}
		}
		sort.Slice(later, func(i, j int) bool { return later[i].idx < later[j].idx })
		todo = later
	}
	return results, nil
}

// Rejected counts n inbound messages refused before they reached the
// service (a body or batch item that did not decode), in the same counter
// as those that fail validation.
func (s *Service) Rejected(n int) {
	if n > 0 {
		s.metrics.Ingested.WithLabelValues("rejected").Add(float64(n))
	}
}

// ErrBusy: a message's thread kept changing under concurrent writers for
// the whole retry budget. Nothing was stored; sending it again is safe.
var ErrBusy = fmt.Errorf("the thread kept changing under other writers; try again: %w", store.ErrUnavailable)

// ingestRound decides batch against the threads as they are now and
// stores it, holding stripe (-1: none) throughout. The stripe is taken
// unless ctx ends first, and given back however the round ends.
func (s *Service) ingestRound(ctx context.Context, sn *snapshot, batch []*pendingItem, stripe int) ([]store.IngestResult, error) {
	if stripe >= 0 {
		select {
		case s.ingestStripes[stripe] <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-s.ingestStripes[stripe] }()
	}
	threads, err := s.lookupThreads(ctx, batch)
	if err != nil {
		return nil, err
	}
	params := make([]store.IngestParams, len(batch))
	offering := make([]offerChoice, len(batch))
	now := s.now()
	for i, it := range batch {
		params[i], offering[i] = s.decide(ctx, sn, threads[i], it, now)
		params[i].CheckConfig, params[i].ConfigVersion = true, sn.version
	}
	// The round's offers go in queue order: the most urgent thread first
	// (a batch's urgent complaint before its greetings), then as they came.
	order := make([]int, len(batch))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return routing.PriorityRank(offering[b].priority) - routing.PriorityRank(offering[a].priority)
	})
	offers := &offerRound{}
	for _, i := range order {
		if choose := offering[i].choose; choose != nil {
			params[i].Route.OfferTo = choose(offers)
			offers.add(params[i].Route.OfferTo)
		}
	}
	res, err := s.st.ThreadIngest(ctx, params)
	if offers.wake {
		s.wake() // now that the threads left to the assigner are stored
	}
	return res, err
}

// stripeOf maps key to one of n stripes.
func stripeOf(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// moveFromDeletedTeam transfers a thread whose team was deleted to team.
// The message is stored already; if the move fails (the thread changed
// meanwhile) the thread stays where it is, as a supervisor would find it.
func (s *Service) moveFromDeletedTeam(ctx context.Context, t store.Thread, team string) store.Thread {
	res, err := s.st.ThreadTransfer(ctx, store.TransferParams{ThreadID: t.ID, Force: true, Actor: store.ActorSystem,
		Team: team, Reason: "team_deleted", TTL: s.cfg.LockTTL, ThreadVersion: t.Version})
	if err != nil {
		s.log.Warn("moving a thread out of a deleted team failed", "thread", t.ID, "err", err)
		return t
	}
	return res.Thread
}

// lookupParallel bounds the thread reads one ingest round runs at once.
const lookupParallel = 8

// lookupThreads reads the threads of the items that need it (nil where an
// item needs none or its thread does not exist yet). A batch's reads run
// side by side: on Redis each is a round trip.
func (s *Service) lookupThreads(ctx context.Context, items []*pendingItem) ([]*store.Thread, error) {
	threads := make([]*store.Thread, len(items))
	errs := make([]error, len(items))
	read := func(i int) {
		it := items[i]
		t, err := s.st.ThreadByKey(ctx, it.in.Network, it.in.Profile, it.in.ThreadExternalID)
		switch {
		case err == nil:
			threads[i] = &t
		case !errors.Is(err, store.ErrNotFound):
			errs[i] = err
		}
	}
	var todo []int
	for i, it := range items {
		if it.lookup {
			todo = append(todo, i)
		}
	}
	if len(todo) == 1 {
		read(todo[0])
	} else if len(todo) > 1 {
		var wg sync.WaitGroup
		next := make(chan int)
		for range min(lookupParallel, len(todo)) {
			wg.Go(func() {
				for i := range next {
					read(i)
				}
			})
		}
		for _, i := range todo {
			next <- i
		}
		close(next)
		wg.Wait()
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return threads, nil
}

// ingestSnapshot is the snapshot ingest decides on: the one held, without
// a read of the store's configuration version first (a round trip on
// Redis). Each item carries the version it was decided on and the store
// refuses it when the configuration has moved since (ErrStaleConfig), in
// the same atomic step that stores it; the item is then decided again on
// a fresh snapshot.
func (s *Service) ingestSnapshot(ctx context.Context) (*snapshot, error) {
	if sn := s.snap.Load(); sn != nil {
		return sn, nil
	}
	return s.snapshot(ctx)
}

// routedTeam is the team the rules' decision d sends a new thread to
// (ruled; the default team when it names none that exists) and the one
// that takes it after the fallback chain of teams nobody staffs. visit,
// when not nil, is told each team looked at (see routing.StaffingWalk).
func (s *Service) routedTeam(sn *snapshot, d routing.Decision, now time.Time, visit func(team string, staffed bool)) (ruled, team string) {
	ruled = d.Team
	if _, ok := sn.teams[ruled]; !ok {
		ruled = s.cfg.DefaultTeam
	}
	return ruled, routing.StaffingWalk(ruled,
		func(id string) string { return sn.teams[id].FallbackTeam },
		func(id string) bool { _, ok := sn.teams[id]; return ok && sn.staffed(id, now) }, visit)
}

// newThreadPriority is the priority a new thread gets from the rules'
// decision, as the store gives it: normal when no rule names one.
func newThreadPriority(ruled string) string {
	if routing.PriorityRank(ruled) < 0 {
		return "normal"
	}
	return ruled
}

// messageFacts is what the rules see of an inbound message.
func messageFacts(in *MessageInput) routing.Facts {
	return routing.Facts{Network: in.Network, Kind: in.Kind, Profile: in.Profile, Text: in.Text,
		Language: in.Language, Tags: slices.Clone(in.Tags), AuthorVerified: in.Author.Verified,
		AuthorFollowers: in.Author.Followers}
}

// offerChoice is how a decided message's thread is offered: choose picks
// the agent ("" for none) counting the offers of the round made before it
// (nil: the thread is not offered); priority is the thread's once stored,
// which orders the round's offers.
type offerChoice struct {
	priority string
	choose   func(round *offerRound) string
}

// decide computes the routing decision for a message against the thread as
// it is now (nil for a new thread), and how its thread may be offered. The
// store applies it atomically if the thread has not changed since.
func (s *Service) decide(ctx context.Context, sn *snapshot, t *store.Thread, it *pendingItem, now time.Time) (store.IngestParams, offerChoice) {
	in := it.in
	author := in.Author
	p := store.IngestParams{
		Message: store.Message{ID: it.messageID, Network: in.Network, ExternalID: in.ExternalID, Kind: in.Kind,
			Author: &author, Text: in.Text, Attachments: in.Attachments, Language: in.Language, SentAt: *in.SentAt},
		Profile: in.Profile, ThreadExternalID: in.ThreadExternalID, NewThreadID: it.threadID, Tags: in.Tags,
		Deleted: it.deleted,
	}
	facts := messageFacts(in)
	if t != nil {
		p.ThreadVersion = t.Version
		for _, tag := range t.Tags {
			if !slices.Contains(facts.Tags, tag) {
				facts.Tags = append(facts.Tags, tag)
			}
		}
	}
	d := sn.rules.Evaluate("message", facts, now)
	p.Route = store.Route{AddTags: d.AddTags, Priority: d.Priority, Rules: d.Matched, OfferTTL: s.cfg.LockTTL}

	if t == nil {
		p.Route.RuledTeam, p.Route.Team = s.routedTeam(sn, d, now, nil)
		p.Route.Close = d.Close
		if d.Close {
			return p, offerChoice{}
		}
		team, prio := sn.teams[p.Route.Team], newThreadPriority(d.Priority)
		return p, offerChoice{priority: prio, choose: func(round *offerRound) string {
			return s.unlessQueuedAhead(ctx, sn, round, s.pickAgent(ctx, sn, team, in.Network, "", now, round), prio)
		}}
	}
	// A follow-up never moves the thread (unless its team was deleted:
	// moveTo) and never closes it: the contract runs the message rules
	// for tags and priority only, and a message on a pending or closed
	// thread reopens it, whoever closed it.
	it.moveTo = ""
	if _, ok := sn.teams[t.Team]; !ok {
		_, it.moveTo = s.routedTeam(sn, d, now, nil)
	}
	if t.Status != store.StatusPending && t.Status != store.StatusClosed {
		return p, offerChoice{}
	}
	prio := routing.MaxPriority(t.Priority, d.Priority)
	return p, offerChoice{priority: prio, choose: func(round *offerRound) string {
		if a := t.AssigneeID(); a != "" && s.offerable(ctx, sn, a, t, now, round) {
			return a
		}
		return s.unlessQueuedAhead(ctx, sn, round, s.pickAgent(ctx, sn, sn.teams[t.Team], t.Network, "", now, round), prio)
	}}
}

// unlessQueuedAhead is the agent to offer a thread of that priority to,
// or "" when a queue the agent takes offers from (their push teams, on
// their networks) holds a thread at the priority or above: it waited
// longer, so the agent with room is offered it first (by the assigner,
// woken once the round is stored, in queue order, whatever its network or
// team), not a thread that has just come in.
func (s *Service) unlessQueuedAhead(ctx context.Context, sn *snapshot, round *offerRound, offer, priority string) string {
	if offer == "" {
		return ""
	}
	a := sn.agents[offer]
	var teams []string
	for _, id := range a.Teams {
		if pushes(sn.teams[id]) {
			teams = append(teams, id)
		}
	}
	page, err := s.st.QueueList(ctx, store.QueueParams{Teams: teams, Networks: a.Networks, // none: all
		PageParams: store.PageParams{Limit: 1}})
	if err == nil && len(page.Items) > 0 && routing.PriorityRank(page.Items[0].Priority) >= routing.PriorityRank(priority) {
		round.wakeAfter()
		return ""
	}
	return offer
}

// offerable reports whether thread t may be offered to the agent: still
// working its team and network, online, on shift and under capacity.
func (s *Service) offerable(ctx context.Context, sn *snapshot, id string, t *store.Thread, now time.Time, round *offerRound) bool {
	a, ok := sn.agents[id]
	if !ok || a.Status != store.AgentOnline || !sn.onShift(&a, now) || mayWork(a, t.Team, t.Network) != nil {
		return false
	}
	fresh, err := s.st.AgentGet(ctx, id)
	pending, _ := round.count(id)
	return err == nil && fresh.OpenLocks+pending < fresh.Capacity
}
