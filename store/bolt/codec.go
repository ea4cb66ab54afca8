package bolt

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/store"
)

// Hand-written JSON encoders for the records every write step produces
// (threads, messages, events). They write exactly what encoding/json writes
// for the same values (codec_test.go checks byte for byte), without
// reflection, map sorting through reflect, or per-field allocations: the
// writer goroutine is the store's one serial resource, and encoding was a
// tenth of its time. Everything else still goes through encoding/json.

const hexDigits = "0123456789abcdef"

// jsonSafe[b] is true for the ASCII bytes encoding/json copies as they are
// in a string (it escapes control characters, quotes, backslashes and, for
// HTML safety, <, > and &).
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
	}
	return t
}()

// appendString appends s as a JSON string, escaped as encoding/json does.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if jsonSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but not valid JavaScript;
		// encoding/json escapes them.
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendTime appends t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds, quoted), and fails where it fails (a year outside 0-9999, an
// offset of 24 hours or more or with seconds).
func appendTime(dst []byte, t time.Time) ([]byte, error) {
	if _, off := t.Zone(); t.Year() < 0 || t.Year() > 9999 || off%60 != 0 || off <= -24*3600 || off >= 24*3600 {
		b, err := t.MarshalJSON()
		if err != nil {
			return dst, err
		}
		return append(dst, b...), nil
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), nil
}

func appendTimePtr(dst []byte, t *time.Time) ([]byte, error) {
	if t == nil {
		return append(dst, "null"...), nil
	}
	return appendTime(dst, *t)
}

func appendStrings(dst []byte, s []string) []byte {
	if s == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, v := range s {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, v)
	}
	return append(dst, ']')
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// enc accumulates an encoding and its first error.
type enc struct {
	b   []byte
	err error
}

func (e *enc) raw(s string)         { e.b = append(e.b, s...) }
func (e *enc) str(s string)         { e.b = appendString(e.b, s) }
func (e *enc) int(v int64)          { e.b = strconv.AppendInt(e.b, v, 10) }
func (e *enc) uint(v uint64)        { e.b = strconv.AppendUint(e.b, v, 10) }
func (e *enc) bool(v bool)          { e.b = appendBool(e.b, v) }
func (e *enc) strs(v []string)      { e.b = appendStrings(e.b, v) }
func (e *enc) time(t time.Time)     { e.check(appendTime(e.b, t)) }
func (e *enc) timePtr(t *time.Time) { e.check(appendTimePtr(e.b, t)) }

func (e *enc) check(b []byte, err error) {
	e.b = b
	if err != nil && e.err == nil {
		e.err = err
	}
}

func (e *enc) author(a *store.Author) {
	e.raw(`{"id":`)
	e.str(a.ID)
	if a.Handle != "" {
		e.raw(`,"handle":`)
		e.str(a.Handle)
	}
	if a.Name != "" {
		e.raw(`,"name":`)
		e.str(a.Name)
	}
	e.raw(`,"followers":`)
	e.int(int64(a.Followers))
	e.raw(`,"verified":`)
	e.bool(a.Verified)
	e.raw(`}`)
}

// encodeThread encodes a thread record as json.Marshal does.
func encodeThread(dst []byte, r *threadRec) ([]byte, error) {
	e := enc{b: dst}
	t := &r.Thread
	e.raw(`{"id":`)
	e.str(t.ID)
	e.raw(`,"network":`)
	e.str(t.Network)
	e.raw(`,"profile":`)
	e.str(t.Profile)
	e.raw(`,"external_id":`)
	e.str(t.ExternalID)
	e.raw(`,"kind":`)
	e.str(t.Kind)
	e.raw(`,"author":`)
	e.author(&t.Author)
	e.raw(`,"status":`)
	e.str(t.Status)
	e.raw(`,"team":`)
	e.str(t.Team)
	e.raw(`,"priority":`)
	e.str(t.Priority)
	e.raw(`,"tags":`)
	e.strs(t.Tags)
	e.raw(`,"assignee":`)
	if t.Assignee == nil {
		e.raw(`null`)
	} else {
		e.str(*t.Assignee)
	}
	e.raw(`,"lock":`)
	if t.Lock == nil {
		e.raw(`null`)
	} else {
		e.raw(`{"agent_id":`)
		e.str(t.Lock.AgentID)
		e.raw(`,"fence":`)
		e.int(t.Lock.Fence)
		e.raw(`,"expires_at":`)
		e.time(t.Lock.ExpiresAt)
		e.raw(`}`)
	}
	e.raw(`,"waiting_since":`)
	e.time(t.WaitingSince)
	e.raw(`,"first_response_at":`)
	e.timePtr(t.FirstResponseAt)
	e.raw(`,"sla_due_at":`)
	e.timePtr(t.SLADueAt)
	e.raw(`,"sla_breached":`)
	e.bool(t.SLABreached)
	e.raw(`,"last_inbound_at":`)
	e.time(t.LastInboundAt)
	e.raw(`,"last_outbound_at":`)
	e.timePtr(t.LastOutboundAt)
	if t.AutoCloseAt != nil {
		e.raw(`,"auto_close_at":`)
		e.time(*t.AutoCloseAt)
	}
	e.raw(`,"created_at":`)
	e.time(t.CreatedAt)
	e.raw(`,"updated_at":`)
	e.time(t.UpdatedAt)
	e.raw(`,"version":`)
	e.int(t.Version)
	if r.LockToken != "" {
		e.raw(`,"lock_token":`)
		e.str(r.LockToken)
	}
	e.raw(`,"max_fence":`)
	e.int(r.MaxFence)
	e.raw(`,"seq":`)
	e.uint(r.Seq)
	e.raw(`}`)
	return e.b, e.err
}

// msgParts is a message encoded ahead of its write step, in the caller's
// goroutine, except for the two values only the step knows: the thread
// id and the time it was received (the transaction's clock). The record is
// head + thread id + mid + received_at + tail.
type msgParts struct {
	head, mid, tail []byte
}

// encodeMessageParts encodes m as json.Marshal does, leaving the thread id
// and received_at out.
func encodeMessageParts(m *store.Message) (msgParts, error) {
	e := enc{b: make([]byte, 0, 256+len(m.Text))}
	e.raw(`{"id":`)
	e.str(m.ID)
	e.raw(`,"thread_id":`)
	head := len(e.b)
	e.raw(`,"direction":`)
	e.str(m.Direction)
	e.raw(`,"network":`)
	e.str(m.Network)
	e.raw(`,"external_id":`)
	e.str(m.ExternalID)
	e.raw(`,"kind":`)
	e.str(m.Kind)
	if m.Author != nil {
		e.raw(`,"author":`)
		e.author(m.Author)
	}
	if m.AgentID != "" {
		e.raw(`,"agent_id":`)
		e.str(m.AgentID)
	}
	e.raw(`,"text":`)
	e.str(m.Text)
	e.raw(`,"attachments":`)
	if m.Attachments == nil {
		e.raw(`null`)
	} else {
		e.raw(`[`)
		for i, a := range m.Attachments {
			if i > 0 {
				e.raw(`,`)
			}
			e.raw(`{"type":`)
			e.str(a.Type)
			e.raw(`,"url":`)
			e.str(a.URL)
			e.raw(`}`)
		}
		e.raw(`]`)
	}
	if m.Language != "" {
		e.raw(`,"language":`)
		e.str(m.Language)
	}
	e.raw(`,"sent_at":`)
	e.time(m.SentAt)
	e.raw(`,"received_at":`)
	mid := len(e.b)
	if d := m.Delivery; d != nil {
		e.raw(`,"delivery":{"status":`)
		e.str(d.Status)
		if d.ExternalID != "" {
			e.raw(`,"external_id":`)
			e.str(d.ExternalID)
		}
		if d.Error != "" {
			e.raw(`,"error":`)
			e.str(d.Error)
		}
		e.raw(`}`)
	}
	e.raw(`}`)
	if e.err != nil {
		return msgParts{}, e.err
	}
	return msgParts{head: e.b[:head], mid: e.b[head:mid], tail: e.b[mid:]}, nil
}

// encode completes the message with its thread id and received_at.
func (p *msgParts) encode(threadID string, receivedAt time.Time) ([]byte, error) {
	b := make([]byte, 0, len(p.head)+len(p.mid)+len(p.tail)+80)
	b = append(b, p.head...)
	b = appendString(b, threadID)
	b = append(b, p.mid...)
	b, err := appendTime(b, receivedAt)
	return append(b, p.tail...), err
}

// encodeMessage encodes a complete message as json.Marshal does.
func encodeMessage(m *store.Message) ([]byte, error) {
	p, err := encodeMessageParts(m)
	if err != nil {
		return nil, err
	}
	return p.encode(m.ThreadID, m.ReceivedAt)
}

// encodeEvent encodes an event as json.Marshal does: the data map with
// its keys sorted.
func encodeEvent(dst []byte, ev *store.Event) ([]byte, error) {
	e := enc{b: dst}
	e.raw(`{"id":`)
	e.uint(ev.ID)
	e.raw(`,"type":`)
	e.str(ev.Type)
	e.raw(`,"thread_id":`)
	e.str(ev.ThreadID)
	e.raw(`,"actor":`)
	e.str(ev.Actor)
	e.raw(`,"at":`)
	e.time(ev.At)
	e.raw(`,"data":`)
	e.data(ev.Data)
	if ev.Team != "" {
		e.raw(`,"team":`)
		e.str(ev.Team)
	}
	if ev.Network != "" {
		e.raw(`,"network":`)
		e.str(ev.Network)
	}
	if ev.Agent != "" {
		e.raw(`,"agent_id":`)
		e.str(ev.Agent)
	}
	e.raw(`}`)
	return e.b, e.err
}

func (e *enc) data(m map[string]any) {
	if m == nil {
		e.raw(`null`)
		return
	}
	var keysBuf [8]string
	keys := keysBuf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.raw(`{`)
	for i, k := range keys {
		if i > 0 {
			e.raw(`,`)
		}
		e.str(k)
		e.raw(`:`)
		e.value(m[k])
	}
	e.raw(`}`)
}

func (e *enc) value(v any) {
	switch v := v.(type) {
	case nil:
		e.raw(`null`)
	case string:
		e.str(v)
	case int64:
		e.int(v)
	case int:
		e.int(int64(v))
	case bool:
		e.bool(v)
	case time.Time:
		e.time(v)
	case *time.Time:
		e.timePtr(v)
	case []string:
		e.strs(v)
	case json.RawMessage:
		// Our own encodings, already compact.
		if v == nil {
			e.raw(`null`)
		} else {
			e.b = append(e.b, v...)
		}
	default:
		b, err := json.Marshal(v)
		if err != nil {
			e.check(e.b, fmt.Errorf("bolt: encode event data: %w", err))
			return
		}
		e.b = append(e.b, b...)
	}
}
