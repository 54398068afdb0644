package main

import (
	"strings"
	"testing"
)

// TestIPAM_PrefixByCIDR: commands that take a prefix's ID take its CIDR
// too, when one VRF holds it; with several, they ask for the ID.
func TestIPAM_PrefixByCIDR(t *testing.T) {
	f := newIPAMFakeAPI(t)
	f.cli(t, 0, "ipam", "vrf", "create", "blue")
	f.cli(t, 0, "ipam", "prefix", "create", "10.0.0.0/16", "--container")
	f.cli(t, 0, "ipam", "prefix", "create", "10.0.1.0/24")
	f.cli(t, 0, "ipam", "prefix", "create", "10.0.1.0/24", "--vrf", "blue")
	f.cli(t, 0, "ipam", "prefix", "create", "10.0.2.0/24")

	out, _ := f.cli(t, 0, "ipam", "prefix", "get", "10.0.2.0/24", "-o", "json")
	if !strings.Contains(out, `"id": "p4"`) {
		t.Errorf("get by CIDR: %s", out)
	}
	f.cli(t, 0, "ipam", "prefix", "allocate", "10.0.2.0/24")
	f.checkCall(t, "POST /v1/ipam/prefixes/p4/allocate")
	f.cli(t, 0, "ipam", "prefix", "allocate-prefix", "10.0.0.0/16", "--length", "24")
	f.checkCall(t, "POST /v1/ipam/prefixes/p1/allocate-prefix")
	f.cli(t, 0, "ipam", "prefix", "available", "10.0.2.0/24", "--limit", "2")
	f.checkCall(t, "GET /v1/ipam/prefixes/p4/available?limit=2")
	f.cli(t, 0, "ipam", "address", "list", "--prefix", "10.0.2.0/24")
	f.checkCall(t, "GET /v1/ipam/addresses?limit=5000&prefix_id=p4")
	f.cli(t, 0, "ipam", "prefix", "list", "--parent", "10.0.0.0/16")
	f.checkCall(t, "GET /v1/ipam/prefixes?parent_id=p1")
	f.cli(t, 0, "ipam", "range", "create", "10.0.2.0/24", "10.0.2.100", "10.0.2.110")
	f.checkCall(t, "POST /v1/ipam/ip-ranges")
	f.checkBody(t, `{"prefix_id": "p4", "start_address": "10.0.2.100", "end_address": "10.0.2.110"}`)

	// In two VRFs: the ID it takes, naming both, and nothing done.
	_, stderr := f.cli(t, 1, "ipam", "prefix", "allocate", "10.0.1.0/24")
	if !strings.Contains(stderr, "10.0.1.0/24 is a prefix in 2 VRFs: give the ID of the one you mean (") ||
		!strings.Contains(stderr, "p2 in VRF global") || !strings.Contains(stderr, "p3 in VRF blue") {
		t.Errorf("ambiguous: %q", stderr)
	}
	if call, _, _ := f.lastCall(); !strings.HasPrefix(call, "GET ") {
		t.Errorf("an ambiguous CIDR was acted on: %s", call)
	}
	// None; a CIDR with host bits.
	_, stderr = f.cli(t, 1, "ipam", "prefix", "get", "10.9.0.0/24")
	if !strings.Contains(stderr, "no prefix is 10.9.0.0/24, in any VRF") {
		t.Errorf("missing: %q", stderr)
	}
	_, stderr = f.cli(t, 2, "ipam", "prefix", "delete", "10.0.2.5/24")
	if !strings.Contains(stderr, "10.0.2.5/24 is not a prefix: did you mean 10.0.2.0/24?") {
		t.Errorf("host bits: %q", stderr)
	}
}
