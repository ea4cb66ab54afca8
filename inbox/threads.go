package inbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/routing"
	"github.com/switchboard/switchboard/store"
)

// visibleThread reads a thread the principal may see; any other thread is
// ErrNotFound, as if it did not exist.
func (s *Service) visibleThread(ctx context.Context, p Principal, id string) (store.Thread, scope, error) {
	sc, err := s.scope(ctx, p)
	if err != nil {
		return store.Thread{}, sc, err
	}
	t, err := s.threadIn(ctx, sc, id)
	return t, sc, err
}

// threadIn reads a thread the scope sees: ErrNotFound when it does not.
func (s *Service) threadIn(ctx context.Context, sc scope, id string) (store.Thread, error) {
	t, err := s.st.ThreadGet(ctx, id)
	if err != nil {
		return store.Thread{}, err
	}
	if !sc.sees(&t) {
		return store.Thread{}, fmt.Errorf("thread %s: %w", id, store.ErrNotFound)
	}
	return t, nil
}

// ThreadFilter is GET /api/v1/threads's query.
type ThreadFilter struct {
	Status, Team, Assignee, Network, Tag, Author string
	store.PageParams
}

func (f *ThreadFilter) validate() error {
	if f.Status != "" {
		if err := checkEnum("status", f.Status, []string{store.StatusQueued, store.StatusAssigned, store.StatusPending, store.StatusClosed}); err != nil {
			return err
		}
	}
	if f.Network != "" {
		if err := checkEnum("network", f.Network, routing.Networks); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) ThreadList(ctx context.Context, p Principal, f ThreadFilter) (store.Page[store.Thread], error) {
	sc, err := s.scope(ctx, p)
	if err != nil {
		return store.Page[store.Thread]{}, err
	}
	if err := f.validate(); err != nil {
		return store.Page[store.Thread]{}, err
	}
	page, err := s.st.ThreadList(ctx, store.ThreadFilter{Status: f.Status, Team: f.Team, Assignee: f.Assignee,
		Network: f.Network, Tag: f.Tag, Author: f.Author, Teams: sc.teams, Networks: sc.networks, PageParams: f.PageParams})
	return page, badCursor(err)
}

// badCursor turns the store's answer to a cursor it never handed out
// (ErrNotFound from a list whose parent was already found) into a
// validation error naming the field.
func badCursor(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fieldErr("cursor", "not a cursor from an earlier page")
	}
	return err
}

func (s *Service) ThreadGet(ctx context.Context, p Principal, id string) (store.Thread, error) {
	t, _, err := s.visibleThread(ctx, p, id)
	return t, err
}

func (s *Service) MessageList(ctx context.Context, p Principal, threadID string, pp store.PageParams) (store.Page[store.Message], error) {
	if _, _, err := s.visibleThread(ctx, p, threadID); err != nil {
		return store.Page[store.Message]{}, err
	}
	page, err := s.st.MessageList(ctx, threadID, pp)
	return page, badCursor(err)
}

// EventPage is a page of a thread's audit trail.
func (s *Service) ThreadEvents(ctx context.Context, p Principal, threadID string, after uint64, limit int) ([]store.Event, error) {
	if _, _, err := s.visibleThread(ctx, p, threadID); err != nil {
		return nil, err
	}
	return s.st.EventList(ctx, store.EventFilter{ThreadID: threadID, After: after, Limit: limit})
}

// NoteInput is a new internal note.
type NoteInput struct {
	Text string `json:"text"`
}

func validateNote(text string) error {
	if strings.TrimSpace(text) == "" {
		return fieldErr("text", "is required")
	}
	return checkLen("text", text, MaxTextRunes)
}

func (s *Service) NoteCreate(ctx context.Context, p Principal, threadID string, in NoteInput) (store.Note, error) {
	_, sc, err := s.visibleThread(ctx, p, threadID)
	if err != nil {
		return store.Note{}, err
	}
	if err := validateNote(in.Text); err != nil {
		return store.Note{}, err
	}
	// Seen again in the step: the thread may have moved since it was read.
	return s.st.NoteCreate(ctx, store.Note{ID: newID(), ThreadID: threadID, AgentID: p.AgentID, Actor: p.Actor(), Text: in.Text},
		sc.teams, sc.networks)
}

// ThreadErase deletes a thread and everything kept about it, in any state
// (admin only): what a customer's request to be forgotten needs. Only the
// event thread.erased remains, saying who erased it and when.
func (s *Service) ThreadErase(ctx context.Context, p Principal, id string) error {
	if err := p.require(store.RoleAdmin); err != nil {
		return err
	}
	if err := s.st.ThreadErase(ctx, store.EraseParams{ThreadID: id, Actor: p.Actor(), RememberDeleted: RememberDeletions}); err != nil {
		return err
	}
	s.metrics.Erased.WithLabelValues("admin").Inc()
	return nil // the request's own line and the thread.erased event say it
}

func (s *Service) NoteList(ctx context.Context, p Principal, threadID string, pp store.PageParams) (store.Page[store.Note], error) {
	if _, _, err := s.visibleThread(ctx, p, threadID); err != nil {
		return store.Page[store.Note]{}, err
	}
	page, err := s.st.NoteList(ctx, threadID, pp)
	return page, badCursor(err)
}

// Queue lists queued threads in queue order: of one team, or of every team
// the caller works (all teams for supervisors and admins).
func (s *Service) Queue(ctx context.Context, p Principal, team string, pp store.PageParams) (store.Page[store.Thread], error) {
	sc, err := s.scope(ctx, p)
	if err != nil {
		return store.Page[store.Thread]{}, err
	}
	teams := sc.teams
	switch {
	case team != "" && teams != nil && !slices.Contains(teams, team):
		return store.Page[store.Thread]{}, fmt.Errorf("team %s: %w", team, store.ErrNotFound)
	case team != "":
		if _, err := s.st.TeamGet(ctx, team); err != nil {
			return store.Page[store.Thread]{}, err
		}
		teams = []string{team}
	case teams == nil:
		all, err := s.st.TeamList(ctx)
		if err != nil {
			return store.Page[store.Thread]{}, err
		}
		for _, t := range all {
			teams = append(teams, t.ID)
		}
	}
	page, err := s.st.QueueList(ctx, store.QueueParams{Teams: teams, Networks: sc.networks, PageParams: pp})
	return page, badCursor(err)
}

// Delivery records a connector's report on an outbound reply.
type DeliveryInput struct {
	Status     string `json:"status"`
	ExternalID string `json:"external_id"`
	Error      string `json:"error"`
}

func (s *Service) MessageDelivery(ctx context.Context, p Principal, messageID string, in DeliveryInput) (store.Message, error) {
	if err := p.require(store.RoleIngest, store.RoleAdmin); err != nil {
		return store.Message{}, err
	}
	if err := checkEnum("status", in.Status, []string{"sent", "failed"}); err != nil {
		return store.Message{}, err
	}
	if err := checkLen("external_id", in.ExternalID, maxIDLen); err != nil {
		return store.Message{}, err
	}
	if err := checkLen("error", in.Error, MaxDeliveryError); err != nil {
		return store.Message{}, err
	}
	return s.st.MessageDelivery(ctx, store.DeliveryParams{MessageID: messageID, Status: in.Status, ExternalID: in.ExternalID, Error: in.Error})
}

// RememberDeletions is how long a deletion of a message Switchboard has
// not stored (or no longer has: its thread was erased) is remembered, so
// that the message, should it come after all (networks do not promise
// order, and retry a delivery refused once for a day or more), is stored
// emptied.
const RememberDeletions = 7 * 24 * time.Hour

// MessageDeleted empties a customer's message that its author deleted on
// the network (X's tweet_delete_events, Meta's unsent messages and removed
// comments), found by the network's id for it: what they took back is not
// kept (X's terms require it). ErrNotFound when Switchboard has not stored
// it: the deletion is then remembered for RememberDeletions, and the
// message, should it come after all, is stored emptied.
func (s *Service) MessageDeleted(ctx context.Context, p Principal, network, externalID string) (store.Message, error) {
	if err := networkNotice(p, externalID); err != nil {
		return store.Message{}, err
	}
	return s.st.MessageDelete(ctx, network, externalID, RememberDeletions)
}

// MessageEdited gives a customer's message that its author edited on the
// network (Messenger's message_edit, edited Facebook comments, posts and
// reviews, WhatsApp's edit), found by the network's id for it, the edited
// text.
// at is when it was edited (now when zero): edits apply in that order, so
// a replay or an edit overtaken by a later one changes nothing, nor does
// an edit of a deleted message. ErrNotFound when Switchboard never stored
// it.
func (s *Service) MessageEdited(ctx context.Context, p Principal, network, externalID, text string, at time.Time) (store.Message, error) {
	if err := networkNotice(p, externalID); err != nil {
		return store.Message{}, err
	}
	if strings.TrimSpace(text) == "" {
		return store.Message{}, fieldErr("text", "is required")
	}
	if err := checkLen("text", text, MaxTextRunes); err != nil {
		return store.Message{}, err
	}
	if at.IsZero() {
		at = s.now()
	}
	return s.st.MessageEdit(ctx, store.EditParams{Network: network, ExternalID: externalID, Text: text, At: at.UTC()})
}

// networkNotice checks a network's notice about a message stored before:
// from an ingest key (a webhook's), naming the message by the network's id.
func networkNotice(p Principal, externalID string) error {
	if err := p.require(store.RoleIngest, store.RoleAdmin); err != nil {
		return err
	}
	if externalID == "" {
		return fieldErr("external_id", "is required")
	}
	return checkLen("external_id", externalID, maxIDLen)
}

// SentHere reports whether Switchboard sent the message the network knows
// as externalID: a reply a connector reported sent under that id. X
// delivers a post of one of the brand's accounts naming another account to
// that other account's subscription, as if a customer had written it.
func (s *Service) SentHere(ctx context.Context, p Principal, network, externalID string) (bool, error) {
	if err := p.require(store.RoleIngest, store.RoleAdmin); err != nil {
		return false, err
	}
	if externalID == "" || checkLen("external_id", externalID, maxIDLen) != nil {
		return false, nil // not one a report could have recorded
	}
	m, err := s.st.MessageByExternalID(ctx, network, externalID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil && m.Direction == store.Outbound, err
}

// RememberEarlyFailures is how long a network's report that a reply
// failed is kept when no reply was reported under its id yet: the
// connector's report that it sent the reply may come after the network's.
const RememberEarlyFailures = 7 * 24 * time.Hour

// DeliveryFailed records a network's own report that a reply it knows as
// externalID was not delivered: the reply a connector reported sent under
// that id. ErrNotFound when no reply was reported under it (one sent
// outside Switchboard, or a report that came first); the failure is then
// remembered for RememberEarlyFailures, and the connector's report naming
// that id records the reply failed.
func (s *Service) DeliveryFailed(ctx context.Context, p Principal, network, externalID, why string) (store.Message, error) {
	if err := networkNotice(p, externalID); err != nil {
		return store.Message{}, err
	}
	if err := checkLen("error", why, MaxDeliveryError); err != nil {
		return store.Message{}, err
	}
	return s.st.MessageDelivery(ctx, store.DeliveryParams{Network: network, Status: "failed", ExternalID: externalID, Error: why,
		RememberFailed: RememberEarlyFailures})
}
