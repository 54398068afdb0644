package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// createPrefix creates a prefix with moxxiectl and returns its ID.
func (p *platformAPI) createPrefix(t *testing.T, args ...string) string {
	t.Helper()
	out, _ := p.cli(t, 0, append([]string{"ipam", "prefix", "create", "-o", "json"}, args...)...)
	var v struct{ ID string }
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.ID == "" {
		t.Fatalf("prefix create: %s", out)
	}
	return v.ID
}

// checkJSON fails the test unless got and want are the same JSON value.
func checkJSON(t *testing.T, what, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("%s %q: %v", what, got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gj, _ := json.Marshal(g)
	wj, _ := json.Marshal(w)
	if string(gj) != string(wj) {
		t.Errorf("%s %s, want %s", what, gj, wj)
	}
}

func TestVM_CreateWait(t *testing.T) {
	p := newPlatformAPI(t)
	pfx := p.createPrefix(t, "10.0.0.0/24", "--gateway", "10.0.0.1")
	keyFile := filepath.Join(t.TempDir(), "id.pub")
	if err := os.WriteFile(keyFile, []byte("# ops\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOps ops@example\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr := p.cli(t, 0, "vm", "create", "web2", "--template", "ubuntu-24.04", "--cores", "2", "--memory", "4096", "--node", "pve2",
		"--tenant", "acme", "--tag", "web", "--tag", "prod", "--description", "front end",
		"--nic", "bridge=vmbr0,vlan=10,prefix=10.0.0.0/24,ip=10.0.0.20,dns=web2.moxxie.test", "--nic", "bridge=vmbr1",
		"--ssh-key-file", keyFile, "--wait")
	body, key := p.findCall(t, "POST /v1/vms")
	checkJSON(t, "body", body, `{"name": "web2", "template": "ubuntu-24.04", "cores": 2, "memory": 4096, "node": "pve2", "tenant": "acme",
		"tags": ["web", "prod"], "description": "front end",
		"nics": [{"bridge": "vmbr0", "vlan": 10, "prefix_id": "`+pfx+`", "address": "10.0.0.20", "dns_name": "web2.moxxie.test"}, {"bridge": "vmbr1"}],
		"ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOps ops@example"]}`)
	if key == "" {
		t.Error("create sent no Idempotency-Key")
	}
	wantErr := `12:00:06 vm.create pending
12:00:07 vm.create running
12:00:08 vm.create running: choosing a VMID
12:00:09 vm.create 104 running: choosing a VMID
12:00:10 vm.create 104 running: allocating addresses
12:00:13 vm.create 104 running: cloning template 9000
12:00:15 vm.create 104 running: cloning template 9000: create full clone of drive scsi0 (local-lvm:base-9000-disk-0)
12:00:16 vm.create 104 running: cloning template 9000: drive-scsi0: transferred 4.0 GiB of 8.0 GiB (50.00%)
12:00:17 vm.create 104 running: cloning template 9000: TASK OK
12:00:18 vm.create 104 running: migrating to pve2
12:00:20 vm.create 104 running: migrating to pve2: TASK OK
12:00:21 vm.create 104 running: configuring
12:00:23 vm.create 104 running: configuring: TASK OK
12:00:26 vm.create 104 running: starting
12:00:28 vm.create 104 running: starting: TASK OK
12:00:30 vm.create 104 succeeded: done
`
	if stderr != wantErr {
		t.Errorf("progress:\n%s\nwant:\n%s", stderr, wantErr)
	}
	want := `ID:            01234567-89ab-7cde-8f01-23456789abcd
Kind:          vm.create
Status:        succeeded
VMID:          104
Node:          pve2
Spec:          web2, template 9000, 2 cores, 4096 MiB, 8 GiB disk, tenant acme, tags web,prod, 1 SSH key
NIC net0:      vmbr0 vlan 10, prefix 01234567-89ab-7cde-8f01-23456789abcd, 10.0.0.20, web2.moxxie.test
NIC net1:      vmbr1
Step:          done
Progress:      TASK OK
Task:          UPID:pve2:000A1B2C:01F2E3D4:683C4E00:qmstart:104:root@pam!moxxie:
Address net0:  10.0.0.20 web2.moxxie.test (ID 01234567-89ab-7cde-8f01-23456789abcd)
Actor:         0f6a3c1e-acc1
Created:       2025-06-01T12:00:06Z
Updated:       2025-06-01T12:00:30Z
Finished:      2025-06-01T12:00:30Z
`
	if got := plain(out); got != want {
		t.Errorf("create:\n%s\nwant:\n%s", got, want)
	}
	// Each read after the first blocks on the index of the answer before.
	var reads []string
	for _, c := range p.callsSince(0) {
		if strings.HasPrefix(c, "GET /v1/operations/") {
			reads = append(reads, plain(c))
		}
	}
	if len(reads) < 2 || reads[0] != "GET /v1/operations/01234567-89ab-7cde-8f01-23456789abcd" || !strings.HasSuffix(reads[1], "?index=6&wait=30s") {
		t.Errorf("reads %q", reads)
	}

	// The address is in IPAM, owned by the VM's NIC, and the VM in the
	// inventory.
	out, _ = p.cli(t, 0, "ipam", "address", "list", "--owner", "vm:104/net0")
	if !strings.Contains(out, "10.0.0.20  global  web2.moxxie.test  active  vm:104/net0  acme") {
		t.Errorf("address:\n%s", out)
	}
	out, _ = p.cli(t, 0, "inventory", "guests", "--tenant", "acme", "--node", "pve2")
	if !strings.Contains(out, "104   web2  qemu  pve2  running  2      4 GiB   acme    moxxie,web,prod,tenant.acme") {
		t.Errorf("inventory:\n%s", out)
	}
}

func TestVM_CreateFollowLater(t *testing.T) {
	p := newPlatformAPI(t)
	out, stderr := p.cli(t, 0, "vm", "create", "scratch1", "--disk", "20", "--storage", "local-lvm", "--node", "pve1", "--no-start")
	_, body, _ := p.lastCall()
	checkJSON(t, "body", body, `{"name": "scratch1", "node": "pve1", "disk": 20, "storage": "local-lvm", "start": false}`)
	want := `ID:        01234567-89ab-7cde-8f01-23456789abcd
Kind:      vm.create
Status:    pending
VMID:      -
Node:      pve1
Spec:      scratch1, 1 core, 1024 MiB, 20 GiB disk, storage local-lvm, not started
Step:      -
Actor:     0f6a3c1e-acc1
Created:   2025-06-01T12:00:05Z
Updated:   2025-06-01T12:00:05Z
Finished:  -
`
	if got := plain(out); got != want {
		t.Errorf("create:\n%s\nwant:\n%s", got, want)
	}
	id := objectIDs.FindString(out)
	if stderr != "Follow it with: moxxiectl operation wait "+id+"\n" {
		t.Errorf("stderr %q", stderr)
	}

	out, _ = p.cli(t, 0, "operation", "list")
	p.checkCall(t, "GET /v1/operations")
	want = `ID                                    KIND       STATUS   VMID  NODE  POLICY  STEP  CREATED
01234567-89ab-7cde-8f01-23456789abcd  vm.create  pending  -     pve1  -       -     2025-06-01T12:00:05Z
`
	if got := plain(out); got != want {
		t.Errorf("list:\n%s\nwant:\n%s", got, want)
	}

	out, stderr = p.cli(t, 0, "operation", "wait", id)
	wantErr := `12:00:05 vm.create pending
12:00:06 vm.create running
12:00:07 vm.create running: choosing a VMID
12:00:08 vm.create 104 running: choosing a VMID
12:00:09 vm.create 104 running: creating
12:00:11 vm.create 104 running: creating: TASK OK
12:00:15 vm.create 104 succeeded: done
`
	if stderr != wantErr {
		t.Errorf("wait progress:\n%s\nwant:\n%s", stderr, wantErr)
	}
	if !strings.Contains(out, "Status:    succeeded\n") || !strings.Contains(out, "Finished:  2025-06-01T12:00:15Z\n") {
		t.Errorf("wait:\n%s", out)
	}
	out, _ = p.cli(t, 0, "operation", "list", "--active")
	p.checkCall(t, "GET /v1/operations?active=true")
	if out != "ID  KIND  STATUS  VMID  NODE  POLICY  STEP  CREATED\n" {
		t.Errorf("active:\n%s", out)
	}
	out, _ = p.cli(t, 0, "operation", "get", id, "-o", "json")
	var op map[string]any
	if err := json.Unmarshal([]byte(out), &op); err != nil || op["id"] != id || op["status"] != "succeeded" || op["vmid"] != 104.0 ||
		op["finished_at"] != "2025-06-01T12:00:15Z" || op["spec"].(map[string]any)["start"] != false {
		t.Errorf("get json: %s", out)
	}
	if got := plain(oneErrorLine(t, p.cliErr(t, "operation", "get", "nope"))); got != `404 not_found: operation "nope" not found (field id, request <req>)` {
		t.Errorf("unknown: %q", got)
	}
	out, _ = p.cli(t, 0, "inventory", "guest", "104")
	if !strings.Contains(out, "Status:        stopped\n") {
		t.Errorf("guest:\n%s", out)
	}
}

// cliErr runs moxxiectl expecting it to fail with exit code 1 and returns
// its stderr.
func (p *platformAPI) cliErr(t *testing.T, args ...string) string {
	t.Helper()
	_, stderr := p.cli(t, 1, args...)
	return stderr
}

func TestVM_CreateJSON(t *testing.T) {
	p := newPlatformAPI(t)
	out, stderr := p.cli(t, 0, "vm", "create", "web2", "--template", "9000", "-o", "json", "--wait")
	var op map[string]any
	if err := json.Unmarshal([]byte(out), &op); err != nil || op["status"] != "succeeded" || op["kind"] != "vm.create" ||
		op["vmid"] != 104.0 || op["step"] != "done" || op["spec"].(map[string]any)["template_vmid"] != 9000.0 {
		t.Errorf("json: %s", out)
	}
	if !strings.HasSuffix(stderr, "vm.create 104 succeeded: done\n") || strings.Contains(stderr, "Follow it") {
		t.Errorf("stderr %q", stderr)
	}
	out, _ = p.cli(t, 0, "vm", "create", "web3", "--template", "9000", "-o", "json")
	if err := json.Unmarshal([]byte(out), &op); err != nil || op["status"] != "pending" {
		t.Errorf("json: %s", out)
	}
}

func TestVM_CreateFails(t *testing.T) {
	p := newPlatformAPI(t)
	p.createPrefix(t, "10.9.0.0/30")
	p.cli(t, 0, "ipam", "prefix", "allocate", p.createPrefix(t, "10.9.1.0/30"), "--count", "2")
	out, stderr := p.cli(t, 1, "vm", "create", "web2", "--template", "ubuntu-24.04",
		"--nic", "bridge=vmbr0,prefix=10.9.0.0/30", "--nic", "bridge=vmbr0,prefix=10.9.1.0/30", "--wait")
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	last := plain(lines[len(lines)-1])
	if want := "Error: vm.create 01234567-89ab-7cde-8f01-23456789abcd failed: exhausted: 1 requested, 0 available in 10.9.1.0/30 (field nics[1].count; rolled back)"; last != want {
		t.Errorf("error %q, want %q", last, want)
	}
	if got := lines[len(lines)-2]; !strings.HasSuffix(got, " vm.create 104 failed: rolling back") {
		t.Errorf("last progress %q in\n%s", got, stderr)
	}
	for _, want := range []string{"Status:        failed\n", "Address net0:  10.9.0.1 (ID 01234567-89ab-7cde-8f01-23456789abcd)\n",
		"Error:         exhausted: 1 requested, 0 available in 10.9.1.0/30 (field nics[1].count)\n", "Rolled back:   yes\n"} {
		if !strings.Contains(plain(out), want) {
			t.Errorf("final operation lacks %q:\n%s", want, out)
		}
	}
}

func TestVM_CreateRefused(t *testing.T) {
	p := newPlatformAPI(t)
	p.createPrefix(t, "10.0.0.0/24")
	p.cli(t, 0, "ipam", "vrf", "create", "blue")
	p.createPrefix(t, "10.1.0.0/24")
	p.createPrefix(t, "10.1.0.0/24", "--vrf", "blue")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--template", "debian-13"}, `400 invalid_request: no template named "debian-13" in the inventory (request <req>); check --template`},
		{[]string{"--template", "101"}, `400 invalid_request: no template with VMID 101 in the inventory (request <req>); check --template`},
		{nil, "400 invalid_request: a VM without a template needs a disk size (request <req>); check --disk"},
		{[]string{"--template", "9000", "--node", "pve3"}, "409 conflict: node pve3 is not online (request <req>)"},
		{[]string{"--template", "9000", "--memory", "70000"},
			"409 exhausted: no online node has room for 70000 memory_mib under its capacity policy (the most room is 63488) (request <req>)"},
		{[]string{"--template", "9000", "--tag", "bad tag"}, `400 invalid_request: tag "bad tag" must be letters, digits, '_', '-', '+' or '.' (field tags[0], request <req>)`},
		{[]string{"--template", "9000", "--nic", "bridge=vmbr0,prefix=10.2.0.0/24"}, "no prefix 10.2.0.0/24 in IPAM (see moxxiectl ipam prefix list)"},
		{[]string{"--template", "9000", "--nic", "bridge=vmbr0,prefix=10.1.0.0/24"},
			"prefix 10.1.0.0/24 exists in several VRFs (01234567-89ab-7cde-8f01-23456789abcd in VRF blue, 01234567-89ab-7cde-8f01-23456789abcd in VRF global): give the prefix ID"},
		{[]string{"--template", "9000", "--nic", "bridge=vmbr0,prefix=10.0.0.0/24,ip=10.0.1.5"},
			"400 invalid_request: 10.0.1.5 is not in prefix 10.0.0.0/24 (field nics[0].address, request <req>)"},
		{[]string{"--template", "9000", "--nic", "bridge=vmbr0,prefix=nope"}, `400 invalid_request: prefix "nope" not found (field nics[0].prefix_id, request <req>)`},
	} {
		args := append([]string{"vm", "create", "web2"}, tt.args...)
		if got := plain(oneErrorLine(t, p.cliErr(t, args...))); got != tt.want {
			t.Errorf("%v:\n got %q\nwant %q", tt.args, got, tt.want)
		}
	}
	if _, ops, err := p.fsm.State().Operations(nil, false); err != nil || len(ops) != 0 {
		t.Errorf("refused requests recorded %d operations (%v)", len(ops), err)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--nic", "vmbr0"}, `--nic "vmbr0": "vmbr0" is not key=value`},
		{[]string{"--nic", "vlan=10"}, `--nic "vlan=10": bridge= is required`},
		{[]string{"--nic", "bridge=vmbr0,vlan=x"}, `--nic "bridge=vmbr0,vlan=x": vlan must be a number from 1 to 4094, got "x"`},
		{[]string{"--nic", "bridge=vmbr0,mtu=9000"}, `--nic "bridge=vmbr0,mtu=9000": unknown key "mtu": want bridge, vlan, prefix, ip or dns`},
		{[]string{"--nic", "bridge=vmbr0,bridge=vmbr1"}, `--nic "bridge=vmbr0,bridge=vmbr1": bridge given twice`},
		{[]string{"--nic", "bridge=vmbr0,prefix=10.0.0.5/24"}, `--nic "bridge=vmbr0,prefix=10.0.0.5/24": prefix 10.0.0.5/24 is not canonical: did you mean 10.0.0.0/24?`},
		{[]string{"--nic", "bridge=vmbr0,prefix=10.0.0/24"}, `--nic "bridge=vmbr0,prefix=10.0.0/24": prefix "10.0.0/24" is neither a prefix ID nor a CIDR`},
		{[]string{"--nic", "bridge=vmbr0,ip=10.0.0.5"}, `--nic "bridge=vmbr0,ip=10.0.0.5": ip and dns need prefix= to allocate the address from`},
		{[]string{"--nic", "bridge=vmbr0,prefix=p1,ip=10.0.0.300"}, `--nic "bridge=vmbr0,prefix=p1,ip=10.0.0.300": ip "10.0.0.300" is not an IP address`},
		{[]string{"--cores", "-1"}, "--cores must not be negative, got -1"},
	} {
		before := p.callCount()
		_, stderr, code := runCLI(t, p.env(), append([]string{"vm", "create", "web2"}, tt.args...)...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 and %q", tt.args, code, stderr, tt.want)
		}
		if n := p.callCount() - before; n != 0 {
			t.Errorf("%v: %d requests sent", tt.args, n)
		}
	}
	if _, stderr := p.cli(t, 1, "vm", "create", "web2", "--template", "9000", "--ssh-key-file", "/nonexistent/id.pub"); !strings.Contains(stderr, "/nonexistent/id.pub") {
		t.Errorf("missing key file: %q", stderr)
	}
}

func TestVM_Actions(t *testing.T) {
	p := newPlatformAPI(t)
	pfx := p.createPrefix(t, "10.0.0.0/24")
	p.cli(t, 0, "vm", "create", "web2", "--template", "ubuntu-24.04", "--node", "pve2", "--nic", "bridge=vmbr0,prefix="+pfx+",dns=web2.moxxie.test", "--wait")

	_, stderr := p.cli(t, 0, "vm", "shutdown", "104", "--wait")
	if call, _, _ := p.lastCall(); !strings.HasPrefix(call, "GET /v1/operations/") || !strings.HasSuffix(call, "&wait=30s") {
		t.Errorf("last request %q, want a blocking read of the operation", call)
	}
	want := `12:00:31 vm.shutdown 104 pending
12:00:32 vm.shutdown 104 running
12:00:33 vm.shutdown 104 running: shutting down
12:00:35 vm.shutdown 104 running: shutting down: TASK OK
12:00:37 vm.shutdown 104 succeeded: done
`
	if stderr != want {
		t.Errorf("shutdown:\n%s\nwant:\n%s", stderr, want)
	}
	// Stopping a stopped VM succeeds at once.
	_, stderr = p.cli(t, 0, "vm", "stop", "104", "--wait")
	if want := "12:00:38 vm.stop 104 pending\n12:00:39 vm.stop 104 running\n12:00:41 vm.stop 104 succeeded: done\n"; stderr != want {
		t.Errorf("stop:\n%s\nwant:\n%s", stderr, want)
	}
	out, stderr := p.cli(t, 0, "vm", "start", "104", "--idempotency-key", "start-104")
	call, _, key := p.lastCall()
	if call != "POST /v1/vms/104/start" || key != "start-104" {
		t.Errorf("start: %s with key %q", call, key)
	}
	id := objectIDs.FindString(out)
	if id == "" || !strings.Contains(out, "Kind:      vm.start\nStatus:    pending\nVMID:      104\n") || strings.Contains(stderr, "earlier request") {
		t.Errorf("start:\n%s\n%s", out, stderr)
	}
	// While it runs, the VM takes no other operation.
	if got := plain(oneErrorLine(t, p.cliErr(t, "vm", "stop", "104"))); got != "409 conflict: vm 104 has operation 01234567-89ab-7cde-8f01-23456789abcd (vm.start) in progress (field vmid, request <req>)" {
		t.Errorf("busy: %q", got)
	}
	// The same request with the same key answers the first operation.
	again, stderr := p.cli(t, 0, "vm", "start", "104", "--idempotency-key", "start-104", "--wait")
	if !strings.Contains(stderr, "earlier request with this idempotency key") || objectIDs.FindString(again) != id ||
		!strings.Contains(again, "Status:    succeeded\n") {
		t.Errorf("replay:\n%s\n%s", again, stderr)
	}

	out, stderr = p.cli(t, 0, "vm", "delete", "104", "--wait")
	p.findCall(t, "DELETE /v1/vms/104")
	want = `12:00:51 vm.delete 104 pending
12:00:52 vm.delete 104 running
12:00:53 vm.delete 104 running: stopping
12:00:55 vm.delete 104 running: stopping: TASK OK
12:00:56 vm.delete 104 running: deleting
12:00:58 vm.delete 104 running: deleting: TASK OK
12:00:59 vm.delete 104 running: releasing addresses
12:01:03 vm.delete 104 succeeded: done
`
	if stderr != want {
		t.Errorf("delete:\n%s\nwant:\n%s", stderr, want)
	}
	if !strings.Contains(plain(out), "Address net0:  10.0.0.1 web2.moxxie.test (ID 01234567-89ab-7cde-8f01-23456789abcd)\n") {
		t.Errorf("delete:\n%s", out)
	}
	out, _ = p.cli(t, 0, "inventory", "guests", "--status", "gone")
	if !strings.Contains(out, "104   web2  qemu  pve2  gone") {
		t.Errorf("gone:\n%s", out)
	}
	if got := plain(oneErrorLine(t, p.cliErr(t, "vm", "start", "104"))); got != `404 not_found: guest "104" not found (field vmid, request <req>)` {
		t.Errorf("deleted: %q", got)
	}
	if got := plain(oneErrorLine(t, p.cliErr(t, "vm", "start", "9000"))); got != "400 invalid_request: 9000 is a template; templates cannot be started or stopped (field vmid, request <req>)" {
		t.Errorf("template: %q", got)
	}
	_, stderr, code := runCLI(t, p.env(), "vm", "stop", "web1")
	if code != 2 || !strings.Contains(stderr, `VMID must be a positive number, got "web1"`) {
		t.Errorf("bad vmid: exit %d, %q", code, stderr)
	}
}

func TestVM_NoPlatform(t *testing.T) {
	p := newPlatformAPI(t)
	p.mu.Lock()
	p.platform = ""
	p.mu.Unlock()
	before := p.callCount()
	got := plain(oneErrorLine(t, p.cliErr(t, "vm", "start", "101")))
	if got != "503 no_platform: no virtualization platform is configured (see proxmox in the server configuration) (request <req>)" {
		t.Errorf("%q", got)
	}
	// It comes without Retry-After: it is not retried.
	if n := p.callCount() - before; n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}
