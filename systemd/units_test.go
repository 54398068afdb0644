package systemd

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moxxie/moxxie/node"
)

// units are the unit files of this directory and the binaries they run.
var units = map[string]string{
	"moxxied.service":      "moxxied",
	"moxxie-agent.service": "moxxie-agent",
}

// TestUnits_SystemdAnalyzeVerify runs systemd-analyze verify on both
// units, with ExecStart pointed at freshly built binaries (verify checks
// that they exist and are executable). Any output fails the test: verify
// exits 0 on unknown keys and unparsable values, and only warns.
func TestUnits_SystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd): the units are not verified")
	}
	bin, dir := buildBinaries(t), t.TempDir()
	var paths []string
	for name := range units {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.ReplaceAll(data, []byte("ExecStart=/usr/bin/"), []byte("ExecStart="+bin+"/"))
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	// Documentation= names man pages the packages install; check them
	// only where they are installed.
	manArg := "--man=no"
	if exec.Command("man", "-w", "moxxied").Run() == nil && exec.Command("man", "-w", "moxxie-agent").Run() == nil {
		manArg = "--man=yes"
	} else {
		t.Log("man pages moxxied(1) and moxxie-agent(1) are not installed: Documentation= man references not checked")
	}
	cmd := exec.Command(analyze, append([]string{"verify", manArg}, paths...)...)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Prove the check catches a mistake.
	bad := filepath.Join(dir, "bad.service")
	data, _ := os.ReadFile(paths[0])
	if err := os.WriteFile(bad, append(data, "\n[Service]\nProtectSystem=stricter\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command(analyze, "verify", "--man=no", bad).CombinedOutput(); !bytes.Contains(out, []byte("ProtectSystem")) && !bytes.Contains(out, []byte("protect system")) {
		t.Fatalf("systemd-analyze verify said nothing about a bad value:\n%s", out)
	}
}

var build struct {
	sync.Once
	dir string
	err error
	out []byte
}

// buildBinaries builds moxxied and moxxie-agent once per test process and
// returns their directory. It skips the test with -short.
func buildBinaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds moxxied and moxxie-agent; skipped with -short")
	}
	build.Do(func() {
		if build.dir, build.err = os.MkdirTemp("", "moxxie-units-"); build.err != nil {
			return
		}
		// Without moxxied's profile (cmd/moxxied/default.pgo): the units
		// need the commands, not their profile-guided optimization.
		args := []string{"build", "-pgo=off", "-o", build.dir + "/"}
		for _, b := range units {
			args = append(args, "../cmd/"+b)
		}
		build.out, build.err = exec.Command("go", args...).CombinedOutput()
	})
	if build.err != nil {
		t.Fatalf("go build: %v\n%s", build.err, build.out)
	}
	return build.dir
}

// unit is a parsed unit file: every assignment of each key, by section,
// in order, with continuation lines joined.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, name string) unit {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	var cont string
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if cont != "" {
			line = cont + " " + line
			cont = ""
		}
		if strings.HasSuffix(line, "\\") {
			cont = strings.TrimSuffix(line, "\\")
			continue
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", name, n, line)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// last returns the effective value of a single-valued key.
func (u unit) last(section, key string) (string, bool) {
	vs := u[section][key]
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

// list returns the words of a list-valued key, an empty assignment
// resetting the list as systemd does.
func (u unit) list(section, key string) []string {
	var out []string
	for _, v := range u[section][key] {
		if v == "" {
			out = nil
			continue
		}
		out = append(out, strings.Fields(v)...)
	}
	return out
}

// check is one expectation of a unit.
type check struct {
	section, key string
	want         string   // exact value of a single-valued key
	has          []string // words a list-valued key must hold
	empty        bool     // the key is set and resolves to an empty list
}

func checkUnit(t *testing.T, name string, u unit, checks []check) {
	t.Helper()
	for _, c := range checks {
		switch {
		case c.empty:
			if _, set := u.last(c.section, c.key); !set || len(u.list(c.section, c.key)) != 0 {
				t.Errorf("%s: [%s] %s must be set and empty, is %q", name, c.section, c.key, u[c.section][c.key])
			}
		case c.has != nil:
			got := u.list(c.section, c.key)
			for _, w := range c.has {
				if !slices.Contains(got, w) {
					t.Errorf("%s: [%s] %s = %q lacks %q", name, c.section, c.key, got, w)
				}
			}
		default:
			if got, _ := u.last(c.section, c.key); got != c.want {
				t.Errorf("%s: [%s] %s = %q, want %q", name, c.section, c.key, got, c.want)
			}
		}
	}
}

// TestUnits_RestartAfterCrash: a Go panic and the watchdog's SIGABRT exit
// with status 2; neither unit may keep that from restarting the service.
func TestUnits_RestartAfterCrash(t *testing.T) {
	for name := range units {
		u := parseUnit(t, name)
		if slices.Contains(u.list("Service", "RestartPreventExitStatus"), "2") {
			t.Errorf("%s: RestartPreventExitStatus lists 2, the status of a Go crash", name)
		}
		if v, _ := u.last("Service", "WatchdogSignal"); v != "" && v != "SIGABRT" {
			t.Errorf("%s: WatchdogSignal=%s; SIGABRT makes Go dump every goroutine before it exits", name, v)
		}
	}
}

// hardening is what both units set.
var hardening = []check{
	{section: "Service", key: "NoNewPrivileges", want: "yes"},
	{section: "Service", key: "ProtectSystem", want: "strict"},
	{section: "Service", key: "ProtectHome", want: "yes"},
	{section: "Service", key: "PrivateTmp", want: "yes"},
	{section: "Service", key: "PrivateDevices", want: "yes"},
	{section: "Service", key: "PrivateMounts", want: "yes"},
	{section: "Service", key: "ProtectKernelModules", want: "yes"},
	{section: "Service", key: "ProtectControlGroups", want: "yes"},
	{section: "Service", key: "RestrictNamespaces", want: "yes"},
	{section: "Service", key: "RestrictRealtime", want: "yes"},
	{section: "Service", key: "RestrictSUIDSGID", want: "yes"},
	{section: "Service", key: "LockPersonality", want: "yes"},
	{section: "Service", key: "MemoryDenyWriteExecute", want: "yes"},
	{section: "Service", key: "SystemCallArchitectures", want: "native"},
	{section: "Service", key: "SystemCallFilter", has: []string{"@system-service"}},
	{section: "Service", key: "RestrictAddressFamilies", has: []string{"AF_UNIX", "AF_INET", "AF_INET6"}},
	{section: "Unit", key: "Wants", has: []string{"network-online.target"}},
	{section: "Unit", key: "After", has: []string{"network-online.target"}},
	{section: "Install", key: "WantedBy", has: []string{"multi-user.target"}},
}

// TestUnits_Moxxied checks the directives issue 9 asks of moxxied.service
// and those the server relies on.
func TestUnits_Moxxied(t *testing.T) {
	u := parseUnit(t, "moxxied.service")
	checkUnit(t, "moxxied.service", u, append(slices.Clone(hardening), []check{
		{section: "Service", key: "Type", want: "notify"},
		{section: "Service", key: "NotifyAccess", want: "main"},
		{section: "Service", key: "ExecStart", want: "/usr/bin/moxxied server --config /etc/moxxie/moxxied.yaml"},
		{section: "Service", key: "ExecReload", want: "/bin/kill -HUP $MAINPID"},
		{section: "Service", key: "Restart", want: "on-failure"},
		{section: "Service", key: "User", want: "moxxie"},
		{section: "Service", key: "Group", want: "moxxie"},
		{section: "Service", key: "UMask", want: "0027"},
		{section: "Service", key: "StateDirectory", want: "moxxie"},
		{section: "Service", key: "ReadWritePaths", has: []string{node.DefaultConfig().DataDir}},
		{section: "Service", key: "CapabilityBoundingSet", empty: true},
		{section: "Service", key: "LimitNOFILE", want: "65536"},
		{section: "Service", key: "ProtectKernelTunables", want: "yes"},
		{section: "Service", key: "ProtectClock", want: "yes"},
		{section: "Service", key: "ProtectHostname", want: "yes"},
		{section: "Service", key: "ProtectKernelLogs", want: "yes"},
	}...))
	// The data directory the unit makes writable is the server's default.
	if got, _ := u.last("Service", "StateDirectory"); "/var/lib/"+got != node.DefaultConfig().DataDir {
		t.Errorf("StateDirectory=%s is not the default data_dir %s", got, node.DefaultConfig().DataDir)
	}
	// moxxied opens no other socket families (no packet sockets).
	if got := u.list("Service", "RestrictAddressFamilies"); len(got) != 4 || !slices.Contains(got, "AF_NETLINK") {
		t.Errorf("RestrictAddressFamilies = %q, want AF_UNIX AF_INET AF_INET6 AF_NETLINK", got)
	}
	// The watchdog: on, and long enough for a health check (5 s) and a
	// retry before systemd kills the server.
	wd := durationOf(t, u, "WatchdogSec")
	if wd < 20*time.Second {
		t.Errorf("WatchdogSec=%v: too short for the 5 s health check and its retries", wd)
	}
	// SIGTERM hands leadership off, stops raft (bounded at 15 s), the
	// API (2 s) and flushes traces (5 s): the stop timeout must allow it.
	if stop := durationOf(t, u, "TimeoutStopSec"); stop < 45*time.Second {
		t.Errorf("TimeoutStopSec=%v is shorter than a leadership handoff and shutdown may take", stop)
	}
	for _, forbidden := range []string{"AmbientCapabilities"} {
		if vs := u.list("Service", forbidden); len(vs) > 0 {
			t.Errorf("moxxied.service grants %s=%q; it runs without capabilities", forbidden, vs)
		}
	}
}

// TestUnits_Agent checks moxxie-agent.service: root, bounded to the
// network capabilities, started after the network, configured from
// /etc/moxxie/agent.env.
func TestUnits_Agent(t *testing.T) {
	u := parseUnit(t, "moxxie-agent.service")
	checkUnit(t, "moxxie-agent.service", u, append(slices.Clone(hardening), []check{
		{section: "Service", key: "User", want: "root"},
		{section: "Service", key: "Restart", want: "always"},
		{section: "Service", key: "EnvironmentFile", want: "/etc/moxxie/agent.env"},
		{section: "Service", key: "ExecStart", want: "/usr/bin/moxxie-agent --address ${MOXXIE_AGENT_ADDRESS} $MOXXIE_AGENT_OPTS"},
		{section: "Service", key: "StateDirectory", want: "moxxie-agent"},
		{section: "Service", key: "RestrictAddressFamilies", has: []string{"AF_NETLINK"}},
	}...))
	caps := u.list("Service", "CapabilityBoundingSet")
	slices.Sort(caps)
	if !slices.Equal(caps, []string{"CAP_NET_ADMIN", "CAP_NET_RAW"}) {
		t.Errorf("CapabilityBoundingSet = %q, want exactly CAP_NET_ADMIN CAP_NET_RAW", caps)
	}
	// The agent writes the forwarding sysctls of its bridges under
	// /proc/sys/net, which ProtectKernelTunables would make read-only.
	if v, _ := u.last("Service", "ProtectKernelTunables"); v == "yes" || v == "true" {
		t.Error("ProtectKernelTunables=yes would stop the agent setting forwarding under /proc/sys/net")
	}
	// The state directory is the agent's default --state-dir.
	out, err := exec.Command(filepath.Join(buildBinaries(t), "moxxie-agent"), "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("moxxie-agent --help: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte(`"/var/lib/moxxie-agent"`)) {
		t.Errorf("moxxie-agent's default --state-dir is not /var/lib/moxxie-agent (StateDirectory):\n%s", out)
	}
}

// TestUnits_AgentEnvDocumented: the variables of /etc/moxxie/agent.env
// are named the same in the unit and in docs/install.md, which the
// packages' conffile follows.
func TestUnits_AgentEnvDocumented(t *testing.T) {
	unitText, err := os.ReadFile("moxxie-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/install.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"MOXXIE_ADDR", "MOXXIE_CACERT", "MOXXIE_AGENT_ADDRESS", "MOXXIE_AGENT_OPTS", "/etc/moxxie/agent.env"} {
		if !bytes.Contains(unitText, []byte(v)) {
			t.Errorf("moxxie-agent.service does not mention %s", v)
		}
		if !bytes.Contains(doc, []byte(v)) {
			t.Errorf("docs/install.md does not mention %s", v)
		}
	}
}

// durationOf parses a systemd time span of the forms the units use: a
// number of seconds, or numbers with s, min, h suffixes.
func durationOf(t *testing.T, u unit, key string) time.Duration {
	t.Helper()
	v, ok := u.last("Service", key)
	if !ok {
		t.Fatalf("[Service] %s is not set", key)
	}
	s := strings.NewReplacer("min", "m", " ", "").Replace(v)
	if !strings.ContainsAny(s, "smh") {
		s += "s"
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("[Service] %s=%s: %v", key, v, err)
	}
	return d
}
