package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/fsm"
)

// checkCall fails the test unless the last request was want.
func (p *platformAPI) checkCall(t *testing.T, want string) {
	t.Helper()
	if call, _, _ := p.lastCall(); call != want {
		t.Errorf("request %q, want %q", call, want)
	}
}

func TestInventory_Status(t *testing.T) {
	p := newPlatformAPI(t)
	out, _ := p.cli(t, 0, "inventory", "status")
	p.checkCall(t, "GET /v1/inventory")
	want := `Last sync:  2025-06-01T12:00:04Z
Stale:      no
Nodes:      3
Guests:     4
Storage:    3
`
	if out != want {
		t.Errorf("status:\n%s\nwant:\n%s", out, want)
	}

	p.mustApply(t, &fsm.InventoryStaleRequest{Error: "provider: platform unavailable: dial tcp 10.0.0.2:8006: connect: connection refused"})
	out, _ = p.cli(t, 0, "inventory", "status")
	want = `Last sync:    2025-06-01T12:00:04Z
Stale:        yes
Stale since:  2025-06-01T12:00:05Z
Error:        provider: platform unavailable: dial tcp 10.0.0.2:8006: connect: connection refused
Nodes:        3
Guests:       4
Storage:      3
`
	if out != want {
		t.Errorf("stale status:\n%s\nwant:\n%s", out, want)
	}
	out, _ = p.cli(t, 0, "inventory", "status", "-o", "json", "--stale")
	p.checkCall(t, "GET /v1/inventory?stale=true")
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil || v["stale"] != true || v["stale_since"] != "2025-06-01T12:00:05Z" ||
		v["last_sync"] != "2025-06-01T12:00:04Z" || v["nodes"] != 3.0 {
		t.Errorf("json: %s", out)
	}
}

func TestInventory_Nodes(t *testing.T) {
	p := newPlatformAPI(t)
	out, _ := p.cli(t, 0, "inventory", "nodes")
	p.checkCall(t, "GET /v1/inventory/nodes")
	want := `NAME  STATUS   CPUS  CPU    MEMORY                 DISK
pve1  online   16    12.5%  21 GiB / 64 GiB (33%)  12 GiB / 100 GiB (12%)
pve2  online   16    3.1%   9 GiB / 64 GiB (14%)   8 GiB / 100 GiB (8%)
pve3  offline  8     0%     0 B / 32 GiB (0%)      0 B / 100 GiB (0%)
`
	if out != want {
		t.Errorf("nodes:\n%s\nwant:\n%s", out, want)
	}
	out, _ = p.cli(t, 0, "inventory", "nodes", "--include-gone")
	p.checkCall(t, "GET /v1/inventory/nodes?include_gone=true")
	if !strings.HasSuffix(out, "pve4  gone     8     0%     0 B / 32 GiB (0%)      0 B / 100 GiB (0%)\n") {
		t.Errorf("nodes --include-gone:\n%s", out)
	}

	out, _ = p.cli(t, 0, "inventory", "node", "pve1")
	p.checkCall(t, "GET /v1/inventory/nodes/pve1")
	want = `Name:          pve1
Status:        online
CPUs:          16
CPU:           12.5%
Memory:        21 GiB / 64 GiB (33%)
Disk:          12 GiB / 100 GiB (12%)
First seen:    2025-06-01T12:00:02Z
Last seen:     2025-06-01T12:00:04Z
Last changed:  2025-06-01T12:00:02Z
`
	if out != want {
		t.Errorf("node:\n%s\nwant:\n%s", out, want)
	}
	out, _ = p.cli(t, 0, "inventory", "node", "pve4")
	if !strings.Contains(out, "Status:        gone\n") || !strings.Contains(out, "Gone since:    2025-06-01T12:00:04Z\n") {
		t.Errorf("gone node:\n%s", out)
	}
	_, stderr := p.cli(t, 1, "inventory", "node", "pve9")
	if got := plain(oneErrorLine(t, stderr)); got != `404 not_found: node "pve9" not found (field name, request <req>)` {
		t.Errorf("unknown node: %q", got)
	}

	out, _ = p.cli(t, 0, "inventory", "nodes", "-o", "json")
	var nodes []map[string]any
	if err := json.Unmarshal([]byte(out), &nodes); err != nil || len(nodes) != 3 || nodes[0]["name"] != "pve1" ||
		nodes[0]["maxmem"] != float64(64<<30) || nodes[0]["cpu"] != 0.125 || nodes[0]["first_seen"] != "2025-06-01T12:00:02Z" {
		t.Errorf("json: %s", out)
	}
}

func TestInventory_Guests(t *testing.T) {
	p := newPlatformAPI(t)
	out, _ := p.cli(t, 0, "inventory", "guests")
	p.checkCall(t, "GET /v1/inventory/guests")
	want := `VMID  NAME          KIND  NODE  STATUS    CORES  MEMORY   TENANT  TAGS
101   web1          qemu  pve1  running   2      2 GiB    acme    tenant.acme,web
102   dns1          lxc   pve2  running   1      512 MiB  -       -
103   db1           qemu  pve2  stopped   4      8 GiB    acme    db,tenant.acme
9000  ubuntu-24.04  qemu  pve1  template  2      2 GiB    -       -
`
	if out != want {
		t.Errorf("guests:\n%s\nwant:\n%s", out, want)
	}

	vmids := func(args ...string) string {
		t.Helper()
		out, _ := p.cli(t, 0, append([]string{"inventory", "guests", "-o", "json"}, args...)...)
		var list []struct{ VMID int }
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		var ids []string
		for _, g := range list {
			ids = append(ids, strconv.Itoa(g.VMID))
		}
		return strings.Join(ids, ",")
	}
	for _, tt := range []struct {
		args        []string
		query, want string
	}{
		{[]string{"--node", "pve2"}, "node=pve2", "102,103"},
		{[]string{"--tag", "web"}, "tag=web", "101"},
		{[]string{"--tenant", "acme"}, "tenant=acme", "101,103"},
		{[]string{"--status", "stopped"}, "status=stopped", "103,9000"},
		{[]string{"--kind", "lxc"}, "kind=lxc", "102"},
		{[]string{"--templates"}, "template=true", "9000"},
		{[]string{"--templates=false"}, "template=false", "101,102,103"},
		{[]string{"--tenant", "acme", "--status", "running", "--kind", "qemu"}, "kind=qemu&status=running&tenant=acme", "101"},
		{[]string{"--status", "gone"}, "status=gone", ""},
	} {
		if got := vmids(tt.args...); got != tt.want {
			t.Errorf("guests %v: %q, want %q", tt.args, got, tt.want)
		}
		p.checkCall(t, "GET /v1/inventory/guests?"+tt.query)
	}
	p.mustApply(t, &fsm.InventorySyncRequest{GoneGuests: []int{102}})
	if got := vmids(); got != "101,103,9000" {
		t.Errorf("after 102 went: %s", got)
	}
	if got := vmids("--include-gone"); got != "101,102,103,9000" {
		t.Errorf("--include-gone: %s", got)
	}
	p.checkCall(t, "GET /v1/inventory/guests?include_gone=true")
	out, _ = p.cli(t, 0, "inventory", "guests", "--status", "gone")
	if want := "102   dns1  lxc   pve2  gone    1      512 MiB  -       -\n"; !strings.HasSuffix(out, want) {
		t.Errorf("gone guests:\n%s", out)
	}

	_, stderr, code := runCLI(t, p.env(), "inventory", "guests", "--kind", "vm")
	if code != 2 || !strings.Contains(stderr, `--kind must be qemu or lxc, got "vm"`) {
		t.Errorf("bad kind: exit %d, %q", code, stderr)
	}
}

func TestInventory_Guest(t *testing.T) {
	p := newPlatformAPI(t)
	out, _ := p.cli(t, 0, "inventory", "guest", "101")
	p.checkCall(t, "GET /v1/inventory/guests/101")
	want := `VMID:          101
Name:          web1
Kind:          qemu
Template:      no
Node:          pve1
Status:        running
Cores:         2
Memory:        2 GiB
Disk:          32 GiB
Tenant:        acme
Pool:          -
Tags:          tenant.acme,web
Lock:          -
First seen:    2025-06-01T12:00:02Z
Last seen:     2025-06-01T12:00:04Z
Last changed:  2025-06-01T12:00:02Z
`
	if out != want {
		t.Errorf("guest:\n%s\nwant:\n%s", out, want)
	}
	out, _ = p.cli(t, 0, "inventory", "guest", "9000", "-o", "json")
	var g map[string]any
	if err := json.Unmarshal([]byte(out), &g); err != nil || g["template"] != true || g["vmid"] != 9000.0 || g["kind"] != "qemu" {
		t.Errorf("json: %s", out)
	}
	_, stderr := p.cli(t, 1, "inventory", "guest", "555")
	if got := plain(oneErrorLine(t, stderr)); got != `404 not_found: guest "555" not found (field vmid, request <req>)` {
		t.Errorf("unknown guest: %q", got)
	}
	_, stderr = p.cli(t, 1, "inventory", "guest", "99")
	if got := plain(oneErrorLine(t, stderr)); got != `400 invalid_request: must be a number from 100 to 999999999, not "99" (field vmid, request <req>)` {
		t.Errorf("vmid 99: %q", got)
	}
	_, stderr, code := runCLI(t, p.env(), "inventory", "guest", "web1")
	if code != 2 || !strings.Contains(stderr, `VMID must be a positive number, got "web1"`) {
		t.Errorf("bad vmid: exit %d, %q", code, stderr)
	}
}

func TestInventory_Storage(t *testing.T) {
	p := newPlatformAPI(t)
	out, _ := p.cli(t, 0, "inventory", "storage")
	p.checkCall(t, "GET /v1/inventory/storage")
	want := `NODE  STORAGE    TYPE     STATUS     SHARED  USED                    CONTENT
pve1  local      dir      available  no      7 GiB / 94 GiB (7%)     iso,vztmpl,backup
pve1  local-lvm  lvmthin  available  no      41 GiB / 350 GiB (12%)  images,rootdir
pve2  local-lvm  lvmthin  available  no      72 GiB / 350 GiB (21%)  images,rootdir
`
	if out != want {
		t.Errorf("storage:\n%s\nwant:\n%s", out, want)
	}
	p.mustApply(t, &fsm.InventorySyncRequest{GoneStorage: []string{"pve1/local"}})
	out, _ = p.cli(t, 0, "inventory", "storage", "--include-gone", "-o", "json")
	p.checkCall(t, "GET /v1/inventory/storage?include_gone=true")
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 3 || list[0]["id"] != "pve1/local" || list[0]["gone"] != true ||
		list[1]["used"] != float64(41<<30) {
		t.Errorf("json: %s", out)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 1023: "1023 B", 1024: "1 KiB", 1536: "1.5 KiB", 512 << 20: "512 MiB", 62_800_000_000: "58.5 GiB", 3 << 40: "3 TiB",
	} {
		if got := bytesIEC(n); got != want {
			t.Errorf("bytesIEC(%d) = %q, want %q", n, got, want)
		}
	}
	if got := usedOf(5, 0); got != "5 B / -" {
		t.Errorf("usedOf no total: %q", got)
	}
}
