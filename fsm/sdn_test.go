package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/ipam"
	"github.com/moxxie/moxxie/quota"
	"github.com/moxxie/moxxie/sdn"
)

// sdnFixture applies commands to one FSM at increasing indexes.
type sdnFixture struct {
	t   *testing.T
	f   *FSM
	idx uint64
}

func newSDNFixture(t *testing.T) *sdnFixture {
	return &sdnFixture{t: t, f: New()}
}

// apply applies cmd at the next index, stamped with a leader time that
// follows the index.
func (x *sdnFixture) apply(cmd Command) *Result {
	x.t.Helper()
	x.idx++
	if m := cmd.Meta(); m.Now == 0 {
		m.Now = int64(x.idx) * 1000
	}
	return applyCmd(x.t, x.f, x.idx, cmd)
}

// ok applies cmd and fails the test if it is refused.
func (x *sdnFixture) ok(cmd Command) any {
	x.t.Helper()
	r := x.apply(cmd)
	if r.Err != nil {
		x.t.Fatalf("%T: %v", cmd, r.Err)
	}
	return r.Value
}

// refused applies cmd, requires an error matching kind that names field,
// and requires the state unchanged.
func (x *sdnFixture) refused(cmd Command, kind error, field string) error {
	x.t.Helper()
	before := dump(x.t, x.f)
	r := x.apply(cmd)
	requireErrorIs(x.t, r.Err, kind)
	got := ""
	if fe := (*FieldError)(nil); errors.As(r.Err, &fe) {
		got = fe.Field
	}
	if got != field {
		x.t.Fatalf("%T: error %q names field %q, want %q", cmd, r.Err, got, field)
	}
	if !bytes.Equal(before, dump(x.t, x.f)) {
		x.t.Fatalf("%T: a refused command changed the state", cmd)
	}
	return r.Err
}

func (x *sdnFixture) store() *Store { return x.f.State() }

func (x *sdnFixture) host(name, addr string) {
	x.t.Helper()
	x.ok(&SDNHostPutRequest{Host: sdn.Host{Name: name, Address: addr, Uplink: "eno1"}})
}

func (x *sdnFixture) zone(z sdn.Zone) *SDNZone {
	x.t.Helper()
	return x.ok(&SDNZonePutRequest{Zone: z, Create: true}).(*SDNZone)
}

func (x *sdnFixture) vnet(v sdn.Vnet, alloc string) *SDNVnet {
	x.t.Helper()
	return x.ok(&SDNVnetPutRequest{Vnet: v, Create: true, AllocationID: alloc}).(*SDNVnet)
}

func (x *sdnFixture) state(host string) SDNHostState {
	x.t.Helper()
	_, st, err := x.store().SDNHostState(nil, host)
	if err != nil || st == nil {
		x.t.Fatalf("state of %s: %v, %v", host, st, err)
	}
	return *st
}

func (x *sdnFixture) rollout(id string) *SDNRollout {
	x.t.Helper()
	_, r, err := x.store().SDNRollout(nil, id)
	if err != nil || r == nil {
		x.t.Fatalf("rollout %s: %v, %v", id, r, err)
	}
	return r
}

func (x *sdnFixture) apply1(id string) *SDNApplyResult {
	x.t.Helper()
	return x.ok(&SDNApplyRequest{RolloutID: id, Deadline: Timestamp(1e15)}).(*SDNApplyResult)
}

func (x *sdnFixture) report(host string, version uint64, state, msg string) *SDNHostState {
	x.t.Helper()
	return x.ok(&SDNReportRequest{Host: host, Version: version, State: state, Error: msg}).(*SDNHostState)
}

// allocation returns the IPAM allocation of id, or nil.
func (x *sdnFixture) allocation(id string) *IDAllocation {
	raw, err := x.store().db.Txn(false).First(tableIDAllocs, "id", id)
	if err != nil {
		x.t.Fatal(err)
	}
	if raw == nil {
		return nil
	}
	return raw.(*IDAllocation)
}

func TestFSM_SDNZones(t *testing.T) {
	x := newSDNFixture(t)
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "vnis", Kind: PoolVNI, Name: "vnis", Ranges: []ipam.IDRange{{First: 100, Last: 199}}}})
	z := x.zone(sdn.Zone{ID: "z1", Type: sdn.ZoneVXLAN, Pool: "vnis"})
	if z.CreateIndex != x.idx || z.ModifyIndex != x.idx || z.CreatedAt != Timestamp(x.idx*1000) {
		t.Fatalf("created %+v", z)
	}
	x.refused(&SDNZonePutRequest{Zone: sdn.Zone{ID: "z1", Type: sdn.ZoneSimple}, Create: true}, ErrConflict, "id")
	x.refused(&SDNZonePutRequest{Zone: sdn.Zone{ID: "z2", Type: sdn.ZoneSimple}}, ErrNotFound, "")
	x.refused(&SDNZonePutRequest{Zone: sdn.Zone{ID: "z2", Type: "bgp"}, Create: true}, ErrInvalid, "type")
	x.refused(&SDNZonePutRequest{Zone: sdn.Zone{ID: "z-2", Type: sdn.ZoneSimple}, Create: true}, ErrInvalid, "id")
	x.refused(&SDNZonePutRequest{Zone: sdn.Zone{ID: "z2", Type: sdn.ZoneVXLAN, Pool: "nope"}, Create: true}, ErrNotFound, "pool")
	// A VNI pool is not a VLAN group.
	x.refused(&SDNZonePutRequest{Zone: sdn.Zone{ID: "z2", Type: sdn.ZoneVLAN, Pool: "vnis"}, Create: true}, ErrNotFound, "pool")

	// An update keeps the history.
	up := x.ok(&SDNZonePutRequest{Zone: sdn.Zone{ID: "z1", Type: sdn.ZoneVXLAN, Pool: "vnis", MTU: 1400}}).(*SDNZone)
	if up.CreateIndex != z.CreateIndex || up.CreatedAt != z.CreatedAt || up.ModifyIndex != x.idx || up.MTU != 1400 {
		t.Fatalf("updated %+v", up)
	}
	x.vnet(sdn.Vnet{ID: "v1", Zone: "z1"}, "al-1")
	x.refused(&SDNZonePutRequest{Zone: sdn.Zone{ID: "z1", Type: sdn.ZoneSimple}}, ErrConflict, "type")
	x.refused(&SDNZoneDeleteRequest{ID: "z1"}, ErrConflict, "id")
	x.refused(&SDNZoneDeleteRequest{ID: "nope"}, ErrNotFound, "")
	x.ok(&SDNVnetDeleteRequest{ID: "v1"})
	// The zone's pool stays while the zone names it, also with no vnets;
	// a command without the mark deletes it, as earlier versions did.
	if err := x.refused(&PoolDeleteRequest{Kind: PoolVNI, ID: "vnis", ZoneRule: true}, ErrConflict, "id"); !strings.Contains(err.Error(), "VNI pool vnis is the pool of SDN zone z1") {
		t.Fatalf("pool delete: %v", err)
	}
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "old", Kind: PoolVNI, Name: "old", Ranges: []ipam.IDRange{{First: 300, Last: 399}}}})
	x.zone(sdn.Zone{ID: "z3", Type: sdn.ZoneVXLAN, Pool: "old"})
	x.ok(&PoolDeleteRequest{Kind: PoolVNI, ID: "old"})
	x.ok(&SDNZoneDeleteRequest{ID: "z3"})
	del := x.ok(&SDNZoneDeleteRequest{ID: "z1"}).(*SDNZone)
	if del.ID != "z1" {
		t.Fatalf("deleted %+v", del)
	}
	if _, zs, _ := x.store().SDNZones(nil); len(zs) != 0 {
		t.Fatalf("zones left: %v", zs)
	}
	x.ok(&PoolDeleteRequest{Kind: PoolVNI, ID: "vnis", ZoneRule: true})
	// The JSON is flat.
	b, _ := json.Marshal(up)
	for _, want := range []string{`"id":"z1"`, `"type":"vxlan"`, `"mtu":1400`, `"pool":"vnis"`, `"create_index":`, `"updated_at":"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("zone JSON %s lacks %s", b, want)
		}
	}
}

func TestFSM_SDNVnetTags(t *testing.T) {
	x := newSDNFixture(t)
	x.ok(&TenantCreateRequest{Tenant: Tenant{ID: "acme", Quota: quota.Limits{quota.VNIs: 1, quota.VLANs: 1}}})
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "vnis", Kind: PoolVNI, Name: "vnis", Ranges: []ipam.IDRange{{First: 100, Last: 199}}}})
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "vlans", Kind: PoolVLAN, Name: "vlans", Ranges: []ipam.IDRange{{First: 10, Last: 19}}}})
	x.zone(sdn.Zone{ID: "vx", Type: sdn.ZoneVXLAN, Pool: "vnis"})
	x.zone(sdn.Zone{ID: "vx2", Type: sdn.ZoneVXLAN})
	x.zone(sdn.Zone{ID: "vl", Type: sdn.ZoneVLAN, Pool: "vlans"})
	x.zone(sdn.Zone{ID: "vl2", Type: sdn.ZoneVLAN})
	x.zone(sdn.Zone{ID: "s", Type: sdn.ZoneSimple})

	// Without a tag, the lowest free number of the pool, owned by the
	// vnet and charged to its tenant.
	v1 := x.vnet(sdn.Vnet{ID: "v1", Zone: "vx", Tenant: "acme"}, "al-1")
	if v1.Tag != 100 || v1.AllocationID != "al-1" {
		t.Fatalf("v1 %+v", v1)
	}
	a := x.allocation("al-1")
	if a == nil || a.Kind != PoolVNI || a.PoolID != "vnis" || a.Number != 100 || a.Owner != "sdn:vnet/v1" || a.Tenant != "acme" || a.Name != "v1" {
		t.Fatalf("allocation %+v", a)
	}
	if u := usage(t, x.f, "acme"); u.Amounts[quota.VNIs] != 1 {
		t.Fatalf("usage %+v", u)
	}
	// A given tag is reserved in the pool exactly.
	v2 := x.vnet(sdn.Vnet{ID: "v2", Zone: "vx", Tag: 150}, "al-2")
	if v2.Tag != 150 || x.allocation("al-2").Number != 150 {
		t.Fatalf("v2 %+v", v2)
	}
	x.refused(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v3", Zone: "vx", Tag: 500}, Create: true, AllocationID: "al-3"}, ipam.ErrOutside, "tag")
	// VNIs are unique across all vxlan zones; the pool of another zone
	// passes over numbers vnets elsewhere hold.
	x.refused(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v3", Zone: "vx2", Tag: 150}, Create: true}, ErrConflict, "tag")
	x.vnet(sdn.Vnet{ID: "v3", Zone: "vx2", Tag: 101}, "")
	v4 := x.vnet(sdn.Vnet{ID: "v4", Zone: "vx"}, "al-4")
	if v4.Tag != 102 {
		t.Fatalf("v4 took %d, want 102 (101 is v3's)", v4.Tag)
	}
	if _, pools, _ := x.store().Pools(nil, PoolVNI); len(pools) != 1 || pools[0].Utilization.Used != "3" {
		t.Fatalf("pool after passing over 101: %+v", pools[0].Utilization)
	}
	// The tenant's vnis quota applies.
	requireExceeded(t, x.refused(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v5", Zone: "vx", Tenant: "acme", Tag: 160}, Create: true, AllocationID: "al-5"}, quota.ErrExceeded, "quota"),
		"tenant acme", quota.VNIs, 1, 1, 1)
	// VLAN IDs are unique within a zone only.
	x.vnet(sdn.Vnet{ID: "l1", Zone: "vl", Tenant: "acme"}, "al-l1")
	x.vnet(sdn.Vnet{ID: "l2", Zone: "vl2", Tag: 10}, "")
	x.refused(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "l3", Zone: "vl2", Tag: 10}, Create: true}, ErrConflict, "tag")
	// A zone that gains a pool leaves its vnets' tags as they are until
	// they change.
	x.ok(&SDNZonePutRequest{Zone: sdn.Zone{ID: "vl2", Type: sdn.ZoneVLAN, Pool: "vlans"}})
	if l2 := x.ok(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "l2", Zone: "vl2", Tag: 10, Alias: "db"}}).(*SDNVnet); l2.AllocationID != "" || l2.Alias != "db" {
		t.Fatalf("l2 %+v", l2)
	}
	requireExceeded(t, x.refused(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "l3", Zone: "vl", Tenant: "acme"}, Create: true, AllocationID: "al-l3"}, quota.ErrExceeded, "quota"),
		"tenant acme", quota.VLANs, 1, 1, 1)
	// Simple zones take no tag; zones without pools need one.
	x.refused(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "s1", Zone: "s", Tag: 5}, Create: true}, ErrInvalid, "tag")
	x.refused(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v6", Zone: "vx2"}, Create: true}, ErrInvalid, "tag")
	x.refused(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v6", Zone: "nope"}, Create: true}, ErrNotFound, "zone")
	x.refused(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v6", Zone: "vx"}, Create: true}, ErrInvalid, "allocation_id")
	x.refused(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v1", Zone: "vx"}, Create: true, AllocationID: "x"}, ErrConflict, "id")
	x.refused(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v9", Zone: "vx"}, AllocationID: "x"}, ErrNotFound, "")
	x.refused(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v_9", Zone: "vx"}, Create: true}, ErrInvalid, "id")
	x.refused(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v9", Zone: "vx"}, Create: true, AllocationID: "al-1"}, ErrConflict, "allocation_id")

	// An update without a tag keeps the tag and its allocation.
	up := x.ok(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v1", Zone: "vx", Tenant: "acme", Alias: "web"}, AllocationID: "al-x"}).(*SDNVnet)
	if up.Tag != 100 || up.AllocationID != "al-1" || up.Alias != "web" || up.CreateIndex != v1.CreateIndex {
		t.Fatalf("updated %+v", up)
	}
	// A new tag releases the old one; moving to another tenant moves the
	// charge.
	up = x.ok(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v1", Zone: "vx", Tag: 120}, AllocationID: "al-1b"}).(*SDNVnet)
	if up.Tag != 120 || up.AllocationID != "al-1b" || x.allocation("al-1") != nil {
		t.Fatalf("retagged %+v", up)
	}
	if u := usage(t, x.f, "acme"); u.Amounts[quota.VNIs] != 0 {
		t.Fatalf("acme still holds %+v", u)
	}
	up = x.ok(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v1", Zone: "vx", Tenant: "acme"}, AllocationID: "al-1c"}).(*SDNVnet)
	if up.Tag != 120 || up.AllocationID != "al-1c" || x.allocation("al-1c").Tenant != "acme" {
		t.Fatalf("moved %+v", up)
	}
	if u := usage(t, x.f, "acme"); u.Amounts[quota.VNIs] != 1 {
		t.Fatalf("acme holds %+v", u)
	}
	// Deleting releases; a subnet blocks it.
	x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: "p1", Prefix: "10.1.0.0/24"}})
	x.ok(&SDNSubnetPutRequest{Subnet: sdn.Subnet{ID: "s1", Vnet: "v1", PrefixID: "p1"}, Create: true})
	x.refused(&SDNVnetDeleteRequest{ID: "v1"}, ErrConflict, "id")
	x.ok(&SDNSubnetDeleteRequest{ID: "s1"})
	x.ok(&SDNVnetDeleteRequest{ID: "v1"})
	if x.allocation("al-1c") != nil {
		t.Fatal("deleting the vnet kept its allocation")
	}
	if u := usage(t, x.f, "acme"); u.Amounts[quota.VNIs] != 0 {
		t.Fatalf("acme holds %+v", u)
	}
	x.refused(&SDNVnetDeleteRequest{ID: "v1"}, ErrNotFound, "")
	// The vnet's tag cannot be released through IPAM under it.
	x.refused(&IDReleaseRequest{Kind: PoolVNI, ID: "al-2"}, ErrConflict, "id")
	x.ok(&SDNVnetDeleteRequest{ID: "v2"})
	testSnapshotRestore(t, x.f)
}

func TestFSM_SDNSubnets(t *testing.T) {
	x := newSDNFixture(t)
	x.zone(sdn.Zone{ID: "s", Type: sdn.ZoneSimple})
	x.vnet(sdn.Vnet{ID: "v1", Zone: "s"}, "")
	x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: "p1", Prefix: "10.1.0.0/24"}})
	x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: "p2", Prefix: "10.2.0.0/24"}})
	s := x.ok(&SDNSubnetPutRequest{Subnet: sdn.Subnet{ID: "s1", Vnet: "v1", PrefixID: "p1", Gateway: "10.1.0.1", SNAT: true}, Create: true}).(*SDNSubnet)
	if s.CIDR != "10.1.0.0/24" {
		t.Fatalf("subnet %+v", s)
	}
	x.refused(&SDNSubnetPutRequest{Subnet: sdn.Subnet{ID: "s2", Vnet: "nope", PrefixID: "p2"}, Create: true}, ErrNotFound, "vnet")
	x.refused(&SDNSubnetPutRequest{Subnet: sdn.Subnet{ID: "s2", Vnet: "v1", PrefixID: "nope"}, Create: true}, ErrNotFound, "prefix_id")
	x.refused(&SDNSubnetPutRequest{Subnet: sdn.Subnet{ID: "s2", Vnet: "v1", PrefixID: "p2", CIDR: "10.3.0.0/24"}, Create: true}, ErrInvalid, "cidr")
	x.refused(&SDNSubnetPutRequest{Subnet: sdn.Subnet{ID: "s2", Vnet: "v1", PrefixID: "p2", Gateway: "10.1.0.1"}, Create: true}, ErrInvalid, "gateway")
	x.refused(&SDNSubnetPutRequest{Subnet: sdn.Subnet{ID: "s2", Vnet: "v1", PrefixID: "p1"}, Create: true}, ErrConflict, "prefix_id")
	x.refused(&SDNSubnetPutRequest{Subnet: sdn.Subnet{ID: "s1", Vnet: "v1", PrefixID: "p1"}, Create: true}, ErrConflict, "id")
	x.refused(&SDNSubnetPutRequest{Subnet: sdn.Subnet{ID: "s2", Vnet: "v1", PrefixID: "p2"}}, ErrNotFound, "")
	// The CIDR may be given when it is the prefix's; an update keeps the
	// history.
	up := x.ok(&SDNSubnetPutRequest{Subnet: sdn.Subnet{ID: "s1", Vnet: "v1", PrefixID: "p1", CIDR: "10.1.0.0/24"}}).(*SDNSubnet)
	if up.CreateIndex != s.CreateIndex || up.Gateway != "" || up.ModifyIndex != x.idx {
		t.Fatalf("updated %+v", up)
	}
	// The prefix cannot go while a subnet is it.
	x.refused(&PrefixDeleteRequest{ID: "p1"}, ErrConflict, "id")
	x.ok(&SDNSubnetDeleteRequest{ID: "s1"})
	x.refused(&SDNSubnetDeleteRequest{ID: "s1"}, ErrNotFound, "")
	x.ok(&PrefixDeleteRequest{ID: "p1"})
}

// TestFSM_SDNTagNotReleasedUnderVnet: a vnet's VNI cannot be released
// through IPAM while the vnet holds it, or it could be handed out again.
func TestFSM_SDNTagNotReleasedUnderVnet(t *testing.T) {
	x := newSDNFixture(t)
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "vnis", Kind: PoolVNI, Name: "vnis", Ranges: []ipam.IDRange{{First: 100, Last: 199}}}})
	x.zone(sdn.Zone{ID: "vx", Type: sdn.ZoneVXLAN, Pool: "vnis"})
	x.vnet(sdn.Vnet{ID: "v1", Zone: "vx"}, "al-1")
	x.refused(&IDReleaseRequest{Kind: PoolVNI, ID: "al-1"}, ErrConflict, "id")
	x.ok(&SDNVnetDeleteRequest{ID: "v1"})
	if a := x.allocation("al-1"); a != nil {
		t.Fatalf("deleting the vnet left its allocation %+v", a)
	}
}

func TestFSM_SDNAllowsAndHosts(t *testing.T) {
	x := newSDNFixture(t)
	a := x.ok(&SDNAllowPutRequest{Allow: sdn.Allow{ID: "a1", From: "tenant:acme", To: "vnet:v2"}, Create: true}).(*SDNAllow)
	x.refused(&SDNAllowPutRequest{Allow: sdn.Allow{ID: "a1", From: "tenant:acme", To: "vnet:v2"}, Create: true}, ErrConflict, "id")
	x.refused(&SDNAllowPutRequest{Allow: sdn.Allow{ID: "a2", From: "acme", To: "vnet:v2"}, Create: true}, ErrInvalid, "from")
	x.refused(&SDNAllowPutRequest{Allow: sdn.Allow{ID: "a2", From: "tenant:acme", To: "vnet:v2"}}, ErrNotFound, "")
	up := x.ok(&SDNAllowPutRequest{Allow: sdn.Allow{ID: "a1", From: "tenant:acme", To: "vnet:v3"}}).(*SDNAllow)
	if up.CreateIndex != a.CreateIndex || up.To != "vnet:v3" {
		t.Fatalf("updated %+v", up)
	}
	x.ok(&SDNAllowDeleteRequest{ID: "a1"})
	x.refused(&SDNAllowDeleteRequest{ID: "a1"}, ErrNotFound, "")

	h := x.ok(&SDNHostPutRequest{Host: sdn.Host{Name: "pve1", Address: "192.0.2.1"}}).(*SDNHost)
	if h.EnrolledAt != Timestamp(x.idx*1000) || h.CreateIndex != x.idx {
		t.Fatalf("enrolled %+v", h)
	}
	x.refused(&SDNHostPutRequest{Host: sdn.Host{Name: "pve2", Address: "nope"}}, ErrInvalid, "address")
	x.refused(&SDNHostPutRequest{Host: sdn.Host{Name: "pve2", Address: "192.0.2.2", Uplink: "an-uplink-name-too-long"}}, ErrInvalid, "uplink")
	x.report("pve1", 0, SDNStateApplied, "")
	// Enrolling again updates the host and keeps its state and history.
	h2 := x.ok(&SDNHostPutRequest{Host: sdn.Host{Name: "pve1", Address: "192.0.2.9", MTU: 9000}}).(*SDNHost)
	if h2.CreateIndex != h.CreateIndex || h2.CreatedAt != h.CreatedAt || h2.EnrolledAt != Timestamp(x.idx*1000) || h2.Address != "192.0.2.9" {
		t.Fatalf("re-enrolled %+v", h2)
	}
	if st := x.state("pve1"); st.State != SDNStateApplied || st.ReportedAt == 0 {
		t.Fatalf("state after re-enrolling %+v", st)
	}
	x.refused(&SDNReportRequest{Host: "pve2", Version: 1, State: SDNStateApplied}, ErrNotFound, "host")
	x.refused(&SDNReportRequest{Host: "pve1", Version: 1, State: "done"}, ErrInvalid, "state")
	x.refused(&SDNReportRequest{Host: "pve1", Version: 1, State: SDNStateApplied, Drift: make([]string, maxSDNDrift+1)}, ErrInvalid, "drift")
	x.refused(&SDNReportRequest{Host: "pve1", Version: 1, State: SDNStateApplied, Actions: -1}, ErrInvalid, "actions")
	x.ok(&SDNHostDeleteRequest{Name: "pve1"})
	x.refused(&SDNHostDeleteRequest{Name: "pve1"}, ErrNotFound, "")
	if _, hs, _ := x.store().SDNHosts(nil); len(hs) != 0 {
		t.Fatalf("hosts left %v", hs)
	}
}

// vxlanIntent sets up two hosts and a vxlan zone with one vnet.
func vxlanIntent(x *sdnFixture) {
	x.host("pve1", "192.0.2.1")
	x.host("pve2", "192.0.2.2")
	x.zone(sdn.Zone{ID: "vx", Type: sdn.ZoneVXLAN})
	x.vnet(sdn.Vnet{ID: "v1", Zone: "vx", Tag: 100}, "")
}

func TestFSM_SDNRolloutCommit(t *testing.T) {
	x := newSDNFixture(t)
	x.refused(&SDNApplyRequest{RolloutID: "r0"}, ErrConflict, "")
	x.refused(&SDNApplyRequest{}, ErrInvalid, "rollout_id")
	vxlanIntent(x)

	var ws memdb.WatchSet = memdb.NewWatchSet()
	_, view, err := x.store().SDNHostPlan(ws, "pve1")
	if err != nil || view.Version != 0 || view.Plan.Links == nil || len(view.Plan.Links) != 0 || view.Plan.Host != "pve1" {
		t.Fatalf("plan before any apply: %+v, %v", view, err)
	}
	res := x.apply1("r1")
	r := res.Rollout
	if res.NoChange || res.Version != 1 || r == nil || r.Version != 1 || r.Phase != SDNPhasePreparing || r.ID != "r1" {
		t.Fatalf("apply: %+v", res)
	}
	if !slices.Equal(r.Hosts, []string{"pve1", "pve2"}) || len(r.Prepared) != 0 || r.Previous["pve1"] != 0 || r.Deadline != Timestamp(1e15) || r.CreatedAt != Timestamp(x.idx*1000) {
		t.Fatalf("rollout %+v", r)
	}
	if len(r.Changes["pve1"]) == 0 || r.Changes["pve1"][0].Op != sdn.OpAdd {
		t.Fatalf("changes %+v", r.Changes)
	}
	if !fired(ws) {
		t.Fatal("the apply did not wake a watcher of the host's plan")
	}
	_, view, _ = x.store().SDNHostPlan(nil, "pve1")
	if view.Version != 1 || view.Committed != 0 || view.RolloutID != "r1" || view.Phase != SDNPhasePreparing || view.Plan.Version != 1 {
		t.Fatalf("plan view %+v", view)
	}
	names := []string{}
	for _, l := range view.Plan.Links {
		names = append(names, l.Name)
		if l.Name == "vxlan_v1" && (l.VNI != 100 || !slices.Equal(l.Peers, []string{"192.0.2.2"})) {
			t.Fatalf("vxlan link %+v", l)
		}
	}
	if !slices.Equal(names, []string{"v1", "vxlan_v1"}) {
		t.Fatalf("links %v", names)
	}
	_, p, _ := x.store().SDNPlan(nil, "pve2", 1)
	if p == nil || p.Version != 1 || p.Host != "pve2" {
		t.Fatalf("pve2 plan %+v", p)
	}
	if _, v, _ := x.store().SDNVersion(nil); v != 1 {
		t.Fatalf("SDNVersion %d", v)
	}
	if _, a, _ := x.store().SDNActiveRollout(nil); a == nil || a.ID != "r1" {
		t.Fatalf("active %+v", a)
	}

	// One rollout at a time; host deletion waits.
	x.refused(&SDNApplyRequest{RolloutID: "r2"}, ErrConflict, "")
	x.refused(&SDNHostDeleteRequest{Name: "pve1"}, ErrConflict, "name")
	// Reports of other versions change only the host's state.
	x.report("pve1", 0, SDNStateApplied, "")
	if r := x.rollout("r1"); len(r.Prepared) != 0 {
		t.Fatalf("a report of version 0 prepared %+v", r)
	}
	st := x.report("pve1", 1, SDNStateApplied, "")
	if st.Applied != 1 || st.Target != 1 || st.Committed != 0 {
		t.Fatalf("pve1 %+v", st)
	}
	x.report("pve1", 1, SDNStateApplied, "") // again: no change
	if r := x.rollout("r1"); !slices.Equal(r.Prepared, []string{"pve1"}) || r.Phase != SDNPhasePreparing {
		t.Fatalf("after pve1: %+v", r)
	}
	st = x.report("pve2", 1, SDNStateApplied, "")
	if st.Committed != 1 || st.Target != 1 {
		t.Fatalf("pve2 after the commit %+v", st)
	}
	r = x.rollout("r1")
	if r.Phase != SDNPhaseCommitted || r.DoneAt != Timestamp(x.idx*1000) || !slices.Equal(r.Prepared, []string{"pve1", "pve2"}) {
		t.Fatalf("committed %+v", r)
	}
	if st := x.state("pve1"); st.Committed != 1 {
		t.Fatalf("pve1 %+v", st)
	}
	if _, v, _ := x.store().SDNCommittedVersion(nil); v != 1 {
		t.Fatalf("committed version %d", v)
	}

	// Nothing changed: no rollout.
	res = x.apply1("r2")
	if !res.NoChange || res.Version != 1 || res.Rollout != nil {
		t.Fatalf("second apply %+v", res)
	}
	if _, rs, _ := x.store().SDNRollouts(nil); len(rs) != 1 {
		t.Fatalf("%d rollouts", len(rs))
	}
	// A new host with nothing to hold changes nothing either.
	x.ok(&SDNZonePutRequest{Zone: sdn.Zone{ID: "vx", Type: sdn.ZoneVXLAN, Nodes: []string{"pve1", "pve2"}}})
	x.host("pve3", "192.0.2.3")
	if res := x.apply1("r2"); !res.NoChange {
		t.Fatalf("apply with an idle new host %+v", res)
	}
	// A change makes version 2, diffed against version 1; the new host
	// takes part with its empty plan.
	x.ok(&SDNZonePutRequest{Zone: sdn.Zone{ID: "vx", Type: sdn.ZoneVXLAN, MTU: 1400, Nodes: []string{"pve1", "pve2"}}})
	res = x.apply1("r2")
	r = res.Rollout
	if r == nil || r.Version != 2 || !slices.Equal(r.Hosts, []string{"pve1", "pve2", "pve3"}) || r.Previous["pve1"] != 1 || r.Previous["pve3"] != 0 {
		t.Fatalf("apply of the MTU change %+v", res)
	}
	if _, ok := r.Changes["pve3"]; ok {
		t.Fatalf("pve3 has changes %+v", r.Changes["pve3"])
	}
	fields := fmt.Sprint(r.Changes["pve1"])
	if !strings.Contains(fields, "mtu: 1450 -> 1400") {
		t.Fatalf("changes of pve1: %s", fields)
	}
	for _, h := range []string{"pve1", "pve2", "pve3"} {
		x.report(h, 2, SDNStateApplied, "")
	}
	if r := x.rollout("r2"); r.Phase != SDNPhaseCommitted {
		t.Fatalf("r2 %+v", r)
	}
	testSnapshotRestore(t, x.f)
}

func TestFSM_SDNRolloutAbort(t *testing.T) {
	x := newSDNFixture(t)
	vxlanIntent(x)
	x.apply1("r1")
	x.report("pve1", 1, SDNStateApplied, "")
	x.report("pve2", 1, SDNStateApplied, "")

	// A host that fails aborts the rollout and every host goes back.
	x.ok(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v1", Zone: "vx", Tag: 200}})
	x.apply1("r2")
	x.report("pve1", 2, SDNStateApplied, "")
	st := x.report("pve2", 2, SDNStateFailed, "create vxlan_v1: file exists")
	if st.Target != 1 || st.Committed != 1 || st.Applied != 1 || st.State != SDNStateFailed || st.Error != "create vxlan_v1: file exists" {
		t.Fatalf("pve2 %+v", st)
	}
	r := x.rollout("r2")
	if r.Phase != SDNPhaseAborted || r.Reason != "host pve2: create vxlan_v1: file exists" || r.DoneAt == 0 {
		t.Fatalf("r2 %+v", r)
	}
	if st := x.state("pve1"); st.Target != 1 || st.Applied != 2 {
		t.Fatalf("pve1 %+v", st)
	}
	_, view, _ := x.store().SDNHostPlan(nil, "pve1")
	if view.Version != 1 || view.RolloutID != "r1" || view.Phase != SDNPhaseCommitted || view.Plan.Version != 1 {
		t.Fatalf("pve1 after the abort: %+v", view)
	}
	// The failed version's plans stay readable; reports after the end
	// change nothing but the host's state.
	if _, p, _ := x.store().SDNPlan(nil, "pve2", 2); p == nil || p.Links[1].VNI != 200 {
		t.Fatalf("plan 2 %+v", p)
	}
	x.report("pve2", 2, SDNStateApplied, "")
	if r := x.rollout("r2"); r.Phase != SDNPhaseAborted {
		t.Fatalf("r2 %+v", r)
	}
	if _, v, _ := x.store().SDNVersion(nil); v != 2 {
		t.Fatalf("version %d", v)
	}
	if _, v, _ := x.store().SDNCommittedVersion(nil); v != 1 {
		t.Fatalf("committed version %d", v)
	}

	// The next apply diffs against the committed version 1 and takes
	// version 3; the deadline loop aborts it.
	res := x.apply1("r3")
	if res.Version != 3 || !strings.Contains(fmt.Sprint(res.Rollout.Changes["pve1"]), "vni: 100 -> 200") {
		t.Fatalf("r3 %+v", res.Rollout)
	}
	x.refused(&SDNRolloutAbortRequest{RolloutID: "nope"}, ErrNotFound, "")
	x.refused(&SDNRolloutAbortRequest{RolloutID: "r1"}, ErrConflict, "id")
	r = x.ok(&SDNRolloutAbortRequest{RolloutID: "r3", Reason: "deadline passed"}).(*SDNRollout)
	if r.Phase != SDNPhaseAborted || r.Reason != "deadline passed" {
		t.Fatalf("aborted %+v", r)
	}
	x.refused(&SDNRolloutAbortRequest{RolloutID: "r3"}, ErrConflict, "id")
	for _, h := range []string{"pve1", "pve2"} {
		if st := x.state(h); st.Target != 1 || st.Committed != 1 {
			t.Fatalf("%s %+v", h, st)
		}
	}
	if _, a, _ := x.store().SDNActiveRollout(nil); a != nil {
		t.Fatalf("active %+v", a)
	}
	if _, rs, _ := x.store().SDNRollouts(nil); len(rs) != 3 || rs[0].ID != "r3" || rs[2].ID != "r1" {
		t.Fatalf("rollouts newest first: %v", rs)
	}
	x.refused(&SDNApplyRequest{RolloutID: "r3"}, ErrConflict, "rollout_id")
	testSnapshotRestore(t, x.f)
}

func TestFSM_SDNApplyCompileError(t *testing.T) {
	x := newSDNFixture(t)
	x.ok(&SDNHostPutRequest{Host: sdn.Host{Name: "pve1", Address: "192.0.2.1"}})
	x.zone(sdn.Zone{ID: "vl", Type: sdn.ZoneVLAN})
	x.vnet(sdn.Vnet{ID: "v1", Zone: "vl", Tag: 10}, "")
	x.refused(&SDNApplyRequest{RolloutID: "r1"}, ErrInvalid, "hosts[pve1].uplink")
}

func TestFSM_SDNPrunePlans(t *testing.T) {
	x := newSDNFixture(t)
	vxlanIntent(x)
	x.apply1("r1")
	x.report("pve1", 1, SDNStateApplied, "")
	x.report("pve2", 1, SDNStateApplied, "")
	// Aborted rollouts leave plans no host holds.
	for i := 2; i <= 14; i++ {
		x.ok(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v1", Zone: "vx", Tag: 100 + i}})
		x.apply1(fmt.Sprintf("r%d", i))
		x.ok(&SDNRolloutAbortRequest{RolloutID: fmt.Sprintf("r%d", i)})
	}
	var kept []uint64
	for v := uint64(1); v <= 14; v++ {
		if _, p, _ := x.store().SDNPlan(nil, "pve1", v); p != nil {
			kept = append(kept, v)
		}
	}
	// Version 1 is committed; 5..14 are the newest ten.
	if want := []uint64{1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}; !slices.Equal(kept, want) {
		t.Fatalf("plans kept %v, want %v", kept, want)
	}
	// Deleting a host drops its plans.
	x.ok(&SDNHostDeleteRequest{Name: "pve2"})
	if _, p, _ := x.store().SDNPlan(nil, "pve2", 1); p != nil {
		t.Fatal("plan of a deleted host kept")
	}
	if _, p, _ := x.store().SDNPlan(nil, "pve1", 1); p == nil {
		t.Fatal("plan of another host dropped")
	}
}

func TestFSM_SDNIdempotentApply(t *testing.T) {
	x := newSDNFixture(t)
	vxlanIntent(x)
	meta := WriteMeta{Now: 5e6, Actor: "alice", IdempotencyKey: "k1", RequestHash: "h1"}
	first := x.apply(&SDNApplyRequest{WriteMeta: meta, RolloutID: "r1", Deadline: 9})
	if first.Err != nil || first.Replayed {
		t.Fatalf("first %+v", first)
	}
	// A retry after a timeout, stamped anew by the leader, returns the
	// first result and starts nothing.
	again := x.apply(&SDNApplyRequest{WriteMeta: meta, RolloutID: "r1-retry", Deadline: 10})
	if again.Err != nil || !again.Replayed {
		t.Fatalf("retry %+v", again)
	}
	var got SDNApplyResult
	if err := json.Unmarshal(again.Value.(json.RawMessage), &got); err != nil || got.Rollout == nil || got.Rollout.ID != "r1" || got.Version != 1 {
		t.Fatalf("replayed %s: %v", again.Value, err)
	}
	if _, rs, _ := x.store().SDNRollouts(nil); len(rs) != 1 {
		t.Fatalf("%d rollouts after a retry", len(rs))
	}
	meta.RequestHash = "h2"
	x.refused(&SDNApplyRequest{WriteMeta: meta, RolloutID: "r9"}, ErrIdempotencyMismatch, "")
}

func TestFSM_SDNReadsAfterRestore(t *testing.T) {
	x := newSDNFixture(t)
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "vnis", Kind: PoolVNI, Name: "vnis", Ranges: []ipam.IDRange{{First: 100, Last: 199}}}})
	x.host("pve1", "192.0.2.1")
	x.host("pve2", "192.0.2.2")
	x.zone(sdn.Zone{ID: "vx", Type: sdn.ZoneVXLAN, Pool: "vnis"})
	x.zone(sdn.Zone{ID: "s", Type: sdn.ZoneSimple})
	x.vnet(sdn.Vnet{ID: "v1", Zone: "vx", Tenant: "acme"}, "al-1")
	x.vnet(sdn.Vnet{ID: "v2", Zone: "s", Tenant: "other"}, "")
	x.ok(&PrefixCreateRequest{Prefix: Prefix{ID: "p1", Prefix: "10.1.0.0/24"}})
	x.ok(&SDNSubnetPutRequest{Subnet: sdn.Subnet{ID: "s1", Vnet: "v2", PrefixID: "p1", Gateway: "10.1.0.1", SNAT: true}, Create: true})
	x.ok(&SDNAllowPutRequest{Allow: sdn.Allow{ID: "a1", From: "tenant:acme", To: "vnet:v2"}, Create: true})
	x.apply1("r1")
	x.report("pve1", 1, SDNStateApplied, "")

	f2 := testSnapshotRestore(t, x.f)
	a, b := x.store(), f2.State()
	reads := []func(*Store) (uint64, any, error){
		func(s *Store) (uint64, any, error) { return s.SDNZones(nil) },
		func(s *Store) (uint64, any, error) { return s.SDNVnets(nil) },
		func(s *Store) (uint64, any, error) { return s.SDNSubnets(nil) },
		func(s *Store) (uint64, any, error) { return s.SDNAllows(nil) },
		func(s *Store) (uint64, any, error) { return s.SDNHosts(nil) },
		func(s *Store) (uint64, any, error) { return s.SDNHostStates(nil) },
		func(s *Store) (uint64, any, error) { return s.SDNIntent(nil) },
		func(s *Store) (uint64, any, error) { return s.SDNRollouts(nil) },
		func(s *Store) (uint64, any, error) { return s.SDNHostPlan(nil, "pve1") },
		func(s *Store) (uint64, any, error) { return s.SDNHostPlan(nil, "pve2") },
		func(s *Store) (uint64, any, error) { return s.SDNPlan(nil, "pve2", 1) },
		func(s *Store) (uint64, any, error) { return s.SDNActiveRollout(nil) },
	}
	for i, read := range reads {
		ia, va, ea := read(a)
		ib, vb, eb := read(b)
		ja, _ := json.Marshal(va)
		jb, _ := json.Marshal(vb)
		if ea != nil || eb != nil || ia != ib || ia == 0 || !bytes.Equal(ja, jb) {
			t.Errorf("read %d differs after restore: %d %s %v / %d %s %v", i, ia, ja, ea, ib, jb, eb)
		}
	}
	_, in, _ := b.SDNIntent(nil)
	if len(in.Zones) != 2 || len(in.Vnets) != 2 || in.Vnets[0].Tag != 100 || len(in.Subnets) != 1 || in.Subnets[0].CIDR != "10.1.0.0/24" || len(in.Hosts) != 2 {
		t.Fatalf("intent %+v", in)
	}
	// The plan compiled from the restored intent is the stored one.
	plans, err := sdn.Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	_, stored, _ := b.SDNPlan(nil, "pve1", 1)
	p := plans["pve1"]
	p.Version = 1
	if !reflect.DeepEqual(*stored, p) {
		t.Fatalf("stored plan %+v, compiled %+v", *stored, p)
	}
	// The restored FSM goes on the same way.
	for _, f := range []*FSM{x.f, f2} {
		applyOK(t, f, x.idx+1, &SDNReportRequest{WriteMeta: WriteMeta{Now: 1}, Host: "pve2", Version: 1, State: SDNStateApplied})
	}
	requireSameDump(t, x.f, f2)
	if _, r, _ := f2.State().SDNRollout(nil, "r1"); r.Phase != SDNPhaseCommitted {
		t.Fatalf("r1 after restore %+v", r)
	}
}

// TestFSM_VNIPoolsAndVnetTags: a VNI pool may not take in, when created or
// changed, the tag of a vnet it did not hand out (a vnet of a zone without
// a pool), which it would hand out again; its own vnets' tags name the
// vnet when new ranges leave them out, and a zone's pool that runs out
// says which pool of which zone.
func TestFSM_VNIPoolsAndVnetTags(t *testing.T) {
	x := newSDNFixture(t)
	rs := func(a, b int) []ipam.IDRange { return []ipam.IDRange{{First: a, Last: b}} }
	x.zone(sdn.Zone{ID: "nopool", Type: sdn.ZoneVXLAN})
	x.vnet(sdn.Vnet{ID: "nv9", Zone: "nopool", Tag: 1005}, "")
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "ext", Kind: PoolVNI, Name: "ext", Ranges: rs(1000, 1001)}, Exclusive: true, TagRule: true})
	x.zone(sdn.Zone{ID: "zext", Type: sdn.ZoneVXLAN, Pool: "ext"})
	x.vnet(sdn.Vnet{ID: "a", Zone: "zext"}, "al-a")
	x.vnet(sdn.Vnet{ID: "b", Zone: "zext"}, "al-b")

	wide := rs(1000, 1010)
	err := x.refused(&PoolUpdateRequest{Kind: PoolVNI, ID: "ext", Ranges: &wide}, ErrConflict, "ranges")
	if !strings.Contains(err.Error(), "VNI 1005 is the tag of vnet nv9 (zone nopool), which VNI pool ext did not hand out") {
		t.Fatalf("widening: %v", err)
	}
	err = x.refused(&PoolCreateRequest{Pool: Pool{ID: "p2", Kind: PoolVNI, Name: "p2", Ranges: rs(1002, 1009)}, Exclusive: true, TagRule: true}, ErrConflict, "ranges")
	if !strings.Contains(err.Error(), "VNI 1005 is the tag of vnet nv9 (zone nopool)") {
		t.Fatalf("create: %v", err)
	}
	// A command of an earlier version, without the mark, creates it.
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "p3", Kind: PoolVNI, Name: "p3", Ranges: rs(2005, 2009)}, Exclusive: true})
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "old", Kind: PoolVNI, Name: "old", Ranges: rs(1003, 1009)}})

	// The pool's own vnets: the shrink names the vnet; a rename in the
	// same refused update does not show in the message.
	narrow, name := rs(1000, 1000), "ext-2"
	err = x.refused(&PoolUpdateRequest{Kind: PoolVNI, ID: "ext", Ranges: &narrow, Name: &name}, ErrConflict, "ranges")
	if !strings.Contains(err.Error(), "VNI 1001 of VNI pool ext is the tag of vnet b, outside the new ranges") {
		t.Fatalf("shrink: %v", err)
	}
	// Exhausted: which pool of which zone.
	err = x.refused(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "c", Zone: "zext"}, Create: true, AllocationID: "al-c"}, ipam.ErrExhausted, "tag")
	if !strings.Contains(err.Error(), "1 requested, 0 available in VNI pool ext of zone zext") {
		t.Fatalf("exhausted: %v", err)
	}
	// A vnet's tag keeps its owner and tenant; its name may change.
	err = x.refused(&IDUpdateRequest{Kind: PoolVNI, ID: "al-b", Owner: str("vm:1/net0")}, ErrConflict, "owner")
	if !strings.Contains(err.Error(), "VNI 1001 is the tag of vnet b") {
		t.Fatalf("owner: %v", err)
	}
	x.refused(&IDUpdateRequest{Kind: PoolVNI, ID: "al-b", Tenant: str("acme")}, ErrConflict, "tenant")
	x.ok(&IDUpdateRequest{Kind: PoolVNI, ID: "al-b", Name: str("b-tag"), Description: str("vnet b")})
}

// TestFSM_SDNTagRules: with TagRules, a vnet of a vxlan zone without a
// pool takes no VNI that a VNI pool holds (the pool would hand it out
// again), and a VLAN ID is unique on the uplink of every host two vlan
// zones share, when a vnet comes, takes its tag from a pool, or a zone's
// nodes change. Without the mark, the rules of earlier versions apply.
func TestFSM_SDNTagRules(t *testing.T) {
	x := newSDNFixture(t)
	rs := func(a, b int) []ipam.IDRange { return []ipam.IDRange{{First: a, Last: b}} }
	put := func(v sdn.Vnet, alloc string) *SDNVnetPutRequest {
		return &SDNVnetPutRequest{Vnet: v, Create: true, AllocationID: alloc, TagRules: true}
	}
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "p1", Kind: PoolVNI, Name: "p1", Ranges: rs(5000, 5009)}, Exclusive: true, TagRule: true})
	x.zone(sdn.Zone{ID: "ovl", Type: sdn.ZoneVXLAN, Pool: "p1"})
	x.zone(sdn.Zone{ID: "ovl2", Type: sdn.ZoneVXLAN})

	// VNIs: one inside a pool is refused to a zone without a pool, by
	// create and by a move; one outside every pool is fine.
	err := x.refused(put(sdn.Vnet{ID: "x3", Zone: "ovl2", Tag: 5002}, "al-x3"), ErrConflict, "tag")
	if !strings.Contains(err.Error(), "VNI 5002 lies in VNI pool p1, which would hand it out again") {
		t.Fatalf("vnet in a pool's range: %v", err)
	}
	x.ok(put(sdn.Vnet{ID: "x4", Zone: "ovl2", Tag: 6000}, "al-x4"))
	dup := x.ok(put(sdn.Vnet{ID: "dup", Zone: "ovl"}, "al-dup")).(*SDNVnet)
	x.refused(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "dup", Zone: "ovl2", Tag: dup.Tag}, AllocationID: "al-dup2", TagRules: true}, ErrConflict, "tag")
	// An earlier version's command, without the mark, is applied as then.
	x.ok(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "x5", Zone: "ovl2", Tag: 5003}, Create: true, AllocationID: "al-x5"})

	// VLAN IDs: zones on every host share the uplinks; zones on other
	// nodes do not.
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "tiny", Kind: PoolVLAN, Name: "tiny", Ranges: []ipam.IDRange{{First: 5, Last: 5}, {First: 7, Last: 7}}}})
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "g5", Kind: PoolVLAN, Name: "g5", Ranges: rs(5, 8)}})
	x.zone(sdn.Zone{ID: "vl", Type: sdn.ZoneVLAN, Pool: "tiny"})
	x.zone(sdn.Zone{ID: "vl5", Type: sdn.ZoneVLAN, Pool: "g5"})
	x.zone(sdn.Zone{ID: "east", Type: sdn.ZoneVLAN, Nodes: []string{"pve3"}})
	x.zone(sdn.Zone{ID: "west", Type: sdn.ZoneVLAN, Nodes: []string{"pve4"}})
	if v := x.ok(put(sdn.Vnet{ID: "v1", Zone: "vl"}, "al-v1")).(*SDNVnet); v.Tag != 5 {
		t.Fatalf("v1 took %d", v.Tag)
	}
	if v := x.ok(put(sdn.Vnet{ID: "v5", Zone: "vl5"}, "al-v5")).(*SDNVnet); v.Tag != 6 {
		t.Fatalf("v5 took %d, not the lowest ID free on the uplinks it shares with zone vl", v.Tag)
	}
	err = x.refused(put(sdn.Vnet{ID: "v6", Zone: "east", Tag: 5}, ""), ErrConflict, "tag")
	if !strings.Contains(err.Error(), "VLAN ID 5 is already the tag of vnet v1") {
		t.Fatalf("a VLAN ID of a zone on every host: %v", err)
	}
	x.ok(put(sdn.Vnet{ID: "e9", Zone: "east", Tag: 9}, ""))
	x.ok(put(sdn.Vnet{ID: "w9", Zone: "west", Tag: 9}, "")) // another host's uplink
	// A zone whose nodes come to meet another's with the same ID.
	err = x.refused(&SDNZonePutRequest{Zone: sdn.Zone{ID: "west", Type: sdn.ZoneVLAN, Nodes: []string{"pve3", "pve4"}}, TagRules: true}, ErrConflict, "nodes")
	if !strings.Contains(err.Error(), "VLAN ID 9 of vnet w9 would share a host's uplink with vnet e9") {
		t.Fatalf("nodes: %v", err)
	}
	x.ok(&SDNZonePutRequest{Zone: sdn.Zone{ID: "west", Type: sdn.ZoneVLAN, Nodes: []string{"pve4", "pve5"}}, TagRules: true})
	// Without the mark, as before: only within the zone.
	x.ok(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v7", Zone: "east", Tag: 5}, Create: true})

	// A clash an earlier version left (v7 and v1 on pve3's uplink) does
	// not refuse changes that do not bring it: an alias, a move of the
	// zone's nodes that keeps or narrows it, nodes given in another order.
	x.ok(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "v7", Zone: "east", Tag: 5, Alias: "renamed"}, TagRules: true})
	x.ok(&SDNZonePutRequest{Zone: sdn.Zone{ID: "east", Type: sdn.ZoneVLAN, Nodes: []string{"pve3"}, MTU: 1400}, TagRules: true})
	x.ok(&SDNZonePutRequest{Zone: sdn.Zone{ID: "west", Type: sdn.ZoneVLAN, Nodes: []string{"pve5", "pve4"}}, TagRules: true})
	// A vxlan zone that drops its pool: its vnets keep their VNIs, and may
	// still change.
	x.ok(&SDNZonePutRequest{Zone: sdn.Zone{ID: "ovl", Type: sdn.ZoneVXLAN}, TagRules: true})
	x.ok(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "dup", Zone: "ovl", Alias: "renamed"}, AllocationID: "al-dup3", TagRules: true})
}

// TestFSM_SDNVnetTenantKeepsItsTag: with TagRules, a vnet that changes
// tenant alone keeps its tag's allocation (ID, name, description), which
// moves to the new tenant with its quota charge; earlier versions made a
// new allocation.
func TestFSM_SDNVnetTenantKeepsItsTag(t *testing.T) {
	x := newSDNFixture(t)
	x.ok(&PoolCreateRequest{Pool: Pool{ID: "p1", Kind: PoolVNI, Name: "p1", Ranges: []ipam.IDRange{{First: 100, Last: 199}}}, Exclusive: true, TagRule: true})
	x.zone(sdn.Zone{ID: "ovl", Type: sdn.ZoneVXLAN, Pool: "p1"})
	v := x.ok(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "web", Zone: "ovl", Tenant: "acme"}, Create: true, AllocationID: "al-1", TagRules: true}).(*SDNVnet)
	x.ok(&IDUpdateRequest{Kind: PoolVNI, ID: "al-1", Name: str("web-vni"), Description: str("kept")})
	moved := x.ok(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "web", Zone: "ovl", Tenant: "beta"}, AllocationID: "al-2", TagRules: true}).(*SDNVnet)
	if moved.AllocationID != "al-1" || moved.Tag != v.Tag {
		t.Fatalf("moved vnet %+v, want allocation al-1 and tag %d", moved, v.Tag)
	}
	_, a, err := x.store().IDAllocation(nil, PoolVNI, "al-1")
	if err != nil || a == nil || a.Tenant != "beta" || a.Name != "web-vni" || a.Description != "kept" || a.Number != v.Tag {
		t.Fatalf("allocation after the move: %+v, %v", a, err)
	}
	for tenant, want := range map[string]int64{"beta": 1, "acme": 0} {
		if u, err := x.store().UsageOf(tenant); err != nil || u.Amounts[quota.VNIs] != want {
			t.Fatalf("%s's usage %+v, %v; want %d VNIs", tenant, u, err, want)
		}
	}
	// An earlier version's command makes a new allocation, as then.
	x.ok(&SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "web", Zone: "ovl", Tenant: "acme"}, AllocationID: "al-3"})
	if _, a, _ := x.store().IDAllocation(nil, PoolVNI, "al-3"); a == nil {
		t.Fatal("an unmarked tenant change kept the allocation")
	}
}
