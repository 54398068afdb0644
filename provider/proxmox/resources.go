package proxmox

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// decodeResources parses the answer of GET /cluster/resources,
// {"data": [{...}, ...]}, into resources. It does what encoding/json does
// with the resource type, field for field (the fuzz test compares the
// two), in a single pass without reflection: a sync of 10,000 guests
// reads this answer every cycle, and encoding/json spent most of the
// cycle's CPU on it.
func decodeResources(b []byte) ([]resource, error) {
	d := &resDecoder{b: b}
	var out []resource
	d.ws()
	if d.peek() == 'n' {
		if err := d.literal("null"); err != nil {
			return nil, err
		}
		return nil, d.end()
	}
	if err := d.expect('{'); err != nil {
		return nil, err
	}
	for first := true; ; first = false {
		d.ws()
		if d.peek() == '}' {
			d.i++
			break
		}
		if !first {
			if err := d.expect(','); err != nil {
				return nil, err
			}
			d.ws()
		}
		key, err := d.key()
		if err != nil {
			return nil, err
		}
		d.ws()
		if strings.EqualFold(string(key), "data") {
			if out, err = d.array(); err != nil {
				return nil, err
			}
		} else if err := d.skip(0); err != nil {
			return nil, err
		}
	}
	return out, d.end()
}

// maxDepth bounds the nesting of skipped values.
const maxDepth = 64

type resDecoder struct {
	b       []byte
	i       int
	strings map[string]string // interned values
}

// intern returns b as a string, one copy per distinct value.
func (d *resDecoder) intern(b []byte) string {
	if s, ok := d.strings[string(b)]; ok {
		return s
	}
	if d.strings == nil {
		d.strings = map[string]string{}
	}
	s := string(b)
	d.strings[s] = s
	return s
}

var errSyntax = errors.New("malformed JSON")

func (d *resDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %w: %s", d.i, errSyntax, fmt.Sprintf(format, args...))
}

func (d *resDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *resDecoder) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

func (d *resDecoder) expect(c byte) error {
	if d.peek() != c {
		return d.errorf("expected %q", c)
	}
	d.i++
	return nil
}

// end checks that only white space follows the value.
func (d *resDecoder) end() error {
	d.ws()
	if d.i != len(d.b) {
		return d.errorf("data after the answer")
	}
	return nil
}

func (d *resDecoder) literal(lit string) error {
	if !strings.HasPrefix(string(d.b[d.i:min(len(d.b), d.i+len(lit))]), lit) {
		return d.errorf("expected %s", lit)
	}
	d.i += len(lit)
	return nil
}

// key reads an object key and the colon after it. The key is returned
// as bytes of the input when it has no escapes (no copy), else decoded.
func (d *resDecoder) key() ([]byte, error) {
	start := d.i
	end, simple, err := d.skipString()
	if err != nil {
		return nil, err
	}
	k := d.b[start+1 : end-1]
	if !simple {
		s, err := d.decodeString(start, end)
		if err != nil {
			return nil, err
		}
		k = []byte(s)
	}
	d.ws()
	return k, d.expect(':')
}

// skipString passes over a JSON string starting at d.i and returns the
// offset just after it, and whether it is plain: no escapes, valid UTF-8.
func (d *resDecoder) skipString() (int, bool, error) {
	if d.peek() != '"' {
		return 0, false, d.errorf("expected a string")
	}
	start := d.i
	d.i++
	plain, ascii := true, true
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if plain && !ascii && !utf8.Valid(d.b[start+1:d.i-1]) {
				plain = false
			}
			return d.i, plain, nil
		case c >= 0x80:
			ascii = false
			d.i++
		case c == '\\':
			plain = false
			n, err := d.escapeLen()
			if err != nil {
				return 0, false, err
			}
			d.i += n
		case c < 0x20:
			return 0, false, d.errorf("control character in string")
		default:
			d.i++
		}
	}
	return 0, false, d.errorf("unterminated string")
}

// escapeLen returns the length of the escape sequence at d.i, which is a
// backslash, and fails as encoding/json does for one it does not accept.
func (d *resDecoder) escapeLen() (int, error) {
	if d.i+1 >= len(d.b) {
		return 0, d.errorf("unterminated string")
	}
	switch d.b[d.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
		if d.i+6 <= len(d.b) && isHex(d.b[d.i+2:d.i+6]) {
			return 6, nil
		}
	}
	return 0, d.errorf("bad escape in string")
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// decodeString decodes the string at b[start:end] with escapes or invalid
// UTF-8, which are rare, exactly as encoding/json does.
func (d *resDecoder) decodeString(start, end int) (string, error) {
	var s string
	if err := json.Unmarshal(d.b[start:end], &s); err != nil {
		return "", d.errorf("bad string: %v", err)
	}
	return s, nil
}

// str reads a JSON string.
func (d *resDecoder) str() (string, error) {
	start := d.i
	end, plain, err := d.skipString()
	if err != nil {
		return "", err
	}
	if !plain {
		return d.decodeString(start, end)
	}
	return string(d.b[start+1 : end-1]), nil
}

// scalar returns the raw bytes of a number, string, true, false or null.
func (d *resDecoder) scalar() ([]byte, error) {
	start := d.i
	switch c := d.peek(); {
	case c == '"':
		if _, _, err := d.skipString(); err != nil {
			return nil, err
		}
	case c == 't':
		if err := d.literal("true"); err != nil {
			return nil, err
		}
	case c == 'f':
		if err := d.literal("false"); err != nil {
			return nil, err
		}
	case c == 'n':
		if err := d.literal("null"); err != nil {
			return nil, err
		}
	case c == '-' || c >= '0' && c <= '9':
		d.i++
		for d.i < len(d.b) {
			c := d.b[d.i]
			if c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' {
				d.i++
				continue
			}
			break
		}
		if !validNumber(d.b[start:d.i]) {
			return nil, d.errorf("bad number %s", d.b[start:d.i])
		}
	default:
		return nil, d.errorf("expected a value")
	}
	return d.b[start:d.i], nil
}

// skip passes over any value.
func (d *resDecoder) skip(depth int) error {
	if depth > maxDepth {
		return d.errorf("nested too deeply")
	}
	open := d.peek()
	if open != '{' && open != '[' {
		_, err := d.scalar()
		return err
	}
	close := byte('}')
	if open == '[' {
		close = ']'
	}
	d.i++
	for first := true; ; first = false {
		d.ws()
		if d.peek() == close {
			d.i++
			return nil
		}
		if !first {
			if err := d.expect(','); err != nil {
				return err
			}
			d.ws()
		}
		if open == '{' {
			if _, _, err := d.skipString(); err != nil {
				return err
			}
			d.ws()
			if err := d.expect(':'); err != nil {
				return err
			}
			d.ws()
		}
		if err := d.skip(depth + 1); err != nil {
			return err
		}
	}
}

// array reads the data array; null is no array.
func (d *resDecoder) array() ([]resource, error) {
	if d.peek() == 'n' {
		return nil, d.literal("null")
	}
	if err := d.expect('['); err != nil {
		return nil, err
	}
	out := make([]resource, 0, len(d.b)/256)
	for first := true; ; first = false {
		d.ws()
		if d.peek() == ']' {
			d.i++
			return out, nil
		}
		if !first {
			if err := d.expect(','); err != nil {
				return nil, err
			}
			d.ws()
		}
		var r resource
		if d.peek() == 'n' {
			// A null element decodes to the zero resource.
			if err := d.literal("null"); err != nil {
				return nil, err
			}
		} else if err := d.object(&r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
}

// object reads one resource.
func (d *resDecoder) object(r *resource) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		d.ws()
		if d.peek() == '}' {
			d.i++
			return nil
		}
		if !first {
			if err := d.expect(','); err != nil {
				return err
			}
			d.ws()
		}
		key, err := d.key()
		if err != nil {
			return err
		}
		d.ws()
		if err := d.field(r, key); err != nil {
			return fmt.Errorf("field %q: %w", string(key), err)
		}
	}
}

// field decodes the value of key into r. Keys match exactly first, then
// case-insensitively, like encoding/json.
func (d *resDecoder) field(r *resource, key []byte) error {
	name := string(key) // short keys: no allocation
	var sp *string
	switch name {
	default:
		if f := foldedField(key); f != "" {
			return d.field(r, []byte(f))
		}
		return d.skip(0)
	case "vmid", "template", "shared", "cpu", "maxcpu", "mem", "maxmem", "disk", "maxdisk", "uptime":
	case "type":
		sp = &r.Type
	case "node":
		sp = &r.Node
	case "name":
		sp = &r.Name
	case "status":
		sp = &r.Status
	case "tags":
		sp = &r.Tags
	case "pool":
		sp = &r.Pool
	case "lock":
		sp = &r.Lock
	case "storage":
		sp = &r.Storage
	case "plugintype":
		sp = &r.PluginType
	case "content":
		sp = &r.Content
	}
	if sp != nil {
		if d.peek() == 'n' {
			return d.literal("null")
		}
		if name == "name" || name == "tags" {
			s, err := d.str()
			*sp = s
			return err
		}
		// The other strings repeat across entries (types, states, node
		// names): keep one copy of each.
		start := d.i
		end, plain, err := d.skipString()
		if err != nil {
			return err
		}
		if !plain {
			*sp, err = d.decodeString(start, end)
			return err
		}
		*sp = d.intern(d.b[start+1 : end-1])
		return nil
	}
	if c := d.peek(); c == '{' || c == '[' {
		return d.errorf("not a number")
	}
	raw, err := d.scalar()
	if err != nil {
		return err
	}
	v, ok := plainUint(raw)
	if string(raw) == "null" {
		// null reads as zero, as the fields' UnmarshalJSON read it, also
		// over an earlier value of a repeated key.
		v, ok = 0, true
	}
	if ok {
		// The common case, without the general parser's allocations.
		switch name {
		case "vmid":
			r.VMID = pveInt(v)
		case "template":
			r.Template = v != 0
		case "shared":
			r.Shared = v != 0
		case "cpu":
			r.CPU = pveFloat(v)
		case "maxcpu":
			r.MaxCPU = pveFloat(v)
		case "mem":
			r.Mem = pveUint(v)
		case "maxmem":
			r.MaxMem = pveUint(v)
		case "disk":
			r.Disk = pveUint(v)
		case "maxdisk":
			r.MaxDisk = pveUint(v)
		case "uptime":
			r.Uptime = pveUint(v)
		}
		return nil
	}
	switch name {
	case "vmid":
		return r.VMID.UnmarshalJSON(raw)
	case "template":
		return r.Template.UnmarshalJSON(raw)
	case "shared":
		return r.Shared.UnmarshalJSON(raw)
	case "cpu":
		return r.CPU.UnmarshalJSON(raw)
	case "maxcpu":
		return r.MaxCPU.UnmarshalJSON(raw)
	case "mem":
		return r.Mem.UnmarshalJSON(raw)
	case "maxmem":
		return r.MaxMem.UnmarshalJSON(raw)
	case "disk":
		return r.Disk.UnmarshalJSON(raw)
	case "maxdisk":
		return r.MaxDisk.UnmarshalJSON(raw)
	case "uptime":
		return r.Uptime.UnmarshalJSON(raw)
	}
	return nil
}

// plainUint parses an unsigned decimal integer of up to 18 digits, the
// form nearly every number in the answer has.
func plainUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// validNumber reports whether b is a JSON number.
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i == len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i == len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	return i == len(b)
}

// foldedField returns the field that key names case-insensitively, as
// encoding/json matches names, or "" for none. Exact names never get here.
func foldedField(key []byte) string {
	lower := true
	for _, c := range key {
		if c >= 'A' && c <= 'Z' || c >= 0x80 {
			lower = false
			break
		}
	}
	if lower {
		return "" // not a field, and no other spelling can fold to one
	}
	for _, f := range resourceFields {
		if strings.EqualFold(string(key), f) {
			return f
		}
	}
	return ""
}

// resourceFields are the names field decodes.
var resourceFields = []string{"type", "node", "name", "status", "tags", "pool", "lock", "storage", "plugintype", "content",
	"vmid", "template", "shared", "cpu", "maxcpu", "mem", "maxmem", "disk", "maxdisk", "uptime"}
