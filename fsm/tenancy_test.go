package fsm

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/ipam"
	"github.com/moxxie/moxxie/quota"
)

// usage returns the usage of scope in f.
func usage(t *testing.T, f *FSM, scope string) *Usage {
	t.Helper()
	u, err := f.State().UsageOf(scope)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// requireExceeded checks that err is a quota refusal of resource with the
// given numbers, reported on the quota field.
func requireExceeded(t *testing.T, err error, scope string, r quota.Resource, limit, use, req int64) {
	t.Helper()
	var qe *quota.ExceededError
	var fe *FieldError
	if !errors.As(err, &qe) || !errors.As(err, &fe) || fe.Field != "quota" {
		t.Fatalf("err = %v, want a quota error on field quota", err)
	}
	if got := (quota.ExceededError{Scope: scope, Resource: r, Limit: limit, Usage: use, Request: req}); *qe != got {
		t.Fatalf("refused with %+v, want %+v", *qe, got)
	}
}

func TestFSM_QuotaAddresses(t *testing.T) {
	f := New()
	idx := uint64(0)
	next := func() uint64 { idx++; return idx }
	applyOK(t, f, next(), &TenantCreateRequest{Tenant: Tenant{ID: "acme", Quota: quota.Limits{quota.IPv4: 5, quota.Prefixes: 2}}})
	applyOK(t, f, next(), &ProjectCreateRequest{Project: Project{ID: "acme/web", Tenant: "acme", Name: "web", Quota: quota.Limits{quota.IPv4: 2}}})
	// The gateway of a tenant's prefix counts as one of its addresses.
	applyOK(t, f, next(), &PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "10.0.0.0/24", Tenant: "acme", Gateway: "10.0.0.1"}, GatewayID: "gw"})
	applyOK(t, f, next(), &PrefixCreateRequest{Prefix: Prefix{ID: "p6", Prefix: "2001:db8::/64", Tenant: "acme"}})
	if u := usage(t, f, "acme"); u.Amounts[quota.IPv4] != 1 || u.Amounts[quota.Prefixes] != 2 || u.Addresses != 1 {
		t.Fatalf("usage after the prefixes: %+v", u)
	}
	r := applyCmd(t, f, next(), &PrefixCreateRequest{Prefix: Prefix{ID: "p3", Prefix: "10.9.0.0/24", Tenant: "acme"}})
	requireExceeded(t, r.Err, "tenant acme", quota.Prefixes, 2, 2, 1)

	ids := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s-%d", prefix, i)
		}
		return out
	}
	// The project's limit comes first; count is all or nothing.
	applyOK(t, f, next(), &AddressAllocateRequest{PrefixID: "p", Count: 2, IDs: ids("w", 2), Tenant: "acme", Project: "web"})
	before := dump(t, f)
	r = applyCmd(t, f, next(), &AddressAllocateRequest{PrefixID: "p", Count: 1, IDs: ids("w2", 1), Tenant: "acme", Project: "web"})
	requireExceeded(t, r.Err, "project acme/web", quota.IPv4, 2, 2, 1)
	r = applyCmd(t, f, next(), &AddressAllocateRequest{PrefixID: "p", Count: 3, IDs: ids("x", 3), Tenant: "acme"})
	requireExceeded(t, r.Err, "tenant acme", quota.IPv4, 5, 3, 3)
	if string(dump(t, f)) != string(before) {
		t.Fatal("a refused allocation changed the state")
	}
	// IPv6 addresses count for metering, not against the IPv4 quota.
	applyOK(t, f, next(), &AddressAllocateRequest{PrefixID: "p6", Count: 10, IDs: ids("six", 10), Tenant: "acme"})
	applyOK(t, f, next(), &AddressAllocateRequest{PrefixID: "p", Count: 2, IDs: ids("x", 2), Tenant: "acme"})
	if u := usage(t, f, "acme"); u.Amounts[quota.IPv4] != 5 || u.Addresses != 15 {
		t.Fatalf("tenant usage %+v", u)
	}
	if u := usage(t, f, "acme/web"); u.Amounts[quota.IPv4] != 2 || u.Addresses != 2 {
		t.Fatalf("project usage %+v", u)
	}
	// Other tenants, and addresses without one, are not limited.
	applyOK(t, f, next(), &AddressAllocateRequest{PrefixID: "p", Count: 3, IDs: ids("o", 3), Tenant: "other"})
	applyOK(t, f, next(), &AddressAllocateRequest{PrefixID: "p", Count: 3, IDs: ids("n", 3)})

	// Moving an address into a full tenant is refused; out of one frees it.
	r = applyCmd(t, f, next(), &AddressUpdateRequest{ID: "o-0", Tenant: str("acme")})
	requireExceeded(t, r.Err, "tenant acme", quota.IPv4, 5, 5, 1)
	applyOK(t, f, next(), &AddressUpdateRequest{ID: "x-0", Tenant: str("other")})
	applyOK(t, f, next(), &AddressReleaseRequest{ID: "w-0", Force: true})
	if u := usage(t, f, "acme"); u.Amounts[quota.IPv4] != 3 {
		t.Fatalf("after moving one and releasing one: %+v", u)
	}
	if u := usage(t, f, "other"); u.Amounts[quota.IPv4] != 4 {
		t.Fatalf("other: %+v", u)
	}
	// A project that does not exist is refused.
	r = applyCmd(t, f, next(), &AddressAllocateRequest{PrefixID: "p", Count: 1, IDs: ids("q", 1), Tenant: "acme", Project: "nope"})
	requireErrorIs(t, r.Err, ErrNotFound)

	// Deleting a tenant that holds something is refused.
	requireErrorIs(t, applyCmd(t, f, next(), &TenantDeleteRequest{ID: "acme"}).Err, ErrConflict)
	requireErrorIs(t, applyCmd(t, f, next(), &ProjectDeleteRequest{ID: "acme/web"}).Err, ErrConflict)
	applyOK(t, f, next(), &AddressReleaseRequest{ID: "w-1", Force: true})
	applyOK(t, f, next(), &ProjectDeleteRequest{ID: "acme/web"})
	if u := usage(t, f, "acme/web"); len(u.Amounts) != 0 || u.Addresses != 0 {
		t.Fatalf("project usage after releasing everything: %+v", u)
	}
	// Lowering a quota below usage keeps what is held and admits nothing more.
	applyOK(t, f, next(), &TenantUpdateRequest{ID: "acme", ScopeChange: ScopeChange{Quota: quota.Limits{quota.IPv4: 1}, SetQuota: true}})
	r = applyCmd(t, f, next(), &AddressAllocateRequest{PrefixID: "p", Count: 1, IDs: ids("y", 1), Tenant: "acme"})
	requireExceeded(t, r.Err, "tenant acme", quota.IPv4, 1, 2, 1)
	// Moving an address into a project of its own tenant leaves the
	// tenant's usage as it is: allowed above the tenant's limit.
	applyOK(t, f, next(), &ProjectCreateRequest{Project: Project{ID: "acme/db", Tenant: "acme", Name: "db"}})
	applyOK(t, f, next(), &AddressUpdateRequest{ID: "x-1", Project: str("db")})
	if u, p := usage(t, f, "acme"), usage(t, f, "acme/db"); u.Amounts[quota.IPv4] != 2 || p.Amounts[quota.IPv4] != 1 {
		t.Fatalf("after the move: tenant %+v, project %+v", u, p)
	}
	// Moving it to a tenant without that project asks for the project
	// (not "not found", which reads as if the address were gone); with
	// project "" it moves.
	r = applyCmd(t, f, next(), &AddressUpdateRequest{ID: "x-1", Tenant: str("other")})
	requireErrorIs(t, r.Err, ErrInvalid)
	if fe := (*FieldError)(nil); !errors.As(r.Err, &fe) || fe.Field != "project" || !strings.Contains(r.Err.Error(), "is in project db of tenant acme, and tenant other has no project of that name: give project with the new tenant") {
		t.Fatalf("move without project: %v", r.Err)
	}
	requireErrorIs(t, applyCmd(t, f, next(), &AddressUpdateRequest{ID: "x-1", Tenant: str("other"), Project: str("db")}).Err, ErrNotFound)
	moved := applyOK(t, f, next(), &AddressUpdateRequest{ID: "x-1", Tenant: str("other"), Project: str("")}).Value.(*Address)
	if moved.Tenant != "other" || moved.Project != "" {
		t.Fatalf("moved %+v", moved)
	}
	testSnapshotRestore(t, f)
}

func TestFSM_QuotaVLANsAndVNIs(t *testing.T) {
	f := New()
	applyOK(t, f, 1, &TenantCreateRequest{Tenant: Tenant{ID: "acme", Quota: quota.Limits{quota.VLANs: 1, quota.VNIs: 0}}})
	applyOK(t, f, 2, &PoolCreateRequest{Pool: Pool{ID: "g", Kind: PoolVLAN, Name: "g", Ranges: []ipam.IDRange{{First: 100, Last: 110}}}})
	applyOK(t, f, 3, &PoolCreateRequest{Pool: Pool{ID: "n", Kind: PoolVNI, Name: "n", Ranges: []ipam.IDRange{{First: 5000, Last: 5010}}}})
	applyOK(t, f, 4, &IDAllocateRequest{Kind: PoolVLAN, PoolID: "g", Allocation: IDAllocation{ID: "v1", Tenant: "acme"}})
	requireExceeded(t, applyCmd(t, f, 5, &IDAllocateRequest{Kind: PoolVLAN, PoolID: "g", Allocation: IDAllocation{ID: "v2", Tenant: "acme"}}).Err, "tenant acme", quota.VLANs, 1, 1, 1)
	requireExceeded(t, applyCmd(t, f, 6, &IDAllocateRequest{Kind: PoolVNI, PoolID: "n", Allocation: IDAllocation{ID: "n1", Tenant: "acme"}}).Err, "tenant acme", quota.VNIs, 0, 0, 1)
	applyOK(t, f, 7, &IDReleaseRequest{Kind: PoolVLAN, ID: "v1"})
	applyOK(t, f, 8, &IDAllocateRequest{Kind: PoolVLAN, PoolID: "g", Allocation: IDAllocation{ID: "v2", Tenant: "acme"}})
	if u := usage(t, f, "acme"); u.Amounts[quota.VLANs] != 1 {
		t.Fatalf("usage %+v", u)
	}
}

// vmCreate returns a vm.create operation of tenant/project.
func vmCreate(id, tenant, project string, cores int) *OperationCreateRequest {
	return &OperationCreateRequest{Op: Operation{ID: id, Kind: OpVMCreate, Tenant: tenant, Spec: &VMSpec{
		Name: id, TemplateVMID: 9000, Node: "pve1", Cores: cores, MemoryMiB: 1024, DiskGiB: 10, Tenant: tenant, Project: project,
	}}}
}

func TestFSM_QuotaVMs(t *testing.T) {
	f := New()
	applyOK(t, f, 1, &TenantCreateRequest{Tenant: Tenant{ID: "acme", Quota: quota.Limits{quota.Guests: 10, quota.VCPUs: 16}}})
	// 64 creates proposed together in one batch: exactly 10 are admitted.
	var entries [][]byte
	for i := range 64 {
		entries = append(entries, mustEncode(t, vmCreate(fmt.Sprintf("op-%d", i), "acme", "", 1)))
	}
	rs := applyBatch(t, f, 2, entries...)
	ok := 0
	for _, r := range rs {
		if r.Err == nil {
			ok++
		} else {
			requireExceeded(t, r.Err, "tenant acme", quota.Guests, 10, 10, 1)
		}
	}
	if ok != 10 {
		t.Fatalf("%d creates admitted, want 10", ok)
	}
	u := usage(t, f, "acme")
	if u.Amounts[quota.Guests] != 10 || u.Amounts[quota.VCPUs] != 10 || u.Amounts[quota.MemoryMiB] != 10240 || u.Amounts[quota.DiskGiB] != 100 {
		t.Fatalf("usage %+v", u)
	}
	// A failed create gives its reservation back; a finished one hands it
	// to the inventory, which counts the guest from then on.
	applyOK(t, f, 3, &OperationUpdateRequest{ID: "op-0", Status: str(OpFailed), Error: &OpError{Code: "task_failed", Message: "clone failed"}})
	g := InvGuest{VMID: 101, Kind: GuestKindVM, Node: "pve1", Status: "running", Tenant: "acme", MaxCPU: 1, MaxMem: 1 << 30, MaxDisk: 10 << 30}
	applyOK(t, f, 4, &InventorySyncRequest{Guests: []InvGuest{g}})
	applyOK(t, f, 5, &OperationUpdateRequest{ID: "op-1", Status: str(OpSucceeded), VMID: intp(101)})
	if u := usage(t, f, "acme"); u.Amounts[quota.Guests] != 9 || u.Amounts[quota.VCPUs] != 9 {
		t.Fatalf("after one failure and one success: %+v", u)
	}
	// A resize the platform reports is counted, over the limit if need be.
	g.MaxCPU = 10
	applyOK(t, f, 6, &InventorySyncRequest{Guests: []InvGuest{g}})
	if u := usage(t, f, "acme"); u.Amounts[quota.VCPUs] != 18 {
		t.Fatalf("after the resize: %+v", u)
	}
	requireExceeded(t, applyCmd(t, f, 7, vmCreate("op-x", "acme", "", 1)).Err, "tenant acme", quota.VCPUs, 16, 18, 1)
	// A guest that is gone holds nothing.
	applyOK(t, f, 8, &InventorySyncRequest{GoneGuests: []int{101}})
	if u := usage(t, f, "acme"); u.Amounts[quota.Guests] != 8 || u.Amounts[quota.VCPUs] != 8 {
		t.Fatalf("after the guest went: %+v", u)
	}
	testSnapshotRestore(t, f)
}

func TestFSM_TenancyValidation(t *testing.T) {
	f := New()
	applyOK(t, f, 1, &TenantCreateRequest{Tenant: Tenant{ID: "acme"}})
	cases := []struct {
		name  string
		cmd   Command
		field string
		err   error
	}{
		{"bad tenant id", &TenantCreateRequest{Tenant: Tenant{ID: "Acme!"}}, "id", ErrInvalid},
		{"duplicate tenant", &TenantCreateRequest{Tenant: Tenant{ID: "acme"}}, "id", ErrConflict},
		{"unknown resource", &TenantCreateRequest{Tenant: Tenant{ID: "b", Quota: quota.Limits{"cpus": 1}}}, "quota", ErrInvalid},
		{"negative limit", &TenantUpdateRequest{ID: "acme", ScopeChange: ScopeChange{Quota: quota.Limits{quota.Guests: -1}, SetQuota: true}}, "quota", ErrInvalid},
		{"missing tenant", &TenantUpdateRequest{ID: "nope", ScopeChange: ScopeChange{Description: str("x")}}, "", ErrNotFound},
		{"project of a missing tenant", &ProjectCreateRequest{Project: Project{ID: "nope/web", Tenant: "nope", Name: "web"}}, "tenant", ErrNotFound},
		{"project id mismatch", &ProjectCreateRequest{Project: Project{ID: "acme/x", Tenant: "acme", Name: "web"}}, "id", ErrInvalid},
		{"project without tenant", &AddressAllocateRequest{PrefixID: "p", Count: 1, IDs: []string{"a"}, Project: "web"}, "project", ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := dump(t, f)
			r := applyCmd(t, f, 2, tc.cmd)
			requireErrorIs(t, r.Err, tc.err)
			field := ""
			if fe := (*FieldError)(nil); errors.As(r.Err, &fe) {
				field = fe.Field
			}
			if field != tc.field {
				t.Fatalf("err %v names field %q, want %q", r.Err, field, tc.field)
			}
			if string(dump(t, f)) != string(before) {
				t.Fatal("state changed")
			}
		})
	}
}

// TestFSM_UsageInBatches checks the usage rows a batch changes in place:
// a reader's row from before the batch keeps its values, the batch's
// commands each see the usage the ones before them left (so admission
// refuses exactly the allocation past the limit), and the totals equal
// those of the same commands applied one by one.
func TestFSM_UsageInBatches(t *testing.T) {
	setup := func(f *FSM) {
		applyOK(t, f, 1, &TenantCreateRequest{Tenant: Tenant{ID: "acme", Quota: quota.Limits{quota.IPv4: 5}}})
		applyOK(t, f, 2, &ProjectCreateRequest{Project: Project{ID: "acme/web", Tenant: "acme", Name: "web"}})
		applyOK(t, f, 3, &PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "10.0.0.0/24"}})
		applyOK(t, f, 4, &PrefixCreateRequest{Prefix: Prefix{ID: "p6", Prefix: "2001:db8::/64"}})
		applyOK(t, f, 5, &AddressAllocateRequest{PrefixID: "p", Count: 1, IDs: []string{"a0"}, Tenant: "acme"})
	}
	alloc := func(id, prefix, project string) Command {
		return &AddressAllocateRequest{PrefixID: prefix, Count: 1, IDs: []string{id}, Tenant: "acme", Project: project}
	}
	cmds := []Command{
		alloc("a1", "p", ""),
		alloc("a2", "p", "web"),
		alloc("b1", "p6", "web"), // IPv6: counted, in no quota
		&AddressReleaseRequest{ID: "a1", Force: true},
		alloc("a3", "p", ""),
		alloc("a4", "p", "web"),
		alloc("a5", "p", ""),
		alloc("a6", "p", ""), // the sixth IPv4 address: refused
		&AddressReleaseRequest{ID: "b1", Force: true},
	}
	batched := New()
	setup(batched)
	before := usage(t, batched, "acme")
	want := *before
	entries := make([][]byte, len(cmds))
	for i, c := range cmds {
		entries[i] = mustEncode(t, c)
	}
	rs := applyBatch(t, batched, 6, entries...)
	for i, r := range rs {
		if (r.Err != nil) != (i == 7) {
			t.Fatalf("command %d: err = %v", i, r.Err)
		}
	}
	requireExceeded(t, rs[7].Err, "tenant acme", quota.IPv4, 5, 5, 1)
	if before.Addresses != want.Addresses || before.Amounts[quota.IPv4] != 1 {
		t.Fatalf("the row read before the batch changed: %+v", before)
	}
	one := New()
	setup(one)
	for i, c := range cmds {
		applyCmd(t, one, uint64(6+i), c)
	}
	for scope, want := range map[string]Usage{
		"acme":     {Amounts: quota.Amounts{quota.IPv4: 5}, Addresses: 5},
		"acme/web": {Amounts: quota.Amounts{quota.IPv4: 2}, Addresses: 2},
	} {
		for name, f := range map[string]*FSM{"batched": batched, "one by one": one} {
			if u := usage(t, f, scope); u.Addresses != want.Addresses || len(u.Amounts) != 1 || u.Amounts[quota.IPv4] != want.Amounts[quota.IPv4] {
				t.Errorf("%s: usage of %s = %+v, want %+v", name, scope, u, want)
			}
		}
	}
	// Moving an address between projects of the tenant changes the
	// projects' rows and leaves the tenant's row as it was, unwritten.
	applyOK(t, batched, 19, &ProjectCreateRequest{Project: Project{ID: "acme/db", Tenant: "acme", Name: "db"}})
	tenantRow := usage(t, batched, "acme")
	applyOK(t, batched, 20, &AddressUpdateRequest{ID: "a3", Project: str("db")})
	if u := usage(t, batched, "acme"); u != tenantRow {
		t.Fatalf("the tenant's usage row was rewritten by a move between its projects: %+v", u)
	}
	if u := usage(t, batched, "acme/db"); u.Addresses != 1 || u.Amounts[quota.IPv4] != 1 {
		t.Fatalf("usage of acme/db after the move = %+v", u)
	}
	// A batch that releases everything a scope holds removes its row.
	var release [][]byte
	for _, id := range []string{"a2", "a4"} {
		release = append(release, mustEncode(t, &AddressReleaseRequest{ID: id, Force: true}))
	}
	applyBatch(t, batched, 21, release...)
	if u := usage(t, batched, "acme/web"); len(u.Amounts) != 0 || u.Addresses != 0 {
		t.Fatalf("usage of acme/web after releasing its addresses = %+v", u)
	}
	if raw, _ := batched.State().db.Txn(false).First(tableUsage, "id", "acme/web"); raw != nil {
		t.Fatalf("an empty usage row stayed: %+v", raw)
	}
}
