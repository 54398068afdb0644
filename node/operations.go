package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/ipam"
	"github.com/moxxie/moxxie/provider"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Operations are run by the leader. Each step is recorded before it is
// taken (the VMID before the clone, the addresses before they are handed
// to Proxmox), so a failure half-way, or a new leader finding an operation
// another leader left running, knows what to undo.

const (
	// maxConcurrentOps bounds the operations run at once.
	maxConcurrentOps = 8
	// opStepTimeout bounds one platform task (a full clone can be slow).
	opStepTimeout = 30 * time.Minute
	// progressEvery bounds how often task progress is written to the log.
	progressEvery = time.Second
	// opActor is the actor of commands the runner proposes, which scopes
	// their idempotency keys the same on every leader.
	opActor = "operations"
	// moxxieTag marks guests Moxxie created.
	moxxieTag = "moxxie"
)

// errInterrupted fails a create that a previous leader left running.
var errInterrupted = errors.New("interrupted by a change of leader")

// opRunner runs operations on the leader.
type opRunner struct {
	s       *Server
	p       provider.Provider
	ctx     context.Context
	sem     chan struct{}
	mu      sync.Mutex
	running map[string]bool // guarded by mu; operation IDs in flight
	vmids   map[int]bool    // guarded by mu; VMIDs claimed by creates in flight
	wg      sync.WaitGroup
}

// runOperations runs pending operations until stop closes. Operations
// this leader finds already running were interrupted by a leader change.
func (s *Server) runOperations(stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	r := &opRunner{s: s, p: s.provider, ctx: ctx, sem: make(chan struct{}, maxConcurrentOps), running: map[string]bool{}, vmids: map[int]bool{}}
	defer r.wg.Wait()
	first := true
	for {
		ws := memdb.NewWatchSet()
		_, ops, err := s.State().Operations(ws, true)
		if err != nil {
			s.logger.Error("reading operations failed", "error", err)
			return
		}
		for _, op := range ops {
			r.start(op, first && op.Status == fsm.OpRunning)
		}
		first = false
		ws.Add(s.State().AbandonCh())
		if err := ws.WatchCtx(ctx); err != nil {
			return
		}
	}
}

// start runs op in its own goroutine unless it already runs.
func (r *opRunner) start(op *fsm.Operation, interrupted bool) {
	r.mu.Lock()
	if r.running[op.ID] {
		r.mu.Unlock()
		return
	}
	r.running[op.ID] = true
	if op.VMID != 0 && op.Kind == fsm.OpVMCreate {
		r.vmids[op.VMID] = true
	}
	r.mu.Unlock()
	r.wg.Go(func() {
		defer func() {
			r.mu.Lock()
			delete(r.running, op.ID)
			delete(r.vmids, op.VMID)
			r.mu.Unlock()
		}()
		select {
		case r.sem <- struct{}{}:
		case <-r.ctx.Done():
			return
		}
		defer func() { <-r.sem }()
		r.run(op, interrupted)
	})
}

// opState is one operation being run, with what it has done so far.
type opState struct {
	r  *opRunner
	op *fsm.Operation
	// reqCtx is the runner's context with the request ID and the trace
	// of the request that started the operation: its platform calls and
	// log lines carry them.
	reqCtx   context.Context
	lastProg time.Time
	// drEarlier holds, for a failback, each guest's item of the latest
	// earlier failback run of the same fence; set before the items run,
	// read only after.
	drEarlier map[int]*fsm.DRItem
}

// run executes op and records its outcome.
func (r *opRunner) run(op *fsm.Operation, interrupted bool) {
	ctx, span := r.s.startOperationSpan(r.ctx, op)
	if span != nil {
		defer span.End()
	}
	o := &opState{r: r, op: op, reqCtx: ctx}
	log := r.s.logger.With("operation", op.ID, "kind", op.Kind, "vmid", op.VMID)
	if r.p == nil {
		o.fail(&fsm.OpError{Code: api.CodeNoPlatform, Message: "no virtualization platform is configured"}, false)
		return
	}
	running := fsm.OpRunning
	if err := o.update(&fsm.OperationUpdateRequest{Status: &running}); err != nil {
		log.WarnContext(ctx, "operation could not start", "error", err)
		return
	}
	log.InfoContext(ctx, "operation started", "interrupted", interrupted)
	var err error
	switch op.Kind {
	case fsm.OpVMCreate:
		if interrupted {
			err = errInterrupted
		} else {
			err = o.create()
		}
		if err != nil && r.ctx.Err() == nil {
			e := opError(err)
			undoErr := o.undoCreate()
			if undoErr != nil {
				e.Message += "; undoing it failed, clean up by hand: " + undoErr.Error()
			}
			o.fail(e, undoErr == nil)
			log.WarnContext(ctx, "operation failed", "error", err, "undo_error", undoErr)
			return
		}
	case fsm.OpVMStart, fsm.OpVMStop, fsm.OpVMShutdown:
		err = o.power()
	case fsm.OpVMDelete:
		err = o.delete()
	case fsm.OpSnapshotRun, fsm.OpBackupRun:
		err = o.policyRun()
	case fsm.OpVolumeCreate, fsm.OpVolumeResize, fsm.OpVolumeAttach, fsm.OpVolumeDetach, fsm.OpVolumeDelete, fsm.OpVolumeMove:
		err = o.volume()
	case fsm.OpBackupRestore:
		err = o.restore()
	case fsm.OpDRFailover, fsm.OpDRDrill, fsm.OpDRFailback, fsm.OpDRRelease:
		err = o.drRun()
	}
	if r.ctx.Err() != nil {
		// Leadership lost: the next leader finishes or undoes it.
		return
	}
	if err != nil {
		// A move that failed half-way left the guest on its original
		// disk: nothing is left to undo.
		var kept *diskKeptError
		o.fail(opError(err), errors.As(err, &kept))
		log.WarnContext(ctx, "operation failed", "error", err)
		return
	}
	if op.Kind == fsm.OpVMCreate {
		// Callers act on the new VM next: have it in the inventory first.
		o.awaitInventory()
	}
	done, step, empty := fsm.OpSucceeded, "done", ""
	if err := o.update(&fsm.OperationUpdateRequest{Status: &done, Step: &step, Progress: &empty}); err != nil {
		log.WarnContext(ctx, "recording success failed", "error", err)
		return
	}
	r.s.kickSync()
	log.InfoContext(ctx, "operation succeeded")
}

// awaitInventory asks for a sync and waits, a bounded time, until the
// created VM is in the inventory.
func (o *opState) awaitInventory() {
	_ = o.step("waiting for the inventory")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && o.r.ctx.Err() == nil {
		ws := memdb.NewWatchSet()
		_, g, err := o.r.s.State().InventoryGuest(ws, o.op.VMID)
		if err != nil || g != nil && !g.Gone {
			return
		}
		o.r.s.kickSync()
		ctx, cancel := context.WithTimeout(o.r.ctx, time.Second)
		_ = ws.WatchCtx(ctx)
		cancel()
	}
}

// update records progress; it fills in the operation ID and keeps o.op
// current.
func (o *opState) update(u *fsm.OperationUpdateRequest) error {
	u.ID = o.op.ID
	v, err := o.r.s.raftApply(u)
	if err != nil {
		return err
	}
	if op, ok := v.(*fsm.Operation); ok {
		o.op = op
	}
	return nil
}

// step records what the operation does next.
func (o *opState) step(s string) error {
	empty := ""
	return o.update(&fsm.OperationUpdateRequest{Step: &s, Progress: &empty})
}

// fail records the failure; rolledBack says the undo succeeded.
func (o *opState) fail(e *fsm.OpError, rolledBack bool) {
	failed, empty := fsm.OpFailed, ""
	step := "failed"
	if rolledBack {
		step = "rolled back"
	}
	trace.SpanFromContext(o.reqCtx).SetStatus(codes.Error, e.Message)
	if err := o.update(&fsm.OperationUpdateRequest{Status: &failed, Error: e, RolledBack: rolledBack, Step: &step, Progress: &empty}); err != nil {
		o.r.s.logger.WarnContext(o.reqCtx, "recording a failed operation failed", "operation", o.op.ID, "error", err)
	}
	o.r.s.kickSync()
}

// wait follows a platform task to its end, recording it and its progress.
func (o *opState) wait(task provider.Task, startErr error) error {
	if startErr != nil {
		return startErr
	}
	id, node := task.ID, task.Node
	if err := o.update(&fsm.OperationUpdateRequest{Task: &id, TaskNode: &node}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(o.reqCtx, opStepTimeout)
	defer cancel()
	_, err := o.r.p.WaitTask(ctx, task, func(ts provider.TaskStatus) {
		if ts.LastLog == "" || time.Since(o.lastProg) < progressEvery {
			return
		}
		o.lastProg = time.Now()
		line := ts.LastLog
		_ = o.update(&fsm.OperationUpdateRequest{Progress: &line})
	})
	return err
}

func (o *opState) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(o.reqCtx, opStepTimeout)
}

func (o *opState) ref() provider.GuestRef {
	return provider.GuestRef{Node: o.op.Node, VMID: o.op.VMID, Kind: provider.KindVM}
}

// create clones (or creates) a VM, gives it its addresses and starts it.
func (o *opState) create() error {
	spec := o.op.Spec
	ctx, cancel := o.ctx()
	defer cancel()
	if err := o.step("choosing a VMID"); err != nil {
		return err
	}
	vmid, err := o.r.claimVMID(ctx)
	if err != nil {
		return err
	}
	if err := o.update(&fsm.OperationUpdateRequest{VMID: &vmid}); err != nil {
		return err
	}
	addrs, err := o.allocate()
	if err != nil {
		return err
	}
	gspec := provider.GuestSpec{
		Name: spec.Name, Cores: spec.Cores, MemoryMiB: spec.MemoryMiB, Description: spec.Description,
		Tags: guestTags(spec), SSHKeys: spec.SSHKeys, Storage: spec.Storage, DiskGiB: spec.DiskGiB,
	}
	for i, n := range spec.NICs {
		nic := provider.NIC{Bridge: n.Bridge, VLAN: n.VLAN}
		for _, a := range addrs {
			if a.NIC == i {
				if nic.IP, nic.Gateway, err = o.ipconfig(a); err != nil {
					return err
				}
			}
		}
		gspec.NICs = append(gspec.NICs, nic)
	}
	ref := o.ref()
	if spec.TemplateVMID != 0 {
		if err := o.step("cloning template " + strconv.Itoa(spec.TemplateVMID)); err != nil {
			return err
		}
		src, err := o.template()
		if err != nil {
			return err
		}
		// Proxmox clones across nodes only from shared storage: clone
		// next to the template, then move the stopped clone.
		t, err := o.r.p.CloneGuest(ctx, provider.CloneSpec{Source: src, NewID: vmid, Full: true, Spec: provider.GuestSpec{Name: spec.Name}})
		if err := o.wait(t, err); err != nil {
			return err
		}
		if src.Node != spec.Node {
			if err := o.step("migrating to " + spec.Node); err != nil {
				return err
			}
			t, err := o.r.p.MigrateGuest(ctx, provider.GuestRef{Node: src.Node, VMID: vmid, Kind: provider.KindVM}, spec.Node, false)
			if err := o.wait(t, err); err != nil {
				return err
			}
		}
		if err := o.step("configuring"); err != nil {
			return err
		}
		t, err = o.r.p.ConfigureGuest(ctx, ref, gspec)
		if err := o.wait(t, err); err != nil {
			return err
		}
	} else {
		if err := o.step("creating"); err != nil {
			return err
		}
		t, err := o.r.p.CreateGuest(ctx, ref, gspec)
		if err := o.wait(t, err); err != nil {
			return err
		}
	}
	if spec.Start {
		if err := o.step("starting"); err != nil {
			return err
		}
		t, err := o.r.p.StartGuest(ctx, ref)
		if err := o.wait(t, err); err != nil {
			return err
		}
	}
	return nil
}

// template finds the template to clone in the inventory.
func (o *opState) template() (provider.GuestRef, error) {
	_, g, err := o.r.s.State().InventoryGuest(nil, o.op.Spec.TemplateVMID)
	if err != nil {
		return provider.GuestRef{}, err
	}
	if g == nil || g.Gone || !g.Template {
		return provider.GuestRef{}, fmt.Errorf("%w: template %d is no longer in the inventory", provider.ErrNotFound, o.op.Spec.TemplateVMID)
	}
	return provider.GuestRef{Node: g.Node, VMID: g.VMID, Kind: provider.GuestKind(g.Kind)}, nil
}

// claimVMID picks a VMID no guest and no other create in flight uses.
func (r *opRunner) claimVMID(ctx context.Context) (int, error) {
	id, err := r.p.NextID(ctx)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.s.State()
	for ; id <= fsm.MaxVMID; id++ {
		if r.vmids[id] {
			continue
		}
		if _, g, err := st.InventoryGuest(nil, id); err != nil {
			return 0, err
		} else if g != nil && !g.Gone {
			continue
		}
		r.vmids[id] = true
		return id, nil
	}
	return 0, fmt.Errorf("%w: no free VMID", ipam.ErrExhausted)
}

// owner is the IPAM owner of a VM's NIC.
func owner(vmid, nic int) string { return fmt.Sprintf("vm:%d/net%d", vmid, nic) }

// allocate takes an address for every NIC that names a prefix. Each
// allocation carries an idempotency key made of the operation and the
// NIC, so a retry returns the same address instead of a second one.
func (o *opState) allocate() ([]fsm.OpAddress, error) {
	spec := o.op.Spec
	var out []fsm.OpAddress
	for i, n := range spec.NICs {
		if n.PrefixID == "" {
			continue
		}
		if len(out) == 0 {
			if err := o.step("allocating addresses"); err != nil {
				return nil, err
			}
		}
		req := &fsm.AddressAllocateRequest{
			PrefixID: n.PrefixID, Address: n.Address, Fallback: n.Address != "", Count: 1, IDs: []string{api.NewID()},
			Status: fsm.AddressActive, DNSName: n.DNSName, Tenant: spec.Tenant, Project: spec.Project, Owner: owner(o.op.VMID, i),
			Description: "vm " + spec.Name, NameRules: true, ReverseRule: true,
		}
		list, err := o.r.s.applyKeyed(req, fmt.Sprintf("op:%s:net%d", o.op.ID, i))
		if err != nil {
			return nil, fieldPrefix(err, fmt.Sprintf("nics[%d]", i))
		}
		for _, a := range list.Addresses {
			out = append(out, fsm.OpAddress{NIC: i, ID: a.ID, Address: a.Address, PrefixID: a.PrefixID, DNSName: a.DNSName})
		}
		if err := o.update(&fsm.OperationUpdateRequest{Addresses: out}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ipconfig returns the address in CIDR form and the gateway of its prefix.
func (o *opState) ipconfig(a fsm.OpAddress) (string, string, error) {
	_, p, err := o.r.s.State().Prefix(nil, a.PrefixID)
	if err != nil {
		return "", "", err
	}
	if p == nil {
		return "", "", fmt.Errorf("%w: prefix %s of address %s is gone", provider.ErrNotFound, a.PrefixID, a.Address)
	}
	pfx, err := netip.ParsePrefix(p.Prefix.Prefix)
	if err != nil {
		return "", "", err
	}
	return fmt.Sprintf("%s/%d", a.Address, pfx.Bits()), p.Gateway, nil
}

// guestTags are the Proxmox tags of a new VM: its own, Moxxie's mark and
// its tenant and project.
func guestTags(spec *fsm.VMSpec) []string {
	tags := append([]string{moxxieTag}, spec.Tags...)
	if spec.Tenant != "" {
		tags = append(tags, tenantTagPrefix+spec.Tenant)
		if spec.Project != "" {
			tags = append(tags, projectTagPrefix+spec.Project)
		}
	}
	return tags
}

// undoCreate removes what a failed create made: the VM (stopped first)
// and its addresses. A task the operation started and did not see end
// (it was interrupted) is waited for first: Proxmox keeps the VM locked
// while it runs. It returns what could not be undone.
func (o *opState) undoCreate() error {
	if o.op.VMID == 0 {
		return nil
	}
	_ = o.step("rolling back")
	ctx, cancel := o.ctx()
	defer cancel()
	var errs []error
	if o.op.Task != "" && o.op.TaskNode != "" {
		// Its outcome does not matter, only that it is over.
		_, _ = o.r.p.WaitTask(ctx, provider.Task{ID: o.op.Task, Node: o.op.TaskNode}, nil)
	}
	ref, g, err := o.locate(ctx)
	switch {
	case errors.Is(err, provider.ErrNotFound):
	case err != nil:
		errs = append(errs, fmt.Errorf("VM %d: %w", ref.VMID, err))
	default:
		if g.Status == "running" {
			t, err := o.r.p.StopGuest(ctx, ref)
			if err := o.wait(t, err); err != nil {
				errs = append(errs, fmt.Errorf("stop VM %d on %s: %w", ref.VMID, ref.Node, err))
			}
		}
		t, err := o.r.p.DeleteGuest(ctx, ref)
		if err := o.wait(t, err); err != nil && !errors.Is(err, provider.ErrNotFound) {
			errs = append(errs, fmt.Errorf("delete VM %d on %s: %w", ref.VMID, ref.Node, err))
		}
	}
	// The addresses were never in use by a running guest for long, if at
	// all: release them without quarantine.
	if _, err := o.r.s.releaseOwned(o.op.VMID, len(o.op.Spec.NICs), true); err != nil {
		errs = append(errs, fmt.Errorf("release addresses: %w", err))
	}
	return errors.Join(errs...)
}

// locate finds the VM a create made: on its target node, or still next
// to its template when the move there did not happen.
func (o *opState) locate(ctx context.Context) (provider.GuestRef, provider.Guest, error) {
	ref := o.ref()
	g, err := o.r.p.Guest(ctx, ref)
	if !errors.Is(err, provider.ErrNotFound) || o.op.Spec.TemplateVMID == 0 {
		return ref, g, err
	}
	src, terr := o.template()
	if terr != nil || src.Node == ref.Node {
		return ref, g, err
	}
	ref.Node = src.Node
	g, err = o.r.p.Guest(ctx, ref)
	return ref, g, err
}

// power starts, stops or shuts down a guest; a guest already in the
// wanted state succeeds at once, so an interrupted operation can run again.
func (o *opState) power() error {
	ctx, cancel := o.ctx()
	defer cancel()
	ref, err := o.guestRef()
	if err != nil {
		return err
	}
	g, err := o.r.p.Guest(ctx, ref)
	if err != nil {
		return err
	}
	var t provider.Task
	switch o.op.Kind {
	case fsm.OpVMStart:
		if g.Status == "running" {
			return nil
		}
		if f := o.r.s.DRFence(ref.VMID); f != nil && f.Isolated {
			return fmt.Errorf("%w: guest %d is fenced: this site sees neither site %s, its DR plan's recovery site, nor a quorum of the other sites, which may be failing it over; it stays stopped until %s answers that it did not, or `moxxiectl site unfence` (docs/dr.md)",
				fsm.ErrConflict, ref.VMID, f.By, f.By)
		} else if f != nil {
			return fmt.Errorf("%w: guest %d is fenced: site %s failed its DR plan over and runs its copy; it stays stopped until `moxxiectl site failback` (docs/dr.md)",
				fsm.ErrConflict, ref.VMID, f.By)
		}
		_ = o.step("starting")
		t, err = o.r.p.StartGuest(ctx, ref)
	case fsm.OpVMStop:
		if g.Status == "stopped" {
			return nil
		}
		_ = o.step("stopping")
		t, err = o.r.p.StopGuest(ctx, ref)
	case fsm.OpVMShutdown:
		if g.Status == "stopped" {
			return nil
		}
		_ = o.step("shutting down")
		t, err = o.r.p.ShutdownGuest(ctx, ref, 0)
	}
	return o.wait(t, err)
}

// guestRef names the operation's guest, with its kind from the inventory.
func (o *opState) guestRef() (provider.GuestRef, error) {
	ref := o.ref()
	_, g, err := o.r.s.State().InventoryGuest(nil, o.op.VMID)
	if err != nil {
		return ref, err
	}
	if g != nil {
		ref.Kind, ref.Node = provider.GuestKind(g.Kind), g.Node
	}
	return ref, nil
}

// delete stops and destroys a guest and releases its addresses (into
// quarantine). A guest already gone only has its addresses released.
func (o *opState) delete() error {
	ctx, cancel := o.ctx()
	defer cancel()
	ref, err := o.guestRef()
	if err != nil {
		return err
	}
	g, err := o.r.p.Guest(ctx, ref)
	switch {
	case errors.Is(err, provider.ErrNotFound):
	case err != nil:
		return err
	default:
		if g.Status != "stopped" {
			_ = o.step("stopping")
			t, err := o.r.p.StopGuest(ctx, ref)
			if err := o.wait(t, err); err != nil {
				return err
			}
		}
		_ = o.step("deleting")
		t, err := o.r.p.DeleteGuest(ctx, ref)
		if err := o.wait(t, err); err != nil {
			return err
		}
	}
	_ = o.step("releasing addresses")
	released, err := o.r.s.releaseOwned(o.op.VMID, fsm.MaxVMNICs, false)
	if len(released) > 0 {
		_ = o.update(&fsm.OperationUpdateRequest{Addresses: released})
	}
	return err
}

// releaseOwned releases the addresses owned by a VM's NICs 0..nics-1.
func (s *Server) releaseOwned(vmid, nics int, force bool) ([]fsm.OpAddress, error) {
	var out []fsm.OpAddress
	for i := range nics {
		_, addrs, err := s.State().Addresses(nil, fsm.AddressFilter{Owner: owner(vmid, i)})
		if err != nil {
			return out, err
		}
		for _, a := range addrs {
			if _, err := s.raftApply(&fsm.AddressReleaseRequest{ID: a.ID, Force: force}); err != nil && !errors.Is(err, ipam.ErrNotAllocated) && !errors.Is(err, fsm.ErrNotFound) {
				return out, err
			}
			out = append(out, fsm.OpAddress{NIC: i, ID: a.ID, Address: a.Address, PrefixID: a.PrefixID, DNSName: a.DNSName})
		}
	}
	return out, nil
}

// applyKeyed proposes an address allocation with an idempotency key and
// returns its addresses, the first result's when the key was used before.
func (s *Server) applyKeyed(req *fsm.AddressAllocateRequest, key string) (*fsm.AddressList, error) {
	m := req.Meta()
	m.Now, m.Actor, m.IdempotencyKey, m.RequestHash = s.now().UnixNano(), opActor, key, key
	ctx, cancel := context.WithTimeout(context.Background(), defaultApplyTimeout)
	defer cancel()
	res, _, err := s.Apply(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.Err != nil {
		return nil, res.Err
	}
	switch v := res.Value.(type) {
	case *fsm.AddressList:
		return v, nil
	case json.RawMessage:
		var l fsm.AddressList
		if err := json.Unmarshal(v, &l); err != nil {
			return nil, err
		}
		return &l, nil
	}
	return nil, fmt.Errorf("node: unexpected allocation result %T", res.Value)
}

// fieldPrefix puts a field error of a NIC's allocation under the NIC.
func fieldPrefix(err error, prefix string) error {
	var fe *fsm.FieldError
	if errors.As(err, &fe) {
		c := *fe
		c.Field = prefix + "." + fe.Field
		return &c
	}
	return err
}

// opError turns an error into the API's error shape.
func opError(err error) *fsm.OpError {
	e := &fsm.OpError{Code: api.CodeFailed, Message: err.Error()}
	var fe *fsm.FieldError
	if errors.As(err, &fe) {
		e.Field = fe.Field
	}
	switch {
	case errors.Is(err, errInterrupted):
		e.Code = api.CodeInterrupted
	case errors.Is(err, ipam.ErrExhausted):
		e.Code = api.CodeExhausted
	case errors.Is(err, provider.ErrTaskFailed):
		e.Code = api.CodeTaskFailed
	case errors.Is(err, provider.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		e.Code = api.CodePlatformUnavailable
	case errors.Is(err, provider.ErrRejected):
		e.Code = api.CodePlatformRejected
	case errors.Is(err, provider.ErrUnauthorized):
		e.Code = api.CodePlatformUnauthorized
	case errors.Is(err, provider.ErrNotFound), errors.Is(err, fsm.ErrNotFound):
		e.Code = api.CodeNotFound
	}
	return e
}
