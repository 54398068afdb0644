// Command gen extracts the routes the Proxmox VE simulator serves from the
// official Proxmox VE API schema (the apidoc JSON tree of pve-docs), so the
// repository can carry a small, reviewable copy of the parts it depends on.
//
// Usage, from the repository root:
//
//	go run ./pvesim/schema/gen -in /work/shared/pve-api/pve-api-schema-9.1.3.json \
//	    -out pvesim/schema/pve-api-9.1.3.json
//
// It keeps the (method, path) pairs listed in the routes file (by default
// routes.txt next to -out) with their "parameters", "returns",
// "description", "protected" and "allowtoken" exactly as in the schema, and
// fails if a listed route is not in the schema. The output is indented JSON
// with sorted keys and endpoints sorted by path, then method, so it only
// changes when the schema or the routes do.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// Extract is the document gen writes. The schema package reads the same
// shape.
type Extract struct {
	Version   string     `json:"version"`
	Source    string     `json:"source"`
	Endpoints []Endpoint `json:"endpoints"`
}

// Endpoint is one (method, path) pair of the schema with the parts of its
// "info" entry that gen keeps. Optional fields are omitted when the schema
// does not have them.
type Endpoint struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	Description any    `json:"description,omitempty"`
	Protected   any    `json:"protected,omitempty"`
	AllowToken  any    `json:"allowtoken,omitempty"`
	Parameters  any    `json:"parameters,omitempty"`
	Returns     any    `json:"returns,omitempty"`
}

// Route is one line of the routes file.
type Route struct {
	Method, Path string
}

var versionFromName = regexp.MustCompile(`^pve-api-schema-(.+)\.json$`)

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "the official Proxmox VE API schema (pve-api-schema-VERSION.json)")
	out := fs.String("out", "", "the extract to write")
	routesFile := fs.String("routes", "", "the routes to keep (default: routes.txt in the directory of -out)")
	version := fs.String("version", "", "the Proxmox VE version recorded in the extract (default: taken from the name of -in)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *out == "" {
		fs.Usage()
		return errors.New("-in and -out are required")
	}
	if *routesFile == "" {
		*routesFile = filepath.Join(filepath.Dir(*out), "routes.txt")
	}
	if *version == "" {
		m := versionFromName.FindStringSubmatch(filepath.Base(*in))
		if m == nil {
			return fmt.Errorf("cannot tell the version from %q: pass -version", filepath.Base(*in))
		}
		*version = m[1]
	}

	rf, err := os.Open(*routesFile)
	if err != nil {
		return err
	}
	routes, err := parseRoutes(rf)
	rf.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", *routesFile, err)
	}

	sf, err := os.Open(*in)
	if err != nil {
		return err
	}
	ext, err := extract(sf, routes)
	sf.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	ext.Version = *version
	ext.Source = filepath.Base(*in)

	data, err := encode(ext)
	if err != nil {
		return err
	}
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, *out)
}

// parseRoutes reads "METHOD /path" lines; blank lines and everything after
// a '#' are ignored.
func parseRoutes(r io.Reader) ([]Route, error) {
	var routes []Route
	seen := make(map[Route]bool)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"METHOD /path\", got %q", n, line)
		}
		rt := Route{Method: f[0], Path: f[1]}
		switch rt.Method {
		case "GET", "POST", "PUT", "DELETE":
		default:
			return nil, fmt.Errorf("line %d: unknown method %q", n, rt.Method)
		}
		if !strings.HasPrefix(rt.Path, "/") {
			return nil, fmt.Errorf("line %d: path %q does not start with /", n, rt.Path)
		}
		if seen[rt] {
			return nil, fmt.Errorf("line %d: %s %s listed twice", n, rt.Method, rt.Path)
		}
		seen[rt] = true
		routes = append(routes, rt)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(routes) == 0 {
		return nil, errors.New("no routes")
	}
	return routes, nil
}

// extract walks the schema tree and keeps the listed routes. It reports
// every listed route that the schema lacks.
func extract(r io.Reader, routes []Route) (*Extract, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber() // keep numbers as written
	var tree []any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	infos := make(map[Route]map[string]any)
	var walk func(nodes []any) error
	walk = func(nodes []any) error {
		for _, n := range nodes {
			node, ok := n.(map[string]any)
			if !ok {
				return fmt.Errorf("tree node is %T, not an object", n)
			}
			path, _ := node["path"].(string)
			if info, ok := node["info"].(map[string]any); ok {
				for method, v := range info {
					if m, ok := v.(map[string]any); ok {
						infos[Route{Method: method, Path: path}] = m
					}
				}
			}
			if children, ok := node["children"].([]any); ok {
				if err := walk(children); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(tree); err != nil {
		return nil, err
	}

	ext := &Extract{}
	var missing []string
	for _, rt := range routes {
		info, ok := infos[rt]
		if !ok {
			missing = append(missing, rt.Method+" "+rt.Path)
			continue
		}
		ext.Endpoints = append(ext.Endpoints, Endpoint{
			Method:      rt.Method,
			Path:        rt.Path,
			Description: info["description"],
			Protected:   info["protected"],
			AllowToken:  info["allowtoken"],
			Parameters:  info["parameters"],
			Returns:     info["returns"],
		})
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("routes not in the schema: %s", strings.Join(missing, ", "))
	}
	sort.Slice(ext.Endpoints, func(i, j int) bool {
		a, b := ext.Endpoints[i], ext.Endpoints[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Method < b.Method
	})
	return ext, nil
}

// encode renders the extract as indented JSON. Maps are written with sorted
// keys, and HTML characters are left as they are ("<string>" stays
// readable).
func encode(ext *Extract) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(ext); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
