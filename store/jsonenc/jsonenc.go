// Package jsonenc writes the store's records (threads, messages, lock
// grants, events) as JSON by hand, exactly as encoding/json writes the same
// values (jsonenc_test.go checks byte for byte), without reflection, map
// sorting through reflect, or per-field allocations. The bbolt store writes
// its records with it (its writer goroutine is its one serial resource), and
// the API its busiest responses; everything else uses encoding/json.
package jsonenc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/switchboard/switchboard/store"
)

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

// AppendString appends s as a JSON string, escaped as encoding/json does.
func AppendString(dst []byte, s string) []byte {
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

// AppendTime appends t as time.Time.MarshalJSON does (RFC 3339 with
// nanoseconds, quoted), and fails where it fails (a year outside 0-9999, an
// offset of 24 hours or more or with seconds).
func AppendTime(dst []byte, t time.Time) ([]byte, error) {
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
	return AppendTime(dst, *t)
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
		dst = AppendString(dst, v)
	}
	return append(dst, ']')
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// Enc accumulates an encoding in B and keeps its first error in Err.
type Enc struct {
	B   []byte
	Err error
}

func (e *Enc) Raw(s string)         { e.B = append(e.B, s...) }
func (e *Enc) Str(s string)         { e.B = AppendString(e.B, s) }
func (e *Enc) Int(v int64)          { e.B = strconv.AppendInt(e.B, v, 10) }
func (e *Enc) Uint(v uint64)        { e.B = strconv.AppendUint(e.B, v, 10) }
func (e *Enc) Bool(v bool)          { e.B = appendBool(e.B, v) }
func (e *Enc) Strs(v []string)      { e.B = appendStrings(e.B, v) }
func (e *Enc) Time(t time.Time)     { e.check(AppendTime(e.B, t)) }
func (e *Enc) TimePtr(t *time.Time) { e.check(appendTimePtr(e.B, t)) }

func (e *Enc) check(b []byte, err error) {
	e.B = b
	if err != nil && e.Err == nil {
		e.Err = err
	}
}

func (e *Enc) author(a *store.Author) {
	e.Raw(`{"id":`)
	e.Str(a.ID)
	if a.Handle != "" {
		e.Raw(`,"handle":`)
		e.Str(a.Handle)
	}
	if a.Name != "" {
		e.Raw(`,"name":`)
		e.Str(a.Name)
	}
	e.Raw(`,"followers":`)
	e.Int(int64(a.Followers))
	e.Raw(`,"verified":`)
	e.Bool(a.Verified)
	e.Raw(`}`)
}

// Thread encodes t as json.Marshal does.
func (e *Enc) Thread(t *store.Thread) {
	e.ThreadFields(t)
	e.Raw(`}`)
}

// ThreadFields encodes t without its closing brace, for a record that
// embeds the thread and adds fields of its own.
func (e *Enc) ThreadFields(t *store.Thread) {
	e.Raw(`{"id":`)
	e.Str(t.ID)
	e.Raw(`,"network":`)
	e.Str(t.Network)
	e.Raw(`,"profile":`)
	e.Str(t.Profile)
	e.Raw(`,"external_id":`)
	e.Str(t.ExternalID)
	e.Raw(`,"kind":`)
	e.Str(t.Kind)
	e.Raw(`,"author":`)
	e.author(&t.Author)
	e.Raw(`,"status":`)
	e.Str(t.Status)
	e.Raw(`,"team":`)
	e.Str(t.Team)
	e.Raw(`,"priority":`)
	e.Str(t.Priority)
	e.Raw(`,"tags":`)
	e.Strs(t.Tags)
	e.Raw(`,"assignee":`)
	if t.Assignee == nil {
		e.Raw(`null`)
	} else {
		e.Str(*t.Assignee)
	}
	e.Raw(`,"lock":`)
	if t.Lock == nil {
		e.Raw(`null`)
	} else {
		e.Raw(`{"agent_id":`)
		e.Str(t.Lock.AgentID)
		e.Raw(`,"fence":`)
		e.Int(t.Lock.Fence)
		e.Raw(`,"expires_at":`)
		e.Time(t.Lock.ExpiresAt)
		e.Raw(`}`)
	}
	e.Raw(`,"waiting_since":`)
	e.Time(t.WaitingSince)
	e.Raw(`,"first_response_at":`)
	e.TimePtr(t.FirstResponseAt)
	e.Raw(`,"sla_due_at":`)
	e.TimePtr(t.SLADueAt)
	e.Raw(`,"sla_breached":`)
	e.Bool(t.SLABreached)
	e.Raw(`,"last_inbound_at":`)
	e.Time(t.LastInboundAt)
	e.Raw(`,"last_outbound_at":`)
	e.TimePtr(t.LastOutboundAt)
	if t.AutoCloseAt != nil {
		e.Raw(`,"auto_close_at":`)
		e.Time(*t.AutoCloseAt)
	}
	e.Raw(`,"created_at":`)
	e.Time(t.CreatedAt)
	e.Raw(`,"updated_at":`)
	e.Time(t.UpdatedAt)
	e.Raw(`,"version":`)
	e.Int(t.Version)
}

// Grant encodes g as json.Marshal does (null when nil).
func (e *Enc) Grant(g *store.Grant) {
	if g == nil {
		e.Raw(`null`)
		return
	}
	e.Raw(`{"token":`)
	e.Str(g.Token)
	e.Raw(`,"fence":`)
	e.Int(g.Fence)
	e.Raw(`,"agent_id":`)
	e.Str(g.AgentID)
	e.Raw(`,"expires_at":`)
	e.Time(g.ExpiresAt)
	e.Raw(`}`)
}

// MessageParts is a message encoded but for the two values a store's write
// step knows only when it runs: the thread id and the time it was
// received. The record is Head + thread id + Mid + received_at + Tail.
type MessageParts struct {
	Head, Mid, Tail []byte
}

// EncodeMessageParts encodes m as json.Marshal does, leaving the thread id
// and received_at out.
func EncodeMessageParts(m *store.Message) (MessageParts, error) {
	e := Enc{B: make([]byte, 0, 256+len(m.Text))}
	e.Raw(`{"id":`)
	e.Str(m.ID)
	e.Raw(`,"thread_id":`)
	head := len(e.B)
	e.Raw(`,"direction":`)
	e.Str(m.Direction)
	e.Raw(`,"network":`)
	e.Str(m.Network)
	e.Raw(`,"external_id":`)
	e.Str(m.ExternalID)
	e.Raw(`,"kind":`)
	e.Str(m.Kind)
	e.Raw(`,"author":`)
	if m.Author != nil {
		e.author(m.Author)
	} else {
		e.Raw(`null`)
	}
	e.Raw(`,"agent_id":`)
	e.Str(m.AgentID)
	e.Raw(`,"text":`)
	e.Str(m.Text)
	e.Raw(`,"attachments":`)
	if m.Attachments == nil {
		e.Raw(`null`)
	} else {
		e.Raw(`[`)
		for i, a := range m.Attachments {
			if i > 0 {
				e.Raw(`,`)
			}
			e.Raw(`{"type":`)
			e.Str(a.Type)
			e.Raw(`,"url":`)
			e.Str(a.URL)
			e.Raw(`}`)
		}
		e.Raw(`]`)
	}
	if m.Language != "" {
		e.Raw(`,"language":`)
		e.Str(m.Language)
	}
	e.Raw(`,"sent_at":`)
	e.Time(m.SentAt)
	e.Raw(`,"received_at":`)
	mid := len(e.B)
	if d := m.Delivery; d != nil {
		e.Raw(`,"delivery":{"status":`)
		e.Str(d.Status)
		e.Raw(`,"external_id":`)
		e.Str(d.ExternalID)
		e.Raw(`,"error":`)
		e.Str(d.Error)
		e.Raw(`}`)
	}
	if m.EditedAt != nil {
		e.Raw(`,"edited_at":`)
		e.Time(*m.EditedAt)
	}
	e.Raw(`}`)
	if e.Err != nil {
		return MessageParts{}, e.Err
	}
	return MessageParts{Head: e.B[:head], Mid: e.B[head:mid], Tail: e.B[mid:]}, nil
}

// Encode completes the message with its thread id and received_at.
func (p *MessageParts) Encode(threadID string, receivedAt time.Time) ([]byte, error) {
	b := make([]byte, 0, len(p.Head)+len(p.Mid)+len(p.Tail)+80)
	b = append(b, p.Head...)
	b = AppendString(b, threadID)
	b = append(b, p.Mid...)
	b, err := AppendTime(b, receivedAt)
	return append(b, p.Tail...), err
}

// EncodeMessageBody encodes m as json.Marshal does but without its
// thread_id, received_at, delivery and edited_at: an inbound message as a
// store sends it to the step that files it, which adds the thread and the
// time.
func EncodeMessageBody(m *store.Message) ([]byte, error) {
	p, err := EncodeMessageParts(m)
	if err != nil {
		return nil, err
	}
	head := bytes.TrimSuffix(p.Head, []byte(`,"thread_id":`))
	mid := bytes.TrimSuffix(p.Mid, []byte(`,"received_at":`))
	b := make([]byte, 0, len(head)+len(mid)+1)
	return append(append(append(b, head...), mid...), '}'), nil
}

// Message encodes m as json.Marshal does.
func (e *Enc) Message(m *store.Message) {
	p, err := EncodeMessageParts(m)
	if err == nil {
		e.B = append(e.B, p.Head...)
		e.Str(m.ThreadID)
		e.B = append(e.B, p.Mid...)
		e.Time(m.ReceivedAt)
		e.B = append(e.B, p.Tail...)
	} else if e.Err == nil {
		e.Err = err
	}
}

// Event encodes ev as json.Marshal does: the data map with its keys sorted.
func (e *Enc) Event(ev *store.Event) {
	e.Raw(`{"id":`)
	e.Uint(ev.ID)
	e.Raw(`,"type":`)
	e.Str(ev.Type)
	e.Raw(`,"thread_id":`)
	e.Str(ev.ThreadID)
	e.Raw(`,"actor":`)
	e.Str(ev.Actor)
	e.Raw(`,"at":`)
	e.Time(ev.At)
	e.Raw(`,"data":`)
	e.data(ev.Data)
	if ev.Team != "" {
		e.Raw(`,"team":`)
		e.Str(ev.Team)
	}
	if ev.Network != "" {
		e.Raw(`,"network":`)
		e.Str(ev.Network)
	}
	if ev.Agent != "" {
		e.Raw(`,"agent_id":`)
		e.Str(ev.Agent)
	}
	e.Raw(`}`)
}

func (e *Enc) data(m map[string]any) {
	if m == nil {
		e.Raw(`null`)
		return
	}
	var keysBuf [8]string
	keys := keysBuf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.Raw(`{`)
	for i, k := range keys {
		if i > 0 {
			e.Raw(`,`)
		}
		e.Str(k)
		e.Raw(`:`)
		e.value(m[k])
	}
	e.Raw(`}`)
}

func (e *Enc) value(v any) {
	switch v := v.(type) {
	case nil:
		e.Raw(`null`)
	case string:
		e.Str(v)
	case int64:
		e.Int(v)
	case int:
		e.Int(int64(v))
	case bool:
		e.Bool(v)
	case time.Time:
		e.Time(v)
	case *time.Time:
		e.TimePtr(v)
	case []string:
		e.Strs(v)
	case json.RawMessage:
		// The stores' own encodings, already compact.
		if v == nil {
			e.Raw(`null`)
		} else {
			e.B = append(e.B, v...)
		}
	default:
		b, err := json.Marshal(v)
		if err != nil {
			e.check(e.B, fmt.Errorf("encode event data: %w", err))
			return
		}
		e.B = append(e.B, b...)
	}
}
