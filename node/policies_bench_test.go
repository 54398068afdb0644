package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/storage"
)

// BenchmarkPolicyTick measures what the leader does every second for the
// schedules: read 100 policies and 10,000 guests from the state and
// evaluate them. Every policy is due (the worst case): a quarter select
// every guest, the others a tag, a tenant or a list; half are in a time
// zone.
func BenchmarkPolicyTick(b *testing.B) {
	f := fsm.New()
	var index uint64
	apply := func(cmd fsm.Command) {
		index++
		data, err := fsm.Encode(cmd)
		if err != nil {
			b.Fatal(err)
		}
		if res, ok := f.Apply(&raft.Log{Index: index, Data: data}).(*fsm.Result); ok && res.Err != nil {
			b.Fatal(res.Err)
		}
	}
	apply(&fsm.TenantCreateRequest{Tenant: fsm.Tenant{ID: "acme"}})
	sync := &fsm.InventorySyncRequest{}
	for i := range 10000 {
		g := fsm.InvGuest{VMID: 100 + i, Kind: fsm.GuestKindVM, Node: fmt.Sprintf("pve%d", i%64), Name: fmt.Sprintf("vm-%d", i),
			Status: "running", Tags: []string{fmt.Sprintf("app%d", i%50), "prod"}}
		if i%3 == 0 {
			g.Tenant = "acme"
		}
		sync.Guests = append(sync.Guests, g)
	}
	apply(sync)
	for i := range 100 {
		p := fsm.StoragePolicy{ID: fmt.Sprintf("p%d", i), Kind: fsm.PolicyKindSnapshot, Schedule: "*:0/15", Keep: storage.Keep{Last: 4}}
		if i%2 == 1 {
			p.Timezone = "Europe/Berlin" // half evaluated in a zone
		}
		switch i % 4 {
		case 0:
			p.Selector.All = true
		case 1:
			p.Selector.Tags = []string{fmt.Sprintf("app%d", i%50)}
		case 2:
			p.Selector.Tenant = "acme"
		default:
			p.Selector.VMIDs = []int{100 + i, 200 + i, 300 + i}
		}
		apply(&fsm.StoragePolicyPutRequest{Policy: p, Create: true})
	}
	now := time.Date(2026, 11, 26, 6, 30, 0, 0, time.UTC)
	b.ResetTimer()
	for b.Loop() {
		in, _, due, err := duePolicies(f.State(), now, nil)
		if err != nil || !due {
			b.Fatal(err, due)
		}
		guests, _, err := policyGuests(f.State())
		if err != nil {
			b.Fatal(err)
		}
		if due := storage.Evaluate(in, guests, now, policyGrace); len(due) != 100 {
			b.Fatalf("%d policies due, want 100", len(due))
		}
	}
}
