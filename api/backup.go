package api

import (
	"bufio"
	"context"
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
		return inbox.ErrNotSupported
	}
	c.Set(fiber.HeaderContentType, "application/octet-stream")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="switchboard-backup.db"`)
	conn, timeout := c.Context().Conn(), s.deps.WriteTimeout
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		// A large store takes longer than one write timeout: the deadline
		// moves with every write, so only a client that stops reading is
		// cut off. Headers are gone by now: a failure cuts the stream
		// short, and the backup command's integrity check refuses the file.
		pw := &progressWriter{w: w, extend: func() { conn.SetWriteDeadline(time.Now().Add(timeout)) }}
		if _, err := s.svc.Backup(context.Background(), p, pw); err != nil {
			s.log.Error("backup failed", "err", err)
			return
		}
		w.Flush()
	})
	return nil
}

// progressWriter extends the connection's write deadline before each write.
type progressWriter struct {
	w      io.Writer
	extend func()
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.extend()
	return p.w.Write(b)
}
