package inbox

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

func validateSavedReply(r *store.SavedReply) error {
	if r.ID == "" {
		r.ID = uuid.NewString()
	} else if !routing.ValidSlug(r.ID) {
		return fieldErr("id", "must match [a-z0-9][a-z0-9-]{0,63}")
	}
	if strings.TrimSpace(r.Title) == "" {
		return fieldErr("title", "is required")
	}
	if err := checkName("title", r.Title); err != nil {
		return err
	}
	if strings.TrimSpace(r.Text) == "" {
		return fieldErr("text", "is required")
	}
	if err := checkLen("text", r.Text, MaxTextRunes); err != nil {
		return err
	}
	for i, t := range r.Teams {
		if !routing.ValidSlug(t) {
			return fieldErr(fmt.Sprintf("teams[%d]", i), "must be a team id")
		}
	}
	r.Teams = nonNilSlice(dedupe(r.Teams))
	return nil
}

// SavedReplyCreate: admins and supervisors write saved replies.
func (s *Service) SavedReplyCreate(ctx context.Context, p Principal, r store.SavedReply) (store.SavedReply, error) {
	if !p.CanSupervise() {
		return r, ErrForbidden
	}
	if err := validateSavedReply(&r); err != nil {
		return r, err
	}
	r, err := s.st.SavedReplyCreate(ctx, r)
	return r, unknownRef(err, "teams")
}

func (s *Service) SavedReplyUpdate(ctx context.Context, p Principal, r store.SavedReply) (store.SavedReply, error) {
	if !p.CanSupervise() {
		return r, ErrForbidden
	}
	if err := validateSavedReply(&r); err != nil {
		return r, err
	}
	r, err := s.st.SavedReplyUpdate(ctx, r)
	return r, unknownRef(err, "teams")
}

func (s *Service) SavedReplyDelete(ctx context.Context, p Principal, id string) error {
	if !p.CanSupervise() {
		return ErrForbidden
	}
	return s.st.SavedReplyDelete(ctx, id)
}

// savedReplyVisible: a saved reply with no teams is for every team; agents
// see those of their teams.
func savedReplyVisible(sc scope, r *store.SavedReply) bool {
	if sc.teams == nil || len(r.Teams) == 0 {
		return true
	}
	for _, t := range r.Teams {
		if slices.Contains(sc.teams, t) {
			return true
		}
	}
	return false
}

func (s *Service) SavedReplyGet(ctx context.Context, p Principal, id string) (store.SavedReply, error) {
	sc, err := s.scope(ctx, p)
	if err != nil {
		return store.SavedReply{}, err
	}
	r, err := s.st.SavedReplyGet(ctx, id)
	if err != nil {
		return r, err
	}
	if !savedReplyVisible(sc, &r) {
		return store.SavedReply{}, fmt.Errorf("saved reply %s: %w", id, store.ErrNotFound)
	}
	return r, nil
}

// SavedReplyList lists the saved replies the caller may use, by title.
// team narrows to one team's (and the every-team ones).
func (s *Service) SavedReplyList(ctx context.Context, p Principal, team string) ([]store.SavedReply, error) {
	sc, err := s.scope(ctx, p)
	if err != nil {
		return nil, err
	}
	all, err := s.st.SavedReplyList(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, r := range all {
		if savedReplyVisible(sc, &r) && (team == "" || len(r.Teams) == 0 || slices.Contains(r.Teams, team)) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b store.SavedReply) int { return strings.Compare(a.Title, b.Title) })
	return out, nil
}
