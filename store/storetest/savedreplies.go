package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

var savedReplyScenarios = []scenario{
	{"SavedReply_CRUD_UnknownTeamRefused", savedReplies},
}

func wantSavedReply(t testing.TB, what string, got, want store.SavedReply) {
	t.Helper()
	if got.ID != want.ID || got.Title != want.Title || got.Text != want.Text || !slices.Equal(got.Teams, want.Teams) {
		t.Fatalf("%s = %+v, want %+v", what, got, want)
	}
	wantTime(t, what+" created_at", got.CreatedAt, want.CreatedAt)
	wantTime(t, what+" updated_at", got.UpdatedAt, want.UpdatedAt)
}

func (e *env) savedReply(id string) store.SavedReply {
	e.t.Helper()
	r, err := e.s.SavedReplyGet(e.ctx, id)
	must(e.t, err)
	return r
}

func (e *env) savedReplyIDs() []string {
	e.t.Helper()
	list, err := e.s.SavedReplyList(e.ctx)
	must(e.t, err)
	var out []string
	for _, r := range list {
		out = append(out, r.ID)
	}
	return sorted(out)
}

func savedReplies(t *testing.T, e *env) {
	e.team("care")
	e.team("sales")

	before := time.Now()
	greet, err := e.s.SavedReplyCreate(e.ctx, store.SavedReply{ID: "greet", Title: "Greeting",
		Text: "Hi {{author.name}}, {{agent.name}} here.", Teams: []string{"care"}})
	must(t, err)
	after := time.Now()
	within(t, "created_at", greet.CreatedAt, before, after)
	wantTime(t, "updated_at of a new saved reply", greet.UpdatedAt, greet.CreatedAt)
	wantSavedReply(t, "SavedReplyGet", e.savedReply("greet"), store.SavedReply{ID: "greet", Title: "Greeting",
		Text: "Hi {{author.name}}, {{agent.name}} here.", Teams: []string{"care"}, CreatedAt: greet.CreatedAt, UpdatedAt: greet.CreatedAt})

	_, err = e.s.SavedReplyCreate(e.ctx, store.SavedReply{ID: "greet", Title: "Other", Text: "x"})
	wantErr(t, err, store.ErrAlreadyExists)
	wantSavedReply(t, "after a refused create", e.savedReply("greet"), greet)

	_, err = e.s.SavedReplyCreate(e.ctx, store.SavedReply{ID: "ghostly", Title: "G", Text: "x", Teams: []string{"care", "ghost"}})
	wantErr(t, err, store.ErrUnknownTeam)
	_, err = e.s.SavedReplyGet(e.ctx, "ghostly")
	wantErr(t, err, store.ErrNotFound)

	// No teams = every team.
	bye, err := e.s.SavedReplyCreate(e.ctx, store.SavedReply{ID: "bye", Title: "Goodbye", Text: "Thanks, bye!"})
	must(t, err)
	wantSavedReply(t, "saved reply for every team", e.savedReply("bye"), bye)
	if len(e.savedReply("bye").Teams) != 0 {
		t.Fatalf("teams of a saved reply created without teams = %v", e.savedReply("bye").Teams)
	}
	wantIDs(t, "saved replies", e.savedReplyIDs(), []string{"bye", "greet"})

	// Update replaces title, text and teams, keeping created_at.
	upd, err := e.s.SavedReplyUpdate(e.ctx, store.SavedReply{ID: "greet", Title: "Hello", Text: "Hello {{author.handle}}", Teams: []string{"care", "sales"}})
	must(t, err)
	wantTime(t, "created_at after update", upd.CreatedAt, greet.CreatedAt)
	if upd.UpdatedAt.Before(greet.UpdatedAt) {
		t.Fatalf("updated_at %s before %s", upd.UpdatedAt, greet.UpdatedAt)
	}
	wantSavedReply(t, "after update", e.savedReply("greet"), store.SavedReply{ID: "greet", Title: "Hello",
		Text: "Hello {{author.handle}}", Teams: []string{"care", "sales"}, CreatedAt: greet.CreatedAt, UpdatedAt: upd.UpdatedAt})

	_, err = e.s.SavedReplyUpdate(e.ctx, store.SavedReply{ID: "greet", Title: "Bad", Text: "x", Teams: []string{"ghost"}})
	wantErr(t, err, store.ErrUnknownTeam)
	wantSavedReply(t, "after a refused update", e.savedReply("greet"), upd)
	_, err = e.s.SavedReplyUpdate(e.ctx, store.SavedReply{ID: "nope", Title: "x", Text: "x"})
	wantErr(t, err, store.ErrNotFound)
	_, err = e.s.SavedReplyGet(e.ctx, "nope")
	wantErr(t, err, store.ErrNotFound)

	// Delete.
	must(t, e.s.SavedReplyDelete(e.ctx, "bye"))
	_, err = e.s.SavedReplyGet(e.ctx, "bye")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, e.s.SavedReplyDelete(e.ctx, "bye"), store.ErrNotFound)
	wantIDs(t, "saved replies after delete", e.savedReplyIDs(), []string{"greet"})

	// Kept across a restart.
	e.reopen()
	wantSavedReply(t, "after reopen", e.savedReply("greet"), upd)
	wantIDs(t, "saved replies after reopen", e.savedReplyIDs(), []string{"greet"})
}
