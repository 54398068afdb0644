package node

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/moxxie/moxxie/fsm"
)

// TestQuarantineDrain_AtItsEnd releases addresses and checks that the
// leader frees them when their quarantine ends, with no allocation to do
// it: the prefix's utilization and available addresses follow within
// about drainGap, not at a fixed sweep.
func TestQuarantineDrain_AtItsEnd(t *testing.T) {
	s := TestServer(t, nil)
	WaitForLeader(t, s)
	apply := func(cmd fsm.Command) {
		t.Helper()
		if _, err := s.raftApply(cmd); err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
	}
	apply(&fsm.SettingUpsertRequest{Key: "ipam.quarantine", Value: "1s"})
	apply(&fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: "p", Prefix: "10.0.0.0/29", VRF: "global", Status: fsm.PrefixActive}})
	apply(&fsm.AddressAllocateRequest{PrefixID: "p", Count: 6, IDs: []string{"a", "b", "c", "d", "e", "f"}, Status: fsm.AddressActive})
	used := func() string {
		_, p, err := s.State().Prefix(nil, "p")
		if err != nil || p == nil {
			t.Fatalf("prefix: %v %v", p, err)
		}
		return string(p.Utilization.Used)
	}
	// Each release is freed after its quarantine ends, without an
	// allocation; the second drain comes drainGap after the first at the
	// soonest.
	for _, c := range []struct{ id, held, used string }{{"a", "6", "5"}, {"b", "5", "4"}} {
		released := time.Now()
		apply(&fsm.AddressReleaseRequest{ID: c.id})
		if u := used(); u != c.held {
			t.Fatalf("used %s while %s is in quarantine, want %s", u, c.id, c.held)
		}
		WaitForResult(t, 10*time.Second, func() error {
			if u := used(); u != c.used {
				return fmt.Errorf("used %s, want %s", u, c.used)
			}
			return nil
		})
		t.Logf("%s freed %v after its release", c.id, time.Since(released).Round(time.Millisecond))
	}
	free, err := s.State().Available("p", 10)
	if err != nil || !slices.Equal(free, []string{"10.0.0.1", "10.0.0.2"}) {
		t.Fatalf("available %v %v", free, err)
	}
}
