package client

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// Answers in the shapes docs/ipam.md gives.
var (
	testPrefix = map[string]any{"id": "p1", "prefix": "10.0.0.0/24", "vrf": "global", "status": "active", "is_pool": false,
		"parent_id": "p0", "tenant": "acme", "gateway": "10.0.0.1", "description": "lab",
		"utilization":  map[string]any{"used": 12, "size": 254, "percent": 4.72},
		"create_index": 5, "modify_index": 6, "created_at": "2025-06-01T12:00:00Z", "updated_at": "2025-06-01T12:30:00Z"}
	testAddress = map[string]any{"id": "a1", "address": "10.0.0.2", "prefix_id": "p1", "vrf": "global", "status": "active",
		"dns_name": "web1.moxxie.test", "tenant": "acme", "owner": "vm:101/net0", "create_index": 7, "modify_index": 7,
		"created_at": "2025-06-01T12:00:00Z", "updated_at": "2025-06-01T12:00:00Z"}
	testVRF   = map[string]any{"id": "blue", "tenant": "acme", "description": "d", "create_index": 3, "modify_index": 3, "created_at": "2025-06-01T12:00:00Z"}
	testRange = map[string]any{"id": "r1", "prefix_id": "p1", "start_address": "10.0.0.100", "end_address": "10.0.0.199", "create_index": 8, "created_at": "2025-06-01T12:00:00Z"}
	testGroup = map[string]any{"id": "g1", "kind": "vlan", "name": "lab", "ranges": []any{map[string]any{"first": 100, "last": 199}},
		"utilization": map[string]any{"used": 1, "size": 100, "percent": 1}, "create_index": 9, "modify_index": 9, "created_at": "2025-06-01T12:00:00Z"}
	testVLAN = map[string]any{"id": "v1", "kind": "vlan", "pool_id": "g1", "vid": 100, "name": "web", "owner": "vnet:web", "create_index": 10, "created_at": "2025-06-01T12:00:00Z"}
	testVNI  = map[string]any{"id": "n1", "kind": "vni", "pool_id": "g2", "vni": 10001, "create_index": 11, "created_at": "2025-06-01T12:00:00Z"}
	testZone = map[string]any{"id": "moxxie.test", "ttl": 60, "tenant": "acme", "create_index": 12, "created_at": "2025-06-01T12:00:00Z"}
)

// ipamFake answers every IPAM route with a canned object.
func ipamFake(t *testing.T) *fake {
	routes := map[string]func() (int, any){
		"GET /v1/ipam/vrfs":                         func() (int, any) { return 200, map[string]any{"vrfs": []any{testVRF}} },
		"POST /v1/ipam/vrfs":                        func() (int, any) { return 201, testVRF },
		"GET /v1/ipam/vrfs/blue":                    func() (int, any) { return 200, testVRF },
		"DELETE /v1/ipam/vrfs/blue":                 func() (int, any) { return 200, testVRF },
		"GET /v1/ipam/prefixes":                     func() (int, any) { return 200, map[string]any{"prefixes": []any{testPrefix}} },
		"POST /v1/ipam/prefixes":                    func() (int, any) { return 201, testPrefix },
		"GET /v1/ipam/prefixes/p1":                  func() (int, any) { return 200, testPrefix },
		"PATCH /v1/ipam/prefixes/p1":                func() (int, any) { return 200, testPrefix },
		"DELETE /v1/ipam/prefixes/p1":               func() (int, any) { return 200, testPrefix },
		"POST /v1/ipam/prefixes/p1/allocate":        func() (int, any) { return 201, map[string]any{"addresses": []any{testAddress, testAddress}} },
		"POST /v1/ipam/prefixes/p0/allocate-prefix": func() (int, any) { return 201, testPrefix },
		"GET /v1/ipam/prefixes/p1/available":        func() (int, any) { return 200, map[string]any{"available": []string{"10.0.0.3", "10.0.0.4"}} },
		"GET /v1/ipam/ip-ranges":                    func() (int, any) { return 200, map[string]any{"ip_ranges": []any{testRange}} },
		"POST /v1/ipam/ip-ranges":                   func() (int, any) { return 201, testRange },
		"DELETE /v1/ipam/ip-ranges/r1":              func() (int, any) { return 200, testRange },
		"GET /v1/ipam/addresses":                    func() (int, any) { return 200, map[string]any{"addresses": []any{testAddress}, "next": "c2"} },
		"POST /v1/ipam/addresses":                   func() (int, any) { return 201, map[string]any{"addresses": []any{testAddress}} },
		"GET /v1/ipam/addresses/a1":                 func() (int, any) { return 200, testAddress },
		"PATCH /v1/ipam/addresses/a1":               func() (int, any) { return 200, testAddress },
		"DELETE /v1/ipam/addresses/a1": func() (int, any) {
			return 200, map[string]any{"address": testAddress, "quarantined_until": "2025-06-01T12:10:00Z"}
		},
		"GET /v1/ipam/vlan-groups":                   func() (int, any) { return 200, map[string]any{"vlan_groups": []any{testGroup}} },
		"POST /v1/ipam/vlan-groups":                  func() (int, any) { return 201, testGroup },
		"GET /v1/ipam/vlan-groups/lab":               func() (int, any) { return 200, testGroup },
		"DELETE /v1/ipam/vlan-groups/lab":            func() (int, any) { return 200, testGroup },
		"POST /v1/ipam/vlan-groups/lab/allocate":     func() (int, any) { return 201, testVLAN },
		"GET /v1/ipam/vlans":                         func() (int, any) { return 200, map[string]any{"vlans": []any{testVLAN}} },
		"GET /v1/ipam/vlans/v1":                      func() (int, any) { return 200, testVLAN },
		"DELETE /v1/ipam/vlans/v1":                   func() (int, any) { return 200, testVLAN },
		"GET /v1/ipam/vni-pools":                     func() (int, any) { return 200, map[string]any{"vni_pools": []any{testGroup}} },
		"POST /v1/ipam/vni-pools":                    func() (int, any) { return 201, testGroup },
		"GET /v1/ipam/vni-pools/g2":                  func() (int, any) { return 200, testGroup },
		"DELETE /v1/ipam/vni-pools/g2":               func() (int, any) { return 200, testGroup },
		"POST /v1/ipam/vni-pools/g2/allocate":        func() (int, any) { return 201, testVNI },
		"GET /v1/ipam/vnis":                          func() (int, any) { return 200, map[string]any{"vnis": []any{testVNI}} },
		"GET /v1/ipam/vnis/n1":                       func() (int, any) { return 200, testVNI },
		"DELETE /v1/ipam/vnis/n1":                    func() (int, any) { return 200, testVNI },
		"GET /v1/dns/zones":                          func() (int, any) { return 200, map[string]any{"zones": []any{testZone}} },
		"POST /v1/dns/zones":                         func() (int, any) { return 201, testZone },
		"GET /v1/dns/zones/moxxie.test":              func() (int, any) { return 200, testZone },
		"DELETE /v1/dns/zones/moxxie.test":           func() (int, any) { return 200, testZone },
		"GET /v1/ipam/prefixes/exhausted/available":  func() (int, any) { return 200, map[string]any{"available": []string{}} },
		"POST /v1/ipam/prefixes/exhausted/allocate":  nil,
		"POST /v1/ipam/prefixes/container/allocate":  nil,
		"GET /v1/ipam/prefixes/with%2Fslash":         func() (int, any) { return 200, testPrefix },
		"GET /v1/ipam/vlan-groups/name%20with%20spa": func() (int, any) { return 200, testGroup },
	}
	return newFake(t, func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.EscapedPath()
		h, ok := routes[key]
		switch {
		case !ok:
			writeErr(w, 404, "not_found", "no route "+key, "")
		case h == nil:
			writeErr(w, 409, "exhausted", "3 requested, 2 available", "count")
		default:
			status, body := h()
			writeJSON(w, status, body)
		}
	})
}

func TestIPAM_Requests(t *testing.T) {
	f := ipamFake(t)
	c := f.client(t, Config{})
	ctx := context.Background()
	str := func(s string) *string { return &s }

	tests := []struct {
		name  string
		call  func() (any, error)
		req   string // METHOD path?query
		body  string // JSON, compared as values; empty: no body
		check func(t *testing.T, v any)
	}{
		{"vrf list", func() (any, error) { v, _, err := c.VRFList(ctx, nil); return v, err },
			"GET /v1/ipam/vrfs", "", func(t *testing.T, v any) {
				if l := v.([]VRF); len(l) != 1 || l[0].ID != "blue" || l[0].Tenant != "acme" || l[0].CreatedAt.IsZero() {
					t.Errorf("%+v", l)
				}
			}},
		{"vrf create", func() (any, error) {
			v, _, err := c.VRFCreate(ctx, VRFRequest{ID: "blue", Tenant: "acme"}, nil)
			return v, err
		}, "POST /v1/ipam/vrfs", `{"id": "blue", "tenant": "acme"}`, nil},
		{"vrf get stale", func() (any, error) { v, _, err := c.VRFGet(ctx, "blue", &QueryOptions{Stale: true}); return v, err },
			"GET /v1/ipam/vrfs/blue?stale=true", "", nil},
		{"vrf delete", func() (any, error) { v, _, err := c.VRFDelete(ctx, "blue", nil); return v, err },
			"DELETE /v1/ipam/vrfs/blue", "", func(t *testing.T, v any) {
				if v.(*VRF).ID != "blue" {
					t.Errorf("%+v", v)
				}
			}},
		{"prefix list", func() (any, error) {
			v, _, err := c.PrefixList(ctx, PrefixFilter{VRF: "blue", Tenant: "acme", ParentID: "p0", Status: "active", Family: 4, Contains: "10.0.0.7"},
				&QueryOptions{Index: 9, Wait: time.Second})
			return v, err
		}, "GET /v1/ipam/prefixes?contains=10.0.0.7&family=4&index=9&parent_id=p0&status=active&tenant=acme&vrf=blue&wait=1s", "",
			func(t *testing.T, v any) {
				l := v.([]Prefix)
				if len(l) != 1 {
					t.Fatalf("%+v", l)
				}
				p := l[0]
				if p.ID != "p1" || p.Prefix != "10.0.0.0/24" || p.ParentID != "p0" || p.Gateway != "10.0.0.1" || p.Utilization == nil ||
					p.Utilization.Used != "12" || p.Utilization.Size != "254" || p.Utilization.Percent != 4.72 ||
					p.ModifyIndex != 6 || !p.UpdatedAt.Equal(time.Date(2025, 6, 1, 12, 30, 0, 0, time.UTC)) {
					t.Errorf("%+v", p)
				}
			}},
		{"prefix list unfiltered", func() (any, error) { v, _, err := c.PrefixList(ctx, PrefixFilter{}, nil); return v, err },
			"GET /v1/ipam/prefixes", "", nil},
		{"prefix create", func() (any, error) {
			v, _, err := c.PrefixCreate(ctx, PrefixRequest{Prefix: "10.0.0.0/8", Status: PrefixContainer, IsPool: true, Gateway: "10.0.0.1"}, nil)
			return v, err
		}, "POST /v1/ipam/prefixes", `{"prefix": "10.0.0.0/8", "status": "container", "is_pool": true, "gateway": "10.0.0.1"}`, nil},
		{"prefix get", func() (any, error) { v, _, err := c.PrefixGet(ctx, "p1", nil); return v, err },
			"GET /v1/ipam/prefixes/p1", "", nil},
		{"prefix get escapes", func() (any, error) { v, _, err := c.PrefixGet(ctx, "with/slash", nil); return v, err },
			"GET /v1/ipam/prefixes/with/slash", "", nil}, // the fake routes on the escaped path
		{"prefix update", func() (any, error) {
			v, _, err := c.PrefixUpdate(ctx, "p1", PrefixUpdate{Description: str("")}, nil)
			return v, err
		}, "PATCH /v1/ipam/prefixes/p1", `{"description": ""}`, nil},
		{"prefix delete", func() (any, error) { v, _, err := c.PrefixDelete(ctx, "p1", PrefixDeleteOptions{}, nil); return v, err },
			"DELETE /v1/ipam/prefixes/p1", "", nil},
		{"prefix allocate", func() (any, error) {
			v, _, err := c.PrefixAllocate(ctx, "p1", AllocateRequest{Count: 2, DNSName: "web1.moxxie.test", Owner: "vm:101/net0"}, nil)
			return v, err
		}, "POST /v1/ipam/prefixes/p1/allocate", `{"count": 2, "dns_name": "web1.moxxie.test", "owner": "vm:101/net0"}`,
			func(t *testing.T, v any) {
				l := v.([]Address)
				if len(l) != 2 || l[0].Address != "10.0.0.2" || l[0].PrefixID != "p1" || l[0].Owner != "vm:101/net0" || l[0].DNSName != "web1.moxxie.test" {
					t.Errorf("%+v", l)
				}
			}},
		{"prefix allocate address", func() (any, error) {
			v, _, err := c.PrefixAllocate(ctx, "p1", AllocateRequest{Address: "10.0.0.9", Fallback: true, Force: true, Status: AddressReserved}, nil)
			return v, err
		}, "POST /v1/ipam/prefixes/p1/allocate", `{"address": "10.0.0.9", "fallback": true, "force": true, "status": "reserved"}`, nil},
		{"allocate prefix", func() (any, error) {
			v, _, err := c.PrefixAllocatePrefix(ctx, "p0", PrefixAllocateRequest{PrefixLength: 26, Status: PrefixContainer, Tenant: "acme"}, nil)
			return v, err
		}, "POST /v1/ipam/prefixes/p0/allocate-prefix", `{"prefix_length": 26, "status": "container", "tenant": "acme"}`, nil},
		{"available", func() (any, error) { v, _, err := c.PrefixAvailable(ctx, "p1", 2, nil); return v, err },
			"GET /v1/ipam/prefixes/p1/available?limit=2", "", func(t *testing.T, v any) {
				if l := v.([]string); strings.Join(l, ",") != "10.0.0.3,10.0.0.4" {
					t.Errorf("%v", l)
				}
			}},
		{"available empty", func() (any, error) { v, _, err := c.PrefixAvailable(ctx, "exhausted", 0, nil); return v, err },
			"GET /v1/ipam/prefixes/exhausted/available", "", func(t *testing.T, v any) {
				if l := v.([]string); len(l) != 0 {
					t.Errorf("%v", l)
				}
			}},
		{"range list", func() (any, error) { v, _, err := c.IPRangeList(ctx, "p1", nil); return v, err },
			"GET /v1/ipam/ip-ranges?prefix_id=p1", "", func(t *testing.T, v any) {
				if l := v.([]IPRange); len(l) != 1 || l[0].StartAddress != "10.0.0.100" || l[0].EndAddress != "10.0.0.199" {
					t.Errorf("%+v", l)
				}
			}},
		{"range create", func() (any, error) {
			v, _, err := c.IPRangeCreate(ctx, IPRangeRequest{PrefixID: "p1", StartAddress: "10.0.0.100", EndAddress: "10.0.0.199", Description: "dhcp"}, nil)
			return v, err
		}, "POST /v1/ipam/ip-ranges", `{"prefix_id": "p1", "start_address": "10.0.0.100", "end_address": "10.0.0.199", "description": "dhcp"}`, nil},
		{"range delete", func() (any, error) { v, _, err := c.IPRangeDelete(ctx, "r1", nil); return v, err },
			"DELETE /v1/ipam/ip-ranges/r1", "", nil},
		{"address list", func() (any, error) {
			v, _, err := c.AddressList(ctx, AddressFilter{PrefixID: "p1", Owner: "vm:101/net0", DNSName: "web1.moxxie.test", Limit: 10}, nil)
			return v, err
		}, "GET /v1/ipam/addresses?dns_name=web1.moxxie.test&limit=10&owner=vm%3A101%2Fnet0&prefix_id=p1", "", nil},
		{"address page", func() (any, error) {
			v, _, err := c.AddressListPage(ctx, AddressFilter{Tenant: "acme", Limit: 1, After: "c1"}, nil)
			return v, err
		}, "GET /v1/ipam/addresses?after=c1&limit=1&tenant=acme", "", func(t *testing.T, v any) {
			if p := v.(*AddressPage); len(p.Addresses) != 1 || p.Addresses[0].ID != "a1" || p.Next != "c2" {
				t.Errorf("%+v", p)
			}
		}},
		{"address create", func() (any, error) {
			v, _, err := c.AddressCreate(ctx, AddressRequest{Address: "10.0.0.2", VRF: "blue", Tenant: "acme"}, nil)
			return v, err
		}, "POST /v1/ipam/addresses", `{"address": "10.0.0.2", "vrf": "blue", "tenant": "acme"}`, func(t *testing.T, v any) {
			if l := v.([]Address); len(l) != 1 || l[0].ID != "a1" {
				t.Errorf("%+v", l)
			}
		}},
		{"address get", func() (any, error) { v, _, err := c.AddressGet(ctx, "a1", nil); return v, err },
			"GET /v1/ipam/addresses/a1", "", nil},
		{"address update", func() (any, error) {
			v, _, err := c.AddressUpdate(ctx, "a1", AddressUpdate{Status: str("deprecated"), DNSName: str(""), Owner: str("vm:102/net0")}, nil)
			return v, err
		}, "PATCH /v1/ipam/addresses/a1", `{"status": "deprecated", "dns_name": "", "owner": "vm:102/net0"}`, nil},
		{"address release", func() (any, error) { v, _, err := c.AddressRelease(ctx, "a1", false, nil); return v, err },
			"DELETE /v1/ipam/addresses/a1", "", func(t *testing.T, v any) {
				r := v.(*AddressRelease)
				if r.Address.ID != "a1" || !r.QuarantinedUntil.Equal(time.Date(2025, 6, 1, 12, 10, 0, 0, time.UTC)) {
					t.Errorf("%+v", r)
				}
			}},
		{"address release force", func() (any, error) { v, _, err := c.AddressRelease(ctx, "a1", true, nil); return v, err },
			"DELETE /v1/ipam/addresses/a1?force=true", "", nil},
		{"vlan group list", func() (any, error) { v, _, err := c.VLANGroupList(ctx, nil); return v, err },
			"GET /v1/ipam/vlan-groups", "", func(t *testing.T, v any) {
				l := v.([]Pool)
				if len(l) != 1 || l[0].Kind != PoolVLAN || len(l[0].Ranges) != 1 || l[0].Ranges[0] != (IDRange{100, 199}) || l[0].Utilization.Percent != 1 {
					t.Errorf("%+v", l)
				}
			}},
		{"vlan group create", func() (any, error) {
			v, _, err := c.VLANGroupCreate(ctx, PoolRequest{Name: "lab", Ranges: []IDRange{{100, 199}, {300, 300}}}, nil)
			return v, err
		}, "POST /v1/ipam/vlan-groups", `{"name": "lab", "ranges": [{"first": 100, "last": 199}, {"first": 300, "last": 300}]}`, nil},
		{"vlan group create all", func() (any, error) {
			v, _, err := c.VLANGroupCreate(ctx, PoolRequest{Name: "lab"}, nil)
			return v, err
		}, "POST /v1/ipam/vlan-groups", `{"name": "lab"}`, nil},
		{"vlan group get", func() (any, error) { v, _, err := c.VLANGroupGet(ctx, "lab", nil); return v, err },
			"GET /v1/ipam/vlan-groups/lab", "", nil},
		{"vlan group get escapes", func() (any, error) { v, _, err := c.VLANGroupGet(ctx, "name with spa", nil); return v, err },
			"GET /v1/ipam/vlan-groups/name with spa", "", nil},
		{"vlan group delete", func() (any, error) { v, _, err := c.VLANGroupDelete(ctx, "lab", nil); return v, err },
			"DELETE /v1/ipam/vlan-groups/lab", "", nil},
		{"vlan allocate", func() (any, error) {
			v, _, err := c.VLANAllocate(ctx, "lab", IDAllocateRequest{Number: 100, Fallback: true, Name: "web", Owner: "vnet:web"}, nil)
			return v, err
		}, "POST /v1/ipam/vlan-groups/lab/allocate", `{"vid": 100, "fallback": true, "name": "web", "owner": "vnet:web"}`,
			func(t *testing.T, v any) {
				if x := v.(*VLAN); x.VID != 100 || x.PoolID != "g1" || x.Name != "web" {
					t.Errorf("%+v", x)
				}
			}},
		{"vlan allocate lowest", func() (any, error) { v, _, err := c.VLANAllocate(ctx, "lab", IDAllocateRequest{}, nil); return v, err },
			"POST /v1/ipam/vlan-groups/lab/allocate", `{}`, nil},
		{"vlan list", func() (any, error) {
			v, _, err := c.VLANList(ctx, IDFilter{PoolID: "lab", Tenant: "acme"}, nil)
			return v, err
		},
			"GET /v1/ipam/vlans?group_id=lab&tenant=acme", "", nil},
		{"vlan get", func() (any, error) { v, _, err := c.VLANGet(ctx, "v1", nil); return v, err },
			"GET /v1/ipam/vlans/v1", "", nil},
		{"vlan release", func() (any, error) { v, _, err := c.VLANRelease(ctx, "v1", nil); return v, err },
			"DELETE /v1/ipam/vlans/v1", "", nil},
		{"vni pool list", func() (any, error) { v, _, err := c.VNIPoolList(ctx, nil); return v, err },
			"GET /v1/ipam/vni-pools", "", nil},
		{"vni pool create", func() (any, error) {
			v, _, err := c.VNIPoolCreate(ctx, PoolRequest{Name: "overlay", Ranges: []IDRange{{10000, 19999}}, Tenant: "acme"}, nil)
			return v, err
		}, "POST /v1/ipam/vni-pools", `{"name": "overlay", "ranges": [{"first": 10000, "last": 19999}], "tenant": "acme"}`, nil},
		{"vni pool get", func() (any, error) { v, _, err := c.VNIPoolGet(ctx, "g2", nil); return v, err },
			"GET /v1/ipam/vni-pools/g2", "", nil},
		{"vni pool delete", func() (any, error) { v, _, err := c.VNIPoolDelete(ctx, "g2", nil); return v, err },
			"DELETE /v1/ipam/vni-pools/g2", "", nil},
		{"vni allocate", func() (any, error) {
			v, _, err := c.VNIAllocate(ctx, "g2", IDAllocateRequest{Number: 10001}, nil)
			return v, err
		}, "POST /v1/ipam/vni-pools/g2/allocate", `{"vni": 10001}`, func(t *testing.T, v any) {
			if x := v.(*VNI); x.VNI != 10001 || x.Kind != PoolVNI {
				t.Errorf("%+v", x)
			}
		}},
		{"vni list", func() (any, error) { v, _, err := c.VNIList(ctx, IDFilter{PoolID: "g2"}, nil); return v, err },
			"GET /v1/ipam/vnis?pool_id=g2", "", nil},
		{"vni get", func() (any, error) { v, _, err := c.VNIGet(ctx, "n1", nil); return v, err },
			"GET /v1/ipam/vnis/n1", "", nil},
		{"vni release", func() (any, error) { v, _, err := c.VNIRelease(ctx, "n1", nil); return v, err },
			"DELETE /v1/ipam/vnis/n1", "", nil},
		{"zone list", func() (any, error) { v, _, err := c.ZoneList(ctx, nil); return v, err },
			"GET /v1/dns/zones", "", func(t *testing.T, v any) {
				if l := v.([]Zone); len(l) != 1 || l[0].ID != "moxxie.test" || l[0].TTL != 60 {
					t.Errorf("%+v", l)
				}
			}},
		{"zone create", func() (any, error) {
			v, _, err := c.ZoneCreate(ctx, ZoneRequest{Name: "moxxie.test", TTL: 60}, nil)
			return v, err
		}, "POST /v1/dns/zones", `{"name": "moxxie.test", "ttl": 60}`, nil},
		{"zone get", func() (any, error) { v, _, err := c.ZoneGet(ctx, "moxxie.test", nil); return v, err },
			"GET /v1/dns/zones/moxxie.test", "", nil},
		{"zone delete", func() (any, error) { v, _, err := c.ZoneDelete(ctx, "moxxie.test", false, nil); return v, err },
			"DELETE /v1/dns/zones/moxxie.test", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.requests())
			v, err := tt.call()
			if err != nil {
				t.Fatal(err)
			}
			reqs := f.requests()[before:]
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			got := r.method + " " + r.path
			if r.query != "" {
				got += "?" + r.query
			}
			if got != tt.req {
				t.Errorf("request %q, want %q", got, tt.req)
			}
			if write := r.method != http.MethodGet; write != (r.header.Get("Idempotency-Key") != "") {
				t.Errorf("%s with Idempotency-Key %q", r.method, r.header.Get("Idempotency-Key"))
			}
			if tt.body == "" {
				if len(r.body) != 0 {
					t.Errorf("body %s, want none", r.body)
				}
			} else {
				var gotBody, wantBody any
				if err := json.Unmarshal(r.body, &gotBody); err != nil {
					t.Fatalf("body %s: %v", r.body, err)
				}
				if err := json.Unmarshal([]byte(tt.body), &wantBody); err != nil {
					t.Fatal(err)
				}
				g, _ := json.Marshal(gotBody)
				w, _ := json.Marshal(wantBody)
				if string(g) != string(w) {
					t.Errorf("body %s, want %s", g, w)
				}
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
			}
			if tt.check != nil {
				tt.check(t, v)
			}
		})
	}
}

func TestIPAM_Errors(t *testing.T) {
	f := ipamFake(t)
	c := f.client(t, Config{})
	ctx := context.Background()
	_, _, err := c.PrefixAllocate(ctx, "exhausted", AllocateRequest{Count: 3}, nil)
	if err == nil || err.Error() != "409 exhausted: 3 requested, 2 available (field count, request req-1)" {
		t.Errorf("exhausted: %v", err)
	}
	if StatusCode(err) != 409 {
		t.Errorf("status %d", StatusCode(err))
	}
	if _, _, err := c.AddressGet(ctx, "nope", nil); !IsNotFound(err) {
		t.Errorf("unknown address: %v", err)
	}
}

// TestIPAM_IdempotencyKey checks that a retried allocation carries the key
// of the first attempt, and a given key is sent as is.
// TestIPAM_Warnings: the Warning headers of an answer reach Meta as their
// texts.
func TestIPAM_Warnings(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Warning", `299 - "no DNS zone serves web.moxie.test: it resolves once a zone holds it"`)
		w.Header().Add("Warning", `not the usual form`)
		writeJSON(w, 201, map[string]any{"addresses": []any{testAddress}})
	})
	c := f.client(t, Config{})
	_, m, err := c.PrefixAllocate(context.Background(), "p1", AllocateRequest{DNSName: "web.moxie.test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"no DNS zone serves web.moxie.test: it resolves once a zone holds it", "not the usual form"}; !slices.Equal(m.Warnings, want) {
		t.Fatalf("warnings %q, want %q", m.Warnings, want)
	}
}

func TestIPAM_IdempotencyKey(t *testing.T) {
	var n int
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		n++
		if n == 1 {
			w.Header().Set("Retry-After", "0")
			writeErr(w, 503, "no_leader", "no leader", "")
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		writeJSON(w, 201, map[string]any{"addresses": []any{testAddress}})
	})
	c := f.client(t, Config{})
	ctx := context.Background()
	addrs, m, err := c.PrefixAllocate(ctx, "p1", AllocateRequest{}, nil)
	if err != nil || len(addrs) != 1 || !m.Replayed {
		t.Fatalf("allocate: %v, %v, %+v", addrs, err, m)
	}
	reqs := f.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	k1, k2 := reqs[0].header.Get("Idempotency-Key"), reqs[1].header.Get("Idempotency-Key")
	if k1 == "" || k1 != k2 {
		t.Errorf("keys %q and %q, want the same", k1, k2)
	}
	if _, _, err := c.VLANAllocate(ctx, "lab", IDAllocateRequest{}, &WriteOptions{IdempotencyKey: "vm-101-vlan"}); err != nil {
		t.Fatal(err)
	}
	if k := f.requests()[2].header.Get("Idempotency-Key"); k != "vm-101-vlan" {
		t.Errorf("key %q", k)
	}
}
