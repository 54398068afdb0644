package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/pvesim"
	"github.com/moxxie/moxxie/site"
)

// TestPoolFences: east fences a plan when an alive server of its recovery
// site lists east as failed over, except right after the plan's failback
// ended here, when that meta may be from before the failback.
func TestPoolFences(t *testing.T) {
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	const settle = time.Minute
	west := func(state string, failedOver ...string) site.SiteStatus {
		return site.SiteStatus{Name: "west", Members: []site.Member{
			{Site: "west", Node: "s1", State: state, Health: site.Health{FailedOver: failedOver}},
		}}
	}
	plan := func(id string, mod func(*fsm.DRPlan)) *fsm.DRPlan {
		p := &fsm.DRPlan{ID: id, SourceSite: "east", RecoverySite: "west"}
		if mod != nil {
			mod(p)
		}
		return p
	}
	failedBack := map[string]time.Time{
		"recent": now.Add(-settle + time.Second),
		"old":    now.Add(-settle - time.Second),
	}
	tests := []struct {
		name  string
		sites []site.SiteStatus
		plans []*fsm.DRPlan
		want  []string
	}{
		{"failed over", []site.SiteStatus{west(site.StateAlive, "east")}, []*fsm.DRPlan{plan("shop", nil)}, []string{"shop"}},
		{"another site failed over", []site.SiteStatus{west(site.StateAlive, "north")}, []*fsm.DRPlan{plan("shop", nil)}, nil},
		{"said by a dead server", []site.SiteStatus{west(site.StateDead, "east")}, []*fsm.DRPlan{plan("shop", nil)}, nil},
		{"already fenced", []site.SiteStatus{west(site.StateAlive, "east")},
			[]*fsm.DRPlan{plan("shop", func(p *fsm.DRPlan) { p.Fence = &fsm.DRFence{By: "west"} })}, nil},
		{"fenced by itself, lifted by an operator: a failover's fence now", []site.SiteStatus{west(site.StateAlive, "east")},
			[]*fsm.DRPlan{plan("shop", func(p *fsm.DRPlan) { p.Fence = &fsm.DRFence{By: "west", Isolated: true, Lifted: true} })}, []string{"shop"}},
		{"fenced by itself, guests stopped: left to the sync", []site.SiteStatus{west(site.StateAlive, "east")},
			[]*fsm.DRPlan{plan("shop", func(p *fsm.DRPlan) { p.Fence = &fsm.DRFence{By: "west", Isolated: true} })}, nil},
		{"a replica", []site.SiteStatus{west(site.StateAlive, "east")},
			[]*fsm.DRPlan{plan("shop", func(p *fsm.DRPlan) { p.Replica = true })}, nil},
		{"of another recovery site", []site.SiteStatus{west(site.StateAlive, "east")},
			[]*fsm.DRPlan{plan("shop", func(p *fsm.DRPlan) { p.RecoverySite = "north" })}, nil},
		// The stale meta after a failback: the guests the failback
		// started stay up; a sync's answer decides.
		{"failed back just now", []site.SiteStatus{west(site.StateAlive, "east")}, []*fsm.DRPlan{plan("recent", nil), plan("shop", nil)}, []string{"shop"}},
		{"failed back long ago", []site.SiteStatus{west(site.StateAlive, "east")}, []*fsm.DRPlan{plan("old", nil)}, []string{"old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range poolFences("east", tt.sites, tt.plans, func(p *fsm.DRPlan) time.Time { return failedBack[p.ID] }, now, settle) {
				got = append(got, p.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("fenced %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSelfFences: east fences its automatic plans itself when it sees no
// server of their recovery site and fewer than a quorum of the other
// sites: what the others would need to see of east to fail it over.
func TestSelfFences(t *testing.T) {
	st := func(name, state string) site.SiteStatus { return site.SiteStatus{Name: name, State: state} }
	// east's own status carries the quorum the others need against it:
	// a majority of the other known sites.
	east := func(quorum int) site.SiteStatus {
		return site.SiteStatus{Name: "east", State: site.SiteUp, Quorum: quorum}
	}
	plan := func(id, recovery string, mod func(*fsm.DRPlan)) *fsm.DRPlan {
		p := &fsm.DRPlan{ID: id, SourceSite: "east", RecoverySite: recovery}
		if mod != nil {
			mod(p)
		}
		return p
	}
	shop := []*fsm.DRPlan{plan("shop", "west", nil)}
	tests := []struct {
		name  string
		sites []site.SiteStatus
		plans []*fsm.DRPlan
		want  []string
	}{
		{"cut off from both others", []site.SiteStatus{east(2), st("north", site.SiteUnreachable), st("west", site.SiteUnreachable)}, shop, []string{"shop"}},
		{"cut off, the others seen down", []site.SiteStatus{east(2), st("north", site.SiteDown), st("west", site.SiteDown)}, shop, []string{"shop"}},
		{"two sites, the other unseen", []site.SiteStatus{east(1), st("west", site.SiteUnreachable)}, shop, []string{"shop"}},
		// A partition from west alone: north sees east and never votes
		// it down.
		{"north still seen", []site.SiteStatus{east(2), st("north", site.SiteUp), st("west", site.SiteUnreachable)}, shop, nil},
		{"north degraded still seen", []site.SiteStatus{east(2), st("north", site.SiteDegraded), st("west", site.SiteUnreachable)}, shop, nil},
		{"the recovery site seen", []site.SiteStatus{east(2), st("north", site.SiteUnreachable), st("west", site.SiteDegraded)}, shop, nil},
		{"four sites, two of three unseen", []site.SiteStatus{east(2), st("north", site.SiteUnreachable), st("south", site.SiteUp), st("west", site.SiteUnreachable)},
			shop, []string{"shop"}},
		{"every other site seen", []site.SiteStatus{east(2), st("north", site.SiteUp), st("west", site.SiteUp)}, shop, nil},
		// Before the pool knows any other site, or without this site's
		// status, no one can be failing it over.
		{"alone in the pool", []site.SiteStatus{east(0)}, shop, nil},
		{"no pool", nil, shop, nil},
		{"a recovery site the pool does not know", []site.SiteStatus{east(2), st("north", site.SiteUnreachable), st("west", site.SiteUnreachable)},
			[]*fsm.DRPlan{plan("shop", "south", nil)}, nil},
		{"which plans", []site.SiteStatus{east(2), st("north", site.SiteUnreachable), st("west", site.SiteUnreachable)},
			[]*fsm.DRPlan{
				plan("a-auto", "west", nil),
				plan("b-manual", "west", func(p *fsm.DRPlan) { p.Manual = true }),
				plan("c-fenced", "west", func(p *fsm.DRPlan) { p.Fence = &fsm.DRFence{By: "west", Run: "fo-1"} }),
				plan("d-self-fenced", "west", func(p *fsm.DRPlan) { p.Fence = &fsm.DRFence{By: "west", Isolated: true} }),
				plan("e-failing-back", "west", func(p *fsm.DRPlan) { p.ActiveRun = "fb-1" }),
				plan("f-replica", "west", func(p *fsm.DRPlan) { p.Replica, p.SourceSite, p.RecoverySite = true, "west", "east" }),
				plan("g-north", "north", nil),
			}, []string{"a-auto", "g-north"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, p := range selfFences("east", tt.sites, tt.plans) {
				got = append(got, p.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("fenced %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDREnforce_IsolatedFence, against the simulator over HTTPS: an
// isolated fence stops the plan's running guests, records them, refuses
// to start them; lifted, it starts them again in recovery order and
// ends, and a guest that was stopped before stays stopped.
func TestDREnforce_IsolatedFence(t *testing.T) {
	seed := pvesim.Seed{Nodes: 1, GuestList: []pvesim.SeedGuest{
		{VMID: 100, Name: "web", Running: true}, {VMID: 101, Name: "db", Running: true}, {VMID: 102, Name: "idle"}, {VMID: 103, Name: "other", Running: true}}}
	s, sim, token := simServer(t, pvesim.Config{Seed: seed})
	syncNow(t, s, 1)
	apply := func(cmd fsm.Command) {
		t.Helper()
		if _, err := s.raftApply(cmd); err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
	}
	status := func() map[int]string {
		out := map[int]string{}
		for _, g := range sim.Guests() {
			out[g.VMID] = g.Status
		}
		return out
	}
	fence := func() *fsm.DRFence {
		_, p, err := s.State().DRPlan(nil, "shop")
		if err != nil || p == nil {
			t.Fatalf("plan: %v %v", p, err)
		}
		return p.Fence
	}
	apply(&fsm.DRPlanPutRequest{Create: true, LocalSite: "east", Plan: fsm.DRPlan{ID: "shop", SourceSite: "east", RecoverySite: "west",
		BackupStorage: "local", TargetStorage: "local-lvm", Guests: []fsm.DRGuest{{VMID: 100, Order: 2}, {VMID: 101, Order: 1}, {VMID: 102, Order: 1}}}})

	// Enforcing no fence touches nothing.
	if err := s.drEnforceFences(); err != nil {
		t.Fatal(err)
	}
	if st := status(); st[100] != "running" || st[101] != "running" || st[103] != "running" {
		t.Fatalf("guests %v before any fence", st)
	}

	apply(&fsm.DRIsolationRequest{Plan: "shop", Action: fsm.DRIsolationFence})
	if err := s.drEnforceFences(); err != nil {
		t.Fatal(err)
	}
	if st := status(); st[100] != "stopped" || st[101] != "stopped" || st[102] != "stopped" || st[103] != "running" {
		t.Fatalf("guests %v under the isolated fence", st)
	}
	if f := fence(); !f.Isolated || f.Lifted || !slices.Equal(f.Stopped, []int{100, 101}) {
		t.Fatalf("fence %+v", f)
	}
	r := call(t, s, http.MethodPost, "/v1/vms/101/start", token, nil, nil)
	var op fsm.Operation
	if err := json.Unmarshal(r.body, &op); err != nil || r.status != http.StatusAccepted {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	if got := waitOp(t, s, op.ID); got.Status != fsm.OpFailed || got.Error == nil || !strings.Contains(got.Error.Message, "sees neither site west") {
		t.Fatalf("starting a guest of the fenced plan: %s %q", got.Status, got.Error)
	}
	if err := s.drEnforceFences(); err != nil { // again: nothing new
		t.Fatal(err)
	}
	if f := fence(); !slices.Equal(f.Stopped, []int{100, 101}) {
		t.Fatalf("fence %+v after enforcing again", f)
	}

	// The recovery site answered: no failover. The guests run again and
	// the fence ends (no pool here: the recovery site is not out of
	// sight).
	apply(&fsm.DRIsolationRequest{Plan: "shop", Action: fsm.DRIsolationLift, By: "sync"})
	if err := s.drEnforceFences(); err != nil {
		t.Fatal(err)
	}
	if st := status(); st[100] != "running" || st[101] != "running" || st[102] != "stopped" {
		t.Fatalf("guests %v after the lift", st)
	}
	if f := fence(); f != nil {
		t.Fatalf("fence %+v after the lift", f)
	}
	// Started in recovery order (db, of order 1, before web), stopped
	// in reverse.
	_, p, _ := s.State().DRPlan(nil, "shop")
	var order []int
	for _, g := range drGuestsInOrder(p) {
		order = append(order, g.VMID)
	}
	if !slices.Equal(order, []int{101, 102, 100}) {
		t.Errorf("recovery order %v, want 101 102 100", order)
	}
}

// TestIsolationConflicts: an isolated fence that turns out to guard a
// failover reports each guest it stopped after the failover started.
func TestIsolationConflicts(t *testing.T) {
	started := time.Date(2026, 11, 27, 5, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) fsm.Timestamp { return fsm.Timestamp(started.Add(d).UnixNano()) }
	f := &fsm.DRFailover{Run: "fo-1", StartedAt: ts(0)}
	plan := func(fence *fsm.DRFence) *fsm.DRPlan {
		return &fsm.DRPlan{ID: "shop", SourceSite: "east", RecoverySite: "west", Fence: fence}
	}
	n := 0
	id := func() string { n++; return fmt.Sprintf("c-%d", n) }
	now := started.Add(time.Minute)
	tests := []struct {
		name  string
		fence *fsm.DRFence
		want  []int
	}{
		{"stopped 2.5 s after the failover started", &fsm.DRFence{By: "west", Since: ts(2500 * time.Millisecond), Isolated: true, Stopped: []int{100, 102}}, []int{100, 102}},
		{"stopped before it started", &fsm.DRFence{By: "west", Since: ts(-time.Second), Isolated: true, Stopped: []int{100}}, nil},
		{"nothing stopped", &fsm.DRFence{By: "west", Since: ts(time.Second), Isolated: true}, nil},
		{"lifted: the guests run and are stopped anew", &fsm.DRFence{By: "west", Since: ts(time.Second), Isolated: true, Lifted: true, Stopped: []int{100}}, nil},
		{"a failover's fence", &fsm.DRFence{By: "west", Run: "fo-0", Since: ts(time.Second)}, nil},
		{"no fence", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := isolationConflicts("east", plan(tt.fence), f, id, now)
			var got []int
			for _, c := range cs {
				got = append(got, c.VMID)
				if c.Kind != fsm.DRConflictGuestRan || c.Site != "east" || c.Plan != "shop" || c.Version != tt.fence.Since || c.At != fsm.Timestamp(now.UnixNano()) || c.ID == "" {
					t.Errorf("conflict %+v", c)
				}
				if want := fmt.Sprintf("guest %d ran at east until the site, cut off from west, fenced plan shop at 2026-11-27T05:00:02.5Z: 2.5s after site west started failover fo-1", c.VMID); !strings.HasPrefix(c.Detail, want) {
					t.Errorf("detail %q, want it to start %q", c.Detail, want)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("conflicts of %v, want %v", got, tt.want)
			}
		})
	}
}
