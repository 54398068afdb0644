package fsm

import (
	"encoding/json"
	"math/big"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/ipam"
)

// Table names of the IPAM part of the schema.
const (
	tableVRFs        = "ipam_vrfs"
	tablePrefixes    = "ipam_prefixes"
	tableIPRanges    = "ipam_ranges"
	tableAddresses   = "ipam_addresses"
	tablePools       = "ipam_pools"
	tableIDAllocs    = "ipam_id_allocations"
	tableZones       = "dns_zones"
	tableSpaces      = "ipam_spaces"
	tableRuns        = "ipam_runs"
	tableHolds       = "ipam_holds"
	tableIPAMClock   = "ipam_clock"
	ipamClockID      = "clock"
	quarantineSetKey = "ipam.quarantine"
	// indexDNSNames is no table: its row in the index table holds the
	// raft index of the last change of an address with a dns_name before
	// or after it (DNSData.Index), from a DNSSerialMarkRequest on.
	indexDNSNames = "dns_names"
	// indexDNSSerialMark is no table either: its row holds the index of
	// the DNSSerialMarkRequest, whose presence says the state is marked.
	indexDNSSerialMark = "dns_serial_mark"
)

// DefaultVRF is the VRF every prefix belongs to unless it names another.
// It always exists and cannot be deleted.
const DefaultVRF = "global"

// Prefix statuses. Only a container holds child prefixes; only an active
// prefix holds addresses.
const (
	PrefixActive    = "active"
	PrefixContainer = "container"
)

// Address statuses.
const (
	AddressActive     = "active"
	AddressReserved   = "reserved"
	AddressDeprecated = "deprecated"
)

// Kinds of ID pools.
const (
	PoolVLAN = "vlan"
	PoolVNI  = "vni"
)

// Timestamp is a leader time in Unix nanoseconds. It is stored as an
// integer and shown in JSON as an RFC 3339 time, like every time in the API.
type Timestamp int64

// Time returns t as a time in UTC; zero is the zero time.
func (t Timestamp) Time() time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(t)).UTC()
}

// MarshalJSON writes t as an RFC 3339 time in UTC. The formatted time
// needs no escaping, so it is quoted directly (answers carry two per
// address).
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return t.appendJSON(make([]byte, 0, len(time.RFC3339Nano)+2)), nil
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	*t = Timestamp(v.UnixNano())
	return nil
}

// VRF is an address space: prefixes in different VRFs may overlap.
type VRF struct {
	ID          string    `json:"id"`
	Description string    `json:"description,omitempty"`
	Tenant      string    `json:"tenant,omitempty"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
	CreatedAt   Timestamp `json:"created_at,omitzero"` // zero for the implicit default VRF
}

// Prefix is an IPv4 or IPv6 prefix in a VRF. A container holds child
// prefixes; an active prefix holds addresses and IP ranges. Within a VRF
// prefixes nest only under containers and never overlap otherwise.
type Prefix struct {
	ID     string `json:"id"`
	Prefix string `json:"prefix"`
	VRF    string `json:"vrf"`
	Status string `json:"status"`
	// IsPool makes every address of an active prefix usable, network and
	// broadcast included.
	IsPool bool `json:"is_pool"`
	// ParentID is the container this prefix lies in, empty at the top.
	ParentID    string    `json:"parent_id,omitempty"`
	Tenant      string    `json:"tenant,omitempty"`
	Project     string    `json:"project,omitempty" codec:",omitempty"`
	Gateway     string    `json:"gateway,omitempty"`
	Description string    `json:"description,omitempty"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
	CreatedAt   Timestamp `json:"created_at"`
	UpdatedAt   Timestamp `json:"updated_at"`
}

// PrefixView is a prefix as reads and writes return it: with its
// utilization, computed when it is read.
type PrefixView struct {
	*Prefix
	Utilization *Utilization `json:"utilization"`
}

// Utilization says how much of a prefix or pool is taken: addresses of an
// active prefix (allocated, reserved, in IP ranges or in quarantine),
// child blocks of a container, IDs of a pool. Used and Size are exact
// integers (a /64 has 2^64 addresses); Percent is for display.
type Utilization struct {
	Used    json.Number `json:"used"`
	Size    json.Number `json:"size"`
	Percent float64     `json:"percent"`
}

// IPRange is a range of addresses inside an active prefix kept out of
// allocation, such as a DHCP range.
type IPRange struct {
	ID          string    `json:"id"`
	PrefixID    string    `json:"prefix_id"`
	Start       string    `json:"start_address"`
	End         string    `json:"end_address"`
	Description string    `json:"description,omitempty"`
	CreateIndex uint64    `json:"create_index"`
	CreatedAt   Timestamp `json:"created_at"`
}

// Address is one IP address handed out from an active prefix. Address is
// the bare IP; the mask comes from the prefix.
type Address struct {
	ID          string    `json:"id"`
	Address     string    `json:"address"`
	PrefixID    string    `json:"prefix_id"`
	VRF         string    `json:"vrf"`
	Status      string    `json:"status"`
	DNSName     string    `json:"dns_name,omitempty"`
	Tenant      string    `json:"tenant,omitempty"`
	Project     string    `json:"project,omitempty"`
	Owner       string    `json:"owner,omitempty"`
	Description string    `json:"description,omitempty"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
	CreatedAt   Timestamp `json:"created_at"`
	UpdatedAt   Timestamp `json:"updated_at"`
}

// Pool is a VLAN group or a VNI pool: ranges of integer IDs handed out one
// at a time.
type Pool struct {
	ID          string         `json:"id"`
	Kind        string         `json:"kind"`
	Name        string         `json:"name"`
	Ranges      []ipam.IDRange `json:"ranges"`
	Tenant      string         `json:"tenant,omitempty"`
	Description string         `json:"description,omitempty"`
	CreateIndex uint64         `json:"create_index"`
	ModifyIndex uint64         `json:"modify_index"`
	CreatedAt   Timestamp      `json:"created_at"`
}

// PoolView is a pool with its utilization.
type PoolView struct {
	*Pool
	Utilization *Utilization `json:"utilization"`
}

// IDAllocation is a VLAN ID or VNI taken from a pool. Number is shown as
// "vid" for VLANs and "vni" for VNIs.
type IDAllocation struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	PoolID      string    `json:"pool_id"`
	Number      int       `json:"-" codec:"Number"`
	Name        string    `json:"name,omitempty"`
	Tenant      string    `json:"tenant,omitempty"`
	Project     string    `json:"project,omitempty" codec:",omitempty"`
	Owner       string    `json:"owner,omitempty"`
	Description string    `json:"description,omitempty"`
	CreateIndex uint64    `json:"create_index"`
	CreatedAt   Timestamp `json:"created_at"`
	// ModifyIndex and UpdatedAt are those of its last update, zero (and
	// left out of JSON) until the first.
	ModifyIndex uint64    `json:"modify_index,omitempty" codec:",omitempty"`
	UpdatedAt   Timestamp `json:"updated_at,omitzero" codec:",omitempty"`
}

// MarshalJSON writes Number as "vid" or "vni" after the kind.
func (a *IDAllocation) MarshalJSON() ([]byte, error) {
	type plain IDAllocation
	v := struct {
		*plain
		VID int `json:"vid,omitempty"`
		VNI int `json:"vni,omitempty"`
	}{plain: (*plain)(a)}
	if a.Kind == PoolVNI {
		v.VNI = a.Number
	} else {
		v.VID = a.Number
	}
	return json.Marshal(v)
}

// Zone is a forward DNS zone whose names are served from the addresses'
// dns_name. Reverse zones come from the active prefixes.
type Zone struct {
	// ID is the zone's name, lower case, without the trailing dot.
	ID          string    `json:"id"`
	Tenant      string    `json:"tenant,omitempty"`
	TTL         uint32    `json:"ttl"`
	Description string    `json:"description,omitempty"`
	CreateIndex uint64    `json:"create_index"`
	CreatedAt   Timestamp `json:"created_at"`
	// ModifyIndex and UpdatedAt are those of its last update, zero (and
	// left out of JSON) until the first.
	ModifyIndex uint64    `json:"modify_index,omitempty" codec:",omitempty"`
	UpdatedAt   Timestamp `json:"updated_at,omitzero" codec:",omitempty"`
}

// spaceUsage stores how many keys of one allocation space are used.
//
// txn is the write transaction that made the row, as in Usage: until it
// commits no reader can see the row, so later writes in it change the row
// in place. A batch of allocations from one prefix then stores its usage
// once instead of once per allocation.
type spaceUsage struct {
	ID   string
	Used ipam.Key

	txn *memdb.Txn
}

// storedRun is one run of used keys of a space. Like spaceUsage, a run
// that txn made is extended in place by later writes in txn: a batch of
// allocations that grow one run writes it once.
type storedRun struct {
	Space      string
	Start, End ipam.Key

	txn *memdb.Txn
}

// storedHold is a quarantined key.
type storedHold struct {
	Space string
	Key   ipam.Key
	Until int64
}

// ipamClock keeps the greatest leader time an IPAM command carried, so a
// new leader whose clock lags cannot make quarantine run backwards.
type ipamClock struct {
	ID  string
	Now int64
}

// utilization returns used out of size as a Utilization.
func utilization(used, size *big.Int) *Utilization {
	u := &Utilization{Used: json.Number(used.String()), Size: json.Number(size.String())}
	if size.Sign() > 0 {
		f, _ := new(big.Rat).SetFrac(used, size).Float64()
		u.Percent = float64(int64(f*10000+0.5)) / 100
		if u.Percent == 100 && used.Cmp(size) < 0 {
			u.Percent = 99.99 // not full: an alert on 100 must not fire
		}
	}
	return u
}

// Space identifiers: one per prefix for its addresses, one per container
// for its children, one per VRF and family for top-level prefixes, one per
// pool.
func addrSpaceID(prefixID string) string  { return "p/" + prefixID + "/a" }
func blockSpaceID(prefixID string) string { return "p/" + prefixID + "/b" }
func poolSpaceID(poolID string) string    { return "g/" + poolID }
func rootSpaceID(vrf string, is4 bool) string {
	if is4 {
		return "v/" + vrf + "/4"
	}
	return "v/" + vrf + "/6"
}

// prefixIDOfAddrSpace returns the prefix ID in an address space ID.
func prefixIDOfAddrSpace(space string) (string, bool) {
	if len(space) < 5 || space[:2] != "p/" || space[len(space)-2:] != "/a" {
		return "", false
	}
	return space[2 : len(space)-2], true
}
