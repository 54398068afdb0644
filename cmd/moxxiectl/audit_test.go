package main

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/audit"
)

// auditExportFile writes an export of n entries with checkpoints of every
// fourth, signed by the key in the returned key file, and returns its
// lines.
func auditExportFile(t *testing.T, n int) (lines []string, pubFile string) {
	t.Helper()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "audit.key")
	if _, _, code := runCLI(t, nil, "audit", "keygen", "--out", keyFile); code != 0 {
		t.Fatal("keygen failed")
	}
	stdout, _, code := runCLI(t, nil, "audit", "keygen", "--out", filepath.Join(dir, "other.key"))
	if code != 0 || !strings.Contains(stdout, "MOXXIE AUDIT PUBLIC KEY") {
		t.Fatalf("keygen printed %q", stdout)
	}
	if _, _, code := runCLI(t, nil, "audit", "keygen", "--out", keyFile); code == 0 {
		t.Fatal("keygen overwrote a key")
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	pubFile = filepath.Join(dir, "pub.pem")
	if err := os.WriteFile(pubFile, audit.MarshalPublicKey(key.Public().(ed25519.PublicKey)), 0o644); err != nil {
		t.Fatal(err)
	}
	var es []audit.Entry
	var cps []audit.Checkpoint
	prev := audit.ZeroHash
	for i := 1; i <= n; i++ {
		e := audit.Entry{Seq: uint64(i), Index: uint64(i + 3), Time: audit.Nanos(int64(i) * 1e9), TokenID: "tok", Role: "admin",
			Source: "192.0.2.1:1", RequestID: fmt.Sprint("r", i), Action: "PUT /v1/cluster/settings/{key}", Object: fmt.Sprint("/v1/cluster/settings/k", i), Result: "ok"}
		prev = audit.Chain(prev, &e)
		es = append(es, e)
		if i%4 == 0 || i == n {
			cps = append(cps, audit.Sign(key, audit.Head{Seq: e.Seq, Hash: e.Hash}, int64(i)*1e9+1))
		}
	}
	var buf bytes.Buffer
	x := audit.NewExportWriter(&buf, cps)
	for i := range es {
		if err := x.Write(&es[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(strings.TrimSuffix(buf.String(), "\n"), "\n"), pubFile
}

func TestAuditVerify_File(t *testing.T) {
	lines, pub := auditExportFile(t, 10)
	find := func(ls []string, seq int) int {
		return slices.IndexFunc(ls, func(l string) bool { return strings.HasPrefix(l, fmt.Sprintf(`{"seq":%d,`, seq)) })
	}
	cases := []struct {
		name    string
		edit    func([]string) []string
		wantErr string
	}{
		{"intact", func(ls []string) []string { return ls }, ""},
		{"modified", func(ls []string) []string {
			i := find(ls, 6)
			ls[i] = strings.Replace(ls[i], `"token_id":"tok"`, `"token_id":"someone"`, 1)
			return ls
		}, "entry 6 modified (line 7)"},
		{"deleted", func(ls []string) []string { return slices.Delete(ls, find(ls, 3), find(ls, 3)+1) }, "entry 3 deleted"},
		{"inserted", func(ls []string) []string { return slices.Insert(ls, find(ls, 7), ls[find(ls, 2)]) }, "entry 2 inserted (line 8)"},
		{"reordered", func(ls []string) []string {
			i, j := find(ls, 9), find(ls, 10)
			ls[i], ls[j] = ls[j], ls[i]
			return ls
		}, "entry 10 reordered (line 11)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "audit.jsonl")
			if err := os.WriteFile(f, []byte(strings.Join(tc.edit(slices.Clone(lines)), "")), 0o600); err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := runCLI(t, nil, "audit", "verify", "--file", f, "--pubkey", pub)
			if tc.wantErr == "" {
				if code != 0 || !strings.Contains(stdout, "Audit log OK: 10 entries") {
					t.Fatalf("exit %d: %s %s", code, stdout, stderr)
				}
				return
			}
			if code != exitFailure || !strings.Contains(stderr, tc.wantErr) {
				t.Fatalf("exit %d, stderr %q, want %q", code, stderr, tc.wantErr)
			}
		})
	}
	// Without --pubkey it warns; with the wrong key it fails.
	f := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(f, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runCLI(t, nil, "audit", "verify", "--file", f); code != 0 || !strings.Contains(stderr, "Warning: no --pubkey") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	otherPub := filepath.Join(t.TempDir(), "other.pem")
	if err := os.WriteFile(otherPub, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runCLI(t, nil, "audit", "verify", "--file", f, "--pubkey", otherPub); code != exitFailure || !strings.Contains(stderr, "untrusted key") {
		t.Fatalf("wrong key: exit %d: %s", code, stderr)
	}
}

// TestAuditList_Last checks that --last asks the server for the newest
// entries and prints them as it answers, oldest first.
func TestAuditList_Last(t *testing.T) {
	var got []string
	env := newHandlerServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI())
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"entries":[{"seq":41,"action":"PUT /v1/x","result":"ok"},{"seq":42,"action":"PUT /v1/y","result":"ok"}],"head":{"seq":42}}`)
	})
	out, stderr, code := runCLI(t, env, "audit", "list", "--last", "2", "--action", "PUT /v1/x")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if want := []string{"GET /v1/audit?action=PUT+%2Fv1%2Fx&last=2"}; !slices.Equal(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
	if i, j := strings.Index(out, "PUT /v1/x"), strings.Index(out, "PUT /v1/y"); i < 0 || j < i {
		t.Errorf("printed:\n%s", out)
	}
}
