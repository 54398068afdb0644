// Package dns serves Moxxie's IPAM records over DNS with an embedded CoreDNS.
//
// The moxxie plugin answers A, AAAA and PTR queries from a Source, an
// immutable view of the zones and records the server derives from IPAM. It
// keeps every answer ready per name, rebuilt in the background when the
// source signals a change, so a query costs two map look-ups and one write.
// Serve starts a CoreDNS server with the plugin on a generated Corefile.
package dns

import (
	"net/netip"

	"github.com/miekg/dns"
)

// Record types a Record may have.
const (
	TypeA    = dns.TypeA
	TypeAAAA = dns.TypeAAAA
	TypePTR  = dns.TypePTR
)

// Defaults used when a Zone leaves a field zero.
const (
	// DefaultTTL is the TTL of records, SOA and NS when the zone sets none.
	DefaultTTL = 60
	// DefaultNegativeTTL is how long resolvers may cache NXDOMAIN and NODATA
	// answers (the SOA minimum) when the zone sets none. IPAM changes often,
	// so it is short.
	DefaultNegativeTTL = 30
)

// ZoneKind tells a forward zone from a reverse one.
type ZoneKind uint8

const (
	// ZoneForward holds A and AAAA records for host names.
	ZoneForward ZoneKind = iota
	// ZoneReverse holds PTR records; its name lies under in-addr.arpa. or ip6.arpa.
	ZoneReverse
)

// String returns "forward" or "reverse".
func (k ZoneKind) String() string {
	if k == ZoneReverse {
		return "reverse"
	}
	return "forward"
}

// Zone is one zone the plugin is authoritative for.
type Zone struct {
	// Name is the apex as a fully qualified domain name, such as "moxxie.test."
	// or "0.0.10.in-addr.arpa.". Case does not matter.
	Name string
	// Kind is ZoneForward or ZoneReverse. Forward zones serve A and AAAA
	// records, reverse zones PTR records.
	Kind ZoneKind
	// Serial is the SOA serial. It should grow whenever the zone's records
	// change; the store index of the zone's last change does.
	Serial uint32
	// NS lists the zone's name servers as fully qualified names. When empty,
	// "ns1." + Name is used.
	NS []string
	// Mbox is the SOA mailbox of the person responsible, as a domain name.
	// When empty, "hostmaster." + Name is used.
	Mbox string
	// TTL is the TTL of the SOA and NS records and of records without one of
	// their own; DefaultTTL when zero.
	TTL uint32
	// NegativeTTL is the SOA minimum, how long NXDOMAIN and NODATA answers may
	// be cached; DefaultNegativeTTL when zero.
	NegativeTTL uint32
}

// Record is one resource record to serve.
type Record struct {
	// Name is the owner as a fully qualified domain name. Case does not matter.
	Name string
	// Type is TypeA, TypeAAAA or TypePTR.
	Type uint16
	// Value is the address for A and AAAA records and the target name for PTR.
	Value string
	// TTL is the record's TTL; the zone's TTL when zero.
	TTL uint32
}

// Records is an immutable view of everything DNS serves. A Source builds a
// new one when IPAM changes and never modifies one it has handed out.
//
// A record belongs to the zone with the longest name that contains it.
// Records outside every zone, records of a type the zone's kind does not
// serve and records with a value that does not parse are skipped (and
// counted in the coredns_moxxie_skipped_records gauge).
type Records struct {
	Zones   []Zone
	Records []Record
	// Version is the source's version of these records, for
	// ChangeSource.Changes; zero for a Source that does not tell changes.
	Version uint64
}

// Source provides the records the plugin serves.
type Source interface {
	// Snapshot returns the current records and a channel that is closed
	// when they change. The plugin rebuilds its answers from the records,
	// waits for the channel and calls Snapshot again: a watch, not polling.
	// A nil *Records serves nothing.
	Snapshot() (*Records, <-chan struct{})
}

// A ChangeSource is a Source that can also tell how its records changed,
// so that the plugin changes the answers of those records alone instead
// of rebuilding every answer from a Snapshot: with many names, a change
// then shows in milliseconds, not in the seconds a rebuild takes.
type ChangeSource interface {
	Source
	// Changes returns the changes from version since to the current
	// version, in order, the current version, and a channel that is closed
	// when it changes. ok is false when the source cannot tell them (since
	// is too old, or the records were replaced whole in between): the
	// plugin then takes a Snapshot.
	Changes(since uint64) (changes []Change, version uint64, changed <-chan struct{}, ok bool)
}

// A GatedSource is a Source whose records may be older than what was
// served from it before, as those of a server replaying its log after a
// restart are: answers from them would drop names that exist and move
// the zones' SOA serials back. Until Current is true for the version of
// the records it serves, the plugin answers every query SERVFAIL, with
// the Extended DNS Error "Not Ready" (RFC 8914) for a client that sends
// EDNS, so that resolvers ask another server. Current must stay true for
// every later version once it is true for one.
type GatedSource interface {
	Source
	Current(version uint64) bool
}

// A ServedSource is told which of its versions the server answers from:
// Served is called with each version once its answers are in place, in
// the order the versions are taken (a rebuild may skip some). A version
// of a GatedSource that is not current is not served (every query is
// SERVFAIL), and Served is not called for it; the first current version
// tells of those before it.
type ServedSource interface {
	Source
	Served(version uint64)
}

// A Change takes a source's records from one version to the next. In
// order: the records of Remove are taken out, the zones named in
// RemoveZones stop being served, those of Zones start, and the records of
// Add are put in. Then every zone's SOA serial becomes Serial, when it is
// not zero. A record is removed as many times as it was added before it
// is no longer served.
//
// A record outside every zone is dropped when it is added, not kept for a
// zone that comes later: a change that adds a zone adds the zone's
// records with it, and one that removes a zone removes its records first
// (and adds them again if another zone now holds them). A zone that comes
// or goes while names of the zone around it lie under its apex makes the
// plugin rebuild its answers from a Snapshot.
type Change struct {
	Serial      uint32
	Remove      []Record
	RemoveZones []string
	Zones       []Zone
	Add         []Record
}

// HostRecords returns the records of an address with a DNS name: A or AAAA
// for name, and PTR for the address's reverse name. Serving the PTR record
// needs a reverse zone that contains it (see ReverseZones); without one it is
// skipped. A zero TTL means the zone's TTL.
func HostRecords(name string, addr netip.Addr, ttl uint32) []Record {
	addr = addr.Unmap()
	typ := uint16(TypeAAAA)
	if addr.Is4() {
		typ = TypeA
	}
	return []Record{
		{Name: name, Type: typ, Value: addr.String(), TTL: ttl},
		{Name: ReverseName(addr), Type: TypePTR, Value: name, TTL: ttl},
	}
}
