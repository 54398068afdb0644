package node

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/audit"
	"github.com/moxxie/moxxie/fsm"
)

// auditKeyFile writes a signing key for a test cluster.
func auditKeyFile(t *testing.T) (string, audit.Keys) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "audit.key")
	pub, err := WriteAuditKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteAuditKey(p); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second WriteAuditKey: %v", err)
	}
	return p, audit.Keys{audit.KeyID(pub): true}
}

// checkpoint makes the leader sign and store a checkpoint of the head.
func checkpoint(t *testing.T, s *Server) {
	t.Helper()
	WaitForResult(t, 10*time.Second, func() error {
		l := TestLeaderOf(s)
		if l == nil {
			return errors.New("no leader")
		}
		_, err := l.AuditCheckpoint()
		return err
	})
}

func TestAudit_ClusterExportAndTampering(t *testing.T) {
	keyFile, trusted := auditKeyFile(t)
	servers := TestCluster(t, 3, func(c *Config) { c.AuditKeyFile = keyFile })
	leader := WaitForLeader(t, servers...)
	token := bootstrapToken(t, leader)
	var follower *Server
	for _, s := range servers {
		if s != leader {
			follower = s
			break
		}
	}

	// Writes through a follower (forwarded) and the leader, a refused
	// write, and refused logins: a default read and a ?stale read on a
	// follower, which it forwards to the leader to be recorded.
	for i := range 4 {
		s := []*Server{follower, leader}[i%2]
		if r := put(t, s, token, fmt.Sprintf("k%d", i), "v"); r.status != http.StatusOK {
			t.Fatalf("put: %d %s", r.status, r.body)
		}
	}
	checkpoint(t, follower)
	if r := call(t, follower, http.MethodDelete, "/v1/cluster/settings/nope", token, nil, nil); r.status != http.StatusNotFound {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	for _, path := range []string{"/v1/status", "/v1/cluster/settings?stale"} {
		if r := call(t, follower, http.MethodGet, path, "mxx_not-a-token", nil, nil); r.status != http.StatusUnauthorized {
			t.Fatalf("GET %s with a bad token: %d %s", path, r.status, r.body)
		}
	}
	for i := 4; i < 8; i++ {
		put(t, follower, token, fmt.Sprintf("k%d", i), "v")
	}
	checkpoint(t, follower)
	put(t, follower, token, "k8", "v")

	// Every server holds the same log.
	l := TestLeaderOf(follower)
	WaitForApplied(t, l.State().LatestIndex(), servers...)
	var logs [][]*audit.Entry
	for _, s := range servers {
		_, es, err := s.State().AuditEntries(nil, fsm.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, es)
	}
	for i := 1; i < len(logs); i++ {
		if !slices.EqualFunc(logs[0], logs[i], func(a, b *audit.Entry) bool { return *a == *b }) {
			t.Fatalf("%s and %s hold different audit logs", servers[0].ID(), servers[i].ID())
		}
	}
	es := logs[0]
	var summary []string
	for _, e := range es {
		summary = append(summary, e.Action+" "+e.Object+" "+e.Result)
		if e.Source == "" || e.RequestID == "" || e.Time == 0 {
			t.Errorf("entry %d lacks its source, request ID or time: %+v", e.Seq, e)
		}
	}
	want := []string{
		"PUT /v1/cluster/settings/{key} /v1/cluster/settings/k0 ok",
		"PUT /v1/cluster/settings/{key} /v1/cluster/settings/k1 ok",
		"PUT /v1/cluster/settings/{key} /v1/cluster/settings/k2 ok",
		"PUT /v1/cluster/settings/{key} /v1/cluster/settings/k3 ok",
		"DELETE /v1/cluster/settings/{key} /v1/cluster/settings/nope not_found",
		"auth.failed GET /v1/status /v1/status unauthorized",
		"auth.failed GET /v1/cluster/settings /v1/cluster/settings unauthorized",
		"PUT /v1/cluster/settings/{key} /v1/cluster/settings/k4 ok",
		"PUT /v1/cluster/settings/{key} /v1/cluster/settings/k5 ok",
		"PUT /v1/cluster/settings/{key} /v1/cluster/settings/k6 ok",
		"PUT /v1/cluster/settings/{key} /v1/cluster/settings/k7 ok",
		"PUT /v1/cluster/settings/{key} /v1/cluster/settings/k8 ok",
	}
	if !slices.Equal(summary, want) {
		t.Fatalf("audit log:\n%s\nwant:\n%s", strings.Join(summary, "\n"), strings.Join(want, "\n"))
	}

	// The export, read through a follower, verifies against the key, and
	// ends with a checkpoint of its head signed at export time.
	r := call(t, follower, http.MethodGet, "/v1/audit/export", token, nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("export: %d %s", r.status, r.body)
	}
	entries, cps, err := audit.ReadExport(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(entries, cps, audit.Options{Trusted: trusted})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 12 || rep.Checkpoints != 3 || rep.Covered != 12 || !rep.Trusted {
		t.Fatalf("report %+v", rep)
	}
	// The server's own verification agrees.
	if r := call(t, follower, http.MethodGet, "/v1/audit/verify", token, nil, nil); r.status != http.StatusOK || !contains(r.body, `"ok":true`) {
		t.Fatalf("verify: %d %s", r.status, r.body)
	}

	// Tamper with the exported file in each way: verify names the entry.
	lines := strings.SplitAfter(strings.TrimSuffix(string(r.body), "\n"), "\n")
	lineOf := func(seq uint64) int {
		for i, l := range lines {
			if strings.HasPrefix(l, fmt.Sprintf(`{"seq":%d,`, seq)) {
				return i
			}
		}
		t.Fatalf("no line of entry %d", seq)
		return -1
	}
	cases := []struct {
		name string
		edit func(ls []string) []string
		kind audit.Kind
		seq  uint64
	}{
		{"modified", func(ls []string) []string {
			i := lineOf(5)
			ls[i] = strings.Replace(ls[i], `"result":"not_found"`, `"result":"ok"`, 1)
			return ls
		}, audit.KindModified, 5},
		{"deleted", func(ls []string) []string {
			return slices.Delete(ls, lineOf(6), lineOf(6)+1)
		}, audit.KindDeleted, 6},
		{"inserted", func(ls []string) []string {
			return slices.Insert(ls, lineOf(9), ls[lineOf(3)])
		}, audit.KindInserted, 3},
		{"reordered", func(ls []string) []string {
			i, j := lineOf(10), lineOf(11)
			ls[i], ls[j] = ls[j], ls[i]
			return ls
		}, audit.KindReordered, 11},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Join(tc.edit(slices.Clone(lines)), "")
			entries, cps, lines, err := audit.ReadExportLines(strings.NewReader(bad))
			if err != nil {
				t.Fatal(err)
			}
			_, err = audit.Verify(entries, cps, audit.Options{Trusted: trusted, Lines: lines})
			var te *audit.TamperError
			if !errors.As(err, &te) {
				t.Fatalf("tampered export verified: %v", err)
			}
			if te.Kind != tc.kind || te.Seq != tc.seq {
				t.Fatalf("%v: want %s entry %d", err, tc.kind, tc.seq)
			}
			t.Log(err)
		})
	}

	// A checkpoint signed by another key is refused against the trusted one.
	other := audit.Sign(ed25519.NewKeyFromSeed(make([]byte, 32)), audit.Head{Seq: 12, Hash: entries[11].Hash}, 1)
	if _, err := audit.Verify(entries, append(cps[:len(cps)-1], other), audit.Options{Trusted: trusted}); !errors.Is(err, audit.ErrUntrustedKey) {
		t.Fatalf("foreign checkpoint: %v", err)
	}
}

func TestAudit_RetentionKeepsTheRestVerifiable(t *testing.T) {
	keyFile, trusted := auditKeyFile(t)
	s := TestServer(t, func(c *Config) { c.AuditKeyFile = keyFile })
	WaitForLeader(t, s)
	token := bootstrapToken(t, s)
	for i := range 5 {
		put(t, s, token, fmt.Sprintf("k%d", i), "v")
	}
	if r := put(t, s, token, fsm.AuditRetentionKey, "5m"); r.status != http.StatusBadRequest {
		t.Fatalf("retention of 5m: %d %s", r.status, r.body)
	}
	// A checkpoint of entry 3 made 100 days ago: retention (90 days by
	// default) drops entries 1-3. (The refused setting is entry 6.)
	_, es, err := s.State().AuditEntries(nil, fsm.AuditFilter{})
	if err != nil || len(es) != 6 {
		t.Fatalf("%d entries, %v", len(es), err)
	}
	key, err := LoadAuditKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	old := audit.Sign(key, audit.Head{Seq: 3, Hash: es[2].Hash}, time.Now().Add(-100*24*time.Hour).UnixNano())
	if _, err := s.raftApply(&fsm.AuditCheckpointRequest{Checkpoint: old}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuditCheckpoint(); err != nil { // a recent one, of the head
		t.Fatal(err)
	}
	n, err := s.AuditRetain()
	if err != nil || n != 3 {
		t.Fatalf("AuditRetain: %d, %v", n, err)
	}
	if n, err := s.AuditRetain(); err != nil || n != 0 {
		t.Fatalf("second AuditRetain: %d, %v", n, err)
	}
	r := call(t, s, http.MethodGet, "/v1/audit/export", token, nil, nil)
	entries, cps, err := audit.ReadExport(bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(entries, cps, audit.Options{Trusted: trusted})
	if err != nil {
		t.Fatal(err)
	}
	if rep.First != 4 || rep.Anchor != "checkpoint 3" {
		t.Fatalf("report %+v", rep)
	}
	// Dropping the entry after the anchor is found.
	if _, err := audit.Verify(entries[1:], cps, audit.Options{Trusted: trusted}); !errors.Is(err, audit.ErrTampered) {
		t.Fatalf("first retained entry deleted: %v", err)
	}
	// Retention 0 keeps everything.
	if r := put(t, s, token, fsm.AuditRetentionKey, "0"); r.status != http.StatusOK {
		t.Fatalf("retention 0: %d %s", r.status, r.body)
	}
	if n, err := s.AuditRetain(); err != nil || n != 0 {
		t.Fatalf("AuditRetain with retention 0: %d, %v", n, err)
	}
}
