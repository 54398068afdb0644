package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/client"
	"github.com/moxxie/moxxie/node"
	"github.com/moxxie/moxxie/secrets"
)

// readBundle returns the files of a debug archive by name, below its one
// top directory.
func readBundle(t *testing.T, file string) map[string][]byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o600 {
		t.Errorf("archive mode %v, want 0600", fi.Mode().Perm())
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	top := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		dir, name, _ := strings.Cut(h.Name, "/")
		if top == "" {
			top = dir
		}
		if dir != top || !strings.HasPrefix(dir, "moxxie-debug-") {
			t.Errorf("%s is outside the archive's top directory %s", h.Name, top)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	return files
}

// TestDebugBundle collects a bundle from a real three-server cluster,
// given the address of one server: it finds the others through
// /v1/status. The archive holds every server's files and no secret: not
// the token it was made with, not the key-encryption key.
func TestDebugBundle(t *testing.T) {
	k, err := secrets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	kek := filepath.Join(t.TempDir(), "secrets.kek")
	if err := secrets.WriteKeyFile(kek, k); err != nil {
		t.Fatal(err)
	}
	kekText, err := os.ReadFile(kek)
	if err != nil {
		t.Fatal(err)
	}
	servers := node.TestCluster(t, 3, func(c *node.Config) { c.Secrets.KEKFile = kek })
	leader := node.WaitForLeader(t, servers...)
	ca := leader.Config().TLS.CAFile
	c, err := client.New(client.Config{Address: leader.URL(), CACert: ca})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := c.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var follower *node.Server
	for _, s := range servers {
		if s != leader {
			follower = s
		}
	}
	env := map[string]string{envAddr: follower.URL(), envToken: tok.SecretID, envCACert: ca}

	dir := t.TempDir()
	file := filepath.Join(dir, "bundle.tar.gz")
	out, stderr, code := runCLI(t, env, "debug", "bundle", "-f", file, "--log-lines", "50")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(out, "Wrote "+file+": 25 files from 3 servers (") {
		t.Errorf("stdout %q", out)
	}
	files := readBundle(t, file)
	want := []string{"version.json", "cluster/status.json", "cluster/sdn-status.json", "cluster/inventory.json"}
	for _, s := range servers {
		for _, f := range []string{"health.json", "status.json", "config.json", "metrics.txt", "goroutine.txt", "heap.pb.gz", "logs.jsonl"} {
			want = append(want, "servers/"+s.ID()+"/"+f)
		}
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("archive files:\n%s\nwant:\n%s\nerrors.txt: %s", strings.Join(names, "\n"), strings.Join(want, "\n"), files["errors.txt"])
	}
	secretText := strings.TrimSpace(string(kekText))
	for n, b := range files {
		if bytes.Contains(b, []byte(tok.SecretID)) {
			t.Errorf("%s holds the token secret", n)
		}
		if bytes.Contains(b, []byte(secretText)) {
			t.Errorf("%s holds the key-encryption key", n)
		}
	}

	// The files are what they say.
	id := follower.ID()
	var cfg client.DebugConfig
	if err := json.Unmarshal(files["servers/"+id+"/config.json"], &cfg); err != nil || cfg.ID != id || cfg.Config["node_id"] != id {
		t.Errorf("config.json of %s: %s (%v)", id, files["servers/"+id+"/config.json"], err)
	}
	if sec, _ := cfg.Config["secrets"].(map[string]any); sec["kek_file"] != kek {
		t.Errorf("config.json names no kek_file: %v", cfg.Config["secrets"])
	}
	var st client.Status
	if err := json.Unmarshal(files["cluster/status.json"], &st); err != nil || st.Leader != leader.ID() || len(st.Servers) != 3 {
		t.Errorf("cluster/status.json: %s (%v)", files["cluster/status.json"], err)
	}
	if !bytes.HasPrefix(files["servers/"+id+"/heap.pb.gz"], []byte{0x1f, 0x8b}) {
		t.Error("heap.pb.gz is not a gzipped profile")
	}
	if !bytes.Contains(files["servers/"+id+"/goroutine.txt"], []byte("goroutine ")) {
		t.Error("goroutine.txt holds no goroutine")
	}
	if !bytes.Contains(files["servers/"+id+"/metrics.txt"], []byte("# TYPE go_goroutines gauge")) {
		t.Error("metrics.txt holds no Go metrics")
	}
	lines := bytes.Split(bytes.TrimSpace(files["servers/"+id+"/logs.jsonl"]), []byte("\n"))
	if len(lines) == 0 || len(lines) > 50 {
		t.Errorf("logs.jsonl has %d lines", len(lines))
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal(l, &rec); err != nil || rec["msg"] == nil {
			t.Errorf("logs.jsonl line %q (%v)", l, err)
		}
	}

	// A server down does not stop the bundle: errors.txt says what is
	// missing. The JSON output lists the same.
	if err := follower.Shutdown(false); err != nil {
		t.Fatal(err)
	}
	env[envAddr] = leader.URL()
	out, stderr, code = runCLI(t, env, "debug", "bundle", "-f", file, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res bundleResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	files = readBundle(t, file)
	if len(res.Servers) != 2 || slices.Contains(res.Servers, id) || len(res.Errors) != 1 || !strings.HasPrefix(res.Errors[0], "servers/"+id+": ") {
		t.Errorf("result %+v", res)
	}
	if got := string(files["errors.txt"]); got != res.Errors[0]+"\n" {
		t.Errorf("errors.txt %q", got)
	}
	if _, ok := files["servers/"+id+"/config.json"]; ok {
		t.Errorf("files of the stopped server %s", id)
	}
}

func TestDebugBundle_Usage(t *testing.T) {
	_, stderr, code := runCLI(t, nil, "debug", "bundle", "--log-lines", "0", "-a", "https://127.0.0.1:1")
	if code != 2 || !strings.Contains(stderr, "--log-lines must be from 1 to 10000") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runCLI(t, nil, "-a", "https://127.0.0.1:1", "--retry-for", "0", "debug", "bundle", "-f", filepath.Join(t.TempDir(), "b.tgz"))
	if code != 1 || !strings.Contains(oneErrorLine(t, stderr), "no server answered, nothing was written") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
