package fsm

import (
	"errors"
	"testing"
)

func TestFSM_Operations(t *testing.T) {
	f := New()
	s := f.State()
	applyOK(t, f, 1, &OperationCreateRequest{WriteMeta: WriteMeta{Now: 10, Actor: "admin"}, Op: Operation{ID: "op-1", Kind: OpVMStart, VMID: 100}})
	_, op, _ := s.Operation(nil, "op-1")
	if op.Status != OpPending || op.Actor != "admin" || op.CreatedAt != 10 || op.CreateIndex != 1 {
		t.Fatalf("new operation: %+v", op)
	}

	// One operation per guest at a time.
	r := applyCmd(t, f, 2, &OperationCreateRequest{WriteMeta: WriteMeta{Now: 11}, Op: Operation{ID: "op-2", Kind: OpVMDelete, VMID: 100}})
	requireErrorIs(t, r.Err, ErrConflict)
	requireFieldError(t, r.Err, "vmid")

	applyOK(t, f, 3, &OperationUpdateRequest{WriteMeta: WriteMeta{Now: 12}, ID: "op-1", Status: str(OpRunning), Step: str("starting"), Task: str("UPID:a")})
	_, active, _ := s.Operations(nil, true)
	if len(active) != 1 {
		t.Fatalf("active operations: %d", len(active))
	}
	applyOK(t, f, 4, &OperationUpdateRequest{WriteMeta: WriteMeta{Now: 13}, ID: "op-1", Status: str(OpSucceeded)})
	_, op, _ = s.Operation(nil, "op-1")
	if op.Status != OpSucceeded || op.Step != "starting" || op.Task != "UPID:a" || op.FinishedAt != 13 || op.ModifyIndex != 4 {
		t.Fatalf("finished operation: %+v", op)
	}
	_, active, _ = s.Operations(nil, true)
	if len(active) != 0 {
		t.Fatalf("active operations after finish: %d", len(active))
	}

	// A finished operation is final; the guest is free again.
	r = applyCmd(t, f, 5, &OperationUpdateRequest{WriteMeta: WriteMeta{Now: 14}, ID: "op-1", Step: str("again")})
	requireErrorIs(t, r.Err, ErrConflict)
	applyOK(t, f, 6, &OperationCreateRequest{WriteMeta: WriteMeta{Now: 15}, Op: Operation{ID: "op-2", Kind: OpVMDelete, VMID: 100}})
	r = applyCmd(t, f, 7, &OperationUpdateRequest{WriteMeta: WriteMeta{Now: 16}, ID: "missing", Step: str("x")})
	requireErrorIs(t, r.Err, ErrNotFound)
}

func TestOperation_Validate(t *testing.T) {
	cases := map[string]validator{
		"id":     &OperationCreateRequest{Op: Operation{Kind: OpVMStart, VMID: 100}},
		"kind":   &OperationCreateRequest{Op: Operation{ID: "x", Kind: "vm.explode", VMID: 100}},
		"spec":   &OperationCreateRequest{Op: Operation{ID: "x", Kind: OpVMCreate}},
		"vmid":   &OperationCreateRequest{Op: Operation{ID: "x", Kind: OpVMStop, VMID: 7}},
		"status": &OperationUpdateRequest{ID: "x", Status: str(OpPending)},
		"error":  &OperationUpdateRequest{ID: "x", Status: str(OpFailed)},
	}
	for field, v := range cases {
		t.Run(field, func(t *testing.T) { requireFieldError(t, v.Validate(), field) })
	}
}

// requireFieldError fails unless err is a *FieldError naming field.
func requireFieldError(t testing.TB, err error, field string) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != field {
		t.Fatalf("error %v, want a field error on %s", err, field)
	}
}

func TestVMSpec_Validate(t *testing.T) {
	ok := func() VMSpec {
		return VMSpec{Name: "web-1", TemplateVMID: 9000, Cores: 2, MemoryMiB: 2048, NICs: []VMNIC{{Bridge: "vmbr0", PrefixID: "p", Address: "10.0.0.5", DNSName: "Web.Moxxie.Test."}}}
	}
	good := ok()
	if err := good.Validate(); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	if good.NICs[0].DNSName != "web.moxxie.test" {
		t.Fatalf("dns name not normalized: %q", good.NICs[0].DNSName)
	}
	cases := map[string]func(v *VMSpec){
		"name":             func(v *VMSpec) { v.Name = "" },
		"cores":            func(v *VMSpec) { v.Cores = 0 },
		"memory":           func(v *VMSpec) { v.MemoryMiB = 8 },
		"disk":             func(v *VMSpec) { v.TemplateVMID = 0 },
		"storage":          func(v *VMSpec) { v.Storage = "bad storage" },
		"tenant":           func(v *VMSpec) { v.Tenant = "Not A Name" },
		"tags[0]":          func(v *VMSpec) { v.Tags = []string{"no spaces"} },
		"ssh_keys[0]":      func(v *VMSpec) { v.SSHKeys = []string{"not a key"} },
		"nics[0].bridge":   func(v *VMSpec) { v.NICs[0].Bridge = "a-very-long-bridge-name" },
		"nics[0].vlan":     func(v *VMSpec) { v.NICs[0].VLAN = 4095 },
		"nics[0].address":  func(v *VMSpec) { v.NICs[0].Address = "10.0.0.300" },
		"nics[0].dns_name": func(v *VMSpec) { v.NICs[0].PrefixID, v.NICs[0].Address = "", "" },
	}
	for field, mutate := range cases {
		t.Run(field, func(t *testing.T) {
			v := ok()
			mutate(&v)
			requireFieldError(t, v.Validate(), field)
		})
	}
}
