package node

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/provider"
)

// recorded applies req to a fresh FSM and returns what it records.
func recorded(t testing.TB, reqs ...*fsm.InventorySyncRequest) *fsm.InventoryRecorded {
	t.Helper()
	f := fsm.New()
	for i, req := range reqs {
		req.Now = int64(i + 1)
		buf, err := fsm.Encode(req)
		if err != nil {
			t.Fatal(err)
		}
		if r := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: buf}).(*fsm.Result); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	rec, err := f.State().InventoryRecorded()
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func baseInventory() *provider.Inventory {
	return &provider.Inventory{
		Nodes: []provider.Node{
			{Name: "pve1", Status: "online", MaxCPU: 16, MaxMem: 64 << 30, MaxDisk: 1 << 40, CPU: 0.10, Mem: 10 << 30, Disk: 100 << 30},
			{Name: "pve2", Status: "online", MaxCPU: 16, MaxMem: 64 << 30, MaxDisk: 1 << 40},
		},
		Guests: []provider.Guest{
			{GuestRef: provider.GuestRef{Node: "pve1", VMID: 100, Kind: provider.KindVM}, Name: "web", Status: "running", Tags: []string{"web", "tenant.acme"}, CPU: 0.5, Mem: 1 << 30},
			{GuestRef: provider.GuestRef{Node: "pve2", VMID: 200, Kind: provider.KindContainer}, Name: "db", Status: "stopped"},
		},
		Storage: []provider.Storage{{Node: "pve1", Name: "local", Type: "dir", Content: []string{"iso", "backup"}, Status: "available", Used: 10 << 30, Total: 100 << 30}},
	}
}

func TestInventoryDiff(t *testing.T) {
	first := inventoryDiff(recorded(t), baseInventory())
	if len(first.Nodes) != 2 || len(first.Guests) != 2 || len(first.Storage) != 1 {
		t.Fatalf("first sync: %+v", first)
	}
	if g := first.Guests[0]; g.Tenant != "acme" || g.Tags[0] != "tenant.acme" {
		t.Fatalf("tenant from tag: %+v", g)
	}
	rec := recorded(t, first)

	cases := []struct {
		name   string
		change func(inv *provider.Inventory)
		check  func(t *testing.T, req *fsm.InventorySyncRequest)
	}{
		{"nothing changed", func(*provider.Inventory) {}, func(t *testing.T, req *fsm.InventorySyncRequest) {
			if req.Len() != 0 {
				t.Fatalf("want empty, got %+v", req)
			}
		}},
		{"guest usage and tag order do not count", func(inv *provider.Inventory) {
			inv.Guests[0].CPU, inv.Guests[0].Mem, inv.Guests[0].Uptime = 0.9, 3<<30, 999
			inv.Guests[0].Tags = []string{"tenant.acme", "web"}
		}, func(t *testing.T, req *fsm.InventorySyncRequest) {
			if req.Len() != 0 {
				t.Fatalf("want empty, got %+v", req)
			}
		}},
		{"node usage within a step does not count", func(inv *provider.Inventory) {
			inv.Nodes[0].CPU, inv.Nodes[0].Mem = 0.12, 12<<30
		}, func(t *testing.T, req *fsm.InventorySyncRequest) {
			if req.Len() != 0 {
				t.Fatalf("want empty, got %+v", req)
			}
		}},
		{"node usage beyond a step counts", func(inv *provider.Inventory) {
			inv.Nodes[0].Mem = 40 << 30
		}, func(t *testing.T, req *fsm.InventorySyncRequest) {
			if len(req.Nodes) != 1 || req.Nodes[0].Mem != 40<<30 || len(req.Guests) != 0 {
				t.Fatalf("got %+v", req)
			}
		}},
		{"one guest stopped", func(inv *provider.Inventory) {
			inv.Guests[0].Status = "stopped"
		}, func(t *testing.T, req *fsm.InventorySyncRequest) {
			if len(req.Guests) != 1 || req.Guests[0].VMID != 100 || len(req.Nodes)+len(req.Storage) != 0 {
				t.Fatalf("got %+v", req)
			}
		}},
		{"guest, node and storage gone", func(inv *provider.Inventory) {
			inv.Guests = inv.Guests[:1]
			inv.Nodes = inv.Nodes[:1]
			inv.Storage = nil
		}, func(t *testing.T, req *fsm.InventorySyncRequest) {
			if fmt.Sprint(req.GoneGuests, req.GoneNodes, req.GoneStorage) != "[200] [pve2] [pve1/local]" || len(req.Guests) != 0 {
				t.Fatalf("got %+v", req)
			}
		}},
		{"new guest", func(inv *provider.Inventory) {
			inv.Guests = append(inv.Guests, provider.Guest{GuestRef: provider.GuestRef{Node: "pve2", VMID: 300, Kind: provider.KindVM}})
		}, func(t *testing.T, req *fsm.InventorySyncRequest) {
			if len(req.Guests) != 1 || req.Guests[0].VMID != 300 {
				t.Fatalf("got %+v", req)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inv := baseInventory()
			tc.change(inv)
			tc.check(t, inventoryDiff(rec, inv))
		})
	}
}

func TestSplitSync(t *testing.T) {
	req := &fsm.InventorySyncRequest{GoneGuests: []int{1, 2, 3}, Nodes: make([]fsm.InvNode, 2)}
	parts := splitSync(req, 2)
	if len(parts) != 3 || len(parts[0].Nodes) != 2 || len(parts[1].GoneGuests) != 2 || len(parts[2].GoneGuests) != 1 {
		t.Fatalf("parts: %+v", parts)
	}
	if parts := splitSync(&fsm.InventorySyncRequest{}, 2); len(parts) != 1 {
		t.Fatalf("empty request: %d parts", len(parts))
	}
}

func BenchmarkInventoryDiff10k(b *testing.B) {
	inv := &provider.Inventory{}
	for i := range 64 {
		inv.Nodes = append(inv.Nodes, provider.Node{Name: fmt.Sprintf("pve%d", i), Status: "online", MaxMem: 1 << 40})
	}
	for i := range 10000 {
		inv.Guests = append(inv.Guests, provider.Guest{
			GuestRef: provider.GuestRef{Node: fmt.Sprintf("pve%d", i%64), VMID: 100 + i, Kind: provider.KindVM},
			Name:     fmt.Sprintf("vm%d", i), Status: "running", Tags: []string{"a", "b"}, MaxMem: 1 << 31,
		})
	}
	rec := recorded(b, inventoryDiff(recorded(b), inv))
	b.ReportAllocs()
	for b.Loop() {
		if req := inventoryDiff(rec, inv); req.Len() != 0 {
			b.Fatal("changes")
		}
	}
}
