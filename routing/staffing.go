package routing

// StaffedTeam returns the team a new thread should go to: team itself when it
// is staffed, otherwise the first staffed team along its fallback chain
// (fallback(t) is t's fallback_team, "" for none). The walk stops at "" or at a
// team already seen, so cycles end. With no staffed team on the chain, team is
// returned unchanged: the thread stays where the rules put it.
func StaffedTeam(team string, fallback func(team string) string, staffed func(team string) bool) string {
	return StaffingWalk(team, fallback, staffed, nil)
}

// StaffingWalk is StaffedTeam that also calls visit, when not nil, with
// each team it looks at, in order, and whether it is staffed: the path a
// routing explanation shows.
func StaffingWalk(team string, fallback func(team string) string, staffed func(team string) bool, visit func(team string, staffed bool)) string {
	if team == "" || staffed == nil {
		return team
	}
	var seenBuf [8]string
	seen := seenBuf[:0]
	for cur := team; ; {
		ok := staffed(cur)
		if visit != nil {
			visit(cur, ok)
		}
		if ok {
			return cur
		}
		seen = append(seen, cur)
		if fallback == nil {
			return team
		}
		next := fallback(cur)
		if next == "" {
			return team
		}
		for _, s := range seen {
			if s == next {
				return team
			}
		}
		cur = next
	}
}
