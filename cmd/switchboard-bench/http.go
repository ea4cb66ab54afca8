package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// client is the load generator's HTTP client: fasthttp with keep-alive
// connections, one per concurrent worker. (A net/http client on two cores
// tops out far below the server; see the generator row of the ceilings.)
type client struct {
	hc *fasthttp.HostClient
}

func newClient(addr string, conns int) *client {
	return &client{hc: &fasthttp.HostClient{
		Addr:                     addr,
		MaxConns:                 max(conns, 1),
		MaxConnWaitTimeout:       time.Minute,
		ReadTimeout:              2 * time.Minute,
		WriteTimeout:             time.Minute,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
		MaxIdleConnDuration:      time.Minute,
	}}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

// statusError is an unexpected HTTP answer.
type statusError struct {
	method, path string
	status       int
	body         string
}

func (e *statusError) Error() string {
	b := e.body
	if len(b) > 300 {
		b = b[:300] + "..."
	}
	return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, b)
}

// do sends one request. body may be nil. When out is not nil and the status
// is 2xx, the response is decoded into it. It returns the status and, for
// callers that look at it, a copy of the body only when keepBody is set.
func (c *client) do(method, path, key string, body []byte, out any, keepBody bool) (int, []byte, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI("http://" + c.hc.Addr + path)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(body)
	}
	if err := c.hc.Do(req, resp); err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	status := resp.StatusCode()
	rb := resp.Body()
	if out != nil && status/100 == 2 && len(rb) > 0 {
		if err := json.Unmarshal(rb, out); err != nil {
			return status, nil, fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	var kept []byte
	if keepBody || status/100 != 2 {
		kept = append([]byte(nil), rb...)
	}
	return status, kept, nil
}

// expect sends a request and fails unless the status is want.
func (c *client) expect(want int, method, path, key string, body []byte, out any) error {
	status, rb, err := c.do(method, path, key, body, out, false)
	if err != nil {
		return err
	}
	if status != want {
		return &statusError{method: method, path: path, status: status, body: string(rb)}
	}
	return nil
}

// jsonBody marshals v, panicking on the impossible.
func jsonBody(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// appendQuoted appends s as a JSON string (the bench's ids and texts are
// plain ASCII without quotes or backslashes).
func appendQuoted(b []byte, s string) []byte {
	return strconv.AppendQuote(b, s)
}
