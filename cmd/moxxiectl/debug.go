package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moxxie/moxxie/client"
	"github.com/moxxie/moxxie/version"
	"github.com/spf13/cobra"
)

// defaultBundleLogLines is how many log records a bundle takes from each
// server unless --log-lines says otherwise.
const defaultBundleLogLines = 1000

func (a *app) debugCommand() *cobra.Command {
	var file string
	var lines int
	bundle := &cobra.Command{
		Use:   "bundle [-f FILE]",
		Short: "Collect every server's status, metrics, profiles, configuration and logs into one archive",
		Long: `Collect what support needs into one .tar.gz archive, from every server:
its status as it sees it, its metrics, goroutine and heap profiles, its
effective configuration (secrets are named, never shown) and its recent logs;
and from the cluster: its status and the SDN and inventory summaries.

The servers are those of --address (MOXXIE_ADDR) and those /v1/status lists.
A server that cannot be reached, or a file that cannot be had, does not stop
the bundle: the archive's errors.txt says what is missing and why. It needs
an admin token. The archive holds no token.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lines < 1 || lines > 10000 {
				return usagef("--log-lines must be from 1 to 10000, got %d", lines)
			}
			return a.debugBundle(cmd.Context(), file, lines)
		},
	}
	f := bundle.Flags()
	f.StringVarP(&file, "file", "f", "", "archive to write (default moxxie-debug-<time>.tar.gz)")
	f.IntVar(&lines, "log-lines", defaultBundleLogLines, "log records to take from each server")
	return group("debug", "Collect support information", bundle)
}

// bundle is a debug archive being collected.
type bundle struct {
	files  []bundleFile
	errors []string
}

// bundleFile is one file of the archive.
type bundleFile struct {
	name string
	data []byte
}

func (b *bundle) add(name string, data []byte) {
	b.files = append(b.files, bundleFile{name, data})
}

// fail records that name could not be had.
func (b *bundle) fail(name string, err error) {
	b.errors = append(b.errors, name+": "+oneLine(err.Error()))
}

// bundleResult describes a written bundle in -o json output.
type bundleResult struct {
	File    string   `json:"file"`
	Servers []string `json:"servers"`
	Files   []string `json:"files"`
	Errors  []string `json:"errors"`
}

func (a *app) debugBundle(ctx context.Context, file string, lines int) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	defer c.Close()
	now := time.Now().UTC()
	stamp := now.Format("20060102T150405Z")
	if file == "" {
		file = "moxxie-debug-" + stamp + ".tar.gz"
	}
	b := &bundle{}
	b.addJSON("version.json", map[string]any{"moxxiectl": version.Get(), "created_at": now, "addresses": c.Addresses()})

	// The cluster as the leader sees it.
	var st client.Status
	if raw, err := getJSON(ctx, c, "/v1/status", nil); err != nil {
		b.fail("cluster/status.json", err)
	} else {
		b.add("cluster/status.json", raw)
		if err := json.Unmarshal(raw, &st); err != nil {
			b.fail("cluster/status.json", err)
		}
	}
	for _, f := range []struct{ path, name string }{
		{"/v1/sdn/status", "cluster/sdn-status.json"},
		{"/v1/inventory", "cluster/inventory.json"},
	} {
		if raw, err := getJSON(ctx, c, f.path, nil); err != nil {
			b.fail(f.name, err)
		} else {
			b.add(f.name, raw)
		}
	}

	// Every server: those given, then those the status lists and no
	// given address reached.
	seen := map[string]bool{}
	var servers []string
	collect := func(addr, id string) {
		if got := a.bundleServer(ctx, b, addr, id, lines, seen); got != "" {
			servers = append(servers, got)
		}
	}
	for _, addr := range c.Addresses() {
		collect(addr, "")
	}
	for _, s := range st.Servers {
		switch {
		case seen[s.ID]:
		case s.APIAddress == "":
			b.fail("servers/"+safeName(s.ID), fmt.Errorf("no API address known for server %s (state %s)", s.ID, s.State))
		default:
			collect(s.APIAddress, s.ID)
		}
	}
	if len(servers) == 0 {
		return fmt.Errorf("no server answered, nothing was written: %s", strings.Join(b.errors, "; "))
	}
	if len(b.errors) > 0 {
		b.add("errors.txt", []byte(strings.Join(b.errors, "\n")+"\n"))
	}
	if err := writeBundle(file, "moxxie-debug-"+stamp, now, b.files); err != nil {
		return err
	}

	res := bundleResult{File: file, Servers: servers, Errors: b.errors}
	for _, f := range b.files {
		res.Files = append(res.Files, f.name)
	}
	if res.Errors == nil {
		res.Errors = []string{}
	}
	if a.json() {
		return printJSON(a.stdout, res)
	}
	if err := printf(a.stdout, "Wrote %s: %d files from %d servers (%s)\n", file, len(res.Files), len(servers), strings.Join(servers, ", ")); err != nil {
		return err
	}
	if len(b.errors) > 0 {
		fmt.Fprintf(a.stdout, "%d items could not be collected (errors.txt in the archive):\n", len(b.errors))
		for _, e := range b.errors {
			fmt.Fprintln(a.stdout, "  "+e)
		}
	}
	return nil
}

// bundleServer collects the files of the server at addr into
// servers/<id>/ and returns its ID, or "" when it did not answer or was
// collected already (seen, by ID). id is what the cluster calls the
// server, when known.
func (a *app) bundleServer(ctx context.Context, b *bundle, addr, id string, lines int, seen map[string]bool) string {
	name := id
	if name == "" {
		name = addr
	}
	c, err := a.clientAt(addr)
	if err != nil {
		b.fail("servers/"+safeName(name), err)
		return ""
	}
	defer c.Close()
	var health struct {
		ID string `json:"id"`
	}
	raw, err := getJSON(ctx, c, "/v1/health", nil)
	if err == nil {
		err = json.Unmarshal(raw, &health)
	}
	if err != nil {
		b.fail("servers/"+safeName(name), err)
		return ""
	}
	if health.ID != "" {
		name = health.ID
	}
	if seen[name] {
		return ""
	}
	seen[name] = true
	dir := "servers/" + safeName(name) + "/"
	b.add(dir+"health.json", raw)

	if raw, err := getJSON(ctx, c, "/v1/status", url.Values{"stale": {"true"}}); err != nil {
		b.fail(dir+"status.json", err)
	} else {
		b.add(dir+"status.json", raw)
	}
	if raw, err := getJSON(ctx, c, "/v1/debug/config", nil); err != nil {
		b.fail(dir+"config.json", err)
	} else {
		b.add(dir+"config.json", raw)
	}
	var buf bytes.Buffer
	if err := c.Metrics(ctx, &buf); err != nil {
		b.fail(dir+"metrics.txt", err)
	} else {
		b.add(dir+"metrics.txt", bytes.Clone(buf.Bytes()))
	}
	for _, p := range []struct {
		name, file string
		query      url.Values
	}{
		{"goroutine", "goroutine.txt", url.Values{"debug": {"2"}}},
		{"heap", "heap.pb.gz", nil},
	} {
		buf.Reset()
		if err := c.Profile(ctx, p.name, p.query, &buf); err != nil {
			b.fail(dir+p.file, err)
		} else {
			b.add(dir+p.file, bytes.Clone(buf.Bytes()))
		}
	}
	if logs, err := c.DebugLogs(ctx, lines); err != nil {
		b.fail(dir+"logs.jsonl", err)
	} else {
		var out bytes.Buffer
		for _, l := range logs.Lines {
			out.Write(l)
			out.WriteByte('\n')
		}
		b.add(dir+"logs.jsonl", out.Bytes())
	}
	return name
}

// clientAt returns a client of the server at addr alone, with the global
// flags' token and TLS settings and no retries: a bundle takes what each
// server answers now.
func (a *app) clientAt(addr string) (*client.Client, error) {
	return client.New(client.Config{
		Address:    addr,
		Token:      a.token,
		CACert:     a.caCert,
		ClientCert: a.clientCert,
		ClientKey:  a.clientKey,
		Timeout:    a.timeout,
		RetryFor:   -1,
	})
}

// getJSON reads a JSON answer and returns it indented.
func getJSON(ctx context.Context, c *client.Client, path string, q url.Values) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := c.GetRaw(ctx, path, q, &buf); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("GET %s: the answer is not JSON: %w", path, err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func (b *bundle) addJSON(name string, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		b.fail(name, err)
		return
	}
	b.add(name, append(data, '\n'))
}

// safeName makes a server ID or address usable as a directory name.
func safeName(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// writeBundle writes files as a gzipped tar archive under the directory
// top, readable by its owner only (configuration and logs are in it),
// through a temporary file renamed into place.
func writeBundle(file, top string, mtime time.Time, files []bundleFile) (err error) {
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for _, bf := range files {
		hdr := &tar.Header{Name: top + "/" + bf.name, Mode: 0o600, Size: int64(len(bf.data)), ModTime: mtime, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(bf.data); err != nil {
			return err
		}
	}
	if err := errors.Join(tw.Close(), zw.Close(), f.Sync()); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(file))
	return nil
}
