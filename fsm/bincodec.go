package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// binaryMarker starts the payload of a command encoded by hand instead of
// with msgpack. msgpack never uses the byte, so a payload starting with it
// cannot be a msgpack value, and Decode tells the two apart by it.
//
// Address allocations, the most frequent write, and the batches that
// carry concurrent writes are encoded this way: msgpack's reflection over
// them was about 5% of a busy cluster's CPU (encoding on the leader,
// decoding on every server). A server of an
// earlier version cannot read them and halts on the entry, as it does on
// any command type it does not know; the upgrade runbook's order
// (followers first, the leader last) keeps that from happening.
const binaryMarker = 0xc1

// binaryVersion is the layout of the hand-encoded payload.
const binaryVersion = 1

var errBinaryCommand = errors.New("malformed binary command")

// binaryCommand is a command with a hand-written encoding.
type binaryCommand interface {
	Command
	// binarySize is at least the size of the encoding after its first
	// three bytes, so that it is allocated once.
	binarySize() int
	appendBinary(b []byte) []byte
	decodeBinary(d *binDecoder) error
}

// encodeBinary encodes c as its type, the marker, the version and its
// fields.
func encodeBinary(c binaryCommand) []byte {
	b := make([]byte, 0, 3+c.binarySize())
	b = append(b, byte(c.Type()), binaryMarker, binaryVersion)
	return c.appendBinary(b)
}

// decodeBinary decodes payload (what follows the type byte) into c.
func decodeBinary(payload []byte, c binaryCommand) error {
	if len(payload) < 2 || payload[0] != binaryMarker {
		return errBinaryCommand
	}
	if payload[1] != binaryVersion {
		return fmt.Errorf("%w: layout %d is newer than this server's %d", errBinaryCommand, payload[1], binaryVersion)
	}
	d := &binDecoder{b: payload[2:]}
	if err := c.decodeBinary(d); err != nil {
		return err
	}
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d bytes after the last field", errBinaryCommand, len(d.b))
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendWriteMeta appends the leader-stamped metadata every command has.
func appendWriteMeta(b []byte, m *WriteMeta) []byte {
	b = binary.AppendVarint(b, m.Now)
	for _, s := range [...]string{m.Actor, m.RequestID, m.IdempotencyKey, m.RequestHash, m.TraceParent} {
		b = appendString(b, s)
	}
	b = appendBool(b, m.Audit != nil)
	if a := m.Audit; a != nil {
		for _, s := range [...]string{a.Role, a.Tenant, a.Source, a.Action, a.Object} {
			b = appendString(b, s)
		}
	}
	return b
}

// writeMetaSize is at least the size appendWriteMeta writes.
func writeMetaSize(m *WriteMeta) int {
	n := binary.MaxVarintLen64 + 1 + stringsSize(m.Actor, m.RequestID, m.IdempotencyKey, m.RequestHash, m.TraceParent)
	if a := m.Audit; a != nil {
		n += stringsSize(a.Role, a.Tenant, a.Source, a.Action, a.Object)
	}
	return n
}

// stringsSize is at least the size appendString writes for ss.
func stringsSize(ss ...string) int {
	n := 0
	for _, s := range ss {
		n += binary.MaxVarintLen64 + len(s)
	}
	return n
}

// binDecoder reads the fields appended above. The first error sticks and
// every later read returns a zero value, so a decoder checks err once.
type binDecoder struct {
	b   []byte
	err error
}

func (d *binDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or corrupt %s", errBinaryCommand, what)
	}
	d.b = nil
}

func (d *binDecoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *binDecoder) varint(what string) int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *binDecoder) string(what string) string {
	n := d.uvarint(what)
	if n > uint64(len(d.b)) {
		d.fail(what)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *binDecoder) bytes(what string) []byte {
	n := d.uvarint(what)
	if n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *binDecoder) bool(what string) bool {
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail(what)
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

// count reads a number of following items, each at least one byte long,
// so a corrupt count cannot make the caller allocate more than remains.
func (d *binDecoder) count(what string) int {
	n := d.uvarint(what)
	if n > uint64(len(d.b)) {
		d.fail(what)
		return 0
	}
	return int(n)
}

func (d *binDecoder) writeMeta(m *WriteMeta) {
	m.Now = d.varint("now")
	for _, f := range [...]*string{&m.Actor, &m.RequestID, &m.IdempotencyKey, &m.RequestHash, &m.TraceParent} {
		*f = d.string("write meta")
	}
	if d.bool("audit") {
		a := &AuditInfo{}
		for _, f := range [...]*string{&a.Role, &a.Tenant, &a.Source, &a.Action, &a.Object} {
			*f = d.string("audit")
		}
		m.Audit = a
	}
}

func (r *AddressAllocateRequest) binarySize() int {
	n := writeMetaSize(&r.WriteMeta) + 3*binary.MaxVarintLen64 + 2 +
		stringsSize(r.PrefixID, r.VRF, r.Address, r.Status, r.DNSName, r.Tenant, r.Project, r.Owner, r.Description)
	return n + stringsSize(r.IDs...)
}

func (r *AddressAllocateRequest) appendBinary(b []byte) []byte {
	b = appendWriteMeta(b, &r.WriteMeta)
	for _, s := range [...]string{r.PrefixID, r.VRF, r.Address} {
		b = appendString(b, s)
	}
	b = appendBool(b, r.Fallback)
	b = appendBool(b, r.Force)
	b = binary.AppendVarint(b, int64(r.Count))
	b = binary.AppendUvarint(b, uint64(len(r.IDs)))
	for _, id := range r.IDs {
		b = appendString(b, id)
	}
	for _, s := range [...]string{r.Status, r.DNSName, r.Tenant, r.Project, r.Owner, r.Description} {
		b = appendString(b, s)
	}
	return b
}

func (r *AddressAllocateRequest) decodeBinary(d *binDecoder) error {
	d.writeMeta(&r.WriteMeta)
	for _, f := range [...]*string{&r.PrefixID, &r.VRF, &r.Address} {
		*f = d.string("address allocation")
	}
	r.Fallback = d.bool("fallback")
	r.Force = d.bool("force")
	r.Count = int(d.varint("count"))
	if n := d.count("ids"); n > 0 {
		r.IDs = make([]string, n)
		for i := range r.IDs {
			r.IDs[i] = d.string("ids")
		}
	}
	for _, f := range [...]*string{&r.Status, &r.DNSName, &r.Tenant, &r.Project, &r.Owner, &r.Description} {
		*f = d.string("address allocation")
	}
	return d.err
}

func (r *BatchRequest) binarySize() int {
	n := writeMetaSize(&r.WriteMeta) + binary.MaxVarintLen64
	for _, e := range r.Entries {
		n += binary.MaxVarintLen64 + len(e)
	}
	return n
}

// appendBinary writes the batch's entries, each length-prefixed. A batch
// carries no metadata of its own: each entry has its command's.
func (r *BatchRequest) appendBinary(b []byte) []byte {
	b = appendWriteMeta(b, &r.WriteMeta)
	b = binary.AppendUvarint(b, uint64(len(r.Entries)))
	for _, e := range r.Entries {
		b = binary.AppendUvarint(b, uint64(len(e)))
		b = append(b, e...)
	}
	return b
}

// decodeBinary reads the entries as slices of the payload; DecodeEntry
// decodes each into its own command right away.
func (r *BatchRequest) decodeBinary(d *binDecoder) error {
	d.writeMeta(&r.WriteMeta)
	if n := d.count("entries"); n > 0 {
		r.Entries = make([][]byte, n)
		for i := range r.Entries {
			r.Entries[i] = d.bytes("entry")
		}
	}
	return d.err
}
