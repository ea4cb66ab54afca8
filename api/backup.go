package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
)

// backup streams a consistent copy of the bbolt store (admin):
// `switchboard backup --to FILE` calls it.
func (s *server) backup(c *fiber.Ctx) error {
	p := principal(c)
	if p.Role != store.RoleAdmin {
		return inbox.ErrForbidden
	}
	if !s.svc.CanBackup() {
		return fmt.Errorf("the server cannot copy this store: with Redis, back up Redis itself (its AOF or RDB files): %w", inbox.ErrNotSupported)
	}
	c.Set(fiber.HeaderContentType, "application/octet-stream")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="switchboard-backup.db"`)
	if c.Method() == fiber.MethodHead {
		return nil // a whole copy for no body
	}
	// The copy is taken before the answer starts (at disk speed, into a
	// temporary file), so a failure is the answer's status.
	// Not the request's timeout: a large store takes longer to copy, and a
	// closing store stops the copy itself.
	snap, n, err := s.svc.Backup(context.WithoutCancel(c.UserContext()), p)
	if err != nil {
		c.Response().Header.Del(fiber.HeaderContentDisposition)
		return err
	}
	conn, timeout := c.Context().Conn(), s.deps.WriteTimeout
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer snap.Close()
		// A large store takes longer than one write timeout: the deadline
		// moves with every write, so only a client that stops reading is
		// cut off. Headers are gone by now: a failure cuts the stream
		// short, and the backup command's integrity check refuses the file.
		pw := &progressWriter{w: w, conn: conn, timeout: timeout, start: time.Now()}
		if _, err := io.Copy(pw, snap); err != nil {
			s.log.Warn("backup not sent whole", "err", err)
			return
		}
		w.Flush()
		pw.extend(0)
	})
	// Its length, so that a copy cut short is a broken download, not a
	// chunked answer that ends early.
	c.Response().Header.SetContentLength(int(n))
	return nil
}

// streamAhead bounds how far the stream writer runs ahead of the
// connection: fasthttp copies what it writes through a pipe of a few
// buffers (tens of KiB each) to the socket.
const streamAhead = 256 << 10

// progressWriter extends the connection's write deadline before each write.
// The writes land in fasthttp's pipe, up to streamAhead bytes before the
// socket sends them, so the deadline also allows the time that backlog
// takes at the rate the client has read so far: a slow client that keeps
// reading gets the whole copy, one that stops is cut off.
type progressWriter struct {
	w       io.Writer
	conn    interface{ SetWriteDeadline(time.Time) error }
	timeout time.Duration
	start   time.Time
	n       int64
}

func (p *progressWriter) extend(next int) {
	now := time.Now()
	backlog := time.Duration(0)
	if sent := p.n - streamAhead; sent > 0 {
		// At the client's rate so far: (streamAhead + next) bytes take
		// elapsed * (streamAhead + next) / sent.
		backlog = time.Duration(float64(now.Sub(p.start)) * float64(streamAhead+next) / float64(sent))
	}
	p.conn.SetWriteDeadline(now.Add(p.timeout + backlog))
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.extend(len(b))
	n, err := p.w.Write(b)
	p.n += int64(n)
	return n, err
}
