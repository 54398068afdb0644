package site

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	const downAfter = time.Second
	long := now.Add(-2 * downAfter) // dead for longer than DownAfter
	recent := now.Add(-downAfter / 2)
	// m is a member "site/node" in state since at, voting votes down.
	m := func(name, state string, at time.Time, votes ...string) Member {
		site, node, _ := strings.Cut(name, "/")
		return Member{Name: name, Site: site, Node: node, Role: RoleServer, State: state, Since: at, Down: votes}
	}
	type site struct {
		state  string
		votes  []string
		quorum int
	}
	for _, tc := range []struct {
		name      string
		self      string
		members   []Member
		downSince map[string]time.Time
		want      map[string]site
		wantVotes []string
	}{
		{
			name:    "all up",
			self:    "a",
			members: []Member{m("a/1", StateAlive, long), m("b/1", StateAlive, long), m("c/1", StateAlive, long)},
			want:    map[string]site{"a": {SiteUp, nil, 2}, "b": {SiteUp, nil, 2}, "c": {SiteUp, nil, 2}},
		},
		{
			name:    "one server dead: degraded, no vote",
			self:    "b",
			members: []Member{m("a/1", StateDead, long), m("a/2", StateAlive, long), m("b/1", StateAlive, long)},
			want:    map[string]site{"a": {SiteDegraded, nil, 1}, "b": {SiteUp, nil, 1}},
		},
		{
			name: "all dead, quorum of the other two",
			self: "b",
			members: []Member{
				m("a/1", StateDead, long), m("a/2", StateDead, long),
				m("b/1", StateAlive, long), m("c/1", StateAlive, long, "a"),
			},
			want:      map[string]site{"a": {SiteDown, []string{"b", "c"}, 2}, "b": {SiteUp, nil, 2}, "c": {SiteUp, nil, 2}},
			wantVotes: []string{"a"},
		},
		{
			name: "all dead but only this site votes: unreachable",
			self: "b",
			members: []Member{
				m("a/1", StateDead, long), m("b/1", StateAlive, long), m("c/1", StateAlive, long),
			},
			want:      map[string]site{"a": {SiteUnreachable, []string{"b"}, 2}, "b": {SiteUp, nil, 2}, "c": {SiteUp, nil, 2}},
			wantVotes: []string{"a"},
		},
		{
			name: "other sites vote but not dead long enough here",
			self: "b",
			members: []Member{
				m("a/1", StateDead, long), m("a/2", StateDead, recent),
				m("b/1", StateAlive, long), m("c/1", StateAlive, long, "a"), m("d/1", StateAlive, long, "a"),
			},
			want: map[string]site{
				"a": {SiteUnreachable, []string{"c", "d"}, 2},
				"b": {SiteUp, nil, 2}, "c": {SiteUp, nil, 2}, "d": {SiteUp, nil, 2},
			},
		},
		{
			name: "votes of dead members do not count",
			self: "b",
			members: []Member{
				m("a/1", StateDead, long), m("b/1", StateAlive, long),
				m("c/1", StateDead, long, "a"), m("c/2", StateAlive, long),
			},
			want:      map[string]site{"a": {SiteUnreachable, []string{"b"}, 2}, "b": {SiteUp, nil, 2}, "c": {SiteDegraded, nil, 2}},
			wantVotes: []string{"a"},
		},
		{
			name: "a site votes once through any alive member",
			self: "b",
			members: []Member{
				m("a/1", StateDead, long), m("b/1", StateAlive, long),
				m("c/1", StateAlive, long, "a"), m("c/2", StateAlive, long, "a"),
				m("d/1", StateAlive, long), m("e/1", StateAlive, long),
			},
			want: map[string]site{
				"a": {SiteUnreachable, []string{"b", "c"}, 3},
				"b": {SiteUp, nil, 3}, "c": {SiteUp, nil, 3}, "d": {SiteUp, nil, 3}, "e": {SiteUp, nil, 3},
			},
			wantVotes: []string{"a"},
		},
		{
			name: "a witness votes; the quorum counts it",
			self: "b",
			members: []Member{
				m("a/1", StateDead, long), m("b/1", StateAlive, long),
				{Name: "w/1", Site: "w", Node: "1", Role: RoleWitness, State: StateAlive, Since: long, Down: []string{"a"}},
			},
			want:      map[string]site{"a": {SiteDown, []string{"b", "w"}, 2}, "b": {SiteUp, nil, 2}, "w": {SiteUp, nil, 2}},
			wantVotes: []string{"a"},
		},
		{
			name:      "two sites: a quorum of one",
			self:      "a",
			members:   []Member{m("a/1", StateAlive, long), m("b/1", StateDead, long), m("b/2", StateDead, long)},
			want:      map[string]site{"a": {SiteUp, nil, 1}, "b": {SiteDown, []string{"a"}, 1}},
			wantVotes: []string{"b"},
		},
		{
			name: "a site that left: left, never voted, out of the quorum",
			self: "b",
			members: []Member{
				m("a/1", StateLeft, long), m("a/2", StateLeft, long),
				m("b/1", StateAlive, long), m("c/1", StateAlive, long, "a"),
			},
			want: map[string]site{"a": {SiteLeft, nil, 2}, "b": {SiteUp, nil, 1}, "c": {SiteUp, nil, 1}},
		},
		{
			name: "servers that left do not count in the state of the rest",
			self: "b",
			members: []Member{
				m("a/1", StateLeft, long), m("a/2", StateAlive, long), m("b/1", StateAlive, long),
			},
			want: map[string]site{"a": {SiteUp, nil, 1}, "b": {SiteUp, nil, 1}},
		},
		{
			name: "left and dead: dead since the last one went",
			self: "b",
			members: []Member{
				m("a/1", StateDead, long), m("a/2", StateLeft, recent), m("b/1", StateAlive, long),
			},
			want: map[string]site{"a": {SiteUnreachable, nil, 1}, "b": {SiteUp, nil, 1}},
		},
		{
			name: "a site whose members all left votes no more",
			self: "b",
			members: []Member{
				m("a/1", StateDead, long), m("b/1", StateAlive, long),
				m("c/1", StateLeft, long, "a"), m("d/1", StateAlive, long),
			},
			want: map[string]site{
				"a": {SiteUnreachable, []string{"b"}, 2},
				"b": {SiteUp, nil, 2}, "c": {SiteLeft, nil, 2}, "d": {SiteUp, nil, 2},
			},
			wantVotes: []string{"a"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sites, votes := evaluate(tc.members, tc.self, downAfter, now, tc.downSince)
			if !slices.Equal(votes, tc.wantVotes) {
				t.Errorf("votes %v, want %v", votes, tc.wantVotes)
			}
			got := make(map[string]site)
			var names []string
			for _, s := range sites {
				got[s.Name] = site{s.State, s.Votes, s.Quorum}
				names = append(names, s.Name)
				if (s.State == SiteDown) != !s.DownSince.IsZero() {
					t.Errorf("site %s %s down since %v", s.Name, s.State, s.DownSince)
				}
			}
			if !slices.IsSorted(names) {
				t.Errorf("sites not sorted: %v", names)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestEvaluate_DownSinceKept(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	members := []Member{
		{Name: "a/1", Site: "a", Node: "1", State: StateAlive, Since: now},
		{Name: "b/1", Site: "b", Node: "1", State: StateDead, Since: now.Add(-time.Minute)},
	}
	first := now.Add(-10 * time.Second)
	sites, _ := evaluate(members, "a", time.Second, now, map[string]time.Time{"b": first})
	if sites[1].State != SiteDown || !sites[1].DownSince.Equal(first) {
		t.Fatalf("b is %s since %v, want down since %v", sites[1].State, sites[1].DownSince, first)
	}
	sites, _ = evaluate(members, "a", time.Second, now, nil)
	if !sites[1].DownSince.Equal(now) {
		t.Fatalf("b newly down since %v, want %v", sites[1].DownSince, now)
	}
}

func TestSplitName(t *testing.T) {
	for _, tc := range []struct {
		in         string
		site, node string
		ok         bool
	}{
		{"fra1/server-1", "fra1", "server-1", true},
		{"fra1", "", "", false},
		{"Fra1/s1", "", "", false},
		{"fra1/s1/x", "", "", false},
		{"/s1", "", "", false},
		{"fra1/", "", "", false},
	} {
		site, node, ok := splitName(tc.in)
		if site != tc.site || node != tc.node || ok != tc.ok {
			t.Errorf("splitName(%q) = %q, %q, %v", tc.in, site, node, ok)
		}
	}
}
