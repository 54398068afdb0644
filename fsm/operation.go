package fsm

import (
	"fmt"

	"github.com/moxxie/moxxie/quota"

	"github.com/hashicorp/go-memdb"
)

// Operations are long-running work on the virtualization platform (create
// a VM, start it, delete it), recorded in the state so that any server can
// report their progress and a new leader knows what was in flight. The
// leader's runner executes them and records each step with an
// OperationUpdateRequest.

const tableOperations = "operations"

// Operation kinds.
const (
	OpVMCreate   = "vm.create"
	OpVMStart    = "vm.start"
	OpVMStop     = "vm.stop"
	OpVMShutdown = "vm.shutdown"
	OpVMDelete   = "vm.delete"
)

// Operation states. Pending and running are active; the others are final.
const (
	OpPending   = "pending"
	OpRunning   = "running"
	OpSucceeded = "succeeded"
	OpFailed    = "failed"
)

// Operation is one piece of long-running work and what became of it.
type Operation struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Status string `json:"status"`
	// VMID and Node name the guest; a create learns its VMID while it runs.
	VMID int    `json:"vmid,omitempty"`
	Node string `json:"node,omitempty"`
	// Tenant is the tenant the guest belongs to, set by the API when it
	// records the operation; tenant tokens see only their tenant's.
	Tenant string `json:"tenant,omitempty"`
	// Spec is what a vm.create asked for.
	Spec *VMSpec `json:"spec,omitempty"`
	// NodeAllocatable is what the node placement chose may hold under its
	// capacity policy, stamped by the leader: the create is admitted only
	// if the node's allocations and the VM fit in it, in the same Apply,
	// so creates placed at the same time cannot together overfill a node.
	NodeAllocatable *quota.Capacity `json:"node_allocatable,omitempty" codec:",omitempty"`
	// Step says what the operation is doing now; Progress is the newest
	// line of the platform task it waits on, Task that task's ID.
	Step     string `json:"step,omitempty"`
	Progress string `json:"progress,omitempty"`
	Task     string `json:"task,omitempty"`
	TaskNode string `json:"task_node,omitempty"`
	// Addresses are the IPAM addresses a vm.create allocated, or a
	// vm.delete released.
	Addresses []OpAddress `json:"addresses,omitempty"`
	// Error says why a failed operation failed; RolledBack that what it had
	// done was undone.
	Error      *OpError  `json:"error,omitempty"`
	RolledBack bool      `json:"rolled_back,omitempty"`
	Actor      string    `json:"actor,omitempty"`
	CreatedAt  Timestamp `json:"created_at"`
	UpdatedAt  Timestamp `json:"updated_at"`
	FinishedAt Timestamp `json:"finished_at,omitzero"`

	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`

	// Policy, Slot and Missed name a policy run: its policy, the slot it
	// runs for and the older slots it covers; Stats counts its items.
	Policy string    `json:"policy,omitempty" codec:",omitempty"`
	Slot   Timestamp `json:"slot,omitzero" codec:",omitempty"`
	Missed int       `json:"missed,omitempty" codec:",omitempty"`
	Stats  *RunStats `json:"stats,omitempty" codec:",omitempty"`
	// Volume is what a volume operation or a restore asks for.
	Volume *VolumeSpec `json:"volume,omitempty" codec:",omitempty"`

	// RequestID is the X-Request-ID of the request that started the
	// operation, and TraceParent its trace context (WriteMeta): the
	// leader's runner logs and traces the operation's platform calls
	// under them.
	RequestID   string `json:"request_id,omitempty" codec:",omitempty"`
	TraceParent string `json:"-" codec:",omitempty"`
}

// Active reports whether the operation has not finished.
func (o *Operation) Active() bool { return o.Status == OpPending || o.Status == OpRunning }

// VMSpec is a request for a new VM, as validated and completed by the API.
type VMSpec struct {
	Name string `json:"name"`
	// TemplateVMID is the template cloned; zero creates an empty VM.
	TemplateVMID int      `json:"template_vmid,omitempty"`
	Node         string   `json:"node"`
	Cores        int      `json:"cores"`
	MemoryMiB    int      `json:"memory_mib"`
	DiskGiB      int      `json:"disk_gib,omitempty"`
	Storage      string   `json:"storage,omitempty"`
	Tenant       string   `json:"tenant,omitempty"`
	Project      string   `json:"project,omitempty" codec:",omitempty"`
	Tags         []string `json:"tags,omitempty"`
	Description  string   `json:"description,omitempty"`
	Start        bool     `json:"start"`
	NICs         []VMNIC  `json:"nics,omitempty"`
	SSHKeys      []string `json:"ssh_keys,omitempty"`
}

// VMNIC is one network interface of a new VM: where it plugs in and the
// IPAM prefix its address comes from.
type VMNIC struct {
	Bridge   string `json:"bridge"`
	VLAN     int    `json:"vlan,omitempty"`
	PrefixID string `json:"prefix_id,omitempty"`
	// Address asks for one address of the prefix (falling back to the
	// next free one); empty takes the next free.
	Address string `json:"address,omitempty"`
	DNSName string `json:"dns_name,omitempty"`
}

// OpAddress is one address an operation allocated or released.
type OpAddress struct {
	NIC      int    `json:"nic"`
	ID       string `json:"id"`
	Address  string `json:"address"`
	PrefixID string `json:"prefix_id"`
	DNSName  string `json:"dns_name,omitempty"`
}

// OpError is why an operation failed, in the API's error shape.
type OpError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// OperationCreateRequest records a new operation as pending.
type OperationCreateRequest struct {
	WriteMeta
	Op Operation
}

// Type returns OperationCreateType.
func (*OperationCreateRequest) Type() MessageType { return OperationCreateType }

// OperationUpdateRequest records progress of an operation; nil fields are
// left alone. A finished operation cannot change.
type OperationUpdateRequest struct {
	WriteMeta
	ID         string
	Status     *string
	Step       *string
	Progress   *string
	Task       *string
	TaskNode   *string
	VMID       *int
	Node       *string
	Addresses  []OpAddress
	Error      *OpError
	RolledBack bool
	// VolumeSlot and VolumeResult record, for a volume operation, the slot
	// it chose and the volume it made or moved the disk to.
	VolumeSlot   *string `codec:",omitempty"`
	VolumeResult *string `codec:",omitempty"`
}

// Type returns OperationUpdateType.
func (*OperationUpdateRequest) Type() MessageType { return OperationUpdateType }

func validOpKind(k string) bool {
	switch k {
	case OpVMCreate, OpVMStart, OpVMStop, OpVMShutdown, OpVMDelete,
		OpVolumeCreate, OpVolumeResize, OpVolumeAttach, OpVolumeDetach, OpVolumeDelete, OpVolumeMove, OpBackupRestore:
		return true
	}
	return false
}

// isVolumeOp reports whether kind works on one guest disk.
func isVolumeOp(kind string) bool {
	switch kind {
	case OpVolumeCreate, OpVolumeResize, OpVolumeAttach, OpVolumeDetach, OpVolumeDelete, OpVolumeMove:
		return true
	}
	return false
}

// IsPolicyRun reports whether the operation is a run of a storage policy.
func (o *Operation) IsPolicyRun() bool { return o.Kind == OpSnapshotRun || o.Kind == OpBackupRun }

// Validate checks the new operation.
func (r *OperationCreateRequest) Validate() error {
	o := &r.Op
	if o.ID == "" {
		return fieldErrf("id", ErrInvalid, "operation id is required")
	}
	if !validOpKind(o.Kind) {
		return fieldErrf("kind", ErrInvalid, "unknown operation kind %q", o.Kind)
	}
	if o.Kind == OpVMCreate {
		if o.Spec == nil {
			return fieldErrf("spec", ErrInvalid, "vm.create needs a spec")
		}
		if err := o.Spec.Validate(); err != nil {
			return err
		}
	}
	if o.Kind != OpVMCreate && (o.VMID < MinVMID || o.VMID > MaxVMID) {
		return fieldErrf("vmid", ErrInvalid, "vmid %d is outside %d-%d", o.VMID, MinVMID, MaxVMID)
	}
	if isVolumeOp(o.Kind) || o.Kind == OpBackupRestore {
		return validateVolume(o.Kind, o.Volume)
	}
	return nil
}

// Validate checks the update.
func (r *OperationUpdateRequest) Validate() error {
	if r.ID == "" {
		return fieldErrf("id", ErrInvalid, "operation id is required")
	}
	if r.Status != nil {
		switch *r.Status {
		case OpRunning, OpSucceeded, OpFailed:
		default:
			return fieldErrf("status", ErrInvalid, "status %q cannot be set", *r.Status)
		}
		if *r.Status == OpFailed && r.Error == nil {
			return fieldErrf("error", ErrInvalid, "a failed operation needs an error")
		}
	}
	return nil
}

func applyOperationCreate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*OperationCreateRequest)
	op := req.Op
	if raw, err := txn.First(tableOperations, "id", op.ID); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("id", ErrConflict, "operation %s already exists", op.ID)
	}
	if op.VMID != 0 {
		it, err := txn.Get(tableOperations, "vmid_active", op.VMID, true)
		if err != nil {
			return nil, err
		}
		if raw := it.Next(); raw != nil {
			other := raw.(*Operation)
			return nil, fieldErrf("vmid", ErrConflict, "vm %d has operation %s (%s) in progress", op.VMID, other.ID, other.Kind)
		}
	}
	if err := admitPlacement(txn, &op); err != nil {
		return nil, err
	}
	if isVolumeOp(op.Kind) {
		if err := admitVolume(txn, &op); err != nil {
			return nil, err
		}
	}
	if op.Kind == OpBackupRestore {
		if err := admitRestore(txn, &op); err != nil {
			return nil, err
		}
	}
	if h := op.reservation(); h.tenant != "" {
		// Admission: the VM's resources are reserved until the operation
		// ends, when the inventory counts the guest instead.
		if err := checkProject(txn, h.tenant, h.project); err != nil {
			return nil, err
		}
		if err := charge(txn, index, h, true); err != nil {
			return nil, err
		}
	}
	now := Timestamp(req.Now)
	op.Status, op.Actor = OpPending, req.Actor
	op.RequestID, op.TraceParent = req.RequestID, req.TraceParent
	op.CreatedAt, op.UpdatedAt, op.FinishedAt = now, now, 0
	op.CreateIndex, op.ModifyIndex = index, index
	if err := insert(txn, tableOperations, index, &op); err != nil {
		return nil, err
	}
	return &op, nil
}

func applyOperationUpdate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*OperationUpdateRequest)
	raw, err := txn.First(tableOperations, "id", req.ID)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, notFound("operation", req.ID)
	}
	op := *raw.(*Operation)
	if !op.Active() {
		return nil, fieldErrf("id", ErrConflict, "operation %s has finished (%s)", op.ID, op.Status)
	}
	if req.Status != nil {
		op.Status = *req.Status
	}
	if req.Step != nil {
		op.Step = *req.Step
	}
	if req.Progress != nil {
		op.Progress = *req.Progress
	}
	if req.Task != nil {
		op.Task = *req.Task
	}
	if req.TaskNode != nil {
		op.TaskNode = *req.TaskNode
	}
	if req.VMID != nil {
		op.VMID = *req.VMID
	}
	if req.Node != nil {
		op.Node = *req.Node
	}
	if req.Addresses != nil {
		op.Addresses = req.Addresses
	}
	if req.Error != nil {
		e := *req.Error
		op.Error = &e
	}
	if (req.VolumeSlot != nil || req.VolumeResult != nil) && op.Volume != nil {
		v := *op.Volume
		if req.VolumeSlot != nil {
			v.Slot = *req.VolumeSlot
		}
		if req.VolumeResult != nil {
			v.Result = *req.VolumeResult
		}
		op.Volume = &v
	}
	op.RolledBack = op.RolledBack || req.RolledBack
	now := Timestamp(req.Now)
	op.UpdatedAt, op.ModifyIndex = now, index
	if !op.Active() {
		op.FinishedAt = now
		if err := charge(txn, index, op.reservation().negate(), false); err != nil {
			return nil, err
		}
		if err := finishRun(txn, index, &op); err != nil {
			return nil, err
		}
		if err := finishDRRun(txn, index, &op); err != nil {
			return nil, err
		}
	}
	if err := insert(txn, tableOperations, index, &op); err != nil {
		return nil, err
	}
	return &op, nil
}

// operationTables returns the operations part of the memdb schema.
func operationTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableOperations: {Name: tableOperations, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
			// active finds the operations still to run or running.
			"active": {Name: "active", Indexer: &memdb.ConditionalIndex{Conditional: opActive}},
			// vmid_active finds a guest's operation in progress.
			"vmid_active": {Name: "vmid_active", AllowMissing: true, Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.IntFieldIndex{Field: "VMID"},
				&memdb.ConditionalIndex{Conditional: opActive},
			}}},
		}},
	}
}

func opActive(obj any) (bool, error) {
	o, ok := obj.(*Operation)
	if !ok {
		return false, fmt.Errorf("fsm: %T is not an operation", obj)
	}
	return o.Active(), nil
}

// Operations lists operations by ID (which is time-ordered), only the
// active ones when activeOnly.
func (s *Store) Operations(ws memdb.WatchSet, activeOnly bool) (uint64, []*Operation, error) {
	if activeOnly {
		return list[*Operation](s, ws, tableOperations, "active", true)
	}
	return list[*Operation](s, ws, tableOperations, "id")
}

// Operation returns one operation, or nil.
func (s *Store) Operation(ws memdb.WatchSet, id string) (uint64, *Operation, error) {
	return getByID[*Operation](s, ws, tableOperations, id)
}
