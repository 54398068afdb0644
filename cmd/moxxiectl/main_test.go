package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/client"
	"github.com/moxxie/moxxie/version"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// oneErrorLine checks that stderr is exactly one "Error: ..." line.
func oneErrorLine(t *testing.T, stderr string) string {
	t.Helper()
	if !strings.HasPrefix(stderr, "Error: ") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr %q, want one Error: line", stderr)
	}
	return strings.TrimSuffix(strings.TrimPrefix(stderr, "Error: "), "\n")
}

func TestVersion(t *testing.T) {
	out, _, code := runCLI(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "moxxiectl "+version.Version+" (") {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	out, _, code = runCLI(t, nil, "version", "-o", "json")
	var info version.Info
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil || info.Version != version.Version {
		t.Errorf("exit %d, stdout %q", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stderr string // substring of stderr
	}{
		{"no command", nil, "needs a subcommand"},
		{"group alone", []string{"cluster"}, "Available Commands"},
		{"unknown command", []string{"bogus"}, `unknown command "bogus"`},
		{"unknown subcommand", []string{"cluster", "stauts"}, `did you mean "status"`},
		{"unknown flag", []string{"cluster", "status", "--bogus"}, "unknown flag: --bogus"},
		{"missing args", []string{"cluster", "join", "s4"}, "needs ID RAFT_ADDRESS"},
		{"extra args", []string{"cluster", "status", "x"}, "takes no arguments"},
		{"bad output", []string{"-o", "yaml", "cluster", "status"}, `invalid output format "yaml"`},
		{"bad cas", []string{"setting", "put", "k", "v", "--cas", "x"}, `invalid argument "x" for "--cas"`},
		{"stale and consistent", []string{"setting", "list", "--stale", "--consistent", "-a", "https://127.0.0.1:1"}, "exclude each other"},
		{"no address", []string{"cluster", "status"}, "no server address: use --address or set MOXXIE_ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := runCLI(t, nil, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.HasPrefix(stderr, "Error: ") || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q, want it to contain %q", stderr, tt.stderr)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
		})
	}
	out, _, code := runCLI(t, nil, "--help")
	if code != 0 || !strings.Contains(out, "snapshot") {
		t.Errorf("--help: exit %d, stdout %q", code, out)
	}
}

func TestClusterStatus(t *testing.T) {
	f := newFakeAPI(t)
	out, stderr, code := runCLI(t, f.env(), "cluster", "status")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := `ID  STATE        VOTER  RAFT ADDRESS    API ADDRESS             CERT EXPIRES
s1  leader       true   127.0.0.1:7001  https://127.0.0.1:8443  2027-11-25
s2  unreachable  false  127.0.0.1:7002  -                       -

Leader:         s1
Term:           4
Commit index:   120
Applied index:  119
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	out, _, code = runCLI(t, f.env(), "cluster", "status", "-o", "json")
	var st struct {
		Leader  string
		Term    uint64
		Servers []struct{ ID string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Leader != "s1" || st.Term != 4 || len(st.Servers) != 2 {
		t.Errorf("json: exit %d, %q", code, out)
	}
}

func TestEnvAndFlags(t *testing.T) {
	f := newFakeAPI(t)
	// Flags win over the environment.
	env := map[string]string{envAddr: "https://127.0.0.1:1", envToken: "wrong", envCACert: "/nonexistent"}
	_, stderr, code := runCLI(t, env, "-a", f.URL, "--token", "tok", "--ca-cert", f.caFile, "cluster", "status")
	if code != 0 {
		t.Fatalf("flags did not override the environment: exit %d: %s", code, stderr)
	}
	// The token comes from MOXXIE_TOKEN.
	env = f.env()
	env[envToken] = "wrong"
	_, stderr, code = runCLI(t, env, "cluster", "status")
	if code != 1 || oneErrorLine(t, stderr) != "401 unauthorized: missing or unknown token (request req-7)" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	// The CA comes from MOXXIE_CACERT: without it the server is not trusted.
	env = f.env()
	delete(env, envCACert)
	_, stderr, code = runCLI(t, env, "cluster", "status")
	if code != 1 || !strings.Contains(oneErrorLine(t, stderr), f.URL+": TLS: ") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestConnectionError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "https://" + ln.Addr().String()
	ln.Close()
	_, stderr, code := runCLI(t, nil, "-a", addr, "--retry-for", "0", "cluster", "status")
	if code != 1 || oneErrorLine(t, stderr) != "cannot reach "+addr+": connection refused" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestClusterJoinRemove(t *testing.T) {
	f := newFakeAPI(t)
	out, _, code := runCLI(t, f.env(), "cluster", "join", "s3", "10.0.0.3:7000")
	if code != 0 || out != "Server s3 joined the cluster (raft address 10.0.0.3:7000)\n" {
		t.Errorf("join: exit %d, %q", code, out)
	}
	out, _, code = runCLI(t, f.env(), "cluster", "remove", "s2")
	if code != 0 || out != "Server s2 removed from the cluster\n" {
		t.Errorf("remove: exit %d, %q", code, out)
	}
	_, stderr, code := runCLI(t, f.env(), "cluster", "remove", "s9")
	if code != 1 || oneErrorLine(t, stderr) != "404 not_found: unknown server (request req-7)" {
		t.Errorf("remove unknown: exit %d, %q", code, stderr)
	}
}

func TestSettings(t *testing.T) {
	f := newFakeAPI(t)
	env := f.env()
	out, _, code := runCLI(t, env, "setting", "put", "dns.zone", "moxxie.test")
	if code != 0 || out != "Setting dns.zone written (modify index 11)\n" {
		t.Fatalf("put: exit %d, %q", code, out)
	}
	out, _, code = runCLI(t, env, "setting", "get", "dns.zone")
	if code != 0 || out != "moxxie.test\n" {
		t.Errorf("get: exit %d, %q", code, out)
	}
	_, stderr, code := runCLI(t, env, "setting", "put", "dns.zone", "x", "--cas", "3")
	if code != 1 || oneErrorLine(t, stderr) != `409 conflict: setting "dns.zone" has modify index 11, not 3 (request req-7)` {
		t.Errorf("cas conflict: exit %d, %q", code, stderr)
	}
	if out, _, code = runCLI(t, env, "setting", "put", "dns.zone", "y", "--cas", "11"); code != 0 {
		t.Errorf("cas match: exit %d, %q", code, out)
	}
	if _, _, code = runCLI(t, env, "setting", "put", "multi", "a\tb\nc", "--cas", "0"); code != 0 {
		t.Errorf("cas 0 on a new key: exit %d", code)
	}
	out, _, code = runCLI(t, env, "setting", "list")
	want := `KEY       VALUE      MODIFY INDEX  UPDATED
dns.zone  y          12            2023-11-14T22:13:20Z
multi     "a\tb\nc"  13            2023-11-14T22:13:20Z
`
	if code != 0 || out != want {
		t.Errorf("list: exit %d\n%s\nwant\n%s", code, out, want)
	}
	out, _, code = runCLI(t, env, "setting", "get", "dns.zone", "-o", "json", "--stale")
	var s map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s["value"] != "y" || s["updated_at"] != "2023-11-14T22:13:20Z" {
		t.Errorf("get json: exit %d, %q", code, out)
	}
	out, _, code = runCLI(t, env, "setting", "delete", "dns.zone")
	if code != 0 || out != "Setting dns.zone deleted\n" {
		t.Errorf("delete: exit %d, %q", code, out)
	}
	_, stderr, code = runCLI(t, env, "setting", "get", "dns.zone")
	if code != 1 || oneErrorLine(t, stderr) != `404 not_found: setting "dns.zone" not found (field key, request req-7)` {
		t.Errorf("get deleted: exit %d, %q", code, stderr)
	}
	if !containsCall(f.callLog(), "GET /v1/cluster/settings/dns.zone?stale=true") {
		t.Errorf("--stale not sent: %v", f.callLog())
	}
	if !containsCall(f.callLog(), "PUT /v1/cluster/settings/dns.zone?cas=3") {
		t.Errorf("--cas not sent: %v", f.callLog())
	}
}

func containsCall(calls []string, want string) bool {
	for _, c := range calls {
		if c == want {
			return true
		}
	}
	return false
}

func TestACL(t *testing.T) {
	f := newFakeAPI(t)
	env := f.env()
	delete(env, envToken)
	out, stderr, code := runCLI(t, env, "acl", "bootstrap")
	if code != 0 {
		t.Fatalf("bootstrap: exit %d, %s", code, stderr)
	}
	if !strings.Contains(out, "Secret ID:    sec-boot\n") || !strings.Contains(out, "Accessor ID:  acc-boot\n") {
		t.Errorf("bootstrap stdout %q", out)
	}
	if !strings.Contains(stderr, "shown only once") {
		t.Errorf("bootstrap warning missing: %q", stderr)
	}

	env = f.env()
	out, _, code = runCLI(t, env, "token", "create", "--role", "operator", "--description", "ci", "--ttl", "1h", "-o", "json")
	var tok map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &tok) != nil || tok["secret_id"] != "sec-2" || tok["role"] != "operator" {
		t.Errorf("create: exit %d, %q", code, out)
	}
	out, _, code = runCLI(t, env, "token", "list")
	want := `ACCESSOR ID  ROLE      TENANT  DESCRIPTION      CREATED               EXPIRES
acc-boot     admin     -       Bootstrap token  2023-11-14T22:13:20Z  never
acc-2        operator  -       ci               2023-11-14T22:13:20Z  2023-11-14T23:13:20Z
`
	if code != 0 || out != want {
		t.Errorf("list: exit %d\n%s\nwant\n%s", code, out, want)
	}
	out, _, code = runCLI(t, env, "token", "revoke", "acc-2")
	if code != 0 || out != "Token acc-2 revoked\n" {
		t.Errorf("revoke: exit %d, %q", code, out)
	}
}

func TestCellQuotesWhatATerminalActsOn(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"web 1 é ü 日本", "web 1 é ü 日本"},
		{"a\tb", `"a\tb"`},
		{"line\nbreak", `"line\nbreak"`},
		{"\x1b]0;owned\x07", `"\x1b]0;owned\a"`},
		{"csi \u009b2J", `"csi \u009b2J"`},
		{"rtl \u202egnp.exe", `"rtl \u202egnp.exe"`},
		{"del\x7f", `"del\x7f"`},
	} {
		if got := cell(c.in); got != c.want {
			t.Errorf("cell(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestRowMakesEveryCellSafe(t *testing.T) {
	var b strings.Builder
	cells := []string{"ok", "tab\there", `"already"`}
	row(&b, cells...)
	if got, want := b.String(), "ok\t\"tab\\there\"\t\"already\"\n"; got != want {
		t.Fatalf("row wrote %q, want %q", got, want)
	}
	if cells[1] != "tab\there" {
		t.Fatal("row changed its argument")
	}
}

// TestFlagOfField: a 400's field names the command's own flag that sets
// it, whatever its case; not a global flag, a flag whose value came from
// a file, or a conflict's field.
func TestFlagOfField(t *testing.T) {
	root := &cobra.Command{Use: "moxxiectl"}
	root.PersistentFlags().String("address", "", "")
	cmd := &cobra.Command{Use: "x"}
	root.AddCommand(cmd)
	cmd.Flags().String("idempotency-key", "", "")
	cmd.Flags().String("ip", "", "")
	cmd.Flags().String("rpo", "", "")
	cmd.Flags().StringP("file", "f", "", "")
	for _, c := range []struct {
		status      int
		field, want string
		args        []string
	}{
		{400, "Idempotency-Key", "idempotency-key", nil},
		{400, "address", "ip", nil},
		{409, "address", "", nil},
		{400, "rpo", "rpo", nil},
		{400, "rpo", "", []string{"-f", "plan.yaml"}},
		{400, "rpo", "rpo", []string{"-f", "plan.yaml", "--rpo", "1h"}},
		{400, "nope", "", nil},
	} {
		if err := cmd.Flags().Parse(c.args); err != nil {
			t.Fatal(err)
		}
		if got := flagOfField(cmd, &client.APIError{Status: c.status, Field: c.field}); got != c.want {
			t.Errorf("%d %s %v: %q, want %q", c.status, c.field, c.args, got, c.want)
		}
		cmd.Flags().VisitAll(func(f *pflag.Flag) { f.Changed = false })
	}
}
