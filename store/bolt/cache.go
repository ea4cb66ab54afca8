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
	if a, ok := w.s.cache.agents[id]; ok {
		c := *a
		return &c, nil
	}
	var a store.Agent
	if err := getJSON(w.tx.Bucket(bAgents), []byte(id), &a); err != nil {
		return nil, fmt.Errorf("agent %s: %w", id, store.ErrUnknownAgent)
	}
	c := a
	w.s.cache.agents[id] = &c
	return &a, nil
}

// team loads a team in the write transaction.
func (w *wtx) team(id string) (*store.Team, error) {
	if t, ok := w.s.cache.teams[id]; ok {
		c := *t
		return &c, nil
	}
	var t store.Team
	if err := getJSON(w.tx.Bucket(bTeams), []byte(id), &t); err != nil {
		return nil, err
	}
	c := t
	w.s.cache.teams[id] = &c
	return &t, nil
}
