// Package connect maps the social networks' own webhook payloads (Meta's
// Graph API webhooks for Facebook Pages, Instagram and WhatsApp; X's Account
// Activity API) and the generic signed webhook to inbound messages.
//
// It is pure: raw bytes in, []inbox.MessageInput out. It knows nothing of
// HTTP and stores nothing; callers verify the signature (see sign.go) and
// ingest the result through inbox.Service.IngestBatch, which routes,
// deduplicates on (network, external_id) and stores durably.
//
// Parsing is lenient inside a well-formed body: networks retry any non-2xx
// answer, so one odd item must not make a whole delivery fail. Only a body
// that is not a JSON object is an error (a *inbox.FieldError naming "body");
// every item that is not a customer message (echoes, the account's own posts,
// receipts, unknown events) is counted in Result.Ignored, and every item that
// looks like a message but cannot be mapped is listed in Result.Dropped with
// the reason, never with its text.
package connect

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
)

// Result is what one webhook delivery maps to.
type Result struct {
	// Messages are the inbound messages, in payload order, and Paths
	// where each is in the payload (as Drop's), for the log when one is
	// refused.
	Messages []inbox.MessageInput
	Paths    []string
	// Ignored counts events that are not inbound customer messages: echoes of
	// the brand's own messages, its own posts and comments, delivery and read
	// receipts, statuses, unknown objects, fields and event types.
	Ignored int
	// Dropped lists items that look like messages but could not be mapped.
	Dropped []Drop
	// Deleted are customers' messages their authors deleted on the
	// network, by the network's id for them.
	Deleted []Deletion
	// Edited are customers' messages their authors edited on the network,
	// by the network's id for them, with the edited text.
	Edited []Edit
	// Failed are the network's reports that a reply of the brand was not
	// delivered (WhatsApp statuses "failed"), by the network's id for it.
	Failed []FailedDelivery
}

// Deletion is a message its author deleted on the network.
type Deletion struct {
	Path       string
	Network    string
	ExternalID string
}

// Edit is a message its author edited on the network: its Text now, and
// when it was edited (zero when the network did not say).
type Edit struct {
	Path       string
	Network    string
	ExternalID string
	Text       string
	At         time.Time
}

// FailedDelivery is a network's report that an outbound message, which it
// knows as ExternalID, was not delivered, and why.
type FailedDelivery struct {
	Path       string
	Network    string
	ExternalID string
	Error      string
}

// Drop is an item left out of a delivery, for the log.
type Drop struct {
	// Path locates the item in the payload, e.g. "entry[1].messaging[0]".
	Path string
	// Reason says why; it never contains message text.
	Reason string
}

func (r *Result) message(path string, m inbox.MessageInput) {
	r.Messages = append(r.Messages, m)
	r.Paths = append(r.Paths, path)
}

// PathOf is where Messages[i] is in the payload, "" when not known (a
// Result built without message).
func (r *Result) PathOf(i int) string {
	if i < len(r.Paths) {
		return r.Paths[i]
	}
	return ""
}

// IgnoreOwn takes out of Messages, as ignored, those own reports as the
// brand's own: what the connector cannot tell from the payload alone.
func (r *Result) IgnoreOwn(own func(m *inbox.MessageInput) (bool, error)) error {
	var msgs []inbox.MessageInput
	var paths []string
	for i := range r.Messages {
		switch yes, err := own(&r.Messages[i]); {
		case err != nil:
			return err
		case yes:
			r.Ignored++
		default:
			msgs, paths = append(msgs, r.Messages[i]), append(paths, r.PathOf(i))
		}
	}
	r.Messages, r.Paths = msgs, paths
	return nil
}

func (r *Result) drop(path, reason string) {
	r.Dropped = append(r.Dropped, Drop{Path: path, Reason: reason})
}

func (r *Result) deleted(path, network, externalID string) {
	r.Deleted = append(r.Deleted, Deletion{Path: path, Network: network, ExternalID: externalID})
}

// edited notes an edit of the message the network knows as externalID,
// made at the first known of times; one with no text is dropped.
func (r *Result) edited(path, network, externalID, text string, times ...*time.Time) {
	if strings.TrimSpace(text) == "" {
		r.drop(path, "edit with no text")
		return
	}
	var at time.Time
	if t := firstTime(times...); t != nil {
		at = *t
	}
	r.Edited = append(r.Edited, Edit{Path: path, Network: network, ExternalID: externalID, Text: clip(text), At: at})
}

// Thread-id prefixes: DMs are threaded per conversation, public comments and
// mentions per author within a post or conversation.
const (
	dmPrefix   = "dm:"
	postPrefix = "post:"
	convPrefix = "conv:"
)

func dmThread(otherParty string) string { return dmPrefix + otherParty }

func postThread(postID, authorID string) string { return postPrefix + postID + ":" + authorID }

func errMalformed() error { return &inbox.FieldError{Field: "body", Message: "malformed JSON"} }

// jsonObject reports whether body is one syntactically valid JSON object.
func jsonObject(body []byte) bool {
	b := bytes.TrimSpace(body)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// --- lenient JSON scalars ---

// id is an identifier sent as a JSON string or number, kept as its text.
// Graph API and X ids are numeric strings, but some payloads (app_id, X's
// "id") carry numbers; a number is kept digit for digit, never through a
// float64.
type id string

func (v *id) UnmarshalJSON(b []byte) error {
	switch {
	case bytes.Equal(b, []byte("null")):
		*v = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = id(strings.TrimSpace(s))
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*v = id(n.String())
	return nil
}

// num is an integer sent as a JSON number or a numeric string (WhatsApp and
// X send timestamps as strings, Messenger as numbers). Anything else reads
// as 0.
type num int64

func (v *num) UnmarshalJSON(b []byte) error {
	*v = 0
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*v = num(n)
	} else if f, err := strconv.ParseFloat(s, 64); err == nil && f >= -9e18 && f <= 9e18 {
		*v = num(f)
	}
	return nil
}

// unixTime reads a Unix time in seconds or milliseconds: the networks mix
// both (Messenger timestamps are ms, WhatsApp and Page feed times seconds,
// entry.time either). Values from 1e11 on are milliseconds: 1e11 seconds is
// the year 5138, 1e11 milliseconds is 1973. Zero and negatives are "unknown".
func unixTime(n num) *time.Time {
	if n <= 0 {
		return nil
	}
	var t time.Time
	if n >= 1e11 {
		t = time.UnixMilli(int64(n)).UTC()
	} else {
		t = time.Unix(int64(n), 0).UTC()
	}
	return &t
}

// firstTime returns the first known time.
func firstTime(ts ...*time.Time) *time.Time {
	for _, t := range ts {
		if t != nil {
			return t
		}
	}
	return nil
}

// --- message helpers ---

// clip keeps text within the contract's limit: a network post longer than
// that (X allows 25,000 characters) is cut rather than lost.
func clip(s string) string { return clipRunes(s, inbox.MaxTextRunes) }

func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// attachments collects media by URL, keeping only those the contract
// accepts (http(s), at most inbox.MaxURL characters, at most inbox.MaxAttachments), so an
// odd attachment never costs the message its text. add reports whether the
// URL was usable (the attachment is kept unless there are enough already).
type attachments []store.Attachment

func (as *attachments) add(typ, rawURL string) bool {
	if rawURL == "" || utf8.RuneCountInString(rawURL) > inbox.MaxURL {
		return false
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	if len(*as) >= inbox.MaxAttachments {
		return true // usable, one too many to keep
	}
	typ = strings.ToLower(strings.TrimSpace(typ))
	switch typ {
	case "photo":
		typ = "image"
	case "animated_gif":
		typ = "video"
	case "":
		typ = "file"
	}
	typ = clipRunes(typ, inbox.MaxAttachmentType)
	*as = append(*as, store.Attachment{Type: typ, URL: rawURL})
	return true
}

// handle prefixes a user name with "@" as the contract's examples show.
func handle(username string) string {
	username = strings.TrimSpace(username)
	if username == "" || strings.HasPrefix(username, "@") {
		return username
	}
	return "@" + username
}
