package bolt

import (
	"bytes"
	"fmt"

	"github.com/switchboard/switchboard/store"
)

// writerCache keeps decoded threads, agents and teams as the writer last
// read or wrote them, so a claim cycle's steps (claim, reply, release, the
// customer's follow-up) decode a thread once instead of four times. Only
// the writer goroutine uses it, and every write of those buckets goes
// through the writer, so an entry is what the file holds — as long as the
// transaction that read or wrote it commits: a transaction that rolls back
// resets the whole cache. Steps get copies; the entries are never mutated.
// Readers (View transactions) do not use it.
type writerCache struct {
	threads map[string]*threadRec
	agents  map[string]*store.Agent
	teams   map[string]*store.Team
}

// threadCacheSize bounds the cached threads (about 1 KB each). A claim
// cycle touches a thread four times within a few commits; a larger cache
// would mostly hold threads waiting in the queue.
const threadCacheSize = 8192

func newWriterCache() writerCache {
	return writerCache{threads: map[string]*threadRec{}, agents: map[string]*store.Agent{}, teams: map[string]*store.Team{}}
}

func (c *writerCache) reset() { *c = newWriterCache() }

// forget drops the entry a put or delete of bucket/k makes stale.
// saveThread, which writes threads, then stores the new record itself.
func (c *writerCache) forget(bucket, k []byte) {
	switch {
	case bytes.Equal(bucket, bThreads):
		delete(c.threads, string(k))
	case bytes.Equal(bucket, bAgents):
		delete(c.agents, string(k))
	case bytes.Equal(bucket, bTeams):
		delete(c.teams, string(k))
	}
}

// keepThread caches rec, which the caller must not change afterwards.
func (c *writerCache) keepThread(rec *threadRec) {
	if _, ok := c.threads[rec.ID]; !ok && len(c.threads) >= threadCacheSize {
		// Drop an eighth, wherever map iteration starts: cheap, and a
		// cycle's thread is back within milliseconds anyway.
		n := 0
		for id := range c.threads {
			delete(c.threads, id)
			if n++; n >= threadCacheSize/8 {
				break
			}
		}
	}
	c.threads[rec.ID] = rec
}

// thread loads a thread in the write transaction; the caller may change
// the copy it gets.
func (w *wtx) thread(id string) (*threadRec, error) {
	if rec, ok := w.s.cache.threads[id]; ok {
		return rec.clone(), nil
	}
	rec, err := getThread(w.tx, id)
	if err != nil {
		return nil, err
	}
	w.s.cache.keepThread(rec.clone())
	return rec, nil
}

// agent loads an agent in the write transaction (OpenLocks not set).
func (w *wtx) agent(id string) (*store.Agent, error) {
	a, err := cached(w, w.s.cache.agents, bAgents, id)
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", id, store.ErrUnknownAgent)
	}
	return a, nil
}

// team loads a team in the write transaction.
func (w *wtx) team(id string) (*store.Team, error) {
	return cached(w, w.s.cache.teams, bTeams, id)
}

// cached returns a copy of the record id of bucket, from the cache m or
// decoded from the transaction (and then cached). Copies are shallow: steps
// replace slices, they never change them in place.
func cached[T any](w *wtx, m map[string]*T, bucket []byte, id string) (*T, error) {
	if v, ok := m[id]; ok {
		c := *v
		return &c, nil
	}
	var v T
	if err := getJSON(w.tx.Bucket(bucket), []byte(id), &v); err != nil {
		return nil, err
	}
	c := v
	m[id] = &c
	return &v, nil
}
