package fsm

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/quota"
)

// pagingFixture holds addresses in two VRFs, under two tenants and a few
// owners and names, with gaps left by released addresses.
func pagingFixture(t *testing.T) *ipamFSM {
	t.Helper()
	x := newIPAM(t)
	x.ok(&VRFCreateRequest{VRF: VRF{ID: "red"}})
	for _, id := range []string{"acme", "zeta"} {
		x.ok(&TenantCreateRequest{Tenant: Tenant{ID: id, Quota: quota.Limits{quota.IPv4: 1000}}})
	}
	v4 := x.prefix("10.0.0.0/24", PrefixActive)
	v6 := x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: x.id(), Prefix: "2001:db8::/64"}}).(*PrefixView)
	red := x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: x.id(), Prefix: "10.0.0.0/24", VRF: "red"}}).(*PrefixView)
	for i := range 30 {
		p := []string{v4.ID, v6.ID, red.ID}[i%3]
		r := &AddressAllocateRequest{PrefixID: p, Tenant: []string{"", "acme", "zeta"}[i/2%3],
			Owner: fmt.Sprintf("vm:%d/net0", 100+i%4)}
		if i%5 == 0 {
			r.DNSName = "web.moxxie.test"
		}
		a := x.allocReq(r)
		if i%7 == 3 {
			x.ok(&AddressReleaseRequest{ID: a.ID, Force: true})
		}
	}
	// IDs that are prefixes of one another, under one owner.
	for _, id := range []string{"k", "k0", "k00"} {
		x.ok(&AddressAllocateRequest{PrefixID: v4.ID, Owner: "vm:200/net0", IDs: []string{id}})
	}
	return x
}

// pages lists f's addresses limit at a time, each page after the last
// one's cursor, and returns them all.
func pages(t *testing.T, s *Store, f AddressFilter, limit int) []*Address {
	t.Helper()
	var all []*Address
	f.Limit = limit
	for range 1000 {
		_, page, err := s.Addresses(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < limit {
			return all
		}
		c, err := ParseAddressCursor(AddressCursorOf(page[len(page)-1]).String())
		if err != nil {
			t.Fatalf("cursor of %s: %v", page[len(page)-1].ID, err)
		}
		f.After = c
	}
	t.Fatalf("%+v: no end after 1000 pages", f)
	return nil
}

func ids(l []*Address) []string {
	out := make([]string, len(l))
	for i, a := range l {
		out[i] = a.ID
	}
	return out
}

func TestAddresses_Pages(t *testing.T) {
	x := pagingFixture(t)
	s := x.f.State()
	filters := []AddressFilter{
		{},
		{VRF: DefaultVRF},
		{VRF: "red"},
		{PrefixID: "id-1"},
		{PrefixID: "id-2"},
		{Tenant: "acme"},
		{Tenant: "zeta"},
		{Owner: "vm:101/net0"},
		{Owner: "vm:200/net0"},
		{DNSName: "web.moxxie.test"},
		{Tenant: "acme", VRF: "red"},
		{Owner: "vm:102/net0", Status: AddressActive},
	}
	for _, f := range filters {
		_, whole, err := s.Addresses(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(whole) == 0 {
			t.Fatalf("%+v selects nothing: the fixture does not test it", f)
		}
		for _, limit := range []int{1, 2, 3, 7, len(whole), len(whole) + 1} {
			if got := ids(pages(t, s, f, limit)); !slices.Equal(got, ids(whole)) {
				t.Errorf("%+v in pages of %d:\n got %v\nwant %v", f, limit, got, ids(whole))
			}
		}
	}
}

// TestAddresses_CursorOfAGoneAddress resumes after an address released
// between two pages, and after one allocated then.
func TestAddresses_CursorOfAGoneAddress(t *testing.T) {
	for _, f := range []AddressFilter{{}, {PrefixID: "id-1"}, {Owner: "vm:101/net0"}, {Tenant: "acme"}, {VRF: DefaultVRF}} {
		x := pagingFixture(t)
		_, whole, _ := x.f.State().Addresses(nil, f)
		if len(whole) < 4 {
			t.Fatalf("%+v: %d addresses, want 4 or more", f, len(whole))
		}
		f.Limit = 2
		_, first, _ := x.f.State().Addresses(nil, f)
		x.ok(&AddressReleaseRequest{ID: first[1].ID, Force: true})
		f.After = AddressCursorOf(first[1])
		_, next, _ := x.f.State().Addresses(nil, f)
		if got, want := ids(next), ids(whole[2:4]); !slices.Equal(got, want) {
			t.Errorf("%+v after released %s: %v, want %v", f, first[1].ID, got, want)
		}
	}
}

// TestAddresses_CursorOfAnotherListing gives a listing a cursor from
// another VRF or prefix: it resumes at the cursor's place in its own
// order, which may be before its first address or after its last.
func TestAddresses_CursorOfAnotherListing(t *testing.T) {
	x := pagingFixture(t)
	s := x.f.State()
	all := func(f AddressFilter) []*Address {
		_, l, err := s.Addresses(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	v4, v6 := netip.MustParseAddr("10.0.0.200"), netip.MustParseAddr("2001:db8::1")
	cases := []struct {
		name  string
		f     AddressFilter
		after AddressCursor
		want  []*Address
	}{
		{"global after a red cursor", AddressFilter{VRF: DefaultVRF}, AddressCursor{VRF: "red", Addr: v4, ID: "x"}, nil},
		{"red after a global cursor", AddressFilter{VRF: "red"}, AddressCursor{VRF: DefaultVRF, Addr: v6, ID: "x"}, all(AddressFilter{VRF: "red"})},
		{"global after the v4 addresses", AddressFilter{VRF: DefaultVRF}, AddressCursor{VRF: DefaultVRF, Addr: v4, ID: "x"}, all(AddressFilter{PrefixID: "id-2"})},
		{"v4 prefix after a v6 cursor", AddressFilter{PrefixID: "id-1"}, AddressCursor{VRF: DefaultVRF, Addr: v6, ID: "x"}, nil},
		{"v6 prefix after a v4 cursor", AddressFilter{PrefixID: "id-2"}, AddressCursor{VRF: DefaultVRF, Addr: v4, ID: "x"}, all(AddressFilter{PrefixID: "id-2"})},
		{"v4 prefix after a red cursor", AddressFilter{PrefixID: "id-1"}, AddressCursor{VRF: "red", Addr: v4, ID: "x"}, nil},
		{"by owner after the last ID", AddressFilter{Owner: "vm:100/net0"}, AddressCursor{ID: "~"}, nil},
		{"by owner after no ID", AddressFilter{Owner: "vm:100/net0"}, AddressCursor{ID: " "}, all(AddressFilter{Owner: "vm:100/net0"})},
	}
	for _, c := range cases {
		if c.want != nil && len(c.want) == 0 {
			t.Fatalf("%s: the fixture does not test it", c.name)
		}
		f := c.f
		f.After = &c.after
		if got := all(f); !slices.Equal(ids(got), ids(c.want)) {
			t.Errorf("%s: %v, want %v", c.name, ids(got), ids(c.want))
		}
	}
}

func TestParseAddressCursor(t *testing.T) {
	good := &AddressCursor{VRF: "red", Addr: netip.MustParseAddr("2001:db8::7"), ID: "01a21f38-5859-7267-9074-599ce31de7f1"}
	c, err := ParseAddressCursor(good.String())
	if err != nil || *c != *good {
		t.Fatalf("round trip: %+v, %v", c, err)
	}
	v4 := &AddressCursor{VRF: DefaultVRF, Addr: netip.MustParseAddr("10.0.0.1"), ID: "a"}
	if c, err := ParseAddressCursor(v4.String()); err != nil || *c != *v4 {
		t.Fatalf("round trip of v4: %+v, %v", c, err)
	}
	enc := func(b ...byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	bad := []struct{ name, s string }{
		{"empty", ""},
		{"not base64", "a b"},
		{"padded", good.String() + "="},
		{"standard alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(good.String()) + "+"},
		{"version 0", enc(0, 0, 4, 10, 0, 0, 1, 1, 'a')},
		{"version 2", enc(2, 0, 4, 10, 0, 0, 1, 1, 'a')},
		{"no ID", enc(1, 0, 4, 10, 0, 0, 1, 0)},
		{"address of 5 bytes", enc(1, 0, 5, 10, 0, 0, 1, 1, 1, 'a')},
		{"trailing byte", enc(1, 0, 4, 10, 0, 0, 1, 1, 'a', 0)},
		{"truncated", enc(1, 0, 4, 10, 0)},
		{"length past the end", enc(1, 9, 'r')},
		{"ID too long", (&AddressCursor{Addr: netip.MustParseAddr("10.0.0.1"), ID: strings.Repeat("i", maxCursorField+1)}).String()},
		{"VRF too long", (&AddressCursor{VRF: strings.Repeat("v", maxCursorField+1), Addr: netip.MustParseAddr("10.0.0.1"), ID: "a"}).String()},
	}
	for _, b := range bad {
		if c, err := ParseAddressCursor(b.s); !errors.Is(err, errBadCursor) {
			t.Errorf("%s (%q): %+v, %v; want an error", b.name, b.s, c, err)
		}
	}
}

// FuzzParseAddressCursor: whatever parses encodes back to itself.
func FuzzParseAddressCursor(f *testing.F) {
	f.Add((&AddressCursor{VRF: "red", Addr: netip.MustParseAddr("2001:db8::7"), ID: "01a21f38-5859-7267-9074-599ce31de7f1"}).String())
	f.Add((&AddressCursor{VRF: DefaultVRF, Addr: netip.MustParseAddr("10.0.0.1"), ID: "a"}).String())
	f.Add("")
	f.Add("AQAECgAAAQFh")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseAddressCursor(s)
		if err != nil {
			if !errors.Is(err, errBadCursor) {
				t.Fatalf("%q: error %v does not wrap errBadCursor", s, err)
			}
			return
		}
		if c.String() != s || c.ID == "" || !c.Addr.IsValid() {
			t.Fatalf("%q parsed to %+v, which encodes to %q", s, c, c.String())
		}
	})
}

// TestAddresses_ContainerListsItsChildren lists a container's addresses:
// those of the prefixes inside it in its VRF, in address order, also in
// pages and with the other filters.
func TestAddresses_ContainerListsItsChildren(t *testing.T) {
	x := pagingFixture(t)
	inner := x.prefix("10.0.1.0/24", PrefixActive)
	for i := range 3 {
		x.allocReq(&AddressAllocateRequest{PrefixID: inner.ID, Owner: fmt.Sprintf("vm:%d/net0", 300+i%2)})
	}
	outside := x.prefix("10.1.0.0/24", PrefixActive)
	x.alloc(outside.ID, 2)
	c := x.prefix("10.0.0.0/16", PrefixContainer)
	s := x.f.State()

	_, global, err := s.Addresses(nil, AddressFilter{VRF: DefaultVRF})
	if err != nil {
		t.Fatal(err)
	}
	in16 := netip.MustParsePrefix("10.0.0.0/16")
	for _, f := range []AddressFilter{
		{PrefixID: c.ID},
		{PrefixID: c.ID, Owner: "vm:300/net0"},
		{PrefixID: c.ID, Tenant: "acme"},
		{PrefixID: c.ID, DNSName: "web.moxxie.test"},
		{PrefixID: c.ID, Status: AddressActive},
	} {
		var want []*Address
		for _, a := range global {
			g := f
			g.PrefixID = ""
			if in16.Contains(netip.MustParseAddr(a.Address)) && g.match(a) {
				want = append(want, a)
			}
		}
		if len(want) == 0 {
			t.Fatalf("%+v selects nothing: the fixture does not test it", f)
		}
		_, got, err := s.Addresses(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		if f.Owner == "" && f.Tenant == "" && f.DNSName == "" {
			// In address order, as the index keeps them.
			if !slices.Equal(ids(got), ids(want)) {
				t.Fatalf("%+v:\n got %v\nwant %v", f, ids(got), ids(want))
			}
		} else if !slices.Equal(sortedIDs(got), sortedIDs(want)) {
			t.Fatalf("%+v:\n got %v\nwant %v", f, sortedIDs(got), sortedIDs(want))
		}
		for _, limit := range []int{1, 2, 7} {
			if p := pages(t, s, f, limit); !slices.Equal(ids(p), ids(got)) {
				t.Errorf("%+v in pages of %d:\n got %v\nwant %v", f, limit, ids(p), ids(got))
			}
		}
	}
	// An active prefix still lists only its own.
	_, own, _ := s.Addresses(nil, AddressFilter{PrefixID: inner.ID})
	if len(own) != 3 {
		t.Fatalf("inner prefix lists %d addresses, want 3", len(own))
	}
}

func sortedIDs(l []*Address) []string { return slices.Sorted(slices.Values(ids(l))) }

// TestAddresses_AtAnIP finds the addresses at one IP: in every VRF, in
// one, and with the other filters.
func TestAddresses_AtAnIP(t *testing.T) {
	x := pagingFixture(t)
	s := x.f.State()
	_, all, _ := s.Addresses(nil, AddressFilter{})
	at := map[netip.Addr][]*Address{}
	for _, a := range all {
		ip := netip.MustParseAddr(a.Address)
		at[ip] = append(at[ip], a)
	}
	both := 0
	for ip, want := range at {
		if len(want) > 1 {
			both++
		}
		for _, f := range []AddressFilter{{Address: ip}, {Address: ip, VRF: "red"}, {Address: ip, VRF: DefaultVRF}, {Address: ip, Tenant: "acme"}, {Address: ip, Limit: 1}} {
			var w []*Address
			for _, a := range want {
				g := f
				g.Address, g.Limit = netip.Addr{}, 0
				if g.match(a) && (f.Limit == 0 || len(w) < f.Limit) {
					w = append(w, a)
				}
			}
			_, got, err := s.Addresses(nil, f)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), ids(w)) {
				t.Fatalf("%+v: got %v, want %v", f, ids(got), ids(w))
			}
		}
		if p := pages(t, s, AddressFilter{Address: ip}, 1); !slices.Equal(ids(p), ids(want)) {
			t.Fatalf("%s in pages of 1: got %v, want %v", ip, ids(p), ids(want))
		}
	}
	if both == 0 {
		t.Fatal("no IP is in two VRFs: the fixture does not test it")
	}
	if _, got, _ := s.Addresses(nil, AddressFilter{Address: netip.MustParseAddr("192.0.2.1")}); len(got) != 0 {
		t.Fatalf("a free IP lists %v", ids(got))
	}
}
