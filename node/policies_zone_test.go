package node

import (
	"fmt"
	"testing"
	"time"
	_ "time/tzdata" // the zone below on any test machine

	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/storage"
)

// TestDuePolicies_Timezone: the leader evaluates a policy in its time
// zone, and leaves out, and reports, one whose zone it cannot load.
func TestDuePolicies_Timezone(t *testing.T) {
	f := fsm.New()
	for i, p := range []fsm.StoragePolicy{
		{ID: "tokyo", Schedule: "02:00", Timezone: "Asia/Tokyo"},
		{ID: "nowhere", Schedule: "02:00", Timezone: "Mars/Olympus_Mons"}, // a name of the right form, in no zone data
	} {
		p.Kind, p.Selector, p.Keep = fsm.PolicyKindSnapshot, storage.Selector{All: true}, storage.Keep{Last: 1}
		data, err := fsm.Encode(&fsm.StoragePolicyPutRequest{Policy: p, Create: true})
		if err != nil {
			t.Fatal(err)
		}
		if res, ok := f.Apply(&raft.Log{Index: uint64(i + 1), Data: data}).(*fsm.Result); !ok || res.Err != nil {
			t.Fatalf("policy %s: %+v", p.ID, res)
		}
	}
	now := time.Date(2026, 11, 26, 17, 0, 30, 0, time.UTC) // 02:00:30 in Tokyo
	bad := map[string]error{}
	in, _, due, err := duePolicies(f.State(), now, func(id string, err error) { bad[id] = err })
	if err != nil || !due || len(in) != 1 || in[0].ID != "tokyo" || in[0].Location == nil || in[0].Location.String() != "Asia/Tokyo" {
		t.Fatalf("due %v, policies %+v, error %v", due, in, err)
	}
	if len(bad) != 1 || bad["nowhere"] == nil {
		t.Errorf("unloadable zones reported: %v", bad)
	}
	got := storage.Evaluate(in, nil, now, policyGrace)
	if len(got) != 1 || !got[0].Slot.Equal(time.Date(2026, 11, 26, 17, 0, 0, 0, time.UTC)) {
		t.Errorf("evaluated %s", fmt.Sprint(got))
	}
}
