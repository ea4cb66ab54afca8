package api

import (
	"bufio"
	"context"

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
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		// Headers are gone by now: a failure cuts the stream short, and the
		// backup command's integrity check refuses the file.
		if _, err := s.svc.Backup(context.Background(), p, w); err != nil {
			s.log.Error("backup failed", "err", err)
			return
		}
		w.Flush()
	})
	return nil
}
