package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/fsm"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// The shapes as clients see them; strict decoding keeps the tests honest
// about field names.
type (
	testUtil struct {
		Used    json.Number `json:"used"`
		Size    json.Number `json:"size"`
		Percent float64     `json:"percent"`
	}
	testPrefix struct {
		ID          string    `json:"id"`
		Prefix      string    `json:"prefix"`
		VRF         string    `json:"vrf"`
		Status      string    `json:"status"`
		IsPool      bool      `json:"is_pool"`
		ParentID    string    `json:"parent_id"`
		Tenant      string    `json:"tenant"`
		Gateway     string    `json:"gateway"`
		Description string    `json:"description"`
		Utilization *testUtil `json:"utilization"`
		CreateIndex uint64    `json:"create_index"`
		ModifyIndex uint64    `json:"modify_index"`
		CreatedAt   string    `json:"created_at"`
		UpdatedAt   string    `json:"updated_at"`
	}
	testAddress struct {
		ID          string `json:"id"`
		Address     string `json:"address"`
		PrefixID    string `json:"prefix_id"`
		VRF         string `json:"vrf"`
		Status      string `json:"status"`
		DNSName     string `json:"dns_name"`
		Tenant      string `json:"tenant"`
		Owner       string `json:"owner"`
		Description string `json:"description"`
		CreateIndex uint64 `json:"create_index"`
		ModifyIndex uint64 `json:"modify_index"`
		CreatedAt   string `json:"created_at"`
		UpdatedAt   string `json:"updated_at"`
	}
	testAddresses struct {
		Addresses []testAddress `json:"addresses"`
		Next      *string       `json:"next"`
	}
	testPool struct {
		ID          string `json:"id"`
		Kind        string `json:"kind"`
		Name        string `json:"name"`
		Ranges      []struct{ First, Last int }
		Tenant      string    `json:"tenant"`
		Description string    `json:"description"`
		Utilization *testUtil `json:"utilization"`
		CreateIndex uint64    `json:"create_index"`
		ModifyIndex uint64    `json:"modify_index"`
		CreatedAt   string    `json:"created_at"`
	}
	testIDAlloc struct {
		ID          string `json:"id"`
		Kind        string `json:"kind"`
		PoolID      string `json:"pool_id"`
		VID         int    `json:"vid"`
		VNI         int    `json:"vni"`
		Name        string `json:"name"`
		Tenant      string `json:"tenant"`
		Owner       string `json:"owner"`
		Description string `json:"description"`
		CreateIndex uint64 `json:"create_index"`
		CreatedAt   string `json:"created_at"`
	}
)

// strictJSON decodes b into v, failing on fields v does not declare.
func strictJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// call serves one request, wants status and decodes the answer into v
// (when not nil).
func (ts *testServer) call(method, target, body string, status int, v any, hdr ...string) *http.Response {
	ts.t.Helper()
	rec := ts.do(method, target, body, hdr...)
	b := wantStatus(ts.t, rec, status)
	if v != nil {
		strictJSON(ts.t, b, v)
	}
	return rec.Result()
}

// body returns the body of a GET that must succeed.
func (ts *testServer) body(target string) string {
	ts.t.Helper()
	return string(wantStatus(ts.t, ts.do("GET", target, ""), 200))
}

func (ts *testServer) createPrefix(body string) testPrefix {
	ts.t.Helper()
	var p testPrefix
	ts.call("POST", "/v1/ipam/prefixes", body, 201, &p)
	return p
}

func (ts *testServer) allocate(prefixID, body string, hdr ...string) []testAddress {
	ts.t.Helper()
	var out testAddresses
	ts.call("POST", "/v1/ipam/prefixes/"+prefixID+"/allocate", body, 201, &out, hdr...)
	return out.Addresses
}

func addrs(as []testAddress) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Address
	}
	return out
}

// ipamLists are the reads whose bodies must not change when a request is
// refused.
var ipamLists = []string{
	"/v1/ipam/vrfs", "/v1/ipam/prefixes", "/v1/ipam/ip-ranges", "/v1/ipam/addresses",
	"/v1/ipam/vlan-groups", "/v1/ipam/vlans", "/v1/ipam/vni-pools", "/v1/ipam/vnis", "/v1/dns/zones",
}

// refused sends a request that must fail with status, code and field, and
// checks that no list changed; when early, the request must also not have
// reached the log (Validate or the handler refused it). It returns the
// error's message.
func (ts *testServer) refused(method, target, body string, status int, code, field string, early bool) string {
	ts.t.Helper()
	before := map[string]string{}
	for _, l := range ipamLists {
		before[l] = ts.body(l)
	}
	index := ts.b.State().StateIndex()
	applies := ts.b.applies.Load()
	d := wantError(ts.t, ts.do(method, target, body), status, code, field)
	for _, l := range ipamLists {
		if after := ts.body(l); after != before[l] {
			ts.t.Errorf("%s %s changed %s:\nbefore %s\nafter  %s", method, target, l, before[l], after)
		}
	}
	if early {
		if got := ts.b.State().StateIndex(); got != index {
			ts.t.Errorf("%s %s: the state (apart from the audit log) moved from index %d to %d", method, target, index, got)
		}
		if got := ts.b.applies.Load(); got != applies {
			ts.t.Errorf("%s %s: %d commands proposed", method, target, got-applies)
		}
	}
	return d.Message
}

func TestIPAM_VRFs(t *testing.T) {
	ts := newLeader(t)

	var list struct{ VRFs []fsm.VRF }
	ts.call("GET", "/v1/ipam/vrfs", "", 200, &list)
	if len(list.VRFs) != 1 || list.VRFs[0].ID != "global" {
		t.Fatalf("vrfs %+v", list)
	}
	// The implicit default VRF was never created: it has no created_at.
	if body := ts.body("/v1/ipam/vrfs"); strings.Contains(body, "created_at") {
		t.Errorf("the default VRF has a creation time: %s", body)
	}
	var v map[string]any
	ts.call("POST", "/v1/ipam/vrfs", `{"id":"blue","description":"tenant blue","tenant":"t1"}`, 201, &v)
	if v["id"] != "blue" || v["description"] != "tenant blue" || v["tenant"] != "t1" || v["created_at"] != "2026-01-02T03:04:05Z" {
		t.Fatalf("vrf %v", v)
	}
	ts.call("GET", "/v1/ipam/vrfs/blue", "", 200, &v)
	ts.call("GET", "/v1/ipam/vrfs/global", "", 200, &v)
	ts.call("GET", "/v1/ipam/vrfs", "", 200, &list)
	if len(list.VRFs) != 2 || list.VRFs[1].ID != "blue" {
		t.Fatalf("vrfs %+v", list)
	}

	ts.refused("POST", "/v1/ipam/vrfs", `{"id":"blue"}`, 409, CodeConflict, "id", false)
	ts.refused("POST", "/v1/ipam/vrfs", `{"id":"Blue!"}`, 400, CodeInvalidRequest, "id", true)
	ts.refused("POST", "/v1/ipam/vrfs", `{"id":"red","colour":"red"}`, 400, CodeInvalidRequest, "colour", true)
	ts.refused("POST", "/v1/ipam/vrfs", `{"id":"red","tenant":"A B"}`, 400, CodeInvalidRequest, "tenant", true)

	// Prefixes in another VRF may overlap those of global; the VRF cannot
	// go while it holds them.
	ts.createPrefix(`{"prefix":"10.0.0.0/24"}`)
	p := ts.createPrefix(`{"prefix":"10.0.0.0/24","vrf":"blue"}`)
	ts.refused("POST", "/v1/ipam/prefixes", `{"prefix":"10.1.0.0/24","vrf":"green"}`, 400, CodeInvalidRequest, "vrf", false)
	ts.refused("DELETE", "/v1/ipam/vrfs/blue", "", 409, CodeConflict, "id", false)
	ts.refused("DELETE", "/v1/ipam/vrfs/global", "", 409, CodeConflict, "id", false)
	ts.call("DELETE", "/v1/ipam/prefixes/"+p.ID, "", 200, nil)
	ts.call("DELETE", "/v1/ipam/vrfs/blue", "", 200, &v)
	if v["id"] != "blue" {
		t.Fatalf("deleted %v", v)
	}
	wantError(t, ts.do("GET", "/v1/ipam/vrfs/blue", ""), 404, CodeNotFound, "id")
	wantError(t, ts.do("DELETE", "/v1/ipam/vrfs/blue", ""), 404, CodeNotFound, "id")
}

func TestIPAM_Prefixes(t *testing.T) {
	ts := newLeader(t)

	p := ts.createPrefix(`{"prefix":"10.0.0.0/24","tenant":"t1","gateway":"10.0.0.1","description":"lab"}`)
	if !uuidRE.MatchString(p.ID) || p.Prefix != "10.0.0.0/24" || p.VRF != "global" || p.Status != "active" || p.Gateway != "10.0.0.1" ||
		p.Tenant != "t1" || p.Description != "lab" || p.CreateIndex == 0 || p.CreatedAt != "2026-01-02T03:04:05Z" {
		t.Fatalf("prefix %+v", p)
	}
	if u := p.Utilization; u == nil || u.Used != "1" || u.Size != "254" || u.Percent != 0.39 {
		t.Fatalf("utilization %+v", p.Utilization)
	}
	// The gateway is reserved, with an ID of its own.
	var gw testAddresses
	ts.call("GET", "/v1/ipam/addresses?prefix_id="+p.ID, "", 200, &gw)
	if len(gw.Addresses) != 1 || gw.Addresses[0].Address != "10.0.0.1" || gw.Addresses[0].Status != "reserved" || !uuidRE.MatchString(gw.Addresses[0].ID) || gw.Addresses[0].ID == p.ID {
		t.Fatalf("gateway %+v", gw)
	}
	// It goes with the prefix, not on its own, forced or not.
	for _, q := range []string{"", "?force=true"} {
		wantError(t, ts.do("DELETE", "/v1/ipam/addresses/"+gw.Addresses[0].ID+q, ""), 409, CodeConflict, "id")
	}
	// It stays reserved, so that it cannot be made an ordinary address and
	// released that way; other fields may change.
	for _, status := range []string{"active", "deprecated"} {
		wantError(t, ts.do("PATCH", "/v1/ipam/addresses/"+gw.Addresses[0].ID, `{"status":"`+status+`"}`), 409, CodeConflict, "status")
	}
	ts.call("PATCH", "/v1/ipam/addresses/"+gw.Addresses[0].ID, `{"status":"reserved","description":"router"}`, 200, nil)
	v6 := ts.createPrefix(`{"prefix":"2001:db8::/64","is_pool":true}`)
	if v6.Utilization.Size != "18446744073709551616" {
		t.Fatalf("v6 utilization %+v", v6.Utilization)
	}

	var got testPrefix
	ts.call("GET", "/v1/ipam/prefixes/"+p.ID, "", 200, &got)
	if got.ID != p.ID || got.Prefix != p.Prefix {
		t.Fatalf("get %+v", got)
	}
	wantError(t, ts.do("GET", "/v1/ipam/prefixes/nope", ""), 404, CodeNotFound, "id")

	type list struct{ Prefixes []testPrefix }
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"", []string{"10.0.0.0/24", "2001:db8::/64"}},
		{"?family=4", []string{"10.0.0.0/24"}},
		{"?family=6", []string{"2001:db8::/64"}},
		{"?contains=10.0.0.7", []string{"10.0.0.0/24"}},
		{"?contains=10.0.0.0/25", []string{"10.0.0.0/24"}},
		{"?contains=10.0.0.0/16", nil},
		{"?contains=2001:db8::1", []string{"2001:db8::/64"}},
		{"?tenant=t1", []string{"10.0.0.0/24"}},
		{"?vrf=global&status=active", []string{"10.0.0.0/24", "2001:db8::/64"}},
		{"?status=container", nil},
	} {
		var l list
		ts.call("GET", "/v1/ipam/prefixes"+c.query, "", 200, &l)
		var gotP []string
		for _, p := range l.Prefixes {
			gotP = append(gotP, p.Prefix)
		}
		if fmt.Sprint(gotP) != fmt.Sprint(c.want) {
			t.Errorf("%s: %v, want %v", c.query, gotP, c.want)
		}
	}
	for _, c := range []struct{ query, field string }{
		{"?family=5", "family"},
		{"?family=ipv4", "family"},
		{"?contains=10.0.0.300", "contains"},
		{"?contains=10.0.0.5/24", "contains"},
		{"?contains=fe80::1%25eth0", "contains"},
		{"?status=deleted", "status"},
		{"?index=x", "index"},
		// Filters naming what does not exist, rather than an empty list.
		{"?parent_id=x", "parent_id"},
		{"?vrf=nope", "vrf"},
	} {
		wantError(t, ts.do("GET", "/v1/ipam/prefixes"+c.query, ""), 400, CodeInvalidRequest, c.field)
	}
	for _, c := range []struct{ path, field string }{
		{"/v1/ipam/addresses?prefix_id=x", "prefix_id"},
		{"/v1/ipam/addresses?vrf=nope", "vrf"},
		{"/v1/ipam/vlans?group_id=nope", "group_id"},
		{"/v1/ipam/vnis?pool_id=nope", "pool_id"},
	} {
		e := wantError(t, ts.do("GET", c.path, ""), 400, CodeInvalidRequest, c.field)
		if !strings.Contains(e.Message, "not found") {
			t.Errorf("%s: message %q", c.path, e.Message)
		}
	}

	// PATCH changes what it names and nothing else.
	ts.call("PATCH", "/v1/ipam/prefixes/"+p.ID, `{"tenant":"t2"}`, 200, &got)
	if got.Tenant != "t2" || got.Description != "lab" || got.ModifyIndex <= p.ModifyIndex || got.CreateIndex != p.CreateIndex {
		t.Fatalf("patched %+v", got)
	}
	got = testPrefix{}
	ts.call("PATCH", "/v1/ipam/prefixes/"+p.ID, `{"description":""}`, 200, &got)
	if got.Tenant != "t2" || got.Description != "" {
		t.Fatalf("patched %+v", got)
	}
	// Null clears a field as "" does (JSON merge patch); the member's
	// name is exact.
	got = testPrefix{}
	ts.call("PATCH", "/v1/ipam/prefixes/"+p.ID, `{"description":"lab"}`, 200, &got)
	ts.refused("PATCH", "/v1/ipam/prefixes/"+p.ID, `{"Tenant":null}`, 400, CodeInvalidRequest, "tenant", true)
	got = testPrefix{}
	ts.call("PATCH", "/v1/ipam/prefixes/"+p.ID, `{"tenant":null}`, 200, &got)
	if got.Tenant != "" || got.Description != "lab" {
		t.Fatalf("patched with null %+v", got)
	}
	ts.refused("PATCH", "/v1/ipam/prefixes/"+p.ID, `{"prefix":"10.9.0.0/24"}`, 400, CodeInvalidRequest, "prefix", true)
	ts.refused("PATCH", "/v1/ipam/prefixes/"+p.ID, `{"tenant":"Nope Nope"}`, 400, CodeInvalidRequest, "tenant", true)
	ts.refused("PATCH", "/v1/ipam/prefixes/"+p.ID, `{"description":"`+strings.Repeat("d", 1025)+`"}`, 400, CodeInvalidRequest, "description", true)
	ts.refused("PATCH", "/v1/ipam/prefixes/nope", `{"tenant":"t3"}`, 404, CodeNotFound, "id", false)
	// A prefix becomes a pool and stops being one; null is no answer.
	got = testPrefix{}
	ts.call("PATCH", "/v1/ipam/prefixes/"+p.ID, `{"is_pool":true}`, 200, &got)
	if !got.IsPool || got.Utilization.Size != "256" {
		t.Fatalf("as a pool %+v, %+v", got, got.Utilization)
	}
	ts.refused("PATCH", "/v1/ipam/prefixes/"+p.ID, `{"is_pool":null}`, 400, CodeInvalidRequest, "is_pool", true)
	var bcast testAddresses
	ts.call("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"address":"10.0.0.255"}`, 201, &bcast)
	ts.refused("PATCH", "/v1/ipam/prefixes/"+p.ID, `{"is_pool":false}`, 409, CodeConflict, "is_pool", false)
	ts.call("DELETE", "/v1/ipam/addresses/"+bcast.Addresses[0].ID+"?force=true", "", 200, nil)
	got = testPrefix{}
	ts.call("PATCH", "/v1/ipam/prefixes/"+p.ID, `{"is_pool":false}`, 200, &got)
	if got.IsPool || got.Utilization.Size != "254" {
		t.Fatalf("a pool no more %+v, %+v", got, got.Utilization)
	}

	// Bad input, each refused before the log.
	for _, c := range []struct{ body, field string }{
		{`{}`, "prefix"},
		{`{"prefix":"10.0.0.0"}`, "prefix"},
		{`{"prefix":"10.2.0.0/24","status":"reserved"}`, "status"},
		{`{"prefix":"10.2.0.0/24","status":"container","is_pool":true}`, "is_pool"},
		{`{"prefix":"10.2.0.0/24","status":"container","gateway":"10.2.0.1"}`, "gateway"},
		{`{"prefix":"10.2.0.0/24","gateway":"10.3.0.1"}`, "gateway"},
		{`{"prefix":"10.2.0.0/24","gateway":"10.2.0.0"}`, "gateway"},
		{`{"prefix":"10.2.0.0/24","is_pool":"yes"}`, "is_pool"},
		{`{"prefix":"::ffff:10.2.0.0/120"}`, "prefix"},
		{`{"prefix":"::ff00:0:0/88"}`, "prefix"},
		{`{"prefix":"::/0","is_pool":true}`, "prefix"},
		{`{"prefix":"10.2.0.0/24","id":"mine"}`, "id"},
	} {
		ts.refused("POST", "/v1/ipam/prefixes", c.body, 400, CodeInvalidRequest, c.field, true)
	}
	// Around the IPv4-mapped block: a container may hold it, and a prefix
	// next to it is fine.
	if msg := ts.refused("POST", "/v1/ipam/prefixes", `{"prefix":"::ff00:0:0/88"}`, 400, CodeInvalidRequest, "prefix", true); !strings.HasPrefix(msg, "::ff00:0:0/88 holds ::ffff:0:0/96, the IPv4-mapped addresses") {
		t.Errorf("mapped block: %q", msg)
	}
	ts.call("POST", "/v1/ipam/vrfs", `{"id":"v6"}`, 201, nil)
	whole := ts.createPrefix(`{"prefix":"::/0","status":"container","vrf":"v6"}`)
	// allocate-prefix keeps an active child outside it too; a container
	// child may hold it.
	var kid fsm.PrefixView
	ts.call("POST", "/v1/ipam/prefixes/"+whole.ID+"/allocate-prefix", `{"prefix_length":64}`, 201, &kid)
	if kid.Prefix.Prefix != "0:0:0:1::/64" {
		t.Errorf("active /64 from ::/0: %s, want 0:0:0:1::/64", kid.Prefix.Prefix)
	}
	ts.call("POST", "/v1/ipam/prefixes/"+whole.ID+"/allocate-prefix", `{"prefix_length":64,"status":"container"}`, 201, &kid)
	if kid.Prefix.Prefix != "::/64" {
		t.Errorf("container /64 from ::/0: %s, want ::/64", kid.Prefix.Prefix)
	}
	ts.createPrefix(`{"prefix":"::fffe:0:0/96","vrf":"v6"}`)
	// A ::/0 container filled by its children is not empty.
	ts.call("POST", "/v1/ipam/vrfs", `{"id":"v6b"}`, 201, nil)
	full := ts.createPrefix(`{"prefix":"::/0","status":"container","vrf":"v6b"}`)
	ts.call("POST", "/v1/ipam/prefixes/"+full.ID+"/allocate-prefix", `{"prefix_length":1,"status":"container"}`, 201, nil)
	ts.call("POST", "/v1/ipam/prefixes/"+full.ID+"/allocate-prefix", `{"prefix_length":1,"status":"container"}`, 201, nil)
	ts.refused("DELETE", "/v1/ipam/prefixes/"+full.ID, "", 409, CodeConflict, "id", false)
	ts.refused("DELETE", "/v1/ipam/prefixes/"+full.ID+"?force=true", "", 409, CodeConflict, "id", false)

	// Delete: refused while it holds addresses other than the gateway.
	a := ts.allocate(p.ID, `{}`)
	ts.refused("DELETE", "/v1/ipam/prefixes/"+p.ID, "", 409, CodeConflict, "id", false)
	ts.call("DELETE", "/v1/ipam/addresses/"+a[0].ID+"?force=true", "", 200, nil)
	// Refused while a released address is in quarantine, unless forced:
	// the quarantine goes with the prefix.
	b := ts.allocate(p.ID, `{}`)
	ts.call("DELETE", "/v1/ipam/addresses/"+b[0].ID, "", 200, nil)
	msg := ts.refused("DELETE", "/v1/ipam/prefixes/"+p.ID, "", 409, CodeConflict, "id", false)
	if !strings.Contains(msg, "a released address of 10.0.0.0/24 is in quarantine until 2026-01-02T03:14:05Z") {
		t.Errorf("quarantine message %q", msg)
	}
	var deleted map[string]any
	ts.call("DELETE", "/v1/ipam/prefixes/"+p.ID+"?force=true", "", 200, &deleted)
	if deleted["id"] != p.ID || deleted["prefix"] != "10.0.0.0/24" {
		t.Fatalf("deleted %v", deleted)
	}
	// Its gateway went with it.
	if body := ts.body("/v1/ipam/addresses"); body != `{"addresses":[]}`+"\n" {
		t.Fatalf("addresses after delete %s", body)
	}
	wantError(t, ts.do("GET", "/v1/ipam/prefixes/"+p.ID, ""), 404, CodeNotFound, "id")
	wantError(t, ts.do("DELETE", "/v1/ipam/prefixes/"+p.ID, ""), 404, CodeNotFound, "id")
}

// TestIPAM_MustShows is the contract of docs/ipam.md: refusals name the
// field, and nothing changes.
// TestIPAM_LinkLocalGateway: an IPv6 prefix keeps a link-local gateway
// without reserving it; another address outside the prefix is refused.
func TestIPAM_LinkLocalGateway(t *testing.T) {
	ts := newLeader(t)
	ll := ts.createPrefix(`{"prefix":"2001:db8:1::/64","gateway":"FE80::1"}`)
	var gw testAddresses
	ts.call("GET", "/v1/ipam/addresses?prefix_id="+ll.ID, "", 200, &gw)
	if ll.Gateway != "fe80::1" || ll.Utilization.Used != "0" || len(gw.Addresses) != 0 {
		t.Fatalf("link-local gateway: prefix %+v, addresses %+v", ll, gw.Addresses)
	}
	wantError(t, ts.do("POST", "/v1/ipam/prefixes", `{"prefix":"2001:db8:2::/64","gateway":"2001:db8:3::1"}`), 400, CodeInvalidRequest, "gateway")
	ts.call("DELETE", "/v1/ipam/prefixes/"+ll.ID, "", 200, nil)
}

func TestIPAM_MustShows(t *testing.T) {
	ts := newLeader(t)
	p := ts.createPrefix(`{"prefix":"10.0.0.0/24"}`)
	c := ts.createPrefix(`{"prefix":"10.8.0.0/16","status":"container"}`)
	ts.allocate(p.ID, `{"dns_name":"web1.moxxie.test"}`)

	msg := ts.refused("POST", "/v1/ipam/prefixes", `{"prefix":"10.0.0.5/24"}`, 400, CodeInvalidRequest, "prefix", true)
	if msg != "10.0.0.5/24 is not canonical: did you mean 10.0.0.0/24?" {
		t.Errorf("non-canonical message %q", msg)
	}
	msg = ts.refused("POST", "/v1/ipam/prefixes", `{"prefix":"10.0.0.0/23"}`, 409, CodeConflict, "prefix", false)
	if !strings.Contains(msg, "10.0.0.0/24") {
		t.Errorf("overlap message %q", msg)
	}
	ts.refused("POST", "/v1/ipam/prefixes", `{"prefix":"10.0.0.128/25"}`, 409, CodeConflict, "prefix", false)
	ts.refused("POST", "/v1/ipam/prefixes", `{"prefix":"10.0.0.0/24"}`, 409, CodeConflict, "prefix", false)
	msg = ts.refused("POST", "/v1/ipam/prefixes/"+c.ID+"/allocate", `{"count":1}`, 409, CodeConflict, "prefix_id", false)
	if !strings.Contains(msg, "container") {
		t.Errorf("container message %q", msg)
	}
	ts.refused("POST", "/v1/ipam/ip-ranges", `{"prefix_id":"`+c.ID+`","start_address":"10.8.0.10","end_address":"10.8.0.20"}`, 409, CodeConflict, "prefix_id", false)
	ts.refused("DELETE", "/v1/ipam/addresses/no-such-address", "", 404, CodeNotFound, "id", false)
	ts.refused("DELETE", "/v1/ipam/addresses/no-such-address?force=true", "", 404, CodeNotFound, "id", false)
	ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"dns_name":"-bad-.moxxie.test"}`, 400, CodeInvalidRequest, "dns_name", true)
	ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"dns_name":"a..b"}`, 400, CodeInvalidRequest, "dns_name", true)
	ts.refused("POST", "/v1/ipam/addresses", `{"address":"10.0.0.9","dns_name":"under_score.test"}`, 400, CodeInvalidRequest, "dns_name", true)
	// Names in the reverse trees are never served; home.arpa is forward.
	ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"dns_name":"9.0.0.10.in-addr.arpa"}`, 400, CodeInvalidRequest, "dns_name", true)
	ts.refused("POST", "/v1/ipam/addresses", `{"address":"10.0.0.9","dns_name":"X.IP6.ARPA."}`, 400, CodeInvalidRequest, "dns_name", true)
	// Nor are names under the special-use domains no zone may be.
	ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"dns_name":"db.localhost"}`, 400, CodeInvalidRequest, "dns_name", true)
	ts.refused("POST", "/v1/ipam/addresses", `{"address":"10.0.0.9","dns_name":"Web.Invalid."}`, 400, CodeInvalidRequest, "dns_name", true)
	// Nor names that clients read as IPv4 addresses (127.1 is 127.0.0.1).
	for _, name := range []string{"127.1", "0x7f.1", "web.1"} {
		ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"dns_name":"`+name+`"}`, 400, CodeInvalidRequest, "dns_name", true)
	}
	ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"dns_name":"xn--zz.moxxie.test"}`, 400, CodeInvalidRequest, "dns_name", true)
	for _, name := range []string{"1", "1.2.3", "lab.0x10", "xn--v11.test"} {
		ts.refused("POST", "/v1/dns/zones", `{"name":"`+name+`"}`, 400, CodeInvalidRequest, "name", true)
	}
	var a testAddresses
	ts.call("GET", "/v1/ipam/addresses", "", 200, &a)
	ts.refused("PATCH", "/v1/ipam/addresses/"+a.Addresses[0].ID, `{"dns_name":"10.0.0.1"}`, 400, CodeInvalidRequest, "dns_name", true)
	ts.refused("PATCH", "/v1/ipam/addresses/"+a.Addresses[0].ID, `{"dns_name":"in-addr.arpa"}`, 400, CodeInvalidRequest, "dns_name", true)
	ts.refused("PATCH", "/v1/ipam/addresses/"+a.Addresses[0].ID, `{"dns_name":"localhost"}`, 400, CodeInvalidRequest, "dns_name", true)
	ts.call("PATCH", "/v1/ipam/addresses/"+a.Addresses[0].ID, `{"dns_name":"nas.home.arpa"}`, 200, nil)
	if msg := ts.refused("PATCH", "/v1/ipam/addresses/"+a.Addresses[0].ID, `{"status":null}`, 400, CodeInvalidRequest, "status", true); !strings.Contains(msg, "status cannot be cleared") {
		t.Errorf("status null: %q", msg)
	}
	// An empty PATCH changes nothing and writes nothing.
	before := ts.b.applies.Load()
	var same, now map[string]any
	ts.call("PATCH", "/v1/ipam/addresses/"+a.Addresses[0].ID, `{}`, 200, &same)
	ts.call("GET", "/v1/ipam/addresses/"+a.Addresses[0].ID, "", 200, &now)
	if fmt.Sprint(same) != fmt.Sprint(now) || ts.b.applies.Load() != before {
		t.Errorf("empty PATCH: %v, now %v, %d writes", same, now, ts.b.applies.Load()-before)
	}
	ts.call("PATCH", "/v1/ipam/prefixes/"+a.Addresses[0].PrefixID, `{}`, 200, nil)
	if ts.b.applies.Load() != before {
		t.Error("empty PATCH of a prefix wrote")
	}
	wantError(t, ts.do("PATCH", "/v1/ipam/prefixes/nope", `{}`), 404, CodeNotFound, "id")
	// Nor does one that gives every field the value it has: it would wake
	// blocking reads and move SOA serials for nothing. With a key, or a
	// value that differs, it writes.
	ts.call("POST", "/v1/dns/zones", `{"name":"same.test","ttl":300}`, 201, nil)
	addr := "/v1/ipam/addresses/" + a.Addresses[0].ID
	ts.call("PATCH", addr, `{"description":"d"}`, 200, nil)
	ts.call("PATCH", "/v1/ipam/prefixes/"+a.Addresses[0].PrefixID, `{"description":"p"}`, 200, nil)
	before = ts.b.applies.Load()
	for _, c := range []struct{ path, body string }{
		{addr, `{"description":"d","dns_name":"NAS.home.arpa.","owner":null,"status":"` + a.Addresses[0].Status + `"}`},
		{"/v1/ipam/prefixes/" + a.Addresses[0].PrefixID, `{"description":"p","tenant":""}`},
		{"/v1/dns/zones/same.test", `{"ttl":300,"description":null}`},
	} {
		ts.call("PATCH", c.path, c.body, 200, nil)
		if n := ts.b.applies.Load() - before; n != 0 {
			t.Errorf("PATCH %s %s, which changes nothing: %d writes", c.path, c.body, n)
		}
		ts.call("PATCH", c.path, c.body, 200, nil, "Idempotency-Key", "same-"+c.path)
		if n := ts.b.applies.Load() - before; n != 1 {
			t.Errorf("keyed PATCH %s %s: %d writes, want 1", c.path, c.body, n)
		}
		before = ts.b.applies.Load()
	}
	var changed fsm.Address
	ts.call("PATCH", addr, `{"description":"e"}`, 200, &changed)
	if changed.Description != "e" || ts.b.applies.Load() != before+1 {
		t.Errorf("a PATCH that changes the description: %+v, %d writes", changed, ts.b.applies.Load()-before)
	}
	// A project without a tenant is refused, not dropped.
	ts.refused("PATCH", "/v1/ipam/addresses/"+a.Addresses[0].ID, `{"tenant":null,"project":"x"}`, 400, CodeInvalidRequest, "project", false)
	ts.refused("POST", "/v1/ipam/prefixes/no-such-prefix/allocate", `{}`, 404, CodeNotFound, "id", false)
}

func TestIPAM_Allocate(t *testing.T) {
	ts := newLeader(t)
	p := ts.createPrefix(`{"prefix":"10.0.0.0/29"}`) // usable .1 to .6

	// An empty body takes one address, active.
	got := ts.allocate(p.ID, "")
	if len(got) != 1 || got[0].Address != "10.0.0.1" || got[0].Status != "active" || got[0].PrefixID != p.ID || got[0].VRF != "global" || !uuidRE.MatchString(got[0].ID) {
		t.Fatalf("allocated %+v", got)
	}
	got = ts.allocate(p.ID, `{"count":3,"tenant":"t1","owner":"vm:101/net0","status":"reserved","description":"d"}`)
	if fmt.Sprint(addrs(got)) != "[10.0.0.2 10.0.0.3 10.0.0.4]" {
		t.Fatalf("allocated %v", addrs(got))
	}
	ids := map[string]bool{}
	for _, a := range got {
		if ids[a.ID] || !uuidRE.MatchString(a.ID) || a.Tenant != "t1" || a.Owner != "vm:101/net0" || a.Status != "reserved" || a.Description != "d" {
			t.Fatalf("address %+v", a)
		}
		ids[a.ID] = true
	}

	// All or nothing: 3 asked, 2 left.
	msg := ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"count":3}`, 409, CodeExhausted, "count", false)
	if msg != "3 requested, 2 available in 10.0.0.0/29" {
		t.Errorf("exhausted message %q", msg)
	}
	for _, body := range []string{`{"count":-1}`, `{"count":0}`, `{"count":4097}`, `{"count":2,"address":"10.0.0.5"}`} {
		ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", body, 400, CodeInvalidRequest, "count", true)
	}
	ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"count":"2"}`, 400, CodeInvalidRequest, "count", true)
	ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"ids":["x"]}`, 400, CodeInvalidRequest, "ids", true)
	ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"status":"gone"}`, 400, CodeInvalidRequest, "status", true)
	ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"owner":"vm101"}`, 400, CodeInvalidRequest, "owner", true)
	ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"address":"10.0.0.1"}`, 409, CodeConflict, "address", false)
	ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"address":"10.0.0.7"}`, 400, CodeInvalidRequest, "address", false)
	ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"address":"10.0.1.1"}`, 400, CodeInvalidRequest, "address", false)
	ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"address":"10.0.0.1x"}`, 400, CodeInvalidRequest, "address", true)

	// A taken address with fallback gives the next free one.
	got = ts.allocate(p.ID, `{"address":"10.0.0.1","fallback":true}`)
	if fmt.Sprint(addrs(got)) != "[10.0.0.5]" {
		t.Fatalf("fallback %v", addrs(got))
	}
	got = ts.allocate(p.ID, `{"address":"10.0.0.6"}`)
	if fmt.Sprint(addrs(got)) != "[10.0.0.6]" {
		t.Fatalf("explicit %v", addrs(got))
	}
	msg = ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{}`, 409, CodeExhausted, "count", false)
	if msg != "1 requested, 0 available in 10.0.0.0/29" {
		t.Errorf("exhausted message %q", msg)
	}
	var avail AvailableList
	ts.call("GET", "/v1/ipam/prefixes/"+p.ID+"/available", "", 200, &avail)
	if len(avail.Available) != 0 || avail.Available == nil {
		t.Fatalf("available %#v", avail)
	}
}

func TestIPAM_AllocateIdempotent(t *testing.T) {
	ts := newLeader(t)
	p := ts.createPrefix(`{"prefix":"10.0.0.0/24"}`)
	first := ts.do("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"count":2}`, "Idempotency-Key", "alloc-1")
	wantStatus(t, first, 201)
	index := ts.b.State().StateIndex()
	retry := ts.do("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"count":2}`, "Idempotency-Key", "alloc-1")
	wantStatus(t, retry, 201)
	if retry.Header().Get("Idempotent-Replayed") != "true" || first.Header().Get("Idempotent-Replayed") != "" {
		t.Errorf("replayed headers %q %q", first.Header().Get("Idempotent-Replayed"), retry.Header().Get("Idempotent-Replayed"))
	}
	if first.Body.String() != retry.Body.String() {
		t.Fatalf("replay differs:\n%s\n%s", first.Body, retry.Body)
	}
	var a testAddresses
	strictJSON(t, retry.Body.Bytes(), &a)
	if fmt.Sprint(addrs(a.Addresses)) != "[10.0.0.1 10.0.0.2]" {
		t.Fatalf("replayed %v", addrs(a.Addresses))
	}
	var all testAddresses
	ts.call("GET", "/v1/ipam/addresses", "", 200, &all)
	if len(all.Addresses) != 2 {
		t.Fatalf("a replay allocated again: %v", addrs(all.Addresses))
	}
	if ts.b.State().LatestIndex() != index+1 {
		t.Errorf("replay index %d after %d", ts.b.State().LatestIndex(), index)
	}
	// The same key for another request is refused; a new key allocates.
	wantError(t, ts.do("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"count":3}`, "Idempotency-Key", "alloc-1"), 422, CodeIdempotencyMismatch, "Idempotency-Key")
	if got := ts.allocate(p.ID, `{"count":2}`, "Idempotency-Key", "alloc-2"); fmt.Sprint(addrs(got)) != "[10.0.0.3 10.0.0.4]" {
		t.Fatalf("second key %v", addrs(got))
	}
	// A keyed PATCH that changes nothing keeps its key like any other
	// write: the key then refuses another body.
	id := a.Addresses[0].ID
	for _, target := range []string{"/v1/ipam/addresses/" + id, "/v1/ipam/prefixes/" + p.ID} {
		wantStatus(t, ts.do("PATCH", target, `{}`, "Idempotency-Key", "noop-"+target), 200)
		replay := ts.do("PATCH", target, `{}`, "Idempotency-Key", "noop-"+target)
		if wantStatus(t, replay, 200); replay.Header().Get("Idempotent-Replayed") != "true" {
			t.Errorf("%s: the keyed no-op was not replayed", target)
		}
		wantError(t, ts.do("PATCH", target, `{"description":"x"}`, "Idempotency-Key", "noop-"+target), 422, CodeIdempotencyMismatch, "Idempotency-Key")
	}
	// An empty key is refused on every PATCH that would otherwise answer
	// without a write, and on a pool that is not there, as on any write.
	ts.call("POST", "/v1/dns/zones", `{"name":"example.test"}`, 201, nil)
	ts.call("POST", "/v1/ipam/vlan-groups", `{"name":"lab","ranges":[{"first":100,"last":109}]}`, 201, nil)
	emptyKey := func(method, target string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+ts.secret)
		req.Header["Idempotency-Key"] = []string{""}
		rec := httptest.NewRecorder()
		ts.h.ServeHTTP(rec, req)
		return rec
	}
	before := ts.b.applies.Load()
	for _, target := range []string{"/v1/ipam/addresses/" + id, "/v1/ipam/prefixes/" + p.ID, "/v1/dns/zones/example.test", "/v1/ipam/vlan-groups/lab", "/v1/ipam/vlan-groups/nope"} {
		wantError(t, emptyKey("PATCH", target), 400, CodeInvalidRequest, "Idempotency-Key")
	}
	wantError(t, emptyKey("POST", "/v1/ipam/vlan-groups/nope/allocate"), 400, CodeInvalidRequest, "Idempotency-Key")
	if ts.b.applies.Load() != before {
		t.Errorf("a write with an empty Idempotency-Key was applied")
	}
}

func TestIPAM_Quarantine(t *testing.T) {
	ts := newLeader(t)
	p := ts.createPrefix(`{"prefix":"10.0.0.0/24"}`)
	a := ts.allocate(p.ID, `{}`)[0]

	var rel struct {
		Address          testAddress `json:"address"`
		QuarantinedUntil string      `json:"quarantined_until"`
	}
	ts.call("DELETE", "/v1/ipam/addresses/"+a.ID, "", 200, &rel)
	if rel.Address.ID != a.ID || rel.QuarantinedUntil != "2026-01-02T03:14:05Z" {
		t.Fatalf("released %+v", rel)
	}
	wantError(t, ts.do("GET", "/v1/ipam/addresses/"+a.ID, ""), 404, CodeNotFound, "id")
	// The released address is held back.
	if got := ts.allocate(p.ID, `{}`); got[0].Address == a.Address {
		t.Fatalf("allocated %s again out of quarantine", a.Address)
	}
	var avail AvailableList
	ts.call("GET", "/v1/ipam/prefixes/"+p.ID+"/available?limit=2", "", 200, &avail)
	if fmt.Sprint(avail.Available) != "[10.0.0.3 10.0.0.4]" {
		t.Fatalf("available %v", avail.Available)
	}
	msg := ts.refused("POST", "/v1/ipam/addresses", `{"address":"10.0.0.1"}`, 409, CodeConflict, "address", false)
	if !strings.Contains(msg, "quarantine") {
		t.Errorf("message %q", msg)
	}
	// force lifts it on allocation of that address; without one it, and
	// fallback, would do nothing and are refused.
	for _, f := range []string{"force", "fallback"} {
		if msg := ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"count":2,"`+f+`":true}`, 400, CodeInvalidRequest, f, true); !strings.Contains(msg, "takes effect only with address") {
			t.Errorf("%s without address: %q", f, msg)
		}
	}
	ts.allocate(p.ID, `{"force":false,"fallback":false}`)
	// An empty address is refused, not taken as "the lowest free one"; a
	// null one is left out.
	for _, body := range []string{`{"address":""}`, `{"address":"","count":3}`} {
		if msg := ts.refused("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", body, 400, CodeInvalidRequest, "address", true); !strings.Contains(msg, "address is empty") {
			t.Errorf("%s: %q", body, msg)
		}
	}
	ts.allocate(p.ID, `{"address":null}`)
	got := ts.allocate(p.ID, `{"address":"10.0.0.1","force":true}`)
	if got[0].Address != "10.0.0.1" {
		t.Fatalf("forced %v", addrs(got))
	}

	// Released with force, an address is free at once.
	b := ts.allocate(p.ID, `{}`)[0]
	var frel map[string]any
	ts.call("DELETE", "/v1/ipam/addresses/"+b.ID+"?force=true", "", 200, &frel)
	if _, ok := frel["quarantined_until"]; ok {
		t.Errorf("forced release %v", frel)
	}
	if got := ts.allocate(p.ID, `{}`); got[0].Address != b.Address {
		t.Fatalf("after a forced release got %s, want %s", got[0].Address, b.Address)
	}
	wantError(t, ts.do("DELETE", "/v1/ipam/addresses/"+b.ID+"?force=maybe", ""), 400, CodeInvalidRequest, "force")

	// After the quarantine the address comes back.
	c := ts.allocate(p.ID, `{}`)[0]
	ts.call("DELETE", "/v1/ipam/addresses/"+c.ID, "", 200, nil)
	ts.b.advance(11 * time.Minute)
	if got := ts.allocate(p.ID, `{}`); got[0].Address != c.Address {
		t.Fatalf("after the quarantine got %s, want %s", got[0].Address, c.Address)
	}
}

func TestIPAM_Addresses(t *testing.T) {
	ts := newLeader(t)
	p := ts.createPrefix(`{"prefix":"10.0.0.0/24"}`)
	ts.call("POST", "/v1/ipam/vrfs", `{"id":"blue"}`, 201, nil)
	pb := ts.createPrefix(`{"prefix":"10.0.0.0/24","vrf":"blue"}`)

	// POST /v1/ipam/addresses finds the active prefix containing the address.
	var out testAddresses
	ts.call("POST", "/v1/ipam/addresses", `{"address":"10.0.0.10","dns_name":"Web1.Moxxie.Test.","owner":"vm:101/net0","tenant":"t1"}`, 201, &out)
	a := out.Addresses[0]
	if a.Address != "10.0.0.10" || a.PrefixID != p.ID || a.DNSName != "web1.moxxie.test" || a.VRF != "global" {
		t.Fatalf("address %+v", a)
	}
	ts.call("POST", "/v1/ipam/addresses", `{"address":"10.0.0.10","vrf":"blue"}`, 201, &out)
	if out.Addresses[0].PrefixID != pb.ID || out.Addresses[0].VRF != "blue" {
		t.Fatalf("blue address %+v", out.Addresses[0])
	}
	ts.refused("POST", "/v1/ipam/addresses", `{"address":"10.0.0.10"}`, 409, CodeConflict, "address", false)
	ts.refused("POST", "/v1/ipam/addresses", `{"address":"10.9.0.1"}`, 400, CodeInvalidRequest, "address", false)
	ts.refused("POST", "/v1/ipam/addresses", `{}`, 400, CodeInvalidRequest, "address", true)
	ts.refused("POST", "/v1/ipam/addresses", `{"address":"10.0.0.11","count":2}`, 400, CodeInvalidRequest, "count", true)
	ts.refused("POST", "/v1/ipam/addresses", `{"address":"10.0.0.11","vrf":"Bad VRF"}`, 400, CodeInvalidRequest, "vrf", true)
	ts.refused("POST", "/v1/ipam/addresses", `{"address":"10.0.0.11","vrf":"green"}`, 400, CodeInvalidRequest, "vrf", false)
	ts.refused("POST", "/v1/ipam/addresses", ``, 400, CodeInvalidRequest, "", true)

	var got testAddress
	ts.call("GET", "/v1/ipam/addresses/"+a.ID, "", 200, &got)
	if got != a {
		t.Fatalf("get %+v, want %+v", got, a)
	}
	wantError(t, ts.do("GET", "/v1/ipam/addresses/nope", ""), 404, CodeNotFound, "id")

	ts.call("PATCH", "/v1/ipam/addresses/"+a.ID, `{"status":"deprecated","dns_name":"web2.moxxie.test"}`, 200, &got)
	if got.Status != "deprecated" || got.DNSName != "web2.moxxie.test" || got.Owner != "vm:101/net0" || got.Tenant != "t1" || got.ModifyIndex <= a.ModifyIndex {
		t.Fatalf("patched %+v", got)
	}
	got = testAddress{}
	ts.call("PATCH", "/v1/ipam/addresses/"+a.ID, `{"owner":""}`, 200, &got)
	if got.Owner != "" || got.DNSName != "web2.moxxie.test" {
		t.Fatalf("patched %+v", got)
	}
	got = testAddress{}
	ts.call("PATCH", "/v1/ipam/addresses/"+a.ID, `{"dns_name":null,"tenant":null}`, 200, &got)
	if got.DNSName != "" || got.Tenant != "" || got.Status != "deprecated" {
		t.Fatalf("patched with null %+v", got)
	}
	ts.call("PATCH", "/v1/ipam/addresses/"+a.ID, `{"dns_name":"web2.moxxie.test","tenant":"t1"}`, 200, &got)
	ts.refused("PATCH", "/v1/ipam/addresses/"+a.ID, `{"status":null}`, 400, CodeInvalidRequest, "status", true)
	ts.refused("PATCH", "/v1/ipam/addresses/"+a.ID, `{"status":"free"}`, 400, CodeInvalidRequest, "status", true)
	ts.refused("PATCH", "/v1/ipam/addresses/"+a.ID, `{"address":"10.0.0.11"}`, 400, CodeInvalidRequest, "address", true)
	ts.refused("PATCH", "/v1/ipam/addresses/nope", `{"status":"active"}`, 404, CodeNotFound, "id", false)

	for _, c := range []struct {
		query string
		n     int
	}{
		{"", 2}, {"?vrf=blue", 1}, {"?prefix_id=" + p.ID, 1}, {"?tenant=t1", 1}, {"?dns_name=WEB2.moxxie.test.", 1},
		{"?status=deprecated", 1}, {"?status=active", 1}, {"?owner=vm:101/net0", 0}, {"?limit=1", 1},
	} {
		var l testAddresses
		ts.call("GET", "/v1/ipam/addresses"+c.query, "", 200, &l)
		if len(l.Addresses) != c.n {
			t.Errorf("%s: %d addresses, want %d", c.query, len(l.Addresses), c.n)
		}
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?limit=-1"} {
		wantError(t, ts.do("GET", "/v1/ipam/addresses"+q, ""), 400, CodeInvalidRequest, "limit")
	}
	wantError(t, ts.do("GET", "/v1/ipam/addresses?status=free", ""), 400, CodeInvalidRequest, "status")
}

// TestIPAM_AddressPages pages through a prefix's addresses, and through
// all of them, with limit and the next each page gives as after.
func TestIPAM_AddressPages(t *testing.T) {
	ts := newLeader(t)
	p := ts.createPrefix(`{"prefix":"10.0.0.0/24"}`)
	ts.call("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"count":10,"owner":"vm:101/net0"}`, 201, nil)
	var whole testAddresses
	ts.call("GET", "/v1/ipam/addresses?prefix_id="+p.ID, "", 200, &whole)
	if len(whole.Addresses) != 10 {
		t.Fatalf("%d addresses, want 10", len(whole.Addresses))
	}
	for _, q := range []string{"prefix_id=" + p.ID, "owner=vm:101/net0", "vrf=global", ""} {
		for _, limit := range []int{1, 3, 5, 10, 11} {
			var got []testAddress
			after := ""
			for n := 1; ; n++ {
				var page testAddresses
				ts.call("GET", fmt.Sprintf("/v1/ipam/addresses?%s&limit=%d%s", q, limit, after), "", 200, &page)
				got = append(got, page.Addresses...)
				if page.Next == nil {
					if n != (10+limit-1)/limit {
						t.Errorf("%s, limit %d: %d pages", q, limit, n)
					}
					break
				}
				if len(page.Addresses) != limit || *page.Next == "" || n > 10 {
					t.Fatalf("%s, limit %d, page %d: %d addresses and next %q", q, limit, n, len(page.Addresses), *page.Next)
				}
				after = "&after=" + url.QueryEscape(*page.Next)
			}
			if fmt.Sprint(got) != fmt.Sprint(whole.Addresses) {
				t.Errorf("%s in pages of %d:\n%v\nwant\n%v", q, limit, got, whole.Addresses)
			}
		}
	}
	for _, bad := range []string{"x", "AQ", "AQAECgAAAQFh%3D", "not%20base64"} {
		wantError(t, ts.do("GET", "/v1/ipam/addresses?limit=2&after="+bad, ""), 400, CodeInvalidRequest, "after")
	}
}

func TestIPAM_ContainersAndAvailable(t *testing.T) {
	ts := newLeader(t)
	child := ts.createPrefix(`{"prefix":"10.0.1.0/24"}`)
	// A container above an existing prefix adopts it.
	c := ts.createPrefix(`{"prefix":"10.0.0.0/16","status":"container"}`)
	var got testPrefix
	ts.call("GET", "/v1/ipam/prefixes/"+child.ID, "", 200, &got)
	if got.ParentID != c.ID {
		t.Fatalf("child %+v not adopted by %s", got, c.ID)
	}

	var p testPrefix
	ts.call("POST", "/v1/ipam/prefixes/"+c.ID+"/allocate-prefix", `{"prefix_length":24,"tenant":"t1","is_pool":true}`, 201, &p)
	if p.Prefix != "10.0.0.0/24" || p.ParentID != c.ID || p.VRF != "global" || !p.IsPool || p.Tenant != "t1" || p.Status != "active" || !uuidRE.MatchString(p.ID) {
		t.Fatalf("allocated %+v", p)
	}
	ts.call("POST", "/v1/ipam/prefixes/"+c.ID+"/allocate-prefix", `{"prefix_length":23,"status":"container"}`, 201, &p)
	if p.Prefix != "10.0.2.0/23" || p.Status != "container" {
		t.Fatalf("allocated %+v", p)
	}
	var avail AvailableList
	ts.call("GET", "/v1/ipam/prefixes/"+c.ID+"/available?limit=3", "", 200, &avail)
	if fmt.Sprint(avail.Available) != "[10.0.4.0/22 10.0.8.0/21 10.0.16.0/20]" {
		t.Fatalf("free blocks %v", avail.Available)
	}
	var l struct{ Prefixes []testPrefix }
	ts.call("GET", "/v1/ipam/prefixes?parent_id="+c.ID, "", 200, &l)
	if len(l.Prefixes) != 3 {
		t.Fatalf("children %+v", l)
	}

	ts.refused("POST", "/v1/ipam/prefixes/"+c.ID+"/allocate-prefix", `{}`, 400, CodeInvalidRequest, "prefix_length", true)
	ts.refused("POST", "/v1/ipam/prefixes/"+c.ID+"/allocate-prefix", `{"prefix_length":129}`, 400, CodeInvalidRequest, "prefix_length", true)
	if msg := ts.refused("POST", "/v1/ipam/prefixes/"+c.ID+"/allocate-prefix", `{"prefix_length":0}`, 400, CodeInvalidRequest, "prefix_length", true); !strings.Contains(msg, "1-32 in an IPv4 container") {
		t.Errorf("prefix_length 0: %s", msg)
	}
	ts.refused("POST", "/v1/ipam/prefixes/"+c.ID+"/allocate-prefix", `{"prefix_length":8}`, 400, CodeInvalidRequest, "prefix_length", false)
	ts.refused("POST", "/v1/ipam/prefixes/"+c.ID+"/allocate-prefix", `{"prefix_length":24,"status":"container","is_pool":true}`, 400, CodeInvalidRequest, "is_pool", true)
	ts.refused("POST", "/v1/ipam/prefixes/"+child.ID+"/allocate-prefix", `{"prefix_length":28}`, 409, CodeConflict, "prefix_id", false)
	ts.refused("POST", "/v1/ipam/prefixes/nope/allocate-prefix", `{"prefix_length":28}`, 404, CodeNotFound, "id", false)
	ts.refused("DELETE", "/v1/ipam/prefixes/"+c.ID, "", 409, CodeConflict, "id", false)
	ts.refused("DELETE", "/v1/ipam/prefixes/"+c.ID+"?reparent=maybe", "", 400, CodeInvalidRequest, "reparent", true)
	// With reparent it goes, and its children move up to its parent.
	ts.call("DELETE", "/v1/ipam/prefixes/"+c.ID+"?reparent", "", 200, nil)
	var moved testPrefix
	ts.call("GET", "/v1/ipam/prefixes/"+p.ID, "", 200, &moved)
	if moved.ID != p.ID || moved.ParentID != "" {
		t.Fatalf("child of the deleted top-level container %+v", moved)
	}

	small := ts.createPrefix(`{"prefix":"192.168.0.0/30","status":"container"}`)
	ts.refused("POST", "/v1/ipam/prefixes/"+small.ID+"/allocate-prefix", `{"prefix_length":30}`, 400, CodeInvalidRequest, "prefix_length", false)
	ts.call("POST", "/v1/ipam/prefixes/"+small.ID+"/allocate-prefix", `{"prefix_length":31}`, 201, nil)
	ts.call("POST", "/v1/ipam/prefixes/"+small.ID+"/allocate-prefix", `{"prefix_length":31}`, 201, nil)
	ts.refused("POST", "/v1/ipam/prefixes/"+small.ID+"/allocate-prefix", `{"prefix_length":32}`, 409, CodeExhausted, "prefix_length", false)

	// available on an active prefix: addresses, limit bounded.
	ts.call("GET", "/v1/ipam/prefixes/"+child.ID+"/available", "", 200, &avail)
	if len(avail.Available) != 50 || avail.Available[0] != "10.0.1.1" {
		t.Fatalf("available %d %v", len(avail.Available), avail.Available[:1])
	}
	ts.call("GET", "/v1/ipam/prefixes/"+child.ID+"/available?limit=1000", "", 200, &avail)
	if len(avail.Available) != 254 {
		t.Fatalf("available %d", len(avail.Available))
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=ten"} {
		wantError(t, ts.do("GET", "/v1/ipam/prefixes/"+child.ID+"/available"+q, ""), 400, CodeInvalidRequest, "limit")
	}
	wantError(t, ts.do("GET", "/v1/ipam/prefixes/nope/available", ""), 404, CodeNotFound, "id")
}

func TestIPAM_IPRanges(t *testing.T) {
	ts := newLeader(t)
	p := ts.createPrefix(`{"prefix":"10.0.0.0/24"}`)
	var g map[string]any
	ts.call("POST", "/v1/ipam/ip-ranges", `{"prefix_id":"`+p.ID+`","start_address":"10.0.0.1","end_address":"10.0.0.100","description":"dhcp"}`, 201, &g)
	id, _ := g["id"].(string)
	if !uuidRE.MatchString(id) || g["prefix_id"] != p.ID || g["start_address"] != "10.0.0.1" || g["end_address"] != "10.0.0.100" || g["description"] != "dhcp" {
		t.Fatalf("range %v", g)
	}
	if got := ts.allocate(p.ID, `{}`); got[0].Address != "10.0.0.101" {
		t.Fatalf("allocated %s inside the range", got[0].Address)
	}
	var l struct {
		IPRanges []map[string]any `json:"ip_ranges"`
	}
	ts.call("GET", "/v1/ipam/ip-ranges?prefix_id="+p.ID, "", 200, &l)
	if len(l.IPRanges) != 1 || l.IPRanges[0]["id"] != id {
		t.Fatalf("ranges %v", l)
	}
	wantError(t, ts.do("GET", "/v1/ipam/ip-ranges?prefix_id=other", ""), 400, CodeInvalidRequest, "prefix_id")
	ts.call("GET", "/v1/ipam/ip-ranges/"+id, "", 200, &g)
	wantError(t, ts.do("GET", "/v1/ipam/ip-ranges/nope", ""), 404, CodeNotFound, "id")

	pre := `{"prefix_id":"` + p.ID + `",`
	ts.refused("POST", "/v1/ipam/ip-ranges", pre+`"start_address":"10.0.0.50","end_address":"10.0.0.150"}`, 409, CodeConflict, "start_address", false)
	ts.refused("POST", "/v1/ipam/ip-ranges", pre+`"start_address":"10.0.0.200","end_address":"10.0.0.150"}`, 400, CodeInvalidRequest, "end_address", true)
	ts.refused("POST", "/v1/ipam/ip-ranges", pre+`"start_address":"10.0.0.200","end_address":"2001:db8::1"}`, 400, CodeInvalidRequest, "end_address", true)
	ts.refused("POST", "/v1/ipam/ip-ranges", pre+`"start_address":"x","end_address":"10.0.0.201"}`, 400, CodeInvalidRequest, "start_address", true)
	ts.refused("POST", "/v1/ipam/ip-ranges", pre+`"start_address":"10.0.0.200","end_address":"10.0.1.1"}`, 400, CodeInvalidRequest, "end_address", false)
	ts.refused("POST", "/v1/ipam/ip-ranges", `{"start_address":"10.0.0.200","end_address":"10.0.0.201"}`, 400, CodeInvalidRequest, "prefix_id", true)
	ts.refused("POST", "/v1/ipam/ip-ranges", `{"prefix_id":"nope","start_address":"10.0.0.200","end_address":"10.0.0.201"}`, 404, CodeNotFound, "prefix_id", false)

	ts.call("DELETE", "/v1/ipam/ip-ranges/"+id, "", 200, &g)
	if g["id"] != id {
		t.Fatalf("deleted %v", g)
	}
	if got := ts.allocate(p.ID, `{}`); got[0].Address != "10.0.0.1" {
		t.Fatalf("after the range went, allocated %s", got[0].Address)
	}
	wantError(t, ts.do("DELETE", "/v1/ipam/ip-ranges/"+id, ""), 404, CodeNotFound, "id")
}

// TestIPAM_VNIPoolsMayNotOverlap: a VNI names one overlay network in every
// zone, so a VNI pool sharing numbers with another is refused, naming it;
// VLAN groups may share numbers.
func TestIPAM_VNIPoolsMayNotOverlap(t *testing.T) {
	ts := newLeader(t)
	var whole testPool
	ts.call("POST", "/v1/ipam/vni-pools", `{"name":"whole"}`, 201, &whole)
	if fmt.Sprint(whole.Ranges) != "[{1 16777215}]" {
		t.Fatalf("a VNI pool without ranges: %+v", whole)
	}
	msg := ts.refused("POST", "/v1/ipam/vni-pools", `{"name":"lab","ranges":[{"first":100,"last":101}]}`, 409, CodeConflict, "ranges", false)
	if !strings.Contains(msg, "VNIs 100-101 overlap VNI pool whole (1-16777215)") {
		t.Errorf("message %q", msg)
	}
	ts.call("DELETE", "/v1/ipam/vni-pools/whole", "", 200, nil)
	ts.call("POST", "/v1/ipam/vni-pools", `{"name":"a","ranges":[{"first":5000,"last":5001}]}`, 201, nil)
	ts.refused("POST", "/v1/ipam/vni-pools", `{"name":"b","ranges":[{"first":4000,"last":5000}]}`, 409, CodeConflict, "ranges", false)
	ts.call("POST", "/v1/ipam/vni-pools", `{"name":"b","ranges":[{"first":5002,"last":5003}]}`, 201, nil)
	ts.call("POST", "/v1/ipam/vlan-groups", `{"name":"site1","ranges":[{"first":100,"last":200}]}`, 201, nil)
	ts.call("POST", "/v1/ipam/vlan-groups", `{"name":"site2","ranges":[{"first":100,"last":200}]}`, 201, nil)
}

func TestIPAM_Pools(t *testing.T) {
	// "all" is a pool of every number for VLAN groups, which may share
	// numbers; VNI pools may not, so there it leaves out those of "lab".
	for _, k := range []struct {
		pools, items, number, poolParam, list, itemList string
		allBody, all                                    string
		allNum, bad                                     int
	}{
		{"vlan-groups", "vlans", "vid", "group_id", "vlan_groups", "vlans", `{"name":"all"}`, "[{1 4094}]", 100, 4095},
		{"vni-pools", "vnis", "vni", "pool_id", "vni_pools", "vnis", `{"name":"all","ranges":[{"first":1000,"last":16777215}]}`, "[{1000 16777215}]", 1000, 16777216},
	} {
		t.Run(k.pools, func(t *testing.T) {
			ts := newLeader(t)
			base := "/v1/ipam/" + k.pools
			var all, g testPool
			ts.call("POST", base, k.allBody, 201, &all)
			if fmt.Sprint(all.Ranges) != k.all || all.Utilization == nil || all.Utilization.Used != "0" || !uuidRE.MatchString(all.ID) {
				t.Fatalf("pool %+v", all)
			}
			ts.call("POST", base, `{"name":"lab","ranges":[{"first":100,"last":101}],"tenant":"t1","description":"d"}`, 201, &g)
			if g.Name != "lab" || fmt.Sprint(g.Ranges) != "[{100 101}]" || g.Tenant != "t1" || g.Utilization.Size != "2" {
				t.Fatalf("pool %+v", g)
			}
			var got testPool
			for _, ref := range []string{g.ID, "lab"} {
				ts.call("GET", base+"/"+ref, "", 200, &got)
				if got.ID != g.ID {
					t.Fatalf("get %s: %+v", ref, got)
				}
			}
			wantError(t, ts.do("GET", base+"/nope", ""), 404, CodeNotFound, "id")
			// The pool changes hands; null gives it to no tenant.
			ts.call("PATCH", base+"/lab", `{"tenant":"t2"}`, 200, &got)
			if got.Tenant != "t2" {
				t.Fatalf("given to t2: %+v", got)
			}
			ts.refused("PATCH", base+"/lab", `{"tenant":"T 2"}`, 400, CodeInvalidRequest, "tenant", true)
			got = testPool{}
			ts.call("PATCH", base+"/lab", `{"tenant":null}`, 200, &got)
			if got.Tenant != "" {
				t.Fatalf("given to none: %+v", got)
			}
			ts.call("PATCH", base+"/lab", `{"tenant":"t1"}`, 200, &got)
			// An empty list of ranges is not "all of them", and a name that
			// looks like an ID would be shadowed by the pool with that ID.
			ts.refused("POST", base, `{"name":"none","ranges":[]}`, 400, CodeInvalidRequest, "ranges", true)
			msg := ts.refused("POST", base, `{"name":"half","ranges":[{"first":1,"last":5},{"first":10}]}`, 400, CodeInvalidRequest, "ranges[1].last", true)
			ts.refused("POST", base, `{"name":"half","ranges":[{"last":10}]}`, 400, CodeInvalidRequest, "ranges[0].first", true)
			if !strings.Contains(msg, "range 10-0: last is missing or 0, which is no ") {
				t.Errorf("half a range: %q", msg)
			}
			ts.refused("POST", base, `{"name":"null","ranges":[null]}`, 400, CodeInvalidRequest, "ranges[0].first", true)
			ts.refused("POST", base, `{"name":"nil","ranges":null}`, 400, CodeInvalidRequest, "ranges", true)
			ts.refused("POST", base, `{"name":"`+g.ID+`"}`, 400, CodeInvalidRequest, "name", true)
			var list map[string][]testPool
			ts.call("GET", base, "", 200, &list)
			if len(list[k.list]) != 2 {
				t.Fatalf("list %v", list)
			}

			ts.refused("POST", base, `{"name":"lab"}`, 409, CodeConflict, "name", false)
			// An explicit 0 is refused, not taken as "the lowest free one".
			ts.refused("POST", base+"/lab/allocate", `{"`+k.number+`":0}`, 400, CodeInvalidRequest, k.number, true)
			ts.refused("POST", base, `{"name":"Bad Name"}`, 400, CodeInvalidRequest, "name", true)
			ts.refused("POST", base, `{"name":"x","ranges":[{"first":0,"last":10}]}`, 400, CodeInvalidRequest, "ranges[0].first", true)
			ts.refused("POST", base, `{"name":"x","ranges":[{"first":1,"last":10},{"first":20,"last":`+strconv.Itoa(k.bad)+`}]}`, 400, CodeInvalidRequest, "ranges[1].last", true)
			ts.refused("POST", base, `{"name":"x","ranges":[{"first":1,"last":10},{"first":30,"last":20}]}`, 400, CodeInvalidRequest, "ranges[1]", true)
			ts.refused("POST", base, `{"name":"x","ranges":[{"first":10,"last":20},{"first":15,"last":30}]}`, 400, CodeInvalidRequest, "ranges[1]", true)
			ts.refused("POST", base, `{"name":"x","ranges":[{"first":50,"last":60},{"first":10,"last":20},{"first":1,"last":12}]}`, 400, CodeInvalidRequest, "ranges[2]", true)
			ts.refused("POST", base, `{"name":"x","kind":"vlan"}`, 400, CodeInvalidRequest, "kind", true)

			// Allocate: the lowest free, a chosen one, fallback, exhaustion.
			var a, b testIDAlloc
			ts.call("POST", base+"/lab/allocate", ``, 201, &a)
			num := func(x testIDAlloc) int { return x.VID + x.VNI }
			if num(a) != 100 || a.PoolID != g.ID || !uuidRE.MatchString(a.ID) || (k.number == "vid") != (a.VID != 0) {
				t.Fatalf("allocated %+v", a)
			}
			ts.refused("POST", base+"/lab/allocate", `{"`+k.number+`":100}`, 409, CodeConflict, k.number, false)
			ts.call("POST", base+"/"+g.ID+"/allocate", `{"`+k.number+`":100,"fallback":true,"name":"web","tenant":"t1","owner":"vm:101","description":"d"}`, 201, &b)
			if num(b) != 101 || b.Name != "web" || b.Owner != "vm:101" {
				t.Fatalf("fallback %+v", b)
			}
			ts.refused("POST", base+"/lab/allocate", `{"fallback":true}`, 400, CodeInvalidRequest, "fallback", true)
			// A name is taken once within a pool.
			ts.refused("POST", base+"/lab/allocate", `{"name":"web"}`, 409, CodeConflict, "name", false)
			ts.refused("POST", base+"/lab/allocate", `{}`, 409, CodeExhausted, k.number, false)
			ts.refused("POST", base+"/all/allocate", `{"`+k.number+`":`+strconv.Itoa(k.bad)+`}`, 400, CodeInvalidRequest, k.number, true)
			ts.refused("POST", base+"/all/allocate", `{"`+k.number+`":-1}`, 400, CodeInvalidRequest, k.number, true)
			ts.refused("POST", base+"/all/allocate", `{"name":"A"}`, 400, CodeInvalidRequest, "name", true)
			other := map[string]string{"vid": "vni", "vni": "vid"}[k.number]
			ts.refused("POST", base+"/all/allocate", `{"`+other+`":5}`, 400, CodeInvalidRequest, other, true)
			ts.refused("POST", base+"/nope/allocate", `{}`, 404, CodeNotFound, "id", true)
			var c testIDAlloc
			ts.call("POST", base+"/all/allocate", `{"`+k.number+`":`+strconv.Itoa(k.allNum)+`}`, 201, &c)
			if num(c) != k.allNum || c.PoolID != all.ID {
				t.Fatalf("allocated %+v from all", c)
			}

			itemBase := "/v1/ipam/" + k.items
			// A number in the path is no allocation's ID: the 404 says where
			// the allocations of a number are.
			for _, m := range []string{"GET", "PATCH", "DELETE"} {
				body := ""
				if m == "PATCH" {
					body = `{"description":"d"}`
				}
				e := wantError(t, ts.do(m, itemBase+"/100", body), 404, CodeNotFound, "id")
				if !strings.Contains(e.Message, "the path takes the") || !strings.Contains(e.Message, "?"+k.poolParam+"=") {
					t.Errorf("%s %s/100: %q", m, itemBase, e.Message)
				}
			}
			for _, q := range []struct {
				query string
				n     int
			}{
				{"", 3}, {"?" + k.poolParam + "=lab", 2}, {"?" + k.poolParam + "=" + all.ID, 1},
				{"?tenant=t1", 1}, {"?" + k.poolParam + "=all&tenant=t1", 0},
			} {
				var l map[string][]testIDAlloc
				ts.call("GET", itemBase+q.query, "", 200, &l)
				if len(l[k.itemList]) != q.n {
					t.Errorf("%s: %v, want %d", q.query, l, q.n)
				}
			}
			var item testIDAlloc
			ts.call("GET", itemBase+"/"+b.ID, "", 200, &item)
			if item != b {
				t.Fatalf("get %+v, want %+v", item, b)
			}
			otherItems := map[string]string{"vlans": "vnis", "vnis": "vlans"}[k.items]
			wantError(t, ts.do("GET", "/v1/ipam/"+otherItems+"/"+b.ID, ""), 404, CodeNotFound, "id")
			wantError(t, ts.do("DELETE", "/v1/ipam/"+otherItems+"/"+b.ID, ""), 404, CodeNotFound, "id")

			ts.refused("DELETE", base+"/lab", "", 409, CodeConflict, "id", false)
			for _, x := range []testIDAlloc{a, b} {
				ts.call("DELETE", itemBase+"/"+x.ID, "", 200, &item)
				if item.ID != x.ID {
					t.Fatalf("released %+v", item)
				}
			}
			wantError(t, ts.do("GET", itemBase+"/"+a.ID, ""), 404, CodeNotFound, "id")
			wantError(t, ts.do("DELETE", itemBase+"/"+a.ID, ""), 404, CodeNotFound, "id")
			ts.call("DELETE", base+"/lab", "", 200, &got)
			if got.ID != g.ID {
				t.Fatalf("deleted %+v", got)
			}
			wantError(t, ts.do("DELETE", base+"/lab", ""), 404, CodeNotFound, "id")
			// A retried delete by name replays the first answer.
			ts.call("POST", base, `{"name":"tmp","ranges":[{"first":300,"last":301}]}`, 201, nil)
			first := ts.do("DELETE", base+"/tmp", "", "Idempotency-Key", "del-tmp")
			wantStatus(t, first, 200)
			retry := ts.do("DELETE", base+"/tmp", "", "Idempotency-Key", "del-tmp")
			if wantStatus(t, retry, 200); retry.Body.String() != first.Body.String() || retry.Header().Get("Idempotent-Replayed") != "true" {
				t.Fatalf("retried delete %s, first %s", retry.Body, first.Body)
			}
			wantError(t, ts.do("DELETE", base+"/tmp", "", "Idempotency-Key", "del-tmp-2"), 404, CodeNotFound, "id")
			wantError(t, ts.do("GET", base+"/"+g.ID, ""), 404, CodeNotFound, "id")
		})
	}
}

func TestIPAM_Zones(t *testing.T) {
	ts := newLeader(t)
	var z map[string]any
	ts.call("POST", "/v1/dns/zones", `{"name":"Moxxie.Test.","tenant":"t1","description":"dev"}`, 201, &z)
	if z["id"] != "moxxie.test" || z["ttl"] != 60.0 || z["tenant"] != "t1" || z["description"] != "dev" || z["created_at"] != "2026-01-02T03:04:05Z" {
		t.Fatalf("zone %v", z)
	}
	ts.call("POST", "/v1/dns/zones", `{"name":"lab.example","ttl":300}`, 201, &z)
	if z["ttl"] != 300.0 {
		t.Fatalf("zone %v", z)
	}
	var l struct{ Zones []fsm.Zone }
	ts.call("GET", "/v1/dns/zones", "", 200, &l)
	if len(l.Zones) != 2 || l.Zones[0].ID != "lab.example" || l.Zones[1].ID != "moxxie.test" {
		t.Fatalf("zones %+v", l)
	}
	ts.call("GET", "/v1/dns/zones/MOXXIE.test.", "", 200, &z)
	if z["id"] != "moxxie.test" {
		t.Fatalf("zone %v", z)
	}
	wantError(t, ts.do("GET", "/v1/dns/zones/nope.test", ""), 404, CodeNotFound, "name")
	wantError(t, ts.do("GET", "/v1/dns/zones/Nope.Test.", ""), 404, CodeNotFound, "name")
	wantError(t, ts.do("DELETE", "/v1/dns/zones/Nope.Test.", ""), 404, CodeNotFound, "name")

	ts.refused("POST", "/v1/dns/zones", `{"name":"moxxie.test"}`, 409, CodeConflict, "name", false)
	ts.refused("POST", "/v1/dns/zones", `{}`, 400, CodeInvalidRequest, "name", true)
	ts.refused("POST", "/v1/dns/zones", `{"name":"zero.test","ttl":0}`, 400, CodeInvalidRequest, "ttl", true)
	ts.refused("POST", "/v1/dns/zones", `{"name":"bad_zone.test"}`, 400, CodeInvalidRequest, "name", true)
	ts.refused("POST", "/v1/dns/zones", `{"name":"0.10.in-addr.arpa"}`, 400, CodeInvalidRequest, "name", true)
	for _, special := range []string{"localhost", "Dev.LocalHost.", "invalid", "x.invalid"} {
		if msg := ts.refused("POST", "/v1/dns/zones", `{"name":"`+special+`"}`, 400, CodeInvalidRequest, "name", true); !strings.Contains(msg, "RFC 6761") {
			t.Errorf("%s: %q", special, msg)
		}
	}
	ts.refused("POST", "/v1/dns/zones", `{"name":"x.test","ttl":86401}`, 400, CodeInvalidRequest, "ttl", true)
	ts.refused("POST", "/v1/dns/zones", `{"name":"x.test","ttl":-1}`, 400, CodeInvalidRequest, "ttl", true)
	// Names up to 242 characters, so that the SOA's hostmaster.NAME fits
	// in a DNS name; by path as long as they can be.
	labels := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "."
	longest := labels + strings.Repeat("d", 242-len(labels))
	ts.refused("POST", "/v1/dns/zones", `{"name":"d`+longest+`"}`, 400, CodeInvalidRequest, "name", true)
	ts.call("POST", "/v1/dns/zones", `{"name":"`+longest+`."}`, 201, nil)
	ts.call("GET", "/v1/dns/zones/"+longest+".", "", 200, nil)
	wantError(t, ts.do("GET", "/v1/dns/zones/"+labels+strings.Repeat("d", 61)+".", ""), 404, CodeNotFound, "name")
	wantError(t, ts.do("GET", "/v1/dns/zones/"+strings.Repeat("x", 255), ""), 400, CodeInvalidRequest, "name")
	ts.call("DELETE", "/v1/dns/zones/"+longest, "", 200, nil)

	// A zone that serves names is kept unless forced: names in a more
	// specific zone, or outside, do not count.
	ts.call("POST", "/v1/dns/zones", `{"name":"sub.moxxie.test"}`, 201, nil)
	p := ts.createPrefix(`{"prefix":"10.0.0.0/24"}`)
	ts.allocate(p.ID, `{"dns_name":"a.sub.moxxie.test"}`)
	ts.allocate(p.ID, `{"dns_name":"web.lab.example"}`)
	ts.call("DELETE", "/v1/dns/zones/moxxie.test", "", 200, nil)
	ts.refused("DELETE", "/v1/dns/zones/sub.moxxie.test", "", 409, CodeConflict, "name", true)
	ts.call("POST", "/v1/dns/zones", `{"name":"moxxie.test"}`, 201, nil)
	// Names that the zone above would serve do not count either.
	ts.call("DELETE", "/v1/dns/zones/sub.moxxie.test", "", 200, nil)
	ts.allocate(p.ID, `{"dns_name":"Web.Moxxie.Test","count":2}`)
	msg := ts.refused("DELETE", "/v1/dns/zones/moxxie.test", "", 409, CodeConflict, "name", true)
	if !strings.Contains(msg, "zone moxxie.test serves 3 names, such as a.sub.moxxie.test (address 10.0.0.1") {
		t.Errorf("message %q", msg)
	}
	// A zone's TTL and description change; nothing to change writes
	// nothing.
	var up map[string]any
	ts.call("PATCH", "/v1/dns/zones/Moxxie.Test.", `{"ttl":300,"description":"lab"}`, 200, &up)
	if up["ttl"] != 300.0 || up["description"] != "lab" || up["modify_index"] == nil || up["updated_at"] == nil {
		t.Fatalf("updated zone %v", up)
	}
	var same map[string]any
	ts.call("PATCH", "/v1/dns/zones/moxxie.test", `{}`, 200, &same)
	if same["ttl"] != 300.0 || same["modify_index"] != up["modify_index"] {
		t.Fatalf("an empty PATCH changed the zone, or answered %v", same)
	}
	var cleared map[string]any
	ts.call("PATCH", "/v1/dns/zones/moxxie.test", `{"description":null}`, 200, &cleared)
	if _, ok := cleared["description"]; ok || cleared["ttl"] != 300.0 {
		t.Fatalf("description not cleared: %v", cleared)
	}
	ts.refused("PATCH", "/v1/dns/zones/moxxie.test", `{"ttl":0}`, 400, CodeInvalidRequest, "ttl", true)
	ts.refused("PATCH", "/v1/dns/zones/moxxie.test", `{"ttl":86401}`, 400, CodeInvalidRequest, "ttl", true)
	ts.refused("PATCH", "/v1/dns/zones/moxxie.test", `{"ttl":null}`, 400, CodeInvalidRequest, "ttl", true)
	ts.refused("PATCH", "/v1/dns/zones/moxxie.test", `{"tenant":"t1"}`, 400, CodeInvalidRequest, "tenant", true)
	wantError(t, ts.do("PATCH", "/v1/dns/zones/nope.test", `{"ttl":60}`), 404, CodeNotFound, "name")
	ts.refused("DELETE", "/v1/dns/zones/moxxie.test?force=maybe", "", 400, CodeInvalidRequest, "force", true)
	ts.call("DELETE", "/v1/dns/zones/Moxxie.Test.?force=true", "", 200, &z)
	if z["id"] != "moxxie.test" {
		t.Fatalf("deleted %v", z)
	}
	wantError(t, ts.do("DELETE", "/v1/dns/zones/moxxie.test", ""), 404, CodeNotFound, "name")
}

// TestIPAM_UnservedNameWarns: an address given a DNS name that no zone
// serves is written, with a Warning header that says so; a name a zone
// serves, or a refused write, has none.
func TestIPAM_UnservedNameWarns(t *testing.T) {
	ts := newLeader(t)
	ts.call("POST", "/v1/dns/zones", `{"name":"moxxie.test"}`, 201, nil)
	p := ts.createPrefix(`{"prefix":"10.0.0.0/24"}`)
	warning := func(method, target, body string, status int) string {
		t.Helper()
		rec := ts.do(method, target, body)
		wantStatus(t, rec, status)
		return rec.Header().Get("Warning")
	}
	if w := warning("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"dns_name":"web.moxxie.test"}`, 201); w != "" {
		t.Errorf("a served name warned %q", w)
	}
	w := warning("POST", "/v1/ipam/prefixes/"+p.ID+"/allocate", `{"dns_name":"web.moxie.test"}`, 201)
	if w != `299 - "no DNS zone serves web.moxie.test: it resolves once a zone holds it (POST /v1/dns/zones, moxxiectl dns zone create)"` {
		t.Errorf("allocate: Warning %q", w)
	}
	if w := warning("POST", "/v1/ipam/addresses", `{"address":"10.0.0.50","dns_name":"db.example.org"}`, 201); !strings.Contains(w, "no DNS zone serves db.example.org") {
		t.Errorf("address create: Warning %q", w)
	}
	var l AddressList
	ts.call("GET", "/v1/ipam/addresses?address=10.0.0.50", "", 200, &l)
	if w := warning("PATCH", "/v1/ipam/addresses/"+l.Addresses[0].ID, `{"dns_name":"db.moxxie.test"}`, 200); w != "" {
		t.Errorf("rename into a zone warned %q", w)
	}
	if w := warning("PATCH", "/v1/ipam/addresses/"+l.Addresses[0].ID, `{"dns_name":"Db.Example.Org."}`, 200); !strings.Contains(w, "no DNS zone serves db.example.org:") {
		t.Errorf("rename out of the zones: Warning %q", w)
	}
	if w := warning("POST", "/v1/ipam/addresses", `{"address":"10.0.0.50","dns_name":"x.example.org"}`, 409); w != "" {
		t.Errorf("a refused write warned %q", w)
	}
}

// TestIPAM_RoutesNeedAuth checks every IPAM and DNS route refuses a
// request without a token.
func TestIPAM_RoutesNeedAuth(t *testing.T) {
	ts := newLeader(t)
	n := 0
	for _, r := range Routes() {
		if !strings.HasPrefix(r.Path, "/v1/ipam/") && !strings.HasPrefix(r.Path, "/v1/dns/") {
			continue
		}
		n++
		if !r.Auth() {
			t.Errorf("%s does not require auth", r.Pattern())
		}
		path := strings.NewReplacer("{id}", "x", "{name}", "x.test").Replace(r.Path)
		wantError(t, ts.do(r.Method, path, `{}`, "Authorization", ""), 401, CodeUnauthorized, "")
	}
	if n != 46 {
		t.Errorf("%d IPAM and DNS routes", n)
	}
}

// TestIPAM_BlockingList checks that prefix and pool reads block until an
// allocation changes what they show, a utilization included.
func TestIPAM_BlockingList(t *testing.T) {
	ts := newLeader(t)
	p := ts.createPrefix(`{"prefix":"10.0.0.0/24"}`)
	ts.allocate(p.ID, `{"count":2}`)
	var first testAddresses
	ts.call("GET", "/v1/ipam/addresses?limit=1", "", 200, &first)
	if first.Next == nil {
		t.Fatal("a page of one of two addresses has no next")
	}
	after := "after=" + url.QueryEscape(*first.Next)
	for _, target := range []string{"/v1/ipam/prefixes", "/v1/ipam/prefixes/" + p.ID, "/v1/ipam/addresses", "/v1/ipam/prefixes/" + p.ID + "/available",
		"/v1/ipam/addresses?prefix_id=" + p.ID, "/v1/ipam/addresses?" + after, "/v1/ipam/addresses?vrf=global&" + after,
		"/v1/ipam/addresses?prefix_id=" + p.ID + "&" + after} {
		idx, out := waitingGet(t, ts, target)
		ts.allocate(p.ID, `{}`)
		wantBlockedIndex(t, target, idx, <-out)
	}
	var g testPool
	ts.call("POST", "/v1/ipam/vlan-groups", `{"name":"g"}`, 201, &g)
	for _, target := range []string{"/v1/ipam/vlan-groups", "/v1/ipam/vlan-groups/g", "/v1/ipam/vlans"} {
		idx, out := waitingGet(t, ts, target)
		ts.call("POST", "/v1/ipam/vlan-groups/g/allocate", ``, 201, nil)
		wantBlockedIndex(t, target, idx, <-out)
	}
}

// wantBlockedIndex checks a blocking read answered with an index past idx.
func wantBlockedIndex(t *testing.T, target, idx string, rec *httptest.ResponseRecorder) {
	t.Helper()
	wantStatus(t, rec, 200)
	got, _ := strconv.ParseUint(rec.Header().Get("X-Moxxie-Index"), 10, 64)
	want, _ := strconv.ParseUint(idx, 10, 64)
	if got <= want {
		t.Fatalf("%s: index %d after %d", target, got, want)
	}
}

// TestIPAM_AddressByIP finds an address by its IP with ?address=, and an
// IP in an address path is a 404 that says so.
func TestIPAM_AddressByIP(t *testing.T) {
	ts := newLeader(t)
	ts.call("POST", "/v1/ipam/vrfs", `{"id":"blue"}`, 201, nil)
	g := ts.createPrefix(`{"prefix":"10.0.0.0/24"}`)
	b := ts.createPrefix(`{"prefix":"10.0.0.0/24","vrf":"blue"}`)
	ga := ts.allocate(g.ID, `{}`)[0]
	ba := ts.allocate(b.ID, `{}`)[0]
	var l testAddresses
	ts.call("GET", "/v1/ipam/addresses?address=10.0.0.1", "", 200, &l)
	if len(l.Addresses) != 2 || l.Addresses[0].ID != ba.ID || l.Addresses[1].ID != ga.ID {
		t.Fatalf("at 10.0.0.1: %+v", l.Addresses)
	}
	ts.call("GET", "/v1/ipam/addresses?address=10.0.0.1&vrf=global", "", 200, &l)
	if len(l.Addresses) != 1 || l.Addresses[0].ID != ga.ID {
		t.Fatalf("at 10.0.0.1 in global: %+v", l.Addresses)
	}
	ts.call("GET", "/v1/ipam/addresses?address=10.0.0.2", "", 200, &l)
	if len(l.Addresses) != 0 {
		t.Fatalf("at a free IP: %+v", l.Addresses)
	}
	for _, bad := range []string{"10.0.0.256", "::ffff:10.0.0.1", "fe80::1%25eth0", "10.0.0.0/24", ""} {
		wantError(t, ts.do("GET", "/v1/ipam/addresses?address="+bad, ""), 400, CodeInvalidRequest, "address")
	}
	before := ts.b.applies.Load()
	for _, m := range []string{"GET", "PATCH", "DELETE"} {
		body := ""
		if m == "PATCH" {
			body = `{"description":"x"}`
		}
		e := wantError(t, ts.do(m, "/v1/ipam/addresses/10.0.0.1", body), 404, CodeNotFound, "id")
		if !strings.Contains(e.Message, "not its IP") || !strings.Contains(e.Message, "?address=10.0.0.1 ") {
			t.Errorf("%s by IP: %q", m, e.Message)
		}
		// The lookup it points to takes an IPv4-mapped address as IPv4.
		e = wantError(t, ts.do(m, "/v1/ipam/addresses/::ffff:10.0.0.1", body), 404, CodeNotFound, "id")
		if !strings.Contains(e.Message, "?address=10.0.0.1 ") {
			t.Errorf("%s by a mapped IP: %q", m, e.Message)
		}
	}
	if n := ts.b.applies.Load(); n != before {
		t.Fatalf("%d requests by IP reached Apply", n-before)
	}
	// A prefix's CIDR where its ID goes points to the lookup by CIDR.
	for _, c := range []struct{ method, path, body string }{
		{"GET", "", ""}, {"PATCH", "", `{"description":"x"}`}, {"DELETE", "", ""},
		{"POST", "/allocate", `{}`}, {"POST", "/allocate-prefix", `{"prefix_length":28}`}, {"GET", "/available", ""},
	} {
		e := wantError(t, ts.do(c.method, "/v1/ipam/prefixes/10.0.0.0%2F24"+c.path, c.body), 404, CodeNotFound, "id")
		if !strings.Contains(e.Message, "not its CIDR") || !strings.Contains(e.Message, "?contains=10.0.0.0/24 ") {
			t.Errorf("%s %s by CIDR: %q", c.method, c.path, e.Message)
		}
	}
	for _, c := range []struct{ method, target, body string }{
		{"GET", "/v1/ipam/addresses?prefix_id=10.0.0.0/24", ""},
		{"POST", "/v1/ipam/ip-ranges", `{"prefix_id":"10.0.0.0/24","start_address":"10.0.0.100","end_address":"10.0.0.110"}`},
	} {
		e := wantError(t, ts.do(c.method, c.target, c.body), 400, CodeInvalidRequest, "prefix_id")
		if !strings.Contains(e.Message, "?contains=10.0.0.0/24") {
			t.Errorf("%s %s: prefix_id by CIDR: %q", c.method, c.target, e.Message)
		}
	}
	if n := ts.b.applies.Load(); n != before {
		t.Fatalf("%d requests by CIDR reached Apply", n-before)
	}
}

// TestIPAM_PoolUpdate changes a VLAN group's and a VNI pool's ranges and
// name with PATCH; ranges that leave out a handed-out ID are refused.
func TestIPAM_PoolUpdate(t *testing.T) {
	ts := newLeader(t)
	for _, c := range []struct{ path, number string }{{"/v1/ipam/vlan-groups", "vid"}, {"/v1/ipam/vni-pools", "vni"}} {
		var p testPool
		ts.call("POST", c.path, `{"name":"prod","ranges":[{"first":100,"last":109}]}`, 201, &p)
		ts.call("POST", c.path+"/prod/allocate", `{"`+c.number+`":105}`, 201, nil)
		// By name or ID; absent fields stay.
		ts.call("PATCH", c.path+"/prod", `{"ranges":[{"first":104,"last":106},{"first":200,"last":201}]}`, 200, &p)
		if fmt.Sprint(p.Ranges) != "[{104 106} {200 201}]" || p.Name != "prod" {
			t.Fatalf("%s: updated %+v", c.path, p)
		}
		ts.call("PATCH", c.path+"/"+p.ID, `{"name":"prod-1","description":"d"}`, 200, &p)
		if p.Name != "prod-1" || fmt.Sprint(p.Ranges) != "[{104 106} {200 201}]" {
			t.Fatalf("%s: renamed %+v", c.path, p)
		}
		msg := ts.refused("PATCH", c.path+"/prod-1", `{"ranges":[{"first":100,"last":104}]}`, 409, CodeConflict, "ranges", false)
		if !strings.Contains(msg, " 105 ") || !strings.Contains(msg, "outside the new ranges") {
			t.Errorf("%s: message %q", c.path, msg)
		}
		ts.refused("PATCH", c.path+"/prod-1", `{"ranges":[]}`, 400, CodeInvalidRequest, "ranges", true)
		ts.refused("PATCH", c.path+"/prod-1", `{"ranges":null}`, 400, CodeInvalidRequest, "ranges", true)
		ts.refused("PATCH", c.path+"/prod-1", `{"ranges":[{"first":300}]}`, 400, CodeInvalidRequest, "ranges[0].last", true)
		ts.refused("PATCH", c.path+"/prod-1", `{"name":"019ab9a5-9e00-7000-8000-000000000001"}`, 400, CodeInvalidRequest, "name", true)
		if msg := ts.refused("PATCH", c.path+"/prod-1", `{"name":null}`, 400, CodeInvalidRequest, "name", true); !strings.Contains(msg, "must not be empty or null") {
			t.Errorf("%s: name null: %q", c.path, msg)
		}
		ts.refused("PATCH", c.path+"/prod-1", `{"size":3}`, 400, CodeInvalidRequest, "size", true)
		// Nothing to change: the pool as it is, without a write.
		before := ts.b.applies.Load()
		var same testPool
		ts.call("PATCH", c.path+"/prod-1", `{}`, 200, &same)
		if same.ID != p.ID || same.Name != "prod-1" || ts.b.applies.Load() != before {
			t.Fatalf("%s: empty PATCH %+v (wrote %d)", c.path, same, ts.b.applies.Load()-before)
		}
		ts.refused("PATCH", c.path+"/nope", `{}`, 404, CodeNotFound, "id", false)
		ts.refused("PATCH", c.path+"/prod-1", `{"ranges":[{"first":100,"last":109},{"first":300,"end":301}]}`, 400, CodeInvalidRequest, "ranges[1].end", true)
		ts.refused("PATCH", c.path+"/prod-1", `{"ranges":[{"first":100,"last":109},{"first":"300","last":301}]}`, 400, CodeInvalidRequest, "ranges[1].first", true)
		ts.refused("PATCH", c.path+"/nope", `{"description":"x"}`, 404, CodeNotFound, "id", true)
	}
}

// TestIPAM_IDUpdate: a VLAN's or VNI's name, tenant, project, owner and
// description change by PATCH; bad values are 400 on their field, a taken
// name 409, and a body with nothing to change is answered without a write.
func TestIPAM_IDUpdate(t *testing.T) {
	ts := newLeader(t)
	ts.call("POST", "/v1/tenants", `{"id":"t1"}`, 201, nil)
	ts.call("POST", "/v1/tenants/t1/projects", `{"name":"web"}`, 201, nil)
	ts.call("POST", "/v1/tenants", `{"id":"t2"}`, 201, nil)
	for _, c := range []struct{ pools, items string }{{"/v1/ipam/vlan-groups", "/v1/ipam/vlans"}, {"/v1/ipam/vni-pools", "/v1/ipam/vnis"}} {
		ts.call("POST", c.pools, `{"name":"prod","ranges":[{"first":100,"last":109}]}`, 201, nil)
		var a, b map[string]any
		ts.call("POST", c.pools+"/prod/allocate", `{"name":"web","tenant":"t1","project":"web"}`, 201, &a)
		ts.call("POST", c.pools+"/prod/allocate", `{"name":"db"}`, 201, &b)
		item := c.items + "/" + a["id"].(string)

		var got map[string]any
		ts.call("PATCH", item, `{"name":"web-1","owner":"vm:101/net0","description":"front"}`, 200, &got)
		if got["name"] != "web-1" || got["owner"] != "vm:101/net0" || got["description"] != "front" || got["tenant"] != "t1" || got["modify_index"] == nil || got["updated_at"] == nil {
			t.Fatalf("%s: updated %v", c.items, got)
		}
		before := ts.b.applies.Load()
		ts.call("PATCH", item, `{}`, 200, &got)
		if got["name"] != "web-1" || ts.b.applies.Load() != before {
			t.Fatalf("%s: empty PATCH %v (wrote %d)", c.items, got, ts.b.applies.Load()-before)
		}
		ts.refused("PATCH", item, `{"name":"Web"}`, 400, CodeInvalidRequest, "name", true)
		ts.refused("PATCH", item, `{"owner":"vm 1"}`, 400, CodeInvalidRequest, "owner", true)
		ts.refused("PATCH", item, `{"vid":5}`, 400, CodeInvalidRequest, "vid", true)
		ts.refused("PATCH", item, `{"tenant":"Bad T"}`, 400, CodeInvalidRequest, "tenant", true)
		ts.refused("PATCH", item, `{"tenant":"t2"}`, 400, CodeInvalidRequest, "project", true)
		ts.refused("PATCH", item, `{"name":"db"}`, 409, CodeConflict, "name", false)
		ts.refused("PATCH", c.items+"/"+newID(), `{"name":"x"}`, 404, CodeNotFound, "id", false)
		got = nil
		ts.call("PATCH", item, `{"tenant":"t2","project":null,"name":null,"owner":""}`, 200, &got)
		if got["tenant"] != "t2" || got["project"] != nil || got["name"] != nil || got["owner"] != nil || got["description"] != "front" {
			t.Fatalf("%s: moved %v", c.items, got)
		}
		got = nil
		ts.call("GET", item, "", 200, &got)
		if got["tenant"] != "t2" || got["description"] != "front" || got["name"] != nil {
			t.Fatalf("%s: read back %v", c.items, got)
		}
	}
}

// TestIPAM_TenantMoveNamesTheProject: moving an address or a prefix that
// has a project to another tenant asks for the project, also when the new
// tenant has one of the same name (another project); given, it moves.
func TestIPAM_TenantMoveNamesTheProject(t *testing.T) {
	ts := newLeader(t)
	for _, tn := range []string{"t1", "t2"} {
		ts.call("POST", "/v1/tenants", `{"id":"`+tn+`"}`, 201, nil)
		ts.call("POST", "/v1/tenants/"+tn+"/projects", `{"name":"web"}`, 201, nil)
	}
	var p, l map[string]any
	ts.call("POST", "/v1/ipam/prefixes", `{"prefix":"10.0.0.0/24","tenant":"t1","project":"web"}`, 201, &p)
	ts.call("POST", "/v1/ipam/prefixes/"+p["id"].(string)+"/allocate", `{"tenant":"t1","project":"web"}`, 201, &l)
	a := l["addresses"].([]any)[0].(map[string]any)
	for _, target := range []string{"/v1/ipam/addresses/" + a["id"].(string), "/v1/ipam/prefixes/" + p["id"].(string)} {
		msg := ts.refused("PATCH", target, `{"tenant":"t2"}`, 400, CodeInvalidRequest, "project", true)
		if !strings.Contains(msg, "is in project web of tenant t1: give project with the new tenant") {
			t.Errorf("%s: %q", target, msg)
		}
		var got map[string]any
		ts.call("PATCH", target, `{"tenant":"t2","project":"web"}`, 200, &got)
		if got["tenant"] != "t2" || got["project"] != "web" {
			t.Errorf("%s: moved %+v", target, got)
		}
		got = nil
		ts.call("PATCH", target, `{"tenant":""}`, 200, &got)
		if got["tenant"] != nil || got["project"] != nil {
			t.Errorf("%s: cleared %+v", target, got)
		}
	}
}

// TestIPAM_IDListPages: VLAN and VNI listings come a page at a time with
// limit and after, in the order of pools and numbers, with or without a
// pool; a cursor that is not one is 400 on after.
func TestIPAM_IDListPages(t *testing.T) {
	ts := newLeader(t)
	for _, c := range []struct{ pools, items, number, param, list string }{
		{"/v1/ipam/vlan-groups", "/v1/ipam/vlans", "vid", "group_id", "vlans"},
		{"/v1/ipam/vni-pools", "/v1/ipam/vnis", "vni", "pool_id", "vnis"},
	} {
		var a, b testPool
		ts.call("POST", c.pools, `{"name":"a","ranges":[{"first":100,"last":199}]}`, 201, &a)
		ts.call("POST", c.pools, `{"name":"b","ranges":[{"first":200,"last":299}]}`, 201, &b)
		for _, p := range []string{"b", "a"} {
			for range 3 {
				ts.call("POST", c.pools+"/"+p+"/allocate", `{}`, 201, nil)
			}
		}
		page := func(query string) ([]int, string) {
			t.Helper()
			var l map[string]json.RawMessage
			ts.call("GET", c.items+"?"+query, "", 200, &l)
			var items []map[string]any
			if err := json.Unmarshal(l[c.list], &items); err != nil {
				t.Fatal(err)
			}
			var nums []int
			for _, it := range items {
				nums = append(nums, int(it[c.number].(float64)))
			}
			var next string
			if raw, ok := l["next"]; ok {
				if err := json.Unmarshal(raw, &next); err != nil {
					t.Fatal(err)
				}
			}
			return nums, next
		}
		// All pools: pool a's first (its ID sorts first), 2 at a time.
		var all []int
		query := "limit=2"
		for range 10 {
			nums, next := page(query)
			all = append(all, nums...)
			if next == "" {
				break
			}
			query = "limit=2&after=" + next
		}
		first, second := a, b
		if b.ID < a.ID {
			first, second = b, a
		}
		want := fmt.Sprint([]int{100, 101, 102, 200, 201, 202})
		if first.ID == b.ID {
			want = fmt.Sprint([]int{200, 201, 202, 100, 101, 102})
		}
		if fmt.Sprint(all) != want {
			t.Fatalf("%s: pages %v, want %s", c.items, all, want)
		}
		if nums, next := page("limit=6"); len(nums) != 6 || next != "" {
			t.Fatalf("%s: a page of all: %v %q", c.items, nums, next)
		}
		// One pool, and a cursor of the other pool's.
		nums, next := page(c.param + "=" + second.ID + "&limit=2")
		if len(nums) != 2 || next == "" {
			t.Fatalf("%s: pool %s: %v %q", c.items, second.Name, nums, next)
		}
		if rest, more := page(c.param + "=" + second.ID + "&limit=2&after=" + next); len(rest) != 1 || more != "" {
			t.Fatalf("%s: pool %s, page 2: %v %q", c.items, second.Name, rest, more)
		}
		_, firstNext := page("limit=1")
		if rest, _ := page(c.param + "=" + second.ID + "&after=" + firstNext); len(rest) != 3 {
			t.Fatalf("%s: pool %s after a cursor of pool %s: %v", c.items, second.Name, first.Name, rest)
		}
		_, secondNext := page(c.param + "=" + second.ID + "&limit=1")
		if rest, _ := page(c.param + "=" + first.ID + "&after=" + secondNext); len(rest) != 0 {
			t.Fatalf("%s: pool %s after a cursor of pool %s: %v", c.items, first.Name, second.Name, rest)
		}
		ts.refused("GET", c.items+"?after=nope", "", 400, CodeInvalidRequest, "after", false)
		ts.refused("GET", c.items+"?limit=0", "", 400, CodeInvalidRequest, "limit", false)
	}
}
