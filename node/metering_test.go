package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/quota"
)

// meterTotal sums a tenant's hourly buckets and their daily rollups, and
// returns them with how far usage was metered, all read at once.
func meterTotal(t *testing.T, s *Server, tenant string) (hourly, daily quota.Quantities, hours int, until int64) {
	t.Helper()
	_, until, err := s.State().MeterBuckets(tenant, quota.HourMillis, 0, 1<<62, func(b *quota.Bucket) {
		hourly = hourly.Add(b.Q)
		hours++
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.State().MeterBuckets(tenant, quota.DayMillis, 0, 1<<62, func(b *quota.Bucket) { daily = daily.Add(b.Q) }); err != nil {
		t.Fatal(err)
	}
	return hourly, daily, hours, until
}

// TestMetering_LeaderFailover meters a tenant holding five addresses
// across an hour boundary while the leader is stopped and a server whose
// clock is three seconds behind may take over: the metered quantity is
// exactly five addresses over the metered time, with no interval counted
// twice and none left out.
func TestMetering_LeaderFailover(t *testing.T) {
	base := time.Date(2026, 11, 25, 10, 59, 56, 0, time.UTC)
	start := time.Now()
	skew := []time.Duration{0, -3 * time.Second, 2 * time.Second}
	servers := TestClusterOptions(t, 3, func(c *Config) { c.MeteringInterval = Duration(200 * time.Millisecond) }, func(i int) Options {
		return Options{Now: func() time.Time { return base.Add(time.Since(start) + skew[i]) }}
	})
	leader := WaitForLeader(t, servers...)
	if _, err := leader.raftApply(&fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: "p", Prefix: "10.0.0.0/24", VRF: "global", Status: fsm.PrefixActive}}); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.raftApply(&fsm.AddressAllocateRequest{PrefixID: "p", Count: 5, IDs: []string{"a", "b", "c", "d", "e"}, Tenant: "acme", Status: fsm.AddressActive}); err != nil {
		t.Fatal(err)
	}
	// From the first tick that records the five addresses on, the tenant
	// accrues five address-milliseconds per millisecond.
	WaitForResult(t, 10*time.Second, func() error {
		_, rates, _ := leader.State().MeterRatesNow(nil)
		for _, r := range rates {
			if r.Tenant == "acme" && r.Rates[len(quota.Meters)-1] == 5 {
				return nil
			}
		}
		return fmt.Errorf("rates %v", rates)
	})
	q1, _, _, t1 := meterTotal(t, leader, "acme")
	WaitForResult(t, 10*time.Second, func() error {
		if _, _, _, until := meterTotal(t, leader, "acme"); until < t1+1000 {
			return fmt.Errorf("metered until %d", until)
		}
		return nil
	})
	if err := leader.Shutdown(false); err != nil {
		t.Fatal(err)
	}
	var rest []*Server
	for _, s := range servers {
		if s != leader {
			rest = append(rest, s)
		}
	}
	next := WaitForLeader(t, rest...)
	stopAt := base.Add(time.Since(start) + 3*time.Second).UnixMilli()
	WaitForResult(t, 20*time.Second, func() error {
		if _, _, _, until := meterTotal(t, next, "acme"); until < stopAt {
			return fmt.Errorf("metered until %s, waiting for %s", time.UnixMilli(until).UTC(), time.UnixMilli(stopAt).UTC())
		}
		return nil
	})
	WaitForApplied(t, next.LastIndex(), rest...)
	for _, s := range rest {
		qn, daily, hours, tn := meterTotal(t, s, "acme")
		addr := len(quota.Meters) - 1
		if got, want := qn[addr]-q1[addr], 5*(tn-t1); got != want {
			t.Errorf("%s: %d address-ms metered over %d ms, want %d", s.ID(), got, tn-t1, want)
		}
		if daily != qn {
			t.Errorf("%s: daily rollups %v differ from the hourly buckets %v", s.ID(), daily, qn)
		}
		if hours < 2 {
			t.Errorf("%s: %d hourly buckets; the test should cross 11:00", s.ID(), hours)
		}
	}
}
