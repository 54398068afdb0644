package fsm

import (
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/ipam"
	"github.com/moxxie/moxxie/quota"
)

// Capacity: overcommit policies for the cluster ("default") and for
// groups of nodes, and an hourly history of what each node has allocated,
// from which the API forecasts when it fills up. The history is sampled by
// the metering tick that enters a new hour and kept for
// capacityRetention.

// Table names of capacity.
const (
	tableCapacityPolicies = "capacity_policies"
	tableCapacitySamples  = "capacity_samples"
)

// DefaultPolicyID names the policy of nodes in no group.
const DefaultPolicyID = "default"

// capacityRetention is how long allocation samples are kept (ms).
const capacityRetention = 90 * quota.DayMillis

// CapacityPolicy is the overcommit policy of a group of nodes, or of every
// node in no group (ID "default", without Nodes).
type CapacityPolicy struct {
	ID    string   `json:"id"`
	Nodes []string `json:"nodes,omitempty"`
	quota.Policy
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
	UpdatedAt   Timestamp `json:"updated_at"`
}

// CapacitySample is what one node had allocated at the start of an hour.
type CapacitySample struct {
	// Key is the zero-padded hour and the node, so samples sort by time.
	Key       string         `json:"-" codec:"Key"`
	Node      string         `json:"node"`
	Hour      int64          `json:"hour"`
	Allocated quota.Capacity `json:"allocated"`
}

func sampleKey(hour int64, node string) string { return fmt.Sprintf("%016d/%s", hour, node) }

// CapacityPolicyPutRequest creates or replaces a policy.
type CapacityPolicyPutRequest struct {
	WriteMeta
	Policy CapacityPolicy
}

// CapacityPolicyDeleteRequest deletes a policy; its nodes fall back to
// the default one.
type CapacityPolicyDeleteRequest struct {
	WriteMeta
	ID string
}

// Type returns CapacityPolicyPutType.
func (*CapacityPolicyPutRequest) Type() MessageType { return CapacityPolicyPutType }

// Type returns CapacityPolicyDeleteType.
func (*CapacityPolicyDeleteRequest) Type() MessageType { return CapacityPolicyDeleteType }

// Validate checks the policy: the default one names no nodes, a group
// names at least one, each once.
func (r *CapacityPolicyPutRequest) Validate() error {
	p := &r.Policy
	if err := checkName("id", p.ID); err != nil {
		return err
	}
	if err := p.Policy.Validate(); err != nil {
		return fieldErrf("policy", ErrInvalid, "%v", err)
	}
	switch {
	case p.ID == DefaultPolicyID && len(p.Nodes) > 0:
		return fieldErrf("nodes", ErrInvalid, "the default policy applies to every node in no group; it names no nodes")
	case p.ID != DefaultPolicyID && len(p.Nodes) == 0:
		return fieldErrf("nodes", ErrInvalid, "a node group needs at least one node")
	}
	seen := map[string]bool{}
	for _, n := range p.Nodes {
		if !vmNameRe.MatchString(n) {
			return fieldErrf("nodes", ErrInvalid, "%q is not a node name", n)
		}
		if seen[n] {
			return fieldErrf("nodes", ErrInvalid, "node %s is listed twice", n)
		}
		seen[n] = true
	}
	return nil
}

func applyCapacityPolicyPut(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*CapacityPolicyPutRequest)
	p := req.Policy
	p.Nodes = slices.Sorted(slices.Values(p.Nodes))
	it, err := txn.Get(tableCapacityPolicies, "id")
	if err != nil {
		return nil, err
	}
	p.CreateIndex = index
	for raw := it.Next(); raw != nil; raw = it.Next() {
		other := raw.(*CapacityPolicy)
		if other.ID == p.ID {
			p.CreateIndex = other.CreateIndex
			continue
		}
		for _, n := range p.Nodes {
			if slices.Contains(other.Nodes, n) {
				return nil, fieldErrf("nodes", ErrConflict, "node %s is in group %s already", n, other.ID)
			}
		}
	}
	p.ModifyIndex, p.UpdatedAt = index, Timestamp(req.Now)
	if err := insert(txn, tableCapacityPolicies, index, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func applyCapacityPolicyDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	return removeByID[CapacityPolicy](txn, index, tableCapacityPolicies, "capacity policy", c.(*CapacityPolicyDeleteRequest).ID)
}

// NodeAllocations returns what each node has allocated: the guests the
// inventory reports on it (not templates, not gone) and the VM creates in
// flight placed on it.
func NodeAllocations(txn *memdb.Txn) (map[string]quota.Capacity, error) {
	out := map[string]quota.Capacity{}
	it, err := txn.Get(tableInvGuests, "id")
	if err != nil {
		return nil, err
	}
	const gib = 1 << 30
	for raw := it.Next(); raw != nil; raw = it.Next() {
		g := raw.(*InvGuest)
		if g.Template || g.Gone {
			continue
		}
		out[g.Node] = out[g.Node].Add(quota.Capacity{VCPUs: int64(g.MaxCPU), MemoryMiB: int64(g.MaxMem >> 20), DiskGiB: int64((g.MaxDisk + gib - 1) / gib)})
	}
	oit, err := txn.Get(tableOperations, "active", true)
	if err != nil {
		return nil, err
	}
	for raw := oit.Next(); raw != nil; raw = oit.Next() {
		op := raw.(*Operation)
		if op.Kind != OpVMCreate || op.Spec == nil {
			continue
		}
		// A create in flight counts until its guest is in the inventory.
		if op.VMID != 0 {
			if g, err := txn.First(tableInvGuests, "id", op.VMID); err != nil {
				return nil, err
			} else if g != nil && !g.(*InvGuest).Gone {
				continue
			}
		}
		s := op.Spec
		if s.Node == "" {
			continue
		}
		out[s.Node] = out[s.Node].Add(quota.Capacity{VCPUs: int64(s.Cores), MemoryMiB: int64(s.MemoryMiB), DiskGiB: int64(s.DiskGiB)})
	}
	return out, nil
}

// admitPlacement checks a vm.create against the allocatable capacity the
// leader stamped for its node: what the node has allocated (the inventory
// and the creates in flight) plus the VM must fit, resource by resource.
func admitPlacement(txn *memdb.Txn, op *Operation) error {
	if op.Kind != OpVMCreate || op.Spec == nil || op.NodeAllocatable == nil || op.Spec.Node == "" {
		return nil
	}
	alloc, err := NodeAllocations(txn)
	if err != nil {
		return err
	}
	have, limit, s := alloc[op.Spec.Node], *op.NodeAllocatable, op.Spec
	for _, r := range []struct {
		name             string
		req, have, limit int64
	}{
		{"vcpus", int64(s.Cores), have.VCPUs, limit.VCPUs},
		{"memory_mib", int64(s.MemoryMiB), have.MemoryMiB, limit.MemoryMiB},
		{"disk_gib", int64(s.DiskGiB), have.DiskGiB, limit.DiskGiB},
	} {
		if r.req > 0 && r.have+r.req > r.limit {
			return fieldErrf("node", ipam.ErrExhausted, "node %s has room for %d more %s under its capacity policy; %d requested",
				s.Node, max(0, r.limit-r.have), r.name, r.req)
		}
	}
	return nil
}

// sampleCapacity records each node's allocation at hour, zero for a node
// with nothing allocated, and drops samples older than the retention.
func sampleCapacity(txn *memdb.Txn, index uint64, hour int64) error {
	alloc, err := NodeAllocations(txn)
	if err != nil {
		return err
	}
	nit, err := txn.Get(tableInvNodes, "id")
	if err != nil {
		return err
	}
	for raw := nit.Next(); raw != nil; raw = nit.Next() {
		if n := raw.(*InvNode); !n.Gone {
			if _, ok := alloc[n.Name]; !ok {
				alloc[n.Name] = quota.Capacity{}
			}
		}
	}
	for _, node := range slices.Sorted(maps.Keys(alloc)) {
		s := &CapacitySample{Key: sampleKey(hour, node), Node: node, Hour: hour, Allocated: alloc[node]}
		if err := insert(txn, tableCapacitySamples, index, s); err != nil {
			return err
		}
	}
	it, err := txn.Get(tableCapacitySamples, "id")
	if err != nil {
		return err
	}
	var old []any
	for raw := it.Next(); raw != nil && raw.(*CapacitySample).Hour < hour-capacityRetention; raw = it.Next() {
		old = append(old, raw)
	}
	for _, raw := range old {
		if err := remove(txn, tableCapacitySamples, index, raw); err != nil {
			return err
		}
	}
	return nil
}

// capacityTables returns the capacity part of the memdb schema.
func capacityTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableCapacityPolicies: {Name: tableCapacityPolicies, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		}},
		tableCapacitySamples: {Name: tableCapacitySamples, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
		}},
	}
}

// CapacityPolicies lists the policies by ID.
func (s *Store) CapacityPolicies(ws memdb.WatchSet) (uint64, []*CapacityPolicy, error) {
	return list[*CapacityPolicy](s, ws, tableCapacityPolicies, "id")
}

// CapacityView is what placement and the capacity report read, in one
// transaction: the nodes, what each has allocated, the policies and the
// allocation samples from since (unix ms) on.
type CapacityView struct {
	Index     uint64
	Nodes     []*InvNode
	Storage   []*InvStorage
	Allocated map[string]quota.Capacity
	Policies  []*CapacityPolicy
	Samples   []*CapacitySample
}

// Capacity reads a CapacityView; samples before since are left out, and
// none are read when since is negative.
func (s *Store) Capacity(since int64) (*CapacityView, error) {
	txn := s.db.Txn(false)
	v := &CapacityView{Index: s.tableIndex(txn, tableInvNodes, tableInvGuests, tableOperations, tableCapacityPolicies, tableCapacitySamples)}
	var err error
	if v.Allocated, err = NodeAllocations(txn); err != nil {
		return nil, err
	}
	for _, t := range []struct {
		table string
		add   func(any)
	}{
		{tableInvNodes, func(raw any) {
			if n := raw.(*InvNode); !n.Gone {
				v.Nodes = append(v.Nodes, n)
			}
		}},
		{tableInvStorage, func(raw any) {
			if st := raw.(*InvStorage); !st.Gone {
				v.Storage = append(v.Storage, st)
			}
		}},
		{tableCapacityPolicies, func(raw any) { v.Policies = append(v.Policies, raw.(*CapacityPolicy)) }},
	} {
		it, err := txn.Get(t.table, "id")
		if err != nil {
			return nil, err
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			t.add(raw)
		}
	}
	if since >= 0 {
		it, err := txn.LowerBound(tableCapacitySamples, "id", sampleKey(since, ""))
		if err != nil {
			return nil, err
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			v.Samples = append(v.Samples, raw.(*CapacitySample))
		}
	}
	return v, nil
}
