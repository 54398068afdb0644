package node

import (
	"context"
	"testing"
	"time"

	"github.com/moxxie/moxxie/pvesim"
)

// BenchmarkInventorySyncCycle runs sync cycles that find nothing changed
// against a simulated 64-node, 10,000-guest cluster. The simulator runs in
// the same process, so the time includes its answer; bench/moxxiebench
// inventory measures the server alone.
func BenchmarkInventorySyncCycle(b *testing.B) {
	sim, pc := startTestSim(b, pvesim.Config{Seed: pvesim.Seed{Nodes: 64, Guests: 10000}})
	s := TestServer(b, func(c *Config) { c.Proxmox = pc })
	WaitForResult(b, 60*time.Second, func() error {
		_, st, _ := s.State().InventoryState(nil)
		if st.Guests != len(sim.Guests()) {
			return context.DeadlineExceeded
		}
		return nil
	})
	y := &inventorySyncer{s: s, p: s.provider, interval: DefaultSyncInterval}
	y.cycle(context.Background())
	b.ResetTimer()
	for b.Loop() {
		y.cycle(context.Background())
	}
}
