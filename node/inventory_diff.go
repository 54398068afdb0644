package node

import (
	"slices"
	"strings"

	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/provider"
)

// tenantTagPrefix marks the tag that assigns a guest to a tenant:
// "tenant.acme" puts the guest in tenant acme; projectTagPrefix to a
// project of it: "project.web".
const (
	tenantTagPrefix  = "tenant."
	projectTagPrefix = "project."
)

// usageStep is the fraction of a maximum by which usage (node CPU, memory
// and disk; storage use) must move before sync records it. Usage
// fluctuates all the time; recording every wobble would turn a quiet
// cluster into a stream of log entries.
const usageStep = 0.05

// inventoryDiff compares what the platform reports (seen) with what the
// state records (rec) and returns the changes as one sync request, which
// is empty when nothing significant changed.
func inventoryDiff(rec *fsm.InventoryRecorded, seen *provider.Inventory) *fsm.InventorySyncRequest {
	req := &fsm.InventorySyncRequest{}
	nodes := make(map[string]bool, len(seen.Nodes))
	for i := range seen.Nodes {
		n := &seen.Nodes[i]
		if nodes[n.Name] {
			continue
		}
		nodes[n.Name] = true
		old := rec.Nodes[n.Name]
		v := invNode(n, old)
		if old == nil || !v.SameAs(old) {
			req.Nodes = append(req.Nodes, v)
		}
	}
	for name, old := range rec.Nodes {
		if !old.Gone && !nodes[name] {
			req.GoneNodes = append(req.GoneNodes, name)
		}
	}
	guests := make(map[int]bool, len(seen.Guests))
	for i := range seen.Guests {
		g := &seen.Guests[i]
		if guests[g.VMID] {
			continue
		}
		guests[g.VMID] = true
		v := invGuest(g)
		if old := rec.Guests[g.VMID]; old == nil || !v.SameAs(old) {
			req.Guests = append(req.Guests, v)
		}
	}
	for id, old := range rec.Guests {
		if !old.Gone && !guests[id] {
			req.GoneGuests = append(req.GoneGuests, id)
		}
	}
	storage := make(map[string]bool, len(seen.Storage))
	for i := range seen.Storage {
		st := &seen.Storage[i]
		id := st.Node + "/" + st.Name
		if storage[id] {
			continue
		}
		storage[id] = true
		old := rec.Storage[id]
		v := invStorage(st, old)
		if old == nil || !v.SameAs(old) {
			req.Storage = append(req.Storage, v)
		}
	}
	for id, old := range rec.Storage {
		if !old.Gone && !storage[id] {
			req.GoneStorage = append(req.GoneStorage, id)
		}
	}
	// Map iteration order is random; the log should not be.
	slices.Sort(req.GoneNodes)
	slices.Sort(req.GoneGuests)
	slices.Sort(req.GoneStorage)
	return req
}

// splitSync cuts req into requests of at most max objects each, in the
// order nodes, storage, guests, so that a guest never arrives before its
// node.
func splitSync(req *fsm.InventorySyncRequest, max int) []*fsm.InventorySyncRequest {
	out := []*fsm.InventorySyncRequest{{}}
	room := func() *fsm.InventorySyncRequest {
		if cur := out[len(out)-1]; cur.Len() < max {
			return cur
		}
		out = append(out, &fsm.InventorySyncRequest{})
		return out[len(out)-1]
	}
	for _, v := range req.Nodes {
		c := room()
		c.Nodes = append(c.Nodes, v)
	}
	for _, v := range req.GoneNodes {
		c := room()
		c.GoneNodes = append(c.GoneNodes, v)
	}
	for _, v := range req.Storage {
		c := room()
		c.Storage = append(c.Storage, v)
	}
	for _, v := range req.GoneStorage {
		c := room()
		c.GoneStorage = append(c.GoneStorage, v)
	}
	for _, v := range req.Guests {
		c := room()
		c.Guests = append(c.Guests, v)
	}
	for _, v := range req.GoneGuests {
		c := room()
		c.GoneGuests = append(c.GoneGuests, v)
	}
	return out
}

// damp keeps the recorded usage when the observed one is within a step of
// it.
func damp(seen, recorded, maximum uint64) uint64 {
	step := uint64(float64(maximum) * usageStep)
	if seen > recorded && seen-recorded <= step || recorded >= seen && recorded-seen <= step {
		return recorded
	}
	return seen
}

func invNode(n *provider.Node, old *fsm.InvNode) fsm.InvNode {
	v := fsm.InvNode{
		Name: n.Name, Status: n.Status, MaxCPU: n.MaxCPU, MaxMem: n.MaxMem, MaxDisk: n.MaxDisk,
		CPU: n.CPU, Mem: n.Mem, Disk: n.Disk,
	}
	if old != nil && !old.Gone {
		if d := v.CPU - old.CPU; d <= usageStep && d >= -usageStep {
			v.CPU = old.CPU
		}
		v.Mem = damp(v.Mem, old.Mem, v.MaxMem)
		v.Disk = damp(v.Disk, old.Disk, v.MaxDisk)
	}
	return v
}

func invGuest(g *provider.Guest) fsm.InvGuest {
	v := fsm.InvGuest{
		VMID: g.VMID, Kind: string(g.Kind), Node: g.Node, Name: g.Name, Status: g.Status, Template: g.Template,
		Pool: g.Pool, Lock: g.Lock, MaxCPU: g.MaxCPU, MaxMem: g.MaxMem, MaxDisk: g.MaxDisk,
	}
	if len(g.Tags) > 0 {
		v.Tags = slices.Clone(g.Tags)
		slices.Sort(v.Tags)
		v.Tags = slices.Compact(v.Tags)
	}
	for _, t := range v.Tags {
		if name, ok := strings.CutPrefix(t, tenantTagPrefix); ok && name != "" && v.Tenant == "" {
			v.Tenant = name
		}
		if name, ok := strings.CutPrefix(t, projectTagPrefix); ok && name != "" && v.Project == "" {
			v.Project = name
		}
	}
	if v.Tenant == "" {
		v.Project = ""
	}
	return v
}

func invStorage(s *provider.Storage, old *fsm.InvStorage) fsm.InvStorage {
	v := fsm.InvStorage{
		ID: s.Node + "/" + s.Name, Node: s.Node, Storage: s.Name, Type: s.Type, Shared: s.Shared,
		Status: s.Status, Used: s.Used, Total: s.Total,
	}
	if len(s.Content) > 0 {
		v.Content = slices.Clone(s.Content)
		slices.Sort(v.Content)
	}
	if old != nil && !old.Gone {
		v.Used = damp(v.Used, old.Used, v.Total)
	}
	return v
}
