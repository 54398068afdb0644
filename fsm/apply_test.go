package fsm

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/audit"
	"github.com/moxxie/moxxie/quota"
	"github.com/moxxie/moxxie/sdn"
	"github.com/moxxie/moxxie/storage"
)

func TestFSM_SettingUpsert(t *testing.T) {
	// Each case starts from a store where "a" was written at index 1 and
	// modified at index 2 (CreateIndex 1, ModifyIndex 2), then applies req
	// at index 10.
	existing := &Setting{Key: "a", Value: "old", CreateIndex: 1, ModifyIndex: 2, UpdatedAt: 200}
	cases := []struct {
		name    string
		req     *SettingUpsertRequest
		wantErr error
		want    *Setting // the stored setting after the command; nil: absent
	}{
		{
			name: "create",
			req:  &SettingUpsertRequest{WriteMeta: WriteMeta{Now: 1000}, Key: "b", Value: "new"},
			want: &Setting{Key: "b", Value: "new", CreateIndex: 10, ModifyIndex: 10, UpdatedAt: 1000},
		},
		{
			name: "modify keeps create index",
			req:  &SettingUpsertRequest{WriteMeta: WriteMeta{Now: 1000}, Key: "a", Value: "new"},
			want: &Setting{Key: "a", Value: "new", CreateIndex: 1, ModifyIndex: 10, UpdatedAt: 1000},
		},
		{
			name: "empty value",
			req:  &SettingUpsertRequest{WriteMeta: WriteMeta{Now: 1000}, Key: "a"},
			want: &Setting{Key: "a", Value: "", CreateIndex: 1, ModifyIndex: 10, UpdatedAt: 1000},
		},
		{
			name: "cas matches modify index",
			req:  &SettingUpsertRequest{WriteMeta: WriteMeta{Now: 1000}, Key: "a", Value: "new", CASIndex: u64(2)},
			want: &Setting{Key: "a", Value: "new", CreateIndex: 1, ModifyIndex: 10, UpdatedAt: 1000},
		},
		{
			name:    "cas on create index is a conflict",
			req:     &SettingUpsertRequest{Key: "a", Value: "new", CASIndex: u64(1)},
			wantErr: ErrConflict,
			want:    existing,
		},
		{
			name:    "cas stale",
			req:     &SettingUpsertRequest{Key: "a", Value: "new", CASIndex: u64(3)},
			wantErr: ErrConflict,
			want:    existing,
		},
		{
			name: "cas 0 creates",
			req:  &SettingUpsertRequest{WriteMeta: WriteMeta{Now: 1000}, Key: "b", Value: "new", CASIndex: u64(0)},
			want: &Setting{Key: "b", Value: "new", CreateIndex: 10, ModifyIndex: 10, UpdatedAt: 1000},
		},
		{
			name:    "cas 0 on existing",
			req:     &SettingUpsertRequest{Key: "a", Value: "new", CASIndex: u64(0)},
			wantErr: ErrConflict,
			want:    existing,
		},
		{
			name:    "cas non-zero on missing",
			req:     &SettingUpsertRequest{Key: "b", Value: "new", CASIndex: u64(2)},
			wantErr: ErrConflict,
		},
		{
			name:    "empty key",
			req:     &SettingUpsertRequest{Key: "", Value: "new"},
			wantErr: nil, // checked below: rejected without a sentinel
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			applyOK(t, f, 1, &SettingUpsertRequest{WriteMeta: WriteMeta{Now: 100}, Key: "a", Value: "first"})
			applyOK(t, f, 2, &SettingUpsertRequest{WriteMeta: WriteMeta{Now: 200}, Key: "a", Value: "old"})
			before := dump(t, f)
			ws := memdb.NewWatchSet()
			if _, _, err := f.State().Setting(ws, tc.req.Key); err != nil {
				t.Fatal(err)
			}

			r := applyCmd(t, f, 10, tc.req)

			if tc.req.Key == "" {
				if r.Err == nil {
					t.Fatal("a setting with an empty key was accepted")
				}
				if !bytes.Equal(before, dump(t, f)) {
					t.Fatal("a rejected upsert changed the state")
				}
				return
			}
			requireErrorIs(t, r.Err, tc.wantErr)
			idx, got, err := f.State().Setting(nil, tc.req.Key)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("stored setting = %+v, want %+v", got, tc.want)
			}
			if tc.wantErr != nil {
				if r.Value != nil {
					t.Errorf("rejected command returned value %#v", r.Value)
				}
				if !bytes.Equal(before, dump(t, f)) {
					t.Fatal("a rejected upsert changed the state")
				}
				if idx != 2 || fired(ws) {
					t.Errorf("table index %d (want 2), watch fired %v (want false)", idx, fired(ws))
				}
				return
			}
			if !reflect.DeepEqual(r.Value, tc.want) {
				t.Errorf("result value = %#v, want %#v", r.Value, tc.want)
			}
			if idx != 10 {
				t.Errorf("settings table index = %d, want 10", idx)
			}
			if !fired(ws) {
				t.Error("watch on the setting did not fire")
			}
		})
	}
}

func TestFSM_SettingDelete(t *testing.T) {
	cases := []struct {
		name    string
		key     string
		wantErr error
	}{
		{"existing", "a", nil},
		{"missing", "nope", ErrNotFound},
		{"empty key", "", ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			applyOK(t, f, 1, &SettingUpsertRequest{Key: "a", Value: "1"})
			applyOK(t, f, 2, &SettingUpsertRequest{Key: "b", Value: "2"})
			before := dump(t, f)
			ws := memdb.NewWatchSet()
			if _, _, err := f.State().Settings(ws); err != nil {
				t.Fatal(err)
			}

			r := applyCmd(t, f, 5, &SettingDeleteRequest{Key: tc.key})
			requireErrorIs(t, r.Err, tc.wantErr)

			idx, list, err := f.State().Settings(nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != nil {
				if !bytes.Equal(before, dump(t, f)) {
					t.Fatal("a rejected delete changed the state")
				}
				if idx != 2 || len(list) != 2 || fired(ws) {
					t.Fatalf("after rejected delete: index %d, %d settings, watch fired %v", idx, len(list), fired(ws))
				}
				return
			}
			want := &Setting{Key: "a", Value: "1", CreateIndex: 1, ModifyIndex: 1}
			if !reflect.DeepEqual(r.Value, want) {
				t.Errorf("result = %#v, want the deleted setting %#v", r.Value, want)
			}
			if idx != 5 || len(list) != 1 || list[0].Key != "b" {
				t.Fatalf("after delete: index %d, settings %+v", idx, list)
			}
			if _, s, _ := f.State().Setting(nil, "a"); s != nil {
				t.Fatalf("deleted setting still readable: %+v", s)
			}
			if !fired(ws) {
				t.Error("watch on the settings table did not fire")
			}
		})
	}
}

func TestFSM_ACLBootstrap(t *testing.T) {
	boot := Token{AccessorID: "root", SecretHash: "h-root", Role: "admin", Description: "bootstrap", CreatedAt: 5}
	cases := []struct {
		name     string
		setup    []Command
		token    Token
		wantErr  error
		wantBoot bool
	}{
		{name: "first bootstrap", token: boot, wantBoot: true},
		{
			name:     "second bootstrap",
			setup:    []Command{&ACLBootstrapRequest{Token: Token{AccessorID: "first", SecretHash: "h-first"}}},
			token:    boot,
			wantErr:  ErrAlreadyBootstrapped,
			wantBoot: true,
		},
		{
			name:     "second bootstrap after the admin token was revoked",
			setup:    []Command{&ACLBootstrapRequest{Token: Token{AccessorID: "first", SecretHash: "h-first"}}, &TokenRevokeRequest{AccessorID: "first"}},
			token:    boot,
			wantErr:  ErrAlreadyBootstrapped,
			wantBoot: true,
		},
		{
			name:    "accessor already used by a token",
			setup:   []Command{&TokenCreateRequest{Token: Token{AccessorID: "root", SecretHash: "other"}}},
			token:   boot,
			wantErr: ErrConflict,
		},
		{name: "token without secret", token: Token{AccessorID: "root"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			for i, c := range tc.setup {
				applyOK(t, f, uint64(i+1), c)
			}
			before := dump(t, f)
			r := applyCmd(t, f, 10, &ACLBootstrapRequest{Token: tc.token})
			if tc.token.SecretHash == "" {
				if r.Err == nil {
					t.Fatal("bootstrap with an invalid token was accepted")
				}
			} else {
				requireErrorIs(t, r.Err, tc.wantErr)
			}
			if got := f.State().ACLBootstrapped(); got != tc.wantBoot {
				t.Fatalf("ACLBootstrapped = %v, want %v", got, tc.wantBoot)
			}
			if r.Err != nil {
				if !bytes.Equal(before, dump(t, f)) {
					t.Fatal("a rejected bootstrap changed the state")
				}
				return
			}
			want := tc.token
			want.CreateIndex = 10
			if !reflect.DeepEqual(r.Value, &want) {
				t.Errorf("result = %#v, want %#v", r.Value, &want)
			}
			got, err := f.State().TokenBySecretHash(tc.token.SecretHash)
			if err != nil || !reflect.DeepEqual(got, &want) {
				t.Fatalf("TokenBySecretHash = %#v, %v; want %#v", got, err, &want)
			}
		})
	}
}

func TestFSM_TokenCreate(t *testing.T) {
	existing := Token{AccessorID: "a1", SecretHash: "h1", Role: "reader"}
	cases := []struct {
		name    string
		token   Token
		wantErr error
		invalid bool // rejected without a sentinel error
	}{
		{name: "new", token: Token{AccessorID: "a2", SecretHash: "h2", Role: "operator", Tenant: "t", CreatedAt: 7, ExpiresAt: 9}},
		{name: "duplicate accessor", token: Token{AccessorID: "a1", SecretHash: "h2"}, wantErr: ErrConflict},
		{name: "duplicate secret hash", token: Token{AccessorID: "a2", SecretHash: "h1"}, wantErr: ErrConflict},
		{name: "no accessor", token: Token{SecretHash: "h2"}, invalid: true},
		{name: "no secret hash", token: Token{AccessorID: "a2"}, invalid: true},
		{name: "create index is stamped, not taken from the request", token: Token{AccessorID: "a2", SecretHash: "h2", CreateIndex: 999}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			applyOK(t, f, 1, &TokenCreateRequest{Token: existing})
			before := dump(t, f)
			ws := memdb.NewWatchSet()
			if _, _, err := f.State().Tokens(ws); err != nil {
				t.Fatal(err)
			}

			r := applyCmd(t, f, 4, &TokenCreateRequest{Token: tc.token})

			if tc.invalid {
				if r.Err == nil {
					t.Fatal("an invalid token was accepted")
				}
			} else {
				requireErrorIs(t, r.Err, tc.wantErr)
			}
			if r.Err != nil {
				if !bytes.Equal(before, dump(t, f)) {
					t.Fatal("a rejected token create changed the state")
				}
				if got, _ := f.State().TokenBySecretHash("h1"); got == nil || got.AccessorID != "a1" {
					t.Fatalf("existing token's secret now finds %+v", got)
				}
				return
			}
			want := tc.token
			want.CreateIndex = 4
			if !reflect.DeepEqual(r.Value, &want) {
				t.Errorf("result = %#v, want %#v", r.Value, &want)
			}
			idx, list, err := f.State().Tokens(nil)
			if err != nil {
				t.Fatal(err)
			}
			if idx != 4 || len(list) != 2 || list[0].AccessorID != "a1" || !reflect.DeepEqual(list[1], &want) {
				t.Fatalf("Tokens = %d, %+v", idx, list)
			}
			if !fired(ws) {
				t.Error("watch on the tokens table did not fire")
			}
		})
	}
}

func TestFSM_TokenRevoke(t *testing.T) {
	cases := []struct {
		name     string
		accessor string
		wantErr  error
	}{
		{"existing", "a1", nil},
		{"missing", "zz", ErrNotFound},
		{"empty", "", ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			applyOK(t, f, 1, &TokenCreateRequest{Token: Token{AccessorID: "a1", SecretHash: "h1"}})
			applyOK(t, f, 2, &TokenCreateRequest{Token: Token{AccessorID: "a2", SecretHash: "h2"}})
			before := dump(t, f)

			r := applyCmd(t, f, 3, &TokenRevokeRequest{AccessorID: tc.accessor})
			requireErrorIs(t, r.Err, tc.wantErr)

			if tc.wantErr != nil {
				if !bytes.Equal(before, dump(t, f)) {
					t.Fatal("a rejected revoke changed the state")
				}
				return
			}
			if tok, ok := r.Value.(*Token); !ok || tok.AccessorID != "a1" {
				t.Errorf("result = %#v, want the revoked token", r.Value)
			}
			if got, _ := f.State().TokenBySecretHash("h1"); got != nil {
				t.Fatalf("revoked token still found by secret: %+v", got)
			}
			if got, _ := f.State().TokenBySecretHash("h2"); got == nil || got.AccessorID != "a2" {
				t.Fatalf("other token's secret finds %+v", got)
			}
			if idx, list, _ := f.State().Tokens(nil); idx != 3 || len(list) != 1 {
				t.Fatalf("Tokens = %d, %+v", idx, list)
			}
			// Once revoked, the same accessor and secret may be reused.
			applyOK(t, f, 4, &TokenCreateRequest{Token: Token{AccessorID: "a1", SecretHash: "h1"}})
		})
	}
}

func TestStore_TokenBySecretHash(t *testing.T) {
	f := New()
	applyOK(t, f, 1, &ACLBootstrapRequest{Token: Token{AccessorID: "root", SecretHash: "h-root"}})
	applyOK(t, f, 2, &TokenCreateRequest{Token: Token{AccessorID: "a1", SecretHash: "h1"}})
	applyOK(t, f, 3, &TokenCreateRequest{Token: Token{AccessorID: "a2", SecretHash: "h2"}})
	applyOK(t, f, 4, &TokenRevokeRequest{AccessorID: "a2"})
	cases := []struct {
		hash, want string // want "": no token
	}{
		{"h-root", "root"},
		{"h1", "a1"},
		{"h2", ""},
		{"a1", ""}, // an accessor is not a secret
		{"H1", ""},
		{"", ""},
	}
	for _, tc := range cases {
		got, err := f.State().TokenBySecretHash(tc.hash)
		if err != nil {
			t.Fatalf("TokenBySecretHash(%q): %v", tc.hash, err)
		}
		switch {
		case tc.want == "" && got != nil:
			t.Errorf("TokenBySecretHash(%q) = %+v, want nil", tc.hash, got)
		case tc.want != "" && (got == nil || got.AccessorID != tc.want):
			t.Errorf("TokenBySecretHash(%q) = %+v, want %s", tc.hash, got, tc.want)
		}
	}
	// The lookup survives a snapshot round trip.
	f2 := testSnapshotRestore(t, f)
	if got, _ := f2.State().TokenBySecretHash("h1"); got == nil || got.AccessorID != "a1" {
		t.Fatalf("after restore TokenBySecretHash(h1) = %+v", got)
	}
}

func TestFSM_IdempotencyReap(t *testing.T) {
	// Records created at leader times 10, 20 and 30.
	setup := func(t *testing.T) *FSM {
		f := New()
		for i, now := range []int64{10, 20, 30} {
			applyOK(t, f, uint64(i+1), &SettingUpsertRequest{
				WriteMeta: WriteMeta{Now: now, Actor: "a", IdempotencyKey: string(rune('x' + i)), RequestHash: "h"},
				Key:       "k", Value: "v",
			})
		}
		if n := f.State().IdempotencyRecords(); n != 3 {
			t.Fatalf("%d idempotency records, want 3", n)
		}
		return f
	}
	cases := []struct {
		before     int64
		wantReaped int
	}{
		{0, 0},
		{10, 0}, // strictly older than Before
		{11, 1},
		{20, 1},
		{30, 2},
		{31, 3},
		{1 << 62, 3},
	}
	for _, tc := range cases {
		f := setup(t)
		r := applyOK(t, f, 10, &IdempotencyReapRequest{Before: tc.before})
		if want := map[string]int{"reaped": tc.wantReaped}; !reflect.DeepEqual(r.Value, want) {
			t.Errorf("Before %d: result %#v, want %#v", tc.before, r.Value, want)
		}
		if got := f.State().IdempotencyRecords(); got != 3-tc.wantReaped {
			t.Errorf("Before %d: %d records left, want %d", tc.before, got, 3-tc.wantReaped)
		}
	}

	// A reaped key applies again instead of replaying.
	f := setup(t)
	applyOK(t, f, 10, &IdempotencyReapRequest{Before: 15})
	r := applyOK(t, f, 11, &SettingUpsertRequest{WriteMeta: WriteMeta{Now: 40, Actor: "a", IdempotencyKey: "x", RequestHash: "h"}, Key: "k", Value: "again"})
	if r.Replayed {
		t.Fatal("a reaped idempotency key replayed")
	}
	r = applyOK(t, f, 12, &SettingUpsertRequest{WriteMeta: WriteMeta{Now: 40, Actor: "a", IdempotencyKey: "y", RequestHash: "h"}, Key: "k", Value: "again"})
	if !r.Replayed {
		t.Fatal("an unreaped idempotency key applied twice")
	}
}

// populate applies a little of everything to f at indexes 1..n and returns
// the next free index.
func populate(t testing.TB, f *FSM) uint64 {
	t.Helper()
	cmds := []Command{
		&ACLBootstrapRequest{WriteMeta: WriteMeta{Now: 1}, Token: Token{AccessorID: "root", SecretHash: "h-root", Role: "admin"}},
		&SettingUpsertRequest{WriteMeta: WriteMeta{Now: 2, Actor: "root", IdempotencyKey: "i1", RequestHash: "rh1"}, Key: "a", Value: "1"},
		&SettingUpsertRequest{WriteMeta: WriteMeta{Now: 3}, Key: "b", Value: "2"},
		&SettingUpsertRequest{WriteMeta: WriteMeta{Now: 4}, Key: "c", Value: "3"},
		&SettingDeleteRequest{WriteMeta: WriteMeta{Now: 5}, Key: "c"},
		&TokenCreateRequest{WriteMeta: WriteMeta{Now: 6, Actor: "root", IdempotencyKey: "i2", RequestHash: "rh2"}, Token: Token{AccessorID: "t1", SecretHash: "h1", Tenant: "x"}},
		&TokenCreateRequest{WriteMeta: WriteMeta{Now: 7}, Token: Token{AccessorID: "t2", SecretHash: "h2"}},
		&TokenRevokeRequest{WriteMeta: WriteMeta{Now: 8}, AccessorID: "t2"},
		&VRFCreateRequest{WriteMeta: WriteMeta{Now: 9}, VRF: VRF{ID: "red"}},
		&PrefixCreateRequest{WriteMeta: WriteMeta{Now: 10}, Prefix: Prefix{ID: "p-c", Prefix: "10.0.0.0/8", Status: PrefixContainer}},
		&PrefixCreateRequest{WriteMeta: WriteMeta{Now: 11}, Prefix: Prefix{ID: "p-a", Prefix: "10.1.0.0/24", Gateway: "10.1.0.1"}, GatewayID: "a-gw"},
		&IPRangeCreateRequest{WriteMeta: WriteMeta{Now: 12}, Range: IPRange{ID: "r-1", PrefixID: "p-a", Start: "10.1.0.100", End: "10.1.0.150"}},
		&AddressAllocateRequest{WriteMeta: WriteMeta{Now: 13}, PrefixID: "p-a", Count: 2, IDs: []string{"a-1", "a-2"}, DNSName: "web.moxxie.test"},
		&AddressReleaseRequest{WriteMeta: WriteMeta{Now: 14}, ID: "a-2"},
		&PoolCreateRequest{WriteMeta: WriteMeta{Now: 15}, Pool: Pool{ID: "g-1", Kind: PoolVLAN, Name: "prod"}},
		&IDAllocateRequest{WriteMeta: WriteMeta{Now: 16}, Kind: PoolVLAN, PoolID: "g-1", Allocation: IDAllocation{ID: "v-1"}},
		&ZoneCreateRequest{WriteMeta: WriteMeta{Now: 17}, Zone: Zone{ID: "moxxie.test"}},
		&InventorySyncRequest{WriteMeta: WriteMeta{Now: 18}, Nodes: []InvNode{{Name: "pve1", Status: "online"}},
			Guests:  []InvGuest{{VMID: 100, Kind: GuestKindVM, Node: "pve1"}, {VMID: 101, Kind: GuestKindContainer, Node: "pve1"}},
			Storage: []InvStorage{{ID: "pve1/local", Node: "pve1", Storage: "local"}}},
		&InventorySyncRequest{WriteMeta: WriteMeta{Now: 19}, GoneGuests: []int{101}},
		&InventoryStaleRequest{WriteMeta: WriteMeta{Now: 20}, Error: "timeout"},
		&OperationCreateRequest{WriteMeta: WriteMeta{Now: 21}, Op: Operation{ID: "op-1", Kind: OpVMStart, VMID: 100}},
		&OperationCreateRequest{WriteMeta: WriteMeta{Now: 22}, Op: Operation{ID: "op-2", Kind: OpVMCreate, Spec: &VMSpec{Name: "web", TemplateVMID: 9000, Cores: 1, MemoryMiB: 512}}},
		&OperationUpdateRequest{WriteMeta: WriteMeta{Now: 23}, ID: "op-1", Status: str(OpSucceeded)},
		&SecretKeyWrapRequest{WriteMeta: WriteMeta{Now: 24}, Key: SecretKey{ID: "dek-1", KEKID: "kek-1", Wrapped: make([]byte, 61)}},
		&SecretPutRequest{WriteMeta: WriteMeta{Now: 25}, Secret: Secret{Name: "pve-token", Ciphertext: make([]byte, 40), Nonce: make([]byte, 12), DEKID: "dek-1"}},
		&TenantCreateRequest{WriteMeta: WriteMeta{Now: 26}, Tenant: Tenant{ID: "acme", Quota: quota.Limits{quota.IPv4: 5}}},
		&ProjectCreateRequest{WriteMeta: WriteMeta{Now: 27}, Project: Project{ID: "acme/web", Tenant: "acme", Name: "web"}},
		&AddressAllocateRequest{WriteMeta: WriteMeta{Now: 28}, PrefixID: "p-a", Count: 1, IDs: []string{"a-3"}, Tenant: "acme", Project: "web"},
		&MeterTickRequest{WriteMeta: WriteMeta{Now: 29e6}},
		&MeterTickRequest{WriteMeta: WriteMeta{Now: 90e9}},
		&RateCardPutRequest{WriteMeta: WriteMeta{Now: 30}, Card: RateCard{RateCard: quota.RateCard{ID: "eur", Currency: "EUR", Rates: map[quota.Meter]string{quota.Addresses: "0.001"}}}},
		&CapacityPolicyPutRequest{WriteMeta: WriteMeta{Now: 31}, Policy: CapacityPolicy{ID: "default", Policy: quota.Policy{CPURatio: 4}}},
		&SDNHostPutRequest{WriteMeta: WriteMeta{Now: 32}, Host: sdn.Host{Name: "pve1", Address: "192.0.2.11", Uplink: "eno1"}},
		&SDNZonePutRequest{WriteMeta: WriteMeta{Now: 33}, Zone: sdn.Zone{ID: "z1", Type: sdn.ZoneSimple}, Create: true},
		&SDNVnetPutRequest{WriteMeta: WriteMeta{Now: 34}, Vnet: sdn.Vnet{ID: "v1", Zone: "z1", Tenant: "acme"}, Create: true},
		&SDNSubnetPutRequest{WriteMeta: WriteMeta{Now: 35}, Subnet: sdn.Subnet{ID: "s1", Vnet: "v1", PrefixID: "p-a", Gateway: "10.1.0.1"}, Create: true},
		&SDNAllowPutRequest{WriteMeta: WriteMeta{Now: 36}, Allow: sdn.Allow{ID: "a1", From: "tenant:acme", To: "tenant:other"}, Create: true},
		&SDNApplyRequest{WriteMeta: WriteMeta{Now: 37}, RolloutID: "r-1", Deadline: 1e12},
		&StoragePolicyPutRequest{WriteMeta: WriteMeta{Now: 38}, Create: true, Policy: StoragePolicy{ID: "hourly", Kind: PolicyKindSnapshot,
			Schedule: "hourly", Selector: storage.Selector{All: true}, Keep: storage.Keep{Last: 2}}},
		&PolicyTickRequest{WriteMeta: WriteMeta{Now: 39}, Policy: "hourly", Slot: 39, Run: &Operation{ID: "run-1"}, Items: []RunItem{{VMID: 100, Node: "pve1", Kind: "qemu"}}},
		&RunItemUpdateRequest{WriteMeta: WriteMeta{Now: 40}, Run: "run-1", VMID: 100, Status: ItemSucceeded, Name: "mx-hourly-19700101000000"},
		&StorageSyncRequest{WriteMeta: WriteMeta{Now: 41}, StorageIDs: []string{"pve1/local"},
			Backups: []Backup{{VolID: "local:backup/vzdump-qemu-100-2026_11_26-02_00_00.vma.zst", StorageID: "pve1/local", Node: "pve1", Storage: "local", VMID: 100, Time: 41}},
			Volumes: []Volume{{VolID: "local:100/vm-100-disk-0.qcow2", StorageID: "pve1/local", Node: "pve1", Storage: "local", VMID: 100, Size: 1 << 30, Content: "images"}}},
		&PoolSettingsPutRequest{WriteMeta: WriteMeta{Now: 42}, Settings: PoolSettings{Storage: "local", Warn: 0.5, Critical: 0.7}},
		// This is site east: it protects vm 100 at west, which failed it
		// over, and recovers west's plan db.
		&DRPlanPutRequest{WriteMeta: WriteMeta{Now: 43}, Create: true, LocalSite: "east", Plan: DRPlan{ID: "web", SourceSite: "east", RecoverySite: "west",
			BackupStorage: "local", TargetStorage: "local-lvm", Guests: []DRGuest{{VMID: 100}}}},
		&DRReplicaSyncRequest{WriteMeta: WriteMeta{Now: 44}, Source: "west", LocalSite: "east", ConflictIDs: []string{"cf-0"}, Plans: []DRPlan{{
			ID: "db", SourceSite: "west", RecoverySite: "east", BackupStorage: "pbs", TargetStorage: "local-lvm", Guests: []DRGuest{{VMID: 200}}, UpdatedAt: 40}}},
		&DRFenceRequest{WriteMeta: WriteMeta{Now: 45}, Plan: "web", Fence: &DRFence{By: "west", Run: "dr-west-1", Since: 45},
			Conflicts: []DRConflict{{ID: "cf-1", Plan: "web", Kind: DRConflictGuestRan, Site: "east", VMID: 100, Detail: "vm 100 ran at east", At: 45}}},
		&DRRunStartRequest{WriteMeta: WriteMeta{Now: 46}, Plan: "web", Kind: OpDRFailback, Trigger: DRTriggerManual, Run: Operation{ID: "dr-1"},
			Items: []DRItem{{VMID: 100, Kind: "qemu"}}},
		&DRItemUpdateRequest{WriteMeta: WriteMeta{Now: 47}, Run: "dr-1", VMID: 100, Step: DRStepReleased},
	}
	for i, c := range cmds {
		applyOK(t, f, uint64(i+1), c)
	}
	next := uint64(len(cmds) + 1)
	// Two audited commands, the second a refused login, and a checkpoint.
	audited := WriteMeta{Now: 26, Actor: "root", RequestID: "req-26", Audit: &AuditInfo{
		Role: "admin", Source: "192.0.2.1:4000", Action: "PUT /v1/cluster/settings/{key}", Object: "/v1/cluster/settings/d",
	}}
	applyOK(t, f, next, &SettingUpsertRequest{WriteMeta: audited, Key: "d", Value: "4"})
	applyOK(t, f, next+1, &AuditRecordRequest{WriteMeta: WriteMeta{Now: 27, Audit: &AuditInfo{
		Source: "192.0.2.9:5000", Action: AuditAuthFailed, Object: "/v1/vms",
	}}, Result: "unauthorized"})
	head, err := f.State().AuditHead()
	if err != nil {
		t.Fatal(err)
	}
	applyOK(t, f, next+2, &AuditCheckpointRequest{WriteMeta: WriteMeta{Now: 28}, Checkpoint: audit.Sign(testAuditKey, head, 28)})
	return next + 3
}

func TestFSM_RejectedCommandChangesNothing(t *testing.T) {
	idem := func(key, hash string) WriteMeta {
		return WriteMeta{Now: 100, Actor: "root", IdempotencyKey: key, RequestHash: hash}
	}
	cases := []struct {
		name    string
		cmd     Command
		wantErr error
	}{
		{"cas conflict", &SettingUpsertRequest{Key: "a", Value: "x", CASIndex: u64(99)}, ErrConflict},
		{"cas conflict with idempotency key", &SettingUpsertRequest{WriteMeta: idem("new", "h"), Key: "a", CASIndex: u64(0)}, ErrConflict},
		{"delete missing", &SettingDeleteRequest{Key: "c"}, ErrNotFound},
		{"second bootstrap", &ACLBootstrapRequest{Token: Token{AccessorID: "r2", SecretHash: "h-r2"}}, ErrAlreadyBootstrapped},
		{"duplicate token", &TokenCreateRequest{Token: Token{AccessorID: "t1", SecretHash: "h9"}}, ErrConflict},
		{"duplicate secret", &TokenCreateRequest{Token: Token{AccessorID: "t9", SecretHash: "h1"}}, ErrConflict},
		{"revoke missing", &TokenRevokeRequest{AccessorID: "t2"}, ErrNotFound},
		{"idempotency mismatch", &SettingUpsertRequest{WriteMeta: idem("i1", "other"), Key: "z", Value: "z"}, ErrIdempotencyMismatch},
		{"idempotency replay", &SettingUpsertRequest{WriteMeta: idem("i1", "rh1"), Key: "z", Value: "z"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			next := populate(t, f)
			before := dump(t, f)
			r := applyCmd(t, f, next, tc.cmd)
			requireErrorIs(t, r.Err, tc.wantErr)
			if tc.wantErr == nil && !r.Replayed {
				t.Fatal("expected a replay")
			}
			if after := dump(t, f); !bytes.Equal(before, after) {
				t.Fatalf("state changed:\n%q\n%q", before, after)
			}
			// Also inside a batch, and next to an accepted entry.
			rs := applyBatch(t, f, next+1, mustEncode(t, tc.cmd))
			requireErrorIs(t, rs[0].Err, tc.wantErr)
			if after := dump(t, f); !bytes.Equal(before, after) {
				t.Fatal("state changed by the command in a batch")
			}
		})
	}
}

func TestFSM_LatestIndex(t *testing.T) {
	f := New()
	steps := []struct {
		name  string
		index uint64
		data  []byte
	}{
		{"accepted", 3, mustEncode(t, &SettingUpsertRequest{Key: "a"})},
		{"rejected", 4, mustEncode(t, &SettingDeleteRequest{Key: "nope"})},
		{"skipped unknown type", 5, []byte{byte(IgnoreUnknownTypeFlag) | 9}},
		{"batch", 7, mustEncode(t, &BatchRequest{Entries: [][]byte{mustEncode(t, &SettingDeleteRequest{Key: "nope"})}})},
		{"empty batch", 8, mustEncode(t, &BatchRequest{})},
	}
	for _, s := range steps {
		f.Apply(logEntry(s.index, s.data))
		if got := f.State().LatestIndex(); got != s.index {
			t.Fatalf("%s: LatestIndex = %d, want %d", s.name, got, s.index)
		}
	}
	// Restore sets it from the snapshot: the highest table index.
	f2 := testSnapshotRestore(t, f)
	if got := f2.State().LatestIndex(); got != 3 {
		t.Fatalf("restored LatestIndex = %d, want 3", got)
	}
}

func TestFSM_OnApply(t *testing.T) {
	type call struct {
		t   MessageType
		err bool
	}
	var calls []call
	f := New()
	f.OnApply = func(mt MessageType, r *Result) { calls = append(calls, call{mt, r.Err != nil}) }
	applyOK(t, f, 1, &SettingUpsertRequest{Key: "a"})
	applyCmd(t, f, 2, &SettingDeleteRequest{Key: "nope"})
	applyBatch(t, f, 3,
		mustEncode(t, &TokenCreateRequest{Token: Token{AccessorID: "x", SecretHash: "y"}}),
		mustEncode(t, &TokenRevokeRequest{AccessorID: "nope"}),
	)
	want := []call{{SettingUpsertType, false}, {SettingDeleteType, true}, {TokenCreateType, false}, {TokenRevokeType, true}}
	if !reflect.DeepEqual(calls, want) {
		t.Fatalf("OnApply calls %v, want %v", calls, want)
	}
}
