package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/sdn"
)

// enrol enrols a host as its agent would.
func (p *platformAPI) enrol(t *testing.T, h sdn.Host) {
	t.Helper()
	p.mustApply(t, &fsm.SDNHostPutRequest{Host: h})
}

// report reports a version as a host's agent would.
func (p *platformAPI) report(t *testing.T, host string, version uint64, state, msg string) {
	t.Helper()
	p.mustApply(t, &fsm.SDNReportRequest{Host: host, Version: version, State: state, Error: msg, Actions: 2})
}

// activeRollout waits for a rollout to be preparing and returns it.
func (p *platformAPI) activeRollout(t *testing.T) *fsm.SDNRollout {
	t.Helper()
	for {
		ws := memdb.NewWatchSet()
		_, r, err := p.fsm.State().SDNActiveRollout(ws)
		if err != nil {
			t.Fatal(err)
		}
		if r != nil {
			return r
		}
		ws.Watch(nil)
	}
}

func TestSDN_IntentCommands(t *testing.T) {
	p := newPlatformAPI(t)
	p.cli(t, 0, "ipam", "vni-pool", "create", "tenants", "--range", "5000-5009")

	out, _ := p.cli(t, 0, "sdn", "zone", "create", "ovl", "--type", "vxlan", "--pool", "tenants", "--nodes", "pve1, pve2")
	_, body, _ := p.lastCall()
	checkJSON(t, "zone create body", body, `{"id": "ovl", "type": "vxlan", "nodes": ["pve1", "pve2"], "pool": "tenants"}`)
	want := `ID:       ovl
Type:     vxlan
MTU:      auto (from the hosts' uplinks)
Nodes:    pve1, pve2
Pool:     ` + anyID + `
Port:     4789
Created:  2025-06-01T12:00:06Z
Updated:  2025-06-01T12:00:06Z
`
	if out = plain(out); out != want {
		t.Errorf("zone create:\n%s\nwant:\n%s", out, want)
	}
	p.cli(t, 0, "sdn", "zone", "create", "lan", "--type", "simple", "--mtu", "9000")
	// update changes only what it is told, keeping the rest.
	p.cli(t, 0, "sdn", "zone", "update", "ovl", "--mtu", "1400", "--nodes", "")
	_, body, _ = p.lastCall()
	var z sdn.Zone
	if err := json.Unmarshal([]byte(body), &z); err != nil || z.MTU != 1400 || z.Nodes != nil || z.Type != "vxlan" || z.Pool == "" {
		t.Errorf("zone update body %s", body)
	}
	out, _ = p.cli(t, 0, "sdn", "zone", "list")
	want = `ID   TYPE    MTU   NODES  POOL                                  PORT
lan  simple  9000  -      -                                     -
ovl  vxlan   1400  -      ` + anyID + `  4789
`
	if out = plain(out); out != want {
		t.Errorf("zone list:\n%s\nwant:\n%s", out, want)
	}
	stderr := p.cliErr(t, "sdn", "zone", "create", "bad", "--type", "ovs")
	if !strings.Contains(stderr, `400 invalid_request: zone type "ovs" is not simple, vlan or vxlan`) {
		t.Errorf("bad zone: %s", stderr)
	}
	if _, stderr, code := runCLI(t, p.env(), "sdn", "zone", "update", "ovl"); code != exitUsage || !strings.Contains(stderr, "nothing to update") {
		t.Errorf("update without flags: %d %s", code, stderr)
	}

	// Vnets take their VNI from the zone's pool.
	out, _ = p.cli(t, 0, "sdn", "vnet", "create", "web", "--zone", "ovl", "--tenant", "acme", "--idempotency-key", "web-1")
	want = `ID:          web
Zone:        ovl
Tag:         5000
Tenant:      acme
Alias:       -
Allocation:  ` + anyID + `
Created:     2025-06-01T12:00:10Z
Updated:     2025-06-01T12:00:10Z
`
	if out = plain(out); out != want {
		t.Errorf("vnet create:\n%s\nwant:\n%s", out, want)
	}
	if _, stderr, _ := runCLI(t, p.env(), "sdn", "vnet", "create", "web", "--zone", "ovl", "--tenant", "acme", "--idempotency-key", "web-1"); !strings.Contains(stderr, "earlier request") {
		t.Errorf("replay note: %q", stderr)
	}
	p.cli(t, 0, "sdn", "vnet", "create", "db", "--zone", "lan", "--alias", "databases")
	p.cli(t, 0, "sdn", "vnet", "update", "web", "--alias", "front")
	out, _ = p.cli(t, 0, "sdn", "vnet", "list", "--zone", "ovl")
	want = `ID   ZONE  TAG   TENANT  ALIAS
web  ovl   5000  acme    front
`
	if out != want {
		t.Errorf("vnet list:\n%s\nwant:\n%s", out, want)
	}

	// A subnet's prefix may be given by CIDR.
	pfx := p.createPrefix(t, "10.1.0.0/24")
	p.cli(t, 0, "sdn", "subnet", "create", "db4", "--vnet", "db", "--prefix", "10.1.0.0/24", "--gateway", "10.1.0.1", "--snat")
	_, body, _ = p.lastCall()
	checkJSON(t, "subnet create body", body, `{"id": "db4", "vnet": "db", "prefix_id": "`+pfx+`", "cidr": "", "gateway": "10.1.0.1", "snat": true}`)
	out, _ = p.cli(t, 0, "sdn", "subnet", "list")
	want = `ID   VNET  CIDR         GATEWAY   SNAT  PREFIX
db4  db    10.1.0.0/24  10.1.0.1  yes   ` + anyID + `
`
	if out = plain(out); out != want {
		t.Errorf("subnet list:\n%s\nwant:\n%s", out, want)
	}
	if stderr := p.cliErr(t, "sdn", "subnet", "create", "x", "--vnet", "db", "--prefix", "10.9.0.0/24"); !strings.Contains(stderr, "no prefix 10.9.0.0/24 in IPAM") {
		t.Errorf("unknown prefix: %s", stderr)
	}
	p.cli(t, 0, "sdn", "subnet", "update", "db4", "--snat=false", "--gateway", "")
	_, body, _ = p.lastCall()
	checkJSON(t, "subnet update body", body, `{"id": "db4", "vnet": "db", "prefix_id": "`+pfx+`", "cidr": "10.1.0.0/24"}`)

	// Allow rules.
	out, _ = p.cli(t, 0, "sdn", "allow", "create", "--from", "tenant:acme", "--to", "vnet:db", "--description", "acme reads the db", "-o", "json")
	var rule struct{ ID string }
	if err := json.Unmarshal([]byte(out), &rule); err != nil || rule.ID == "" {
		t.Fatalf("allow create: %s", out)
	}
	p.cli(t, 0, "sdn", "allow", "create", "r2", "--from", "vnet:db", "--to", "vnet:web")
	p.cli(t, 0, "sdn", "allow", "update", "r2", "--description", "replies")
	out, _ = p.cli(t, 0, "sdn", "allow", "list")
	want = `ID                                    FROM         TO        DESCRIPTION
` + anyID + `  tenant:acme  vnet:db   acme reads the db
r2                                    vnet:db      vnet:web  replies
`
	if out = plain(out); out != want {
		t.Errorf("allow list:\n%s\nwant:\n%s", out, want)
	}
	if stderr := p.cliErr(t, "sdn", "allow", "create", "--from", "acme", "--to", "vnet:db"); !strings.Contains(stderr, `from "acme" is not vnet:<id> or tenant:<name>`) {
		t.Errorf("bad selector: %s", stderr)
	}

	// Deletes, in the order the references allow.
	if stderr := p.cliErr(t, "sdn", "zone", "delete", "lan"); !strings.Contains(stderr, "still has vnets") {
		t.Errorf("zone in use: %s", stderr)
	}
	for _, args := range [][]string{
		{"allow", "delete", "r2"}, {"subnet", "delete", "db4"}, {"vnet", "delete", "db"}, {"zone", "delete", "lan"},
	} {
		out, _ := p.cli(t, 0, append([]string{"sdn"}, args...)...)
		if !strings.HasSuffix(out, " deleted\n") {
			t.Errorf("%v: %s", args, out)
		}
	}
	out, _ = p.cli(t, 0, "sdn", "vnet", "list", "-o", "json")
	if strings.TrimSpace(out) == "[]" || !strings.Contains(out, `"web"`) {
		t.Errorf("vnets after deletes: %s", out)
	}
}

func TestSDN_ApplyAndRollouts(t *testing.T) {
	p := newPlatformAPI(t)
	if stderr := p.cliErr(t, "sdn", "apply", "--dry-run"); !strings.Contains(stderr, "no host has enrolled") {
		t.Errorf("apply without hosts: %s", stderr)
	}
	p.enrol(t, sdn.Host{Name: "pve1", Address: "192.0.2.1", Uplink: "eth0"})
	p.enrol(t, sdn.Host{Name: "pve2", Address: "192.0.2.2", Uplink: "eth0"})
	p.cli(t, 0, "sdn", "zone", "create", "ovl", "--type", "vxlan")
	p.cli(t, 0, "sdn", "vnet", "create", "web", "--zone", "ovl", "--tag", "100")

	out, _ := p.cli(t, 0, "sdn", "host", "list")
	want := `NAME  ADDRESS    UPLINK  MTU   COMMITTED  APPLIED  STATE           REPORTED
pve1  192.0.2.1  eth0    1500  0          0        never reported  -
pve2  192.0.2.2  eth0    1500  0          0        never reported  -
`
	if out != want {
		t.Errorf("host list:\n%s\nwant:\n%s", out, want)
	}

	diff := `pve1 (version 0 -> 1):
  + link vxlan_web (vxlan, master web, vni 100, port 4789, peers [192.0.2.2], mtu 1450)
  + link web (bridge, mtu 1450)
  + firewall: bridges: +web
pve2 (version 0 -> 1):
  + link vxlan_web (vxlan, master web, vni 100, port 4789, peers [192.0.2.1], mtu 1450)
  + link web (bridge, mtu 1450)
  + firewall: bridges: +web
`
	before := p.fsm.State().LatestIndex()
	out, _ = p.cli(t, 0, "sdn", "apply", "--dry-run")
	if want := diff + "Dry run: version 1 would change 2 of 2 hosts; nothing was rolled out.\n"; out != want {
		t.Errorf("dry run:\n%s\nwant:\n%s", out, want)
	}
	if p.fsm.State().LatestIndex() != before {
		t.Error("a dry run wrote to the store")
	}
	out, _ = p.cli(t, 0, "sdn", "apply", "--dry-run", "-o", "json")
	var dry struct {
		Version uint64
		Hosts   []struct {
			Host    string
			Changes []sdn.Change
		}
	}
	if err := json.Unmarshal([]byte(out), &dry); err != nil || dry.Version != 1 || len(dry.Hosts) != 2 || len(dry.Hosts[1].Changes) != 3 {
		t.Errorf("dry run -o json: %v %s", err, out)
	}

	out, stderr := p.cli(t, 0, "sdn", "apply", "--timeout", "2m")
	_, body, key := p.lastCall()
	checkJSON(t, "apply body", body, `{"timeout": "2m0s"}`)
	if key == "" {
		t.Error("apply without an Idempotency-Key")
	}
	r := p.activeRollout(t)
	if want := diff + "Rollout " + r.ID + " started: version 1 to 2 hosts, deadline 2025-06-01T12:02:09Z\n"; out != want {
		t.Errorf("apply:\n%s\nwant:\n%s", out, want)
	}
	if stderr != "Follow it with: moxxiectl sdn rollout wait "+r.ID+"\n" {
		t.Errorf("apply stderr %q", stderr)
	}

	out, _ = p.cli(t, 0, "sdn", "status")
	want = `Version:    1
Committed:  0
Rollout:    ` + r.ID + ` version 1 preparing: 0 of 2 hosts applied (waiting for pve1, pve2)

HOST  COMMITTED  TARGET  APPLIED  STATE           REPORTED  ERROR
pve1  0          1       0        never reported  -         -
pve2  0          1       0        never reported  -         -
`
	if out != want {
		t.Errorf("status:\n%s\nwant:\n%s", out, want)
	}

	p.report(t, "pve1", 1, "applied", "")
	p.report(t, "pve2", 1, "applied", "")
	out, stderr = p.cli(t, 0, "sdn", "rollout", "wait", r.ID)
	want = `ID:        ` + r.ID + `
Version:   1
Phase:     committed
Hosts:     pve1, pve2
Applied:   pve1, pve2
Created:   2025-06-01T12:00:09Z
Deadline:  2025-06-01T12:02:09Z
Done:      2025-06-01T12:00:11Z

` + diff
	if out != want {
		t.Errorf("rollout wait:\n%s\nwant:\n%s", out, want)
	}
	if !strings.HasSuffix(stderr, " version 1 committed: 2 of 2 hosts applied\n") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("rollout wait stderr %q", stderr)
	}

	out, _ = p.cli(t, 0, "sdn", "apply")
	if out != "No change: every host is committed to what the intent compiles to (version 1).\n" {
		t.Errorf("apply without change: %q", out)
	}

	// A host that fails aborts the rollout; --wait follows it and fails.
	p.cli(t, 0, "sdn", "vnet", "update", "web", "--tag", "200")
	done := make(chan struct{})
	var code int
	go func() {
		defer close(done)
		out, stderr, code = runCLI(t, p.env(), "sdn", "apply", "--wait")
	}()
	r = p.activeRollout(t)
	p.report(t, "pve1", 2, "applied", "")
	p.report(t, "pve2", 2, "failed", "RTNETLINK answers: File exists")
	<-done
	want = `pve1 (version 1 -> 2):
  ~ link vxlan_web: vni: 100 -> 200
pve2 (version 1 -> 2):
  ~ link vxlan_web: vni: 100 -> 200
ID:        ` + r.ID + `
Version:   2
Phase:     aborted
Hosts:     pve1, pve2
Applied:   pve1
Reason:    host pve2: RTNETLINK answers: File exists
Created:   2025-06-01T12:00:14Z
Deadline:  2025-06-01T12:01:14Z
Done:      2025-06-01T12:00:16Z
`
	if code != exitFailure || out != want {
		t.Errorf("apply --wait: exit %d\n%s\nwant:\n%s", code, out, want)
	}
	if !strings.HasSuffix(stderr, "Error: rollout "+r.ID+" of version 2 aborted: host pve2: RTNETLINK answers: File exists; every host was sent back to its previous version\n") ||
		!strings.Contains(stderr, " version 2 aborted: 1 of 2 hosts applied: host pve2: RTNETLINK answers: File exists\n") {
		t.Errorf("apply --wait stderr %q", stderr)
	}

	out, _ = p.cli(t, 0, "sdn", "rollout", "list")
	want = `ID                                    VERSION  PHASE      HOSTS  APPLIED  CREATED               DONE                  REASON
` + anyID + `  2        aborted    2      1        2025-06-01T12:00:14Z  2025-06-01T12:00:16Z  host pve2: RTNETLINK answers: File exists
` + anyID + `  1        committed  2      2        2025-06-01T12:00:09Z  2025-06-01T12:00:11Z  -
`
	if out = plain(out); out != want {
		t.Errorf("rollout list:\n%s\nwant:\n%s", out, want)
	}
	out, _ = p.cli(t, 0, "sdn", "host", "get", "pve2")
	want = `Name:        pve2
Address:     192.0.2.2
Uplink:      eth0
MTU:         1500
Management:  -
Enrolled:    2025-06-01T12:00:06Z
Committed:   1
Target:      1
Applied:     1
State:       failed
Reported:    2025-06-01T12:00:16Z
Actions:     2
Error:       RTNETLINK answers: File exists
`
	if out != want {
		t.Errorf("host get:\n%s\nwant:\n%s", out, want)
	}

	p.cli(t, 0, "sdn", "apply")
	r = p.activeRollout(t)
	out, _ = p.cli(t, 0, "sdn", "rollout", "abort", r.ID, "--reason", "window over")
	if !strings.Contains(out, "Phase:     aborted\n") || !strings.Contains(out, "Reason:    window over\n") {
		t.Errorf("abort:\n%s", out)
	}
	if stderr := p.cliErr(t, "sdn", "rollout", "abort", r.ID); !strings.Contains(stderr, "409 conflict") || !strings.Contains(stderr, "not preparing") {
		t.Errorf("abort again: %s", stderr)
	}
	if _, stderr, code := runCLI(t, p.env(), "sdn", "apply", "--dry-run", "--wait"); code != exitUsage || !strings.Contains(stderr, "nothing to --wait for") {
		t.Errorf("--dry-run --wait: %d %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, p.env(), "sdn", "apply", "--timeout", "-1s"); code != exitUsage {
		t.Errorf("negative timeout: %d %s", code, stderr)
	}
	if stderr := p.cliErr(t, "sdn", "apply", "--timeout", "20m"); !strings.Contains(stderr, "field timeout") && !strings.Contains(stderr, "timeout") {
		t.Errorf("long timeout: %s", stderr)
	}
}
