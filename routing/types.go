// Package routing is Switchboard's pure decision logic: rule matching, shift
// and schedule math, staffing with fallback chains, and agent choice for push
// assignment. It does no I/O and imports nothing of Switchboard's; every
// function that depends on time takes `now` as a parameter.
package routing

import "time"

// Priorities in ascending order; the index is the rank.
var Priorities = []string{"low", "normal", "high", "urgent"}

// PriorityRank returns the rank of p (low=0 ... urgent=3), or -1 when p is not
// a priority.
func PriorityRank(p string) int {
	for i, q := range Priorities {
		if q == p {
			return i
		}
	}
	return -1
}

// MaxPriority returns the higher of two priorities; an empty or unknown value
// loses to any known one.
func MaxPriority(a, b string) string {
	if PriorityRank(b) > PriorityRank(a) {
		return b
	}
	return a
}

// Networks, Kinds and the other enums of the contract.
var (
	Networks   = []string{"twitter", "instagram", "facebook", "linkedin", "tiktok", "youtube", "whatsapp", "other"}
	Kinds      = []string{"dm", "comment", "mention", "review"}
	Days       = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"} // index = time.Weekday
	RuleEvents = []string{"message", "tag"}
)

// Shift is a weekly working window in an agent's time zone. End may be
// "24:00", or earlier than Start for an overnight shift, which belongs to the
// day it starts.
type Shift struct {
	Days  []string `json:"days"`
	Start string   `json:"start"`
	End   string   `json:"end"`
}

// TimeOff is an absolute interval [From, To) during which an agent is off
// shift whatever the shifts say.
type TimeOff struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Schedule is a rule condition on the time of evaluation. Inside (default
// true) matches inside the windows; false matches outside them.
type Schedule struct {
	Timezone string  `json:"timezone"`
	Inside   *bool   `json:"inside,omitempty"`
	Windows  []Shift `json:"windows"`
}

// When holds a rule's conditions. Every present field must match (AND);
// inside a list, any value matches (OR).
type When struct {
	Networks       []string  `json:"networks,omitempty"`
	Kinds          []string  `json:"kinds,omitempty"`
	Profiles       []string  `json:"profiles,omitempty"`
	TextAny        []string  `json:"text_any,omitempty"`
	TextRegex      string    `json:"text_regex,omitempty"`
	TagsAny        []string  `json:"tags_any,omitempty"`
	AuthorVerified *bool     `json:"author_verified,omitempty"`
	MinFollowers   *int      `json:"min_followers,omitempty"`
	Languages      []string  `json:"languages,omitempty"`
	Schedule       *Schedule `json:"schedule,omitempty"`
}

// Then holds a rule's actions.
type Then struct {
	Team     string   `json:"team,omitempty"`
	AddTags  []string `json:"add_tags,omitempty"`
	Priority string   `json:"priority,omitempty"`
	Close    bool     `json:"close"`
}

// Rule is one routing rule as the contract defines it.
type Rule struct {
	ID       string   `json:"id"`
	Position int      `json:"position"`
	Enabled  *bool    `json:"enabled,omitempty"`
	On       []string `json:"on,omitempty"`
	When     When     `json:"when"`
	Then     Then     `json:"then"`
	Stop     bool     `json:"stop"`
}

// Facts are what rules match against: the message and its thread.
type Facts struct {
	Network         string
	Kind            string
	Profile         string
	Text            string
	Language        string
	Tags            []string // the thread's tags, including the message's own
	AuthorVerified  bool
	AuthorFollowers int
}

// Decision is the outcome of running rules over Facts.
type Decision struct {
	Team     string   // first matching rule naming a team; "" if none
	AddTags  []string // union of matching rules' tags, in order, deduplicated
	Priority string   // highest priority named by a matching rule; "" if none
	Close    bool     // a matching rule closes the thread
	Matched  []string // ids of matching rules, in evaluation order
}
