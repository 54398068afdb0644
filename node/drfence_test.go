package node

import (
	"slices"
	"testing"
	"time"

	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/site"
)

// TestPoolFences: east fences a plan when an alive server of its recovery
// site lists east as failed over, except right after the plan's failback
// ended here, when that meta may be from before the failback.
func TestPoolFences(t *testing.T) {
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
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
		"recent": now.Add(-drFenceSettle + time.Second),
		"old":    now.Add(-drFenceSettle - time.Second),
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
			for _, p := range poolFences("east", tt.sites, tt.plans, func(p *fsm.DRPlan) time.Time { return failedBack[p.ID] }, now) {
				got = append(got, p.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("fenced %v, want %v", got, tt.want)
			}
		})
	}
}
