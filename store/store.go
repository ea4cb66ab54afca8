// Package store defines Switchboard's persistence contract: the Store
// interface every backend implements, the records it keeps and the sentinel
// errors both the service and the backends use.
//
// Each step that must be atomic is one method, so a backend can make it one
// transaction (bbolt) or one script (Redis). Methods put the noun first and
// steps with many inputs take a params struct. Methods take lease durations,
// never absolute deadlines: the backend reads its own clock.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Sentinel errors. Backends wrap them with context; callers test with
// errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrInUse         = errors.New("in use")
	ErrLockHeld      = errors.New("lock held")
	ErrLockLost      = errors.New("lock lost")
	ErrCapacity      = errors.New("capacity reached")
	// ErrConflict: the thread changed since the caller read it (its
	// version moved); the caller decides again and retries.
	ErrConflict = errors.New("conflict")
	// ErrEmpty: nothing is claimable.
	ErrEmpty = errors.New("nothing to claim")
	// ErrClosed: the thread is closed and cannot be locked.
	ErrClosed = errors.New("thread closed")
	// ErrUnknownTeam / ErrUnknownAgent: a record names a team or agent that
	// does not exist.
	ErrUnknownTeam  = errors.New("unknown team")
	ErrUnknownAgent = errors.New("unknown agent")
	// ErrStaleConfig: the configuration changed since the caller read the
	// version it decided on (see IngestParams.CheckConfig).
	ErrStaleConfig = errors.New("configuration changed")
	// ErrDeletedBefore: its author deleted the message on the network
	// before it came (see Store.MessageDelete); the caller stores it
	// emptied, with IngestParams.Deleted.
	ErrDeletedBefore = errors.New("deleted on the network before it came")
	// ErrUnavailable: the backend cannot be reached.
	ErrUnavailable = errors.New("store unavailable")
	// ErrCannotWrite: the backend is there but cannot write (a full disk,
	// an I/O error, Redis at its maxmemory); nothing was stored. It matches
	// ErrUnavailable.
	ErrCannotWrite = fmt.Errorf("the store cannot write its data (disk or memory full, or failing): %w", ErrUnavailable)
	// ErrBackupUnderWay: another backup is being taken or read; one at a
	// time, as each needs room for a copy. It matches ErrUnavailable.
	ErrBackupUnderWay = fmt.Errorf("another backup is being taken or downloaded; try again when it is done: %w", ErrUnavailable)
	// ErrNoRoomForBackup: the backup's copy would leave the store's disk
	// without room for its own writes.
	ErrNoRoomForBackup = errors.New("no room for the backup's copy beside the data file")
	// ErrCannotCopy: the backup's copy could not be made (the folder is
	// not writable, the disk failed); the error says why.
	ErrCannotCopy = errors.New("the backup's copy cannot be made")
)

// LockHeldError says who holds a lock; it matches ErrLockHeld.
type LockHeldError struct {
	AgentID   string
	ExpiresAt time.Time
}

func (e *LockHeldError) Error() string {
	return fmt.Sprintf("thread is locked by agent %s until %s", e.AgentID, e.ExpiresAt.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrLockHeld) true.
func (e *LockHeldError) Is(target error) bool { return target == ErrLockHeld }

// InUseError names what still refers to a team; it matches ErrInUse.
type InUseError struct{ By string }

// TeamUsers is what still refers to a team: the ids of the rules sending
// to it, the teams falling back to it, and the agents and saved replies
// listing it, and its open threads. Both stores find all of them in the
// step that refuses, so one round of edits clears the way.
type TeamUsers struct {
	Rules, Fallbacks, Agents, SavedReplies []string
	Queued, Assigned, Pending              int
}

// InUse is nil when nothing refers to the team, or the refusal naming
// them all, a few of each: "in use by rules a, b; agents ana, bo, cy, di,
// ed and 2 more; 3 queued, 1 assigned threads".
func (u TeamUsers) InUse() *InUseError {
	var parts []string
	list := func(one, many string, ids []string) {
		ids = slices.Sorted(slices.Values(ids))
		switch n := len(ids); {
		case n == 0:
		case n > 5:
			parts = append(parts, fmt.Sprintf("%s %s and %d more", many, strings.Join(ids[:5], ", "), n-5))
		case n > 1:
			parts = append(parts, many+" "+strings.Join(ids, ", "))
		default:
			parts = append(parts, one+" "+ids[0])
		}
	}
	list("rule", "rules", u.Rules)
	list("the fallback_team of team", "the fallback_team of teams", u.Fallbacks)
	list("agent", "agents", u.Agents)
	list("saved reply", "saved replies", u.SavedReplies)
	var open []string
	total := 0
	for _, c := range []struct {
		n    int
		what string
	}{{u.Queued, "queued"}, {u.Assigned, "assigned"}, {u.Pending, "pending"}} {
		if c.n > 0 { // (a count that drifted below zero is none)
			open = append(open, fmt.Sprintf("%d %s", c.n, c.what))
			total += c.n
		}
	}
	switch total {
	case 0:
	case 1:
		parts = append(parts, open[0]+" thread")
	default:
		parts = append(parts, strings.Join(open, ", ")+" threads")
	}
	if len(parts) == 0 {
		return nil
	}
	return &InUseError{By: strings.Join(parts, "; ")}
}

func (e *InUseError) Error() string        { return "in use by " + e.By }
func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// Store is the backend contract. All methods are safe for concurrent use.
type Store interface {
	// Configuration.
	TeamCreate(ctx context.Context, t Team) (Team, error)
	TeamGet(ctx context.Context, id string) (Team, error)
	TeamList(ctx context.Context) ([]Team, error)
	TeamUpdate(ctx context.Context, t Team) (Team, error)
	// TeamDelete refuses with TeamUsers.InUse while a rule, a saved reply, another team's
	// fallback_team or an agent names the team, or it has open threads.
	TeamDelete(ctx context.Context, id string) error

	// AgentCreate stores the agent (status offline) with its first key.
	AgentCreate(ctx context.Context, a Agent, key Key) (Agent, error)
	AgentGet(ctx context.Context, id string) (Agent, error)
	AgentList(ctx context.Context) ([]Agent, error)
	// AgentUpdate replaces the agent's profile; status is kept.
	AgentUpdate(ctx context.Context, a Agent) (Agent, error)
	AgentSetStatus(ctx context.Context, id, status string) (Agent, error)
	// AgentDelete revokes the agent's keys and releases its locks.
	AgentDelete(ctx context.Context, id, actor string) error
	// AgentRotateKey revokes the agent's keys and stores key instead, with
	// the agent's role as stored at the step (key.Role is not used).
	AgentRotateKey(ctx context.Context, agentID string, key Key) error

	RuleCreate(ctx context.Context, r Rule) (Rule, error)
	RuleGet(ctx context.Context, id string) (Rule, error)
	RuleList(ctx context.Context) ([]Rule, error)
	RuleUpdate(ctx context.Context, r Rule) (Rule, error)
	RuleDelete(ctx context.Context, id string) error

	// ConfigVersion grows with every change to teams, agents or rules, so
	// callers can cache what they derive from them. A version is never
	// handed out for two configurations, even after Redis lost writes.
	ConfigVersion(ctx context.Context) (uint64, error)

	// Keys and sessions.
	KeyCreate(ctx context.Context, k Key) (Key, error)
	// KeyBootstrap stores k only if no admin key exists yet.
	KeyBootstrap(ctx context.Context, k Key) (created bool, err error)
	// KeyByHash finds a live key by the SHA-256 of its secret.
	KeyByHash(ctx context.Context, hash []byte) (Key, error)
	// KeyAgentByHash is KeyByHash and, for a key with an agent, that agent
	// as AgentGet returns it (nil if it is gone), read together: what
	// authenticating a person's request needs, in one round trip on Redis.
	KeyAgentByHash(ctx context.Context, hash []byte) (Key, *Agent, error)
	KeyGet(ctx context.Context, id string) (Key, error)
	KeyList(ctx context.Context) ([]Key, error)
	KeyDelete(ctx context.Context, id string) error
	// KeyRevoke is KeyDelete that stores tombstone (RoleRevoked; its Hash
	// is the deleted key's) in the key's place in the same step, so that
	// no moment or failure leaves the hash free for the key to be stored
	// again. ErrAlreadyExists when tombstone.ID is taken.
	KeyRevoke(ctx context.Context, id string, tombstone Key) error
	SessionCreate(ctx context.Context, s Session) error
	// SessionKeyAgent finds a live session by the SHA-256 of its cookie,
	// with the session's key and, for a key with an agent, that agent as
	// KeyAgentByHash gives it, read together: what authenticating a web
	// page's request needs, in one round trip on Redis. ErrNotFound when
	// the session has expired or it or its key is gone.
	SessionKeyAgent(ctx context.Context, hash []byte) (Session, Key, *Agent, error)
	SessionDelete(ctx context.Context, hash []byte) error

	// Ingest and threads.
	// ThreadIngest stores inbound messages, each atomically with its dedupe
	// and routing result. Items are applied in order; each result carries
	// its own error (ErrConflict when the thread's version moved).
	ThreadIngest(ctx context.Context, items []IngestParams) ([]IngestResult, error)
	ThreadGet(ctx context.Context, id string) (Thread, error)
	// ThreadByKey finds a thread by (network, profile, thread external id).
	ThreadByKey(ctx context.Context, network, profile, externalID string) (Thread, error)
	ThreadList(ctx context.Context, f ThreadFilter) (Page[Thread], error)
	QueueList(ctx context.Context, p QueueParams) (Page[Thread], error)

	MessageGet(ctx context.Context, id string) (Message, error)
	MessageList(ctx context.Context, threadID string, p PageParams) (Page[Message], error)
	// MessageNewest returns up to n of the thread's messages, newest first
	// (none for a thread that has none or does not exist).
	MessageNewest(ctx context.Context, threadID string, n int) ([]Message, error)
	// MessageDelivery records a connector's delivery report on an outbound
	// message, found by its id or by the network's id for it (the
	// delivery's external_id an earlier report recorded). ErrNotFound
	// when there is none; a repeated report changes nothing.
	MessageDelivery(ctx context.Context, p DeliveryParams) (Message, error)
	// MessageByExternalID finds a message by the network's id for it: an
	// inbound message's external_id, or the external_id a delivery report
	// recorded for a reply. ErrNotFound when there is none.
	MessageByExternalID(ctx context.Context, network, externalID string) (Message, error)
	// MessageDelete empties an inbound message its author deleted on the
	// network, found by the network's id for it: its text becomes
	// DeletedText, its attachments go, with a message.deleted event on its
	// thread. The message stays, so the conversation keeps its turns and a
	// replayed delivery of it is still a duplicate. ErrNotFound when there
	// is no such inbound message; deleting it again changes nothing.
	//
	// A deletion of a message not stored (yet: networks do not promise
	// order, and a delivery refused once comes again later) is remembered
	// for remember (0: not at all): ThreadIngest refuses the message with
	// ErrDeletedBefore meanwhile, so that it is stored emptied.
	MessageDelete(ctx context.Context, network, externalID string, remember time.Duration) (Message, error)
	// MessageEdit gives an inbound message its author edited on the network,
	// found by the network's id for it, the edited text, with EditedAt
	// set to at and a message.edited event on its thread; its attachments
	// stay. An edit no later than the last one applied (a replay, or one
	// overtaken by a later edit), an edit of a deleted message and one to
	// the same text change nothing. ErrNotFound when there is no such
	// inbound message.
	MessageEdit(ctx context.Context, p EditParams) (Message, error)

	// ThreadErase deletes a thread, in any state, and everything kept
	// about it: its messages and their dedupe entries, notes, audit events
	// and index entries; a lock on it ends. Only thread.erased remains, in
	// the event log but not under the thread. ErrNotFound when there is no
	// such thread, ErrConflict when p.Version is set and the thread's is
	// another. Like every write, it first ends a lease that ran out (which
	// moves the version on), so a version read while such a lease was still
	// in place is refused. Idempotency entries of replies on it stay: they hold no
	// customer data, and a replay finds no thread.
	ThreadErase(ctx context.Context, p EraseParams) error
	// ThreadOldest lists up to limit threads in creation order, oldest
	// first, starting after the thread numbered after (0: from the start);
	// next numbers the last one listed, for the next call (0: none left).
	ThreadOldest(ctx context.Context, after uint64, limit int) (threads []Thread, next uint64, err error)
	// EventTrimErased removes from the event log up to limit thread.erased
	// events recorded at or before until, oldest first, and returns how
	// many it removed. Retention calls it, so that an erased thread's last
	// trace goes after the retention period too. (Events recorded before
	// the store kept an index of them stay.)
	EventTrimErased(ctx context.Context, until time.Time, limit int) (int, error)

	// NoteCreate stores a note on n.ThreadID. Teams and networks, when teams
	// is not nil, are the caller's visibility, and a note by an agent (role
	// agent, n.AgentID) must be on a thread of its teams and networks as
	// stored: ErrNotFound otherwise (the caller read the thread before;
	// it may have moved, or the agent's teams changed, since).
	NoteCreate(ctx context.Context, n Note, teams, networks []string) (Note, error)
	NoteList(ctx context.Context, threadID string, p PageParams) (Page[Note], error)

	// Locks. Each checks token, fence and capacity atomically with its write
	// and records its event in the same step.
	ThreadClaimNext(ctx context.Context, p ClaimNextParams) (LockResult, error)
	ThreadClaim(ctx context.Context, p ClaimParams) (LockResult, error)
	// ThreadRenew extends the lease to now + p.TTL; it never shortens it.
	ThreadRenew(ctx context.Context, p LockParams) (LockResult, error)
	ThreadReply(ctx context.Context, p ReplyParams) (ReplyResult, error)
	ThreadRelease(ctx context.Context, p LockParams) (LockResult, error)
	ThreadClose(ctx context.Context, p LockParams) (LockResult, error)
	// ThreadTransfer's and ThreadAssign's results carry the new lock only
	// when it is the actor's own (a transfer or assignment to oneself).
	ThreadTransfer(ctx context.Context, p TransferParams) (LockResult, error)
	ThreadTag(ctx context.Context, p TagParams) (LockResult, error)
	// ThreadAssign offers the thread to an agent (a lock granted by the
	// system), ending any other lock on it.
	ThreadAssign(ctx context.Context, p AssignParams) (LockResult, error)
	ThreadUnlock(ctx context.Context, p UnlockParams) (LockResult, error)
	// LockList lists the live locks an agent holds, tokens included.
	LockList(ctx context.Context, agentID string) ([]LockResult, error)
	// LockSweep expires every lock past its lease and returns how many.
	LockSweep(ctx context.Context) (int, error)

	// ThreadTimerSweep raises SLA breaches (sla.breached once, priority
	// urgent) and closes pending threads past their auto-close time.
	ThreadTimerSweep(ctx context.Context) (TimerResult, error)

	// Presence. AgentTouch records that agents were seen now.
	AgentTouch(ctx context.Context, agentIDs []string) error
	// AgentPresenceSweep sets online agents not seen for ttl to away and
	// returns their ids.
	AgentPresenceSweep(ctx context.Context, ttl time.Duration) ([]string, error)

	// Stats counts threads per team and work per agent.
	Stats(ctx context.Context) (Stats, error)

	// Outbound webhooks. A new webhook starts at the current end of the
	// event log.
	WebhookCreate(ctx context.Context, w Webhook) (Webhook, error)
	WebhookGet(ctx context.Context, id string) (Webhook, error)
	WebhookList(ctx context.Context) ([]Webhook, error)
	WebhookDelete(ctx context.Context, id string) error
	// WebhookLease gives owner the right to deliver the webhook for ttl
	// (renewing its own lease; a ttl of 0 releases it); ErrLockHeld while
	// another owner has it.
	WebhookLease(ctx context.Context, id, owner string, ttl time.Duration) (Webhook, error)
	// WebhookSaveState stores delivery progress; ErrLockLost unless owner
	// holds the lease.
	WebhookSaveState(ctx context.Context, id, owner string, st WebhookState) error

	// Saved replies.
	SavedReplyCreate(ctx context.Context, r SavedReply) (SavedReply, error)
	SavedReplyGet(ctx context.Context, id string) (SavedReply, error)
	SavedReplyList(ctx context.Context) ([]SavedReply, error)
	SavedReplyUpdate(ctx context.Context, r SavedReply) (SavedReply, error)
	SavedReplyDelete(ctx context.Context, id string) error

	// Events: the audit trail, also the stream's source.
	EventList(ctx context.Context, f EventFilter) ([]Event, error)
	// EventLastID is the id of the newest event (0 when none).
	EventLastID(ctx context.Context) (uint64, error)
	// EventWait blocks until an event with an id above after exists, or ctx
	// ends.
	EventWait(ctx context.Context, after uint64) error

	// Ping reports whether the backend is reachable.
	Ping(ctx context.Context) error
	Close() error
}

// Backuper is implemented by stores that can take a consistent copy of
// themselves while running (bbolt). Redis relies on its own persistence.
type Backuper interface {
	// Backup takes the copy, of n bytes, for the caller to read and close.
	// Taking it holds writes up no longer than a local copy takes: a slow
	// reader of the copy holds up nothing.
	Backup(ctx context.Context) (copy io.ReadCloser, n int64, err error)
}

// Exclusiver is implemented by stores only one process can open at a time
// (bbolt locks its file); Exclusive reports it.
type Exclusiver interface {
	Exclusive() bool
}

// IngestParams is one inbound message with the routing decision inbox
// computed for it against the thread as it was at ThreadVersion.
type IngestParams struct {
	Message Message // inbound; ID set by the caller
	Profile string
	// ThreadExternalID keys the thread with (Message.Network, Profile).
	ThreadExternalID string
	// NewThreadID is the id to give the thread if this message creates it.
	NewThreadID string
	// ThreadVersion is the version of the thread the decision was computed
	// against; 0 when no thread existed. A mismatch gives ErrConflict.
	ThreadVersion int64
	// Tags carried by the message itself.
	Tags  []string
	Route Route
	// CheckConfig: Route was decided on configuration version
	// ConfigVersion (see ConfigVersion); when the store's version has moved
	// since, the item is refused with ErrStaleConfig and nothing is stored.
	CheckConfig   bool
	ConfigVersion uint64
	// Deleted: its author deleted the message on the network before it
	// came (ErrDeletedBefore); the caller emptied it (DeletedText, no
	// attachments) and it is stored even so.
	Deleted bool
}

// Route is what routing decided for a message.
type Route struct {
	// Team for a new thread (after the staffing check); ignored for
	// follow-ups, which never move a thread.
	Team string
	// RuledTeam is the team the rules chose before staffing, for the audit.
	RuledTeam string
	AddTags   []string
	// Priority is a floor: the thread's priority is raised to it, never
	// lowered. Empty means normal for new threads.
	Priority string
	// Close closes a new thread at once (a rule's then.close); on an
	// existing thread it is ignored: a message reopens a closed thread.
	Close bool
	Rules []string // ids of matching rules, for the audit
	// OfferTo offers the thread to this agent if it is queued after the
	// message (push assignment or sticky reopen). The store checks the
	// agent's capacity atomically; when it is full the thread stays queued.
	OfferTo  string
	OfferTTL time.Duration
}

// IngestResult is the outcome of one IngestParams.
type IngestResult struct {
	Message   Message
	Thread    Thread
	Duplicate bool
	Created   bool
	Err       error
}

// Page is one page of a list; Next is empty on the last page.
type Page[T any] struct {
	Items []T
	Next  string
}

// PageParams are a cursor from a previous page and a page size.
type PageParams struct {
	Cursor string
	Limit  int
}

// PageLimit is the page size a backend serves for a requested limit: 50
// when unset, at most 500 (the contract's default and maximum).
func PageLimit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 500:
		return 500
	}
	return n
}

// ThreadFilter selects threads for ThreadList. Empty fields match all.
// Teams and Networks restrict visibility (an agent's teams and networks);
// nil means no restriction.
type ThreadFilter struct {
	Status, Team, Assignee, Network, Tag, Author string
	Teams, Networks                              []string
	// Scan bounds how many threads one page examines (0: ThreadScan).
	Scan int
	PageParams
}

// ThreadScan is how many threads one ThreadList page examines at most. A
// filter that few threads match then answers a short page, even an empty
// one, with a cursor to go on from, instead of reading every thread of a
// large store in one request.
const ThreadScan = 10_000

// ScanCursor is the creation sequence a ThreadList page that ran out of
// scan budget with threads left goes on below: the last thread returned
// when the page is full, else the last one examined.
func ScanCursor(full bool, lastReturned, lastExamined uint64) uint64 {
	if full {
		return lastReturned
	}
	return lastExamined
}

// ScanLimit is the page's bound on threads examined.
func (f *ThreadFilter) ScanLimit() int {
	if f.Scan > 0 {
		return f.Scan
	}
	return ThreadScan
}

// Match reports whether the thread passes the filter (cursor aside).
func (f *ThreadFilter) Match(t *Thread) bool {
	switch {
	case f.Status != "" && t.Status != f.Status,
		f.Team != "" && t.Team != f.Team,
		f.Assignee != "" && t.AssigneeID() != f.Assignee,
		f.Network != "" && t.Network != f.Network,
		f.Tag != "" && !t.HasTag(f.Tag),
		f.Author != "" && t.Author.ID != f.Author && !SameHandle(t.Author.Handle, f.Author),
		f.Teams != nil && !slices.Contains(f.Teams, t.Team),
		len(f.Networks) > 0 && !slices.Contains(f.Networks, t.Network):
		return false
	}
	return true
}

// SameHandle reports whether two handles name one account: networks'
// handles ignore case (@Maria is @maria), and the "@" is optional.
func SameHandle(a, b string) bool {
	a, b = strings.TrimPrefix(a, "@"), strings.TrimPrefix(b, "@")
	return a != "" && strings.EqualFold(a, b)
}

// QueueParams selects queued threads of some teams, merged in queue order.
type QueueParams struct {
	Teams    []string
	Networks []string // nil = all
	PageParams
}

// EraseParams names a thread to erase (see Store.ThreadErase).
type EraseParams struct {
	ThreadID string
	Actor    string
	// Version, when not 0, erases the thread only as it was when the
	// caller read it (retention: not if the customer wrote since).
	Version int64
	// RememberDeleted, when not 0, is how long the network ids of its
	// inbound messages their authors deleted are remembered (as
	// MessageDelete remembers one not stored yet): a network sending one
	// again after the erase has it stored emptied, not with the text.
	RememberDeleted time.Duration
}

// DeliveryParams is a connector's report on an outbound message: the
// message is MessageID, or, when that is empty, the outbound message whose
// delivery the network named ExternalID on Network (a network's own
// delivery webhook knows only its id).
type DeliveryParams struct {
	MessageID  string
	Network    string
	Status     string
	ExternalID string
	Error      string
	// RememberFailed, when not 0, is how long a "failed" report naming an
	// ExternalID no reply was reported under (the network's report came
	// before the connector's) is remembered: a later report that gives a
	// reply that ExternalID records it failed, with this Error, whatever
	// status it says. The report itself is ErrNotFound.
	RememberFailed time.Duration
}

// EditParams is an edit its author made on the network to an inbound
// message, which the network knows as ExternalID on Network: its Text
// now, and when it was edited (At orders edits; see Store.MessageEdit).
type EditParams struct {
	Network    string
	ExternalID string
	Text       string
	At         time.Time
}

// Apply gives m, the inbound message p edits, p's text, and reports
// whether m changed: not when m was deleted, when a later edit was applied
// before, or when this same edit was (the network retried it). An edit
// that leaves the text as it was (a photo changed, or back to the first
// words) is still an edit: it is dated, so an older one coming late does
// not win over it. An edit made at the same time as the last one applied,
// with another text, is taken: the later received wins (Meta dates feed
// edits to the second), so a retry of the earlier of two edits made in
// one second brings its text back, until the next.
func (p EditParams) Apply(m *Message) bool {
	if m.Text == DeletedText && len(m.Attachments) == 0 ||
		m.EditedAt != nil && (p.At.Before(*m.EditedAt) || p.At.Equal(*m.EditedAt) && m.Text == p.Text) {
		return false
	}
	at := p.At
	m.Text, m.EditedAt = p.Text, &at
	return true
}

// EventFilter selects events with an id above After, oldest first.
type EventFilter struct {
	ThreadID string
	After    uint64
	Limit    int
}

// LockResult is a thread after a lock step, with the grant when the step
// leaves the caller (or the agent it was offered to) holding the lock.
type LockResult struct {
	Thread Thread
	Lock   *Grant
}

// ClaimNextParams claims the first queued thread in the given teams (nil:
// none) and networks (empty: all), in queue order across all of them. For an agent
// (not a supervisor) the agent's record as stored at the claim narrows
// them too: the caller's scope was read before, and the agent may have
// left a team since.
type ClaimNextParams struct {
	AgentID  string
	Teams    []string
	Networks []string // nil = all
	TTL      time.Duration
}

// ClaimParams claims one thread. Teams and Networks, when not nil, are the
// caller's visibility: a thread outside them is ErrNotFound, as is, for an
// agent (not a supervisor), a thread outside its teams and networks as
// stored at the claim.
type ClaimParams struct {
	ThreadID string
	AgentID  string
	TTL      time.Duration
	Teams    []string
	Networks []string
}

// LockParams names a lock by its token. Actor is who acts, for the audit.
// Renew uses TTL. Force (supervisors) skips the token check where the
// contract allows it.
type LockParams struct {
	ThreadID string
	Token    string
	Actor    string
	// Force (close only) skips the token check: a supervisor's close.
	// Renew and release ignore it: they are the holder's alone.
	Force bool
	TTL   time.Duration
	// Holder (renew, release and close without Force) makes the step check
	// what the caller would otherwise read the thread for: a thread outside
	// Teams (nil: all) and Networks (empty: all) is ErrNotFound, and a lock
	// that is not Actor's is ErrLockLost even with its token.
	Holder   bool
	Teams    []string
	Networks []string
}

// IdempotencyTTL is how long a reply's Idempotency-Key is kept: a retry
// within it returns the first reply. After it the stores forget the key
// (bbolt at its next timer sweep), so the index does not grow for ever.
const IdempotencyTTL = 7 * 24 * time.Hour

// ReplyParams sends an outbound message through the lock.
type ReplyParams struct {
	ThreadID string
	Token    string
	// IdempotencyKey, scoped to Actor and the thread, makes a retry return
	// the first reply; the same key on another thread is another reply.
	IdempotencyKey string
	Actor          string
	Message        Message // outbound; ID set by the caller; Kind "" takes the thread's
	Close          bool
	// Scoped makes the step answer ErrNotFound, before anything else, for a
	// thread outside Teams (nil: all) and Networks (empty: all): what the
	// caller would otherwise read the thread for.
	Scoped   bool
	Teams    []string
	Networks []string
}

// ReplyResult is the outbound message and the thread after it.
type ReplyResult struct {
	Message Message
	Thread  Thread
	Lock    *Grant
	// Repeated is true when IdempotencyKey matched an earlier reply.
	Repeated bool
}

// TransferParams hands a thread to a team (queued there) or an agent
// (offered). inbox resolves reasons to Team, Priority and AddTags. An
// agent (role agent) whose stored teams or networks do not take the thread
// where it goes is ErrConflict: it was chosen on a record read before.
type TransferParams struct {
	ThreadID string
	Token    string
	Force    bool
	Actor    string
	Team     string
	AgentID  string
	Reason   string
	Note     *Note // kept as an internal note
	Priority string
	AddTags  []string
	TTL      time.Duration // for the offer to AgentID
	// Close: a tag rule the transfer ran (reason lead) closes the thread
	// once moved; no offer is made. Rules are the matching rules' ids.
	Close bool
	Rules []string
	// ThreadVersion guards tag-rule decisions made against the thread.
	ThreadVersion int64
}

// TagParams changes tags (and what tag rules decided) on a thread.
type TagParams struct {
	ThreadID string
	Token    string
	Force    bool
	Actor    string
	Add      []string // includes tags added by tag rules
	Remove   []string // a tag this change adds stays: Add wins
	Priority string   // floor from tag rules
	Team     string   // a tag rule's team: the thread moves there, a lock ends
	Close    bool     // a tag rule closes the thread (after any move): a lock ends
	Rules    []string
	// ThreadVersion is the version the tag rules were evaluated against.
	ThreadVersion int64
}

// AssignParams offers a thread to an agent. With OnlyIfQueued (push
// assignment) the offer only happens while the thread is still queued and
// unlocked; otherwise any lock is broken (supervisor assign).
type AssignParams struct {
	ThreadID     string
	AgentID      string
	Actor        string
	TTL          time.Duration
	OnlyIfQueued bool
	// ThreadVersion, when not 0, is the version of the thread the caller
	// read to choose the agent: ErrConflict when the thread changed since
	// (moved to another team, say). An agent (not a supervisor) whose
	// stored teams or networks no longer take the thread is ErrConflict
	// too, and with OnlyIfQueued (push) one not online: it was chosen on a
	// record read before.
	ThreadVersion int64
}

// UnlockParams breaks a thread's lock.
type UnlockParams struct {
	ThreadID string
	Actor    string
}

// ReleasedStatus is the status a thread takes when its lock ends without a
// close: pending if it has a reply newer than its last inbound message,
// queued otherwise.
func (t *Thread) ReleasedStatus() string {
	if t.Answered() {
		return StatusPending
	}
	return StatusQueued
}

// Answered reports whether the thread's last reply is no older than its
// last inbound message: the customer has had an answer.
func (t *Thread) Answered() bool {
	return t.LastOutboundAt != nil && !t.LastOutboundAt.Before(t.LastInboundAt)
}

// View returns the thread as it is at now: a lock past its lease is shown
// as already expired. Backends apply it to every read so that no response
// shows a lock past its expires_at, even between sweeps.
func (t Thread) View(now time.Time) Thread {
	if t.Lock != nil && !now.Before(t.Lock.ExpiresAt) {
		t.Lock = nil
		if t.Status == StatusAssigned {
			t.Status = t.ReleasedStatus()
		}
	}
	return t
}
