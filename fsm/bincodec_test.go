package fsm

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func sampleAllocation() *AddressAllocateRequest {
	return &AddressAllocateRequest{
		WriteMeta: WriteMeta{Now: 1764000000123456789, Actor: "tok", RequestID: "req-1", IdempotencyKey: "k", RequestHash: "h",
			Audit:       &AuditInfo{Role: "admin", Tenant: "acme", Source: "127.0.0.1:4000", Action: "POST /v1/ipam/prefixes/{id}/allocate", Object: "/v1/ipam/prefixes/p/allocate"},
			TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		PrefixID: "p", VRF: "global", Address: "10.0.0.7", Fallback: true, Force: true, Count: 2, IDs: []string{"a", "b"},
		Status: AddressReserved, DNSName: "web-1.example.com", Tenant: "acme", Project: "prod", Owner: "vm:101/net0", Description: "héllo",
		NameRules: true, Confine: "acme", ReverseRule: true,
	}
}

// TestBinaryCommand_RoundTrip encodes allocations by hand and decodes
// them back, with and without the optional parts.
func TestBinaryCommand_RoundTrip(t *testing.T) {
	full := sampleAllocation()
	bare := &AddressAllocateRequest{PrefixID: "p", Count: 1, IDs: []string{"x"}}
	named := &AddressAllocateRequest{PrefixID: "p", Count: 1, IDs: []string{"x"}, NameRules: true}
	confinedOnly := &AddressAllocateRequest{PrefixID: "p", Count: 1, IDs: []string{"x"}, Confine: "acme"}
	reverseOnly := &AddressAllocateRequest{PrefixID: "p", Count: 1, IDs: []string{"x"}, ReverseRule: true}
	negative := &AddressAllocateRequest{WriteMeta: WriteMeta{Now: -5}, Count: -3}
	entry, err := Encode(full)
	if err != nil {
		t.Fatal(err)
	}
	batch := &BatchRequest{Entries: [][]byte{entry, {byte(SettingUpsertType), 0x80}, {}}}
	for _, c := range []Command{full, bare, named, confinedOnly, reverseOnly, negative, batch, &BatchRequest{}} {
		buf, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		if hint := 3 + c.(binaryCommand).binarySize(); len(buf) > hint {
			t.Errorf("%T: %d bytes encoded, more than the %d allocated for them", c, len(buf), hint)
		}
		if buf[0] != byte(c.Type()) || buf[1] != binaryMarker {
			t.Fatalf("encoded as % x..., want the type and the binary marker", buf[:2])
		}
		got, err := Decode(buf)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
		}
	}
}

// TestBinaryCommand_ReadsPreviousFormat decodes an allocation as servers
// of the previous version wrote it, in msgpack.
func TestBinaryCommand_ReadsPreviousFormat(t *testing.T) {
	alloc := sampleAllocation()
	old, err := encodeMsgpack(alloc)
	if err != nil {
		t.Fatal(err)
	}
	oldEntry := append([]byte{byte(AddressAllocateType)}, old...)
	for _, want := range []Command{alloc, &BatchRequest{Entries: [][]byte{oldEntry, oldEntry}}} {
		payload, err := encodeMsgpack(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(append([]byte{byte(want.Type())}, payload...))
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
	}
}

// TestBinaryCommand_EarlierLayouts checks that an allocation without the
// optional fields keeps the layout of the version before them, and that
// each optional field adds bytes a server of that version refuses: it
// reads the allocation's last field and finds bytes after it, or a
// NameRules of false, which it never wrote.
func TestBinaryCommand_EarlierLayouts(t *testing.T) {
	full := sampleAllocation()
	base := *full
	base.NameRules, base.Confine, base.ReverseRule = false, "", false
	named := base
	named.NameRules = true
	confinedOnly := base
	confinedOnly.Confine = "acme"
	enc := func(r *AddressAllocateRequest) []byte { return encodeBinary(r) }
	b, n, f, c := enc(&base), enc(&named), enc(full), enc(&confinedOnly)
	if !bytes.HasPrefix(n, b) || !bytes.Equal(n[len(b):], []byte{1}) {
		t.Fatalf("NameRules: % x after the earlier layout, want 01", n[len(b):])
	}
	if !bytes.HasPrefix(f, n) || len(f) == len(n) {
		t.Fatalf("Confine and ReverseRule do not follow NameRules: % x", f[len(b):])
	}
	if !bytes.HasPrefix(c, b) || c[len(b)] != 0 {
		t.Fatalf("Confine without NameRules: % x after the earlier layout, want NameRules false first", c[len(b):])
	}
}

func TestBinaryCommand_Malformed(t *testing.T) {
	good, err := Encode(sampleAllocation())
	if err != nil {
		t.Fatal(err)
	}
	earlier := sampleAllocation()
	earlier.NameRules, earlier.Confine, earlier.ReverseRule = false, "", false
	base := encodeBinary(earlier)
	cases := map[string][]byte{
		"marker only":           good[:2],
		"newer layout":          append([]byte{good[0], binaryMarker, binaryVersion + 1}, good[3:]...),
		"trailing bytes":        append(bytes.Clone(good), 0),
		"name rules false only": append(bytes.Clone(base), 0),
		"confine empty":         append(bytes.Clone(base), 1, 0),
		"rules written empty":   append(bytes.Clone(base), 1, 0, 0),
		"no reverse rule":       append(bytes.Clone(base), 1, 1, 'a'),
		"bool neither 0 1":      append(append([]byte{}, good[:3]...), 0, 0, 0, 0, 0, 0, 7),
		"huge id count":         encodeBinary(&AddressAllocateRequest{}),
		"binary settings":       {byte(SettingUpsertType), binaryMarker, binaryVersion},
		"batch entry past end":  append(encodeBinary(&BatchRequest{})[:10], 1, 5, 1),
		"string past end":       {byte(AddressAllocateType), binaryMarker, binaryVersion, 0, 0x7f},
		"varint overflowed":     append([]byte{byte(AddressAllocateType), binaryMarker, binaryVersion}, bytes.Repeat([]byte{0xff}, 11)...),
	}
	// The zero allocation ends with its ID count (0) and six empty
	// strings; make the count claim far more IDs than there are bytes.
	huge := cases["huge id count"]
	cases["huge id count"] = append(huge[:len(huge)-7], 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0, 0)
	// The optional NameRules, Confine and ReverseRule end the payload:
	// cut before them, or after NameRules, it is a whole allocation of an
	// earlier layout; cut inside them, it is malformed.
	for i := 3; i < len(good); i++ {
		if i != len(base) && i != len(base)+1 {
			cases["truncated"+string(rune('A'+i%26))+string(rune('a'+i/26))] = good[:i]
		}
	}
	for name, buf := range cases {
		if _, err := Decode(buf); !errors.Is(err, errBinaryCommand) {
			t.Errorf("%s: Decode = %v, want errBinaryCommand", name, err)
		}
	}
}

// FuzzDecodeBinaryCommand checks that no payload panics the decoder, and
// that whatever decodes encodes to a payload that decodes to the same
// command (varints may be written longer than needed, so the bytes may
// differ).
func FuzzDecodeBinaryCommand(f *testing.F) {
	good, err := Encode(sampleAllocation())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(encodeBinary(&AddressAllocateRequest{}))
	f.Add(encodeBinary(&BatchRequest{Entries: [][]byte{good, {}}}))
	f.Add([]byte{byte(AddressAllocateType), binaryMarker, binaryVersion, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, buf []byte) {
		c, err := Decode(buf)
		if err != nil || len(buf) < 2 || buf[1] != binaryMarker {
			return
		}
		again, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := Decode(again)
		if err != nil {
			t.Fatalf("decoding the re-encoded command: %v", err)
		}
		if !reflect.DeepEqual(c2, c) {
			t.Fatalf("re-encoded command decodes to %+v, want %+v", c2, c)
		}
	})
}
