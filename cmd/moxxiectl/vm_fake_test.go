package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/ipam"
)

// platformAPI is the real API handler over an in-memory store, seeded
// with a small Proxmox inventory, with a stand-in for the leader's
// operation runner: each blocking read of an operation that would wait
// moves that operation one step on, as the runner would meanwhile. That
// keeps moxxiectl's --wait output deterministic without any timing.
type platformAPI struct {
	*httptest.Server
	caFile string

	mu     sync.Mutex
	fsm    *fsm.FSM
	index  uint64    // guarded by mu; the last applied log index
	now    time.Time // guarded by mu; the leader clock, one second per write
	nextVM int       // guarded by mu; the VMID the next create gets
	// platform is what Platform returns; "" makes VM requests fail.
	platform string // guarded by mu
	steps    map[string][]opStep
	calls    []string // guarded by mu; "METHOD path?query", in order
	bodies   []string // guarded by mu; request bodies, in order
	keys     []string // guarded by mu; Idempotency-Key of each request
	failure  error    // guarded by mu; set when the stand-in runner broke
}

// opStep is one step of the stand-in runner: it returns the update to
// record, having made any other change the step makes (IPAM, inventory).
type opStep func(p *platformAPI, op *fsm.Operation) *fsm.OperationUpdateRequest

// fakeStart is the leader clock at the start of a test.
var fakeStart = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// platformAPI's token secret.
const platformToken = "tok"

func newPlatformAPI(t *testing.T) *platformAPI {
	t.Helper()
	p := &platformAPI{fsm: fsm.New(), now: fakeStart, nextVM: 104, platform: "proxmox", steps: map[string][]opStep{}}
	p.mustApply(t, &fsm.TokenCreateRequest{Token: fsm.Token{AccessorID: "0f6a3c1e-acc1", SecretHash: api.HashSecret(platformToken), Role: "admin"}})
	p.mustApply(t, &fsm.InventorySyncRequest{
		Nodes: []fsm.InvNode{
			{Name: "pve1", Status: "online", MaxCPU: 16, MaxMem: 64 << 30, MaxDisk: 100 << 30, CPU: 0.125, Mem: 21 << 30, Disk: 12 << 30},
			{Name: "pve2", Status: "online", MaxCPU: 16, MaxMem: 64 << 30, MaxDisk: 100 << 30, CPU: 0.031, Mem: 9 << 30, Disk: 8 << 30},
			{Name: "pve3", Status: "offline", MaxCPU: 8, MaxMem: 32 << 30, MaxDisk: 100 << 30},
		},
		Guests: []fsm.InvGuest{
			{VMID: 101, Kind: fsm.GuestKindVM, Node: "pve1", Name: "web1", Status: "running", Tags: []string{"tenant.acme", "web"},
				Tenant: "acme", MaxCPU: 2, MaxMem: 2 << 30, MaxDisk: 32 << 30},
			{VMID: 102, Kind: fsm.GuestKindContainer, Node: "pve2", Name: "dns1", Status: "running", MaxCPU: 1, MaxMem: 512 << 20, MaxDisk: 8 << 30},
			{VMID: 103, Kind: fsm.GuestKindVM, Node: "pve2", Name: "db1", Status: "stopped", Tags: []string{"db", "tenant.acme"},
				Tenant: "acme", MaxCPU: 4, MaxMem: 8 << 30, MaxDisk: 64 << 30},
			{VMID: 9000, Kind: fsm.GuestKindVM, Node: "pve1", Name: "ubuntu-24.04", Status: "stopped", Template: true,
				MaxCPU: 2, MaxMem: 2 << 30, MaxDisk: 8 << 30},
		},
		Storage: []fsm.InvStorage{
			{ID: "pve1/local", Node: "pve1", Storage: "local", Type: "dir", Content: []string{"iso", "vztmpl", "backup"},
				Status: "available", Used: 7 << 30, Total: 94 << 30},
			{ID: "pve1/local-lvm", Node: "pve1", Storage: "local-lvm", Type: "lvmthin", Content: []string{"images", "rootdir"},
				Status: "available", Used: 41 << 30, Total: 350 << 30},
			{ID: "pve2/local-lvm", Node: "pve2", Storage: "local-lvm", Type: "lvmthin", Content: []string{"images", "rootdir"},
				Status: "available", Used: 72 << 30, Total: 350 << 30},
		},
	})
	// A sync later finds one more node gone; the inventory keeps it.
	p.mustApply(t, &fsm.InventorySyncRequest{
		Nodes:     []fsm.InvNode{{Name: "pve4", Status: "online", MaxCPU: 8, MaxMem: 32 << 30, MaxDisk: 100 << 30}},
		GoneNodes: nil,
	})
	p.mustApply(t, &fsm.InventorySyncRequest{GoneNodes: []string{"pve4"}})

	h := api.New(p, api.Options{})
	p.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		call := r.Method + " " + r.URL.Path
		if r.URL.RawQuery != "" {
			call += "?" + r.URL.RawQuery
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		p.calls = append(p.calls, call)
		p.bodies = append(p.bodies, string(body))
		p.keys = append(p.keys, r.Header.Get("Idempotency-Key"))
		p.mu.Unlock()
		p.runOnWait(r)
		h.ServeHTTP(w, r)
	}))
	p.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.StartTLS()
	t.Cleanup(p.Close)
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.failure != nil {
			t.Errorf("stand-in runner: %v", p.failure)
		}
	})
	p.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *platformAPI) env() map[string]string {
	return map[string]string{envAddr: p.URL, envToken: platformToken, envCACert: p.caFile}
}

// cli runs moxxiectl against p and fails the test unless it exits with
// want.
func (p *platformAPI) cli(t *testing.T, want int, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := runCLI(t, p.env(), args...)
	if code != want {
		t.Fatalf("moxxiectl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, stdout, stderr)
	}
	return stdout, stderr
}

// lastCall returns the last request's call line, body and
// Idempotency-Key.
func (p *platformAPI) lastCall() (call, body, key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.calls) - 1
	return p.calls[n], p.bodies[n], p.keys[n]
}

// callsSince returns the call lines of the requests after the first n.
func (p *platformAPI) callsSince(n int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls[n:]...)
}

// callCount returns the number of requests so far.
func (p *platformAPI) callCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

// findCall returns the body and Idempotency-Key of the last request with
// the call line call.
func (p *platformAPI) findCall(t *testing.T, call string) (body, key string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.calls) - 1; i >= 0; i-- {
		if p.calls[i] == call {
			return p.bodies[i], p.keys[i]
		}
	}
	t.Fatalf("no request %q in %q", call, p.calls)
	return "", ""
}

func (p *platformAPI) mustApply(t *testing.T, cmd fsm.Command) any {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	v, err := p.applyLocked(cmd)
	if err != nil {
		t.Fatalf("apply %T: %v", cmd, err)
	}
	return v
}

// applyLocked stamps cmd with the clock and applies it as the next log
// entry.
func (p *platformAPI) applyLocked(cmd fsm.Command) (any, error) {
	if m := cmd.Meta(); m.Now == 0 {
		m.Now = p.tickLocked().UnixNano()
	}
	res, _, err := p.applyRaw(cmd)
	if err != nil {
		return nil, err
	}
	return res.Value, res.Err
}

func (p *platformAPI) tickLocked() time.Time {
	p.now = p.now.Add(time.Second)
	return p.now
}

func (p *platformAPI) applyRaw(cmd fsm.Command) (*fsm.Result, uint64, error) {
	data, err := fsm.Encode(cmd)
	if err != nil {
		return nil, 0, err
	}
	p.index++
	res, ok := p.fsm.Apply(&raft.Log{Index: p.index, Term: 1, Type: raft.LogCommand, Data: data}).(*fsm.Result)
	if !ok {
		return nil, 0, fmt.Errorf("apply %T: no result", cmd)
	}
	return res, p.index, nil
}

// objectIDs matches the IDs the API makes at random (UUIDv7), and
// requestIDs the request IDs it generates.
var (
	objectIDs  = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}`)
	requestIDs = regexp.MustCompile(`request [0-9a-f]{12}-[0-9a-z]+`)
)

// anyID stands for every random ID in compared output; it is as wide as
// one, so that tables keep their alignment.
const anyID = "01234567-89ab-7cde-8f01-23456789abcd"

// plain replaces the random IDs in s with anyID and <req>, so that output
// can be compared.
func plain(s string) string {
	return requestIDs.ReplaceAllString(objectIDs.ReplaceAllString(s, anyID), "request <req>")
}

// The api.Backend of a single server that always leads.

func (p *platformAPI) ID() string        { return "s1" }
func (p *platformAPI) State() *fsm.Store { return p.fsm.State() }
func (p *platformAPI) IsLeader() bool    { return true }
func (p *platformAPI) Ready() error      { return nil }
func (p *platformAPI) Platform() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.platform
}
func (p *platformAPI) VerifyLeader(context.Context) error {
	return nil
}
func (p *platformAPI) AwaitLeading(context.Context, bool) error { return nil }
func (p *platformAPI) WaitDNS(context.Context, uint64) error    { return nil }

func (p *platformAPI) Now() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tickLocked()
}

func (p *platformAPI) Apply(_ context.Context, cmd fsm.Command) (*fsm.Result, uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	res, idx, err := p.applyRaw(cmd)
	if err == nil && res.Err == nil && !res.Replayed {
		if op, ok := res.Value.(*fsm.Operation); ok {
			status, templateNode := p.guestLocked(op.VMID).Status, ""
			if op.Spec != nil {
				templateNode = p.guestLocked(op.Spec.TemplateVMID).Node
			}
			p.steps[op.ID] = runnerSteps(op, status, templateNode)
		}
	}
	return res, idx, err
}

var errNotHere = errors.New("not supported by the test platform")

func (p *platformAPI) Forward(*http.Request) (*http.Response, error) { return nil, errNotHere }
func (p *platformAPI) Status(context.Context) (*api.Status, error)   { return nil, errNotHere }
func (p *platformAPI) Join(context.Context, api.JoinRequest) error   { return errNotHere }
func (p *platformAPI) Remove(context.Context, string) error          { return errNotHere }
func (p *platformAPI) SnapshotSave(context.Context, io.Writer) (*fsm.ArchiveMeta, error) {
	return nil, errNotHere
}
func (p *platformAPI) SnapshotRestore(context.Context, fsm.WriteMeta, func() (*fsm.Archive, error)) (*fsm.Archive, error) {
	return nil, errNotHere
}

// runOnWait moves an operation one step on when r is a blocking read of
// it that would otherwise wait: the index it has seen is current.
func (p *platformAPI) runOnWait(r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/v1/operations/")
	if !ok || r.Method != http.MethodGet {
		return
	}
	seen, err := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	if err != nil || seen == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	idx, op, err := p.fsm.State().Operation(nil, id)
	if err != nil || op == nil || idx > seen || len(p.steps[id]) == 0 {
		return
	}
	step := p.steps[id][0]
	p.steps[id] = p.steps[id][1:]
	u := step(p, op)
	u.ID = op.ID
	if _, err := p.applyLocked(u); err != nil && p.failure == nil {
		p.failure = fmt.Errorf("operation %s (%s): %w", op.ID, op.Kind, err)
	}
}

// guestLocked returns a guest of the inventory, or a zero guest.
func (p *platformAPI) guestLocked(vmid int) fsm.InvGuest {
	if _, g, err := p.fsm.State().InventoryGuest(nil, vmid); err == nil && g != nil {
		return *g
	}
	return fsm.InvGuest{}
}

// runnerSteps returns the steps the leader's runner goes through for op,
// in the order and with the names node/operations.go gives them. status
// is the guest's inventory status, templateNode the node of the template
// a create clones. A guest already in the state asked for succeeds at
// once.
func runnerSteps(op *fsm.Operation, status, templateNode string) []opStep {
	set := func(u fsm.OperationUpdateRequest) opStep {
		return func(*platformAPI, *fsm.Operation) *fsm.OperationUpdateRequest { return &u }
	}
	running := set(fsm.OperationUpdateRequest{Status: ptr(fsm.OpRunning)})
	step := func(s string) opStep { return set(fsm.OperationUpdateRequest{Step: ptr(s), Progress: ptr("")}) }
	progress := func(s string) opStep { return set(fsm.OperationUpdateRequest{Progress: ptr(s)}) }
	// task is a platform task the step waits on, to its end.
	task := func(kind string, lines ...string) []opStep {
		steps := []opStep{func(_ *platformAPI, op *fsm.Operation) *fsm.OperationUpdateRequest {
			upid := fmt.Sprintf("UPID:%s:000A1B2C:01F2E3D4:683C4E00:%s:%d:root@pam!moxxie:", op.Node, kind, op.VMID)
			return &fsm.OperationUpdateRequest{Task: &upid}
		}}
		for _, l := range append(lines, "TASK OK") {
			steps = append(steps, progress(l))
		}
		return steps
	}
	done := func(status string) opStep {
		return func(p *platformAPI, op *fsm.Operation) *fsm.OperationUpdateRequest {
			p.setGuestLocked(op.VMID, func(g *fsm.InvGuest) { g.Status = status })
			return &fsm.OperationUpdateRequest{Status: ptr(fsm.OpSucceeded), Step: ptr("done")}
		}
	}
	var steps []opStep
	add := func(s ...opStep) { steps = append(steps, s...) }
	switch op.Kind {
	case fsm.OpVMCreate:
		spec := op.Spec
		add(running, step("choosing a VMID"), func(p *platformAPI, _ *fsm.Operation) *fsm.OperationUpdateRequest {
			vmid := p.nextVM
			p.nextVM++
			return &fsm.OperationUpdateRequest{VMID: &vmid}
		})
		if hasPrefix(spec.NICs) {
			add(step("allocating addresses"), allocate)
		}
		if spec.TemplateVMID != 0 {
			add(step("cloning template " + strconv.Itoa(spec.TemplateVMID)))
			add(task("qmclone", fmt.Sprintf("create full clone of drive scsi0 (local-lvm:base-%d-disk-0)", spec.TemplateVMID),
				"drive-scsi0: transferred 4.0 GiB of 8.0 GiB (50.00%)")...)
			if templateNode != op.Node {
				add(step("migrating to " + op.Node))
				add(task("qmigrate")...)
			}
			add(step("configuring"))
			add(task("qmconfig")...)
		} else {
			add(step("creating"))
			add(task("qmcreate")...)
		}
		add(func(p *platformAPI, op *fsm.Operation) *fsm.OperationUpdateRequest {
			p.addGuestLocked(op, "stopped")
			return &fsm.OperationUpdateRequest{}
		})
		if spec.Start {
			add(step("starting"))
			add(task("qmstart")...)
			add(done("running"))
		} else {
			add(done("stopped"))
		}
	case fsm.OpVMStart, fsm.OpVMStop, fsm.OpVMShutdown:
		want, verb, kind := "running", "starting", "qmstart"
		switch op.Kind {
		case fsm.OpVMStop:
			want, verb, kind = "stopped", "stopping", "qmstop"
		case fsm.OpVMShutdown:
			want, verb, kind = "stopped", "shutting down", "qmshutdown"
		}
		add(running)
		if status != want {
			add(step(verb))
			add(task(kind)...)
		}
		add(done(want))
	case fsm.OpVMDelete:
		add(running)
		if status != "stopped" {
			add(step("stopping"))
			add(task("qmstop")...)
		}
		add(step("deleting"))
		add(task("qmdestroy")...)
		add(step("releasing addresses"), release, func(p *platformAPI, op *fsm.Operation) *fsm.OperationUpdateRequest {
			p.applyInternalLocked(&fsm.InventorySyncRequest{GoneGuests: []int{op.VMID}})
			return &fsm.OperationUpdateRequest{Status: ptr(fsm.OpSucceeded), Step: ptr("done")}
		})
	}
	return steps
}

// allocate takes an address for each NIC that names a prefix, as the
// runner does; a failure fails the operation, rolled back.
func allocate(p *platformAPI, op *fsm.Operation) *fsm.OperationUpdateRequest {
	var out []fsm.OpAddress
	for i, n := range op.Spec.NICs {
		if n.PrefixID == "" {
			continue
		}
		v, err := p.applyLocked(&fsm.AddressAllocateRequest{
			PrefixID: n.PrefixID, Address: n.Address, Fallback: n.Address != "", Count: 1, IDs: []string{api.NewID()},
			Status: fsm.AddressActive, DNSName: n.DNSName, Tenant: op.Spec.Tenant, Owner: fmt.Sprintf("vm:%d/net%d", op.VMID, i),
			Description: "vm " + op.Spec.Name,
		})
		if err != nil {
			e := &fsm.OpError{Code: "failed", Message: err.Error(), Field: fmt.Sprintf("nics[%d]", i)}
			var fe *fsm.FieldError
			if errors.As(err, &fe) {
				e.Field += "." + fe.Field
			}
			if errors.Is(err, ipam.ErrExhausted) {
				e.Code = api.CodeExhausted
			}
			p.steps[op.ID] = nil
			return &fsm.OperationUpdateRequest{Status: ptr(fsm.OpFailed), Step: ptr("rolling back"), Addresses: out, Error: e, RolledBack: true}
		}
		for _, a := range v.(*fsm.AddressList).Addresses {
			out = append(out, fsm.OpAddress{NIC: i, ID: a.ID, Address: a.Address, PrefixID: a.PrefixID, DNSName: a.DNSName})
		}
	}
	return &fsm.OperationUpdateRequest{Addresses: out}
}

// release releases the addresses of a deleted VM's NICs.
func release(p *platformAPI, op *fsm.Operation) *fsm.OperationUpdateRequest {
	var out []fsm.OpAddress
	for i := range fsm.MaxVMNICs {
		_, addrs, _ := p.fsm.State().Addresses(nil, fsm.AddressFilter{Owner: fmt.Sprintf("vm:%d/net%d", op.VMID, i)})
		for _, a := range addrs {
			p.applyInternalLocked(&fsm.AddressReleaseRequest{ID: a.ID})
			out = append(out, fsm.OpAddress{NIC: i, ID: a.ID, Address: a.Address, PrefixID: a.PrefixID, DNSName: a.DNSName})
		}
	}
	return &fsm.OperationUpdateRequest{Addresses: out}
}

// addGuestLocked records a created VM in the inventory, as the next sync
// would.
func (p *platformAPI) addGuestLocked(op *fsm.Operation, status string) {
	s := op.Spec
	g := fsm.InvGuest{VMID: op.VMID, Kind: fsm.GuestKindVM, Node: op.Node, Name: s.Name, Status: status,
		Tags: append([]string{"moxxie"}, s.Tags...), Tenant: s.Tenant, MaxCPU: s.Cores, MaxMem: uint64(s.MemoryMiB) << 20,
		MaxDisk: uint64(max(s.DiskGiB, 8)) << 30}
	if s.Tenant != "" {
		g.Tags = append(g.Tags, "tenant."+s.Tenant)
	}
	p.applyInternalLocked(&fsm.InventorySyncRequest{Guests: []fsm.InvGuest{g}})
}

// setGuestLocked changes a guest in the inventory, as the next sync would
// find it.
func (p *platformAPI) setGuestLocked(vmid int, change func(*fsm.InvGuest)) {
	_, g, err := p.fsm.State().InventoryGuest(nil, vmid)
	if err != nil || g == nil {
		return
	}
	c := *g
	change(&c)
	p.applyInternalLocked(&fsm.InventorySyncRequest{Guests: []fsm.InvGuest{c}})
}

// applyInternalLocked applies a command the stand-in runner needs to
// succeed, noting a failure for the test to report.
func (p *platformAPI) applyInternalLocked(cmd fsm.Command) {
	if _, err := p.applyLocked(cmd); err != nil && p.failure == nil {
		p.failure = fmt.Errorf("%T: %w", cmd, err)
	}
}

func hasPrefix(nics []fsm.VMNIC) bool {
	for _, n := range nics {
		if n.PrefixID != "" {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }
