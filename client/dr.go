package client

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Paths of the disaster-recovery API.
const (
	drPlansPath     = "/v1/dr/plans"
	drRunsPath      = "/v1/dr/runs"
	drConflictsPath = "/v1/dr/conflicts"
)

// Operation kinds of disaster recovery: a plan's runs.
const (
	OpDRFailover = "dr.failover"
	OpDRDrill    = "dr.drill"
	OpDRFailback = "dr.failback"
	// OpDRRelease runs at the recovery site during a failback: the copies
	// are stopped and backed up for the source site to restore.
	OpDRRelease = "dr.release"
)

// Steps of a DR item. A failover item moves through pending, allocated,
// restoring, restored, addressed, configured, starting and running; a
// drill item skips addressed and ends cleaned unless kept; a failback
// item moves through pending, released, restoring, restored, starting and
// running; a release item through pending, stopped, backing_up and
// backed_up. Failed ends an item from any step.
const (
	DRStepPending    = "pending"
	DRStepAllocated  = "allocated"
	DRStepReleased   = "released"
	DRStepRestoring  = "restoring"
	DRStepRestored   = "restored"
	DRStepAddressed  = "addressed"
	DRStepConfigured = "configured"
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

// Kinds of DR conflicts.
const (
	DRConflictPlanChanged = "plan_changed"
	DRConflictGuestRan    = "guest_ran"
)

// DRGuest is one guest a plan protects.
type DRGuest struct {
	// VMID is the guest's ID at the source site.
	VMID int `json:"vmid"`
	// Order ranks the guests: lower comes back first; equal orders go by
	// VMID.
	Order int `json:"order,omitempty"`
	// TargetVMID is its ID at the recovery site (0: the next free one).
	TargetVMID int `json:"target_vmid,omitempty"`
	// DNSName is the name re-pointed to its address at the recovery site,
	// allocated from the prefix its network maps to.
	DNSName string `json:"dns_name,omitempty"`
}

// DRNetwork maps a bridge or vnet of the source site to one of the
// recovery site, and names the recovery site's IPAM prefix the guests on
// it take their addresses from.
type DRNetwork struct {
	Source string `json:"source"`
	Target string `json:"target"`
	Prefix string `json:"prefix,omitempty"`
}

// DRPlanRequest is a disaster-recovery plan to create or replace at its
// source site: which guests come back at RecoverySite, in which order,
// from the backups on BackupStorage, onto TargetStorage (and TargetNode,
// by default the recovery site's online node with the most free memory),
// on which networks. SourceSite defaults to the answering server's site.
// A Manual plan never fails over by itself.
type DRPlanRequest struct {
	ID            string `json:"id,omitempty"`
	SourceSite    string `json:"source_site,omitempty"`
	RecoverySite  string `json:"recovery_site"`
	BackupStorage string `json:"backup_storage"`
	TargetStorage string `json:"target_storage"`
	TargetNode    string `json:"target_node,omitempty"`
	Manual        bool   `json:"manual,omitempty"`
	// RPO is the recovery point objective, a Go duration such as "4h";
	// empty means the server's default (26h).
	RPO      string      `json:"rpo,omitempty"`
	Guests   []DRGuest   `json:"guests"`
	Networks []DRNetwork `json:"networks,omitempty"`
}

// DRGuestStatus is what the source site knew of a protected guest when
// it last sent the plan: its newest backup on the plan's backup storage,
// or why it cannot come back.
type DRGuestStatus struct {
	VMID     int    `json:"vmid"`
	Name     string `json:"name,omitempty"`
	Kind     string `json:"kind,omitempty"`
	Backup   string `json:"backup,omitempty"`
	BackupAt Time   `json:"backup_at,omitzero"`
	Error    string `json:"error,omitempty"`
}

// DRFailover is a plan's failover as the recovery site records it.
type DRFailover struct {
	Run string `json:"run"`
	// Trigger is automatic or manual.
	Trigger   string `json:"trigger"`
	StartedAt Time   `json:"started_at"`
	// State is running, succeeded, failed, or DRFailoverReleased once the
	// copies were stopped and backed up for a failback.
	State string `json:"state"`
}

// DRFence is, at the source site, the failover the recovery site By ran
// (its operation Run there): the plan's guests are kept stopped until a
// failback.
//
// Isolated is set on a fence the site put on itself while it saw neither
// the recovery site nor a quorum of the other sites: no failover is
// known. Stopped are the guests it stopped; Lifted is set (LiftedBy
// "sync" or "operator") once they may run again.
type DRFence struct {
	By       string `json:"by"`
	Run      string `json:"run,omitempty"`
	Since    Time   `json:"since"`
	Isolated bool   `json:"isolated,omitempty"`
	Stopped  []int  `json:"stopped,omitempty"`
	Lifted   bool   `json:"lifted,omitempty"`
	LiftedBy string `json:"lifted_by,omitempty"`
}

// DRPlan is a stored plan. At its source site Replica is false; at its
// recovery site Replica is true and the plan is what the source last sent
// (SourceUpdatedAt its version there, SyncedAt when it was sent, by the
// source's clock), with Status, the backup each guest comes back from.
type DRPlan struct {
	DRPlanRequest
	Replica         bool            `json:"replica"`
	Status          []DRGuestStatus `json:"status,omitempty"`
	SourceUpdatedAt Time            `json:"source_updated_at,omitzero"`
	SyncedAt        Time            `json:"synced_at,omitzero"`
	// Failover is, at the recovery site, the plan's failover until a
	// failback ends it; Fence is, at the source site, that failover.
	Failover *DRFailover `json:"failover,omitempty"`
	Fence    *DRFence    `json:"fence,omitempty"`
	// ActiveRun is the failover, drill or failback in progress; LastRun
	// the newest.
	ActiveRun   string `json:"active_run,omitempty"`
	LastRun     string `json:"last_run,omitempty"`
	CreatedAt   Time   `json:"created_at,omitzero"`
	UpdatedAt   Time   `json:"updated_at,omitzero"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// DRItem is one guest of a DR run.
type DRItem struct {
	Run   string `json:"run"`
	VMID  int    `json:"vmid"`
	Order int    `json:"order"`
	Name  string `json:"name,omitempty"`
	Kind  string `json:"kind,omitempty"`
	// Backup is the backup the guest comes back from (of a release: the
	// backup it made of the copy).
	Backup string `json:"backup,omitempty"`
	// TargetVMID and TargetNode are where it comes back.
	TargetVMID int    `json:"target_vmid,omitempty"`
	TargetNode string `json:"target_node,omitempty"`
	// Step is one of the DRStep* steps.
	Step     string `json:"step"`
	Task     string `json:"task,omitempty"`
	TaskNode string `json:"task_node,omitempty"`
	// Keep is set on the items of a drill that leaves its guests running.
	Keep bool `json:"keep,omitempty"`
	// Address is the address it got at the recovery site, under DNSName.
	Address  string `json:"address,omitempty"`
	DNSName  string `json:"dns_name,omitempty"`
	Error    string `json:"error,omitempty"`
	Started  Time   `json:"started_at,omitzero"`
	Finished Time   `json:"finished_at,omitzero"`
	// Network is, on a failback item, the network settings (netN and
	// ipconfigN) its original had before the copy was restored over it.
	Network map[string]string `json:"network,omitempty"`
}

// DRRun is a failover, drill, failback or release: its operation (Policy names the
// plan) and its items in recovery order.
type DRRun struct {
	Operation *Operation `json:"operation"`
	Items     []DRItem   `json:"items"`
}

// DRConflict is a change made on both sides of a partition that was not
// applied: Kind is DRConflictPlanChanged or DRConflictGuestRan.
type DRConflict struct {
	ID      string `json:"id"`
	Plan    string `json:"plan"`
	Kind    string `json:"kind"`
	Site    string `json:"site"`
	VMID    int    `json:"vmid,omitempty"`
	Detail  string `json:"detail"`
	At      Time   `json:"at"`
	Version Time   `json:"version,omitzero"`
}

// drRunRequest is the optional body of a failover or drill.
type drRunRequest struct {
	Force bool `json:"force,omitempty"`
	Keep  bool `json:"keep,omitempty"`
}

// DRPlans lists the plans this site protects and the replicas it holds
// for other sites, by ID (GET /v1/dr/plans).
func (c *Client) DRPlans(ctx context.Context, q *QueryOptions) ([]DRPlan, *Meta, error) {
	return getList[DRPlan](ctx, c, drPlansPath, "plans", nil, q)
}

// DRPlan reads one plan or replica (GET /v1/dr/plans/{id}).
func (c *Client) DRPlan(ctx context.Context, id string, q *QueryOptions) (*DRPlan, *Meta, error) {
	return getOne[DRPlan](ctx, c, itemPath(drPlansPath, id), nil, q)
}

// PutDRPlan creates or replaces the plan req.ID at its source site (PUT
// /v1/dr/plans/{id}); its run state is kept. A plan just created has
// CreateIndex equal to ModifyIndex.
func (c *Client) PutDRPlan(ctx context.Context, req DRPlanRequest, w *WriteOptions) (*DRPlan, *Meta, error) {
	return writeOne[DRPlan](ctx, c, http.MethodPut, itemPath(drPlansPath, req.ID), req, w)
}

// DeleteDRPlan deletes a plan with no run in progress that was not failed
// over, and returns it as it was (DELETE /v1/dr/plans/{id}).
func (c *Client) DeleteDRPlan(ctx context.Context, id string, w *WriteOptions) (*DRPlan, *Meta, error) {
	return writeOne[DRPlan](ctx, c, http.MethodDelete, itemPath(drPlansPath, id), nil, w)
}

// drRun starts a failover or drill of plan id.
func (c *Client) drRun(ctx context.Context, id, verb string, body drRunRequest, w *WriteOptions) (*Operation, *Meta, error) {
	var b any
	if body != (drRunRequest{}) {
		b = body
	}
	return writeOne[Operation](ctx, c, http.MethodPost, itemPath(drPlansPath, id)+"/"+verb, b, w)
}

// DRFailover fails a plan over at its recovery site, which must be the
// site the request reaches (Config.Site), and returns the pending
// dr.failover operation (POST /v1/dr/plans/{id}/failover). Unless force,
// the source site must be down; with force the caller vouches that the
// plan's guests are off there. Follow it with WaitDRRun.
func (c *Client) DRFailover(ctx context.Context, id string, force bool, w *WriteOptions) (*Operation, *Meta, error) {
	return c.drRun(ctx, id, "failover", drRunRequest{Force: force}, w)
}

// DRDrill restores a plan's guests at its recovery site, off the networks,
// starts them and removes them again unless keep, and returns the pending
// dr.drill operation (POST /v1/dr/plans/{id}/drill).
func (c *Client) DRDrill(ctx context.Context, id string, keep bool, w *WriteOptions) (*Operation, *Meta, error) {
	return c.drRun(ctx, id, "drill", drRunRequest{Keep: keep}, w)
}

// DRFailback fails a fenced plan back at its source site, which must be
// the site the request reaches, and returns the pending dr.failback
// operation (POST /v1/dr/plans/{id}/failback): the recovery site releases
// its copies (stopped, backed up), which are restored over the originals
// and started; then the fence is lifted.
func (c *Client) DRFailback(ctx context.Context, id string, w *WriteOptions) (*Operation, *Meta, error) {
	return c.drRun(ctx, id, "failback", drRunRequest{}, w)
}

// DRUnfence lifts the fence a source site put on plan id itself while it
// was cut off (POST /v1/dr/plans/{id}/unfence): the caller vouches that
// the recovery site did not fail the plan over, and the guests the fence
// stopped start again.
func (c *Client) DRUnfence(ctx context.Context, id string, w *WriteOptions) (*DRPlan, *Meta, error) {
	return writeOne[DRPlan](ctx, c, http.MethodPost, itemPath(drPlansPath, id)+"/unfence", nil, w)
}

// DRRun reads a failover, drill or failback with its items (GET
// /v1/dr/runs/{id}). With q.Index set it blocks until the run changes.
func (c *Client) DRRun(ctx context.Context, id string, q *QueryOptions) (*DRRun, *Meta, error) {
	return getOne[DRRun](ctx, c, itemPath(drRunsPath, id), nil, q)
}

// WaitDRRun follows a DR run with blocking reads until its operation
// succeeds or fails, calling progress (when not nil) with the run as first
// read and after every change. It returns the final run; one whose
// operation failed comes with an *OperationFailedError. It returns early,
// with ctx's error, when ctx is done.
func (c *Client) WaitDRRun(ctx context.Context, id string, progress func(*DRRun)) (*DRRun, error) {
	var index uint64
	var last *DRRun
	for {
		var q *QueryOptions
		if index > 0 {
			q = &QueryOptions{Index: index, Wait: operationWait}
		}
		run, m, err := c.DRRun(ctx, id, q)
		if err != nil {
			return nil, err
		}
		if run.Operation == nil {
			return nil, fmt.Errorf("GET %s: the answer has no operation", itemPath(drRunsPath, id))
		}
		if progress != nil && (last == nil || drRunChanged(last, run)) {
			progress(run)
		}
		last = run
		if !run.Operation.Active() {
			if run.Operation.Status == OpFailed {
				return run, &OperationFailedError{Op: run.Operation}
			}
			return run, nil
		}
		if m.Index == 0 {
			// No index to block on (not a Moxxie server?): poll.
			if err := sleep(ctx, time.Second); err != nil {
				return nil, err
			}
		}
		index = m.Index
	}
}

// drRunChanged reports whether a run read again differs from the last
// read in anything a progress report shows.
func drRunChanged(old, run *DRRun) bool {
	return opChanged(old.Operation, run.Operation) || !slices.EqualFunc(old.Items, run.Items, func(a, b DRItem) bool {
		return a.VMID == b.VMID && a.Step == b.Step && a.Error == b.Error && a.TargetVMID == b.TargetVMID &&
			a.Address == b.Address && a.Task == b.Task
	})
}

// DRConflicts lists the changes made on both sides of a partition that
// were not applied, oldest first (GET /v1/dr/conflicts).
func (c *Client) DRConflicts(ctx context.Context, q *QueryOptions) ([]DRConflict, *Meta, error) {
	return getList[DRConflict](ctx, c, drConflictsPath, "conflicts", nil, q)
}
