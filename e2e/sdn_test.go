package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moxxie/moxxie/internal/lockedbuf"
)

// netnsLab is a set of network namespaces the test made: three Proxmox
// hosts on an underlay bridge, and guests plugged into the hosts' vnets.
// Everything is deleted when the test ends, also when it fails.
type netnsLab struct {
	t      *testing.T
	prefix string
	names  []string
}

// requireNetns skips the test unless it runs as root on a kernel with
// network namespaces, veth, bridges and VXLAN, with iproute2 and ping.
func requireNetns(t *testing.T) *netnsLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SDN process tests need root (network namespaces); CI runs them as root")
	}
	for _, tool := range []string{"ip", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s missing: apt-get install iproute2 iputils-ping", tool)
		}
	}
	l := &netnsLab{t: t, prefix: fmt.Sprintf("mxe%d", os.Getpid()%100000)}
	t.Cleanup(l.cleanup)
	probe := l.ns("probe")
	if out, err := exec.Command("ip", "-n", probe, "link", "add", "vxprobe", "type", "vxlan", "id", "1", "dstport", "4789").CombinedOutput(); err != nil {
		t.Skipf("this kernel has no VXLAN devices: %s", out)
	}
	return l
}

// ns creates the namespace prefix-name with its loopback up.
func (l *netnsLab) ns(name string) string {
	l.t.Helper()
	full := l.prefix + "-" + name
	l.run("ip", "netns", "add", full)
	l.names = append(l.names, full)
	l.run("ip", "-n", full, "link", "set", "lo", "up")
	return full
}

func (l *netnsLab) cleanup() {
	for _, n := range l.names {
		_ = exec.Command("ip", "netns", "del", n).Run()
	}
}

func (l *netnsLab) run(args ...string) string {
	l.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// hosts makes n host namespaces whose eth0 (192.0.2.i/24) hangs on a
// bridge in an underlay namespace.
func (l *netnsLab) hosts(n int) []string {
	ul := l.ns("ul")
	l.run("ip", "-n", ul, "link", "add", "ulbr", "type", "bridge")
	l.run("ip", "-n", ul, "link", "set", "ulbr", "up")
	var hosts []string
	for i := 1; i <= n; i++ {
		h := l.ns(fmt.Sprintf("h%d", i))
		peer := fmt.Sprintf("ul%d", i)
		l.run("ip", "link", "add", peer, "netns", ul, "type", "veth", "peer", "name", "eth0", "netns", h)
		l.run("ip", "-n", ul, "link", "set", peer, "master", "ulbr", "up")
		l.run("ip", "-n", h, "addr", "add", fmt.Sprintf("192.0.2.%d/24", i), "dev", "eth0")
		l.run("ip", "-n", h, "link", "set", "eth0", "up")
		hosts = append(hosts, h)
	}
	return hosts
}

// guest plugs a guest namespace into bridge of host with addr, as a VM's
// tap device would be: the host side is a port the agent does not manage.
func (l *netnsLab) guest(name, host, bridge, addr string) string {
	l.t.Helper()
	g := l.ns(name)
	port := "tap" + name
	l.run("ip", "link", "add", port, "netns", host, "type", "veth", "peer", "name", "eth0", "netns", g)
	l.run("ip", "-n", host, "link", "set", port, "master", bridge, "up")
	l.run("ip", "-n", g, "addr", "add", addr, "dev", "eth0")
	l.run("ip", "-n", g, "link", "set", "eth0", "up")
	return g
}

// ping reports whether from reaches to with a few echo requests.
func (l *netnsLab) ping(from, to string) bool {
	return exec.Command("ip", "netns", "exec", from, "ping", "-c", "1", "-W", "1", to).Run() == nil ||
		exec.Command("ip", "netns", "exec", from, "ping", "-c", "2", "-W", "1", to).Run() == nil
}

// linkInfo is what `ip -d -j link show` says of a link.
type linkInfo struct {
	Ifname   string `json:"ifname"`
	Ifindex  int    `json:"ifindex"`
	Master   string `json:"master"`
	MTU      int    `json:"mtu"`
	Ifalias  string `json:"ifalias"`
	LinkInfo struct {
		InfoKind string `json:"info_kind"`
		InfoData struct {
			ID int `json:"id"`
		} `json:"info_data"`
	} `json:"linkinfo"`
}

func (l *netnsLab) links(ns string) map[string]linkInfo {
	l.t.Helper()
	var out []linkInfo
	if err := json.Unmarshal([]byte(l.run("ip", "-n", ns, "-d", "-j", "link", "show")), &out); err != nil {
		l.t.Fatal(err)
	}
	m := map[string]linkInfo{}
	for _, li := range out {
		m[li.Ifname] = li
	}
	return m
}

// agentProc is a moxxie-agent process holding one host namespace.
type agentProc struct {
	cmd    *exec.Cmd
	out    *lockedbuf.Buffer
	exited chan struct{}
}

// startAgent runs moxxie-agent for host in namespace ns, with extra
// flags. cred is a token secret, or "cert:" and the path stem of an agent
// certificate and key.
func startAgent(t *testing.T, dir, host, ns, addr, cred, state string, extra ...string) *agentProc {
	t.Helper()
	a := &agentProc{out: &lockedbuf.Buffer{}, exited: make(chan struct{})}
	args := []string{"--netns", ns, "--host", host, "--address", addr,
		"--uplink", "eth0", "--management", "eth0", "--state-dir", state, "--resync", "5s"}
	args = append(args, extra...)
	env := devEnv(t, dir)
	if stem, ok := strings.CutPrefix(cred, "cert:"); ok {
		args = append(args, "--cert", stem+".pem", "--key", stem+"-key.pem")
	} else {
		env = append(env, "MOXXIE_TOKEN="+cred)
	}
	a.cmd = exec.Command(bin("moxxie-agent"), args...)
	a.cmd.Env = env
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.cmd.Wait(); close(a.exited) }()
	t.Cleanup(func() {
		a.kill()
		if t.Failed() {
			t.Logf("agent %s:\n%s", host, a.out)
		}
	})
	return a
}

func (a *agentProc) kill() {
	_ = a.cmd.Process.Kill()
	<-a.exited
}

// devEnv is the environment with the dev appliance's exports.
func devEnv(t *testing.T, dir string) []string {
	t.Helper()
	env, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	out := os.Environ()
	for _, line := range strings.Split(string(env), "\n") {
		if kv, ok := strings.CutPrefix(line, "export "); ok {
			out = append(out, kv)
		}
	}
	return out
}

type sdnHostStatus struct {
	Host       string `json:"host"`
	ReportedAt string `json:"reported_at"`
	Target     uint64 `json:"target"`
	Applied    uint64 `json:"applied"`
	State      string `json:"state"`
	Error      string `json:"error"`
}

type sdnStatus struct {
	Version   uint64          `json:"version"`
	Committed uint64          `json:"committed"`
	Hosts     []sdnHostStatus `json:"hosts"`
}

// TestDev_SDNThreeHosts runs the network automation end to end: a dev
// appliance, three hosts as network namespaces each held by a real
// moxxie-agent, vnets of two tenants in a VXLAN zone rolled out with
// moxxiectl. It shows guests of one tenant reaching each other across
// hosts and not the other tenant's; a hand-deleted bridge coming back
// within 2 s while unmanaged links stay; a host failing a version rolling
// every host back; a restarted agent leaving correct links alone; a
// rollout committing across kill -9 of the leader; and a host whose agent
// is down aborting a rollout at its deadline.
func TestDev_SDNThreeHosts(t *testing.T) {
	lab := requireNetns(t)
	dir := filepath.Join(t.TempDir(), "dev")
	startDev(t, dir)
	ctl := mustCtl(t, dir)
	status := func() sdnStatus {
		t.Helper()
		var st sdnStatus
		if err := json.Unmarshal([]byte(ctl("sdn", "status", "-o", "json")), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	var tok struct {
		SecretID string `json:"secret_id"`
	}
	if err := json.Unmarshal([]byte(jsonPart(ctl("acl", "token", "create", "--role", "agent", "--description", "hosts", "-o", "json"))), &tok); err != nil || tok.SecretID == "" {
		t.Fatalf("agent token: %v %+v", err, tok)
	}

	// pve2's agent authenticates with an agent certificate instead.
	certDir := t.TempDir()
	if out, err := exec.Command(bin("moxxied"), "tls", "cert", "create", "--agent", "--name", "pve2",
		"--ca-dir", filepath.Join(dir, "tls"), "--dir", certDir).CombinedOutput(); err != nil {
		t.Fatalf("agent certificate: %v\n%s", err, out)
	}
	creds := []string{tok.SecretID, "cert:" + filepath.Join(certDir, "pve2"), tok.SecretID}

	hosts := lab.hosts(3)
	agents := make([]*agentProc, 3)
	states := make([]string, 3)
	for i, h := range hosts {
		states[i] = t.TempDir()
		agents[i] = startAgent(t, dir, fmt.Sprintf("pve%d", i+1), h, fmt.Sprintf("192.0.2.%d", i+1), creds[i], states[i])
	}
	waitUntil(t, 30*time.Second, "three hosts enrolled", func() error {
		var hs []struct{ Name string }
		out, err := devctl(t, dir, "sdn", "host", "list", "-o", "json")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		if err := json.Unmarshal([]byte(out), &hs); err != nil {
			return err
		}
		if len(hs) != 3 {
			return fmt.Errorf("%d hosts", len(hs))
		}
		return nil
	})

	ctl("ipam", "vni-pool", "create", "overlay", "--range", "5000-5999")
	ctl("sdn", "zone", "create", "ovl", "--type", "vxlan", "--pool", "overlay")
	ctl("sdn", "vnet", "create", "acme", "--zone", "ovl", "--tenant", "acme")
	ctl("sdn", "vnet", "create", "globex", "--zone", "ovl", "--tenant", "globex", "--tag", "5901")

	dry := ctl("sdn", "apply", "--dry-run")
	for _, want := range []string{"pve1", "pve2", "pve3", "+ link acme", "+ link vxlan_acme", "+ link vxlan_globex"} {
		if !strings.Contains(dry, want) {
			t.Fatalf("dry run does not show %q:\n%s", want, dry)
		}
	}
	if st := status(); st.Version != 0 {
		t.Fatalf("a dry run rolled something out: %+v", st)
	}
	ctl("sdn", "apply", "--wait", "--timeout", "30s")
	st := status()
	v1 := st.Committed
	if v1 == 0 || len(st.Hosts) != 3 {
		t.Fatalf("status after apply: %+v", st)
	}
	for _, h := range st.Hosts {
		if h.Applied != v1 || h.State != "applied" {
			t.Fatalf("host %s: %+v, want version %d applied", h.Host, h, v1)
		}
	}

	// Every host holds the bridges and VXLAN devices, with the VNI from
	// the pool and the MTU less the VXLAN overhead.
	for _, h := range hosts {
		ls := lab.links(h)
		vx := ls["vxlan_acme"]
		if ls["acme"].LinkInfo.InfoKind != "bridge" || vx.LinkInfo.InfoKind != "vxlan" || vx.Master != "acme" ||
			vx.LinkInfo.InfoData.ID < 5000 || vx.LinkInfo.InfoData.ID > 5999 || vx.MTU != 1450 {
			t.Fatalf("%s: acme links %+v %+v", h, ls["acme"], vx)
		}
		if ls["vxlan_globex"].LinkInfo.InfoData.ID != 5901 || ls["vxlan_globex"].Master != "globex" {
			t.Fatalf("%s: globex links %+v", h, ls["vxlan_globex"])
		}
	}

	// The dev appliance mirrors zones and vnets to its Proxmox simulator
	// (proxmox.sdn_mirror), so they show in the Proxmox UI.
	waitUntil(t, 20*time.Second, "the vnets mirrored to Proxmox SDN", func() error {
		var vnets []struct {
			Vnet, Zone, Alias string
			Tag               int
		}
		simGet(t, dir, "/cluster/sdn/vnets", &vnets)
		got := map[string]string{}
		for _, v := range vnets {
			got[v.Vnet] = fmt.Sprintf("%s/%d/%s", v.Zone, v.Tag, v.Alias)
		}
		if got["globex"] != "ovl/5901/moxxie:globex" || !strings.HasPrefix(got["acme"], "ovl/5") {
			return fmt.Errorf("Proxmox SDN vnets: %v", got)
		}
		return nil
	})

	// Guests: both tenants use the same subnet; only same-tenant guests
	// reach each other, across hosts.
	a1 := lab.guest("a1", hosts[0], "acme", "10.50.0.1/24")
	lab.guest("a2", hosts[1], "acme", "10.50.0.2/24")
	g1 := lab.guest("g1", hosts[0], "globex", "10.50.0.11/24")
	lab.guest("g3", hosts[2], "globex", "10.50.0.13/24")
	if !lab.ping(a1, "10.50.0.2") {
		t.Fatal("acme guest on pve1 cannot reach acme guest on pve2")
	}
	if !lab.ping(g1, "10.50.0.13") {
		t.Fatal("globex guest on pve1 cannot reach globex guest on pve3")
	}
	if lab.ping(a1, "10.50.0.13") || lab.ping(g1, "10.50.0.2") {
		t.Fatal("a guest reached the other tenant's vnet")
	}

	// Drift: a managed bridge deleted by hand is back within 2 s, with
	// its VXLAN port; unmanaged links (the underlay, a hand-made bridge,
	// the guests' ports) are untouched.
	lab.run("ip", "-n", hosts[1], "link", "add", "handmade", "type", "bridge")
	before := lab.links(hosts[1])
	lab.run("ip", "-n", hosts[1], "link", "del", "acme")
	deleted := time.Now()
	waitUntil(t, 5*time.Second, "the deleted bridge back with its VXLAN port", func() error {
		ls := lab.links(hosts[1])
		if ls["acme"].LinkInfo.InfoKind != "bridge" || ls["vxlan_acme"].Master != "acme" {
			return fmt.Errorf("acme %+v, vxlan_acme %+v", ls["acme"], ls["vxlan_acme"])
		}
		return nil
	})
	healed := time.Since(deleted) // an upper bound: one poll interval late at most
	t.Logf("deleted managed bridge restored in %v", healed)
	if healed > 2*time.Second {
		t.Fatalf("the deleted bridge took %v to come back, want at most 2s", healed)
	}
	after := lab.links(hosts[1])
	for _, name := range []string{"eth0", "handmade", "tapg1", "vxlan_globex", "globex"} {
		if b, ok := before[name]; ok && after[name].Ifindex != b.Ifindex {
			t.Fatalf("%s was recreated by the heal: %+v -> %+v", name, b, after[name])
		}
	}
	// The guest port of the recreated bridge is not the agent's to restore;
	// plug it back as Proxmox would when the VM's tap returns.
	lab.run("ip", "-n", hosts[1], "link", "set", "tapa2", "master", "acme")
	waitUntil(t, 10*time.Second, "the acme guests reach each other again", func() error {
		if !lab.ping(a1, "10.50.0.2") {
			return fmt.Errorf("no reply")
		}
		return nil
	})

	// All or nothing: pve3 has a hand-made link where the next version
	// wants a vnet, so it fails; every host returns to v1.
	lab.run("ip", "-n", hosts[2], "link", "add", "web", "type", "bridge")
	ctl("sdn", "vnet", "create", "web", "--zone", "ovl", "--tenant", "acme")
	out, err := devctl(t, dir, "sdn", "apply", "--wait", "--timeout", "30s")
	if err == nil || !strings.Contains(out, "pve3") {
		t.Fatalf("apply with a failing host: err %v, want failure naming pve3:\n%s", err, out)
	}
	waitUntil(t, 20*time.Second, "every host back on the previous version", func() error {
		st := status()
		for _, h := range st.Hosts {
			if h.Target != v1 || h.Applied != v1 {
				return fmt.Errorf("host %s: %+v", h.Host, h)
			}
		}
		for _, h := range hosts[:2] {
			if _, ok := lab.links(h)["web"]; ok {
				return fmt.Errorf("%s still has the failed version's bridge", h)
			}
		}
		return nil
	})
	if st := status(); st.Committed != v1 {
		t.Fatalf("committed version %d after the abort, want %d", st.Committed, v1)
	}
	if ls := lab.links(hosts[2]); ls["web"].Ifalias != "" || ls["web"].LinkInfo.InfoKind != "bridge" {
		t.Fatalf("the hand-made link on pve3 was changed: %+v", ls["web"])
	}

	// A restarted agent leaves correct links alone: same ifindexes, and
	// it reports the version it holds.
	before = lab.links(hosts[0])
	reported := status().Hosts[0].ReportedAt
	agents[0].kill()
	agents[0] = startAgent(t, dir, "pve1", hosts[0], "192.0.2.1", tok.SecretID, states[0])
	// The restarted agent has applied its plan once it reports again.
	waitUntil(t, 20*time.Second, "the restarted agent's report", func() error {
		if h := status().Hosts[0]; h.Host != "pve1" || h.ReportedAt == reported {
			return fmt.Errorf("pve1 last reported at %s", h.ReportedAt)
		}
		return nil
	})
	after = lab.links(hosts[0])
	for _, name := range []string{"acme", "vxlan_acme", "globex", "vxlan_globex"} {
		if after[name].Ifindex != before[name].Ifindex || after[name].MTU != before[name].MTU {
			t.Fatalf("restart changed %s: %+v -> %+v", name, before[name], after[name])
		}
	}
	if !strings.Contains(agents[0].out.String(), "enrolled") {
		t.Fatalf("restarted agent did not enrol:\n%s", agents[0].out)
	}
	if !lab.ping(a1, "10.50.0.2") {
		t.Fatal("acme guests lost each other across the agent restart")
	}

	// A rollout survives kill -9 of the leader: pve3's agent is frozen so
	// the rollout waits for it; the leader dies; once pve3 applies, the
	// new leader's state machine commits the version on every host.
	lab.run("ip", "-n", hosts[2], "link", "del", "web")
	if err := agents[2].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var started struct {
		Rollout struct {
			ID      string `json:"id"`
			Version uint64 `json:"version"`
		} `json:"rollout"`
	}
	if err := json.Unmarshal([]byte(ctl("sdn", "apply", "--timeout", "2m", "-o", "json")), &started); err != nil || started.Rollout.ID == "" {
		t.Fatalf("apply: %v %+v", err, started)
	}
	waitUntil(t, 20*time.Second, "pve1 and pve2 applied the new version", func() error {
		for _, h := range status().Hosts[:2] {
			if h.Applied != started.Rollout.Version {
				return fmt.Errorf("host %s: %+v", h.Host, h)
			}
		}
		return nil
	})
	var cs struct {
		Leader string `json:"leader"`
	}
	if err := json.Unmarshal([]byte(ctl("cluster", "status", "-o", "json")), &cs); err != nil {
		t.Fatal(err)
	}
	for _, s := range readServers(t, dir) {
		if s.ID == cs.Leader {
			if err := syscall.Kill(s.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := agents[2].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, "the rollout committed under a new leader", func() error {
		out, err := devctl(t, dir, "sdn", "status", "-o", "json")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		var st sdnStatus
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return err
		}
		if st.Committed != started.Rollout.Version {
			return fmt.Errorf("committed %d, want %d: %+v", st.Committed, started.Rollout.Version, st.Hosts)
		}
		return nil
	})
	v2 := started.Rollout.Version
	if _, ok := lab.links(hosts[2])["web"]; !ok {
		t.Fatal("pve3 does not hold the committed version's bridge web")
	}

	// A host whose agent is down cannot take a version: the rollout
	// aborts at its deadline, naming the host, and the others roll back.
	agents[2].kill()
	ctl("sdn", "vnet", "create", "db", "--zone", "ovl", "--tenant", "globex")
	out, err = devctl(t, dir, "sdn", "apply", "--wait", "--timeout", "3s")
	if err == nil || !strings.Contains(out, "deadline passed: pve3 did not apply") {
		t.Fatalf("apply with pve3's agent down: err %v, want a deadline abort naming pve3:\n%s", err, out)
	}
	waitUntil(t, 20*time.Second, "pve1 and pve2 back on the previous version", func() error {
		for _, h := range status().Hosts[:2] {
			if h.Target != v2 || h.Applied != v2 {
				return fmt.Errorf("host %s: %+v", h.Host, h)
			}
		}
		return nil
	})
	for _, h := range hosts[:2] {
		if _, ok := lab.links(h)["db"]; ok {
			t.Fatalf("%s kept the aborted version's bridge db", h)
		}
	}
}
