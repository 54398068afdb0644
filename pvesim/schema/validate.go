package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Validate checks request parameters (query or form values plus path
// parameters, all as strings, as Proxmox receives them) the way the Proxmox
// API server does (pve-http-server's decode_urlencoded, then
// PVE::JSONSchema::validate): required parameters (those not "optional"),
// unknown parameters when additionalProperties is 0, the types integer,
// number, boolean and string, enum, minimum and maximum, minLength and
// maxLength, pattern, "requires", and the formats that are cheap to check:
// pve-vmid, pve-node, pve-storage-id, pve-configid, pve-tag, pve-bridge-id,
// mac-addr, dns-name, urlencoded, pve-startup-order, pve-task-status-type
// and their -list and -opt variants, plus property strings such as net0's
// "virtio,bridge=vmbr0". Other formats pass.
//
// As in Proxmox:
//   - A boolean parameter takes "1" or "0" only; "true" is rejected with
//     "type check ('boolean') failed - got 'true'". (Inside property strings
//     such as "firewall=on", 0/1/true/false/yes/no/on/off are all fine.) A
//     JSON body's true and false, which Proxmox accepts, must reach Validate
//     as "1" and "0"; ParamsFromJSON does that.
//   - An empty value ("vmid=") counts as not given, though the name is still
//     checked against the schema.
//   - A parameter given several times is a list: joined with commas for a
//     "-list" format, one item each for an array parameter, and otherwise
//     rejected ("type check ('integer') failed - got ARRAY").
//
// It returns nil or a map from parameter name to Proxmox's message.
func (e *Endpoint) Validate(params map[string][]string) map[string]string {
	value := make(map[string]any, len(params))
	for k, vs := range params {
		if len(vs) == 0 {
			continue
		}
		value[k] = decodeValues(vs)
		p, ok := e.Parameters.Property(k)
		if !ok {
			continue
		}
		// RESTHandler's normalize_legacy_param_formats.
		switch x := value[k].(type) {
		case []any:
			if p.Type == "string" && strings.HasSuffix(p.Format, "-list") {
				parts := make([]string, len(x))
				for i, it := range x {
					parts[i] = it.(string)
				}
				value[k] = strings.Join(parts, ",")
			}
		case string:
			if p.Type == "array" {
				value[k] = []any{x}
			}
		}
	}
	errs := make(map[string]string)
	checkObject("", e.Parameters, value, errs)
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// decodeValues folds the values given for one name as pve-http-server's
// decode_urlencoded does: an empty value is undefined (nil) and discards
// what came before it; several values make a list.
func decodeValues(vs []string) any {
	var cur any
	for _, v := range vs {
		if v == "" {
			cur = nil
			continue
		}
		switch c := cur.(type) {
		case nil:
			cur = v
		case string:
			cur = []any{c, v}
		case []any:
			cur = append(c, v)
		}
	}
	return cur
}

// ParamsFromJSON turns a JSON request body, decoded with encoding/json into
// a map, into the parameters Validate takes, as Proxmox sees JSON values:
// true and false become "1" and "0", numbers are written out in full, an
// array gives one value per item, and null becomes an empty (undefined)
// value. Objects, which no route takes, become their JSON text.
func ParamsFromJSON(body map[string]any) map[string][]string {
	params := make(map[string][]string, len(body))
	for k, v := range body {
		if items, ok := v.([]any); ok {
			for _, it := range items {
				params[k] = append(params[k], jsonScalar(it))
			}
			if len(items) == 0 {
				params[k] = []string{""}
			}
			continue
		}
		params[k] = []string{jsonScalar(v)}
	}
	return params
}

func jsonScalar(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		if x {
			return "1"
		}
		return "0"
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case json.Number:
		return string(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// ErrorBody renders Proxmox's 400 error body for failed validation:
// {"data":null,"errors":{"field":"message",...},"message":"Parameter verification failed.\n"}
func ErrorBody(errs map[string]string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	body := struct {
		Data    any               `json:"data"`
		Errors  map[string]string `json:"errors"`
		Message string            `json:"message"`
	}{nil, errs, "Parameter verification failed.\n"}
	if err := enc.Encode(body); err != nil {
		// A map of strings always encodes.
		panic(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// addError records msg for path, appending to an earlier message with a
// literal backslash-n as Proxmox's add_error does (join('\n', ...)).
func addError(errs map[string]string, path, msg string) {
	if path == "" {
		path = "_root"
	}
	if old, ok := errs[path]; ok {
		errs[path] = old + `\n` + msg
		return
	}
	errs[path] = msg
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// checkObject is PVE::JSONSchema::check_object for request values, which
// are strings or, for array parameters, lists of strings.
func checkObject(path string, schema *Prop, value map[string]any, errs map[string]string) {
	names := make([]string, 0, len(schema.Properties))
	for k := range schema.Properties {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if isIndexedName(k) {
			continue // never required; given values are checked below
		}
		v := value[k]
		checkValue(joinPath(path, k), schema.Properties[k], v, v != nil, errs)
	}

	keys := make([]string, 0, len(value))
	for k := range value {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sub, ok := schema.Property(k)
		if ok {
			if _, exact := schema.Properties[k]; !exact {
				checkValue(joinPath(path, k), sub, value[k], value[k] != nil, errs)
			}
			if r := sub.Requires; r != "" {
				if value[r] == nil {
					addError(errs, joinPath(path, r), fmt.Sprintf("missing property required by '%s'", joinPath(path, k)))
				}
			}
			continue
		}
		if schema.AdditionalProperties != nil && !*schema.AdditionalProperties {
			addError(errs, joinPath(path, k), "property is not defined in schema and the schema does not allow additional properties")
		}
	}
}

// checkValue is PVE::JSONSchema::check_prop for one request value.
func checkValue(path string, p *Prop, v any, given bool, errs map[string]string) {
	if p.Alias != "" {
		return
	}
	if !given {
		if p.Type != "null" && !p.Optional {
			addError(errs, path, "property is missing and it is not optional")
		}
		return
	}
	if items, ok := v.([]any); ok {
		if p.Type != "" && p.Type != "array" && p.Type != "any" {
			addError(errs, path, fmt.Sprintf("type check ('%s') failed - got ARRAY", p.Type))
			return
		}
		if p.Items != nil {
			for i, it := range items {
				checkValue(fmt.Sprintf("%s[%d]", path, i), p.Items, it, true, errs)
			}
		}
		return
	}
	s, _ := v.(string)
	if !checkType(path, p.Type, s, errs) {
		return
	}
	checkScalar(path, p, s, errs)
}

// checkType is PVE::JSONSchema::check_type for a string value.
func checkType(path, typ, s string, errs map[string]string) bool {
	switch typ {
	case "array", "object":
		addError(errs, path, fmt.Sprintf("type check ('%s') failed", typ))
		return false
	case "null":
		addError(errs, path, "type check ('null') failed - value is not null")
		return false
	case "boolean":
		// Only 1 and 0: parse_boolean's words are for property strings.
		if s != "1" && s != "0" {
			addError(errs, path, fmt.Sprintf("type check ('boolean') failed - got '%s'", s))
			return false
		}
	case "integer":
		if !isInteger(s) {
			addError(errs, path, fmt.Sprintf("type check ('integer') failed - got '%s'", s))
			return false
		}
	case "number":
		if !isNumber(s) {
			addError(errs, path, fmt.Sprintf("type check ('number') failed - got '%s'", s))
			return false
		}
	}
	return true
}

// checkScalar applies format, pattern, length, range and enum, in
// Proxmox's order, stopping at the first failure.
func checkScalar(path string, p *Prop, s string, errs map[string]string) {
	if p.FormatKeys != nil {
		if msg := checkPropertyString(path, p.FormatKeys, s); msg != "" {
			addError(errs, path, "invalid format - "+msg)
			return
		}
	} else if p.Format != "" {
		if msg := checkFormat(p.Format, s); msg != "" {
			addError(errs, path, "invalid format - "+msg)
			return
		}
	}
	if p.re != nil && !p.re.MatchString(s) {
		addError(errs, path, "value does not match the regex pattern")
		return
	}
	if p.MaxLength != nil && utf8.RuneCountInString(s) > *p.MaxLength {
		addError(errs, path, fmt.Sprintf("value may only be %d characters long", *p.MaxLength))
		return
	}
	if p.MinLength != nil && utf8.RuneCountInString(s) < *p.MinLength {
		addError(errs, path, fmt.Sprintf("value must be at least %d characters long", *p.MinLength))
		return
	}
	if isNumber(s) {
		x, _ := strconv.ParseFloat(s, 64)
		if p.Maximum != nil && x > *p.Maximum {
			addError(errs, path, "value must have a maximum value of "+perlNumber(*p.Maximum))
			return
		}
		if p.Minimum != nil && x < *p.Minimum {
			addError(errs, path, "value must have a minimum value of "+perlNumber(*p.Minimum))
			return
		}
	}
	if len(p.Enum) > 0 {
		for _, ev := range p.Enum {
			if ev == s {
				return
			}
		}
		addError(errs, path, fmt.Sprintf("value '%s' does not have a value in the enumeration '%s'", s, strings.Join(p.Enum, ", ")))
	}
}

// perlNumber formats a number as Perl prints it.
func perlNumber(x float64) string {
	if x == math.Trunc(x) && math.Abs(x) < 1e15 {
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return strconv.FormatFloat(x, 'g', 15, 64)
}

var (
	integerRE = regexp.MustCompile(`^[+-]?[0-9]+$`)
	numberRE  = regexp.MustCompile(`^[+-]?([0-9]+\.[0-9]+|[0-9]+\.|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?$`)
)

// isInteger is PVE::JSONSchema::is_integer.
func isInteger(s string) bool { return integerRE.MatchString(s) }

// isNumber is PVE::JSONSchema::is_number.
func isNumber(s string) bool { return numberRE.MatchString(s) }

// parseBoolean is PVE::JSONSchema::parse_boolean.
func parseBoolean(s string) (v, ok bool) {
	switch strings.ToLower(s) {
	case "1", "on", "yes", "true":
		return true, true
	case "0", "off", "no", "false":
		return false, true
	}
	return false, false
}

// formats holds the registered formats this package checks, each
// returning Proxmox's message (with its trailing newline) or "".
var formats = map[string]func(string) string{
	"pve-vmid": func(s string) string {
		return failUnless(vmidRE.MatchString(s), "value does not look like a valid VM ID\n")
	},
	"pve-node": func(s string) string {
		return failUnless(nodeRE.MatchString(s), "value does not look like a valid node name\n")
	},
	"pve-storage-id": func(s string) string { return parseID(s, "storage") },
	"pve-configid": func(s string) string {
		return failUnless(configIDRE.MatchString(s), fmt.Sprintf("invalid configuration ID '%s'\n", s))
	},
	"pve-tag": func(s string) string {
		return failUnless(tagRE.MatchString(s), "invalid characters in tag\n")
	},
	"pve-bridge-id": func(s string) string {
		return failUnless(bridgeRE.MatchString(s), fmt.Sprintf("invalid bridge ID '%s'\n", s))
	},
	"mac-addr": func(s string) string {
		return failUnless(macRE.MatchString(s), "value does not look like a valid unicast MAC address\n")
	},
	"dns-name": func(s string) string {
		return failUnless(dnsNameRE.MatchString(s), "value does not look like a valid DNS name\n")
	},
	"urlencoded": func(s string) string {
		return failUnless(urlencodedRE.MatchString(s), fmt.Sprintf("invalid urlencoded string: %s\n", s))
	},
	"pve-startup-order": func(s string) string {
		return failUnless(startupOrderOK(s), "unable to parse startup options\n")
	},
	"pve-sdn-zone-id": func(s string) string { return parseSDNID(s, "zone") },
	"pve-sdn-vnet-id": func(s string) string { return parseSDNID(s, "vnet") },
	"pve-task-status-type": func(s string) string {
		return failUnless(taskStatusRE.MatchString(s), fmt.Sprintf("invalid status '%s'\n", s))
	},
}

var (
	vmidRE       = regexp.MustCompile(`^[1-9][0-9]{2,8}$`)
	nodeRE       = regexp.MustCompile(`^([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$`)
	storageIDRE  = regexp.MustCompile(`(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]$`)
	configIDRE   = regexp.MustCompile(`(?i)^[a-z][a-z0-9_-]+$`)
	tagRE        = regexp.MustCompile(`(?i)^[a-z0-9_][a-z0-9_\-+.]*$`)
	bridgeRE     = regexp.MustCompile(`^[-_.\w\d]+$`)
	macRE        = regexp.MustCompile(`(?i)^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$`)
	dnsNameRE    = regexp.MustCompile(`^(([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)\.)*([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?)$`)
	urlencodedRE = regexp.MustCompile(`^[-%a-zA-Z0-9_.!~*'()]*$`)
	taskStatusRE = regexp.MustCompile(`(?i)^(ok|error|warning|unknown)$`)
	startupRE    = regexp.MustCompile(`^(?:(order=)?[0-9]+|up=[0-9]+|down=[0-9]+)$`)
	sdnIDRE      = regexp.MustCompile(`(?i)^[a-z][a-z0-9]*[a-z0-9]$`)
)

func failUnless(ok bool, msg string) string {
	if ok {
		return ""
	}
	return msg
}

// parseID is PVE::JSONSchema::parse_id.
func parseID(id, kind string) string {
	if utf8.RuneCountInString(id) < 2 {
		return fmt.Sprintf("%s ID '%s' cannot be shorter than 2 characters\n", kind, id)
	}
	if !storageIDRE.MatchString(id) {
		return fmt.Sprintf("%s ID '%s' contains illegal characters\n", kind, id)
	}
	return ""
}

// parseSDNID is pve-network's check of zone and vnet IDs: a letter, then
// letters and digits, at most 8 characters (the vnet becomes a bridge
// name).
func parseSDNID(id, kind string) string {
	if !sdnIDRE.MatchString(id) {
		return fmt.Sprintf("%s ID '%s' contains illegal characters\n", kind, id)
	}
	if len(id) > 8 {
		return fmt.Sprintf("%s ID '%s' can't be more length than 8 characters\n", kind, id)
	}
	return ""
}

// startupOrderOK is PVE::JSONSchema::pve_parse_startup_order, which
// rejects Perl's false strings ("" and "0") and any part it cannot read.
func startupOrderOK(s string) bool {
	if s == "" || s == "0" {
		return false
	}
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) != "" && !startupRE.MatchString(part) {
			return false
		}
	}
	return true
}

// checkFormat is PVE::JSONSchema::check_format for a named format. It
// returns "" for formats it does not know.
func checkFormat(format, s string) string {
	name, kind := format, ""
	if n, ok := strings.CutSuffix(format, "-list"); ok {
		name, kind = n, "list"
	} else if n, ok := strings.CutSuffix(format, "-opt"); ok {
		name, kind = n, "opt"
	}
	if _, ok := formats[name]; !ok {
		// "pve-configid-list" and the like are checked item by item; a
		// format that merely ends in -list or -opt is not known either.
		name, kind = format, ""
	}
	check, ok := formats[name]
	if !ok {
		return ""
	}
	switch kind {
	case "list":
		for _, item := range splitList(s) {
			if msg := check(item); msg != "" {
				return msg
			}
		}
		return ""
	case "opt":
		if s == "" || s == "0" { // Perl's false strings
			return ""
		}
	}
	return check(s)
}

// splitList is PVE::Tools::split_list: NUL-separated when the text has a
// NUL, otherwise separated by commas, semicolons and white space.
func splitList(s string) []string {
	if strings.Contains(s, "\x00") {
		items := strings.Split(s, "\x00")
		for len(items) > 0 && items[len(items)-1] == "" {
			items = items[:len(items)-1]
		}
		return items
	}
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v'
	})
}

// checkPropertyString is PVE::JSONSchema::parse_property_string: it parses
// "key=value,..." text against the keys of a format and returns Proxmox's
// message, or "" when the text is fine.
func checkPropertyString(path string, keys map[string]*Prop, data string) string {
	res := make(map[string]any)
	defaultKey := ""
	for _, part := range strings.Split(data, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		if k, v, ok := strings.Cut(part, "="); ok && k != "" && v != "" {
			if _, dup := res[k]; dup {
				return "duplicate key in comma-separated list property: " + k + "\n"
			}
			sub := keys[k]
			if sub != nil && sub.Alias != "" {
				if sub.KeyAlias != "" {
					if _, dup := res[sub.KeyAlias]; dup {
						return fmt.Sprintf("key alias '%s' is already defined\n", sub.KeyAlias)
					}
					res[sub.KeyAlias] = k
				}
				k = sub.Alias
				sub = keys[k]
				if _, dup := res[k]; dup {
					return fmt.Sprintf("key '%s' is already defined (via alias)\n", k)
				}
			}
			if sub == nil {
				return "invalid key in comma-separated list property: " + k + "\n"
			}
			res[k] = normalizeBoolean(sub, v)
			continue
		}
		if strings.Contains(part, "=") {
			return "missing key in comma-separated list property\n"
		}
		if defaultKey != "" {
			return "duplicate key in comma-separated list property: " + defaultKey + "\n"
		}
		for _, k := range sortedKeys(keys) {
			if !keys[k].DefaultKey {
				continue
			}
			defaultKey = k
			if _, dup := res[k]; dup {
				return "duplicate key in comma-separated list property: " + k + "\n"
			}
			res[k] = normalizeBoolean(keys[k], part)
			break
		}
		if defaultKey == "" {
			return "value without key, but schema does not define a default key\n"
		}
	}

	errs := make(map[string]string)
	no := false
	checkObject(path, &Prop{Properties: keys, AdditionalProperties: &no}, res, errs)
	if len(errs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("format error\n")
	for _, k := range sortedKeys(errs) {
		fmt.Fprintf(&b, "%s: %s\n", k, errs[k])
	}
	return b.String()
}

// normalizeBoolean turns a boolean key's value into 1 or 0 where it can, as
// parse_property_string does before checking.
func normalizeBoolean(p *Prop, v string) string {
	if p.Type == "boolean" {
		if b, ok := parseBoolean(v); ok {
			if b {
				return "1"
			}
			return "0"
		}
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
