package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// testOperation returns an operation in the shape of the API
// (fsm/operation.go), changed by the fields of o.
func testOperation(o map[string]any) map[string]any {
	op := map[string]any{"id": "op1", "kind": "vm.create", "status": "pending", "node": "pve1",
		"spec": map[string]any{"name": "web1", "template_vmid": 9000, "node": "pve1", "cores": 2, "memory_mib": 2048,
			"start": true, "nics": []any{map[string]any{"bridge": "vmbr0", "vlan": 10, "prefix_id": "p1", "dns_name": "web1.moxxie.test"}}},
		"actor": "acc-1", "created_at": "2025-06-01T12:00:00Z", "updated_at": "2025-06-01T12:00:00Z", "create_index": 10, "modify_index": 10}
	for k, v := range o {
		op[k] = v
	}
	return op
}

func vmFake(t *testing.T) *fake {
	created := testOperation(map[string]any{"status": "running", "step": "cloning template 9000",
		"task": "UPID:pve1:00001234:0AD090E8:6B07623F:qmclone:9000:root@pam!moxxie:", "task_node": "pve1"})
	action := func(kind string) func() (int, any) {
		return func() (int, any) {
			return 202, testOperation(map[string]any{"kind": kind, "vmid": 101, "spec": nil})
		}
	}
	routes := map[string]func() (int, any){
		"POST /v1/vms":              func() (int, any) { return 202, created },
		"POST /v1/vms/101/start":    action("vm.start"),
		"POST /v1/vms/101/stop":     action("vm.stop"),
		"POST /v1/vms/101/shutdown": action("vm.shutdown"),
		"DELETE /v1/vms/101":        action("vm.delete"),
		"GET /v1/operations":        func() (int, any) { return 200, map[string]any{"operations": []any{created}} },
		"GET /v1/operations/op1":    func() (int, any) { return 200, created },
		"POST /v1/vms/102/start": func() (int, any) {
			return 409, map[string]any{"error": map[string]any{"code": "conflict", "field": "vmid", "request_id": "req-1",
				"message": "vm 102 has operation op9 (vm.stop) in progress"}}
		},
		"POST /v1/vms/103/stop": func() (int, any) {
			return 503, map[string]any{"error": map[string]any{"code": "no_platform", "request_id": "req-1",
				"message": "no virtualization platform is configured (see proxmox in the server configuration)"}}
		},
	}
	return newFake(t, func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.EscapedPath()
		h, ok := routes[key]
		if !ok {
			writeErr(w, 404, "not_found", "no route "+key, "")
			return
		}
		status, body := h()
		writeJSON(w, status, body)
	})
}

func TestVM_Requests(t *testing.T) {
	f := vmFake(t)
	c := f.client(t, Config{})
	ctx := context.Background()
	no := false

	runRequestCases(t, f, []requestCase{
		{"create", func() (any, error) {
			v, _, err := c.CreateVM(ctx, VMCreateRequest{Name: "web1", Template: "ubuntu-24.04", Node: "pve1", Cores: 2, Memory: 2048,
				Disk: 32, Storage: "local-lvm", Tenant: "acme", Tags: []string{"web"}, Description: "front end", Start: &no,
				NICs:    []VMNIC{{Bridge: "vmbr0", VLAN: 10, PrefixID: "p1", Address: "10.0.0.5", DNSName: "web1.moxxie.test"}, {Bridge: "vmbr1"}},
				SSHKeys: []string{"ssh-ed25519 AAAA test"}}, "")
			return v, err
		}, "POST /v1/vms", `{"name": "web1", "template": "ubuntu-24.04", "node": "pve1", "cores": 2, "memory": 2048, "disk": 32,
			"storage": "local-lvm", "tenant": "acme", "tags": ["web"], "description": "front end", "start": false,
			"nics": [{"bridge": "vmbr0", "vlan": 10, "prefix_id": "p1", "address": "10.0.0.5", "dns_name": "web1.moxxie.test"}, {"bridge": "vmbr1"}],
			"ssh_keys": ["ssh-ed25519 AAAA test"]}`, func(t *testing.T, v any) {
			op := v.(*Operation)
			if op.ID != "op1" || op.Kind != OpVMCreate || op.Status != OpRunning || !op.Active() || op.Node != "pve1" || op.Actor != "acc-1" ||
				op.Step != "cloning template 9000" || op.TaskNode != "pve1" || !strings.HasSuffix(op.Task, ":qmclone:9000:root@pam!moxxie:") ||
				op.Spec == nil || op.Spec.TemplateVMID != 9000 || op.Spec.MemoryMiB != 2048 || !op.Spec.Start || len(op.Spec.NICs) != 1 ||
				op.Spec.NICs[0].VLAN != 10 || op.CreatedAt.IsZero() || !op.FinishedAt.IsZero() || op.ModifyIndex != 10 {
				t.Errorf("%+v", op)
			}
		}},
		{"create minimal", func() (any, error) { v, _, err := c.CreateVM(ctx, VMCreateRequest{Name: "web2"}, ""); return v, err },
			"POST /v1/vms", `{"name": "web2"}`, nil},
		{"start", func() (any, error) { v, _, err := c.StartVM(ctx, 101, ""); return v, err },
			"POST /v1/vms/101/start", "", func(t *testing.T, v any) {
				if op := v.(*Operation); op.Kind != OpVMStart || op.VMID != 101 || op.Spec != nil {
					t.Errorf("%+v", op)
				}
			}},
		{"stop", func() (any, error) { v, _, err := c.StopVM(ctx, 101, ""); return v, err },
			"POST /v1/vms/101/stop", "", nil},
		{"shutdown", func() (any, error) { v, _, err := c.ShutdownVM(ctx, 101, ""); return v, err },
			"POST /v1/vms/101/shutdown", "", nil},
		{"delete", func() (any, error) { v, _, err := c.DeleteVM(ctx, 101, ""); return v, err },
			"DELETE /v1/vms/101", "", func(t *testing.T, v any) {
				if op := v.(*Operation); op.Kind != OpVMDelete {
					t.Errorf("%+v", op)
				}
			}},
		{"operations", func() (any, error) { v, _, err := c.Operations(ctx, false, nil); return v, err },
			"GET /v1/operations", "", func(t *testing.T, v any) {
				if l := v.([]Operation); len(l) != 1 || l[0].ID != "op1" {
					t.Errorf("%+v", l)
				}
			}},
		{"operations active", func() (any, error) {
			v, _, err := c.Operations(ctx, true, &QueryOptions{Consistent: true})
			return v, err
		},
			"GET /v1/operations?active=true&consistent=true", "", nil},
		{"operation", func() (any, error) { v, _, err := c.Operation(ctx, "op1", nil); return v, err },
			"GET /v1/operations/op1", "", nil},
	})
}

// TestVM_IdempotencyKey checks that a given key is sent as is, and that a
// write without one gets a fresh random key.
func TestVM_IdempotencyKey(t *testing.T) {
	f := vmFake(t)
	c := f.client(t, Config{})
	ctx := context.Background()
	if _, _, err := c.CreateVM(ctx, VMCreateRequest{Name: "web1"}, "create-web1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.DeleteVM(ctx, 101, "delete-101"); err != nil {
		t.Fatal(err)
	}
	for _, call := range []func() error{
		func() error { _, _, err := c.StartVM(ctx, 101, ""); return err },
		func() error { _, _, err := c.StartVM(ctx, 101, ""); return err },
	} {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	reqs := f.requests()
	keys := []string{}
	for _, r := range reqs {
		keys = append(keys, r.header.Get("Idempotency-Key"))
	}
	if keys[0] != "create-web1" || keys[1] != "delete-101" || keys[2] == "" || keys[2] == keys[3] {
		t.Errorf("keys %q", keys)
	}
}

func TestVM_Errors(t *testing.T) {
	f := vmFake(t)
	c := f.client(t, Config{})
	ctx := context.Background()
	_, _, err := c.StartVM(ctx, 102, "")
	if err == nil || err.Error() != "409 conflict: vm 102 has operation op9 (vm.stop) in progress (field vmid, request req-1)" {
		t.Errorf("busy: %v", err)
	}
	// no_platform comes without Retry-After: it is answered, not retried.
	_, _, err = c.StopVM(ctx, 103, "")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != "no_platform" {
		t.Errorf("no platform: %v", err)
	}
	if _, _, err := c.Operation(ctx, "nope", nil); !IsNotFound(err) {
		t.Errorf("unknown operation: %v", err)
	}
}

// opSequence is a fake operation endpoint that answers each read with the
// next of a list of versions, as a blocking query would answer each change,
// and records the query of every read.
type opSequence struct {
	mu       sync.Mutex
	versions []map[string]any
	n        int      // guarded by mu
	queries  []string // guarded by mu
	// index is the X-Moxxie-Index of each answer; it passes the operation's
	// modify_index when other operations change.
	index []uint64
}

func (s *opSequence) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.queries = append(s.queries, r.URL.RawQuery)
	i := min(s.n, len(s.versions)-1)
	s.n++
	s.mu.Unlock()
	w.Header().Set("X-Moxxie-Index", strconv.FormatUint(s.index[i], 10))
	writeJSON(w, 200, s.versions[i])
}

func TestWaitOperation(t *testing.T) {
	s := &opSequence{
		versions: []map[string]any{
			testOperation(nil),
			testOperation(map[string]any{"status": "running", "step": "choosing a VMID", "modify_index": 11}),
			testOperation(map[string]any{"status": "running", "step": "cloning template 9000", "vmid": 104, "modify_index": 12}),
			// The wait ended, or another operation changed: no news.
			testOperation(map[string]any{"status": "running", "step": "cloning template 9000", "vmid": 104, "modify_index": 12}),
			testOperation(map[string]any{"status": "running", "step": "cloning template 9000", "vmid": 104,
				"progress": "transferred 4.0 GiB of 8.0 GiB (50.00%)", "task": "UPID:pve1:0001", "modify_index": 14}),
			testOperation(map[string]any{"status": "succeeded", "step": "done", "vmid": 104, "modify_index": 16,
				"addresses":   []any{map[string]any{"nic": 0, "id": "a1", "address": "10.0.0.5", "prefix_id": "p1", "dns_name": "web1.moxxie.test"}},
				"finished_at": "2025-06-01T12:01:00Z"}),
		},
		index: []uint64{10, 11, 12, 13, 15, 16},
	}
	f := newFake(t, s.handle)
	c := f.client(t, Config{})
	var seen []string
	op, err := c.WaitOperation(context.Background(), "op1", func(op *Operation) {
		seen = append(seen, fmt.Sprintf("%s %s %q", op.Status, op.Step, op.Progress))
	})
	if err != nil {
		t.Fatal(err)
	}
	if op.Status != OpSucceeded || op.VMID != 104 || len(op.Addresses) != 1 || op.Addresses[0].Address != "10.0.0.5" || op.FinishedAt.IsZero() {
		t.Errorf("final %+v", op)
	}
	want := []string{
		`pending  ""`,
		`running choosing a VMID ""`,
		`running cloning template 9000 ""`,
		`running cloning template 9000 "transferred 4.0 GiB of 8.0 GiB (50.00%)"`,
		`succeeded done ""`,
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("progress\n%q\nwant\n%q", seen, want)
	}
	// Each read but the first blocks on the index of the answer before.
	wantQ := []string{"", "index=10&wait=30s", "index=11&wait=30s", "index=12&wait=30s", "index=13&wait=30s", "index=15&wait=30s"}
	if fmt.Sprint(s.queries) != fmt.Sprint(wantQ) {
		t.Errorf("queries %q, want %q", s.queries, wantQ)
	}
}

func TestWaitOperation_Failed(t *testing.T) {
	s := &opSequence{
		versions: []map[string]any{
			testOperation(map[string]any{"status": "running", "step": "allocating addresses", "vmid": 104, "modify_index": 12}),
			testOperation(map[string]any{"status": "failed", "step": "rolling back", "vmid": 104, "modify_index": 14, "rolled_back": true,
				"error": map[string]any{"code": "exhausted", "message": "1 requested, 0 available", "field": "nics[0].prefix_id"}}),
		},
		index: []uint64{12, 14},
	}
	f := newFake(t, s.handle)
	c := f.client(t, Config{})
	calls := 0
	op, err := c.WaitOperation(context.Background(), "op1", func(*Operation) { calls++ })
	var fe *OperationFailedError
	if !errors.As(err, &fe) || fe.Op != op {
		t.Fatalf("err %v", err)
	}
	if want := "vm.create op1 failed: exhausted: 1 requested, 0 available (field nics[0].prefix_id; rolled back)"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if op == nil || op.Status != OpFailed || op.Error == nil || op.Error.Code != "exhausted" || !op.RolledBack || calls != 2 {
		t.Errorf("op %+v, %d progress calls", op, calls)
	}
}

func TestWaitOperation_Canceled(t *testing.T) {
	s := &opSequence{versions: []map[string]any{testOperation(nil)}, index: []uint64{10}}
	f := newFake(t, s.handle)
	c := f.client(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	op, err := c.WaitOperation(ctx, "op1", func(*Operation) { cancel() })
	if !errors.Is(err, context.Canceled) || op != nil {
		t.Errorf("got %+v, %v", op, err)
	}
}

func TestWaitOperation_NotFound(t *testing.T) {
	f := vmFake(t)
	c := f.client(t, Config{})
	if _, err := c.WaitOperation(context.Background(), "nope", nil); !IsNotFound(err) {
		t.Errorf("err %v", err)
	}
}
