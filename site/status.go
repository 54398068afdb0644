package site

import (
	"slices"
	"strings"
	"time"
)

// Member states, in this server's view.
const (
	StateAlive = "alive"
	StateDead  = "dead"
	StateLeft  = "left"
)

// Site states, in this server's view (see SiteStatus.State).
const (
	SiteUp          = "up"
	SiteDegraded    = "degraded"
	SiteUnreachable = "unreachable"
	SiteDown        = "down"
	SiteLeft        = "left"
)

// Health is what a server advertises about itself besides its identity.
type Health struct {
	Leader  bool `json:"leader"`  // it leads its site's raft group
	Healthy bool `json:"healthy"` // its site has a leader and it is in sync
	// FailedOver lists the sites whose guests its site runs after a
	// failover (docs/dr.md): a site that comes back learns it from the
	// pool and keeps those guests stopped.
	FailedOver []string `json:"failed_over,omitempty"`
}

// equal reports whether h and o say the same.
func (h Health) equal(o Health) bool {
	return h.Leader == o.Leader && h.Healthy == o.Healthy && slices.Equal(h.FailedOver, o.FailedOver)
}

// Member is one server of the pool as this server sees it.
type Member struct {
	Name       string `json:"name"` // site/node
	Site       string `json:"site"`
	Node       string `json:"node"`
	Role       string `json:"role"` // empty when its meta cannot be read
	APIAddress string `json:"api_address"`
	Addr       string `json:"gossip_address"`
	// State is alive, dead or left. memberlist v0.5.4 keeps its suspect
	// state to itself (Node.State is never set), so a suspect member stays
	// alive here until memberlist declares it dead.
	State string    `json:"state"`
	Since time.Time `json:"since"` // when it entered State in this server's view
	Health
	Down []string `json:"down_votes,omitempty"` // the sites this member votes down
}

// SiteStatus is one site as this server sees it.
type SiteStatus struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// State is "up" (all servers alive), "degraded" (some alive, some not),
	// "unreachable" (no server alive in this view but no quorum of other
	// sites agrees), "down" (every server dead for DownAfter AND a quorum of
	// the other sites votes it down) or "left" (every server left
	// gracefully). Servers that left do not count when others remain.
	State   string   `json:"state"`
	Members []Member `json:"members"`
	// Votes are the other sites voting this site down (each counted once,
	// via any of its alive members; this server's own site through this
	// server's own view), Quorum how many are needed: a majority of the
	// other sites known to the pool, sites that left excluded.
	Votes     []string  `json:"votes,omitempty"`
	Quorum    int       `json:"quorum"`
	DownSince time.Time `json:"down_since,omitzero"` // when this server first saw it down
}

// siteView is the tally of one site's members.
type siteView struct {
	status            SiteStatus
	alive, dead, left int
	noAliveSince      time.Time // the latest Since of its members, when none is alive
	deadLongEnough    bool      // no member alive, one dead, for DownAfter
	aliveVotes        map[string]bool
}

// evaluate computes every site's status from members (sorted by name) in
// the view of a server of site self at now, and the sites that server votes
// down. downSince holds the DownSince of the sites down at the previous
// evaluation.
func evaluate(members []Member, self string, downAfter time.Duration, now time.Time, downSince map[string]time.Time) (sites []SiteStatus, votes []string) {
	views := make(map[string]*siteView)
	var names []string
	for _, m := range members {
		v := views[m.Site]
		if v == nil {
			v = &siteView{status: SiteStatus{Name: m.Site}, aliveVotes: make(map[string]bool)}
			views[m.Site] = v
			names = append(names, m.Site)
		}
		v.status.Members = append(v.status.Members, m)
		if v.status.Role == "" {
			v.status.Role = m.Role
		}
		switch m.State {
		case StateAlive:
			v.alive++
			for _, d := range m.Down {
				v.aliveVotes[d] = true
			}
		case StateDead:
			v.dead++
		case StateLeft:
			v.left++
		}
		if m.Since.After(v.noAliveSince) {
			v.noAliveSince = m.Since
		}
	}
	slices.Sort(names)

	var known []string // sites that have not all left
	for _, name := range names {
		v := views[name]
		if v.alive == 0 && v.dead > 0 && now.Sub(v.noAliveSince) >= downAfter {
			v.deadLongEnough = true
			if name != self {
				votes = append(votes, name)
			}
		}
		if v.left < len(v.status.Members) {
			known = append(known, name)
		}
	}

	for _, name := range names {
		v := views[name]
		st := &v.status
		others := len(known)
		if slices.Contains(known, name) {
			others--
		}
		st.Quorum = others/2 + 1
		for _, other := range known {
			switch {
			case other == name, v.left == len(st.Members):
			case other == self:
				if v.deadLongEnough {
					st.Votes = append(st.Votes, other)
				}
			case views[other].aliveVotes[name]:
				st.Votes = append(st.Votes, other)
			}
		}
		switch {
		case v.left == len(st.Members):
			st.State = SiteLeft
		case v.alive == len(st.Members)-v.left:
			st.State = SiteUp
		case v.alive > 0:
			st.State = SiteDegraded
		case v.deadLongEnough && len(st.Votes) >= st.Quorum:
			st.State = SiteDown
			st.DownSince = now
			if t, ok := downSince[name]; ok {
				st.DownSince = t
			}
		default:
			st.State = SiteUnreachable
		}
		sites = append(sites, *st)
	}
	return sites, votes
}

// splitName splits a memberlist name into site and node.
func splitName(name string) (site, node string, ok bool) {
	site, node, ok = strings.Cut(name, "/")
	if !ok || !siteNameRe.MatchString(site) || !nodeIDRe.MatchString(node) {
		return "", "", false
	}
	return site, node, true
}
