package api

import (
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/inbox"
	"github.com/switchboard/switchboard/store"
)

func (s *server) stats(c *fiber.Ctx) error {
	st, err := s.svc.Stats(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(st)
}

func (s *server) webhookCreate(c *fiber.Ctx) error {
	var in inbox.WebhookInput
	if err := decode(c, &in); err != nil {
		return err
	}
	wh, err := s.svc.WebhookCreate(c.UserContext(), principal(c), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(wh)
}

func (s *server) webhookList(c *fiber.Ctx) error {
	hooks, err := s.svc.WebhookList(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	return listPaged(c, hooks, func(w store.Webhook) string { return createdKey(w.CreatedAt, w.ID) })
}

func (s *server) webhookGet(c *fiber.Ctx) error {
	wh, err := s.svc.WebhookGet(c.UserContext(), principal(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(wh)
}

func (s *server) webhookDelete(c *fiber.Ctx) error {
	if err := s.svc.WebhookDelete(c.UserContext(), principal(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) savedReplyCreate(c *fiber.Ctx) error {
	var r store.SavedReply
	if err := decode(c, &r); err != nil {
		return err
	}
	r, err := s.svc.SavedReplyCreate(c.UserContext(), principal(c), r)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(r)
}

func (s *server) savedReplyList(c *fiber.Ctx) error {
	rs, err := s.svc.SavedReplyList(c.UserContext(), principal(c), c.Query("team"))
	if err != nil {
		return err
	}
	// By title, as the page's picker shows them.
	return listPaged(c, rs, func(r store.SavedReply) string { return r.Title + "\x00" + r.ID })
}

func (s *server) savedReplyGet(c *fiber.Ctx) error {
	r, err := s.svc.SavedReplyGet(c.UserContext(), principal(c), c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(r)
}

func (s *server) savedReplyUpdate(c *fiber.Ctx) error {
	var r store.SavedReply
	if err := decode(c, &r); err != nil {
		return err
	}
	r.ID = c.Params("id")
	r, err := s.svc.SavedReplyUpdate(c.UserContext(), principal(c), r)
	if err != nil {
		return err
	}
	return c.JSON(r)
}

func (s *server) savedReplyDelete(c *fiber.Ctx) error {
	if err := s.svc.SavedReplyDelete(c.UserContext(), principal(c), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *server) configApply(c *fiber.Ctx) error {
	prune, err := strconv.ParseBool(c.Query("prune", "false"))
	if err != nil {
		return &inbox.FieldError{Field: "prune", Message: "must be true or false"}
	}
	dry, err := strconv.ParseBool(c.Query("dry_run", "false"))
	if err != nil {
		return &inbox.FieldError{Field: "dry_run", Message: "must be true or false"}
	}
	var doc inbox.ConfigDoc
	if err := decode(c, &doc); err != nil {
		return err
	}
	// Unknown fields are ignored, as everywhere in the contract, and named
	// in the answer's warnings: a misspelt condition ("network") leaves a
	// rule matching more than meant. With prune they are refused: a
	// misspelt section ("teamz") would have its items deleted.
	unknown := configUnknown(c.Body())
	if len(unknown) > 0 && prune {
		return &inbox.FieldError{Field: unknown[0], Message: "is not a configuration field; with prune a document is read strictly, as what it leaves out is deleted"}
	}
	warnings := configWarnings(unknown, doc)
	if prune && len(doc.Teams)+len(doc.Agents)+len(doc.Rules)+len(doc.SavedReplies) == 0 {
		return &inbox.FieldError{Field: "prune", Message: "an empty document would delete every team, agent, rule and saved reply; " +
			"delete them one by one if that is meant"}
	}
	if dry {
		// Nothing is written; with prune, kept is what it would try to
		// delete.
		res, err := s.svc.Plan(c.UserContext(), principal(c), doc)
		if err != nil {
			return err
		}
		return c.JSON(applyResponse{res, warnings})
	}
	res, err := s.svc.Apply(c.UserContext(), principal(c), doc)
	if err != nil {
		return err
	}
	if prune {
		if err := s.svc.Prune(c.UserContext(), principal(c), &res); err != nil {
			return err
		}
	}
	return c.JSON(applyResponse{res, warnings})
}

// applyResponse is what an apply did, with what in the document was not
// understood.
type applyResponse struct {
	inbox.ApplyResult
	Warnings []string `json:"warnings,omitempty"`
}

func (s *server) configExport(c *fiber.Ctx) error {
	doc, err := s.svc.Export(c.UserContext(), principal(c))
	if err != nil {
		return err
	}
	return c.JSON(doc)
}
