package redis

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/jsonenc"
)

func newToken() string {
	b := make([]byte, 16) // 128 bits
	rand.Read(b)          // crypto/rand never fails on Linux
	return hex.EncodeToString(b)
}

// --- ingest ---

// ingestItem is one item as lua/ingest.lua reads it.
type ingestItem struct {
	Network          string     `json:"network"`
	ExternalID       string     `json:"external_id"`
	Profile          string     `json:"profile"`
	ThreadExternalID string     `json:"thread_external_id"`
	NewThreadID      string     `json:"new_thread_id"`
	ThreadVersion    int64      `json:"thread_version"`
	Kind             string     `json:"kind"`
	Author           string     `json:"author"`
	MessageID        string     `json:"message_id"`
	Tags             []string   `json:"tags"`
	Route            ingestPath `json:"route"`
	// ConfigVersion: the configuration version routing decided on, or
	// nil when not checked.
	ConfigVersion *uint64 `json:"config_version"`
	// Deleted: stored emptied though a deletion is remembered (see
	// store.IngestParams.Deleted).
	Deleted bool `json:"deleted,omitempty"`
}

type ingestPath struct {
	Team       string   `json:"team"`
	RuledTeam  string   `json:"ruled_team"`
	AddTags    []string `json:"add_tags"`
	Priority   string   `json:"priority"`
	Close      bool     `json:"close"`
	Rules      []string `json:"rules"`
	OfferTo    string   `json:"offer_to"`
	OfferTTLUS int64    `json:"offer_ttl_us"`
}

// ThreadIngest stores the items in order in one script run: each with its
// dedupe and routing result, each refused alone.
func (s *Store) ThreadIngest(ctx context.Context, items []store.IngestParams) ([]store.IngestResult, error) {
	if len(items) == 0 {
		return nil, nil
	}
	args := []any{len(items)}
	for i := range items {
		p := &items[i]
		m := p.Message
		author := store.Author{}
		if m.Author != nil {
			author = *m.Author
		}
		item := ingestItem{
			Network: m.Network, ExternalID: m.ExternalID, Profile: p.Profile, ThreadExternalID: p.ThreadExternalID,
			NewThreadID: p.NewThreadID, ThreadVersion: p.ThreadVersion, Kind: m.Kind, Author: jsonString(author),
			MessageID: m.ID, Tags: nonNil(p.Tags), Deleted: p.Deleted,
			Route: ingestPath{Team: p.Route.Team, RuledTeam: p.Route.RuledTeam, AddTags: nonNil(p.Route.AddTags),
				Priority: p.Route.Priority, Close: p.Route.Close, Rules: nonNil(p.Route.Rules),
				OfferTo: p.Route.OfferTo, OfferTTLUS: durUS(p.Route.OfferTTL)},
		}
		if p.CheckConfig {
			item.ConfigVersion = &p.ConfigVersion
		}
		m.Direction = store.Inbound
		if m.Attachments == nil {
			m.Attachments = []store.Attachment{}
		}
		mj, err := jsonenc.EncodeMessageBody(&m)
		if err != nil {
			return nil, fmt.Errorf("redis: encode message: %w", err)
		}
		args = append(args, jsonString(item), mj, newToken())
	}
	res, err := s.eval(ctx, scriptIngest, []string{s.k.meta(), s.k.messagekey(), s.k.threadkey()}, args...)
	if err != nil {
		return nil, err
	}
	now := usTime(num(res[0]))
	out := make([]store.IngestResult, len(items))
	for i := range items {
		r := list(res[1+i])
		if code := str(r[0]); code != "ok" {
			out[i].Err = refusal(scriptIngest.name, r)
			continue
		}
		msg, err := decodeMessage(fields(r[3]))
		if err != nil {
			return nil, err
		}
		th, err := threadOf(r[4])
		if err != nil {
			return nil, err
		}
		out[i] = store.IngestResult{Message: msg, Thread: th.View(now), Created: str(r[1]) == "1", Duplicate: str(r[2]) == "1"}
	}
	return out, nil
}

// --- reads ---

func (s *Store) ThreadGet(ctx context.Context, id string) (store.Thread, error) {
	ths, now, err := s.readThreads(ctx, []string{id})
	if err != nil {
		return store.Thread{}, err
	}
	if ths[0] == nil {
		return store.Thread{}, fmt.Errorf("thread %s: %w", id, store.ErrNotFound)
	}
	return ths[0].View(now), nil
}

// readThreads reads threads (nil for a missing one) and the server time.
func (s *Store) readThreads(ctx context.Context, ids []string) ([]*threadRec, time.Time, error) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	res, err := s.eval(ctx, scriptReadThreads, []string{s.k.threadseq()}, args...)
	if err != nil {
		return nil, time.Time{}, err
	}
	out := make([]*threadRec, len(ids))
	for i := range ids {
		if r, err := threadOf(res[1+i]); err == nil {
			out[i] = r
		}
	}
	return out, usTime(num(res[0])), nil
}

func (s *Store) ThreadByKey(ctx context.Context, network, profile, externalID string) (store.Thread, error) {
	res, err := s.eval(ctx, scriptThreadByKey, []string{s.k.threadkey()}, threadKey(network, profile, externalID))
	if err != nil {
		return store.Thread{}, err
	}
	th, err := threadOf(res[1])
	if err != nil {
		return store.Thread{}, fmt.Errorf("thread: %w", store.ErrNotFound)
	}
	return th.View(usTime(num(res[0]))), nil
}

// threadBatch is how many threads ThreadList reads per round trip.
const threadBatch = 200

// ThreadList walks threads newest first. The cursor is the creation
// sequence of the last thread returned, so threads created meanwhile never
// shift later pages.
func (s *Store) ThreadList(ctx context.Context, f store.ThreadFilter) (store.Page[store.Thread], error) {
	var page store.Page[store.Thread]
	if err := s.open(); err != nil {
		return page, err
	}
	limit := store.PageLimit(f.Limit)
	max := "+inf"
	if f.Cursor != "" {
		n, err := strconv.ParseUint(f.Cursor, 10, 64)
		if err != nil {
			return page, fmt.Errorf("cursor: %w", store.ErrNotFound)
		}
		max = "(" + strconv.FormatUint(n, 10)
	}
	var lastSeq, examined uint64
	scan := f.ScanLimit()
	for {
		// Read no more than the scan budget needs (one past it, to learn
		// whether threads are left).
		count := int64(min(threadBatch, scan+1))
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, s.k.threadseq(), &zrange{Max: max, Min: "-inf", Count: count}).Result()
		if err != nil {
			return page, s.fail(ctx, "thread list", err)
		}
		if len(zs) == 0 {
			return page, nil
		}
		ids := make([]string, len(zs))
		for i, z := range zs {
			ids[i] = str(z.Member)
		}
		max = "(" + strconv.FormatFloat(zs[len(zs)-1].Score, 'f', 0, 64)
		recs, now, err := s.readThreads(ctx, ids)
		if err != nil {
			return page, err
		}
		for i, rec := range recs {
			if scan == 0 {
				page.Next = strconv.FormatUint(store.ScanCursor(len(page.Items) == limit, lastSeq, examined), 10)
				return page, nil
			}
			scan--
			examined = uint64(zs[i].Score)
			if rec == nil {
				continue
			}
			t := rec.View(now)
			if !f.Match(&t) {
				continue
			}
			if len(page.Items) == limit {
				// The cursor is the last sequence returned; the next page
				// starts just below it.
				page.Next = strconv.FormatUint(lastSeq, 10)
				return page, nil
			}
			page.Items = append(page.Items, t)
			lastSeq = rec.Seq
		}
		if int64(len(zs)) < count {
			return page, nil
		}
	}
}

// QueueList lists queued threads of the teams (and networks) in queue
// order. The cursor is the queue member of the last thread returned.
func (s *Store) QueueList(ctx context.Context, p store.QueueParams) (store.Page[store.Thread], error) {
	var page store.Page[store.Thread]
	cursor := ""
	if p.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(p.Cursor)
		if err != nil || len(b) < 21 || b[1] != '|' || b[19] != '|' {
			return page, fmt.Errorf("cursor: %w", store.ErrNotFound)
		}
		cursor = string(b)
	}
	qs := s.k.queues(p.Teams, p.Networks)
	if len(qs) == 0 {
		return page, s.open()
	}
	res, err := s.evalSwept(ctx, scriptQueueList, qs, cursor, store.PageLimit(p.Limit))
	if err != nil {
		return page, err
	}
	now := usTime(num(res[0]))
	for _, v := range res[2:] {
		th, err := threadOf(v)
		if err != nil {
			continue
		}
		page.Items = append(page.Items, th.View(now))
	}
	if next := str(res[1]); next != "" {
		page.Next = base64.RawURLEncoding.EncodeToString([]byte(next))
	}
	return page, nil
}

func (s *Store) MessageGet(ctx context.Context, id string) (store.Message, error) {
	if err := s.open(); err != nil {
		return store.Message{}, err
	}
	m, err := s.rdb.HGetAll(ctx, s.k.message(id)).Result()
	if err != nil {
		return store.Message{}, s.fail(ctx, "message", err)
	}
	msg, err := decodeMessage(m)
	if err == store.ErrNotFound {
		return msg, fmt.Errorf("message %s: %w", id, store.ErrNotFound)
	}
	return msg, err
}

// listPage reads one page of an append-only list; the cursor is the index
// of the page's first item.
func (s *Store) listPage(ctx context.Context, key string, p store.PageParams) ([]string, string, error) {
	if err := s.open(); err != nil {
		return nil, "", err
	}
	limit := int64(store.PageLimit(p.Limit))
	var start int64
	if p.Cursor != "" {
		n, err := strconv.ParseInt(p.Cursor, 10, 64)
		if err != nil || n < 0 {
			return nil, "", fmt.Errorf("cursor: %w", store.ErrNotFound)
		}
		start = n
	}
	items, err := s.rdb.LRange(ctx, key, start, start+limit).Result()
	if err != nil {
		return nil, "", s.fail(ctx, "list", err)
	}
	next := ""
	if int64(len(items)) > limit {
		items = items[:limit]
		next = strconv.FormatInt(start+limit, 10)
	}
	return items, next, nil
}

// MessageList lists a thread's messages oldest first.
func (s *Store) MessageNewest(ctx context.Context, threadID string, n int) ([]store.Message, error) {
	if n <= 0 {
		return nil, nil
	}
	ids, err := s.rdb.LRange(ctx, s.k.threadmsgs(threadID), int64(-n), -1).Result()
	if err != nil {
		return nil, s.fail(ctx, "messages", err)
	}
	slices.Reverse(ids) // newest first
	return s.messagesByID(ctx, ids)
}

func (s *Store) MessageList(ctx context.Context, threadID string, p store.PageParams) (store.Page[store.Message], error) {
	var page store.Page[store.Message]
	ids, next, err := s.listPage(ctx, s.k.threadmsgs(threadID), p)
	if err != nil || len(ids) == 0 {
		return page, err
	}
	if page.Items, err = s.messagesByID(ctx, ids); err != nil {
		return page, err
	}
	page.Next = next
	return page, nil
}

// messagesByID reads messages in one pipeline, in the order of ids.
func (s *Store) messagesByID(ctx context.Context, ids []string) ([]store.Message, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*hashCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, s.k.message(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.fail(ctx, "messages", err)
	}
	out := make([]store.Message, 0, len(ids))
	for _, c := range cmds {
		m, err := decodeMessage(c.Val())
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func (s *Store) MessageDelivery(ctx context.Context, p store.DeliveryParams) (store.Message, error) {
	d := jsonString(store.Delivery{Status: p.Status, ExternalID: p.ExternalID, Error: p.Error})
	k := s.k.outboundkey()
	if p.MessageID != "" {
		k = s.k.message(p.MessageID)
	}
	res, err := s.eval(ctx, scriptDelivery, []string{k}, p.MessageID, d, p.Network, p.ExternalID, p.RememberFailed.Milliseconds())
	if err != nil {
		return store.Message{}, err
	}
	return decodeMessage(fields(res[0]))
}

func (s *Store) MessageByExternalID(ctx context.Context, network, externalID string) (store.Message, error) {
	if err := s.open(); err != nil {
		return store.Message{}, err
	}
	id, err := s.messageID(ctx, network, externalID, s.k.messagekey(), s.k.outboundkey())
	if err != nil {
		return store.Message{}, err
	}
	return s.MessageGet(ctx, id)
}

// messageID finds a message's id by the network's id for it in the first
// of the indexes (msgkey, outkey) that has it.
func (s *Store) messageID(ctx context.Context, network, externalID string, indexes ...string) (string, error) {
	for _, index := range indexes {
		id, err := s.rdb.HGet(ctx, index, network+"\x00"+externalID).Result()
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, goredis.Nil) {
			return "", s.fail(ctx, "message", err)
		}
	}
	return "", fmt.Errorf("message %s on %s: %w", externalID, network, store.ErrNotFound)
}

func (s *Store) MessageDelete(ctx context.Context, network, externalID string, remember time.Duration) (store.Message, error) {
	m, err := s.rewriteInbound(ctx, network, externalID, store.EventMessageDeleted, store.DeletedMessage)
	if !errors.Is(err, store.ErrNotFound) || remember <= 0 {
		return m, err
	}
	// Remembered, unless it came meanwhile: then it is emptied now.
	res, terr := s.eval(ctx, scriptTombstone, []string{s.k.tombstones()}, network+"\x00"+externalID, remember.Milliseconds())
	if terr != nil {
		return m, terr
	}
	if len(res) > 0 && str(res[0]) == "came" {
		return s.rewriteInbound(ctx, network, externalID, store.EventMessageDeleted, store.DeletedMessage)
	}
	return m, err
}

func (s *Store) MessageEdit(ctx context.Context, p store.EditParams) (store.Message, error) {
	return s.rewriteInbound(ctx, p.Network, p.ExternalID, store.EventMessageEdited, p.Apply)
}

// rewriteInbound changes the inbound message the network knows as
// externalID by change, with an event of type typ on its thread, when
// change reports that it changed it.
func (s *Store) rewriteInbound(ctx context.Context, network, externalID, typ string, change func(*store.Message) bool) (store.Message, error) {
	if err := s.open(); err != nil {
		return store.Message{}, err
	}
	// The new JSON is made here from the JSON read (Lua's cjson would
	// write the empty attachments as an object); the script writes it only
	// if the message is still as read.
	for attempt := 0; ; attempt++ {
		id, err := s.messageID(ctx, network, externalID, s.k.messagekey())
		if err != nil {
			return store.Message{}, err
		}
		h, err := s.rdb.HGetAll(ctx, s.k.message(id)).Result()
		if err != nil {
			return store.Message{}, s.fail(ctx, "message", err)
		}
		m, err := decodeMessage(h)
		if errors.Is(err, store.ErrNotFound) {
			return m, fmt.Errorf("message %s: %w", id, store.ErrNotFound)
		}
		if err != nil || !change(&m) {
			return m, err
		}
		res, err := s.eval(ctx, scriptMessageRewrite, []string{s.k.message(id)}, id, h["json"], jsonString(m), typ)
		if errors.Is(err, store.ErrConflict) && attempt < 10 {
			continue // changed meanwhile (by another node): read it again
		}
		if err != nil {
			return store.Message{}, err
		}
		return decodeMessage(fields(res[0]))
	}
}

func (s *Store) ThreadErase(ctx context.Context, p store.EraseParams) error {
	_, err := s.eval(ctx, scriptThreadErase, []string{s.k.thread(p.ThreadID)}, p.ThreadID, p.Actor, p.Version,
		p.RememberDeleted.Milliseconds())
	return err
}

// trimBatch bounds the events one trim script run removes (XDEL and ZREM
// take them all as arguments).
const trimBatch = 500

func (s *Store) EventTrimErased(ctx context.Context, until time.Time, limit int) (int, error) {
	total := 0
	for total < limit {
		want := min(limit-total, trimBatch)
		res, err := s.eval(ctx, scriptTrimErased, []string{s.k.erasedevents()}, until.UnixMicro(), want)
		if err != nil {
			return total, err
		}
		n := int(num(res[0]))
		total += n
		if n < want {
			break
		}
	}
	return total, nil
}

func (s *Store) ThreadOldest(ctx context.Context, after uint64, limit int) ([]store.Thread, uint64, error) {
	if err := s.open(); err != nil {
		return nil, 0, err
	}
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, s.k.threadseq(), &zrange{
		Min: "(" + strconv.FormatUint(after, 10), Max: "+inf", Count: int64(limit)}).Result()
	if err != nil {
		return nil, 0, s.fail(ctx, "thread oldest", err)
	}
	if len(zs) == 0 {
		return nil, 0, nil
	}
	ids := make([]string, len(zs))
	for i, z := range zs {
		ids[i] = str(z.Member)
	}
	recs, now, err := s.readThreads(ctx, ids)
	if err != nil {
		return nil, 0, err
	}
	var out []store.Thread
	for _, rec := range recs {
		if rec != nil { // erased since the range was read
			out = append(out, rec.View(now))
		}
	}
	var next uint64
	if len(zs) == limit {
		next = uint64(zs[len(zs)-1].Score)
	}
	return out, next, nil
}

func (s *Store) NoteCreate(ctx context.Context, n store.Note, teams, networks []string) (store.Note, error) {
	nj, err := jsonWithout(n, "thread_id", "created_at")
	if err != nil {
		return n, err
	}
	t, nw := scopeArgs(teams, networks)
	res, err := s.eval(ctx, scriptNoteCreate, []string{s.k.thread(n.ThreadID)}, n.ThreadID, nj, n.ID, n.Actor, t, nw, n.AgentID)
	if err != nil {
		return n, err
	}
	var out store.Note
	if err := unmarshal([]byte(str(res[1])), &out); err != nil {
		return n, fmt.Errorf("redis: decode note: %w", err)
	}
	return out, nil
}

func (s *Store) NoteList(ctx context.Context, threadID string, p store.PageParams) (store.Page[store.Note], error) {
	var page store.Page[store.Note]
	items, next, err := s.listPage(ctx, s.k.notes(threadID), p)
	if err != nil {
		return page, err
	}
	for _, j := range items {
		var n store.Note
		if err := unmarshal([]byte(j), &n); err != nil {
			return page, fmt.Errorf("redis: decode note: %w", err)
		}
		page.Items = append(page.Items, n)
	}
	page.Next = next
	return page, nil
}
