package packaging

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden file lists in testdata/")

// packages are the packages build-deb makes.
var packages = []string{"moxxie", "moxxie-agent"}

// built holds the packages, built once for all tests of a run.
var built struct {
	once sync.Once
	dir  string
	debs map[string]string // package name -> .deb path
	err  error
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// requireTools skips the test when a command it needs is missing.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s is not installed: skipped (CI installs it; apt-get install %s)", n, debianPackageOf(n))
		}
	}
}

func debianPackageOf(cmd string) string {
	switch cmd {
	case "dpkg-deb", "dpkg", "dpkg-statoverride":
		return "dpkg"
	case "go":
		return "golang"
	}
	return cmd
}

// debArch is this machine's Debian architecture: the tests build only it.
func debArch(t *testing.T) string {
	t.Helper()
	switch runtime.GOARCH {
	case "amd64", "arm64":
		return runtime.GOARCH
	}
	t.Skipf("no packages are built for %s", runtime.GOARCH)
	return ""
}

// buildDebs runs build-deb for this machine's architecture into a
// temporary directory, once, and returns the .deb of each package.
func buildDebs(t *testing.T) map[string]string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the packages: skipped with -short")
	}
	requireTools(t, "go", "git", "dpkg-deb")
	arch := debArch(t)
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "moxxie-deb-")
		if built.err != nil {
			return
		}
		cmd := exec.Command("./build-deb")
		cmd.Env = append(os.Environ(), "DIST="+built.dir, "DEB_ARCHES="+arch)
		out, err := cmd.CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("build-deb: %v\n%s", err, out)
			return
		}
		built.debs = map[string]string{}
		for _, pkg := range packages {
			m, _ := filepath.Glob(filepath.Join(built.dir, pkg+"_*_"+arch+".deb"))
			if len(m) != 1 {
				built.err = fmt.Errorf("build-deb made %d packages named %s_*_%s.deb, want 1\n%s", len(m), pkg, arch, out)
				return
			}
			built.debs[pkg] = m[0]
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.debs
}

// contents lists the files of a .deb as "mode owner/group path" lines,
// without sizes or dates.
func contents(t *testing.T, deb string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "--contents", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --contents %s: %v", deb, err)
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// drwxr-xr-x root/root 0 2026-11-26 04:26 ./etc/
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents: odd line %q", line)
		}
		fmt.Fprintf(&b, "%s %s %s\n", f[0], f[1], strings.Join(f[5:], " "))
	}
	return b.String()
}

// TestDeb_Contents compares each package's file list with its golden file,
// testdata/PACKAGE.contents; -update rewrites them. A changed list is a
// change of what operators install: review it.
func TestDeb_Contents(t *testing.T) {
	debs := buildDebs(t)
	for _, pkg := range packages {
		got := contents(t, debs[pkg])
		golden := filepath.Join("testdata", pkg+".contents")
		if *update {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./packaging -run TestDeb_Contents -update)", err)
		}
		if got != string(want) {
			t.Errorf("%s: file list differs from %s (if intended, rerun with -update):\n%s", pkg, golden, lineDiff(string(want), got))
		}
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if l != "" && !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if l != "" && !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

// TestDeb_Lintian runs lintian on both packages: no error, no warning that
// is not overridden, and every override used and justified by a comment.
func TestDeb_Lintian(t *testing.T) {
	debs := buildDebs(t)
	requireTools(t, "lintian")
	args := []string{"--display-info", "--tag-display-limit", "0"}
	for _, pkg := range packages {
		args = append(args, debs[pkg])
	}
	cmd := exec.Command("lintian", args...)
	// lintian leaves temporary files behind (mldbm-elf-*): in a
	// directory of the test's, they go with it.
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("lintian: %v", err)
	}
	t.Logf("lintian:\n%s", out)
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "E: "), strings.HasPrefix(line, "W: "):
			t.Errorf("lintian: %s", line)
		case strings.Contains(line, "unused-override"), strings.Contains(line, "mismatched-override"):
			t.Errorf("lintian: %s (remove or fix the override)", line)
		}
	}
	if err != nil && !t.Failed() {
		t.Errorf("lintian failed: %v\n%s", err, out)
	}
	for _, pkg := range packages {
		checkOverrideReasons(t, filepath.Join("deb", pkg+".lintian-overrides"))
	}
}

// checkOverrideReasons requires a comment right above each override.
func checkOverrideReasons(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	commented := false
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		switch {
		case line == "":
			commented = false
		case strings.HasPrefix(line, "#"):
			commented = true
		case !commented:
			t.Errorf("%s:%d: override without a reason in a comment above it: %s", path, n, line)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

// machine runs commands on the test machine and fails the test on error.
type machine struct{ t *testing.T }

func (m machine) run(name string, args ...string) string {
	m.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		m.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// installed reports whether dpkg knows pkg in any state but not-installed.
func installed(pkg string) bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Status}", pkg).Output()
	return err == nil && len(out) > 0 && string(out) != "not-installed"
}

// TestDeb_InstallRemovePurge installs both packages on this machine,
// checks what they set up, installs them again, removes and purges them.
// It runs as root and purges the packages afterwards, also when it fails.
// It refuses to run on a machine with a Moxxie installation of its own.
func TestDeb_InstallRemovePurge(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("installs packages: run as root (CI does)")
	}
	requireTools(t, "dpkg", "dpkg-query", "dpkg-statoverride", "getent")
	for _, pkg := range packages {
		if installed(pkg) {
			t.Skipf("%s is installed on this machine: not touching it", pkg)
		}
	}
	for _, p := range []string{"/etc/moxxie", "/var/lib/moxxie", "/var/lib/moxxie-agent"} {
		if _, err := os.Lstat(p); err == nil {
			t.Skipf("skipped: %s already exists here, and this test purges the packages, which deletes it; run it on a machine without Moxxie (CI is one)", p)
		}
	}
	if exec.Command("getent", "passwd", "moxxie").Run() == nil {
		t.Skip("skipped: a moxxie user already exists here, and this test purges the packages, which deletes that user; run it on a machine without Moxxie (CI is one)")
	}
	debs := buildDebs(t)
	m := machine{t}
	t.Cleanup(func() {
		// Leave the machine as it was, whatever happened above.
		out, err := exec.Command("dpkg", "--purge", "moxxie", "moxxie-agent").CombinedOutput()
		if err != nil {
			t.Errorf("cleanup: dpkg --purge: %v\n%s", err, out)
		}
		for _, p := range []string{"/etc/moxxie", "/var/lib/moxxie", "/var/lib/moxxie-agent"} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("cleanup: %s is left after the purge; removing it", p)
				os.RemoveAll(p)
			}
		}
		if exec.Command("getent", "passwd", "moxxie").Run() == nil {
			t.Errorf("cleanup: user moxxie is left after the purge; removing it")
			_ = exec.Command("userdel", "moxxie").Run()
		}
		if exec.Command("getent", "group", "moxxie").Run() == nil {
			t.Errorf("cleanup: group moxxie is left after the purge; removing it")
			_ = exec.Command("groupdel", "moxxie").Run()
		}
	})

	install := func() { m.run("dpkg", "--install", debs["moxxie"], debs["moxxie-agent"]) }
	install()
	want := expectedState(t)
	checkState(t, want)

	version := strings.TrimSuffix(strings.SplitN(filepath.Base(debs["moxxie"]), "_", 3)[1], "-1")
	for _, c := range [][]string{{"moxxied", "version"}, {"moxxiectl", "version"}} {
		if out := m.run(c[0], c[1:]...); !strings.HasPrefix(out, c[0]+" "+version+" ") {
			t.Errorf("%s version: %q, want %q first", c[0], out, c[0]+" "+version)
		}
	}
	if out := m.run("moxxie-agent", "--help"); !strings.Contains(out, "Usage:") {
		t.Errorf("moxxie-agent --help: %q", out)
	}
	if _, err := exec.LookPath("man"); err == nil {
		if out := m.run("man", "--where", "moxxiectl-cluster-status"); !strings.Contains(out, "/usr/share/man/man1/") {
			t.Errorf("man --where moxxiectl-cluster-status: %q", out)
		}
	}

	// Installing the same version again changes nothing, and keeps the
	// operator's configuration and data.
	edit := "\n# edited by TestDeb_InstallRemovePurge\n"
	appendFile(t, "/etc/moxxie/moxxied.yaml", edit)
	appendFile(t, "/etc/moxxie/agent.env", edit)
	writeFile(t, "/var/lib/moxxie/data", "raft state\n")
	install()
	checkState(t, want)
	for _, p := range []string{"/etc/moxxie/moxxied.yaml", "/etc/moxxie/agent.env"} {
		if b, _ := os.ReadFile(p); !strings.HasSuffix(string(b), edit) {
			t.Errorf("reinstall: %s lost its edit", p)
		}
	}

	// Remove keeps data, configuration and the user.
	m.run("dpkg", "--remove", "moxxie", "moxxie-agent")
	for _, p := range []string{"/usr/bin/moxxied", "/usr/bin/moxxiectl", "/usr/bin/moxxie-agent", "/usr/lib/systemd/system/moxxied.service"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("remove: %s is still there", p)
		}
	}
	for _, p := range []string{"/var/lib/moxxie/data", "/etc/moxxie/moxxied.yaml", "/etc/moxxie/agent.env"} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("remove: %s is gone: %v", p, err)
		}
	}
	checkPath(t, want, "/var/lib/moxxie")
	checkPath(t, want, "/etc/moxxie/moxxied.yaml")
	if err := exec.Command("getent", "passwd", "moxxie").Run(); err != nil {
		t.Errorf("remove: user moxxie is gone")
	}

	// Purge deletes them.
	m.run("dpkg", "--purge", "moxxie", "moxxie-agent")
	for _, p := range []string{"/var/lib/moxxie", "/var/lib/moxxie-agent", "/etc/moxxie",
		"/etc/systemd/system/multi-user.target.wants/moxxied.service",
		"/etc/systemd/system/multi-user.target.wants/moxxie-agent.service",
		"/etc/systemd/system/moxxied.service", "/etc/systemd/system/moxxie-agent.service"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("purge: %s is still there", p)
		}
	}
	for _, db := range []string{"passwd", "group"} {
		if exec.Command("getent", db, "moxxie").Run() == nil {
			t.Errorf("purge: %s moxxie is still there", db)
		}
	}
	if out, err := exec.Command("dpkg-statoverride", "--list", "/etc/moxxie/*").Output(); err == nil {
		t.Errorf("purge: statoverrides are left: %s", out)
	}
	for _, pkg := range packages {
		if installed(pkg) {
			t.Errorf("purge: dpkg still knows %s", pkg)
		}
	}

	// /etc/moxxie is shared: purging moxxie alone keeps the agent's
	// configuration, and nothing there is left to the moxxie group's ID.
	install()
	m.run("dpkg", "--purge", "moxxie")
	if _, err := os.Lstat("/etc/moxxie/agent.env"); err != nil {
		t.Errorf("purge of moxxie alone: agent.env is gone: %v", err)
	}
	checkPath(t, map[string]pathState{"/etc/moxxie/tls": {"root", "root", "750"}}, "/etc/moxxie/tls")
	m.run("dpkg", "--purge", "moxxie-agent")
	if _, err := os.Lstat("/etc/moxxie"); err == nil {
		t.Errorf("purge of moxxie-agent after moxxie: /etc/moxxie is still there")
	}
}

// pathState is what the test expects of an installed path.
type pathState struct{ owner, group, mode string }

// expectedState is the state of the installed packages, with the numeric
// IDs of the user moxxie looked up.
func expectedState(t *testing.T) map[string]pathState {
	t.Helper()
	pw := strings.Split(strings.TrimSpace(machine{t}.run("getent", "passwd", "moxxie")), ":")
	if len(pw) != 7 {
		t.Fatalf("getent passwd moxxie: %q", pw)
	}
	gr := strings.Split(strings.TrimSpace(machine{t}.run("getent", "group", "moxxie")), ":")
	if pw[3] != gr[2] {
		t.Errorf("user moxxie's group is %s, want moxxie (%s)", pw[3], gr[2])
	}
	var uid int
	fmt.Sscan(pw[2], &uid)
	if uid <= 0 || uid >= 1000 {
		t.Errorf("user moxxie has uid %d, want a system uid", uid)
	}
	if pw[5] != "/var/lib/moxxie" || pw[6] != "/usr/sbin/nologin" {
		t.Errorf("user moxxie: home %s, shell %s; want /var/lib/moxxie, /usr/sbin/nologin", pw[5], pw[6])
	}
	return map[string]pathState{
		"/usr/bin/moxxied":                             {"root", "root", "755"},
		"/usr/bin/moxxiectl":                           {"root", "root", "755"},
		"/usr/bin/moxxie-agent":                        {"root", "root", "755"},
		"/etc/moxxie":                                  {"root", "root", "755"},
		"/etc/moxxie/moxxied.yaml":                     {"root", "moxxie", "640"},
		"/etc/moxxie/agent.env":                        {"root", "root", "640"},
		"/etc/moxxie/tls":                              {"root", "moxxie", "750"},
		"/var/lib/moxxie":                              {"moxxie", "moxxie", "750"},
		"/usr/lib/systemd/system/moxxied.service":      {"root", "root", "644"},
		"/usr/lib/systemd/system/moxxie-agent.service": {"root", "root", "644"},
		// Enabled: deb-systemd-helper's symlinks, followed.
		"/etc/systemd/system/multi-user.target.wants/moxxied.service":      {"root", "root", "644"},
		"/etc/systemd/system/multi-user.target.wants/moxxie-agent.service": {"root", "root", "644"},
		"/usr/share/man/man1/moxxied.1.gz":                                 {"root", "root", "644"},
		"/usr/share/man/man1/moxxie-agent.1.gz":                            {"root", "root", "644"},
		"/usr/share/bash-completion/completions/moxxiectl":                 {"root", "root", "644"},
		"/usr/share/zsh/vendor-completions/_moxxiectl":                     {"root", "root", "644"},
		"/usr/share/doc/moxxie/copyright":                                  {"root", "root", "644"},
		"/usr/share/moxxie/prometheus/moxxie-rules.yml":                    {"root", "root", "644"},
		"/usr/share/moxxie/grafana/moxxie-dashboard.json":                  {"root", "root", "644"},
	}
}

func checkState(t *testing.T, want map[string]pathState) {
	t.Helper()
	for p := range want {
		checkPath(t, want, p)
	}
}

var statRe = regexp.MustCompile(`^(\S+) (\S+) (\d+)$`)

func checkPath(t *testing.T, want map[string]pathState, p string) {
	t.Helper()
	out, err := exec.Command("stat", "--dereference", "--format", "%U %G %a", p).Output()
	if err != nil {
		t.Errorf("%s: missing (%v)", p, err)
		return
	}
	m := statRe.FindStringSubmatch(strings.TrimSpace(string(out)))
	if m == nil {
		t.Fatalf("stat %s: %q", p, out)
	}
	if got := (pathState{m[1], m[2], m[3]}); got != want[p] {
		t.Errorf("%s: %s:%s %s, want %s:%s %s", p, got.owner, got.group, got.mode, want[p].owner, want[p].group, want[p].mode)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
