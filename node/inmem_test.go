package node

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/fsm"
)

// TestInmem_PartitionsKeepEveryAcknowledgedWrite writes through whichever
// node leads while nodes are partitioned and healed at random, then checks
// that every node holds the same state and every acknowledged write.
func TestInmem_PartitionsKeepEveryAcknowledgedWrite(t *testing.T) {
	c := NewInmemCluster(t, 5)
	rng := rand.New(rand.NewPCG(1, 2))
	acked := map[string]string{}
	for round := 0; round < 8; round++ {
		victim := rng.IntN(5)
		c.Partition(victim)
		for i := 0; i < 50; i++ {
			key := fmt.Sprintf("r%d-k%d", round, i)
			leader := c.Leader()
			res, err := c.Apply(leader, &fsm.SettingUpsertRequest{Key: key, Value: key, WriteMeta: fsm.WriteMeta{Now: int64(round*1000 + i)}})
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrEnqueueTimeout) {
				continue // not acknowledged
			}
			if err != nil || res.Err != nil {
				t.Fatalf("apply: %v %v", err, res)
			}
			acked[key] = key
		}
		// The cut-off node cannot commit anything on its own.
		if _, err := c.Apply(victim, &fsm.SettingUpsertRequest{Key: "lost"}); err == nil {
			t.Fatalf("node %d committed a write while cut off", victim)
		}
		c.Heal()
	}
	c.EnsureSame()
	st := c.FSMs[0].State()
	for k, v := range acked {
		if _, s, err := st.Setting(nil, k); err != nil || s == nil || s.Value != v {
			t.Fatalf("acknowledged write %s missing: %v %v", k, s, err)
		}
	}
	if _, s, _ := st.Setting(nil, "lost"); s != nil {
		t.Fatal("a write from a cut-off node was applied")
	}
	t.Logf("%d acknowledged writes on all five nodes", len(acked))
}
