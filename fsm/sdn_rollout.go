package fsm

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/sdn"
)

// SDN rollouts: an apply compiles the intent into one plan per enrolled
// host, stores them all under the next version and starts a rollout that
// points every host's Target at it. Hosts apply their plan and report;
// when all have applied it the rollout commits and the version becomes
// every host's Committed one. A host that fails, an abort or the leader's
// deadline loop aborts the rollout instead and points every host back at
// the version it had: a two-phase change where the hosts themselves are
// the participants.
//
// Plans are immutable once stored: a version names the same plan on every
// server forever (until pruned), so an agent can hold "version N" and
// know exactly what it means.

// Rollout phases.
const (
	SDNPhasePreparing = "preparing"
	SDNPhaseCommitted = "committed"
	SDNPhaseAborted   = "aborted"
)

// States a host reports.
const (
	SDNStateApplied = "applied"
	SDNStateFailed  = "failed"
)

// Limits of SDN commands.
const (
	// sdnKeepRollouts is how many of the newest rollouts keep their
	// plans even when no host holds them any more.
	sdnKeepRollouts = 10
	maxSDNError     = 4096
	maxSDNDrift     = 256
	maxSDNDriftLine = 1024
)

// SDNRollout is one apply: the version it stored and how its hosts took
// it. Previous is each host's committed version when it started, where an
// abort points it back; Changes are each host's changes against that
// version (hosts without changes are left out); Prepared lists the hosts
// that reported the version applied.
type SDNRollout struct {
	ID          string                  `json:"id"`
	Version     uint64                  `json:"version"`
	Phase       string                  `json:"phase"`
	Hosts       []string                `json:"hosts"`
	Prepared    []string                `json:"prepared"`
	Previous    map[string]uint64       `json:"previous"`
	Changes     map[string][]sdn.Change `json:"changes"`
	Reason      string                  `json:"reason,omitempty"`
	Deadline    Timestamp               `json:"deadline"`
	CreatedAt   Timestamp               `json:"created_at"`
	DoneAt      Timestamp               `json:"done_at,omitempty"`
	CreateIndex uint64                  `json:"create_index"`
	ModifyIndex uint64                  `json:"modify_index"`
	// RequestID is the X-Request-ID of the sdn apply that started the
	// rollout; agents log it when they apply the version, so one request
	// ID ties the servers' and the hosts' logs together.
	RequestID string `json:"request_id,omitempty"`
}

// SDNHostState is where a host stands: Committed is the version of the
// last rollout it took part in that committed, Target the version it must
// hold now (the preparing rollout's, or Committed), Applied the version it
// last reported applied. State, Error, Drift and Actions are from its last
// report.
type SDNHostState struct {
	Host       string    `json:"host"`
	Committed  uint64    `json:"committed"`
	Target     uint64    `json:"target"`
	Applied    uint64    `json:"applied"`
	State      string    `json:"state,omitempty"`
	Error      string    `json:"error,omitempty"`
	Drift      []string  `json:"drift,omitempty"`
	ReportedAt Timestamp `json:"reported_at,omitempty"`
	Actions    int       `json:"actions,omitempty"`
}

// SDNApplyResult is the result of an apply: the rollout it started, or
// NoChange with the current committed version when every host's plan is
// what it holds already.
type SDNApplyResult struct {
	Rollout  *SDNRollout `json:"rollout,omitempty"`
	Version  uint64      `json:"version"`
	NoChange bool        `json:"no_change,omitempty"`
}

// SDNPlanView is what a host's agent must hold now: the plan of its
// Target version (empty, version 0, when it has none), with the rollout
// that version belongs to.
type SDNPlanView struct {
	Host      string   `json:"host"`
	Version   uint64   `json:"version"`
	Committed uint64   `json:"committed"`
	RolloutID string   `json:"rollout_id,omitempty"`
	Phase     string   `json:"phase,omitempty"`
	Plan      sdn.Plan `json:"plan"`
	// RequestID is the request ID of the sdn apply that started the
	// rollout (SDNRollout.RequestID).
	RequestID string `json:"request_id,omitempty"`
}

// SDNApplyRequest compiles the intent and starts a rollout of it with the
// leader-stamped ID and deadline.
type SDNApplyRequest struct {
	WriteMeta
	RolloutID string
	Deadline  Timestamp
}

// SDNReportRequest is a host's report of the plan version it holds.
type SDNReportRequest struct {
	WriteMeta
	Host    string
	Version uint64
	State   string
	Error   string
	Drift   []string
	Actions int
}

// SDNRolloutAbortRequest aborts a preparing rollout.
type SDNRolloutAbortRequest struct {
	WriteMeta
	RolloutID string
	Reason    string
}

// Type returns SDNApplyType.
func (*SDNApplyRequest) Type() MessageType { return SDNApplyType }

// Type returns SDNReportType.
func (*SDNReportRequest) Type() MessageType { return SDNReportType }

// Type returns SDNRolloutAbortType.
func (*SDNRolloutAbortRequest) Type() MessageType { return SDNRolloutAbortType }

// Validate checks the stamped rollout ID.
func (r *SDNApplyRequest) Validate() error { return checkID("rollout_id", r.RolloutID) }

// Validate checks the report.
func (r *SDNReportRequest) Validate() error {
	if r.Host == "" {
		return fieldErrf("host", ErrInvalid, "host is required")
	}
	switch r.State {
	case SDNStateApplied, SDNStateFailed:
	default:
		return fieldErrf("state", ErrInvalid, "state %q must be %s or %s", r.State, SDNStateApplied, SDNStateFailed)
	}
	if len(r.Error) > maxSDNError {
		return fieldErrf("error", ErrInvalid, "error is %d bytes, at most %d allowed", len(r.Error), maxSDNError)
	}
	if len(r.Drift) > maxSDNDrift {
		return fieldErrf("drift", ErrInvalid, "drift has %d lines, at most %d allowed", len(r.Drift), maxSDNDrift)
	}
	for _, d := range r.Drift {
		if len(d) > maxSDNDriftLine {
			return fieldErrf("drift", ErrInvalid, "a drift line is %d bytes, at most %d allowed", len(d), maxSDNDriftLine)
		}
	}
	if r.Actions < 0 {
		return fieldErrf("actions", ErrInvalid, "actions %d is negative", r.Actions)
	}
	return nil
}

// Validate checks the rollout ID and reason.
func (r *SDNRolloutAbortRequest) Validate() error {
	if err := checkID("id", r.RolloutID); err != nil {
		return err
	}
	if len(r.Reason) > maxSDNError {
		return fieldErrf("reason", ErrInvalid, "reason is %d bytes, at most %d allowed", len(r.Reason), maxSDNError)
	}
	return nil
}

// hostRows returns every host row by name.
func hostRows(txn *memdb.Txn) ([]*sdnHostRow, error) {
	it, err := txn.Get(tableSDNHosts, "id")
	if err != nil {
		return nil, err
	}
	var out []*sdnHostRow
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*sdnHostRow))
	}
	return out, nil
}

// intentOf reads the intent from the tables, each list in ID order.
func intentOf(txn *memdb.Txn) (sdn.Intent, error) {
	in := sdn.Intent{Zones: []sdn.Zone{}, Vnets: []sdn.Vnet{}, Subnets: []sdn.Subnet{}, Allows: []sdn.Allow{}, Hosts: []sdn.Host{}}
	each := func(table string, fn func(any)) error { return eachObject(txn, table, fn) }
	for _, t := range []struct {
		table string
		fn    func(any)
	}{
		{tableSDNZones, func(o any) { in.Zones = append(in.Zones, o.(*SDNZone).Zone) }},
		{tableSDNVnets, func(o any) { in.Vnets = append(in.Vnets, o.(*SDNVnet).Vnet) }},
		{tableSDNSubnets, func(o any) { in.Subnets = append(in.Subnets, o.(*SDNSubnet).Subnet) }},
		{tableSDNAllows, func(o any) { in.Allows = append(in.Allows, o.(*SDNAllow).Allow) }},
		{tableSDNHosts, func(o any) { in.Hosts = append(in.Hosts, o.(*sdnHostRow).Host.Host) }},
	} {
		if err := each(t.table, t.fn); err != nil {
			return sdn.Intent{}, err
		}
	}
	return in, nil
}

// emptyPlan is the plan of version 0: nothing.
func emptyPlan(host string) sdn.Plan {
	return sdn.Plan{Host: host, Links: []sdn.Link{}}
}

// storedPlan returns host's plan of version, the empty plan for version
// 0, or nil when it is not stored (pruned).
func storedPlan(txn *memdb.Txn, host string, version uint64) (*sdn.Plan, error) {
	if version == 0 {
		p := emptyPlan(host)
		return &p, nil
	}
	raw, err := txn.First(tableSDNPlans, "id", host, version)
	if err != nil || raw == nil {
		return nil, err
	}
	return raw.(*sdn.Plan), nil
}

// newestRollout returns the rollout of the highest version, or nil.
func newestRollout(txn *memdb.Txn) (*SDNRollout, error) {
	it, err := txn.GetReverse(tableSDNRollouts, "version")
	if err != nil {
		return nil, err
	}
	if raw := it.Next(); raw != nil {
		return raw.(*SDNRollout), nil
	}
	return nil, nil
}

// activeRollout returns the preparing rollout, or nil. Only the newest
// rollout can be preparing: an apply waits for the one before to end.
func activeRollout(txn *memdb.Txn) (*SDNRollout, error) {
	r, err := newestRollout(txn)
	if err != nil || r == nil || r.Phase != SDNPhasePreparing {
		return nil, err
	}
	return r, nil
}

// committedVersion returns the version of the newest committed rollout,
// or 0.
func committedVersion(txn *memdb.Txn) (uint64, error) {
	it, err := txn.GetReverse(tableSDNRollouts, "version")
	if err != nil {
		return 0, err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if r := raw.(*SDNRollout); r.Phase == SDNPhaseCommitted {
			return r.Version, nil
		}
	}
	return 0, nil
}

// SDNPreview is what an apply would do now: the plan of every enrolled
// host compiled from the intent, the changes against each host's
// committed plan, and the version a rollout would take.
type SDNPreview struct {
	// Hosts are the enrolled hosts' names, sorted.
	Hosts []string
	// Committed is each host's committed version.
	Committed map[string]uint64
	Plans     map[string]sdn.Plan
	// Changes lists each host's changes; hosts without any are absent.
	Changes map[string][]sdn.Change
	// Version is the version a rollout would take, or the committed one
	// when no host changes.
	Version uint64
}

// NoChange reports whether no host's plan would change.
func (p *SDNPreview) NoChange() bool { return len(p.Changes) == 0 }

// sdnPreview computes the preview in txn, refusing what an apply refuses:
// a rollout still preparing, no host enrolled, an intent that does not
// compile.
func sdnPreview(txn *memdb.Txn) (*SDNPreview, []*sdnHostRow, error) {
	if r, err := activeRollout(txn); err != nil {
		return nil, nil, err
	} else if r != nil {
		return nil, nil, fmt.Errorf("%w: rollout %s of version %d is preparing; wait for it or abort it", ErrConflict, r.ID, r.Version)
	}
	rows, err := hostRows(txn)
	if err != nil {
		return nil, nil, err
	}
	if len(rows) == 0 {
		return nil, nil, fmt.Errorf("%w: no host has enrolled: there is nothing to apply the network to", ErrConflict)
	}
	in, err := intentOf(txn)
	if err != nil {
		return nil, nil, err
	}
	plans, err := sdn.Compile(in)
	if err != nil {
		return nil, nil, sdnErr(err)
	}
	pv := &SDNPreview{Committed: map[string]uint64{}, Plans: plans, Changes: map[string][]sdn.Change{}}
	for _, row := range rows {
		pv.Hosts = append(pv.Hosts, row.Name)
		pv.Committed[row.Name] = row.State.Committed
		old, err := storedPlan(txn, row.Name, row.State.Committed)
		if err != nil {
			return nil, nil, err
		}
		if old == nil {
			// The committed plan is always kept; without it, every link
			// of the new plan is a change.
			p := emptyPlan(row.Name)
			old = &p
		}
		if ch := sdn.Diff(*old, plans[row.Name]); len(ch) > 0 {
			pv.Changes[row.Name] = ch
		}
	}
	if pv.NoChange() {
		pv.Version, err = committedVersion(txn)
		return pv, rows, err
	}
	pv.Version = 1
	if last, err := newestRollout(txn); err != nil {
		return nil, nil, err
	} else if last != nil {
		pv.Version = last.Version + 1
	}
	return pv, rows, nil
}

func applySDNApply(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*SDNApplyRequest)
	if raw, err := txn.First(tableSDNRollouts, "id", req.RolloutID); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("rollout_id", ErrConflict, "rollout %s already exists", req.RolloutID)
	}
	pv, rows, err := sdnPreview(txn)
	if err != nil {
		return nil, err
	}
	if pv.NoChange() {
		return &SDNApplyResult{Version: pv.Version, NoChange: true}, nil
	}
	version, plans, changes := pv.Version, pv.Plans, pv.Changes
	r := &SDNRollout{
		ID: req.RolloutID, Version: version, Phase: SDNPhasePreparing,
		Hosts: make([]string, 0, len(rows)), Prepared: []string{}, Previous: map[string]uint64{}, Changes: changes,
		Deadline: req.Deadline, CreatedAt: Timestamp(req.Now), CreateIndex: index, ModifyIndex: index,
		RequestID: req.RequestID,
	}
	for _, row := range rows {
		p := plans[row.Name]
		p.Host, p.Version = row.Name, version
		if p.Links == nil {
			p.Links = []sdn.Link{}
		}
		if err := insert(txn, tableSDNPlans, index, &p); err != nil {
			return nil, err
		}
		r.Hosts = append(r.Hosts, row.Name)
		r.Previous[row.Name] = row.State.Committed
		next := *row
		next.State.Target = version
		if err := insert(txn, tableSDNHosts, index, &next); err != nil {
			return nil, err
		}
	}
	if err := insert(txn, tableSDNRollouts, index, r); err != nil {
		return nil, err
	}
	if err := prunePlans(txn, index); err != nil {
		return nil, err
	}
	return &SDNApplyResult{Rollout: r, Version: version}, nil
}

// prunePlans deletes the plans no host holds (as Committed or Target) of
// versions older than the newest sdnKeepRollouts rollouts.
func prunePlans(txn *memdb.Txn, index uint64) error {
	it, err := txn.GetReverse(tableSDNRollouts, "version")
	if err != nil {
		return err
	}
	var keepFrom uint64
	for i, raw := 0, it.Next(); raw != nil && i < sdnKeepRollouts; i, raw = i+1, it.Next() {
		keepFrom = raw.(*SDNRollout).Version
	}
	type hostVersion struct {
		host    string
		version uint64
	}
	held := map[hostVersion]bool{}
	rows, err := hostRows(txn)
	if err != nil {
		return err
	}
	for _, row := range rows {
		held[hostVersion{row.Name, row.State.Committed}] = true
		held[hostVersion{row.Name, row.State.Target}] = true
	}
	pit, err := txn.Get(tableSDNPlans, "id")
	if err != nil {
		return err
	}
	var drop []*sdn.Plan
	for raw := pit.Next(); raw != nil; raw = pit.Next() {
		p := raw.(*sdn.Plan)
		if p.Version < keepFrom && !held[hostVersion{p.Host, p.Version}] {
			drop = append(drop, p)
		}
	}
	for _, p := range drop {
		if err := remove(txn, tableSDNPlans, index, p); err != nil {
			return err
		}
	}
	return nil
}

// endRollout commits or aborts the preparing rollout r. Committing makes
// its version every host's Committed one; aborting points every host's
// Target back at its previous version.
func endRollout(txn *memdb.Txn, index uint64, now int64, r *SDNRollout, phase, reason string) (*SDNRollout, error) {
	next := *r
	next.Phase, next.Reason, next.DoneAt, next.ModifyIndex = phase, reason, Timestamp(now), index
	for _, h := range r.Hosts {
		row, err := first[sdnHostRow](txn, tableSDNHosts, h)
		if err != nil {
			return nil, err
		}
		if row == nil {
			continue
		}
		nr := *row
		if phase == SDNPhaseCommitted {
			nr.State.Committed, nr.State.Target = r.Version, r.Version
		} else {
			nr.State.Target = r.Previous[h]
		}
		if err := insert(txn, tableSDNHosts, index, &nr); err != nil {
			return nil, err
		}
	}
	if err := insert(txn, tableSDNRollouts, index, &next); err != nil {
		return nil, err
	}
	return &next, nil
}

func applySDNReport(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*SDNReportRequest)
	row, err := first[sdnHostRow](txn, tableSDNHosts, req.Host)
	if err != nil {
		return nil, err
	}
	if row == nil {
		return nil, fieldErr("host", notFound("host", req.Host))
	}
	next := *row
	st := &next.State
	if req.State == SDNStateApplied {
		st.Applied = req.Version
	}
	st.State, st.Error, st.Drift, st.ReportedAt, st.Actions = req.State, req.Error, req.Drift, Timestamp(req.Now), req.Actions
	if err := insert(txn, tableSDNHosts, index, &next); err != nil {
		return nil, err
	}
	r, err := activeRollout(txn)
	if err != nil {
		return nil, err
	}
	if r == nil || r.Version != req.Version || !slices.Contains(r.Hosts, req.Host) {
		return st, nil
	}
	if req.State == SDNStateFailed {
		if _, err := endRollout(txn, index, req.Now, r, SDNPhaseAborted, fmt.Sprintf("host %s: %s", req.Host, req.Error)); err != nil {
			return nil, err
		}
	} else if !slices.Contains(r.Prepared, req.Host) {
		nr := *r
		nr.Prepared = append(slices.Clone(r.Prepared), req.Host)
		slices.Sort(nr.Prepared)
		nr.ModifyIndex = index
		if len(nr.Prepared) == len(nr.Hosts) {
			if _, err := endRollout(txn, index, req.Now, &nr, SDNPhaseCommitted, ""); err != nil {
				return nil, err
			}
		} else if err := insert(txn, tableSDNRollouts, index, &nr); err != nil {
			return nil, err
		}
	}
	// The host's row may have changed with the rollout.
	out, err := first[sdnHostRow](txn, tableSDNHosts, req.Host)
	if err != nil {
		return nil, err
	}
	return &out.State, nil
}

func applySDNRolloutAbort(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*SDNRolloutAbortRequest)
	r, err := lookup[SDNRollout](txn, tableSDNRollouts, "rollout", req.RolloutID)
	if err != nil {
		return nil, err
	}
	if r.Phase != SDNPhasePreparing {
		return nil, fieldErrf("id", ErrConflict, "rollout %s is %s, not preparing", r.ID, r.Phase)
	}
	reason := req.Reason
	if reason == "" {
		reason = "aborted"
	}
	return endRollout(txn, index, req.Now, r, SDNPhaseAborted, reason)
}

// planKey builds host + NUL + 8-byte big-endian version: a host's plans
// in version order.
func planKey(host string, version uint64) []byte {
	b := append([]byte(host), 0)
	return binary.BigEndian.AppendUint64(b, version)
}

// planIndexer indexes plans by (Host, Version). FromArgs takes (host
// string, version uint64); PrefixFromArgs (host string).
type planIndexer struct{}

func (planIndexer) FromObject(obj any) (bool, []byte, error) {
	p, ok := obj.(*sdn.Plan)
	if !ok {
		return false, nil, fmt.Errorf("fsm: planIndexer: unexpected %T", obj)
	}
	if p.Host == "" {
		return false, nil, fmt.Errorf("fsm: plan without host")
	}
	return true, planKey(p.Host, p.Version), nil
}

func (planIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("fsm: planIndexer: want (host, version), got %d args", len(args))
	}
	host, ok1 := args[0].(string)
	v, ok2 := args[1].(uint64)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("fsm: planIndexer: want (string, uint64), got (%T, %T)", args[0], args[1])
	}
	return planKey(host, v), nil
}

func (planIndexer) PrefixFromArgs(args ...any) ([]byte, error) {
	return vrfPrefixFromArgs(args)
}

// versionIndexer indexes rollouts by Version, big-endian, so the index
// is in version order. FromArgs takes (version uint64).
type versionIndexer struct{}

func (versionIndexer) FromObject(obj any) (bool, []byte, error) {
	r, ok := obj.(*SDNRollout)
	if !ok {
		return false, nil, fmt.Errorf("fsm: versionIndexer: unexpected %T", obj)
	}
	return true, binary.BigEndian.AppendUint64(nil, r.Version), nil
}

func (versionIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("fsm: versionIndexer: want (version), got %d args", len(args))
	}
	v, ok := args[0].(uint64)
	if !ok {
		return nil, fmt.Errorf("fsm: versionIndexer: want uint64, got %T", args[0])
	}
	return binary.BigEndian.AppendUint64(nil, v), nil
}
