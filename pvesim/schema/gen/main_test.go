package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree is a small schema in the shape of the apidoc dump.
const tree = `[
 {"path": "/nodes", "text": "nodes", "leaf": 0,
  "info": {"GET": {"description": "Cluster node index.", "allowtoken": 1, "permissions": {"user": "all"},
    "parameters": {"additionalProperties": 0},
    "returns": {"type": "array", "items": {"type": "object", "properties": {"node": {"type": "string"}}}}}},
  "children": [
   {"path": "/nodes/{node}", "text": "{node}", "leaf": 0, "info": {},
    "children": [
     {"path": "/nodes/{node}/status", "text": "status", "leaf": 1,
      "info": {
       "GET": {"description": "Read node status", "allowtoken": 1, "proxyto": "node",
        "parameters": {"additionalProperties": 0, "properties": {"node": {"type": "string", "format": "pve-node", "description": "The cluster node name."}}},
        "returns": {"type": "object", "properties": {"cpu": {"type": "number", "maximum": 1.5}}}},
       "POST": {"description": "Reboot or shutdown a node.", "protected": 1, "allowtoken": 1,
        "parameters": {"additionalProperties": 0, "properties": {"command": {"type": "string", "enum": ["reboot", "shutdown"]}}},
        "returns": {"type": "null"}}}}]}]},
 {"path": "/version", "text": "version", "leaf": 1,
  "info": {"GET": {"description": "API version <details>", "allowtoken": 1,
   "parameters": {"additionalProperties": 0}, "returns": {"type": "object"}}}}
]`

func TestExtract(t *testing.T) {
	routes, err := parseRoutes(strings.NewReader(`
# comment
POST /nodes/{node}/status   # trailing comment
GET /version
GET /nodes/{node}/status
`))
	if err != nil {
		t.Fatal(err)
	}
	ext, err := extract(strings.NewReader(tree), routes)
	if err != nil {
		t.Fatal(err)
	}
	ext.Version = "9.9.9"
	ext.Source = "test.json"
	data, err := encode(ext)
	if err != nil {
		t.Fatal(err)
	}
	var got Extract
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, e := range got.Endpoints {
		order = append(order, e.Method+" "+e.Path)
	}
	want := []string{"GET /nodes/{node}/status", "POST /nodes/{node}/status", "GET /version"}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("endpoints = %q, want %q", order, want)
	}
	text := string(data)
	for _, s := range []string{
		`"version": "9.9.9"`,
		`"protected": 1`,
		`"maximum": 1.5`,
		`"description": "API version <details>"`, // no HTML escaping
		`"enum": [`,
	} {
		if !strings.Contains(text, s) {
			t.Errorf("output lacks %s:\n%s", s, text)
		}
	}
	for _, s := range []string{"permissions", "proxyto", "GET /nodes\""} {
		if strings.Contains(text, s) {
			t.Errorf("output has %s:\n%s", s, text)
		}
	}
	// Encoding is deterministic.
	again, err := encode(ext)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Error("two encodings differ")
	}
}

func TestExtractMissingRoutes(t *testing.T) {
	routes := []Route{{"GET", "/version"}, {"DELETE", "/version"}, {"GET", "/nodes/{node}/qemu"}}
	_, err := extract(strings.NewReader(tree), routes)
	if err == nil {
		t.Fatal("no error for routes missing from the schema")
	}
	for _, s := range []string{"DELETE /version", "GET /nodes/{node}/qemu"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
}

func TestParseRoutesErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"# only a comment\n",
		"GET\n",
		"GET /a /b\n",
		"PATCH /a\n",
		"GET a\n",
		"GET /a\nGET /a\n",
	} {
		if _, err := parseRoutes(strings.NewReader(in)); err == nil {
			t.Errorf("parseRoutes(%q): no error", in)
		}
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "pve-api-schema-9.9.9.json")
	out := filepath.Join(dir, "extract.json")
	if err := os.WriteFile(in, []byte(tree), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "routes.txt"), []byte("GET /version\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-in", in, "-out", out}, io.Discard); err != nil {
		t.Fatal(err)
	}
	var got Extract
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Version != "9.9.9" || got.Source != "pve-api-schema-9.9.9.json" || len(got.Endpoints) != 1 {
		t.Errorf("got version %q, source %q, %d endpoints", got.Version, got.Source, len(got.Endpoints))
	}

	if err := run([]string{"-in", filepath.Join(dir, "schema.json"), "-out", out}, io.Discard); err == nil {
		t.Error("no error without a version")
	}
	if err := run([]string{"-in", in}, io.Discard); err == nil {
		t.Error("no error without -out")
	}
}

// TestCommittedExtractIsCurrent regenerates the committed extract from the
// official schema, when that file is at hand, and compares.
func TestCommittedExtractIsCurrent(t *testing.T) {
	in := filepath.Join("..", "..", "..", "..", "shared", "pve-api", "pve-api-schema-9.1.3.json")
	if _, err := os.Stat(in); err != nil {
		t.Skipf("official schema not at hand: %v", err)
	}
	out := filepath.Join(t.TempDir(), "pve-api-9.1.3.json")
	if err := run([]string{"-in", in, "-out", out, "-routes", filepath.Join("..", "routes.txt")}, io.Discard); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("..", "pve-api-9.1.3.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("pvesim/schema/pve-api-9.1.3.json is stale: run go generate ./pvesim/schema")
	}
}
