package node

import (
	"testing"
	"time"
)

// TestCatchUp checks the DNS gate's rounds: a store that took long to
// catch up with the leader's commit index asks again, since the leader
// committed more meanwhile, and DNS opens only after a round that took
// at most fresh, or after the last round it may take.
func TestCatchUp(t *testing.T) {
	const fresh = 250 * time.Millisecond
	for _, tc := range []struct {
		name       string
		leaderless int             // rounds of commit without a leader first
		waits      []time.Duration // how long each await takes
		wantTarget uint64
		wantRounds int
	}{
		{"caught up at once", 0, []time.Duration{10 * time.Millisecond}, 100, 1},
		{"a long replay, then a short one", 0, []time.Duration{3 * time.Second, 40 * time.Millisecond}, 200, 2},
		{"falling further behind first", 0, []time.Duration{2 * time.Second, 600 * time.Millisecond, fresh}, 300, 3},
		{"no leader for a while", 3, []time.Duration{5 * time.Millisecond}, 100, 1},
		{"never fresh: opens after the last round", 0, []time.Duration{time.Second, time.Second, time.Second, time.Second}, 400, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := time.Unix(1_800_000_000, 0)
			now := func() time.Time { return clock }
			var committed uint64
			leaderless := tc.leaderless
			commit := func() (uint64, bool) {
				if leaderless > 0 {
					leaderless--
					return 0, false
				}
				committed += 100
				return committed, true
			}
			var awaited []uint64
			await := func(idx uint64) bool {
				awaited = append(awaited, idx)
				if len(awaited) > len(tc.waits) {
					t.Fatalf("await %d: more rounds than %d", idx, len(tc.waits))
				}
				clock = clock.Add(tc.waits[len(awaited)-1])
				return true
			}
			target, rounds, ok := catchUp(make(chan struct{}), commit, await, now, time.Millisecond, fresh, 4)
			if !ok || target != tc.wantTarget || rounds != tc.wantRounds {
				t.Errorf("catchUp = %d, %d rounds, %v; want %d, %d rounds (awaited %v)", target, rounds, ok, tc.wantTarget, tc.wantRounds, awaited)
			}
		})
	}

	t.Run("stops", func(t *testing.T) {
		stop := make(chan struct{})
		close(stop)
		noLeader := func() (uint64, bool) { return 0, false }
		if _, _, ok := catchUp(stop, noLeader, nil, time.Now, time.Hour, fresh, 4); ok {
			t.Error("opened without a leader after stop")
		}
		shutDown := func(uint64) bool { return false }
		if _, _, ok := catchUp(make(chan struct{}), func() (uint64, bool) { return 1, true }, shutDown, time.Now, time.Hour, fresh, 4); ok {
			t.Error("opened although await gave up")
		}
	})
}
