package fsm

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Disaster recovery between sites (docs/dr.md). A DR plan is written at
// its source site, whose leader sends it, with the backup each guest
// would come back from, to the recovery site every few seconds. There it
// is a replica: when the source site is down (a quorum of the other
// sites agrees), the recovery site's leader runs it as a dr.failover
// operation with one item per guest, each item moving through its steps
// in order and recorded before the platform is asked, so that a new
// leader resumes it and no guest is restored or started twice. The
// source site, when it comes back, learns from the pool that it was
// failed over, fences the plan (its guests kept stopped) until an
// operator runs a failback.

const (
	tableDRPlans     = "dr_plans"
	tableDRItems     = "dr_items"
	tableDRConflicts = "dr_conflicts"
)

// Operation kinds of disaster recovery.
const (
	OpDRFailover = "dr.failover"
	OpDRDrill    = "dr.drill"
	OpDRFailback = "dr.failback"
	// OpDRRelease runs at the recovery site when the source site fails a
	// plan back: the copies are stopped and backed up for the source to
	// restore, and their addresses released.
	OpDRRelease = "dr.release"
)

// Triggers of a DR run.
const (
	DRTriggerAutomatic = "automatic"
	DRTriggerManual    = "manual"
)

// Steps of a DR item. A failover item moves through pending, allocated,
// restoring, restored, addressed, configured, starting and running; a
// drill item skips addressed (its guests stay off the networks and out
// of IPAM and DNS) and ends cleaned unless kept; a failback item moves
// through pending, released, restoring, restored, starting and running.
// Failed ends an item from any step. A step may be skipped, never undone.
const (
	DRStepPending    = "pending"
	DRStepAllocated  = "allocated"
	DRStepReleased   = "released"
	DRStepRestoring  = "restoring"
	DRStepRestored   = "restored"
	DRStepConfigured = "configured"
	DRStepAddressed  = "addressed"
	DRStepStarting   = "starting"
	DRStepRunning    = "running"
	DRStepCleaned    = "cleaned"
	DRStepStopped    = "stopped"
	DRStepBackingUp  = "backing_up"
	DRStepBackedUp   = "backed_up"
	DRStepFailed     = "failed"
)

// DRFailoverReleased is the state of a failover whose copies were
// released for a failback.
const DRFailoverReleased = "released"

// drSteps orders the steps of each kind of run.
var drSteps = map[string][]string{
	OpDRFailover: {DRStepPending, DRStepAllocated, DRStepRestoring, DRStepRestored, DRStepAddressed, DRStepConfigured, DRStepStarting, DRStepRunning},
	OpDRDrill:    {DRStepPending, DRStepAllocated, DRStepRestoring, DRStepRestored, DRStepConfigured, DRStepStarting, DRStepRunning, DRStepCleaned},
	OpDRFailback: {DRStepPending, DRStepReleased, DRStepRestoring, DRStepRestored, DRStepStarting, DRStepRunning},
	OpDRRelease:  {DRStepPending, DRStepStopped, DRStepBackingUp, DRStepBackedUp},
}

// DRStepFinal reports whether step ends an item of a run of kind: its
// last step, or failed (with keep, a drill's items end running).
func DRStepFinal(kind, step string, keep bool) bool {
	steps := drSteps[kind]
	switch {
	case step == DRStepFailed:
		return true
	case kind == OpDRDrill && keep:
		return step == DRStepRunning || step == DRStepCleaned
	case len(steps) == 0:
		return false
	}
	return step == steps[len(steps)-1]
}

// DRPlan is a disaster-recovery plan: which guests of its source site
// come back at its recovery site, in which order, from which backups,
// on which networks and under which DNS names.
type DRPlan struct {
	ID           string `json:"id"`
	SourceSite   string `json:"source_site"`
	RecoverySite string `json:"recovery_site"`
	// BackupStorage holds the guests' backups and is readable by both
	// sites' Proxmox clusters (a shared mount or a PBS datastore
	// configured in both under this ID).
	BackupStorage string `json:"backup_storage"`
	// TargetStorage receives the restored disks at the recovery site;
	// TargetNode is the node they come back on (empty: the recovery
	// site's first online node with the most free memory).
	TargetStorage string `json:"target_storage"`
	TargetNode    string `json:"target_node,omitempty"`
	// Manual plans never run by themselves: only `moxxiectl site failover`.
	Manual bool `json:"manual,omitempty"`
	// RPO is the plan's recovery point objective, a Go duration ("4h"):
	// how old the backups a failover restores may grow before the
	// recovery site alerts. Empty means DefaultDRRPO.
	RPO      string      `json:"rpo,omitempty"`
	Guests   []DRGuest   `json:"guests"`
	Networks []DRNetwork `json:"networks,omitempty"`

	// Replica is true at the recovery site: the plan as its source site
	// last sent it (SourceUpdatedAt its version there, SyncedAt when the
	// source sent it, by the source's clock), with the backup each guest
	// comes back from (Status).
	Replica         bool            `json:"replica"`
	Status          []DRGuestStatus `json:"status,omitempty"`
	SourceUpdatedAt Timestamp       `json:"source_updated_at,omitzero"`
	SyncedAt        Timestamp       `json:"synced_at,omitzero"`
	// Failover is, at the recovery site, the plan's failover from its
	// start until a failback ends it: a plan fails over once.
	Failover *DRFailover `json:"failover,omitempty"`
	// Fence is, at the source site, the failover the recovery site ran:
	// the plan's guests are kept stopped here until a failback.
	Fence *DRFence `json:"fence,omitempty"`
	// ActiveRun is the plan's failover, drill or failback in progress;
	// LastRun its newest.
	ActiveRun string `json:"active_run,omitempty"`
	LastRun   string `json:"last_run,omitempty"`

	CreatedAt   Timestamp `json:"created_at"`
	UpdatedAt   Timestamp `json:"updated_at"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// DRGuest is one guest a plan protects.
type DRGuest struct {
	// VMID is the guest's ID at the source site.
	VMID int `json:"vmid"`
	// Order ranks the guests: lower comes back first (databases before
	// the applications that use them); equal orders go by VMID.
	Order int `json:"order,omitempty"`
	// TargetVMID is its ID at the recovery site (0: the next free one).
	TargetVMID int `json:"target_vmid,omitempty"`
	// DNSName is the name re-pointed to its address at the recovery
	// site, allocated from the prefix its network maps to.
	DNSName string `json:"dns_name,omitempty"`
}

// DRNetwork maps a bridge or vnet of the source site to one of the
// recovery site, and names the recovery site's IPAM prefix the guests
// on it take their addresses from.
type DRNetwork struct {
	Source string `json:"source"`
	Target string `json:"target"`
	Prefix string `json:"prefix,omitempty"`
}

// DRGuestStatus is what the source site knows of a protected guest when
// it sends the plan.
type DRGuestStatus struct {
	VMID int    `json:"vmid"`
	Name string `json:"name,omitempty"`
	Kind string `json:"kind,omitempty"`
	// Backup is the newest backup of the guest on the plan's backup
	// storage, BackupAt when it was made; empty when there is none.
	Backup   string    `json:"backup,omitempty"`
	BackupAt Timestamp `json:"backup_at,omitzero"`
	// Memory is the guest's memory at the source site in bytes, for
	// placing its copy; 0 when unknown.
	Memory uint64 `json:"memory,omitempty"`
	// Error says why the guest cannot come back (not in the inventory,
	// no backup).
	Error string `json:"error,omitempty"`
}

// DRFailover is a plan's failover as the recovery site records it.
type DRFailover struct {
	Run       string    `json:"run"`
	Trigger   string    `json:"trigger"`
	StartedAt Timestamp `json:"started_at"`
	// State is running, succeeded, failed, or released once the copies
	// were stopped and backed up for a failback.
	State string `json:"state"`
}

// DRFence is a failover as the source site learns of it.
type DRFence struct {
	// By is the recovery site that ran the failover, Run its operation
	// there and Since when this site learned of it.
	By    string    `json:"by"`
	Run   string    `json:"run,omitempty"`
	Since Timestamp `json:"since"`
	// Isolated is set on a fence this site put on itself, with no
	// failover known: its servers saw none of the recovery site's and
	// fewer than a quorum of the other sites, which is what the others
	// would need to see of this site to fail it over. A sync that names
	// a failover turns it into an ordinary fence (Run set, Isolated
	// cleared).
	Isolated bool `json:"isolated,omitempty"`
	// Stopped are the guests an isolated fence stopped: they are started
	// again when it is lifted.
	Stopped []int `json:"stopped,omitempty"`
	// Lifted is set when an isolated fence no longer keeps the guests
	// stopped: the recovery site answered that it did not fail the plan
	// over (LiftedBy "sync"), or an operator vouched for it (LiftedBy the
	// operator). The guests in Stopped are started again; the fence ends
	// once they are and this site sees the recovery site again.
	Lifted   bool   `json:"lifted,omitempty"`
	LiftedBy string `json:"lifted_by,omitempty"`
}

// Keeps reports whether the fence keeps the plan's guests stopped: a
// fence of a known failover, or an isolated one not lifted.
func (f *DRFence) Keeps() bool { return f != nil && !f.Lifted }

// Actions of a DRIsolationRequest.
const (
	// DRIsolationFence puts an isolated fence on a plan without one.
	DRIsolationFence = "fence"
	// DRIsolationStopped records guests the isolated fence stopped.
	DRIsolationStopped = "stopped"
	// DRIsolationLift lifts an isolated fence (By says who).
	DRIsolationLift = "lift"
	// DRIsolationRestarted records guests a lifted fence started again.
	DRIsolationRestarted = "restarted"
	// DRIsolationEnd removes a lifted isolated fence whose guests all
	// run again.
	DRIsolationEnd = "end"
)

// DRItem is one guest of a DR run.
type DRItem struct {
	// Key is the run ID and the zero-padded order and VMID, so a run's
	// items sort in recovery order.
	Key   string `json:"-" codec:"Key"`
	RunID string `json:"run"`
	VMID  int    `json:"vmid"`
	Order int    `json:"order"`
	Name  string `json:"name,omitempty"`
	Kind  string `json:"kind,omitempty"`
	// Backup is the backup the guest comes back from (of a release: the
	// backup it made of the copy).
	Backup string `json:"backup,omitempty"`
	// Memory is the guest's memory in bytes (0: unknown), which a run
	// reserves on the node its copy is placed on.
	Memory uint64 `json:"memory,omitempty"`
	// TargetVMID and TargetNode are where it comes back.
	TargetVMID int    `json:"target_vmid,omitempty"`
	TargetNode string `json:"target_node,omitempty"`
	Step       string `json:"step"`
	Task       string `json:"task,omitempty"`
	TaskNode   string `json:"task_node,omitempty"`
	// Keep is set on the items of a drill that leaves its guests running:
	// they end running. (The run's operation step says so only until the
	// runner records its progress there.)
	Keep bool `json:"keep,omitempty"`
	// Address is the address it got at the recovery site, under DNSName.
	Address  string    `json:"address,omitempty"`
	DNSName  string    `json:"dns_name,omitempty"`
	Error    string    `json:"error,omitempty"`
	Started  Timestamp `json:"started_at,omitzero"`
	Finished Timestamp `json:"finished_at,omitzero"`
	// Network is, on a failback item, the network configuration its
	// original had before the copy was restored over it (netN and
	// ipconfigN keys), which the failback puts back.
	Network map[string]string `json:"network,omitempty" codec:",omitempty"`
}

// RestoredCopy reports whether the copy at a failover item's target is
// known to be the one its run restored: the item got past its restore,
// or it failed with an address, which is given only after the restore.
// A failed item without one may have failed at the restore, and the
// guest at its target, if any, need not be its copy.
func (it *DRItem) RestoredCopy() bool {
	switch it.Step {
	case DRStepRestored, DRStepAddressed, DRStepConfigured, DRStepStarting, DRStepRunning:
		return true
	case DRStepFailed:
		return it.Address != ""
	}
	return false
}

func drItemKey(run string, order, vmid int) string {
	return fmt.Sprintf("%s/%06d/%010d", run, order, vmid)
}

// DRConflict is a change made on both sides of a partition that was not
// applied: reported, never dropped silently.
type DRConflict struct {
	ID   string `json:"id"`
	Plan string `json:"plan"`
	// Kind is plan_changed (the source changed a plan already failed
	// over; the replica keeps the version it failed over with) or
	// guest_ran (a guest ran at the source after the recovery site
	// started its copy: what it wrote since is not in that copy).
	Kind   string    `json:"kind"`
	Site   string    `json:"site"`
	VMID   int       `json:"vmid,omitempty"`
	Detail string    `json:"detail"`
	At     Timestamp `json:"at"`
	// Version is the version of what conflicted (the plan's change
	// time, the fence's run start): a conflict is recorded once.
	Version Timestamp `json:"version,omitzero"`
}

// Kinds of DR conflicts.
const (
	DRConflictPlanChanged = "plan_changed"
	DRConflictGuestRan    = "guest_ran"
)

// drTables returns the disaster-recovery part of the memdb schema.
func drTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableDRPlans: {Name: tableDRPlans, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		}},
		tableDRItems: {Name: tableDRItems, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
		}},
		tableDRConflicts: {Name: tableDRConflicts, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		}},
	}
}

// DefaultDRRPO is the recovery point objective of a plan that names
// none: a day of daily backups and two hours to spare.
const DefaultDRRPO = 26 * time.Hour

// Objective returns p's recovery point objective.
func (p *DRPlan) Objective() time.Duration {
	if d, err := time.ParseDuration(p.RPO); err == nil && p.RPO != "" {
		return d
	}
	return DefaultDRRPO
}
