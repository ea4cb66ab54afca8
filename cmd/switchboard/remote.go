package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/inbox"
)

// remote is how the admin subcommands (backup, apply) reach a running
// server: its URL and the admin key, from SWITCHBOARD_ADMIN_KEY or a file
// (never a flag, which other users could read in the process list).
type remote struct {
	url, keyFile string
}

// shown is the server's URL as messages say it: without a password or a
// query, which may hold a token.
func (r *remote) shown() string {
	u, err := url.Parse(r.url)
	if err != nil {
		return "the --url given"
	}
	u.RawQuery, u.Fragment = "", ""
	return u.Redacted()
}

func (r *remote) flags(fs *flag.FlagSet) {
	fs.StringVar(&r.url, "url", "http://"+env("SWITCHBOARD_ADDR", "127.0.0.1:8080"), "the running server")
	fs.StringVar(&r.keyFile, "key-file", "", "file holding the admin key (default: SWITCHBOARD_ADMIN_KEY)")
}

// parseCommand parses a subcommand's flags and refuses words left over:
// the flag package stops at the first word that is not a flag, so
// `apply -f a.yaml b.yaml --url X` would drop --url and every flag after
// it, and talk to the default server.
func parseCommand(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		// main says "switchboard: " before it.
		return fmt.Errorf("%s: unexpected argument %q (flags come before it, each with one value)", strings.TrimPrefix(fs.Name(), "switchboard "), fs.Arg(0))
	}
	return nil
}

func (r *remote) key() (string, error) {
	if r.keyFile != "" {
		b, err := os.ReadFile(r.keyFile)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	if k := os.Getenv("SWITCHBOARD_ADMIN_KEY"); k != "" {
		return k, nil
	}
	return "", errors.New("set SWITCHBOARD_ADMIN_KEY or --key-file")
}

// patient sends an admin request (body may be nil; a JSON one is labelled
// so), and again after Retry-After while the server answers 429 (rate
// limited) or 503 (store unreachable), until ctx ends. It returns the
// response when it is 2xx. Every subcommand's request is safe to send
// again: reads, erasures and configuration documents.
func (r *remote) patient(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	for {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, path, rd)
		if err != nil {
			return nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := r.send(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode/100 == 2 {
			return resp, nil
		}
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
			return nil, &statusError{url: r.shown(), code: resp.StatusCode, body: string(answer)}
		}
		wait := time.Second
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = time.Duration(s) * time.Second
		}
		select {
		case <-ctx.Done():
			why := ""
			if m := (&statusError{body: string(answer)}).contract().Message; m != "" {
				why = " (" + m + ")"
			}
			return nil, fmt.Errorf("server at %s still answered %d%s when the time ran out: %w", r.shown(), resp.StatusCode, why, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// send sends an admin request to the server, whatever it answers.
func (r *remote) send(req *http.Request) (*http.Response, error) {
	key, err := r.key()
	if err != nil {
		return nil, err
	}
	base := strings.TrimRight(r.url, "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = "http://" + base
	}
	u, err := req.URL.Parse(base + req.URL.RequestURI())
	if err != nil {
		return nil, err
	}
	req.URL = u
	req.Host = u.Host
	req.Header.Set("Authorization", "Bearer "+key)
	return http.DefaultClient.Do(req)
}

// statusError is a server's answer other than the one wanted.
type statusError struct {
	url  string // which server: a 401 from the wrong one says so
	code int
	body string
}

func (e *statusError) Error() string {
	if b := e.contract(); b.Message != "" {
		return fmt.Sprintf("server at %s answered %d: %s", e.url, e.code, b.Message)
	}
	return fmt.Sprintf("server at %s answered %d: %s", e.url, e.code, strings.TrimSpace(e.body))
}

// errorBody is the contract's error body: a message, the field it names
// and (configuration documents) every mistake.
type errorBody struct {
	Message string `json:"message"`
	Details struct {
		Field  string              `json:"field"`
		Errors []*inbox.FieldError `json:"errors"`      // {"field", "message"}
		More   int                 `json:"more_errors"` // past the list
	} `json:"details"`
}

// contract reads the server's answer as the contract's error body; its
// Message is "" when it is not one (a proxy's page, say).
func (e *statusError) contract() errorBody {
	var body struct {
		Error errorBody `json:"error"`
	}
	json.Unmarshal([]byte(e.body), &body)
	return body.Error
}
