package fsm

import (
	"fmt"
	"github.com/moxxie/moxxie/sdn"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/ipam"
	"github.com/moxxie/moxxie/quota"
)

// namesFSM is an IPAM state with a shared zone, a zone of tenant acme
// under it, and one named address each of acme, of tenant small and of no
// tenant.
func namesFSM(t *testing.T) (*ipamFSM, *PrefixView, map[string]string) {
	x := newIPAM(t)
	for _, id := range []string{"acme", "small"} {
		x.ok(&TenantCreateRequest{Tenant: Tenant{ID: id, Quota: quota.Limits{quota.IPv4: 100}}})
	}
	x.ok(&ZoneCreateRequest{Zone: Zone{ID: "moxxie.test"}})
	x.ok(&ZoneCreateRequest{Zone: Zone{ID: "acme.moxxie.test", Tenant: "acme"}})
	p := x.prefix("10.0.0.0/24", "")
	ids := map[string]string{}
	for _, a := range []struct{ tenant, name string }{
		{"acme", "www.acme.moxxie.test"}, {"small", "shop.moxxie.test"}, {"", "web1.moxxie.test"},
	} {
		ids[a.name] = x.allocReq(&AddressAllocateRequest{PrefixID: p.ID, Count: 1, Tenant: a.tenant, DNSName: a.name, NameRules: true}).ID
	}
	return x, p, ids
}

func TestNameRules(t *testing.T) {
	cases := []struct {
		tenant, name string
		want         error // nil: allowed
	}{
		{"small", "www.acme.moxxie.test", ErrInvalid}, // in acme's zone
		{"small", "db.acme.moxxie.test", ErrInvalid},  // in acme's zone, a new name
		{"small", "x.y.acme.moxxie.test", ErrInvalid}, // below acme's zone
		{"small", "moxxie.test", ErrInvalid},          // the shared zone's apex
		{"small", "NS1.moxxie.test.", ErrInvalid},     // its name server, any case
		{"small", "web1.moxxie.test", ErrConflict},    // held by an address of no tenant
		{"acme", "shop.moxxie.test", ErrConflict},     // held by small
		{"small", "shop.moxxie.test", nil},            // small's own name: round robin
		{"small", "api.moxxie.test", nil},             // a new name in the shared zone
		{"acme", "db.acme.moxxie.test", nil},          // acme in its own zone
		{"acme", "acme.moxxie.test", nil},             // acme at its own zone's apex
		{"small", "host.example.org", nil},            // in no zone
		{"", "www.acme.moxxie.test", nil},             // no tenant: not restricted
		{"", "ns1.moxxie.test", nil},                  // no tenant: not restricted
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s", c.tenant, c.name), func(t *testing.T) {
			x, p, _ := namesFSM(t)
			req := &AddressAllocateRequest{PrefixID: p.ID, Count: 1, IDs: []string{x.id()}, Tenant: c.tenant, DNSName: c.name, NameRules: true}
			if c.want != nil {
				x.fails(req, c.want, "dns_name", "")
				return
			}
			x.ok(req)
		})
	}
}

func TestNameRules_Update(t *testing.T) {
	x, p, ids := namesFSM(t)
	shop := ids["shop.moxxie.test"]
	x.fails(&AddressUpdateRequest{ID: shop, DNSName: str("www.acme.moxxie.test"), NameRules: true}, ErrInvalid, "dns_name", "another tenant")
	x.fails(&AddressUpdateRequest{ID: shop, DNSName: str("web1.moxxie.test"), NameRules: true}, ErrConflict, "dns_name", "not tenant small's")
	// Moving a named address to another tenant is renaming it for the rules.
	www := ids["www.acme.moxxie.test"]
	x.fails(&AddressUpdateRequest{ID: www, Tenant: str("small"), NameRules: true}, ErrInvalid, "dns_name", "")
	// An address keeps its own name through other changes.
	x.ok(&AddressUpdateRequest{ID: shop, DNSName: str("shop.moxxie.test"), Description: str("d"), NameRules: true})
	// Two of one tenant share a name; then the tenant-less one may join too.
	b := x.allocReq(&AddressAllocateRequest{PrefixID: p.ID, Count: 1, Tenant: "small", NameRules: true})
	x.ok(&AddressUpdateRequest{ID: b.ID, DNSName: str("shop.moxxie.test"), NameRules: true})
	x.ok(&AddressUpdateRequest{ID: ids["web1.moxxie.test"], DNSName: str("shop.moxxie.test"), NameRules: true})
}

// TestNameRules_EarlierProposer applies commands as a leader of an earlier
// version wrote them, without NameRules: they name the address as they
// did, so that every server's state stays the same during an upgrade.
func TestNameRules_EarlierProposer(t *testing.T) {
	x, p, ids := namesFSM(t)
	a := x.allocReq(&AddressAllocateRequest{PrefixID: p.ID, Count: 1, Tenant: "small", DNSName: "www.acme.moxxie.test"})
	if a.DNSName != "www.acme.moxxie.test" {
		t.Fatalf("name %q", a.DNSName)
	}
	x.ok(&AddressUpdateRequest{ID: ids["shop.moxxie.test"], DNSName: str("web1.moxxie.test")})
}

// TestNameRules_Encoding checks that NameRules survives the hand-made
// encoding and that an allocation without it keeps the earlier layout.
// TestNameRules_NewZone creates zones over names taken before them: a
// zone that would serve a name against the rules is refused; one below
// it, which serves the name, keeps it out of the rules' reach.
func TestNameRules_NewZone(t *testing.T) {
	x, p, _ := namesFSM(t)
	for _, name := range []string{"db.sub.example.test", "example.test", "ns1.shared.test"} {
		x.allocReq(&AddressAllocateRequest{PrefixID: p.ID, Count: 1, Tenant: "acme", DNSName: name, NameRules: true})
	}
	x.fails(&ZoneCreateRequest{Zone: Zone{ID: "example.test", Tenant: "small"}, NameRules: true}, ErrConflict, "name", "zone example.test would serve db.sub.example.test, the name of address")
	x.fails(&ZoneCreateRequest{Zone: Zone{ID: "shared.test"}, NameRules: true}, ErrConflict, "name", "would serve ns1.shared.test")
	// Once acme's zone below serves db.sub.example.test, only the apex
	// name is in the way; a zone of acme takes both.
	x.ok(&ZoneCreateRequest{Zone: Zone{ID: "sub.example.test", Tenant: "acme"}, NameRules: true})
	x.fails(&ZoneCreateRequest{Zone: Zone{ID: "example.test", Tenant: "small"}, NameRules: true}, ErrConflict, "name", "would serve example.test,")
	x.ok(&ZoneCreateRequest{Zone: Zone{ID: "example.test", Tenant: "acme"}, NameRules: true})
	// A shared zone takes a tenant's names below its apex.
	x.ok(&ZoneCreateRequest{Zone: Zone{ID: "test"}, NameRules: true})
	// Without the rules (a command of an earlier version) it is taken.
	x.ok(&ZoneCreateRequest{Zone: Zone{ID: "shared.test"}})
}

// TestNameRules_ReverseName names one IP in two VRFs: a tenant's address
// may not take a name while an address that is not the tenant's has one
// at its IP in another VRF, since DNS serves one reverse tree for all.
func TestNameRules_ReverseName(t *testing.T) {
	x, p, _ := namesFSM(t)
	x.ok(&VRFCreateRequest{VRF: VRF{ID: "red", Tenant: "acme"}})
	red := x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: "red-p", Prefix: "10.0.0.0/24", VRF: "red"}}).(*PrefixView)
	held := x.allocReq(&AddressAllocateRequest{PrefixID: p.ID, Address: "10.0.0.50", Tenant: "small", DNSName: "mail.moxxie.test", NameRules: true, ReverseRule: true})
	rule := func(r *AddressAllocateRequest) *AddressAllocateRequest {
		r.IDs, r.NameRules, r.ReverseRule = make([]string, max(r.Count, 1)), true, true
		for i := range r.IDs {
			r.IDs[i] = x.id()
		}
		return r
	}
	x.fails(rule(&AddressAllocateRequest{PrefixID: red.ID, Address: "10.0.0.50", Tenant: "acme", DNSName: "evil.acme.moxxie.test"}), ErrConflict, "dns_name", "10.0.0.50 has a reverse name already")
	// Unnamed, or of no tenant, or by an earlier proposer, it is taken.
	mine := x.allocReq(&AddressAllocateRequest{PrefixID: red.ID, Address: "10.0.0.50", Tenant: "acme", NameRules: true, ReverseRule: true})
	x.fails(&AddressUpdateRequest{ID: mine.ID, DNSName: str("evil.acme.moxxie.test"), NameRules: true, ReverseRule: true}, ErrConflict, "dns_name", "has a reverse name already")
	x.ok(&AddressUpdateRequest{ID: mine.ID, Description: str("d"), NameRules: true, ReverseRule: true})
	x.ok(&AddressUpdateRequest{ID: mine.ID, DNSName: str("evil.acme.moxxie.test"), NameRules: true})
	x.ok(&AddressReleaseRequest{ID: mine.ID, Force: true})
	x.allocReq(&AddressAllocateRequest{PrefixID: red.ID, Address: "10.0.0.50", DNSName: "admin.moxxie.test", NameRules: true, ReverseRule: true})
	// Both ways: while red's address at the IP has a name, small may not
	// rename its own there.
	x.fails(&AddressUpdateRequest{ID: held.ID, DNSName: str("mx.moxxie.test"), NameRules: true, ReverseRule: true}, ErrConflict, "dns_name", "")
	// A count of addresses is checked address by address.
	x.fails(rule(&AddressAllocateRequest{PrefixID: red.ID, Count: 60, Tenant: "acme", DNSName: "many.acme.moxxie.test"}), ErrConflict, "dns_name", "has a reverse name already")
}

func TestNameRules_Encoding(t *testing.T) {
	req := &AddressAllocateRequest{PrefixID: "p", Count: 1, IDs: []string{"a"}, DNSName: "x.moxxie.test"}
	old := encodeBinary(req)
	req.NameRules = true
	withRules := encodeBinary(req)
	if len(withRules) != len(old)+1 {
		t.Fatalf("NameRules adds %d bytes, want 1", len(withRules)-len(old))
	}
	for _, c := range []struct {
		b    []byte
		want bool
	}{{old, false}, {withRules, true}} {
		cmd, err := Decode(c.b)
		if err != nil {
			t.Fatal(err)
		}
		if got := cmd.(*AddressAllocateRequest).NameRules; got != c.want {
			t.Fatalf("decoded NameRules %v, want %v", got, c.want)
		}
	}
}

func TestUtilization(t *testing.T) {
	two128, _ := new(big.Int).SetString("340282366920938463463374607431768211456", 10)
	for _, c := range []struct {
		used    *big.Int
		size    *big.Int
		percent float64
	}{
		{big.NewInt(0), big.NewInt(0), 0},
		{big.NewInt(1), big.NewInt(4), 25},
		{big.NewInt(4), big.NewInt(4), 100},
		{ipam.Key{Hi: 1}.Sub64(2).Big(), ipam.Key{Hi: 1}.Sub64(1).Big(), 99.99}, // one free: not full
		{big.NewInt(1), two128, 0},
		{two128, two128, 100}, // a full ::/0 pool
	} {
		u := utilization(c.used, c.size)
		if u.Percent != c.percent || string(u.Size) != c.size.String() {
			t.Errorf("utilization(%s, %s) = %+v, want %v%%", c.used, c.size, u, c.percent)
		}
	}
}

// TestRuleMarks_Encoding checks that a msgpack command whose mark can
// change its outcome is written so that a server of an earlier version
// cannot read it (it halts instead of applying it by older rules), that
// this version reads it back, and that a command the mark cannot change
// stays plain msgpack.
func TestRuleMarks_Encoding(t *testing.T) {
	for _, c := range []struct {
		cmd    Command
		marked bool
	}{
		{&AddressUpdateRequest{ID: "a", DNSName: str("x.moxxie.test"), NameRules: true}, true},
		{&AddressUpdateRequest{ID: "a", Tenant: str("acme"), NameRules: true}, true},
		{&AddressUpdateRequest{ID: "a", Description: str("d"), NameRules: true}, false},
		{&AddressUpdateRequest{ID: "a", DNSName: str("x.moxxie.test")}, false},
		{&IDAllocateRequest{Kind: PoolVLAN, PoolID: "g", UniqueName: true, Allocation: IDAllocation{ID: "v", Name: "web"}}, true},
		{&IDAllocateRequest{Kind: PoolVLAN, PoolID: "g", UniqueName: true, Allocation: IDAllocation{ID: "v"}}, false},
		{&IDAllocateRequest{Kind: PoolVLAN, PoolID: "g", Allocation: IDAllocation{ID: "v"}, Confine: "acme"}, true},
		{&ZoneCreateRequest{Zone: Zone{ID: "z.test"}, NameRules: true}, true},
		{&ZoneCreateRequest{Zone: Zone{ID: "z.test"}}, false},
		{&PrefixDeleteRequest{ID: "p", Reparent: true}, true},
		{&PrefixDeleteRequest{ID: "p"}, false},
		{&PrefixDeleteRequest{ID: "p", KeepQuarantine: true}, true},
		{&PrefixDeleteRequest{ID: "p", WholeRule: true}, true},
		{&IPRangeCreateRequest{Range: IPRange{ID: "r"}, DrainRule: true}, true},
		{&IPRangeCreateRequest{Range: IPRange{ID: "r"}}, false},
		{&PrefixAllocateRequest{ParentID: "p", Bits: 64, Child: Prefix{ID: "c", Status: PrefixActive}, MappedRule: true}, true},
		{&PrefixAllocateRequest{ParentID: "p", Bits: 64, Child: Prefix{ID: "c", Status: PrefixContainer}, MappedRule: true}, false},
		{&PrefixAllocateRequest{ParentID: "p", Bits: 64, Child: Prefix{ID: "c", Status: PrefixActive}}, false},
		{&PrefixAllocateRequest{ParentID: "p", Bits: 97, Child: Prefix{ID: "c", Status: PrefixContainer}, MappedRule: true, MappedContainerRule: true}, true},
		{&PrefixAllocateRequest{ParentID: "p", Bits: 95, Child: Prefix{ID: "c", Status: PrefixContainer}, MappedRule: true, MappedContainerRule: true}, false},
		{&PrefixAllocateRequest{ParentID: "p", Bits: 97, Child: Prefix{ID: "c", Status: PrefixActive}, MappedRule: true, MappedContainerRule: true}, true},
		{&PoolCreateRequest{Pool: Pool{ID: "p", Kind: PoolVNI, Name: "p"}, Exclusive: true}, true},
		{&PrefixUpdateRequest{ID: "p", Project: str("web"), ProjectRules: true}, true},
		{&PrefixUpdateRequest{ID: "p", Project: str(""), ProjectRules: true}, false},
		{&PrefixUpdateRequest{ID: "p", Description: str("d"), ProjectRules: true}, false},
		{&PrefixUpdateRequest{ID: "p", IsPool: new(false), ProjectRules: true}, true},
		{&PoolUpdateRequest{Kind: PoolVLAN, ID: "g", Tenant: str("acme")}, true},
		{&PoolUpdateRequest{Kind: PoolVLAN, ID: "g", Description: str("d")}, false},
		{&AddressUpdateRequest{ID: "a", Project: str("web"), ProjectRules: true}, true},
		{&AddressUpdateRequest{ID: "a", Description: str("d"), NameRules: true, ProjectRules: true}, false},
		{&PoolCreateRequest{Pool: Pool{ID: "p", Kind: PoolVNI, Name: "p"}}, false},
		{&PoolDeleteRequest{Kind: PoolVNI, ID: "p", ZoneRule: true}, true},
		{&PoolCreateRequest{Pool: Pool{ID: "p", Kind: PoolVNI, Name: "p"}, TagRule: true}, true},
		{&PoolCreateRequest{Pool: Pool{ID: "p", Kind: PoolVLAN, Name: "p"}, TagRule: true}, false},
		{&PoolDeleteRequest{Kind: PoolVNI, ID: "p"}, false},
		{&AddressUpdateRequest{ID: "a", Description: str("d"), Confine: "acme"}, true},
		{&AddressReleaseRequest{ID: "a", Confine: "acme"}, true},
		{&AddressUpdateRequest{ID: "a", DNSName: str("x.moxxie.test"), ReverseRule: true}, true},
		{&AddressUpdateRequest{ID: "a", Description: str("d"), ReverseRule: true}, false},
		{&AddressReleaseRequest{ID: "a"}, false},
		{&IDReleaseRequest{Kind: PoolVLAN, ID: "v", Confine: "acme"}, true},
		{&IDReleaseRequest{Kind: PoolVLAN, ID: "v"}, false},
		{&PoolCreateRequest{Pool: Pool{ID: "p", Kind: PoolVLAN, Name: "p"}, Exclusive: true}, false},
		{&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v", Zone: "z", Tag: 5}, TagRules: true}, true},
		{&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v", Zone: "z", Tag: 5}}, false},
		{&SDNZonePutRequest{Zone: sdn.Zone{ID: "z", Type: sdn.ZoneVLAN, Nodes: []string{"pve1"}}, TagRules: true}, true},
		{&SDNZonePutRequest{Zone: sdn.Zone{ID: "z", Type: sdn.ZoneVXLAN}, TagRules: true}, false},
		{&SDNZonePutRequest{Zone: sdn.Zone{ID: "z", Type: sdn.ZoneVLAN}}, false},
		{&DRItemUpdateRequest{Run: "r", VMID: 1, Step: DRStepRestoring, Network: map[string]string{"net0": "virtio,bridge=vmbr0"}}, true},
		{&DRItemUpdateRequest{Run: "r", VMID: 1, Step: DRStepRestoring}, false},
	} {
		b := mustEncode(t, c.cmd)
		if got := len(b) > 2 && b[1] == binaryMarker && (b[2] == markedMsgpack || b[2] == markedMsgpackLevel); got != c.marked {
			t.Errorf("%T %+v: marked %v, want %v", c.cmd, c.cmd, got, c.marked)
		}
		// What a server of a version without marks did with the payload.
		if err := decodeMsgpack(b[1:], commands[c.cmd.Type()].new()); (err != nil) != c.marked {
			t.Errorf("%T: an earlier version's msgpack decode gives %v; want an error: %v", c.cmd, err, c.marked)
		}
		// And one that knew the first mark only: it must not read a rule
		// of a later level.
		later := false
		if l, ok := c.cmd.(laterRules); ok {
			later = l.rulesLevel() > 1
		}
		if err := firstMarkDecode(b, commands[c.cmd.Type()].new()); (err != nil) != later {
			t.Errorf("%T %+v: a first-mark version's decode gives %v; want an error: %v", c.cmd, c.cmd, err, later)
		}
		got, err := Decode(b)
		if err != nil || !reflect.DeepEqual(got, c.cmd) {
			t.Errorf("%T: round trip %+v, %v; want %+v", c.cmd, got, err, c.cmd)
		}
	}
	// Rules added to a type after its first mark: the version before
	// (which reads the first mark) must not take them for plain ones.
	for _, cmd := range []Command{
		&IDAllocateRequest{Kind: PoolVLAN, PoolID: "g", Allocation: IDAllocation{ID: "v"}, Confine: "acme"},
		&IDAllocateRequest{Kind: PoolVLAN, PoolID: "g", UniqueName: true, Allocation: IDAllocation{ID: "v", Name: "web"}, Confine: "acme"},
		&AddressUpdateRequest{ID: "a", DNSName: str("x.moxxie.test"), NameRules: true, ReverseRule: true},
		&AddressUpdateRequest{ID: "a", Tenant: str("acme"), ReverseRule: true},
		&PrefixAllocateRequest{ParentID: "p", Bits: 96, Child: Prefix{ID: "c", Status: PrefixContainer}, MappedRule: true, MappedContainerRule: true},
		&PrefixUpdateRequest{ID: "p", IsPool: new(true), ProjectRules: true},
	} {
		if err := firstMarkDecode(mustEncode(t, cmd), commands[cmd.Type()].new()); err == nil {
			t.Errorf("%T %+v: the version before reads it without its newer rule", cmd, cmd)
		}
	}
	// A level above this version's is refused, so that it halts.
	b := mustEncode(t, &IDAllocateRequest{Kind: PoolVLAN, PoolID: "g", Allocation: IDAllocation{ID: "v"}, Confine: "acme"})
	b[3] = rulesLevel + 1
	if _, err := Decode(b); err == nil || !strings.Contains(err.Error(), "upgrade it") {
		t.Errorf("a command of level %d: %v", b[3], err)
	}
}

// firstMarkDecode decodes b as a server that knew the first mark only
// (markedMsgpack): it reads msgpack after that mark, and takes any other
// byte after binaryMarker for a binary form the type does not have.
func firstMarkDecode(b []byte, cmd Command) error {
	if len(b) > 2 && b[1] == binaryMarker {
		if b[2] != markedMsgpack {
			return errBinaryCommand
		}
		return decodeMsgpack(b[3:], cmd)
	}
	return decodeMsgpack(b[1:], cmd)
}

func TestReverseTreeName(t *testing.T) {
	for name, want := range map[string]bool{
		"arpa": true, "in-addr.arpa": true, "ip6.arpa": true,
		"9.0.0.10.in-addr.arpa": true, "x.ip6.arpa": true,
		"home.arpa": false, "nas.home.arpa": false, "web.moxxie.test": false,
		"in-addr.arpa.example": false, "xin-addr.arpa": false,
	} {
		if got := ReverseTreeName(name); got != want {
			t.Errorf("ReverseTreeName(%q) = %v, want %v", name, got, want)
		}
	}
}
