package api

import (
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// TestLogs_OneLinePerRequestEvenWhenItFails: a handler that panics or fails
// with an internal error answers the contract's 500 and logs one line, the
// request's, at ERROR, saying what went wrong.
func TestLogs_OneLinePerRequestEvenWhenItFails(t *testing.T) {
	// app.Test hands the response over after the middleware has logged, so
	// a plain buffer is read only once written.
	var logs strings.Builder
	s := &server{log: slog.New(slog.NewTextHandler(&logs, nil)), deps: Deps{RequestTimeout: time.Second}}
	app := fiber.New(fiber.Config{ErrorHandler: s.errorHandler})
	app.Use(s.recoverAndLog)
	app.Get("/panic", func(*fiber.Ctx) error { panic("broken handler") })
	app.Get("/fail", func(*fiber.Ctx) error { return errors.New("disk on fire") })
	for _, c := range []struct{ path, says string }{{"/panic", `panic="broken handler"`}, {"/fail", `err="disk on fire"`}} {
		res, err := app.Test(httptest.NewRequest("GET", c.path, nil))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 500 || !strings.Contains(string(body), `"code":"internal"`) {
			t.Fatalf("GET %s: %d %s", c.path, res.StatusCode, body)
		}
		var lines []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "route="+c.path) {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 || !strings.Contains(lines[0], "level=ERROR") || !strings.Contains(lines[0], c.says) {
			t.Fatalf("GET %s logged %q; want one ERROR line with %s\nall: %s", c.path, lines, c.says, logs.String())
		}
	}
	if strings.Count(logs.String(), "\n") != 2 {
		t.Fatalf("two requests logged more than two lines:\n%s", logs.String())
	}
}
