package fsm

import (
	"testing"

	"github.com/moxxie/moxxie/ipam"
	"github.com/moxxie/moxxie/quota"
)

// TestFSM_PlacementAdmission applies VM creates placed on one node at the
// same time: each fits the node's policy alone, and Apply admits only
// those that fit together with what the node holds.
func TestFSM_PlacementAdmission(t *testing.T) {
	f := New()
	applyOK(t, f, 1, &InventorySyncRequest{
		Nodes:  []InvNode{{Name: "pve1", Status: "online", MaxCPU: 2}},
		Guests: []InvGuest{{VMID: 100, Kind: GuestKindVM, Node: "pve1", Status: "running", MaxCPU: 4, MaxMem: 4 << 30}},
	})
	create := func(id string, cores int) *OperationCreateRequest {
		return &OperationCreateRequest{Op: Operation{ID: id, Kind: OpVMCreate, Node: "pve1",
			NodeAllocatable: &quota.Capacity{VCPUs: 8, MemoryMiB: 8192, DiskGiB: quota.MaxLimit},
			Spec:            &VMSpec{Name: id, Node: "pve1", Cores: cores, MemoryMiB: 1024, TemplateVMID: 9000, DiskGiB: 10}}}
	}
	rs := applyBatch(t, f, 2, mustEncode(t, create("a", 2)), mustEncode(t, create("b", 2)), mustEncode(t, create("c", 1)))
	if rs[0].Err != nil || rs[1].Err != nil {
		t.Fatalf("the first two fit (4+2+2 of 8 vCPUs): %v, %v", rs[0].Err, rs[1].Err)
	}
	requireErrorIs(t, rs[2].Err, ipam.ErrExhausted)
	// A create that ended, or whose guest the inventory shows, counts once.
	applyOK(t, f, 3, &OperationUpdateRequest{ID: "a", Status: str(OpFailed), Error: &OpError{Code: "failed", Message: "x"}})
	applyOK(t, f, 4, create("c", 1))
	// Without a stamped allocatable (older commands) nothing is checked.
	big := create("d", 64)
	big.Op.NodeAllocatable = nil
	applyOK(t, f, 5, big)
}
