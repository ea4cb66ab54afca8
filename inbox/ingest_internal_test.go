package inbox

import (
	"strings"
	"testing"

	"github.com/switchboard/switchboard/store"
)

// TestJoinConversation: an answer to another author's message moves to its
// own author's thread of that conversation only when both thread keys read
// "<scheme>:<conversation>:<author id>" with the same scheme; a DM key, a
// key of the API's own making and a key that would grow past the limit are
// kept as given.
func TestJoinConversation(t *testing.T) {
	long := strings.Repeat("c", maxIDLen-len("conv::u1"))
	for _, c := range []struct {
		own, author, answered, answeredAuthor, want string
	}{
		{"conv:9:u2", "u2", "conv:1:u1", "u1", "conv:1:u2"},
		{"conv:9:u1", "u1", "conv:1:u1", "u1", "conv:1:u1"},               // the same author's thread
		{"mine", "u1", "theirs", "u1", "theirs"},                          // the same author's, whatever the keys
		{"post:9:u2", "u2", "conv:1:u1", "u1", "post:9:u2"},               // another scheme
		{"dm:u2", "u2", "dm:u1", "u1", "dm:u2"},                           // no conversation part
		{"conv:9:u2", "u2", "orders-7", "u1", "conv:9:u2"},                // not keyed by author
		{"mine-u2", "u2", "conv:1:u1", "u1", "mine-u2"},                   // not keyed by author
		{"conv:9:u2", "u2", "conv:1:", "", "conv:9:u2"},                   // no author
		{"conv:9:u2", "u2", "conv::u1", "u1", "conv:9:u2"},                // no conversation
		{"conv::u2", "u2", "conv:1:u1", "u1", "conv::u2"},                 // no conversation of its own
		{"conv:9:u22", "u22", "conv:" + long + ":u1", "u1", "conv:9:u22"}, // too long
		{"conv:9:u2", "u2", "conv:" + long + ":u1", "u1", "conv:" + long + ":u2"},
	} {
		in := &MessageInput{ThreadExternalID: c.own, Author: store.Author{ID: c.author}}
		if got := joinConversation(in, c.answered, c.answeredAuthor); got != c.want {
			t.Errorf("%s by %s answering %s by %s: %s, want %s", c.own, c.author, c.answered, c.answeredAuthor, got, c.want)
		}
	}
}
