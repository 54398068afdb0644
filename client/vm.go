package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Paths of the VM and operation API.
const (
	vmsPath        = "/v1/vms"
	operationsPath = "/v1/operations"
)

// Operation kinds.
const (
	OpVMCreate   = "vm.create"
	OpVMStart    = "vm.start"
	OpVMStop     = "vm.stop"
	OpVMShutdown = "vm.shutdown"
	OpVMDelete   = "vm.delete"
)

// Operation statuses. Pending and running are active; succeeded and failed
// are final.
const (
	OpPending   = "pending"
	OpRunning   = "running"
	OpSucceeded = "succeeded"
	OpFailed    = "failed"
)

// operationWait is the wait of each blocking read WaitOperation makes.
const operationWait = 30 * time.Second

// VMCreateRequest describes a VM to create. Zero fields take the server's
// defaults: the template's cores and memory (else 1 core and 1024 MiB), the
// node with the most memory free, and a start once created.
type VMCreateRequest struct {
	Name string `json:"name"`
	// Template is the name or VMID of a template in the inventory; empty
	// creates an empty VM, which then needs Disk.
	Template string `json:"template,omitempty"`
	Node     string `json:"node,omitempty"`
	Cores    int    `json:"cores,omitempty"`
	// Memory is in MiB, Disk in GiB.
	Memory  int    `json:"memory,omitempty"`
	Disk    int    `json:"disk,omitempty"`
	Storage string `json:"storage,omitempty"`
	Tenant  string `json:"tenant,omitempty"`
	// Project is a project of Tenant, which must exist; the VM counts
	// against its quota and the tenant's.
	Project     string   `json:"project,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	Description string   `json:"description,omitempty"`
	// Start, when set to false, leaves the new VM stopped.
	Start   *bool    `json:"start,omitempty"`
	NICs    []VMNIC  `json:"nics,omitempty"`
	SSHKeys []string `json:"ssh_keys,omitempty"`
}

// VMNIC is one network interface of a new VM: where it plugs in and the
// IPAM prefix its address comes from.
type VMNIC struct {
	Bridge string `json:"bridge"`
	VLAN   int    `json:"vlan,omitempty"`
	// PrefixID is the active prefix the NIC's address is allocated from;
	// empty allocates none.
	PrefixID string `json:"prefix_id,omitempty"`
	// Address asks for one address of the prefix (falling back to the next
	// free one); empty takes the next free.
	Address string `json:"address,omitempty"`
	DNSName string `json:"dns_name,omitempty"`
}

// VMSpec is a VM request as the server validated and completed it.
type VMSpec struct {
	Name         string   `json:"name"`
	TemplateVMID int      `json:"template_vmid,omitempty"`
	Node         string   `json:"node"`
	Cores        int      `json:"cores"`
	MemoryMiB    int      `json:"memory_mib"`
	DiskGiB      int      `json:"disk_gib,omitempty"`
	Storage      string   `json:"storage,omitempty"`
	Tenant       string   `json:"tenant,omitempty"`
	Project      string   `json:"project,omitempty"`
	Tags         []string `json:"tags,omitempty"`
	Description  string   `json:"description,omitempty"`
	Start        bool     `json:"start"`
	NICs         []VMNIC  `json:"nics,omitempty"`
	SSHKeys      []string `json:"ssh_keys,omitempty"`
}

// OpAddress is one IPAM address an operation allocated or released.
type OpAddress struct {
	// NIC is the index of the NIC in the spec: 0 is net0.
	NIC      int    `json:"nic"`
	ID       string `json:"id"`
	Address  string `json:"address"`
	PrefixID string `json:"prefix_id"`
	DNSName  string `json:"dns_name,omitempty"`
}

// OpError says why an operation failed, in the shape of an API error.
type OpError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Operation is long-running work on the virtualization platform, such as
// creating a VM, and what became of it.
type Operation struct {
	ID string `json:"id"`
	// Kind is one of the Op* kinds, such as OpVMCreate.
	Kind string `json:"kind"`
	// Status is OpPending, OpRunning, OpSucceeded or OpFailed.
	Status string `json:"status"`
	// VMID and Node name the guest; a vm.create learns its VMID while it
	// runs.
	VMID int    `json:"vmid,omitempty"`
	Node string `json:"node,omitempty"`
	// Spec is what a vm.create asked for.
	Spec *VMSpec `json:"spec,omitempty"`
	// Step says what the operation is doing now; Progress is the newest
	// line of the platform task it waits on, Task that task's ID.
	Step     string `json:"step,omitempty"`
	Progress string `json:"progress,omitempty"`
	Task     string `json:"task,omitempty"`
	// TaskNode is the node that runs Task.
	TaskNode string `json:"task_node,omitempty"`
	// Addresses are the IPAM addresses a vm.create allocated or a
	// vm.delete released.
	Addresses []OpAddress `json:"addresses,omitempty"`
	// Error says why a failed operation failed; RolledBack that what it had
	// done was undone.
	Error       *OpError `json:"error,omitempty"`
	RolledBack  bool     `json:"rolled_back,omitempty"`
	Actor       string   `json:"actor,omitempty"`
	CreatedAt   Time     `json:"created_at,omitzero"`
	UpdatedAt   Time     `json:"updated_at,omitzero"`
	FinishedAt  Time     `json:"finished_at,omitzero"`
	CreateIndex uint64   `json:"create_index"`
	ModifyIndex uint64   `json:"modify_index"`
	// RequestID is the X-Request-ID of the request that started the
	// operation.
	RequestID string `json:"request_id,omitempty"`
	// Volume is what a volume operation or a restore asks for and made.
	Volume *VolumeSpec `json:"volume,omitempty"`
	// Policy, Slot and Missed name a snapshot or backup policy run: its
	// policy, its slot and the older slots it covers; Stats counts its
	// guests.
	Policy string    `json:"policy,omitempty"`
	Slot   Time      `json:"slot,omitzero"`
	Missed int       `json:"missed,omitempty"`
	Stats  *RunStats `json:"stats,omitempty"`
}

// Active reports whether the operation has not finished yet.
func (o *Operation) Active() bool { return o.Status == OpPending || o.Status == OpRunning }

// OperationFailedError is the error WaitOperation returns for an operation
// that failed.
type OperationFailedError struct {
	Op *Operation
}

// Error formats the failure on one line, for example
// `vm.create 0190... failed: exhausted: prefix p1 is full (field nics[0].prefix_id; rolled back)`.
func (e *OperationFailedError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op.Kind + " " + e.Op.ID + " failed")
	var notes []string
	if oe := e.Op.Error; oe != nil {
		b.WriteString(": ")
		if oe.Code != "" {
			b.WriteString(oe.Code + ": ")
		}
		b.WriteString(oneLine(oe.Message))
		if oe.Field != "" {
			notes = append(notes, "field "+oe.Field)
		}
	}
	if e.Op.RolledBack {
		notes = append(notes, "rolled back")
	}
	if len(notes) > 0 {
		b.WriteString(" (" + strings.Join(notes, "; ") + ")")
	}
	return b.String()
}

// vmPath returns the path of one VM, with action appended when not empty.
func vmPath(vmid int, action string) string {
	p := vmsPath + "/" + strconv.Itoa(vmid)
	if action != "" {
		p += "/" + action
	}
	return p
}

// CreateVM asks for a new VM (POST /v1/vms). The server validates and
// places it, then answers at once with the pending vm.create operation;
// follow it with WaitOperation. idempotencyKey, when not empty, replaces
// the random key the client sends, so that the same request made again (by
// another process, after a crash) returns the first operation instead of
// creating a second VM.
func (c *Client) CreateVM(ctx context.Context, req VMCreateRequest, idempotencyKey string) (*Operation, *Meta, error) {
	return writeOne[Operation](ctx, c, http.MethodPost, vmsPath, req, &WriteOptions{IdempotencyKey: idempotencyKey})
}

// StartVM asks for a VM to be started (POST /v1/vms/{vmid}/start) and
// returns the pending operation.
func (c *Client) StartVM(ctx context.Context, vmid int, idempotencyKey string) (*Operation, *Meta, error) {
	return c.vmAction(ctx, http.MethodPost, vmPath(vmid, "start"), idempotencyKey)
}

// StopVM asks for a VM to be stopped at once, like pulling the plug (POST
// /v1/vms/{vmid}/stop), and returns the pending operation.
func (c *Client) StopVM(ctx context.Context, vmid int, idempotencyKey string) (*Operation, *Meta, error) {
	return c.vmAction(ctx, http.MethodPost, vmPath(vmid, "stop"), idempotencyKey)
}

// ShutdownVM asks a VM's operating system to shut down (POST
// /v1/vms/{vmid}/shutdown) and returns the pending operation.
func (c *Client) ShutdownVM(ctx context.Context, vmid int, idempotencyKey string) (*Operation, *Meta, error) {
	return c.vmAction(ctx, http.MethodPost, vmPath(vmid, "shutdown"), idempotencyKey)
}

// DeleteVM asks for a VM to be destroyed with its disks and its IPAM
// addresses released (DELETE /v1/vms/{vmid}), and returns the pending
// operation.
func (c *Client) DeleteVM(ctx context.Context, vmid int, idempotencyKey string) (*Operation, *Meta, error) {
	return c.vmAction(ctx, http.MethodDelete, vmPath(vmid, ""), idempotencyKey)
}

func (c *Client) vmAction(ctx context.Context, method, path, idempotencyKey string) (*Operation, *Meta, error) {
	return writeOne[Operation](ctx, c, method, path, nil, &WriteOptions{IdempotencyKey: idempotencyKey})
}

// Operations lists operations, oldest first; only those pending or running
// when activeOnly (GET /v1/operations).
func (c *Client) Operations(ctx context.Context, activeOnly bool, q *QueryOptions) ([]Operation, *Meta, error) {
	var v url.Values
	if activeOnly {
		v = url.Values{"active": {"true"}}
	}
	return getList[Operation](ctx, c, operationsPath, "operations", v, q)
}

// Operation reads one operation (GET /v1/operations/{id}). With q.Index
// set it blocks until an operation changes, which is how WaitOperation
// follows one.
func (c *Client) Operation(ctx context.Context, id string, q *QueryOptions) (*Operation, *Meta, error) {
	return getOne[Operation](ctx, c, itemPath(operationsPath, id), nil, q)
}

// WaitOperation follows an operation with blocking reads until it
// succeeds or fails, calling progress (when not nil) with the operation as
// first read and after every change. It returns the final operation; one
// that failed comes with an *OperationFailedError. It returns early, with
// ctx's error, when ctx is done.
func (c *Client) WaitOperation(ctx context.Context, id string, progress func(*Operation)) (*Operation, error) {
	var index uint64
	var last *Operation
	for {
		var q *QueryOptions
		if index > 0 {
			q = &QueryOptions{Index: index, Wait: operationWait}
		}
		op, m, err := c.Operation(ctx, id, q)
		if err != nil {
			return nil, err
		}
		if progress != nil && (last == nil || opChanged(last, op)) {
			progress(op)
		}
		last = op
		if !op.Active() {
			if op.Status == OpFailed {
				return op, &OperationFailedError{Op: op}
			}
			return op, nil
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

// opChanged reports whether an operation read again differs from the last
// read in anything a progress report shows.
func opChanged(old, op *Operation) bool {
	return op.ModifyIndex != old.ModifyIndex || op.Status != old.Status ||
		op.Step != old.Step || op.Progress != old.Progress || op.VMID != old.VMID
}
