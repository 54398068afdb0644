// Package schema holds the part of the official Proxmox VE API schema that
// the simulator in pvesim serves, and checks requests and responses against
// it the way the Proxmox API server does.
//
// The schema is an extract of the apidoc tree published with Proxmox VE
// (pve-api-schema-VERSION.json), trimmed to the routes in routes.txt and
// embedded in the binary. Proxmox validates every request against this
// schema in PVE::JSONSchema before a handler runs, so a simulator that
// answers from the same schema, with the same messages, behaves like a real
// cluster for the clients that matter: go-proxmox, Terraform providers and
// scripts that parse the "errors" map of a 400 answer.
package schema

//go:generate go run ./gen -in ../../../shared/pve-api/pve-api-schema-9.1.3.json -out pve-api-9.1.3.json

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

//go:embed pve-api-9.1.3.json
var extractJSON []byte

// Schema is a parsed extract of the Proxmox VE API schema.
type Schema struct {
	version   string
	endpoints []*Endpoint // sorted by path, then method

	// byShape indexes endpoints by method and number of path segments.
	byShape map[string]map[int][]*Endpoint
}

// Endpoint is one method on one path of the API.
type Endpoint struct {
	Method string
	// Path is the path in template form, such as "/nodes/{node}/qemu/{vmid}".
	Path        string
	Description string
	// Protected endpoints run in the privileged pvedaemon on a real node.
	Protected bool
	// AllowToken is false for the endpoints that API tokens may not call.
	AllowToken bool
	// Parameters is the object schema of the parameters; path parameters
	// are among its properties.
	Parameters *Prop
	// Returns is the schema of the "data" member of the response.
	Returns *Prop

	segs []string // Path split at "/"; "{name}" marks a parameter
}

// Prop is one node of the schema: a parameter, a returned value, or a key
// of a property-string format.
type Prop struct {
	Type        string
	Description string
	TypeText    string
	Optional    bool
	Default     any
	// Format names a registered format such as "pve-vmid" or
	// "pve-configid-list".
	Format string
	// FormatKeys is set instead of Format when the value is a property
	// string such as "virtio,bridge=vmbr0,firewall=1"; it holds the schema
	// of each key.
	FormatKeys map[string]*Prop
	Enum       []string
	Minimum    *float64
	Maximum    *float64
	MinLength  *int
	MaxLength  *int
	Pattern    string
	// Requires names a parameter that must be given along with this one.
	Requires string
	// Alias and KeyAlias appear in property-string formats: a key such as
	// "virtio=MAC" stands for "macaddr=MAC" and sets "model" to "virtio".
	Alias      string
	KeyAlias   string
	DefaultKey bool
	Items      *Prop
	Properties map[string]*Prop
	// AdditionalProperties is nil when the schema does not say; Proxmox
	// then accepts properties it does not know.
	AdditionalProperties *bool

	re      *regexp.Regexp // Pattern; nil when RE2 cannot express it
	indexed []indexedProp  // properties such as "net[n]"
}

// indexedProp is a property such as "net[n]", which the apidoc dump uses
// for the numbered properties net0, net1, and so on.
type indexedProp struct {
	prefix string
	max    int // the number of indexes, 0 when unknown
	prop   *Prop
}

// indexedMax holds the number of numbered properties of each kind, from
// qemu-server (QemuServer.pm, Drive.pm, PCI.pm, USB.pm, Memory.pm,
// Virtiofs.pm) and pve-container (LXC/Config.pm); the apidoc dump collapses
// them into one "name[n]" entry and loses the count. Both packages agree on
// the names they share.
var indexedMax = map[string]int{
	"net":      32,
	"ipconfig": 32,
	"ide":      4,
	"sata":     6,
	"scsi":     31,
	"virtio":   16,
	"unused":   256,
	"hostpci":  16,
	"usb":      14,
	"serial":   4,
	"parallel": 3,
	"numa":     8,
	"virtiofs": 10,
	"mp":       256,
	"dev":      256,
}

var load = sync.OnceValue(func() *Schema {
	s, err := parse(extractJSON)
	if err != nil {
		panic("pvesim/schema: embedded extract: " + err.Error())
	}
	return s
})

// Load returns the embedded schema extract (parsed once).
func Load() *Schema { return load() }

// Version returns the Proxmox VE version the extract was taken from, such
// as "9.1.3".
func (s *Schema) Version() string { return s.version }

// Endpoints lists every endpoint in the extract, sorted by path then method.
func (s *Schema) Endpoints() []*Endpoint {
	return append([]*Endpoint(nil), s.endpoints...)
}

// Lookup finds the endpoint for a concrete request path such as
// "/nodes/pve1/qemu/100/status/start" (no /api2/json prefix, already
// URL-decoded as in http.Request.URL.Path) and returns it with the path
// parameters, e.g. {"node":"pve1","vmid":"100"}. A trailing slash is
// ignored. When several templates match, the one with the most literal
// segments wins.
func (s *Schema) Lookup(method, path string) (*Endpoint, map[string]string, bool) {
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	segs := strings.Split(path, "/")
	var best *Endpoint
	bestLiterals := -1
	for _, e := range s.byShape[strings.ToUpper(method)][len(segs)] {
		literals, ok := e.match(segs)
		if ok && literals > bestLiterals {
			best, bestLiterals = e, literals
		}
	}
	if best == nil {
		return nil, nil, false
	}
	params := make(map[string]string)
	for i, seg := range best.segs {
		if name, ok := paramName(seg); ok {
			params[name] = segs[i]
		}
	}
	return best, params, true
}

// match reports whether the split request path fits the template and how
// many of its segments are literal.
func (e *Endpoint) match(segs []string) (literals int, ok bool) {
	for i, seg := range e.segs {
		if _, isParam := paramName(seg); isParam {
			if segs[i] == "" {
				return 0, false
			}
			continue
		}
		if seg != segs[i] {
			return 0, false
		}
		literals++
	}
	return literals, true
}

// PathParams lists the names of the parameters in the endpoint's path, in
// order.
func (e *Endpoint) PathParams() []string {
	var names []string
	for _, seg := range e.segs {
		if name, ok := paramName(seg); ok {
			names = append(names, name)
		}
	}
	return names
}

func paramName(seg string) (string, bool) {
	if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' {
		return seg[1 : len(seg)-1], true
	}
	return "", false
}

// Property returns the schema of the named property of an object schema,
// resolving numbered names such as "net0" to "net[n]".
func (p *Prop) Property(name string) (*Prop, bool) {
	if p == nil {
		return nil, false
	}
	if q, ok := p.Properties[name]; ok && !isIndexedName(name) {
		return q, true
	}
	for _, ip := range p.indexed {
		rest, ok := strings.CutPrefix(name, ip.prefix)
		if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 || rest[0] == '+' {
			continue
		}
		if ip.max > 0 && n >= ip.max {
			continue
		}
		return ip.prop, true
	}
	return nil, false
}

func isIndexedName(name string) bool { return strings.HasSuffix(name, "[n]") }

// extract mirrors the document written by ./gen.
type extract struct {
	Version   string `json:"version"`
	Endpoints []struct {
		Method      string          `json:"method"`
		Path        string          `json:"path"`
		Description string          `json:"description"`
		Protected   flag            `json:"protected"`
		AllowToken  flag            `json:"allowtoken"`
		Parameters  *Prop           `json:"parameters"`
		Returns     json.RawMessage `json:"returns"`
	} `json:"endpoints"`
}

func parse(data []byte) (*Schema, error) {
	var ext extract
	if err := json.Unmarshal(data, &ext); err != nil {
		return nil, err
	}
	s := &Schema{version: ext.Version, byShape: make(map[string]map[int][]*Endpoint)}
	for _, x := range ext.Endpoints {
		e := &Endpoint{
			Method:      x.Method,
			Path:        x.Path,
			Description: x.Description,
			Protected:   bool(x.Protected),
			AllowToken:  bool(x.AllowToken),
			Parameters:  x.Parameters,
			Returns:     &Prop{},
			segs:        strings.Split(x.Path, "/"),
		}
		if e.Parameters == nil {
			e.Parameters = &Prop{}
		}
		if len(x.Returns) > 0 && string(x.Returns) != "null" {
			if err := json.Unmarshal(x.Returns, e.Returns); err != nil {
				return nil, fmt.Errorf("%s %s: returns: %w", x.Method, x.Path, err)
			}
		}
		s.endpoints = append(s.endpoints, e)
		if s.byShape[e.Method] == nil {
			s.byShape[e.Method] = make(map[int][]*Endpoint)
		}
		s.byShape[e.Method][len(e.segs)] = append(s.byShape[e.Method][len(e.segs)], e)
	}
	sort.Slice(s.endpoints, func(i, j int) bool {
		a, b := s.endpoints[i], s.endpoints[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Method < b.Method
	})
	return s, nil
}

// flag is a schema flag, written by Proxmox as 0 or 1 (or, rarely, a JSON
// boolean).
type flag bool

func (f *flag) UnmarshalJSON(b []byte) error {
	switch strings.TrimSpace(string(b)) {
	case "0", "false", "null", `""`, `"0"`:
		*f = false
	default:
		*f = true
	}
	return nil
}

// number is a schema number such as "minimum", written as a JSON number or,
// in a few places, as a string.
type number float64

func (n *number) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("schema number %s: %w", b, err)
	}
	*n = number(v)
	return nil
}

// UnmarshalJSON reads a schema node as the apidoc dump writes it.
func (p *Prop) UnmarshalJSON(b []byte) error {
	var raw struct {
		Type                 json.RawMessage  `json:"type"`
		Description          string           `json:"description"`
		TypeText             string           `json:"typetext"`
		Optional             flag             `json:"optional"`
		Default              any              `json:"default"`
		Format               json.RawMessage  `json:"format"`
		Enum                 []any            `json:"enum"`
		Minimum              *number          `json:"minimum"`
		Maximum              *number          `json:"maximum"`
		MinLength            *number          `json:"minLength"`
		MaxLength            *number          `json:"maxLength"`
		Pattern              string           `json:"pattern"`
		Requires             json.RawMessage  `json:"requires"`
		Alias                string           `json:"alias"`
		KeyAlias             string           `json:"keyAlias"`
		DefaultKey           flag             `json:"default_key"`
		Items                *Prop            `json:"items"`
		Properties           map[string]*Prop `json:"properties"`
		AdditionalProperties json.RawMessage  `json:"additionalProperties"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*p = Prop{
		Description: raw.Description,
		TypeText:    raw.TypeText,
		Optional:    bool(raw.Optional),
		Default:     raw.Default,
		Pattern:     raw.Pattern,
		Alias:       raw.Alias,
		KeyAlias:    raw.KeyAlias,
		DefaultKey:  bool(raw.DefaultKey),
		Items:       raw.Items,
		Properties:  raw.Properties,
	}
	// A list of types ("type": ["string", "null"]) is not used by the
	// routes in the extract; such a node is left untyped, which accepts
	// anything, as Proxmox does for types it does not know.
	_ = json.Unmarshal(raw.Type, &p.Type)
	if len(raw.Format) > 0 {
		if raw.Format[0] == '{' {
			if err := json.Unmarshal(raw.Format, &p.FormatKeys); err != nil {
				return fmt.Errorf("format: %w", err)
			}
		} else if err := json.Unmarshal(raw.Format, &p.Format); err != nil {
			return fmt.Errorf("format: %w", err)
		}
	}
	for _, v := range raw.Enum {
		p.Enum = append(p.Enum, fmt.Sprint(v))
	}
	if raw.Minimum != nil {
		v := float64(*raw.Minimum)
		p.Minimum = &v
	}
	if raw.Maximum != nil {
		v := float64(*raw.Maximum)
		p.Maximum = &v
	}
	if raw.MinLength != nil {
		v := int(*raw.MinLength)
		p.MinLength = &v
	}
	if raw.MaxLength != nil {
		v := int(*raw.MaxLength)
		p.MaxLength = &v
	}
	// "requires" may also be a schema; only the plain name is checked.
	_ = json.Unmarshal(raw.Requires, &p.Requires)
	if len(raw.AdditionalProperties) > 0 {
		var f flag
		if raw.AdditionalProperties[0] == '{' {
			f = true // a schema for the extra properties; not checked
		} else if err := f.UnmarshalJSON(raw.AdditionalProperties); err != nil {
			return err
		}
		v := bool(f)
		p.AdditionalProperties = &v
	}
	if p.Pattern != "" {
		p.re = compilePattern(p.Pattern)
	}
	for name, q := range p.Properties {
		if prefix, ok := strings.CutSuffix(name, "[n]"); ok {
			p.indexed = append(p.indexed, indexedProp{prefix: prefix, max: indexedMax[prefix], prop: q})
		}
	}
	// Longest prefix first, so "virtiofs0" is never taken for a "virtio"
	// disk with a bad index.
	sort.Slice(p.indexed, func(i, j int) bool {
		a, b := p.indexed[i].prefix, p.indexed[j].prefix
		if len(a) != len(b) {
			return len(a) > len(b)
		}
		return a < b
	})
	return nil
}

// perlRE rewrites the Perl regular expression syntax that appears in the
// Proxmox schema into RE2 syntax.
var perlRE = strings.NewReplacer(
	`(?^:`, `(?:`, // Perl's "default flags" group, as qr// stringifies
	`(?^i:`, `(?i:`,
	`(?>`, `(?:`, // atomic group; the same matches for these patterns
	`{,`, `{0,`, // Perl 5.34+ reads {,n} as {0,n}
	`\0`, `\x00`,
)

// compilePattern compiles a schema pattern the way Proxmox applies it:
// m/^$pattern$/, the pattern spliced in without a group. It returns nil
// when RE2 cannot express the pattern; such a pattern is not checked.
func compilePattern(pattern string) *regexp.Regexp {
	re, err := regexp.Compile(`^` + perlRE.Replace(pattern) + `$`)
	if err != nil {
		return nil
	}
	return re
}
