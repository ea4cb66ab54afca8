package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// forget is `switchboard forget --author ID`: a customer's right to be
// forgotten on a running server. It finds the customer's threads (GET
// /api/v1/threads?author=, every page), erases each (DELETE
// /api/v1/threads/{id}), waiting out rate limits, and searches again until
// none is left, so a thread that arrived meanwhile goes too. Any other
// failure stops it with an error: it never reports success with threads
// left.
func forget(args []string) error {
	fs := flag.NewFlagSet("switchboard forget", flag.ContinueOnError)
	author := fs.String("author", "", "the customer's author id, or handle in any case, as GET /api/v1/threads?author= takes it (required)")
	network := fs.String("network", "", "only the threads on this network; required when the author has threads on several (a handle or id names different people on different networks)")
	timeout := fs.Duration("timeout", 30*time.Minute, "give up after")
	var r remote
	r.flags(fs)
	if err := parseCommand(fs, args); err != nil {
		return err
	}
	if *author == "" {
		return errors.New("forget: --author is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	// Only the admin sees every thread: with another key the search would
	// find only some, and "nothing found" would be a false all-clear.
	if role, err := r.role(ctx); err != nil {
		return fmt.Errorf("forget: %w", err)
	} else if role != "admin" {
		return fmt.Errorf("forget: needs the admin key; this is a %s key, which sees only some threads", role)
	}
	erased := 0
	for range 10 {
		ids, networks, err := r.threadIDs(ctx, *author, *network)
		if err != nil {
			return fmt.Errorf("forget: finding the threads: %w", err)
		}
		if len(networks) > 1 && *network == "" {
			// An id or handle names different people on different
			// networks, and an erase cannot be undone.
			return fmt.Errorf("forget: %s has threads on several networks (%s); a handle or id may name someone else on another network: "+
				"nothing erased; run it once per network that is this customer's, with --network", *author, countsOf(networks))
		}
		if *network == "" {
			// One network: the later searches stay on it (they look for
			// threads that arrived meanwhile), so a namesake elsewhere who
			// writes meanwhile is not erased.
			for n := range networks {
				*network = n
			}
		}
		if len(ids) == 0 && erased == 0 {
			// Not an error (the customer may have written nothing), but
			// not an all-clear either if the id was mistyped.
			fmt.Printf("no thread of %s was found: nothing erased (ids must match exactly; handles in any case)\n", *author)
			return nil
		}
		if len(ids) == 0 {
			what := "threads"
			if erased == 1 {
				what = "thread"
			}
			fmt.Printf("erased %d %s of %s; none is left\n", erased, what, *author)
			return nil
		}
		for _, id := range ids {
			if err := r.erase(ctx, id); err != nil {
				return fmt.Errorf("forget: erasing thread %s (%d erased so far): %w", id, erased, err)
			}
			erased++
		}
	}
	return fmt.Errorf("forget: %d threads erased, and the customer's threads keep coming: run it again", erased)
}

// role is the role of the key in use (GET /api/v1/me).
func (r *remote) role(ctx context.Context) (string, error) {
	resp, err := r.patient(ctx, "GET", "/api/v1/me", nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var me struct {
		Role string `json:"role"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&me); err != nil {
		return "", err
	}
	return me.Role, nil
}

// countsOf says "instagram: 1, twitter: 25".
func countsOf(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+": "+strconv.Itoa(m[k]))
	}
	return strings.Join(parts, ", ")
}

// threadIDs lists the ids of every thread of author (on network, if not
// empty), following next_cursor, and how many are on each network.
func (r *remote) threadIDs(ctx context.Context, author, network string) (ids []string, networks map[string]int, err error) {
	networks = map[string]int{}
	cursor := ""
	for {
		q := url.Values{"author": {author}, "limit": {"500"}}
		if network != "" {
			q.Set("network", network)
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		resp, err := r.patient(ctx, "GET", "/api/v1/threads?"+q.Encode(), nil)
		if err != nil {
			return nil, nil, err
		}
		var page struct {
			Items []struct {
				ID      string `json:"id"`
				Network string `json:"network"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return nil, nil, err
		}
		for _, t := range page.Items {
			ids = append(ids, t.ID)
			networks[t.Network]++
		}
		if page.NextCursor == "" {
			return ids, networks, nil
		}
		cursor = page.NextCursor
	}
}

// erase erases one thread; one already gone counts as erased.
func (r *remote) erase(ctx context.Context, id string) error {
	resp, err := r.patient(ctx, "DELETE", "/api/v1/threads/"+url.PathEscape(id), nil)
	var se *statusError
	if errors.As(err, &se) && se.code == http.StatusNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
