package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDev_VMCreateInSimulatorInventoryAndDNS is the README's VM
// walk-through: in a `moxxied dev` appliance, `moxxiectl vm create` clones
// a template in the embedded Proxmox simulator, the VM is in the
// inventory with its tenant, its name resolves with dig, and deleting it
// removes it everywhere.
func TestDev_VMCreateInSimulatorInventoryAndDNS(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		t.Skip("dig missing: apt-get install dnsutils")
	}
	dir := filepath.Join(t.TempDir(), "dev")
	startDev(t, dir)
	ctl := mustCtl(t, dir)
	ctl("ipam", "prefix", "create", "10.88.0.0/24", "--gateway", "10.88.0.1")
	var guests []struct {
		VMID     int
		Name     string
		Template bool
	}
	waitUntil(t, 30*time.Second, "the seeded guests in the inventory", func() error {
		out, err := devctl(t, dir, "inventory", "guests", "-o", "json")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if err := json.Unmarshal([]byte(out), &guests); err != nil {
			return err
		}
		if len(guests) == 0 {
			return fmt.Errorf("no guests yet")
		}
		return nil
	})

	out := ctl("vm", "create", "app1", "--template", "debian-12-cloud", "--tenant", "acme",
		"--nic", "bridge=vmbr0,vlan=30,prefix=10.88.0.0/24,dns=app1.moxxie.test", "--wait", "-o", "json")
	var op struct {
		Status    string
		VMID      int
		Node      string
		Addresses []struct{ Address string }
	}
	if err := json.Unmarshal([]byte(jsonPart(out)), &op); err != nil {
		t.Fatalf("vm create output: %v\n%s", err, out)
	}
	if op.Status != "succeeded" || op.VMID == 0 || len(op.Addresses) != 1 || op.Addresses[0].Address != "10.88.0.2" {
		t.Fatalf("vm create: %+v\n%s", op, out)
	}

	// In the simulator, as Proxmox would report it.
	sim := simResources(t, dir)
	found := false
	for _, r := range sim {
		if r.VMID == op.VMID && r.Name == "app1" && r.Status == "running" && strings.Contains(r.Tags, "tenant.acme") {
			found = true
		}
	}
	if !found {
		t.Fatalf("VM %d not running in the simulator: %+v", op.VMID, sim)
	}
	// In the inventory, with its tenant.
	out = ctl("inventory", "guest", fmt.Sprint(op.VMID), "-o", "json")
	var g struct{ Name, Tenant, Status string }
	if err := json.Unmarshal([]byte(out), &g); err != nil || g.Tenant != "acme" || g.Status != "running" {
		t.Fatalf("inventory guest: %+v %v\n%s", g, err, out)
	}
	// In DNS by name, on every server.
	for _, s := range devDNSServers(t, dir) {
		waitDig(t, s.DNSAddress, "10.88.0.2", "app1.moxxie.test", "A")
	}

	// A delete with an Idempotency-Key, and its retry once the VM is gone
	// from the inventory (the response to the first lost, say): the retry
	// answers the first operation, not 404.
	deleteVM := []string{"vm", "delete", fmt.Sprint(op.VMID), "--idempotency-key", "e2e-delete-app1", "--wait", "-o", "json"}
	var first, retry struct{ ID, Status string }
	if err := json.Unmarshal([]byte(jsonPart(ctl(deleteVM...))), &first); err != nil || first.Status != "succeeded" {
		t.Fatalf("vm delete: %+v %v", first, err)
	}
	for _, r := range simResources(t, dir) {
		if r.VMID == op.VMID {
			t.Fatalf("VM %d still in the simulator after delete", op.VMID)
		}
	}
	waitUntil(t, 30*time.Second, "the deleted VM gone from the inventory", func() error {
		out, err := devctl(t, dir, "inventory", "guest", fmt.Sprint(op.VMID), "-o", "json")
		var ig struct{ Gone bool }
		if err == nil && (json.Unmarshal([]byte(out), &ig) != nil || !ig.Gone) {
			return fmt.Errorf("still there: %s", out)
		}
		return nil
	})
	if err := json.Unmarshal([]byte(jsonPart(ctl(deleteVM...))), &retry); err != nil || retry.ID != first.ID || retry.Status != "succeeded" {
		t.Fatalf("retried vm delete: %+v %v, want operation %s", retry, err, first.ID)
	}
	for _, s := range devDNSServers(t, dir) {
		waitDig(t, s.DNSAddress, "", "app1.moxxie.test", "A")
	}
}

// jsonPart drops the progress lines --wait prints before the JSON.
func jsonPart(out string) string {
	if i := strings.Index(out, "\n{"); i >= 0 {
		return out[i+1:]
	}
	return out
}

type simResource struct {
	VMID   int    `json:"vmid"`
	Name   string `json:"name"`
	Status string `json:"status"`
	Tags   string `json:"tags"`
}

// simResources asks the dev appliance's Proxmox simulator for its guests,
// with the token the servers use.
func simResources(t *testing.T, dir string) []simResource {
	t.Helper()
	var out []simResource
	simGet(t, dir, "/cluster/resources?type=vm", &out)
	return out
}

// simGet reads path of the dev appliance's Proxmox simulator API into the
// data of out, with the token the servers use.
func simGet(t *testing.T, dir, path string, out any) {
	t.Helper()
	resp := simRequest(t, dir, http.MethodGet, "/api2/json"+path, nil)
	defer resp.Body.Close()
	body := struct{ Data any }{Data: out}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("simulator %s: %s %v", path, resp.Status, err)
	}
}

// simRequest sends a request to the dev appliance's Proxmox simulator,
// its API (/api2/json/...) or its admin API (/pvesim/v1/...), with the
// token the servers use and body as JSON when it is not nil.
func simRequest(t *testing.T, dir, method, path string, body any) *http.Response {
	t.Helper()
	addr := envValue(t, dir, "MOXXIE_PVESIM_ADDR")
	secret, err := os.ReadFile(filepath.Join(dir, "pvesim-token"))
	if err != nil || addr == "" {
		t.Fatalf("simulator address %q, token: %v", addr, err)
	}
	ca, err := os.ReadFile(filepath.Join(dir, "tls", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "https://"+addr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "PVEAPIToken=root@pam!moxxie="+strings.TrimSpace(string(secret)))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}
