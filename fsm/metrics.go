package fsm

import (
	"math/big"

	"github.com/moxxie/moxxie/ipam"
	"github.com/moxxie/moxxie/quota"
)

// StateMetrics is what a server's metrics read from its store at scrape
// time: utilizations, counts and versions, read in one transaction,
// without copying the objects they count.
type StateMetrics struct {
	// Prefixes holds the utilization of every prefix: addresses of an
	// active prefix, child blocks of a container.
	Prefixes []PrefixMetric
	// Pools holds the utilization of every VLAN and VNI pool.
	Pools []PoolMetric
	// Addresses counts the addresses by status (active, reserved,
	// deprecated), and those held in quarantine after release as
	// "quarantined".
	Addresses map[string]int
	// Scopes holds every tenant and project with a quota or holding
	// something: its usage and its limits.
	Scopes []ScopeMetric
	// InventoryLastSync is when the last inventory sync reached the
	// platform (0: never).
	InventoryLastSync Timestamp
	// InventoryStale is set while the platform cannot be read.
	InventoryStale bool
	// Nodes, Guests and Storage count the inventory objects present on the
	// platform and gone from it.
	Nodes, Guests, Storage PresentGone
	// SDNCommitted is the newest committed SDN version (0: none).
	SDNCommitted uint64
	// SDNHosts counts the enrolled hosts by where they stand: "applied"
	// (they hold their target version), "failed" (their last report
	// failed) or "pending".
	SDNHosts map[string]int
	// SDNRollouts counts the rollouts by phase.
	SDNRollouts map[string]int
	// AuditSeq is the sequence number of the last audit entry: the length
	// of the chain since the first entry, truncated ones included.
	AuditSeq uint64
	// StoragePools holds every storage pool's use and capacity.
	StoragePools []StoragePoolMetric
	// Policies holds every snapshot and backup policy's run state.
	Policies []PolicyMetric
}

// StoragePoolMetric is one storage pool's use.
type StoragePoolMetric struct {
	ID          string
	Used, Total float64
}

// PolicyMetric is one policy's run state: when its last run that
// succeeded finished (0: none), and how many slots it skipped.
type PolicyMetric struct {
	ID, Kind    string
	LastSuccess Timestamp
	Skipped     int
}

// PrefixMetric is a prefix's utilization; Used and Size are exact below
// 2^53 and close above.
type PrefixMetric struct {
	ID, Prefix, VRF string
	Used, Size      float64
}

// PoolMetric is a pool's utilization.
type PoolMetric struct {
	ID, Name, Kind string
	Used, Size     float64
}

// ScopeMetric is a tenant's or project's ("tenant/project") usage and
// quota. Resources without a limit are unlimited.
type ScopeMetric struct {
	Scope  string
	Usage  quota.Amounts
	Limits quota.Limits
}

// PresentGone counts inventory objects.
type PresentGone struct{ Present, Gone int }

func (pg *PresentGone) add(gone bool) {
	if gone {
		pg.Gone++
	} else {
		pg.Present++
	}
}

// bigFloat returns n as a float64.
func bigFloat(n *big.Int) float64 {
	f, _ := new(big.Float).SetInt(n).Float64()
	return f
}

// StateMetrics reads the metrics of the state in one read transaction.
func (s *Store) StateMetrics() (*StateMetrics, error) {
	txn := s.db.Txn(false)
	m := &StateMetrics{
		Addresses:   map[string]int{},
		SDNHosts:    map[string]int{},
		SDNRollouts: map[string]int{},
	}
	each := func(table string, fn func(raw any)) error { return eachObject(txn, table, fn) }

	// IPAM.
	err := each(tablePrefixes, func(raw any) {
		p := raw.(*Prefix)
		var sp ipam.Space
		var id string
		if p.Status == PrefixContainer {
			sp, id = blockSpace(txn, p), blockSpaceID(p.ID)
		} else {
			sp, id = addrSpace(txn, p), addrSpaceID(p.ID)
		}
		m.Prefixes = append(m.Prefixes, PrefixMetric{ID: p.ID, Prefix: p.Prefix, VRF: p.VRF,
			Used: bigFloat(sp.UsedExact(txnRuns{txn, id})), Size: bigFloat(sp.ExactSize())})
	})
	if err != nil {
		return nil, err
	}
	err = each(tablePools, func(raw any) {
		p := raw.(*Pool)
		pm := PoolMetric{ID: p.ID, Name: p.Name, Kind: p.Kind}
		if base, err := poolSpace(p); err == nil {
			sp := loadSpace(txn, poolSpaceID(p.ID), base)
			pm.Used, pm.Size = bigFloat(sp.UsedExact(txnRuns{txn, poolSpaceID(p.ID)})), bigFloat(sp.ExactSize())
		}
		m.Pools = append(m.Pools, pm)
	})
	if err != nil {
		return nil, err
	}
	for _, st := range []string{AddressActive, AddressReserved, AddressDeprecated} {
		m.Addresses[st] = 0
	}
	if err := each(tableAddresses, func(raw any) { m.Addresses[raw.(*Address).Status]++ }); err != nil {
		return nil, err
	}
	n := 0
	if err := each(tableHolds, func(any) { n++ }); err != nil {
		return nil, err
	}
	m.Addresses["quarantined"] = n

	// Quotas: every tenant and project, with its limits, and every scope
	// holding something.
	scopes := map[string]int{} // index in m.Scopes
	scope := func(id string) *ScopeMetric {
		i, ok := scopes[id]
		if !ok {
			i = len(m.Scopes)
			scopes[id] = i
			m.Scopes = append(m.Scopes, ScopeMetric{Scope: id})
		}
		return &m.Scopes[i]
	}
	if err := each(tableTenants, func(raw any) { t := raw.(*Tenant); scope(t.ID).Limits = t.Quota }); err != nil {
		return nil, err
	}
	if err := each(tableProjects, func(raw any) { p := raw.(*Project); scope(p.ID).Limits = p.Quota }); err != nil {
		return nil, err
	}
	if err := each(tableUsage, func(raw any) { u := raw.(*Usage); scope(u.Scope).Usage = u.Amounts }); err != nil {
		return nil, err
	}

	// Inventory.
	inv := invState(txn)
	m.InventoryLastSync, m.InventoryStale = inv.LastSync, inv.Stale
	if err := each(tableInvNodes, func(raw any) { m.Nodes.add(raw.(*InvNode).Gone) }); err != nil {
		return nil, err
	}
	if err := each(tableInvGuests, func(raw any) { m.Guests.add(raw.(*InvGuest).Gone) }); err != nil {
		return nil, err
	}
	if err := each(tableInvStorage, func(raw any) { m.Storage.add(raw.(*InvStorage).Gone) }); err != nil {
		return nil, err
	}

	// SDN.
	if m.SDNCommitted, err = committedVersion(txn); err != nil {
		return nil, err
	}
	for _, st := range []string{SDNStateApplied, SDNStateFailed, "pending"} {
		m.SDNHosts[st] = 0
	}
	err = each(tableSDNHosts, func(raw any) {
		st := raw.(*sdnHostRow).State
		switch {
		case st.State == SDNStateFailed:
			m.SDNHosts[SDNStateFailed]++
		case st.Applied == st.Target:
			m.SDNHosts[SDNStateApplied]++
		default:
			m.SDNHosts["pending"]++
		}
	})
	if err != nil {
		return nil, err
	}
	for _, ph := range []string{SDNPhasePreparing, SDNPhaseCommitted, SDNPhaseAborted} {
		m.SDNRollouts[ph] = 0
	}
	if err := each(tableSDNRollouts, func(raw any) { m.SDNRollouts[raw.(*SDNRollout).Phase]++ }); err != nil {
		return nil, err
	}

	// Storage.
	pools, err := poolsOf(txn)
	if err != nil {
		return nil, err
	}
	for _, p := range pools {
		m.StoragePools = append(m.StoragePools, StoragePoolMetric{ID: p.ID, Used: float64(p.Used), Total: float64(p.Total)})
	}
	err = each(tableStoragePolicies, func(raw any) {
		p := raw.(*StoragePolicy)
		pm := PolicyMetric{ID: p.ID, Kind: p.Kind, Skipped: p.Skipped}
		if op, _ := txn.First(tableOperations, "id", p.LastRun); op != nil && op.(*Operation).Status == OpSucceeded {
			pm.LastSuccess = op.(*Operation).FinishedAt
		}
		m.Policies = append(m.Policies, pm)
	})
	if err != nil {
		return nil, err
	}

	// Audit.
	head, err := auditHead(txn)
	if err != nil {
		return nil, err
	}
	m.AuditSeq = head.Seq
	return m, nil
}
