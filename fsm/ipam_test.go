package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/ipam"
	"github.com/moxxie/moxxie/quota"
)

// ipamFSM wraps an FSM with a running index and leader clock for IPAM
// tests.
type ipamFSM struct {
	t     *testing.T
	f     *FSM
	index uint64
	now   int64
	ids   int
}

func newIPAM(t *testing.T) *ipamFSM {
	return &ipamFSM{t: t, f: New(), now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano()}
}

// apply applies cmd with the next index and the current clock.
func (x *ipamFSM) apply(cmd Command) *Result {
	x.t.Helper()
	x.index++
	cmd.Meta().Now = x.now
	return applyCmd(x.t, x.f, x.index, cmd)
}

func (x *ipamFSM) ok(cmd Command) any {
	x.t.Helper()
	r := x.apply(cmd)
	if r.Err != nil {
		x.t.Fatalf("%T: %v", cmd, r.Err)
	}
	return r.Value
}

// fails applies cmd, requires an error wrapping want whose FieldError names
// field (when field is not empty) and requires the state to be unchanged.
func (x *ipamFSM) fails(cmd Command, want error, field, msg string) {
	x.t.Helper()
	before := dump(x.t, x.f)
	r := x.apply(cmd)
	if r.Err == nil {
		x.t.Fatalf("%T succeeded, want %v", cmd, want)
	}
	if !errors.Is(r.Err, want) {
		x.t.Fatalf("%T: error %v, want %v", cmd, r.Err, want)
	}
	var fe *FieldError
	if field != "" && (!errors.As(r.Err, &fe) || fe.Field != field) {
		x.t.Fatalf("%T: error %v does not name field %q", cmd, r.Err, field)
	}
	if msg != "" && !strings.Contains(r.Err.Error(), msg) {
		x.t.Fatalf("%T: error %q does not say %q", cmd, r.Err, msg)
	}
	if after := dump(x.t, x.f); string(after) != string(before) {
		x.t.Fatalf("%T: a rejected command changed the state", cmd)
	}
}

func (x *ipamFSM) id() string { x.ids++; return fmt.Sprintf("id-%d", x.ids) }

func (x *ipamFSM) prefix(cidr, status string) *PrefixView {
	x.t.Helper()
	return x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: x.id(), Prefix: cidr, Status: status}}).(*PrefixView)
}

func (x *ipamFSM) alloc(prefixID string, n int) []string {
	x.t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = x.id()
	}
	v := x.ok(&AddressAllocateRequest{PrefixID: prefixID, Count: n, IDs: ids}).(*AddressList)
	out := make([]string, len(v.Addresses))
	for i, a := range v.Addresses {
		out[i] = a.Address
	}
	return out
}

func (x *ipamFSM) allocReq(r *AddressAllocateRequest) *Address {
	x.t.Helper()
	r.IDs = []string{x.id()}
	return x.ok(r).(*AddressList).Addresses[0]
}

func (x *ipamFSM) getPrefix(id string) *PrefixView {
	x.t.Helper()
	_, p, err := x.f.State().Prefix(nil, id)
	if err != nil || p == nil {
		x.t.Fatalf("prefix %s: %v %v", id, p, err)
	}
	return p
}

func TestIPAM_UsableAddresses(t *testing.T) {
	cases := []struct {
		cidr   string
		pool   bool
		first  []string
		size   string
		exhaus int // addresses to take before the prefix is full
	}{
		{"10.0.0.0/24", false, []string{"10.0.0.1", "10.0.0.2"}, "254", 254},
		{"10.0.0.0/24", true, []string{"10.0.0.0", "10.0.0.1"}, "256", 256},
		{"10.0.0.0/31", false, []string{"10.0.0.0", "10.0.0.1"}, "2", 2},
		{"10.0.0.7/32", false, []string{"10.0.0.7"}, "1", 1},
		{"2001:db8::/64", false, []string{"2001:db8::1", "2001:db8::2"}, "18446744073709551615", 0},
		{"2001:db8::/48", false, []string{"2001:db8::1"}, "1208925819614629174706175", 0},
		{"2001:db8::/127", false, []string{"2001:db8::", "2001:db8::1"}, "2", 2},
		{"2001:db8::5/128", false, []string{"2001:db8::5"}, "1", 1},
		{"0.0.0.0/0", false, []string{"0.0.0.1", "0.0.0.2"}, "4294967294", 0},
		{"::/0", true, []string{"::", "::1"}, "340282366920938463463374607431768211456", 0}, // 2^128, exact
		{"::/0", false, []string{"::1", "::2"}, "340282366920938463463374607431768211455", 0},
	}
	for _, tc := range cases {
		t.Run(tc.cidr, func(t *testing.T) {
			x := newIPAM(t)
			p := x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: tc.cidr, IsPool: tc.pool}}).(*PrefixView)
			if string(p.Utilization.Size) != tc.size {
				t.Fatalf("size %s, want %s", p.Utilization.Size, tc.size)
			}
			got := x.alloc("p", len(tc.first))
			if strings.Join(got, " ") != strings.Join(tc.first, " ") {
				t.Fatalf("first addresses %v, want %v", got, tc.first)
			}
			if tc.exhaus > 0 {
				if rest := tc.exhaus - len(tc.first); rest > 0 {
					x.alloc("p", rest)
				}
				x.fails(&AddressAllocateRequest{PrefixID: "p", IDs: []string{"z"}}, ipam.ErrExhausted, "count", "1 requested, 0 available")
				if u := x.getPrefix("p").Utilization; u.Percent != 100 {
					t.Fatalf("full prefix utilization %+v", u)
				}
			}
		})
	}
}

func TestIPAM_CountIsAllOrNothing(t *testing.T) {
	x := newIPAM(t)
	x.prefix("10.0.0.0/29", PrefixActive) // 6 usable
	x.alloc("id-1", 1)
	x.fails(&AddressAllocateRequest{PrefixID: "id-1", Count: 6, IDs: []string{"a", "b", "c", "d", "e", "f"}},
		ipam.ErrExhausted, "count", "6 requested, 5 available")
	if got := x.alloc("id-1", 5); strings.Join(got, ",") != "10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5,10.0.0.6" {
		t.Fatalf("got %v", got)
	}
}

func TestIPAM_Nesting(t *testing.T) {
	x := newIPAM(t)
	agg := x.prefix("10.0.0.0/8", PrefixContainer)
	site := x.prefix("10.1.0.0/16", PrefixContainer)
	lan := x.prefix("10.1.2.0/24", PrefixActive)
	if site.ParentID != agg.ID || lan.ParentID != site.ID {
		t.Fatalf("parents: site %q (want %q), lan %q (want %q)", site.ParentID, agg.ID, lan.ParentID, site.ID)
	}
	// Nesting under an active prefix, overlapping and duplicates are refused.
	x.fails(&PrefixCreateRequest{Prefix: Prefix{ID: "n", Prefix: "10.1.2.0/25"}}, ErrConflict, "prefix", "lies inside active prefix 10.1.2.0/24")
	x.fails(&PrefixCreateRequest{Prefix: Prefix{ID: "n", Prefix: "10.1.2.0/24", Status: PrefixContainer}}, ErrConflict, "prefix", "already exists")
	x.fails(&PrefixCreateRequest{Prefix: Prefix{ID: "n", Prefix: "10.1.0.0/20"}}, ErrConflict, "prefix", "overlaps 10.1.2.0/24")
	// The same prefix in another VRF is fine.
	x.ok(&VRFCreateRequest{VRF: VRF{ID: "red"}})
	x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: "red-lan", Prefix: "10.1.2.0/24", VRF: "red"}})
	x.fails(&PrefixCreateRequest{Prefix: Prefix{ID: "n", Prefix: "10.1.2.0/24", VRF: "blue"}}, ErrInvalid, "vrf", "does not exist")

	// A container created between existing levels adopts the prefixes in it.
	mid := x.prefix("10.1.0.0/20", PrefixContainer)
	if got := x.getPrefix(lan.ID).ParentID; got != mid.ID {
		t.Fatalf("lan parent %q after adoption, want %q", got, mid.ID)
	}
	if got := x.getPrefix(mid.ID).ParentID; got != site.ID {
		t.Fatalf("mid parent %q, want %q", got, site.ID)
	}
	if u := x.getPrefix(site.ID).Utilization; u.Used != "4096" {
		t.Fatalf("site utilization %+v, want the /20's 4096 addresses", u)
	}
	if u := x.getPrefix(mid.ID).Utilization; u.Used != "256" {
		t.Fatalf("mid utilization %+v, want the /24's 256 addresses", u)
	}

	// Containers hold no addresses; children come only from containers.
	x.fails(&AddressAllocateRequest{PrefixID: site.ID, IDs: []string{"a"}}, ErrConflict, "prefix_id", "is a container")
	x.fails(&PrefixAllocateRequest{ParentID: lan.ID, Bits: 26, Child: Prefix{ID: "c"}}, ErrConflict, "prefix_id", "child prefixes come from containers")

	// Next free child prefixes skip what is taken.
	kid := x.ok(&PrefixAllocateRequest{ParentID: mid.ID, Bits: 24, Child: Prefix{ID: "k1"}}).(*PrefixView)
	if kid.Prefix.Prefix != "10.1.0.0/24" || kid.ParentID != mid.ID {
		t.Fatalf("first free /24: %+v", kid.Prefix)
	}
	x.ok(&PrefixAllocateRequest{ParentID: mid.ID, Bits: 24, Child: Prefix{ID: "k2"}})
	kid3 := x.ok(&PrefixAllocateRequest{ParentID: mid.ID, Bits: 24, Child: Prefix{ID: "k3"}}).(*PrefixView)
	if kid3.Prefix.Prefix != "10.1.3.0/24" {
		t.Fatalf("third free /24 %s, want 10.1.3.0/24 (10.1.2.0/24 is taken)", kid3.Prefix.Prefix)
	}
	x.fails(&PrefixAllocateRequest{ParentID: mid.ID, Bits: 20, Child: Prefix{ID: "k4"}}, ipam.ErrInvalidLength, "prefix_length", "")
	if half := x.ok(&PrefixAllocateRequest{ParentID: site.ID, Bits: 17, Child: Prefix{ID: "k4"}}).(*PrefixView); half.Prefix.Prefix != "10.1.128.0/17" {
		t.Fatalf("free /17 %s, want 10.1.128.0/17", half.Prefix.Prefix)
	}
	x.fails(&PrefixAllocateRequest{ParentID: site.ID, Bits: 17, Child: Prefix{ID: "k6"}}, ipam.ErrExhausted, "prefix_length", "no free /17")

	// Deleting: not while children or addresses remain.
	x.fails(&PrefixDeleteRequest{ID: mid.ID}, ErrConflict, "id", "still holds 4 child prefixes")
	held := x.ok(&AddressAllocateRequest{PrefixID: lan.ID, Count: 3, IDs: []string{"la", "lb", "lc"}}).(*AddressList).Addresses
	x.fails(&PrefixDeleteRequest{ID: lan.ID}, ErrConflict, "id", "still holds 3 addresses, such as "+held[0].Address)
	// Addresses are named before a quarantine, which force would lift.
	x.ok(&AddressReleaseRequest{ID: "lb"})
	x.ok(&AddressReleaseRequest{ID: "lc"})
	x.fails(&PrefixDeleteRequest{ID: lan.ID, KeepQuarantine: true}, ErrConflict, "id", "still holds address "+held[0].Address+"; release it first")
	x.ok(&AddressReleaseRequest{ID: "la", Force: true})
	x.ok(&PrefixDeleteRequest{ID: "k1"})
	again := x.ok(&PrefixAllocateRequest{ParentID: mid.ID, Bits: 24, Child: Prefix{ID: "k5"}}).(*PrefixView)
	if again.Prefix.Prefix != "10.1.0.0/24" {
		t.Fatalf("deleted child's block not reused: got %s", again.Prefix.Prefix)
	}
	x.fails(&PrefixDeleteRequest{ID: "nope"}, ErrNotFound, "", `prefix "nope" not found`)

	// With Reparent a container goes and its children move up a level:
	// mid's four /24s become site's, the lan keeps its address.
	x.ok(&PrefixDeleteRequest{ID: mid.ID, Reparent: true})
	for _, id := range []string{lan.ID, "k2", "k3", "k5"} {
		if got := x.getPrefix(id).ParentID; got != site.ID {
			t.Fatalf("%s parent %q after its container went, want %q", id, got, site.ID)
		}
	}
	if u := x.getPrefix(site.ID).Utilization; u.Used != "33792" { // 4 /24s and the /17
		t.Fatalf("site utilization %+v, want 4 x 256 + 32768", u)
	}
	// Their blocks are site's now: taken, and given back when deleted.
	x.fails(&PrefixCreateRequest{Prefix: Prefix{ID: "n", Prefix: "10.1.3.0/24"}}, ErrConflict, "prefix", "already exists")
	x.ok(&PrefixDeleteRequest{ID: "k3"})
	if u := x.getPrefix(site.ID).Utilization; u.Used != "33536" {
		t.Fatalf("site utilization after deleting a moved child %+v", u)
	}
	// At the top level the children of a top-level container go to the VRF.
	x.ok(&PrefixDeleteRequest{ID: agg.ID, Reparent: true})
	if got := x.getPrefix(site.ID).ParentID; got != "" {
		t.Fatalf("site parent %q, want none", got)
	}
	x.fails(&PrefixCreateRequest{Prefix: Prefix{ID: "n", Prefix: "10.0.0.0/8"}}, ErrConflict, "prefix", "overlaps 10.1.0.0/16")
	requireSameDump(t, x.f, testSnapshotRestore(t, x.f))
}

// TestIPAM_DeleteFullWholeContainer: a ::/0 container whose children fill
// it counts 2^128 used blocks, which wraps to zero; the deletion must still
// find its children, refuse without reparent and move them with it. A
// command without the mark (an earlier version's) keeps the old outcome.
func TestIPAM_DeleteFullWholeContainer(t *testing.T) {
	x := newIPAM(t)
	all := x.prefix("::/0", PrefixContainer)
	x.ok(&PrefixAllocateRequest{ParentID: all.ID, Bits: 1, Child: Prefix{ID: "low", Status: PrefixContainer}})
	x.ok(&PrefixAllocateRequest{ParentID: all.ID, Bits: 1, Child: Prefix{ID: "high", Status: PrefixContainer}})
	if u := x.getPrefix(all.ID).Utilization; u.Percent != 100 {
		t.Fatalf("::/0 utilization %+v, want full", u)
	}
	x.fails(&PrefixDeleteRequest{ID: all.ID, WholeRule: true}, ErrConflict, "id", "container ::/0 still holds 2 child prefixes, such as ::/1")
	x.fails(&PrefixDeleteRequest{ID: all.ID, KeepQuarantine: true, WholeRule: true}, ErrConflict, "id", "still holds 2 child prefixes")
	x.ok(&PrefixDeleteRequest{ID: all.ID, Reparent: true, WholeRule: true})
	for _, id := range []string{"low", "high"} {
		if got := x.getPrefix(id).ParentID; got != "" {
			t.Fatalf("%s parent %q after its container went, want none", id, got)
		}
	}
	x.fails(&PrefixCreateRequest{Prefix: Prefix{ID: "n", Prefix: "::/1"}}, ErrConflict, "prefix", "already exists")
	x.ok(&PrefixDeleteRequest{ID: "low", WholeRule: true})
	requireSameDump(t, x.f, testSnapshotRestore(t, x.f))

	// An earlier version's command: the full container was taken for empty.
	y := newIPAM(t)
	all = y.prefix("::/0", PrefixContainer)
	y.ok(&PrefixAllocateRequest{ParentID: all.ID, Bits: 1, Child: Prefix{ID: "low", Status: PrefixContainer}})
	y.ok(&PrefixAllocateRequest{ParentID: all.ID, Bits: 1, Child: Prefix{ID: "high", Status: PrefixContainer}})
	y.ok(&PrefixDeleteRequest{ID: all.ID})
}

// TestIPAM_AllocatePrefixOutsideMapped: an active child prefix never holds
// the IPv4-mapped addresses, which addresses are not allocated from; a
// container child may hold them but not lie inside them. Without the marks
// (earlier versions' commands) the lowest free block is taken, as before.
func TestIPAM_AllocatePrefixOutsideMapped(t *testing.T) {
	x := newIPAM(t)
	all := x.prefix("::/0", PrefixContainer)
	lan := x.ok(&PrefixAllocateRequest{ParentID: all.ID, Bits: 64, Child: Prefix{ID: "lan", Status: PrefixActive}, MappedRule: true}).(*PrefixView)
	if lan.Prefix.Prefix != "0:0:0:1::/64" {
		t.Fatalf("first active /64 of ::/0: %s, want 0:0:0:1::/64 (::/64 holds ::ffff:0:0/96)", lan.Prefix.Prefix)
	}
	agg := x.ok(&PrefixAllocateRequest{ParentID: all.ID, Bits: 64, Child: Prefix{ID: "agg", Status: PrefixContainer}, MappedRule: true}).(*PrefixView)
	if agg.Prefix.Prefix != "::/64" {
		t.Fatalf("first container /64 of ::/0: %s, want ::/64", agg.Prefix.Prefix)
	}
	low := x.ok(&PrefixAllocateRequest{ParentID: agg.ID, Bits: 96, Child: Prefix{ID: "low", Status: PrefixActive}, MappedRule: true}).(*PrefixView)
	if low.Prefix.Prefix != "::/96" {
		t.Fatalf("first active /96 of ::/64: %s", low.Prefix.Prefix)
	}
	// Only the mapped block is left of ::fffe:0:0/95.
	half := x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: "half", Prefix: "::fffe:0:0/95", Status: PrefixContainer}}).(*PrefixView)
	x.ok(&PrefixAllocateRequest{ParentID: half.ID, Bits: 96, Child: Prefix{ID: "fffe", Status: PrefixActive}, MappedRule: true})
	x.fails(&PrefixAllocateRequest{ParentID: half.ID, Bits: 96, Child: Prefix{ID: "ffff", Status: PrefixActive}, MappedRule: true}, ipam.ErrExhausted, "prefix_length",
		"1 requested, 0 available: no free /96 in ::fffe:0:0/95 outside ::ffff:0.0.0.0/96")
	x.fails(&PrefixAllocateRequest{ParentID: half.ID, Bits: 120, Child: Prefix{ID: "ffff", Status: PrefixActive}, MappedRule: true}, ipam.ErrExhausted, "prefix_length", "")
	// A container child inside the block (a /96 or longer) is kept out
	// of it too: the API refuses such a prefix everywhere else.
	for _, bits := range []int{96, 97, 120} {
		x.fails(&PrefixAllocateRequest{ParentID: half.ID, Bits: bits, Child: Prefix{ID: "in", Status: PrefixContainer}, MappedRule: true, MappedContainerRule: true},
			ipam.ErrExhausted, "prefix_length", "outside ::ffff:0.0.0.0/96")
	}
	// One that holds it is a container's to take.
	x.ok(&VRFCreateRequest{VRF: VRF{ID: "red"}})
	wide := x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: "wide", Prefix: "::fffc:0:0/94", VRF: "red", Status: PrefixContainer}}).(*PrefixView)
	x.ok(&PrefixAllocateRequest{ParentID: wide.ID, Bits: 95, Child: Prefix{ID: "below", Status: PrefixContainer}, MappedRule: true, MappedContainerRule: true})
	holds := x.ok(&PrefixAllocateRequest{ParentID: wide.ID, Bits: 95, Child: Prefix{ID: "holds", Status: PrefixContainer}, MappedRule: true, MappedContainerRule: true}).(*PrefixView)
	if holds.Prefix.Prefix != "::fffe:0:0/95" {
		t.Fatalf("second container /95 of ::fffc:0:0/94: %s, want ::fffe:0:0/95", holds.Prefix.Prefix)
	}
	// The earlier versions' commands.
	x.ok(&PrefixAllocateRequest{ParentID: half.ID, Bits: 97, Child: Prefix{ID: "in", Status: PrefixContainer}, MappedRule: true})
	x.ok(&PrefixAllocateRequest{ParentID: half.ID, Bits: 120, Child: Prefix{ID: "ffff", Status: PrefixActive}})
	requireSameDump(t, x.f, testSnapshotRestore(t, x.f))
}

// TestIPAM_PrefixBecomesPool: an active prefix becomes a pool, whose
// network and broadcast (IPv6: the subnet-router anycast address) are
// usable, and stops being one only while those are free, whatever holds
// them (an address, an IP range, a quarantine). A container is no pool.
func TestIPAM_PrefixBecomesPool(t *testing.T) {
	x := newIPAM(t)
	p := x.prefix("10.0.0.0/29", PrefixActive)
	if u := x.getPrefix(p.ID).Utilization; u.Size != "6" {
		t.Fatalf("size of a /29 that is not a pool: %s", u.Size)
	}
	x.fails(&AddressAllocateRequest{PrefixID: p.ID, Address: "10.0.0.0", IDs: []string{x.id()}}, ipam.ErrOutside, "address", "")
	pool := x.ok(&PrefixUpdateRequest{ID: p.ID, IsPool: new(true)}).(*PrefixView)
	if !pool.IsPool || pool.Utilization.Size != "8" {
		t.Fatalf("as a pool: %+v, %+v", pool.Prefix, pool.Utilization)
	}
	net0 := x.allocReq(&AddressAllocateRequest{PrefixID: p.ID, Address: "10.0.0.0"})
	x.fails(&PrefixUpdateRequest{ID: p.ID, IsPool: new(false)}, ErrConflict, "is_pool", "10.0.0.0 is taken")
	x.ok(&AddressReleaseRequest{ID: net0.ID})
	x.fails(&PrefixUpdateRequest{ID: p.ID, IsPool: new(false)}, ErrConflict, "is_pool", "10.0.0.0 is taken") // in quarantine
	x.now += int64(ipam.DefaultQuarantine)
	x.ok(&IPRangeCreateRequest{Range: IPRange{ID: "top", PrefixID: p.ID, Start: "10.0.0.6", End: "10.0.0.7"}, DrainRule: true})
	x.fails(&PrefixUpdateRequest{ID: p.ID, IsPool: new(false)}, ErrConflict, "is_pool", "10.0.0.7 is taken")
	x.ok(&IPRangeDeleteRequest{ID: "top"})
	back := x.ok(&PrefixUpdateRequest{ID: p.ID, IsPool: new(false)}).(*PrefixView)
	if back.IsPool || back.Utilization.Size != "6" || back.Utilization.Used != "0" {
		t.Fatalf("a pool no more: %+v, %+v", back.Prefix, back.Utilization)
	}
	six := x.prefix("2001:db8::/64", PrefixActive)
	x.ok(&PrefixUpdateRequest{ID: six.ID, IsPool: new(true)})
	anycast := x.allocReq(&AddressAllocateRequest{PrefixID: six.ID, Count: 1})
	if anycast.Address != "2001:db8::" {
		t.Fatalf("first address of a /64 pool: %s", anycast.Address)
	}
	x.fails(&PrefixUpdateRequest{ID: six.ID, IsPool: new(false)}, ErrConflict, "is_pool", "2001:db8:: is taken")
	c := x.prefix("10.1.0.0/16", PrefixContainer)
	x.fails(&PrefixUpdateRequest{ID: c.ID, IsPool: new(true)}, ErrConflict, "is_pool", "container")
	requireSameDump(t, x.f, testSnapshotRestore(t, x.f))
}

// TestIPAM_RangeAfterQuarantine: an IP range over an address whose
// quarantine has run out is taken at once, as an allocation of it would
// be; one over an address still in quarantine is refused.
func TestIPAM_RangeAfterQuarantine(t *testing.T) {
	x := newIPAM(t)
	p := x.prefix("10.65.0.0/24", PrefixActive)
	q := x.allocReq(&AddressAllocateRequest{PrefixID: p.ID, Count: 1})
	x.ok(&AddressReleaseRequest{ID: q.ID})
	r := func(id string) *IPRangeCreateRequest {
		return &IPRangeCreateRequest{Range: IPRange{ID: id, PrefixID: p.ID, Start: q.Address, End: q.Address}, DrainRule: true}
	}
	x.fails(r("r1"), ipam.ErrInUse, "start_address", "in quarantine until 2026-11-25T12:10:00Z")
	x.now += int64(ipam.DefaultQuarantine)
	// An earlier version's command waited for the next allocation.
	old := r("r1")
	old.DrainRule = false
	x.fails(old, ipam.ErrInUse, "start_address", "in quarantine until 2026-11-25T12:10:00Z")
	x.ok(r("r1"))
	if got := x.getPrefix(p.ID).Utilization.Used; got != "1" {
		t.Fatalf("used %s after the range took the released address, want 1", got)
	}
	requireSameDump(t, x.f, testSnapshotRestore(t, x.f))
}

func TestIPAM_GatewayAndRanges(t *testing.T) {
	x := newIPAM(t)
	p := x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "192.168.10.0/24", Gateway: "192.168.10.1"}, GatewayID: "gw"}).(*PrefixView)
	if p.Utilization.Used != "1" {
		t.Fatalf("utilization after gateway %+v", p.Utilization)
	}
	x.ok(&IPRangeCreateRequest{Range: IPRange{ID: "dhcp", PrefixID: "p", Start: "192.168.10.2", End: "192.168.10.99"}})
	if got := x.alloc("p", 1); got[0] != "192.168.10.100" {
		t.Fatalf("first allocation %v, want .100 after the gateway and the DHCP range", got)
	}
	// A clash says what holds the address: a range, an address, a quarantine.
	x.fails(&IPRangeCreateRequest{Range: IPRange{ID: "r2", PrefixID: "p", Start: "192.168.10.90", End: "192.168.10.110"}}, ipam.ErrInUse, "start_address", "in IP range dhcp (192.168.10.2-192.168.10.99)")
	x.fails(&IPRangeCreateRequest{Range: IPRange{ID: "r2", PrefixID: "p", Start: "192.168.10.100", End: "192.168.10.110"}}, ipam.ErrInUse, "start_address", "allocated as address id-")
	x.fails(&IPRangeCreateRequest{Range: IPRange{ID: "r2", PrefixID: "p", Start: "192.168.10.1", End: "192.168.10.1"}}, ipam.ErrInUse, "start_address", "allocated as address gw")
	q := x.allocReq(&AddressAllocateRequest{PrefixID: "p", Count: 1})
	x.ok(&AddressReleaseRequest{ID: q.ID})
	x.fails(&IPRangeCreateRequest{Range: IPRange{ID: "r2", PrefixID: "p", Start: q.Address, End: q.Address}}, ipam.ErrInUse, "start_address", "in quarantine until 2026-11-25T12:10:00Z")
	x.fails(&AddressAllocateRequest{Address: "192.168.10.50", IDs: []string{"z"}}, ipam.ErrInUse, "address", "192.168.10.50 is in IP range dhcp (192.168.10.2-192.168.10.99), which is kept out of allocation")
	x.fails(&AddressAllocateRequest{Address: "192.168.10.50", Force: true, IDs: []string{"z"}}, ipam.ErrInUse, "address", "in IP range dhcp")
	x.fails(&IPRangeCreateRequest{Range: IPRange{ID: "r2", PrefixID: "p", Start: "192.168.10.200", End: "192.168.11.5"}}, ipam.ErrOutside, "end_address", "")
	x.fails(&IPRangeCreateRequest{Range: IPRange{ID: "r2", PrefixID: "p", Start: "192.168.10.20", End: "192.168.10.10"}}, ipam.ErrInvalidRange, "end_address", "")
	x.fails(&PrefixCreateRequest{Prefix: Prefix{ID: "q", Prefix: "192.168.20.0/24", Gateway: "192.168.20.0"}, GatewayID: "g2"}, ipam.ErrOutside, "gateway", "")
	x.ok(&IPRangeDeleteRequest{ID: "dhcp"})
	if got := x.alloc("p", 1); got[0] != "192.168.10.2" {
		t.Fatalf("after deleting the range got %v, want .2", got)
	}
	// The gateway goes with its prefix; other addresses block deletion.
	_, addrs, _ := x.f.State().Addresses(nil, AddressFilter{PrefixID: "p"})
	for _, a := range addrs {
		if a.ID != "gw" {
			x.ok(&AddressReleaseRequest{ID: a.ID, Force: true})
		}
	}
	x.ok(&PrefixDeleteRequest{ID: "p"})
	if _, a, _ := x.f.State().Address(nil, "gw"); a != nil {
		t.Fatalf("gateway address survived its prefix")
	}
}

func TestIPAM_ExhaustionSaysWhereTheRestIs(t *testing.T) {
	x := newIPAM(t)
	x.prefix("10.0.0.0/28", PrefixActive) // id-1: .1 to .14
	ids := make([]string, 15)
	for i := range ids {
		ids[i] = fmt.Sprint("n", i)
	}
	x.fails(&AddressAllocateRequest{PrefixID: "id-1", Count: 15, IDs: ids}, ipam.ErrExhausted, "count",
		"15 requested, 14 available in 10.0.0.0/28")
	x.ok(&IPRangeCreateRequest{Range: IPRange{ID: "dhcp", PrefixID: "id-1", Start: "10.0.0.1", End: "10.0.0.10"}})
	x.alloc("id-1", 4)
	x.fails(&AddressAllocateRequest{PrefixID: "id-1", IDs: []string{"z"}}, ipam.ErrExhausted, "count",
		"1 requested, 0 available in 10.0.0.0/28; IP ranges keep 10 out of allocation")

	// Two releases a minute apart: quarantined until 12:10 and 12:11.
	_, list, _ := x.f.State().Addresses(nil, AddressFilter{PrefixID: "id-1"})
	for _, a := range list[:2] {
		x.ok(&AddressReleaseRequest{ID: a.ID})
		x.now += int64(time.Minute)
	}
	x.fails(&AddressAllocateRequest{PrefixID: "id-1", Count: 3, IDs: []string{"a", "b", "c"}}, ipam.ErrExhausted, "count",
		"3 requested, 0 available in 10.0.0.0/28; IP ranges keep 10 out of allocation; 2 released addresses are in quarantine, the first until 2026-11-25T12:10:00Z")
	x.fails(&AddressAllocateRequest{Address: list[0].Address, Fallback: true, IDs: []string{"z"}}, ipam.ErrExhausted, "address",
		"1 requested, 0 available in 10.0.0.0/28; IP ranges keep 10 out of allocation; 2 released addresses are in quarantine")

	x.now += int64(8*time.Minute + 30*time.Second) // 12:10:30: the first is free again
	x.alloc("id-1", 1)
	x.fails(&AddressAllocateRequest{PrefixID: "id-1", IDs: []string{"z"}}, ipam.ErrExhausted, "count",
		"; 1 released address is in quarantine until 2026-11-25T12:11:00Z")
}

func TestIPAM_RequestedAddress(t *testing.T) {
	x := newIPAM(t)
	x.prefix("10.0.0.0/24", PrefixActive)
	a := x.allocReq(&AddressAllocateRequest{Address: "10.0.0.50", DNSName: "Web.Moxxie.Test.", Owner: "vm:101/net0"})
	if a.PrefixID != "id-1" || a.DNSName != "web.moxxie.test" || a.VRF != DefaultVRF {
		t.Fatalf("requested address %+v", a)
	}
	x.fails(&AddressAllocateRequest{Address: "10.0.0.50", IDs: []string{"z"}}, ipam.ErrInUse, "address", "already allocated")
	b := x.allocReq(&AddressAllocateRequest{Address: "10.0.0.50", Fallback: true})
	if b.Address != "10.0.0.1" {
		t.Fatalf("fallback gave %s, want 10.0.0.1", b.Address)
	}
	x.fails(&AddressAllocateRequest{Address: "10.9.0.1", IDs: []string{"z"}}, ErrInvalid, "address", "in no prefix")
	x.fails(&AddressAllocateRequest{Address: "10.0.0.0", IDs: []string{"z"}}, ipam.ErrOutside, "address", "")
	x.fails(&AddressAllocateRequest{PrefixID: "id-1", Address: "10.0.1.5", IDs: []string{"z"}}, ipam.ErrOutside, "address", "")
	x.fails(&AddressAllocateRequest{Address: "10.0.0.9", DNSName: "bad_name!", IDs: []string{"z"}}, ipam.ErrInvalidHostname, "dns_name", "")
	x.fails(&AddressAllocateRequest{Address: "10.0.0.9", Owner: "vm", IDs: []string{"z"}}, ipam.ErrInvalidOwner, "owner", "")
	x.fails(&AddressAllocateRequest{Address: "10.0.0.9", Status: "gone", IDs: []string{"z"}}, ErrInvalid, "status", "")
	x.fails(&AddressAllocateRequest{PrefixID: "id-1", Count: MaxAllocateCount + 1}, ipam.ErrInvalidCount, "count", "")
	x.fails(&AddressReleaseRequest{ID: "nope"}, ErrNotFound, "", `address "nope" not found`)

	// Updates change only what they name.
	up := x.ok(&AddressUpdateRequest{ID: a.ID, Status: str(AddressDeprecated)}).(*Address)
	if up.Status != AddressDeprecated || up.DNSName != "web.moxxie.test" || up.Owner != "vm:101/net0" {
		t.Fatalf("update %+v", up)
	}
	x.fails(&AddressUpdateRequest{ID: a.ID, DNSName: str("-x")}, ipam.ErrInvalidHostname, "dns_name", "")
	_, byName, _ := x.f.State().Addresses(nil, AddressFilter{DNSName: "WEB.moxxie.test."})
	if len(byName) != 1 || byName[0].ID != a.ID {
		t.Fatalf("lookup by dns_name: %+v", byName)
	}
	_, byOwner, _ := x.f.State().Addresses(nil, AddressFilter{Owner: "vm:101/net0"})
	if len(byOwner) != 1 {
		t.Fatalf("lookup by owner: %+v", byOwner)
	}
}

func TestIPAM_Quarantine(t *testing.T) {
	x := newIPAM(t)
	x.prefix("10.0.0.0/29", PrefixActive)
	got := x.alloc("id-1", 2) // .1 .2
	_, list, _ := x.f.State().Addresses(nil, AddressFilter{})
	rel := x.ok(&AddressReleaseRequest{ID: list[0].ID}).(*AddressReleased)
	if rel.QuarantinedUntil == nil || int64(*rel.QuarantinedUntil) != x.now+int64(ipam.DefaultQuarantine) {
		t.Fatalf("release: %+v", rel)
	}
	// The released .1 is not handed out again while held.
	if next := x.alloc("id-1", 1); next[0] != "10.0.0.3" {
		t.Fatalf("after release got %v, want 10.0.0.3", next)
	}
	x.fails(&AddressAllocateRequest{Address: got[0], IDs: []string{"z"}}, ipam.ErrInUse, "address", "in quarantine until")
	if av, _ := x.f.State().Available("id-1", 10); strings.Join(av, ",") != "10.0.0.4,10.0.0.5,10.0.0.6" {
		t.Fatalf("available %v", av)
	}
	// A new leader whose clock lags does not shorten the quarantine.
	x.now += int64(9 * time.Minute)
	x.alloc("id-1", 1) // .4
	x.now -= int64(5 * time.Minute)
	x.now += int64(2 * time.Minute) // 6 minutes after release by this clock, 11 by the highest seen
	if next := x.alloc("id-1", 1); next[0] != "10.0.0.5" {
		t.Fatalf("got %v, want 10.0.0.5: quarantine ran backwards with the clock", next)
	}
	x.now += int64(5 * time.Minute) // past the quarantine
	if next := x.alloc("id-1", 1); next[0] != got[0] {
		t.Fatalf("after the quarantine got %v, want %s", next, got[0])
	}
	// Forced release skips quarantine; force on allocation lifts it.
	_, list, _ = x.f.State().Addresses(nil, AddressFilter{Status: AddressActive})
	x.ok(&AddressReleaseRequest{ID: list[0].ID, Force: true})
	if next := x.allocReq(&AddressAllocateRequest{Address: list[0].Address}); next.Address != list[0].Address {
		t.Fatalf("forced release not reusable: %s", next.Address)
	}
	// A late second release of the old ID (a retry without its key) finds
	// nothing: it cannot free the address handed out again under a new ID.
	x.fails(&AddressReleaseRequest{ID: list[0].ID, Force: true}, ErrNotFound, "", "not found")
	x.ok(&AddressReleaseRequest{ID: list[1].ID})
	next := x.allocReq(&AddressAllocateRequest{Address: list[1].Address, Force: true})
	if next.Address != list[1].Address {
		t.Fatalf("force did not lift the quarantine: %s", next.Address)
	}
	// The ipam.quarantine setting changes the duration; 0 turns it off.
	x.ok(&SettingUpsertRequest{Key: quarantineSetKey, Value: "0s"})
	x.ok(&AddressReleaseRequest{ID: next.ID})
	if next := x.allocReq(&AddressAllocateRequest{Address: list[1].Address}); next.Address != list[1].Address {
		t.Fatalf("quarantine 0s still held %s", list[1].Address)
	}
}

func TestIPAM_PrefixDeleteKeepsQuarantine(t *testing.T) {
	x := newIPAM(t)
	p := x.prefix("10.0.0.0/29", PrefixActive)
	x.alloc(p.ID, 3)
	_, list, _ := x.f.State().Addresses(nil, AddressFilter{})
	x.ok(&AddressReleaseRequest{ID: list[0].ID})
	x.ok(&AddressReleaseRequest{ID: list[1].ID})
	x.ok(&AddressReleaseRequest{ID: list[2].ID, Force: true})
	until := time.Unix(0, x.now+int64(ipam.DefaultQuarantine)).UTC().Format(time.RFC3339)
	x.fails(&PrefixDeleteRequest{ID: p.ID, KeepQuarantine: true}, ErrConflict, "id",
		"2 released addresses of 10.0.0.0/29 are in quarantine until "+until+"; deleting the prefix would drop the quarantine")
	// Once the quarantine has run out, the deletion goes through.
	x.now += int64(ipam.DefaultQuarantine)
	x.ok(&PrefixDeleteRequest{ID: p.ID, KeepQuarantine: true})

	// Without the mark (forced, or from an earlier version) the quarantine
	// goes with the prefix, as before.
	q := x.prefix("10.0.1.0/29", PrefixActive)
	x.alloc(q.ID, 1)
	_, list, _ = x.f.State().Addresses(nil, AddressFilter{})
	x.ok(&AddressReleaseRequest{ID: list[0].ID})
	x.ok(&PrefixDeleteRequest{ID: q.ID})
	if _, again, _ := x.f.State().Prefix(nil, q.ID); again != nil {
		t.Fatal("forced delete left the prefix")
	}
}

func TestIPAM_WholeV6PoolToTheTop(t *testing.T) {
	x := newIPAM(t)
	x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "::/0", IsPool: true}})
	x.ok(&IPRangeCreateRequest{Range: IPRange{ID: "r", PrefixID: "p", Start: "::", End: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd"}})
	if got := x.alloc("p", 2); got[1] != "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" {
		t.Fatalf("got %v, want the last two addresses", got)
	}
	_, v, _ := x.f.State().Prefix(nil, "p")
	if u := v.Utilization; u.Percent != 100 || string(u.Used) != string(u.Size) {
		t.Fatalf("utilization of the full pool %+v", u)
	}
}

func TestIPAM_Pools(t *testing.T) {
	for _, kind := range []string{PoolVLAN, PoolVNI} {
		t.Run(kind, func(t *testing.T) {
			x := newIPAM(t)
			pv := x.ok(&PoolCreateRequest{Pool: Pool{ID: "g", Kind: kind, Name: "prod", Ranges: []ipam.IDRange{{First: 100, Last: 102}}}}).(*PoolView)
			if pv.Utilization.Size != "3" {
				t.Fatalf("pool %+v", pv.Utilization)
			}
			x.fails(&PoolCreateRequest{Pool: Pool{ID: "g2", Kind: kind, Name: "prod"}}, ErrConflict, "name", "")
			bad := map[string]error{PoolVLAN: ipam.ErrInvalidVLAN, PoolVNI: ipam.ErrInvalidVNI}[kind]
			// The error names the range, and its member, at fault.
			x.fails(&PoolCreateRequest{Pool: Pool{ID: "g2", Kind: kind, Name: "x", Ranges: []ipam.IDRange{{First: 0, Last: 5}}}}, bad, "ranges[0].first", "")
			x.fails(&PoolCreateRequest{Pool: Pool{ID: "g2", Kind: kind, Name: "x", Ranges: []ipam.IDRange{{First: 1, Last: 10}, {First: 20, Last: 16777216}}}}, bad, "ranges[1].last", "")
			x.fails(&PoolCreateRequest{Pool: Pool{ID: "g2", Kind: kind, Name: "x", Ranges: []ipam.IDRange{{First: 1, Last: 10}, {First: 30, Last: 20}}}}, ipam.ErrInvalidRange, "ranges[1]", "ends before it starts")
			x.fails(&PoolCreateRequest{Pool: Pool{ID: "g2", Kind: kind, Name: "x", Ranges: []ipam.IDRange{{First: 1, Last: 10}, {First: 5, Last: 20}}}}, ipam.ErrInvalidRange, "ranges[1]", "overlap")
			field := numberField(kind)
			a := x.ok(&IDAllocateRequest{Kind: kind, PoolID: "g", UniqueName: true, Allocation: IDAllocation{ID: "a1", Name: "web"}}).(*IDAllocation)
			if a.Number != 100 {
				t.Fatalf("first %d", a.Number)
			}
			// Names are unique within a pool (unnamed ones aside); a
			// command of an earlier version, without UniqueName, is not
			// held to it.
			x.fails(&IDAllocateRequest{Kind: kind, PoolID: "g", UniqueName: true, Allocation: IDAllocation{ID: "a2", Name: "web"}}, ErrConflict, "name", "100 of "+poolNoun(kind)+" prod is named web already (id a1)")
			x.ok(&IDReleaseRequest{Kind: kind, ID: x.ok(&IDAllocateRequest{Kind: kind, PoolID: "g", Allocation: IDAllocation{ID: "old", Name: "web"}}).(*IDAllocation).ID})
			x.fails(&IDAllocateRequest{Kind: kind, PoolID: "g", Number: 100, Allocation: IDAllocation{ID: "a2"}}, ipam.ErrInUse, field, itemNoun(kind)+" 100 of "+poolNoun(kind)+" prod is taken (id a1, name web)")
			b := x.ok(&IDAllocateRequest{Kind: kind, PoolID: "g", Number: 100, Fallback: true, Allocation: IDAllocation{ID: "a2"}}).(*IDAllocation)
			if b.Number != 101 {
				t.Fatalf("fallback %d", b.Number)
			}
			x.fails(&IDAllocateRequest{Kind: kind, PoolID: "g", Number: 200, Allocation: IDAllocation{ID: "a3"}}, ipam.ErrOutside, field, "")
			x.ok(&IDAllocateRequest{Kind: kind, PoolID: "g", Allocation: IDAllocation{ID: "a3"}})
			x.fails(&IDAllocateRequest{Kind: kind, PoolID: "g", Allocation: IDAllocation{ID: "a4"}}, ipam.ErrExhausted, field, "1 requested, 0 available in "+poolNoun(kind)+" prod")
			x.fails(&PoolDeleteRequest{Kind: kind, ID: "g"}, ErrConflict, "id", "still has allocations")
			other := PoolVNI
			if kind == PoolVNI {
				other = PoolVLAN
			}
			x.fails(&IDReleaseRequest{Kind: other, ID: "a1"}, ErrNotFound, "", "")
			for _, id := range []string{"a1", "a2", "a3"} {
				x.ok(&IDReleaseRequest{Kind: kind, ID: id})
			}
			x.ok(&PoolDeleteRequest{Kind: kind, ID: "g"})
			if _, n, _ := x.f.State().Pools(nil, kind); len(n) != 0 {
				t.Fatalf("pools left: %v", n)
			}
		})
	}
	x := newIPAM(t)
	x.fails(&IDAllocateRequest{Kind: PoolVLAN, PoolID: "g", Number: 4095, Allocation: IDAllocation{ID: "a"}}, ipam.ErrInvalidVLAN, "vid", "")
	x.fails(&IDAllocateRequest{Kind: PoolVNI, PoolID: "g", Number: 1 << 24, Allocation: IDAllocation{ID: "a"}}, ipam.ErrInvalidVNI, "vni", "")
}

// TestIPAM_PoolUpdate changes a pool's ranges, name and description: new
// ranges must keep every ID handed out, and VNI pools stay apart.
func TestIPAM_PoolUpdate(t *testing.T) {
	rs := func(pairs ...int) *[]ipam.IDRange {
		out := []ipam.IDRange{}
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, ipam.IDRange{First: pairs[i], Last: pairs[i+1]})
		}
		return &out
	}
	for _, kind := range []string{PoolVLAN, PoolVNI} {
		t.Run(kind, func(t *testing.T) {
			x := newIPAM(t)
			x.ok(&PoolCreateRequest{Pool: Pool{ID: "g", Kind: kind, Name: "prod", Ranges: []ipam.IDRange{{First: 100, Last: 109}}}})
			x.ok(&PoolCreateRequest{Pool: Pool{ID: "h", Kind: kind, Name: "lab", Ranges: []ipam.IDRange{{First: 300, Last: 309}}}})
			x.ok(&IDAllocateRequest{Kind: kind, PoolID: "g", Number: 105, Allocation: IDAllocation{ID: "a1"}})
			name := func(s string) *string { return &s }

			for _, c := range []struct {
				name   string
				req    PoolUpdateRequest
				err    error
				field  string
				msg    string
				ranges string
			}{
				{"grow", PoolUpdateRequest{Ranges: rs(100, 119)}, nil, "", "", "[{100 119}]"},
				{"split around the allocation", PoolUpdateRequest{Ranges: rs(104, 106, 110, 111)}, nil, "", "", "[{104 106} {110 111}]"},
				{"leaves out 105", PoolUpdateRequest{Ranges: rs(100, 104, 106, 109)}, ErrConflict, "ranges", itemNoun(kind) + " 105 (id a1) of " + poolNoun(kind) + " prod is outside the new ranges", ""},
				{"empty", PoolUpdateRequest{Ranges: rs()}, ErrInvalid, "ranges", "holds no IDs", ""},
				{"out of bounds", PoolUpdateRequest{Ranges: rs(1, 10, 0, 200)}, map[string]error{PoolVLAN: ipam.ErrInvalidVLAN, PoolVNI: ipam.ErrInvalidVNI}[kind], "ranges[1].first", "", ""},
				{"taken name", PoolUpdateRequest{Name: name("lab")}, ErrConflict, "name", poolNoun(kind) + " lab already exists (id h)", ""},
				{"bad name", PoolUpdateRequest{Name: name("Prod")}, ErrInvalid, "name", "", ""},
				{"rename", PoolUpdateRequest{Name: name("prod-1"), Description: name("the prod VLANs")}, nil, "", "", "[{104 106} {110 111}]"},
			} {
				c.req.Kind, c.req.ID = kind, "g"
				if c.err != nil {
					x.fails(&c.req, c.err, c.field, c.msg)
					continue
				}
				pv := x.ok(&c.req).(*PoolView)
				if fmt.Sprint(pv.Ranges) != c.ranges || pv.ModifyIndex != x.index {
					t.Fatalf("%s: %+v", c.name, pv.Pool)
				}
			}
			pv := x.ok(&PoolUpdateRequest{Kind: kind, ID: "g"}).(*PoolView)
			if pv.Name != "prod-1" || pv.Description != "the prod VLANs" || pv.Utilization.Size != "5" || pv.Utilization.Used != "1" {
				t.Fatalf("after the updates: %+v %+v", pv.Pool, pv.Utilization)
			}
			// The new ranges decide what is handed out.
			if a := x.ok(&IDAllocateRequest{Kind: kind, PoolID: "g", Allocation: IDAllocation{ID: "a2"}}).(*IDAllocation); a.Number != 104 {
				t.Fatalf("allocated %d, want 104", a.Number)
			}
			x.fails(&IDAllocateRequest{Kind: kind, PoolID: "g", Number: 100, Allocation: IDAllocation{ID: "a3"}}, ipam.ErrOutside, numberField(kind), "")
			// VNI pools may not come to share numbers; VLAN groups may.
			over := &PoolUpdateRequest{Kind: kind, ID: "h", Ranges: rs(300, 309, 110, 110)}
			if kind == PoolVNI {
				x.fails(over, ErrConflict, "ranges", "VNIs 110-110 overlap VNI pool prod-1 (110-111)")
			} else {
				x.ok(over)
			}
			x.fails(&PoolUpdateRequest{Kind: kind, ID: "nope", Ranges: rs(1, 2)}, ErrNotFound, "", "")
			// Given to a tenant, whose confined allocations it then takes;
			// what it handed out keeps its tenant.
			x.fails(&IDAllocateRequest{Kind: kind, PoolID: "g", Allocation: IDAllocation{ID: "t1", Tenant: "acme"}, Confine: "acme"}, ErrNotFound, "", "")
			x.fails(&PoolUpdateRequest{Kind: kind, ID: "g", Tenant: name("Acme Corp")}, ErrInvalid, "tenant", "")
			if pv := x.ok(&PoolUpdateRequest{Kind: kind, ID: "g", Tenant: name("acme")}).(*PoolView); pv.Tenant != "acme" {
				t.Fatalf("given to acme: %+v", pv.Pool)
			}
			x.ok(&IDAllocateRequest{Kind: kind, PoolID: "g", Allocation: IDAllocation{ID: "t1", Tenant: "acme"}, Confine: "acme"})
			if _, a, _ := x.f.State().IDAllocation(nil, kind, "a1"); a == nil || a.Tenant != "" {
				t.Fatalf("an ID handed out before: %+v", a)
			}
			if pv := x.ok(&PoolUpdateRequest{Kind: kind, ID: "g", Tenant: name("")}).(*PoolView); pv.Tenant != "" {
				t.Fatalf("given to none: %+v", pv.Pool)
			}
			requireSameDump(t, x.f, testSnapshotRestore(t, x.f))
		})
	}
}

// TestIPAM_IDUpdate: a VLAN's or VNI's name, tenant, project, owner and
// description change; names stay unique within the pool, a tenant move
// moves the quota charge (and is refused by the new tenant's quota), and
// nothing else changes.
func TestIPAM_IDUpdate(t *testing.T) {
	for _, kind := range []string{PoolVLAN, PoolVNI} {
		t.Run(kind, func(t *testing.T) {
			x := newIPAM(t)
			res := quota.VLANs
			if kind == PoolVNI {
				res = quota.VNIs
			}
			x.ok(&TenantCreateRequest{Tenant: Tenant{ID: "t1"}})
			x.ok(&TenantCreateRequest{Tenant: Tenant{ID: "t2", Quota: quota.Limits{res: 1}}})
			x.ok(&ProjectCreateRequest{Project: Project{ID: "t1/web", Tenant: "t1", Name: "web"}})
			x.ok(&PoolCreateRequest{Pool: Pool{ID: "g", Kind: kind, Name: "prod", Ranges: []ipam.IDRange{{First: 100, Last: 109}}}})
			x.ok(&IDAllocateRequest{Kind: kind, PoolID: "g", Number: 100, Allocation: IDAllocation{ID: "a1", Name: "web", Tenant: "t1", Project: "web"}})
			x.ok(&IDAllocateRequest{Kind: kind, PoolID: "g", Number: 101, Allocation: IDAllocation{ID: "a2", Name: "db", Tenant: "t2"}})
			noun := itemNoun(kind)

			for _, c := range []struct {
				name  string
				req   IDUpdateRequest
				err   error
				field string
				msg   string
				want  string // name tenant project owner description, after
			}{
				{"rename", IDUpdateRequest{Name: str("web-1"), Description: str("front")}, nil, "", "", "web-1 t1 web  front"},
				{"owner", IDUpdateRequest{Owner: str("vm:101/net0")}, nil, "", "", "web-1 t1 web vm:101/net0 front"},
				{"taken name", IDUpdateRequest{Name: str("db")}, ErrConflict, "name", noun + " 101 of " + poolNoun(kind) + " prod is named db already (id a2)", ""},
				{"bad name", IDUpdateRequest{Name: str("Web")}, ErrInvalid, "name", "", ""},
				{"bad owner", IDUpdateRequest{Owner: str("vm 1")}, ipam.ErrInvalidOwner, "owner", "", ""},
				{"move without the project", IDUpdateRequest{Tenant: str("t2")}, ErrInvalid, "project", noun + " 100 is in project web of tenant t1", ""},
				{"move over the quota", IDUpdateRequest{Tenant: str("t2"), Project: str("")}, quota.ErrExceeded, "quota", "", ""},
				{"project without tenant", IDUpdateRequest{Tenant: str(""), Project: str("web")}, ErrInvalid, "project", "a project needs its tenant", ""},
				{"clear the tenant", IDUpdateRequest{Tenant: str("")}, nil, "", "", "web-1   vm:101/net0 front"},
				{"unnamed", IDUpdateRequest{Name: str(""), Owner: str(""), Description: str("")}, nil, "", "", "    "},
				{"nothing", IDUpdateRequest{}, nil, "", "", "    "},
			} {
				c.req.Kind, c.req.ID = kind, "a1"
				if c.err != nil {
					x.fails(&c.req, c.err, c.field, c.msg)
					continue
				}
				a := x.ok(&c.req).(*IDAllocation)
				if got := strings.Join([]string{a.Name, a.Tenant, a.Project, a.Owner, a.Description}, " "); got != c.want || a.Number != 100 || a.ModifyIndex != x.index || a.UpdatedAt != Timestamp(x.now) || a.CreateIndex >= a.ModifyIndex {
					t.Fatalf("%s: %q %+v, want %q", c.name, got, a, c.want)
				}
			}
			// The charge moved: t1 holds none now, t2 its one.
			if n := usage(t, x.f, "t1").Amounts[res]; n != 0 {
				t.Fatalf("t1 holds %d", n)
			}
			x.ok(&IDUpdateRequest{Kind: kind, ID: "a2", Tenant: str("t1")})
			x.ok(&IDUpdateRequest{Kind: kind, ID: "a1", Tenant: str("t2")})
			if u1, u2 := usage(t, x.f, "t1").Amounts[res], usage(t, x.f, "t2").Amounts[res]; u1 != 1 || u2 != 1 {
				t.Fatalf("after the swap t1 holds %d, t2 %d", u1, u2)
			}
			// The name a1 gave up is free; the other kind's ID is not found.
			x.ok(&IDUpdateRequest{Kind: kind, ID: "a2", Name: str("web-1")})
			other := map[string]string{PoolVLAN: PoolVNI, PoolVNI: PoolVLAN}[kind]
			x.fails(&IDUpdateRequest{Kind: other, ID: "a1", Name: str("x")}, ErrNotFound, "", "")
			x.fails(&IDUpdateRequest{Kind: kind, ID: "nope", Name: str("x")}, ErrNotFound, "", "")
		})
	}
}

// TestIPAM_ProjectNeedsTenant: an update that gives a project to a prefix
// or address without a tenant is refused on project when the proposer asks
// for the rule, and the project dropped as before when it does not (a
// command of an earlier version).
func TestIPAM_ProjectNeedsTenant(t *testing.T) {
	x := newIPAM(t)
	p := x.prefix("10.0.0.0/24", "")
	a := x.allocReq(&AddressAllocateRequest{PrefixID: p.ID})
	x.fails(&PrefixUpdateRequest{ID: p.ID, Project: str("web"), ProjectRules: true}, ErrInvalid, "project", "a project needs its tenant, and prefix 10.0.0.0/24 has none")
	x.fails(&AddressUpdateRequest{ID: a.ID, Project: str("web"), NameRules: true, ProjectRules: true}, ErrInvalid, "project", "a project needs its tenant, and address 10.0.0.1 has none")
	x.ok(&PrefixUpdateRequest{ID: p.ID, Project: str(""), ProjectRules: true})
	if got := x.ok(&PrefixUpdateRequest{ID: p.ID, Project: str("web")}).(*PrefixView); got.Project != "" {
		t.Fatalf("an earlier version's update kept the project: %+v", got.Prefix)
	}
}

// TestIPAM_VNIPoolsApart: a VNI pool created with the mark may not share
// numbers with another VNI pool (a VNI names one overlay network in every
// zone), VLAN groups may (a VLAN ID is local to its group), and a command
// of an earlier version, without the mark, creates an overlapping pool as
// before.
func TestIPAM_VNIPoolsApart(t *testing.T) {
	x := newIPAM(t)
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "a", Kind: PoolVNI, Name: "a", Ranges: []ipam.IDRange{{First: 5000, Last: 5099}}}, Exclusive: true})
	x.fails(&PoolCreateRequest{Pool: Pool{ID: "b", Kind: PoolVNI, Name: "b", Ranges: []ipam.IDRange{{First: 6000, Last: 6009}, {First: 5099, Last: 5200}}}, Exclusive: true},
		ErrConflict, "ranges", "VNIs 5099-5200 overlap VNI pool a (5000-5099)")
	x.fails(&PoolCreateRequest{Pool: Pool{ID: "b", Kind: PoolVNI, Name: "b"}, Exclusive: true}, ErrConflict, "ranges", "VNIs 1-16777215 overlap VNI pool a")
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "b", Kind: PoolVNI, Name: "b", Ranges: []ipam.IDRange{{First: 5100, Last: 5200}}}, Exclusive: true})
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "g1", Kind: PoolVLAN, Name: "g1", Ranges: []ipam.IDRange{{First: 100, Last: 200}}}, Exclusive: true})
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "g2", Kind: PoolVLAN, Name: "g2", Ranges: []ipam.IDRange{{First: 100, Last: 200}}}, Exclusive: true})
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "old", Kind: PoolVNI, Name: "old", Ranges: []ipam.IDRange{{First: 5050, Last: 5060}}}})
}

func TestIPAM_VRFsAndZones(t *testing.T) {
	x := newIPAM(t)
	x.fails(&VRFCreateRequest{VRF: VRF{ID: DefaultVRF}}, ErrConflict, "id", "")
	x.fails(&VRFCreateRequest{VRF: VRF{ID: "Red"}}, ErrInvalid, "id", "")
	x.ok(&VRFCreateRequest{VRF: VRF{ID: "red"}})
	x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "10.0.0.0/24", VRF: "red"}})
	x.fails(&VRFDeleteRequest{ID: "red"}, ErrConflict, "id", "still holds prefixes")
	x.fails(&VRFDeleteRequest{ID: DefaultVRF}, ErrConflict, "id", "")
	x.ok(&PrefixDeleteRequest{ID: "p"})
	x.ok(&VRFDeleteRequest{ID: "red"})
	_, vrfs, _ := x.f.State().VRFs(nil)
	if len(vrfs) != 1 || vrfs[0].ID != DefaultVRF {
		t.Fatalf("vrfs %+v", vrfs)
	}

	z := x.ok(&ZoneCreateRequest{Zone: Zone{ID: "Moxxie.Test."}}).(*Zone)
	if z.ID != "moxxie.test" || z.TTL != DefaultZoneTTL {
		t.Fatalf("zone %+v", z)
	}
	x.fails(&ZoneCreateRequest{Zone: Zone{ID: "moxxie.test"}}, ErrConflict, "name", "")
	for _, name := range []string{"10.in-addr.arpa", "in-addr.arpa", "IP6.ARPA.", "arpa"} {
		x.fails(&ZoneCreateRequest{Zone: Zone{ID: name}}, ErrInvalid, "name", "reverse zones")
	}
	newIPAM(t).ok(&ZoneCreateRequest{Zone: Zone{ID: "home.arpa"}}) // RFC 8375: a forward zone
	x.fails(&ZoneCreateRequest{Zone: Zone{ID: "x.test", TTL: 1 << 20}}, ErrInvalid, "ttl", "")

	// DNS sees zones, active prefixes and named addresses, and its watch
	// fires on a change.
	x.prefix("10.0.0.0/16", PrefixContainer)
	x.prefix("10.0.1.0/24", PrefixActive)
	x.allocReq(&AddressAllocateRequest{Address: "10.0.1.5", DNSName: "db.moxxie.test"})
	x.alloc("id-2", 1) // no name
	ws := memdb.NewWatchSet()
	d, err := x.f.State().DNS(ws)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Zones) != 1 || len(d.Prefixes) != 1 || len(d.Addresses) != 1 || d.Addresses[0].DNSName != "db.moxxie.test" {
		t.Fatalf("dns data: %d zones, %d prefixes, %d addresses", len(d.Zones), len(d.Prefixes), len(d.Addresses))
	}
	x.allocReq(&AddressAllocateRequest{Address: "10.0.1.6", DNSName: "web.moxxie.test"})
	if !fired(ws) {
		t.Fatalf("DNS watch did not fire on a new named address")
	}
}

// TestIPAM_LinkLocalGateway: an IPv6 prefix takes a link-local gateway
// (fe80::/10), as routers announce themselves, without reserving it; the
// command carries a mark, since earlier versions refuse such a gateway.
func TestIPAM_LinkLocalGateway(t *testing.T) {
	x := newIPAM(t)
	create := &PrefixCreateRequest{Prefix: Prefix{ID: "p6", Prefix: "2001:db8:1::/64", Gateway: "FE80::1"}, GatewayID: "gw6"}
	if b := mustEncode(t, create); len(b) < 3 || b[1] != binaryMarker || b[2] != markedMsgpack {
		t.Fatalf("a link-local gateway is not marked: % x", b[:min(len(b), 3)])
	}
	p := x.ok(create).(*PrefixView)
	if p.Gateway != "fe80::1" || p.Utilization.Used != "0" {
		t.Fatalf("prefix %+v, utilization %+v", p.Prefix, p.Utilization)
	}
	if _, a, _ := x.f.State().Address(nil, "gw6"); a != nil {
		t.Fatalf("the link-local gateway was reserved: %+v", a)
	}
	if got := x.alloc("p6", 1); got[0] != "2001:db8:1::1" {
		t.Fatalf("first allocation %v", got)
	}
	// Inside a link-local prefix the gateway is one of its addresses.
	ll := &PrefixCreateRequest{Prefix: Prefix{ID: "ll", Prefix: "fe80::/64", Gateway: "fe80::1"}, GatewayID: "gwll"}
	if b := mustEncode(t, ll); b[1] == binaryMarker {
		t.Fatalf("a gateway inside its prefix is marked")
	}
	x.ok(ll)
	if _, a, _ := x.f.State().Address(nil, "gwll"); a == nil || a.Address != "fe80::1" {
		t.Fatalf("the gateway of fe80::/64 was not reserved: %+v", a)
	}
	x.fails(&PrefixCreateRequest{Prefix: Prefix{ID: "q", Prefix: "2001:db8:2::/64", Gateway: "2001:db8:3::1"}, GatewayID: "g"}, ipam.ErrOutside, "gateway", "")
	x.fails(&PrefixCreateRequest{Prefix: Prefix{ID: "q", Prefix: "2001:db8:2::/64", Gateway: "fe80::1%eth0"}, GatewayID: "g"}, ipam.ErrZone, "gateway", "")
	x.fails(&PrefixCreateRequest{Prefix: Prefix{ID: "q", Prefix: "10.0.0.0/24", Gateway: "fe80::1"}, GatewayID: "g"}, ipam.ErrFamily, "gateway", "")
	x.fails(&PrefixCreateRequest{Prefix: Prefix{ID: "q", Prefix: "2001:db8:2::/64", Gateway: "fec0::1"}, GatewayID: "g"}, ipam.ErrOutside, "gateway", "")
	// Only fe80::/64 (RFC 4291), not its subnet-router anycast, and not
	// for a prefix of fe80::/10 itself.
	for _, c := range []struct{ prefix, gateway string }{
		{"2001:db8:2::/64", "fe80::"},
		{"2001:db8:2::/64", "fe80:0:0:1::1"},
		{"2001:db8:2::/64", "febf::1"},
		{"fe80:0:0:5::/64", "fe80::1"},
	} {
		x.fails(&PrefixCreateRequest{Prefix: Prefix{ID: "q", Prefix: c.prefix, Gateway: c.gateway}, GatewayID: "g"}, ipam.ErrOutside, "gateway", "")
	}
	requireSameDump(t, x.f, testSnapshotRestore(t, x.f))
	_, addrs, _ := x.f.State().Addresses(nil, AddressFilter{PrefixID: "p6"})
	for _, a := range addrs {
		x.ok(&AddressReleaseRequest{ID: a.ID, Force: true})
	}
	x.ok(&PrefixDeleteRequest{ID: "p6"})
}

func TestIPAM_PrefixValidation(t *testing.T) {
	cases := []struct {
		name  string
		p     Prefix
		want  error
		field string
		msg   string
	}{
		{"not canonical", Prefix{Prefix: "10.0.0.5/24"}, ipam.ErrNotCanonical, "prefix", "did you mean 10.0.0.0/24"},
		{"garbage", Prefix{Prefix: "10.0.0.0/33"}, ipam.ErrInvalidPrefix, "prefix", ""},
		{"mapped", Prefix{Prefix: "::ffff:10.0.0.0/120"}, ipam.ErrMapped, "prefix", ""},
		{"bad status", Prefix{Prefix: "10.0.0.0/24", Status: "up"}, ErrInvalid, "status", ""},
		{"pool container", Prefix{Prefix: "10.0.0.0/24", Status: PrefixContainer, IsPool: true}, ErrInvalid, "is_pool", ""},
		{"container gateway", Prefix{Prefix: "10.0.0.0/24", Status: PrefixContainer, Gateway: "10.0.0.1"}, ErrInvalid, "gateway", ""},
		{"bad vrf", Prefix{Prefix: "10.0.0.0/24", VRF: "A B"}, ErrInvalid, "vrf", ""},
		{"bad tenant", Prefix{Prefix: "10.0.0.0/24", Tenant: "-x"}, ErrInvalid, "tenant", ""},
		{"long description", Prefix{Prefix: "10.0.0.0/24", Description: strings.Repeat("x", 2000)}, ErrInvalid, "description", ""},
		{"gateway family", Prefix{Prefix: "10.0.0.0/24", Gateway: "fd00::1"}, ipam.ErrFamily, "gateway", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := newIPAM(t)
			tc.p.ID = "p"
			x.fails(&PrefixCreateRequest{Prefix: tc.p, GatewayID: "g"}, tc.want, tc.field, tc.msg)
		})
	}
}

func TestIPAM_IdempotentAllocation(t *testing.T) {
	x := newIPAM(t)
	x.prefix("10.0.0.0/24", PrefixActive)
	meta := WriteMeta{Actor: "root", IdempotencyKey: "k", RequestHash: "h"}
	first := x.apply(&AddressAllocateRequest{WriteMeta: meta, PrefixID: "id-1", Count: 3, IDs: []string{"a", "b", "c"}})
	again := x.apply(&AddressAllocateRequest{WriteMeta: meta, PrefixID: "id-1", Count: 3, IDs: []string{"d", "e", "f"}})
	if first.Err != nil || again.Err != nil || !again.Replayed {
		t.Fatalf("first %+v, again %+v", first, again)
	}
	if !strings.Contains(string(again.Value.(json.RawMessage)), `"address":"10.0.0.3"`) {
		t.Fatalf("replay %s", again.Value)
	}
	if _, list, _ := x.f.State().Addresses(nil, AddressFilter{}); len(list) != 3 {
		t.Fatalf("%d addresses after a replay, want 3", len(list))
	}
}

func TestIPAM_QuarantineDrainAndWatch(t *testing.T) {
	x := newIPAM(t)
	x.prefix("10.0.0.0/30", PrefixActive) // .1 .2
	x.alloc("id-1", 2)
	_, list, _ := x.f.State().Addresses(nil, AddressFilter{})
	x.ok(&AddressReleaseRequest{ID: list[0].ID})
	st := x.f.State()
	if st.QuarantineDue(x.now) {
		t.Fatalf("quarantine due at once")
	}
	ws := memdb.NewWatchSet()
	if _, p, _ := st.Prefix(ws, "id-1"); p.Utilization.Used != "2" {
		t.Fatalf("utilization while held %+v", p.Utilization)
	}
	x.now += int64(ipam.DefaultQuarantine)
	if !st.QuarantineDue(x.now) {
		t.Fatalf("quarantine not due after %s", ipam.DefaultQuarantine)
	}
	if got := x.ok(&QuarantineDrainRequest{}).(map[string]int); got["released"] != 1 {
		t.Fatalf("drain %v", got)
	}
	if !fired(ws) {
		t.Fatalf("a blocking read of the prefix did not wake when its usage changed")
	}
	if _, p, _ := st.Prefix(nil, "id-1"); p.Utilization.Used != "1" {
		t.Fatalf("utilization after drain %+v", p.Utilization)
	}
	if av, _ := st.Available("id-1", 5); len(av) != 1 || av[0] != list[0].Address {
		t.Fatalf("available after drain %v", av)
	}
	x.ok(&ZoneCreateRequest{Zone: Zone{ID: "moxxie.test", Description: "lab"}})
	// An update changes what it gives and moves the zone's index, and
	// with it the DNS tables' (the SOA serial).
	before := x.f.State().LatestIndex()
	z := x.ok(&ZoneUpdateRequest{ID: "Moxxie.Test.", TTL: ptr(uint32(300))}).(*Zone)
	if z.TTL != 300 || z.Description != "lab" || z.ModifyIndex != x.index || z.ModifyIndex <= before || z.UpdatedAt == 0 {
		t.Fatalf("updated zone %+v", z)
	}
	if d, err := st.DNS(nil); err != nil || d.Index != x.index || d.Zones[0].TTL != 300 {
		t.Fatalf("DNS after the update: %+v %v", d, err)
	}
	x.ok(&ZoneUpdateRequest{ID: "moxxie.test", Description: ptr("")})
	x.fails(&ZoneUpdateRequest{ID: "moxxie.test", TTL: ptr(uint32(0))}, ErrInvalid, "ttl", "")
	x.fails(&ZoneUpdateRequest{ID: "moxxie.test", TTL: ptr(uint32(MaxZoneTTL + 1))}, ErrInvalid, "ttl", "")
	x.fails(&ZoneUpdateRequest{ID: "other.test", TTL: ptr(uint32(60))}, ErrNotFound, "", `zone "other.test" not found`)
	x.ok(&ZoneDeleteRequest{ID: "Moxxie.Test."})
}

func TestIPAM_AllocateRefusesRepeatedIDs(t *testing.T) {
	f := New()
	idx := uint64(0)
	apply := func(cmd Command) *Result {
		idx++
		buf, err := Encode(cmd)
		if err != nil {
			t.Fatal(err)
		}
		return f.Apply(logEntry(idx, buf)).(*Result)
	}
	if r := apply(&PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "10.0.0.0/24"}}); r.Err != nil {
		t.Fatal(r.Err)
	}
	for _, tc := range []struct {
		name string
		ids  []string
		want string
	}{
		{"twice in one request", []string{"a", "b", "a"}, "ids"},
		{"an existing one", []string{"c", "d"}, ""},
		{"again", []string{"e", "d"}, "id"},
		// IDs in order are checked with one seek.
		{"again among others in order", []string{"b", "d", "e"}, "id"},
		{"in order around taken ones", []string{"b", "e"}, ""},
	} {
		r := apply(&AddressAllocateRequest{PrefixID: "p", Count: len(tc.ids), IDs: tc.ids})
		if tc.want == "" {
			if r.Err != nil {
				t.Fatalf("%s: %v", tc.name, r.Err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(r.Err, &fe) || fe.Field != tc.want {
			t.Fatalf("%s: got %v, want an error naming %q", tc.name, r.Err, tc.want)
		}
	}
	_, as, err := f.State().Addresses(nil, AddressFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 4 {
		t.Fatalf("%d addresses after the refused requests, want the 4 of b, c, d and e", len(as))
	}
}

// TestIPAM_Confined: a change or release confined to a tenant finds only
// that tenant's addresses, VLANs and VNIs when it applies (an admin may
// have moved one since the API checked it); to it, others do not exist.
func TestIPAM_Confined(t *testing.T) {
	x := newIPAM(t)
	x.ok(&TenantCreateRequest{Tenant: Tenant{ID: "acme"}})
	x.ok(&TenantCreateRequest{Tenant: Tenant{ID: "beta"}})
	p := x.prefix("10.0.0.0/24", "")
	a := x.allocReq(&AddressAllocateRequest{PrefixID: p.ID, Tenant: "acme"})
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "g", Kind: PoolVLAN, Name: "prod"}})
	x.ok(&IDAllocateRequest{Kind: PoolVLAN, PoolID: "g", Allocation: IDAllocation{ID: "v1", Tenant: "acme", Name: "web"}})
	x.ok(&IDAllocateRequest{Kind: PoolVLAN, PoolID: "g", Allocation: IDAllocation{ID: "v2", Tenant: "beta", Name: "db"}})

	// Moved to beta after the API let acme's token through.
	x.ok(&AddressUpdateRequest{ID: a.ID, Tenant: str("beta")})
	x.ok(&IDUpdateRequest{Kind: PoolVLAN, ID: "v1", Tenant: str("beta")})
	x.fails(&AddressUpdateRequest{ID: a.ID, Description: str("x"), Confine: "acme"}, ErrNotFound, "", "address")
	x.fails(&AddressReleaseRequest{ID: a.ID, Confine: "acme"}, ErrNotFound, "", "address")
	x.fails(&IDUpdateRequest{Kind: PoolVLAN, ID: "v1", Description: str("x"), Confine: "acme"}, ErrNotFound, "", "VLAN")
	x.fails(&IDReleaseRequest{Kind: PoolVLAN, ID: "v1", Confine: "acme"}, ErrNotFound, "", "VLAN")
	// Back with acme, they apply.
	x.ok(&AddressUpdateRequest{ID: a.ID, Tenant: str("acme")})
	x.ok(&IDUpdateRequest{Kind: PoolVLAN, ID: "v1", Tenant: str("acme")})
	x.ok(&AddressUpdateRequest{ID: a.ID, Description: str("x"), Confine: "acme"})
	// A taken name does not say which of another tenant's VLANs has it.
	x.fails(&IDUpdateRequest{Kind: PoolVLAN, ID: "v1", Name: str("db"), Confine: "acme"}, ErrConflict, "name", "another VLAN of VLAN group prod is named db already")
	x.ok(&IDUpdateRequest{Kind: PoolVLAN, ID: "v1", Description: str("x"), Confine: "acme"})
	x.ok(&IDReleaseRequest{Kind: PoolVLAN, ID: "v1", Confine: "acme"})
	x.ok(&AddressReleaseRequest{ID: a.ID, Confine: "acme"})

	// Allocations: the prefix or pool must be the tenant's when the
	// command applies. The prefix was beta's, and no pool is acme's.
	x.ok(&PrefixUpdateRequest{ID: p.ID, Tenant: str("beta")})
	x.fails(&AddressAllocateRequest{PrefixID: p.ID, Tenant: "acme", IDs: []string{x.id()}, NameRules: true, Confine: "acme"}, ErrNotFound, "", `prefix "`+p.ID+`" not found`)
	x.fails(&AddressAllocateRequest{Address: "10.0.0.77", Tenant: "acme", IDs: []string{x.id()}, NameRules: true, Confine: "acme"}, ErrNotFound, "address", "10.0.0.77 is in no prefix of tenant acme in VRF global")
	x.fails(&IDAllocateRequest{Kind: PoolVLAN, PoolID: "g", Allocation: IDAllocation{ID: "v3", Tenant: "acme"}, Confine: "acme"}, ErrNotFound, "", `VLAN group "g" not found`)
	x.ok(&PrefixUpdateRequest{ID: p.ID, Tenant: str("acme")})
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "ga", Kind: PoolVLAN, Name: "acme", Tenant: "acme", Ranges: []ipam.IDRange{{First: 100, Last: 199}}}})
	b := x.allocReq(&AddressAllocateRequest{PrefixID: p.ID, Tenant: "acme", NameRules: true, Confine: "acme"})
	c := x.allocReq(&AddressAllocateRequest{Address: "10.0.0.77", Tenant: "acme", NameRules: true, Confine: "acme"})
	if b.Tenant != "acme" || c.Address != "10.0.0.77" {
		t.Fatalf("confined allocations: %+v, %+v", b, c)
	}
	v3 := x.ok(&IDAllocateRequest{Kind: PoolVLAN, PoolID: "ga", Allocation: IDAllocation{ID: "v3", Tenant: "acme"}, Confine: "acme"}).(*IDAllocation)
	// Another tenant's VLAN in the tenant's group (an admin put it there)
	// is taken, without its ID, name or owner.
	beta := x.ok(&IDAllocateRequest{Kind: PoolVLAN, PoolID: "ga", Allocation: IDAllocation{ID: "v4", Tenant: "beta", Name: "betas", Owner: "vm:9/net0"}, UniqueName: true}).(*IDAllocation)
	x.fails(&IDAllocateRequest{Kind: PoolVLAN, PoolID: "ga", Number: beta.Number, Allocation: IDAllocation{ID: "v5", Tenant: "acme"}, Confine: "acme"}, ipam.ErrInUse, "vid",
		fmt.Sprintf("VLAN %d of VLAN group acme is taken", beta.Number))
	x.fails(&IDAllocateRequest{Kind: PoolVLAN, PoolID: "ga", Allocation: IDAllocation{ID: "v5", Tenant: "acme", Name: "betas"}, UniqueName: true, Confine: "acme"}, ErrConflict, "name",
		"another VLAN of VLAN group acme is named betas already")
	for _, c := range []*IDAllocateRequest{
		{Kind: PoolVLAN, PoolID: "ga", Number: beta.Number, Allocation: IDAllocation{ID: "v5", Tenant: "acme"}, Confine: "acme"},
		{Kind: PoolVLAN, PoolID: "ga", Allocation: IDAllocation{ID: "v5", Tenant: "acme", Name: "betas"}, UniqueName: true, Confine: "acme"},
	} {
		if r := x.apply(c); r.Err == nil || strings.Contains(r.Err.Error(), "v4") || strings.Contains(r.Err.Error(), "vm:9") {
			t.Errorf("confined refusal tells of another tenant's VLAN: %v", r.Err)
		}
	}
	// Its own: said in full.
	x.fails(&IDAllocateRequest{Kind: PoolVLAN, PoolID: "ga", Number: v3.Number, Allocation: IDAllocation{ID: "v5", Tenant: "acme"}, Confine: "acme"}, ipam.ErrInUse, "vid", "(id v3")
	// The same for an address of another tenant in the tenant's prefix.
	betaAddr := x.allocReq(&AddressAllocateRequest{Address: "10.0.0.150", Tenant: "beta"})
	x.fails(&AddressAllocateRequest{PrefixID: p.ID, Address: "10.0.0.150", Tenant: "acme", IDs: []string{x.id()}, Confine: "acme"}, ipam.ErrInUse, "address", "10.0.0.150 is already allocated")
	if r := x.apply(&AddressAllocateRequest{PrefixID: p.ID, Address: "10.0.0.150", Tenant: "acme", IDs: []string{x.id()}, Confine: "acme"}); r.Err == nil || strings.Contains(r.Err.Error(), betaAddr.ID) {
		t.Errorf("confined refusal tells of another tenant's address: %v", r.Err)
	}
	x.fails(&AddressAllocateRequest{PrefixID: p.ID, Address: c.Address, Tenant: "acme", IDs: []string{x.id()}, Confine: "acme"}, ipam.ErrInUse, "address", "(id "+c.ID+")")
	// Confine travels without the naming rules too.
	x.ok(&PrefixUpdateRequest{ID: p.ID, Tenant: str("beta")})
	x.fails(&AddressAllocateRequest{PrefixID: p.ID, Tenant: "acme", IDs: []string{x.id()}, Confine: "acme"}, ErrNotFound, "", `prefix "`+p.ID+`" not found`)
}
