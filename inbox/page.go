package inbox

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/switchboard/switchboard/store"
)

// What the agents' inbox page needs beyond the threads themselves: a line of
// text per queued thread, and the names of the people whose ids appear on
// locks and in audit trails.

// PreviewRunes bounds a queue item's preview.
const PreviewRunes = 140

// previewScan bounds how many of a thread's newest messages are read to
// find its latest inbound one.
const previewScan = 50

// QueueItem is a queued thread as GET /api/v1/queue lists it: the thread and
// the first line of its latest inbound message.
type QueueItem struct {
	store.Thread
	Preview string `json:"preview"`
}

// WithPreviews adds each thread's preview. The threads are ones the caller
// was already allowed to list.
func (s *Service) WithPreviews(ctx context.Context, threads []store.Thread) ([]QueueItem, error) {
	out := make([]QueueItem, len(threads))
	for i, t := range threads {
		p, err := s.preview(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		out[i] = QueueItem{Thread: t, Preview: p}
	}
	return out, nil
}

// preview is the first non-empty line of the thread's latest inbound
// message (among its previewScan newest), cut to PreviewRunes; "" when it
// has only attachments. One read, newest first, whatever the thread's
// length.
func (s *Service) preview(ctx context.Context, threadID string) (string, error) {
	msgs, err := s.st.MessageNewest(ctx, threadID, previewScan)
	if err != nil {
		return "", err
	}
	for _, m := range msgs {
		if m.Direction == store.Inbound {
			return firstLine(m.Text, PreviewRunes), nil
		}
	}
	return "", nil
}

func firstLine(text string, limit int) string {
	line := ""
	for l := range strings.SplitSeq(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			line = l
			break
		}
	}
	if r := []rune(line); len(r) > limit {
		return strings.TrimSpace(string(r[:limit-1])) + "…"
	}
	return line
}

// Colleague is a person as others see them: an id and a name.
type Colleague struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

// Colleagues lists the people whose names the caller may see: for an agent,
// itself, the members of its teams and every supervisor (who may hold or
// break any lock); for supervisors and admins, everyone. Ingest keys are
// refused.
func (s *Service) Colleagues(ctx context.Context, p Principal) ([]Colleague, error) {
	var mine []string
	switch p.Role {
	case store.RoleAdmin, store.RoleSupervisor:
	case store.RoleAgent:
		me, err := s.agentOf(ctx, p)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrUnauthorized
		}
		if err != nil {
			return nil, err
		}
		mine = me.Teams
	default:
		return nil, ErrForbidden
	}
	agents, err := s.st.AgentList(ctx)
	if err != nil {
		return nil, err
	}
	out := []Colleague{}
	for _, a := range agents {
		if p.Role == store.RoleAgent && a.ID != p.AgentID && a.Role != store.RoleSupervisor &&
			!slices.ContainsFunc(a.Teams, func(t string) bool { return slices.Contains(mine, t) }) {
			continue
		}
		out = append(out, Colleague{ID: a.ID, Name: a.Name, Role: a.Role})
	}
	slices.SortFunc(out, func(a, b Colleague) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}
