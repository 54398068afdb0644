package fsm

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// declaredMessageTypes parses the package's source and returns the names of
// all constants of type MessageType, so that a type added to the const block
// but not registered is caught.
func declaredMessageTypes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			var typ string
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				switch {
				case vs.Type != nil:
					typ = fmt.Sprint(vs.Type)
				case len(vs.Values) > 0:
					typ = "" // untyped or inferred: not a declared MessageType
				}
				if typ != "MessageType" {
					continue
				}
				for _, n := range vs.Names {
					names = append(names, n.Name)
				}
			}
		}
	}
	return names
}

// messageTypeConsts maps every MessageType constant to its value. It must
// list the same names declaredMessageTypes finds.
var messageTypeConsts = map[string]MessageType{
	"SettingUpsertType":        SettingUpsertType,
	"SettingDeleteType":        SettingDeleteType,
	"ACLBootstrapType":         ACLBootstrapType,
	"TokenCreateType":          TokenCreateType,
	"TokenRevokeType":          TokenRevokeType,
	"IdempotencyReapType":      IdempotencyReapType,
	"BatchType":                BatchType,
	"VRFCreateType":            VRFCreateType,
	"VRFDeleteType":            VRFDeleteType,
	"PrefixCreateType":         PrefixCreateType,
	"PrefixUpdateType":         PrefixUpdateType,
	"PrefixDeleteType":         PrefixDeleteType,
	"PrefixAllocateType":       PrefixAllocateType,
	"IPRangeCreateType":        IPRangeCreateType,
	"IPRangeDeleteType":        IPRangeDeleteType,
	"AddressAllocateType":      AddressAllocateType,
	"AddressUpdateType":        AddressUpdateType,
	"AddressReleaseType":       AddressReleaseType,
	"PoolCreateType":           PoolCreateType,
	"PoolDeleteType":           PoolDeleteType,
	"IDAllocateType":           IDAllocateType,
	"IDReleaseType":            IDReleaseType,
	"ZoneCreateType":           ZoneCreateType,
	"ZoneDeleteType":           ZoneDeleteType,
	"QuarantineDrainType":      QuarantineDrainType,
	"IgnoreUnknownTypeFlag":    IgnoreUnknownTypeFlag,
	"InventorySyncType":        InventorySyncType,
	"InventoryStaleType":       InventoryStaleType,
	"OperationCreateType":      OperationCreateType,
	"OperationUpdateType":      OperationUpdateType,
	"AuditRecordType":          AuditRecordType,
	"AuditCheckpointType":      AuditCheckpointType,
	"AuditTruncateType":        AuditTruncateType,
	"SecretPutType":            SecretPutType,
	"SecretDeleteType":         SecretDeleteType,
	"SecretKeyWrapType":        SecretKeyWrapType,
	"TenantCreateType":         TenantCreateType,
	"TenantUpdateType":         TenantUpdateType,
	"TenantDeleteType":         TenantDeleteType,
	"ProjectCreateType":        ProjectCreateType,
	"ProjectUpdateType":        ProjectUpdateType,
	"ProjectDeleteType":        ProjectDeleteType,
	"MeterTickType":            MeterTickType,
	"RateCardPutType":          RateCardPutType,
	"RateCardDeleteType":       RateCardDeleteType,
	"CapacityPolicyPutType":    CapacityPolicyPutType,
	"CapacityPolicyDeleteType": CapacityPolicyDeleteType,
	"SDNZonePutType":           SDNZonePutType,
	"SDNZoneDeleteType":        SDNZoneDeleteType,
	"SDNVnetPutType":           SDNVnetPutType,
	"SDNVnetDeleteType":        SDNVnetDeleteType,
	"SDNSubnetPutType":         SDNSubnetPutType,
	"SDNSubnetDeleteType":      SDNSubnetDeleteType,
	"SDNAllowPutType":          SDNAllowPutType,
	"SDNAllowDeleteType":       SDNAllowDeleteType,
	"SDNHostPutType":           SDNHostPutType,
	"SDNHostDeleteType":        SDNHostDeleteType,
	"SDNApplyType":             SDNApplyType,
	"SDNReportType":            SDNReportType,
	"SDNRolloutAbortType":      SDNRolloutAbortType,
	"StoragePolicyPutType":     StoragePolicyPutType,
	"StoragePolicyDeleteType":  StoragePolicyDeleteType,
	"PolicyTickType":           PolicyTickType,
	"RunItemUpdateType":        RunItemUpdateType,
	"PruneRecordType":          PruneRecordType,
	"RecordProtectType":        RecordProtectType,
	"StorageSyncType":          StorageSyncType,
	"PoolSettingsPutType":      PoolSettingsPutType,
	"DRPlanPutType":            DRPlanPutType,
	"DRPlanDeleteType":         DRPlanDeleteType,
	"DRReplicaSyncType":        DRReplicaSyncType,
	"DRRunStartType":           DRRunStartType,
	"DRItemUpdateType":         DRItemUpdateType,
	"DRFenceType":              DRFenceType,
	"DRFailoverEndType":        DRFailoverEndType,
	"RetentionPruneType":       RetentionPruneType,
	"RestoreMarkType":          RestoreMarkType,
	"PoolUpdateType":           PoolUpdateType,
	"IDUpdateType":             IDUpdateType,
	"ZoneUpdateType":           ZoneUpdateType,
	"DNSSerialMarkType":        DNSSerialMarkType,
	"DRRunRetryType":           DRRunRetryType,
	"LineageCheckType":         LineageCheckType,
	"DRIsolationType":          DRIsolationType,
}

func TestMessageTypes_AllRegistered(t *testing.T) {
	declared := declaredMessageTypes(t)
	slices.Sort(declared)
	var listed []string
	for n := range messageTypeConsts {
		listed = append(listed, n)
	}
	slices.Sort(listed)
	if !slices.Equal(declared, listed) {
		t.Fatalf("MessageType constants in the source %v, in this test %v: update messageTypeConsts", declared, listed)
	}

	var want []MessageType
	for name, mt := range messageTypeConsts {
		if mt == IgnoreUnknownTypeFlag {
			continue
		}
		if mt&^IgnoreUnknownTypeFlag == 0 {
			t.Errorf("%s = %d: message types are numbered 1..127, with or without IgnoreUnknownTypeFlag", name, mt)
		}
		want = append(want, mt)
	}
	slices.Sort(want)
	got := MessageTypes()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("MessageTypes() = %v, want %v", got, want)
	}
	// Types are appended with the next free number, flagged or not: no
	// gaps, no number twice.
	numbers := make([]MessageType, len(got))
	for i, mt := range got {
		numbers[i] = mt &^ IgnoreUnknownTypeFlag
	}
	slices.Sort(numbers)
	for i, n := range numbers {
		if n != MessageType(i+1) {
			t.Errorf("message type number #%d is %d: numbers must be dense from 1", i, n)
		}
	}
}

func TestMessageTypes_Registration(t *testing.T) {
	names := map[string]MessageType{}
	for _, mt := range MessageTypes() {
		t.Run(fmt.Sprint(uint8(mt)), func(t *testing.T) {
			info := commands[mt]
			name := mt.String()
			if name == "" || strings.HasPrefix(name, "unknown(") || name != info.name {
				t.Errorf("String() = %q, registered name %q", name, info.name)
			}
			if prev, dup := names[name]; dup {
				t.Errorf("name %q used by types %d and %d", name, prev, mt)
			}
			names[name] = mt
			c1, c2 := info.new(), info.new()
			if c1.Type() != mt {
				t.Errorf("constructor returns %T with Type() %d", c1, c1.Type())
			}
			if reflect.ValueOf(c1).Kind() != reflect.Pointer || c1 == c2 {
				t.Errorf("constructor must return a fresh pointer each call, got %T", c1)
			}
			if c1.Meta() == nil {
				t.Errorf("%T.Meta() is nil", c1)
			}
			if (info.apply == nil) != (mt == BatchType) {
				t.Errorf("apply func registered = %v; only BatchType is dispatched by Apply itself", info.apply != nil)
			}
		})
	}
}

func TestMessageType_StringUnknown(t *testing.T) {
	for _, mt := range []MessageType{0, 100, 127, 128, 200, 255} {
		if got, want := mt.String(), fmt.Sprintf("unknown(%d)", uint8(mt)); got != want {
			t.Errorf("MessageType(%d).String() = %q, want %q", mt, got, want)
		}
	}
}

func TestRegister_PanicsOnMisuse(t *testing.T) {
	cases := []struct {
		name string
		t    MessageType
		new  func() Command
	}{
		{"duplicate", SettingUpsertType, func() Command { return new(SettingUpsertRequest) }},
		{"wrong constructor", 100, func() Command { return new(SettingUpsertRequest) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("register did not panic")
				}
				if _, ok := commands[100]; ok {
					delete(commands, 100)
					t.Fatal("a rejected registration was recorded")
				}
			}()
			register(tc.t, "x", tc.new, nil)
		})
	}
}

func TestEncodeDecode_RoundTrip(t *testing.T) {
	samples := sampleCommands(t)
	for _, mt := range MessageTypes() {
		cmd, ok := samples[mt]
		if !ok {
			t.Errorf("sampleCommands has no %s command: add one", mt)
			continue
		}
		t.Run(mt.String(), func(t *testing.T) {
			if cmd.Type() != mt {
				t.Fatalf("sample for %s has type %s", mt, cmd.Type())
			}
			requirePopulated(t, reflect.TypeOf(cmd).Elem().Name(), reflect.ValueOf(cmd))
			buf := mustEncode(t, cmd)
			if MessageType(buf[0]) != mt {
				t.Fatalf("type byte %d, want %d", buf[0], mt)
			}
			got, err := Decode(buf)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, cmd) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, cmd)
			}
			// Canonical encoding: re-encoding gives the same bytes.
			if again := mustEncode(t, got); string(again) != string(buf) {
				t.Fatalf("re-encoding differs:\n%q\n%q", again, buf)
			}
		})
	}
}

func TestEncodeDecode_ZeroValues(t *testing.T) {
	for _, mt := range MessageTypes() {
		cmd := commands[mt].new()
		got, err := Decode(mustEncode(t, cmd))
		if err != nil {
			t.Fatalf("%s: Decode: %v", mt, err)
		}
		if !reflect.DeepEqual(got, cmd) {
			t.Errorf("%s: zero value round trip:\n got %#v\nwant %#v", mt, got, cmd)
		}
	}
	// A nil CASIndex ("no CAS") and a CASIndex of 0 ("must not exist") are
	// different requests and must stay different.
	for _, cas := range []*uint64{nil, u64(0)} {
		got, err := Decode(mustEncode(t, &SettingUpsertRequest{Key: "k", CASIndex: cas}))
		if err != nil {
			t.Fatal(err)
		}
		if gc := got.(*SettingUpsertRequest).CASIndex; (gc == nil) != (cas == nil) || gc != nil && *gc != 0 {
			t.Errorf("CASIndex %v decoded as %v", cas, gc)
		}
	}
}

func TestDecode_Errors(t *testing.T) {
	valid := mustEncode(t, &SettingUpsertRequest{Key: "k", Value: "v"})
	cases := []struct {
		name    string
		buf     []byte
		wantErr error // nil: any error except the sentinels
	}{
		{"nil", nil, ErrEmptyEntry},
		{"empty", []byte{}, ErrEmptyEntry},
		{"type 0", []byte{0, 0x80}, ErrUnknownType},
		{"next free type", []byte{byte(nextFreeType), 0x80}, ErrUnknownType},
		{"type 127", []byte{127}, ErrUnknownType},
		{"flagged unknown", []byte{byte(IgnoreUnknownTypeFlag) | 1, 0x80}, ErrUnknownType},
		{"type byte only", []byte{byte(SettingUpsertType)}, nil},
		{"truncated body", valid[:len(valid)-2], nil},
		{"body not a map", []byte{byte(SettingUpsertType), 0x01}, nil},
		{"wrong field type", append([]byte{byte(SettingUpsertType)}, mustMsgpack(t, map[string]any{"Key": 12})...), nil},
		{"batch entries not bytes", append([]byte{byte(BatchType)}, mustMsgpack(t, map[string]any{"Entries": "x"})...), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd, err := Decode(tc.buf)
			if err == nil {
				t.Fatalf("Decode(%q) = %#v, want an error", tc.buf, cmd)
			}
			if cmd != nil {
				t.Errorf("Decode returned a command with its error: %#v", cmd)
			}
			if tc.wantErr != nil {
				requireErrorIs(t, err, tc.wantErr)
				return
			}
			if errors.Is(err, ErrEmptyEntry) || errors.Is(err, ErrUnknownType) {
				t.Errorf("decode failure reported as %v", err)
			}
		})
	}
}

func mustMsgpack(t testing.TB, v any) []byte {
	t.Helper()
	b, err := encodeMsgpack(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFSM_ApplyUnknownType(t *testing.T) {
	cases := []struct {
		name      string
		data      []byte
		wantPanic bool
	}{
		{"flagged unknown, empty body", []byte{byte(IgnoreUnknownTypeFlag)}, false},
		{"flagged unknown 129", []byte{byte(IgnoreUnknownTypeFlag) | 1, 0x80}, false},
		{"flagged unknown 255 with garbage", []byte{255, 1, 2, 3}, false},
		{"unknown 0", []byte{0, 0x80}, true},
		{"unknown next free", []byte{byte(nextFreeType), 0x80}, true},
		{"unknown 127", []byte{127}, true},
		{"empty entry", []byte{}, true},
		{"known type, corrupt body", []byte{byte(SettingUpsertType), 0xc1}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			applyOK(t, f, 1, &SettingUpsertRequest{Key: "k", Value: "v"})
			before := dump(t, f)
			var resp any
			panicked := func() (p bool) {
				defer func() { p = recover() != nil }()
				resp = f.Apply(logEntry(2, tc.data))
				return false
			}()
			if panicked != tc.wantPanic {
				t.Fatalf("Apply panicked = %v, want %v", panicked, tc.wantPanic)
			}
			if !tc.wantPanic {
				if resp != nil {
					t.Fatalf("Apply of a skipped type returned %#v, want nil", resp)
				}
				if got := f.State().LatestIndex(); got != 2 {
					t.Errorf("LatestIndex = %d after a skipped entry, want 2", got)
				}
			}
			if after := dump(t, f); string(after) != string(before) {
				t.Fatal("state changed")
			}
		})
	}
}

func TestFSM_ApplyNonCommandLog(t *testing.T) {
	f := New()
	for _, lt := range []raft.LogType{raft.LogNoop, raft.LogBarrier, raft.LogConfiguration} {
		// Data that would panic as a command: it must not be looked at.
		if resp := f.Apply(&raft.Log{Type: lt, Index: 1, Data: []byte{0}}); resp != nil {
			t.Errorf("Apply(%v) = %#v, want nil", lt, resp)
		}
	}
}

// TestObjectKey: changes of one existing object share a key, other
// objects' and kinds' do not, and creations and allocations have none.
func TestObjectKey(t *testing.T) {
	for _, c := range []struct {
		a, b Command
		same bool
	}{
		{&AddressUpdateRequest{ID: "a"}, &AddressReleaseRequest{ID: "a"}, true},
		{&AddressUpdateRequest{ID: "a"}, &AddressUpdateRequest{ID: "b"}, false},
		{&PoolUpdateRequest{ID: "a"}, &IDUpdateRequest{ID: "a"}, false},
		{&SettingUpsertRequest{Key: "k"}, &SettingDeleteRequest{Key: "k"}, true},
		{&TenantUpdateRequest{ID: "t"}, &ProjectUpdateRequest{ID: "t"}, false},
	} {
		ka, kb := ObjectKey(c.a), ObjectKey(c.b)
		if ka == "" || kb == "" || (ka == kb) != c.same {
			t.Errorf("%T %q and %T %q: same %v, want %v", c.a, ka, c.b, kb, ka == kb, c.same)
		}
	}
	for _, cmd := range []Command{&AddressAllocateRequest{PrefixID: "p"}, &PrefixCreateRequest{}, &IDAllocateRequest{}, &BatchRequest{}} {
		if k := ObjectKey(cmd); k != "" {
			t.Errorf("%T has key %q", cmd, k)
		}
	}
}
