package fsm

import (
	"bytes"
	"encoding/json"
	"testing"
)

// plainAddress is Address without methods: json.Marshal of it is the
// reflective encoding that Address.appendJSON must reproduce.
type plainAddress Address

func marshalPlain(t testing.TB, l *AddressList) []byte {
	t.Helper()
	var v any
	if l != nil {
		plain := struct {
			Addresses []*plainAddress `json:"addresses"`
		}{}
		if l.Addresses != nil {
			plain.Addresses = make([]*plainAddress, len(l.Addresses))
			for i, a := range l.Addresses {
				plain.Addresses[i] = (*plainAddress)(a)
			}
		}
		v = plain
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkAddressJSON(t testing.TB, l *AddressList) {
	t.Helper()
	if l == nil {
		// A nil list is left to encoding/json.
		if b := (&Result{Value: l}).ValueJSON(); b != nil {
			t.Fatalf("ValueJSON of a nil list = %s, want nil", b)
		}
		return
	}
	if want, got := marshalPlain(t, l), l.json(); !bytes.Equal(got, want) {
		t.Fatalf("json:\n got %s\nwant %s", got, want)
	}
	if want, got := l.json(), (&Result{Value: l}).ValueJSON(); !bytes.Equal(got, want) {
		t.Fatalf("ValueJSON:\n got %s\nwant %s", got, want)
	}
}

func TestAddressJSON_LikeEncodingJSON(t *testing.T) {
	full := &Address{
		ID: "019ab9a5-9e00-7000-8000-000000000001", Address: "10.0.0.1", PrefixID: "p", VRF: "global", Status: AddressActive,
		DNSName: "web-1.example.com", Tenant: "acme", Project: "prod", Owner: "vm:101/net0", Description: "front end",
		CreateIndex: 7, ModifyIndex: 1<<64 - 1, CreatedAt: 1764000000123456789, UpdatedAt: -1,
	}
	odd := []string{
		"", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\r", "\x00\x01\x1f\x7f",
		"bell\b form\f", "héllo wörld", "emoji 🦀", "\u2028\u2029", "bad \xff\xfe utf-8", "~ all printable !#$%'()*+,-./:;=?@[]^_`{|}",
	}
	cases := []*AddressList{
		nil,
		{},
		{Addresses: []*Address{}},
		{Addresses: []*Address{nil}},
		{Addresses: []*Address{{}}},
		{Addresses: []*Address{full, {ID: "b", Address: "2001:db8::1", Status: AddressReserved}}},
		// Times repeat and change between addresses, zero among them.
		{Addresses: []*Address{full, full, {}, full, {CreatedAt: 1, UpdatedAt: 1}}},
	}
	for _, s := range odd {
		a := *full
		a.ID, a.DNSName, a.Tenant, a.Project, a.Owner, a.Description = s, s, s, s, s, s
		cases = append(cases, &AddressList{Addresses: []*Address{&a}})
	}
	for _, l := range cases {
		checkAddressJSON(t, l)
	}
	// Other results are left to encoding/json.
	if b := (&Result{Value: &AddressReleased{Address: full}}).ValueJSON(); b != nil {
		t.Fatalf("ValueJSON of a released address = %s, want nil", b)
	}
}

// FuzzAddressJSON checks that the hand-written encoding of an allocation's
// answer stays byte for byte what encoding/json writes.
func FuzzAddressJSON(f *testing.F) {
	f.Add("019ab9a5-9e00-7000-8000-000000000001", "10.0.0.1", "web-1", "vm:101/net0", "note", uint64(3), int64(1764000000123456789))
	f.Add(`"\`, "<>&", "\u2028", "\xff", "\x00\n", uint64(0), int64(-5))
	f.Fuzz(func(t *testing.T, id, addr, dns, owner, desc string, index uint64, now int64) {
		a := &Address{ID: id, Address: addr, PrefixID: desc, VRF: owner, Status: dns, DNSName: dns, Tenant: id,
			Project: addr, Owner: owner, Description: desc, CreateIndex: index, ModifyIndex: ^index,
			CreatedAt: Timestamp(now), UpdatedAt: Timestamp(-now)}
		checkAddressJSON(t, &AddressList{Addresses: []*Address{a, a}})
	})
}
