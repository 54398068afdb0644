package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/moxxie/moxxie/binenc"
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
	decodeBinary(r *binenc.Reader)
}

// encodeBinary encodes c as its type, the marker, the version and its
// fields.
func encodeBinary(c binaryCommand) []byte {
	b := make([]byte, 0, 3+c.binarySize())
	b = append(b, byte(c.Type()), binaryMarker, binaryVersion)
	return c.appendBinary(b)
}

// decodeBinary decodes payload (what follows the type byte) into c.
func decodeBinary(payload []byte, c binaryCommand, strs *binenc.Interner) error {
	if len(payload) < 2 || payload[0] != binaryMarker {
		return errBinaryCommand
	}
	if payload[1] != binaryVersion {
		return fmt.Errorf("%w: layout %d is newer than this server's %d", errBinaryCommand, payload[1], binaryVersion)
	}
	r := binenc.NewReader(payload[2:], errBinaryCommand).WithInterner(strs)
	c.decodeBinary(r)
	return r.Done()
}

// appendWriteMeta appends the leader-stamped metadata every command has.
func appendWriteMeta(b []byte, m *WriteMeta) []byte {
	b = binary.AppendVarint(b, m.Now)
	for _, s := range [...]string{m.Actor, m.RequestID, m.IdempotencyKey, m.RequestHash, m.TraceParent} {
		b = binenc.AppendString(b, s)
	}
	b = binenc.AppendBool(b, m.Audit != nil)
	if a := m.Audit; a != nil {
		for _, s := range [...]string{a.Role, a.Tenant, a.Source, a.Action, a.Object} {
			b = binenc.AppendString(b, s)
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

// stringsSize is at least the size binenc.AppendString writes for ss.
func stringsSize(ss ...string) int {
	n := 0
	for _, s := range ss {
		n += binenc.StringSize(s)
	}
	return n
}

// readWriteMeta reads what appendWriteMeta appends.
func readWriteMeta(r *binenc.Reader, m *WriteMeta) {
	m.Now = r.Varint("now")
	m.Actor = r.SharedString("write meta")
	for _, f := range [...]*string{&m.RequestID, &m.IdempotencyKey, &m.RequestHash, &m.TraceParent} {
		*f = r.String("write meta")
	}
	if r.Bool("audit") {
		a := &AuditInfo{}
		for _, f := range [...]*string{&a.Role, &a.Tenant, &a.Source, &a.Action, &a.Object} {
			*f = r.SharedString("audit")
		}
		m.Audit = a
	}
}

func (r *AddressAllocateRequest) binarySize() int {
	n := writeMetaSize(&r.WriteMeta) + 3*binary.MaxVarintLen64 + 3 +
		stringsSize(r.PrefixID, r.VRF, r.Address, r.Status, r.DNSName, r.Tenant, r.Project, r.Owner, r.Description, r.Confine) + 1
	return n + stringsSize(r.IDs...)
}

func (r *AddressAllocateRequest) appendBinary(b []byte) []byte {
	b = appendWriteMeta(b, &r.WriteMeta)
	for _, s := range [...]string{r.PrefixID, r.VRF, r.Address} {
		b = binenc.AppendString(b, s)
	}
	b = binenc.AppendBool(b, r.Fallback)
	b = binenc.AppendBool(b, r.Force)
	b = binary.AppendVarint(b, int64(r.Count))
	b = binary.AppendUvarint(b, uint64(len(r.IDs)))
	for _, id := range r.IDs {
		b = binenc.AppendString(b, id)
	}
	for _, s := range [...]string{r.Status, r.DNSName, r.Tenant, r.Project, r.Owner, r.Description} {
		b = binenc.AppendString(b, s)
	}
	// The rules are appended only when set: an allocation without them
	// keeps the layout earlier versions read, and one with NameRules alone
	// the layout of the version that added it. A server of such a version
	// finds bytes after the last field it knows, or NameRules written as
	// false, and halts on the entry rather than apply it by its rules.
	if r.NameRules || r.Confine != "" || r.ReverseRule {
		b = binenc.AppendBool(b, r.NameRules)
	}
	if r.Confine != "" || r.ReverseRule {
		b = binenc.AppendString(b, r.Confine)
		b = binenc.AppendBool(b, r.ReverseRule)
	}
	return b
}

func (r *AddressAllocateRequest) decodeBinary(d *binenc.Reader) {
	readWriteMeta(d, &r.WriteMeta)
	r.PrefixID = d.SharedString("address allocation")
	r.VRF = d.SharedString("address allocation")
	r.Address = d.String("address allocation")
	r.Fallback = d.Bool("fallback")
	r.Force = d.Bool("force")
	r.Count = int(d.Varint("count"))
	if n := d.Count("ids", 1); n > 0 {
		r.IDs = make([]string, n)
		for i := range r.IDs {
			r.IDs[i] = d.String("ids")
		}
	}
	r.Status = d.SharedString("address allocation")
	r.DNSName = d.String("address allocation")
	r.Tenant = d.SharedString("address allocation")
	r.Project = d.SharedString("address allocation")
	r.Owner = d.String("address allocation")
	r.Description = d.String("address allocation")
	if !d.More() {
		return
	}
	// Written only when one of them is set: NameRules alone only when
	// true, and Confine and ReverseRule together, not both empty.
	r.NameRules = d.Bool("name rules")
	if !d.More() {
		if !r.NameRules {
			d.Fail("name rules written as false")
		}
		return
	}
	r.Confine = d.SharedString("confine")
	if r.ReverseRule = d.Bool("reverse rule"); r.Confine == "" && !r.ReverseRule {
		d.Fail("confine and reverse rule written empty")
	}
}

func (r *BatchRequest) binarySize() int {
	n := writeMetaSize(&r.WriteMeta) + binary.MaxVarintLen64
	for _, e := range r.Entries {
		n += binenc.StringSize(string(e))
	}
	return n
}

// appendBinary writes the batch's entries, each length-prefixed. A batch
// carries no metadata of its own: each entry has its command's.
func (r *BatchRequest) appendBinary(b []byte) []byte {
	b = appendWriteMeta(b, &r.WriteMeta)
	b = binary.AppendUvarint(b, uint64(len(r.Entries)))
	for _, e := range r.Entries {
		b = binenc.AppendBytes(b, e)
	}
	return b
}

// decodeBinary reads the entries as slices of the payload; DecodeEntry
// decodes each into its own command right away.
func (r *BatchRequest) decodeBinary(d *binenc.Reader) {
	readWriteMeta(d, &r.WriteMeta)
	if n := d.Count("entries", 1); n > 0 {
		r.Entries = make([][]byte, n)
		for i := range r.Entries {
			r.Entries[i] = d.Bytes("entry")
		}
	}
}
