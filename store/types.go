package store

import (
	"strings"
	"time"

	"github.com/switchboard/switchboard/routing"
)

// Thread statuses.
const (
	StatusQueued   = "queued"
	StatusAssigned = "assigned"
	StatusPending  = "pending"
	StatusClosed   = "closed"
)

// Roles of keys. Agents and supervisors are people with an Agent record;
// admin and ingest keys are not.
const (
	RoleAdmin      = "admin"
	RoleSupervisor = "supervisor"
	RoleAgent      = "agent"
	RoleIngest     = "ingest"
	// RoleRevoked marks a tombstone, not a key: the hash of a revoked
	// secret that must not be stored again. SWITCHBOARD_ADMIN_KEY's is
	// kept so, since every start would otherwise store it anew.
	RoleRevoked = "revoked"
)

// Agent statuses.
const (
	AgentOnline  = "online"
	AgentAway    = "away"
	AgentOffline = "offline"
)

// Team is a queue owner: care, sales, an engagement team per network...
type Team struct {
	ID                      string    `json:"id"`
	Name                    string    `json:"name"`
	Function                string    `json:"function"` // engagement | care | sales | other
	Strategy                string    `json:"strategy"` // claim | round_robin | least_loaded
	SLAFirstResponseSeconds int       `json:"sla_first_response_seconds"`
	FallbackTeam            string    `json:"fallback_team"`
	AutoClosePendingSeconds int       `json:"auto_close_pending_seconds"`
	CreatedAt               time.Time `json:"created_at"`
	UpdatedAt               time.Time `json:"updated_at"`
}

// Agent is a person who works threads: role agent or supervisor.
type Agent struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Role      string            `json:"role"`
	Teams     []string          `json:"teams"`
	Networks  []string          `json:"networks"` // empty = all networks
	Capacity  int               `json:"capacity"`
	Timezone  string            `json:"timezone"`
	Shifts    []routing.Shift   `json:"shifts"`
	TimeOff   []routing.TimeOff `json:"time_off"`
	Status    string            `json:"status"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	// OpenLocks is computed by the store when an agent is read.
	OpenLocks int `json:"open_locks"`
	// StatusAt is when Status last changed.
	StatusAt time.Time `json:"status_at"`
	// LastOfferedAt is when the system last offered this agent a thread.
	LastOfferedAt time.Time `json:"last_offered_at,omitzero"`
	// LastSeenAt is when the agent last made a request or held an event
	// stream (recorded coarsely, see AgentTouch).
	LastSeenAt time.Time `json:"last_seen_at,omitzero"`
	// IdleAway is set when the presence sweep, not the agent, set them
	// away: their next sign of life (AgentTouch) sets them online again.
	IdleAway bool `json:"idle_away,omitempty"`
}

// Key is an API key. The key itself is never stored, only its SHA-256.
type Key struct {
	ID        string    `json:"id"`
	Role      string    `json:"role"`
	Name      string    `json:"name"`
	AgentID   string    `json:"agent_id,omitempty"`
	Hash      []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// Session is a browser session: a cookie that authenticates as its key.
type Session struct {
	KeyID     string    `json:"key_id"`
	Hash      []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// TTL, when set, has the store count the session's life on its own
	// clock (Redis: its TIME): CreatedAt is then now, ExpiresAt now + TTL.
	// A node whose clock is off cannot issue a session that is already
	// over, or one that lasts hours too long.
	TTL time.Duration `json:"-"`
}

// Rule is a routing rule with its bookkeeping times.
type Rule struct {
	routing.Rule
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Author is who wrote an inbound message.
type Author struct {
	ID        string `json:"id"`
	Handle    string `json:"handle,omitempty"`
	Name      string `json:"name,omitempty"`
	Followers int    `json:"followers"`
	Verified  bool   `json:"verified"`
}

// Attachment is a media item of a message, by URL.
type Attachment struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// Lock is the lease an agent holds on a thread. Token is secret: it is only
// ever returned to the agent it was granted to (see Grant) and is never
// encoded into JSON.
type Lock struct {
	AgentID   string    `json:"agent_id"`
	Fence     int64     `json:"fence"`
	ExpiresAt time.Time `json:"expires_at"`
	Token     string    `json:"-"`
}

// Grant is a lock as returned to its holder, token included.
type Grant struct {
	Token     string    `json:"token"`
	Fence     int64     `json:"fence"`
	AgentID   string    `json:"agent_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Grant returns the lock as shown to its holder.
func (l *Lock) Grant() *Grant {
	if l == nil {
		return nil
	}
	return &Grant{Token: l.Token, Fence: l.Fence, AgentID: l.AgentID, ExpiresAt: l.ExpiresAt}
}

// Thread is a conversation with one customer on one profile of one network.
type Thread struct {
	ID              string     `json:"id"`
	Network         string     `json:"network"`
	Profile         string     `json:"profile"`
	ExternalID      string     `json:"external_id"`
	Kind            string     `json:"kind"` // of the message that opened it
	Author          Author     `json:"author"`
	Status          string     `json:"status"`
	Team            string     `json:"team"`
	Priority        string     `json:"priority"`
	Tags            []string   `json:"tags"`
	Assignee        *string    `json:"assignee"`
	Lock            *Lock      `json:"lock"`
	WaitingSince    time.Time  `json:"waiting_since"`
	FirstResponseAt *time.Time `json:"first_response_at"`
	SLADueAt        *time.Time `json:"sla_due_at"`
	SLABreached     bool       `json:"sla_breached"`
	LastInboundAt   time.Time  `json:"last_inbound_at"`
	LastOutboundAt  *time.Time `json:"last_outbound_at"`
	// AutoCloseAt is when a pending thread closes by itself (team setting).
	AutoCloseAt *time.Time `json:"auto_close_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	// Version grows by one with every change; ingest and tag changes use it
	// for optimistic concurrency (see IngestParams.ThreadVersion).
	Version int64 `json:"version"`
}

// AssigneeID returns the assignee or "".
func (t *Thread) AssigneeID() string {
	if t.Assignee == nil {
		return ""
	}
	return *t.Assignee
}

// HasTag reports whether the thread carries tag.
func (t *Thread) HasTag(tag string) bool {
	for _, x := range t.Tags {
		if x == tag {
			return true
		}
	}
	return false
}

// Message directions.
const (
	Inbound  = "inbound"
	Outbound = "outbound"
)

// Delivery is an outbound message's delivery state reported by a connector.
type Delivery struct {
	Status     string `json:"status"` // pending | sent | failed
	ExternalID string `json:"external_id"`
	Error      string `json:"error"`
}

// DeletedText is the text of an inbound message its author deleted on the
// network (see Store.MessageDelete).
const DeletedText = "[deleted by the customer]"

// DeletedMessage empties m, an inbound message its author deleted on the
// network: its text becomes DeletedText and its attachments go. It
// reports whether m changed (it had not been deleted before).
func DeletedMessage(m *Message) bool {
	if m.Text == DeletedText && len(m.Attachments) == 0 {
		return false
	}
	m.Text, m.Attachments = DeletedText, []Attachment{}
	return true
}

// Message is one inbound or outbound message of a thread.
type Message struct {
	ID          string       `json:"id"`
	ThreadID    string       `json:"thread_id"`
	Direction   string       `json:"direction"`
	Network     string       `json:"network"`
	ExternalID  string       `json:"external_id"`
	Kind        string       `json:"kind"`
	Author      *Author      `json:"author"`   // null on outbound
	AgentID     string       `json:"agent_id"` // "" on inbound
	Text        string       `json:"text"`
	Attachments []Attachment `json:"attachments"`
	Language    string       `json:"language,omitempty"`
	SentAt      time.Time    `json:"sent_at"`
	ReceivedAt  time.Time    `json:"received_at"`
	Delivery    *Delivery    `json:"delivery,omitempty"`
	// EditedAt is when its author last edited an inbound message on the
	// network (see Store.MessageEdit); nil when never.
	EditedAt *time.Time `json:"edited_at,omitempty"`
}

// Note is an internal note on a thread, never sent to the customer.
type Note struct {
	ID        string    `json:"id"`
	ThreadID  string    `json:"thread_id"`
	AgentID   string    `json:"agent_id,omitempty"`
	Actor     string    `json:"actor"`
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"created_at"`
}

// Event types of the audit trail and the event stream.
const (
	EventMessageReceived   = "message.received"
	EventThreadCreated     = "thread.created"
	EventThreadRouted      = "thread.routed"
	EventThreadClaimed     = "thread.claimed"
	EventThreadOffered     = "thread.offered"
	EventThreadReplied     = "thread.replied"
	EventThreadReleased    = "thread.released"
	EventThreadTransferred = "thread.transferred"
	EventThreadClosed      = "thread.closed"
	EventThreadTagged      = "thread.tagged"
	EventThreadReopened    = "thread.reopened"
	EventThreadAssigned    = "thread.assigned"
	EventThreadUnlocked    = "thread.unlocked"
	EventPriorityChanged   = "thread.priority_changed"
	EventLockExpired       = "lock.expired"
	EventSLABreached       = "sla.breached"
	EventNoteAdded         = "note.added"
	// EventMessageDelivery: a connector reported whether an outbound
	// message reached the network (data: message_id, status, error).
	EventMessageDelivery = "message.delivery"
	// EventMessageDeleted: the customer deleted an inbound message on the
	// network, and its text and attachments are gone (data: message_id).
	EventMessageDeleted = "message.deleted"
	// EventMessageEdited: the customer edited an inbound message on the
	// network; the message has the new text. Data: message_id.
	EventMessageEdited = "message.edited"
	// EventThreadErased is the only trace an erased thread leaves: who
	// erased it and when, with its team and network and no data.
	EventThreadErased = "thread.erased"
)

// Event is one entry of the audit trail, also streamed to clients. ID grows
// across the whole store, so it doubles as the stream position.
type Event struct {
	ID       uint64         `json:"id"`
	Type     string         `json:"type"`
	ThreadID string         `json:"thread_id"`
	Actor    string         `json:"actor"`
	At       time.Time      `json:"at"`
	Data     map[string]any `json:"data"`
	// Team and Network are the thread's at the time of the event; the
	// stream uses them to show events only to those who may see the thread.
	// Agent is an agent the event concerns (an offer's target), who may see
	// it too.
	Team    string `json:"team,omitempty"`
	Network string `json:"network,omitempty"`
	Agent   string `json:"agent_id,omitempty"`
}

// Actor names used for changes nobody in particular made.
const (
	ActorSystem = "system"
)

// Webhook is an outbound webhook: events of the listed types are POSTed to
// URL, signed with Secret, in event order, at least once.
type Webhook struct {
	ID        string       `json:"id"`
	URL       string       `json:"url"`
	Events    []string     `json:"events"`
	Secret    string       `json:"-"`
	CreatedAt time.Time    `json:"created_at"`
	State     WebhookState `json:"state"`
}

// WebhookState is a webhook's delivery progress. The event log is the
// outbox: Cursor is the last event handled (delivered, skipped or given up).
type WebhookState struct {
	Cursor uint64 `json:"cursor"`
	// Attempts failed so far on the event after Cursor, since FirstFailureAt.
	Attempts int `json:"attempts"`
	// FailingEvent is the event those attempts were for (0 in states
	// saved before it was kept). When it is gone (its thread was erased),
	// the next event starts with no attempts.
	FailingEvent   uint64     `json:"failing_event,omitempty"`
	FirstFailureAt *time.Time `json:"first_failure_at,omitempty"`
	NextAttemptAt  *time.Time `json:"next_attempt_at,omitempty"`
	Delivered      uint64     `json:"delivered"`
	// Failed counts events given up on after the retry bound.
	Failed          uint64     `json:"failed"`
	LastError       string     `json:"last_error,omitempty"`
	LastErrorAt     *time.Time `json:"last_error_at,omitempty"`
	LastDeliveredAt *time.Time `json:"last_delivered_at,omitempty"`
}

// SavedReply is a canned answer of the team's response protocol.
type SavedReply struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Text      string    `json:"text"`
	Teams     []string  `json:"teams"` // empty = every team
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Stats are the counts behind GET /api/v1/stats.
type Stats struct {
	Teams  []TeamStats
	Agents []AgentStats
	// Now is the store's clock when it counted (Redis TIME on Redis), for
	// the waits: a node whose clock is off would measure them wrongly.
	Now time.Time
}

// TeamStats counts a team's threads.
type TeamStats struct {
	Team               string
	Queued, Assigned   int
	Pending            int
	OldestWaitingSince *time.Time // of its queued threads
	SLABreaches        int
	// FirstResponseSeconds is a sample of recent first-response times.
	FirstResponseSeconds []float64
}

// AgentStats counts an agent's work.
type AgentStats struct {
	AgentID      string
	OpenLocks    int
	RepliesToday int // since 00:00 UTC
}

// TimerResult counts what a timer sweep did.
type TimerResult struct {
	Breached   int // threads that passed sla_due_at unanswered
	AutoClosed int // pending threads closed after the team's auto_close_pending_seconds
}

// QueueCompare orders threads as a queue serves them: priority (urgent
// first), then waiting_since (oldest first), then id.
func QueueCompare(a, b *Thread) int {
	if ra, rb := routing.PriorityRank(a.Priority), routing.PriorityRank(b.Priority); ra != rb {
		return rb - ra
	}
	if c := a.WaitingSince.Compare(b.WaitingSince); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}
