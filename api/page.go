package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/inbox"
)

// colleagues serves GET /api/v1/me/colleagues: ids and names of the people
// the caller works with, so the inbox page can say who holds a lock.
func (s *server) colleagues(c *fiber.Ctx) error {
	people, err := s.svc.Colleagues(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	return listPaged(c, people, func(p inbox.Colleague) string { return p.ID })
}
