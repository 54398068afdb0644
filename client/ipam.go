package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// Paths of the IPAM and DNS API (docs/ipam.md).
const (
	vrfsPath       = "/v1/ipam/vrfs"
	prefixesPath   = "/v1/ipam/prefixes"
	ipRangesPath   = "/v1/ipam/ip-ranges"
	addressesPath  = "/v1/ipam/addresses"
	vlanGroupsPath = "/v1/ipam/vlan-groups"
	vlansPath      = "/v1/ipam/vlans"
	vniPoolsPath   = "/v1/ipam/vni-pools"
	vnisPath       = "/v1/ipam/vnis"
	zonesPath      = "/v1/dns/zones"
)

// Prefix statuses.
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

// VRF is an address space: prefixes in different VRFs may overlap. The VRF
// "global" always exists.
type VRF struct {
	ID          string `json:"id"`
	Description string `json:"description,omitempty"`
	Tenant      string `json:"tenant,omitempty"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
	CreatedAt   Time   `json:"created_at,omitzero"`
}

// VRFRequest describes a VRF to create.
type VRFRequest struct {
	ID          string `json:"id"`
	Description string `json:"description,omitempty"`
	Tenant      string `json:"tenant,omitempty"`
}

// Utilization says how much of a prefix or pool is taken. Used and Size are
// exact integers, kept as decimal strings because an IPv6 prefix can hold
// more addresses than any Go integer; Percent is for display.
type Utilization struct {
	Used    json.Number `json:"used"`
	Size    json.Number `json:"size"`
	Percent float64     `json:"percent"`
}

// Prefix is an IPv4 or IPv6 prefix in a VRF. A container holds child
// prefixes; an active prefix holds addresses.
type Prefix struct {
	ID     string `json:"id"`
	Prefix string `json:"prefix"`
	VRF    string `json:"vrf"`
	Status string `json:"status"`
	// IsPool makes every address of an active prefix usable.
	IsPool bool `json:"is_pool"`
	// ParentID is the container the prefix lies in, empty at the top.
	ParentID string `json:"parent_id,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
	// Project is a project of Tenant the prefix counts against.
	Project     string       `json:"project,omitempty"`
	Gateway     string       `json:"gateway,omitempty"`
	Description string       `json:"description,omitempty"`
	Utilization *Utilization `json:"utilization,omitempty"`
	CreateIndex uint64       `json:"create_index"`
	ModifyIndex uint64       `json:"modify_index"`
	CreatedAt   Time         `json:"created_at,omitzero"`
	UpdatedAt   Time         `json:"updated_at,omitzero"`
}

// PrefixRequest describes a prefix to create. Empty fields take the
// server's defaults (VRF "global", status "active").
type PrefixRequest struct {
	Prefix string `json:"prefix"`
	VRF    string `json:"vrf,omitempty"`
	// Status is PrefixActive or PrefixContainer.
	Status string `json:"status,omitempty"`
	IsPool bool   `json:"is_pool,omitempty"`
	Tenant string `json:"tenant,omitempty"`
	// Project is a project of Tenant, which must exist.
	Project string `json:"project,omitempty"`
	// Gateway, when set, is reserved in the new prefix.
	Gateway     string `json:"gateway,omitempty"`
	Description string `json:"description,omitempty"`
}

// PrefixUpdate changes the descriptive fields of a prefix, or whether it
// is a pool; nil fields are left alone, an empty string clears one.
type PrefixUpdate struct {
	Tenant      *string `json:"tenant,omitempty"`
	Project     *string `json:"project,omitempty"`
	Description *string `json:"description,omitempty"`
	IsPool      *bool   `json:"is_pool,omitempty"`
}

// PrefixFilter selects prefixes to list; empty fields select all.
type PrefixFilter struct {
	VRF      string
	Tenant   string
	ParentID string
	Status   string
	// Family is 4 or 6; zero lists both.
	Family int
	// Contains is an IP or CIDR the prefixes must contain.
	Contains string
}

func (f PrefixFilter) values() url.Values {
	v := url.Values{}
	setNonEmpty(v, "vrf", f.VRF)
	setNonEmpty(v, "tenant", f.Tenant)
	setNonEmpty(v, "parent_id", f.ParentID)
	setNonEmpty(v, "status", f.Status)
	if f.Family != 0 {
		v.Set("family", strconv.Itoa(f.Family))
	}
	setNonEmpty(v, "contains", f.Contains)
	return v
}

// AllocateRequest describes addresses to take from a prefix. With Address
// set it takes that address (Count must then be 0 or 1); otherwise the
// Count lowest free ones, all or none.
type AllocateRequest struct {
	// Count is how many addresses to take; zero means one.
	Count   int    `json:"count,omitempty"`
	Address string `json:"address,omitempty"`
	// Fallback takes the next free address when Address is taken.
	Fallback bool `json:"fallback,omitempty"`
	// Force takes an address still in quarantine.
	Force   bool   `json:"force,omitempty"`
	Status  string `json:"status,omitempty"`
	DNSName string `json:"dns_name,omitempty"`
	Tenant  string `json:"tenant,omitempty"`
	// Project is a project of Tenant, which must exist; the addresses
	// count against its quota and the tenant's.
	Project     string `json:"project,omitempty"`
	Owner       string `json:"owner,omitempty"`
	Description string `json:"description,omitempty"`
}

// PrefixAllocateRequest describes a child prefix to take from a container:
// the lowest free block of PrefixLength bits.
type PrefixAllocateRequest struct {
	PrefixLength int    `json:"prefix_length"`
	Status       string `json:"status,omitempty"`
	IsPool       bool   `json:"is_pool,omitempty"`
	Tenant       string `json:"tenant,omitempty"`
	Project      string `json:"project,omitempty"`
	Description  string `json:"description,omitempty"`
}

// IPRange is a range of an active prefix kept out of allocation, such as a
// DHCP range.
type IPRange struct {
	ID           string `json:"id"`
	PrefixID     string `json:"prefix_id"`
	StartAddress string `json:"start_address"`
	EndAddress   string `json:"end_address"`
	Description  string `json:"description,omitempty"`
	CreateIndex  uint64 `json:"create_index"`
	CreatedAt    Time   `json:"created_at,omitzero"`
}

// IPRangeRequest describes an IP range to create.
type IPRangeRequest struct {
	PrefixID     string `json:"prefix_id"`
	StartAddress string `json:"start_address"`
	EndAddress   string `json:"end_address"`
	Description  string `json:"description,omitempty"`
}

// Address is one IP of an active prefix. Address is the bare IP; the mask
// comes from the prefix.
type Address struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	PrefixID string `json:"prefix_id"`
	VRF      string `json:"vrf"`
	Status   string `json:"status"`
	DNSName  string `json:"dns_name,omitempty"`
	Tenant   string `json:"tenant,omitempty"`
	// Project is a project of Tenant; the address counts against its
	// quota and the tenant's.
	Project     string `json:"project,omitempty"`
	Owner       string `json:"owner,omitempty"`
	Description string `json:"description,omitempty"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
	CreatedAt   Time   `json:"created_at,omitzero"`
	UpdatedAt   Time   `json:"updated_at,omitzero"`
}

// AddressRequest takes one given address; the server finds the active
// prefix of VRF that contains it.
type AddressRequest struct {
	Address string `json:"address"`
	VRF     string `json:"vrf,omitempty"`
	// Fallback takes the next free address of the prefix when Address is
	// taken.
	Fallback bool `json:"fallback,omitempty"`
	// Force takes an address still in quarantine.
	Force   bool   `json:"force,omitempty"`
	Status  string `json:"status,omitempty"`
	DNSName string `json:"dns_name,omitempty"`
	Tenant  string `json:"tenant,omitempty"`
	// Project is a project of the tenant the address counts against.
	Project     string `json:"project,omitempty"`
	Owner       string `json:"owner,omitempty"`
	Description string `json:"description,omitempty"`
}

// AddressUpdate changes fields of an address; nil fields are left alone,
// an empty string clears one.
type AddressUpdate struct {
	Status  *string `json:"status,omitempty"`
	DNSName *string `json:"dns_name,omitempty"`
	Tenant  *string `json:"tenant,omitempty"`
	// Project moves the address to a project of its tenant; clearing the
	// tenant clears the project too.
	Project     *string `json:"project,omitempty"`
	Owner       *string `json:"owner,omitempty"`
	Description *string `json:"description,omitempty"`
}

// AddressFilter selects addresses to list; empty fields select all.
type AddressFilter struct {
	PrefixID string
	VRF      string
	// Address selects the addresses at this IP (in every VRF unless VRF
	// is set).
	Address string
	Tenant  string
	Owner   string
	DNSName string
	Status  string
	// Limit bounds the number of addresses; zero is the server's default.
	Limit int
	// After resumes a listing after a page: the Next of that page
	// (AddressListPage).
	After string
}

// setPage sets the paging parameters of a listing: limit when positive,
// after when given.
func setPage(v url.Values, limit int, after string) {
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	setNonEmpty(v, "after", after)
}

func (f AddressFilter) values() url.Values {
	v := url.Values{}
	setNonEmpty(v, "prefix_id", f.PrefixID)
	setNonEmpty(v, "vrf", f.VRF)
	setNonEmpty(v, "address", f.Address)
	setNonEmpty(v, "tenant", f.Tenant)
	setNonEmpty(v, "owner", f.Owner)
	setNonEmpty(v, "dns_name", f.DNSName)
	setNonEmpty(v, "status", f.Status)
	setPage(v, f.Limit, f.After)
	return v
}

// AddressPage is one page of an address listing.
type AddressPage struct {
	Addresses []Address `json:"addresses"`
	// Next, when the filter's Limit cut the listing short, is the After
	// of the next page; empty on the last one.
	Next string `json:"next,omitempty"`
}

// AddressRelease is the answer to releasing an address.
type AddressRelease struct {
	Address Address `json:"address"`
	// QuarantinedUntil is when the address may be handed out again; zero
	// when it was released with force or quarantine is off.
	QuarantinedUntil Time `json:"quarantined_until,omitzero"`
}

// Kinds of ID pools.
const (
	PoolVLAN = "vlan"
	PoolVNI  = "vni"
)

// IDRange is an inclusive range of VLAN IDs or VNIs.
type IDRange struct {
	First int `json:"first"`
	Last  int `json:"last"`
}

// Pool is a VLAN group or a VNI pool: ranges of IDs handed out one at a
// time.
type Pool struct {
	ID string `json:"id"`
	// Kind is PoolVLAN or PoolVNI.
	Kind        string       `json:"kind"`
	Name        string       `json:"name"`
	Ranges      []IDRange    `json:"ranges"`
	Tenant      string       `json:"tenant,omitempty"`
	Description string       `json:"description,omitempty"`
	Utilization *Utilization `json:"utilization,omitempty"`
	CreateIndex uint64       `json:"create_index"`
	ModifyIndex uint64       `json:"modify_index"`
	CreatedAt   Time         `json:"created_at,omitzero"`
}

// PoolRequest describes a VLAN group or VNI pool to create. No ranges
// means the whole ID space of the kind.
type PoolRequest struct {
	Name        string    `json:"name"`
	Ranges      []IDRange `json:"ranges,omitempty"`
	Tenant      string    `json:"tenant,omitempty"`
	Description string    `json:"description,omitempty"`
}

// PoolUpdate changes a VLAN group or VNI pool; nil fields stay as they
// are. New ranges must hold every ID the pool has handed out.
type PoolUpdate struct {
	Name        *string    `json:"name,omitempty"`
	Ranges      *[]IDRange `json:"ranges,omitempty"`
	Description *string    `json:"description,omitempty"`
	Tenant      *string    `json:"tenant,omitempty"`
}

// IDUpdate changes a VLAN or a VNI (PATCH /v1/ipam/vlans/{id},
// /v1/ipam/vnis/{id}); nil fields stay as they are, "" clears one.
type IDUpdate struct {
	Name   *string `json:"name,omitempty"`
	Tenant *string `json:"tenant,omitempty"`
	// Project moves it to a project of its tenant; clearing the tenant
	// clears the project too.
	Project     *string `json:"project,omitempty"`
	Owner       *string `json:"owner,omitempty"`
	Description *string `json:"description,omitempty"`
}

// VLAN is a VLAN ID taken from a VLAN group.
type VLAN struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	PoolID      string `json:"pool_id"`
	VID         int    `json:"vid"`
	Name        string `json:"name,omitempty"`
	Tenant      string `json:"tenant,omitempty"`
	Project     string `json:"project,omitempty"`
	Owner       string `json:"owner,omitempty"`
	Description string `json:"description,omitempty"`
	CreateIndex uint64 `json:"create_index"`
	CreatedAt   Time   `json:"created_at,omitzero"`
	// ModifyIndex and UpdatedAt are those of its last update, zero until
	// the first.
	ModifyIndex uint64 `json:"modify_index,omitempty"`
	UpdatedAt   Time   `json:"updated_at,omitzero"`
}

// VNI is a VXLAN network identifier taken from a VNI pool.
type VNI struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	PoolID      string `json:"pool_id"`
	VNI         int    `json:"vni"`
	Name        string `json:"name,omitempty"`
	Tenant      string `json:"tenant,omitempty"`
	Project     string `json:"project,omitempty"`
	Owner       string `json:"owner,omitempty"`
	Description string `json:"description,omitempty"`
	CreateIndex uint64 `json:"create_index"`
	CreatedAt   Time   `json:"created_at,omitzero"`
	// ModifyIndex and UpdatedAt are those of its last update, zero until
	// the first.
	ModifyIndex uint64 `json:"modify_index,omitempty"`
	UpdatedAt   Time   `json:"updated_at,omitzero"`
}

// IDAllocateRequest describes a VLAN ID or VNI to take from a pool: Number
// when it is not zero (with Fallback the next free one when it is taken),
// the lowest free one otherwise.
type IDAllocateRequest struct {
	Number      int
	Fallback    bool
	Name        string
	Tenant      string
	Project     string
	Owner       string
	Description string
}

// body returns the request body, with Number sent as numberField ("vid" or
// "vni").
func (r IDAllocateRequest) body(numberField string) map[string]any {
	b := map[string]any{}
	if r.Number != 0 {
		b[numberField] = r.Number
	}
	if r.Fallback {
		b["fallback"] = true
	}
	for k, v := range map[string]string{"name": r.Name, "tenant": r.Tenant, "project": r.Project, "owner": r.Owner, "description": r.Description} {
		if v != "" {
			b[k] = v
		}
	}
	return b
}

// IDFilter selects VLANs or VNIs to list; empty fields select all.
type IDFilter struct {
	// PoolID is the VLAN group or VNI pool, by ID or name.
	PoolID string
	Tenant string
	// Limit bounds the number listed; zero lists all.
	Limit int
	// After resumes a listing after a page: the Next of that page
	// (VLANListPage, VNIListPage).
	After string
}

func (f IDFilter) values(pool string) url.Values {
	v := url.Values{}
	setNonEmpty(v, pool, f.PoolID)
	setNonEmpty(v, "tenant", f.Tenant)
	setPage(v, f.Limit, f.After)
	return v
}

// VLANPage is a page of a VLAN listing.
type VLANPage struct {
	VLANs []VLAN `json:"vlans"`
	// Next, when the filter's Limit cut the listing short, is the After
	// of the next page; empty on the last one.
	Next string `json:"next,omitempty"`
}

// VNIPage is a page of a VNI listing, as VLANPage.
type VNIPage struct {
	VNIs []VNI  `json:"vnis"`
	Next string `json:"next,omitempty"`
}

// Zone is a forward DNS zone: addresses whose dns_name lies in it are
// served as A and AAAA records.
type Zone struct {
	// ID is the zone's name, such as "moxxie.test".
	ID          string `json:"id"`
	TTL         uint32 `json:"ttl"`
	Tenant      string `json:"tenant,omitempty"`
	Description string `json:"description,omitempty"`
	CreateIndex uint64 `json:"create_index"`
	CreatedAt   Time   `json:"created_at,omitzero"`
	// ModifyIndex and UpdatedAt are those of its last update, zero until
	// the first.
	ModifyIndex uint64 `json:"modify_index,omitempty"`
	UpdatedAt   Time   `json:"updated_at,omitzero"`
}

// ZoneUpdate is a change of a DNS zone; nil fields are left alone, and
// an empty description clears it.
type ZoneUpdate struct {
	TTL         *uint32 `json:"ttl,omitempty"`
	Description *string `json:"description,omitempty"`
}

// ZoneRequest describes a DNS zone to create. A zero TTL takes the
// server's default.
type ZoneRequest struct {
	Name        string `json:"name"`
	TTL         uint32 `json:"ttl,omitempty"`
	Tenant      string `json:"tenant,omitempty"`
	Description string `json:"description,omitempty"`
}

// VRFList lists the VRFs (GET /v1/ipam/vrfs).
func (c *Client) VRFList(ctx context.Context, q *QueryOptions) ([]VRF, *Meta, error) {
	return getList[VRF](ctx, c, vrfsPath, "vrfs", nil, q)
}

// VRFCreate creates a VRF (POST /v1/ipam/vrfs).
func (c *Client) VRFCreate(ctx context.Context, req VRFRequest, w *WriteOptions) (*VRF, *Meta, error) {
	return writeOne[VRF](ctx, c, http.MethodPost, vrfsPath, req, w)
}

// VRFGet reads a VRF (GET /v1/ipam/vrfs/{id}).
func (c *Client) VRFGet(ctx context.Context, id string, q *QueryOptions) (*VRF, *Meta, error) {
	return getOne[VRF](ctx, c, itemPath(vrfsPath, id), nil, q)
}

// VRFDelete deletes a VRF that holds no prefixes (DELETE
// /v1/ipam/vrfs/{id}) and returns it as it was.
func (c *Client) VRFDelete(ctx context.Context, id string, w *WriteOptions) (*VRF, *Meta, error) {
	return writeOne[VRF](ctx, c, http.MethodDelete, itemPath(vrfsPath, id), nil, w)
}

// PrefixList lists the prefixes f selects (GET /v1/ipam/prefixes).
func (c *Client) PrefixList(ctx context.Context, f PrefixFilter, q *QueryOptions) ([]Prefix, *Meta, error) {
	return getList[Prefix](ctx, c, prefixesPath, "prefixes", f.values(), q)
}

// PrefixCreate creates a prefix (POST /v1/ipam/prefixes).
func (c *Client) PrefixCreate(ctx context.Context, req PrefixRequest, w *WriteOptions) (*Prefix, *Meta, error) {
	return writeOne[Prefix](ctx, c, http.MethodPost, prefixesPath, req, w)
}

// PrefixGet reads a prefix with its utilization (GET
// /v1/ipam/prefixes/{id}).
func (c *Client) PrefixGet(ctx context.Context, id string, q *QueryOptions) (*Prefix, *Meta, error) {
	return getOne[Prefix](ctx, c, itemPath(prefixesPath, id), nil, q)
}

// PrefixUpdate changes the tenant or description of a prefix (PATCH
// /v1/ipam/prefixes/{id}).
func (c *Client) PrefixUpdate(ctx context.Context, id string, u PrefixUpdate, w *WriteOptions) (*Prefix, *Meta, error) {
	return writeOne[Prefix](ctx, c, http.MethodPatch, itemPath(prefixesPath, id), u, w)
}

// PrefixDelete deletes a prefix that holds no addresses and no children
// (DELETE /v1/ipam/prefixes/{id}) and returns it as it was.
func (c *Client) PrefixDelete(ctx context.Context, id string, o PrefixDeleteOptions, w *WriteOptions) (*Prefix, *Meta, error) {
	r := newWrite(http.MethodDelete, itemPath(prefixesPath, id), w.key())
	r.query = url.Values{}
	if o.Force {
		r.query.Set("force", "true")
	}
	if o.Reparent {
		r.query.Set("reparent", "true")
	}
	return decodeOne[Prefix](ctx, c, r)
}

// PrefixDeleteOptions tune a prefix deletion.
type PrefixDeleteOptions struct {
	// Force deletes the prefix even while released addresses of it are in
	// quarantine, which goes with it.
	Force bool
	// Reparent deletes a container that holds child prefixes, handing
	// them to its parent (or the VRF's top level).
	Reparent bool
}

// PrefixAllocate takes addresses from an active prefix (POST
// /v1/ipam/prefixes/{id}/allocate). Like every write it carries an
// Idempotency-Key, so a retry returns the addresses of the first attempt.
func (c *Client) PrefixAllocate(ctx context.Context, id string, req AllocateRequest, w *WriteOptions) ([]Address, *Meta, error) {
	return writeList[Address](ctx, c, itemPath(prefixesPath, id)+"/allocate", "addresses", req, w)
}

// PrefixAllocatePrefix takes the lowest free child prefix of the given
// length from a container (POST /v1/ipam/prefixes/{id}/allocate-prefix).
func (c *Client) PrefixAllocatePrefix(ctx context.Context, id string, req PrefixAllocateRequest, w *WriteOptions) (*Prefix, *Meta, error) {
	return writeOne[Prefix](ctx, c, http.MethodPost, itemPath(prefixesPath, id)+"/allocate-prefix", req, w)
}

// PrefixAvailable lists up to limit free addresses of an active prefix, or
// free CIDRs of a container (GET /v1/ipam/prefixes/{id}/available). Zero
// limit is the server's default.
func (c *Client) PrefixAvailable(ctx context.Context, id string, limit int, q *QueryOptions) ([]string, *Meta, error) {
	var v url.Values
	if limit > 0 {
		v = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	return getList[string](ctx, c, itemPath(prefixesPath, id)+"/available", "available", v, q)
}

// IPRangeList lists the IP ranges, of one prefix when prefixID is set (GET
// /v1/ipam/ip-ranges).
func (c *Client) IPRangeList(ctx context.Context, prefixID string, q *QueryOptions) ([]IPRange, *Meta, error) {
	v := url.Values{}
	setNonEmpty(v, "prefix_id", prefixID)
	return getList[IPRange](ctx, c, ipRangesPath, "ip_ranges", v, q)
}

// IPRangeGet reads an IP range (GET /v1/ipam/ip-ranges/{id}).
func (c *Client) IPRangeGet(ctx context.Context, id string, q *QueryOptions) (*IPRange, *Meta, error) {
	return getOne[IPRange](ctx, c, itemPath(ipRangesPath, id), nil, q)
}

// IPRangeCreate keeps a range of an active prefix out of allocation (POST
// /v1/ipam/ip-ranges).
func (c *Client) IPRangeCreate(ctx context.Context, req IPRangeRequest, w *WriteOptions) (*IPRange, *Meta, error) {
	return writeOne[IPRange](ctx, c, http.MethodPost, ipRangesPath, req, w)
}

// IPRangeDelete returns an IP range to allocation (DELETE
// /v1/ipam/ip-ranges/{id}).
func (c *Client) IPRangeDelete(ctx context.Context, id string, w *WriteOptions) (*IPRange, *Meta, error) {
	return writeOne[IPRange](ctx, c, http.MethodDelete, itemPath(ipRangesPath, id), nil, w)
}

// AddressList lists the addresses f selects (GET /v1/ipam/addresses).
func (c *Client) AddressList(ctx context.Context, f AddressFilter, q *QueryOptions) ([]Address, *Meta, error) {
	return getList[Address](ctx, c, addressesPath, "addresses", f.values(), q)
}

// AddressListPage lists a page of the addresses f selects: at most
// f.Limit of them, after f.After (GET /v1/ipam/addresses).
func (c *Client) AddressListPage(ctx context.Context, f AddressFilter, q *QueryOptions) (*AddressPage, *Meta, error) {
	var out AddressPage
	m, err := c.call(ctx, readRequest(addressesPath, f.values(), q), &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, m, nil
}

// AddressCreate takes a given address from the active prefix containing it
// (POST /v1/ipam/addresses). With Fallback the answer may hold another
// address of that prefix.
func (c *Client) AddressCreate(ctx context.Context, req AddressRequest, w *WriteOptions) ([]Address, *Meta, error) {
	return writeList[Address](ctx, c, addressesPath, "addresses", req, w)
}

// AddressGet reads an address (GET /v1/ipam/addresses/{id}).
func (c *Client) AddressGet(ctx context.Context, id string, q *QueryOptions) (*Address, *Meta, error) {
	return getOne[Address](ctx, c, itemPath(addressesPath, id), nil, q)
}

// AddressUpdate changes fields of an address (PATCH
// /v1/ipam/addresses/{id}).
func (c *Client) AddressUpdate(ctx context.Context, id string, u AddressUpdate, w *WriteOptions) (*Address, *Meta, error) {
	return writeOne[Address](ctx, c, http.MethodPatch, itemPath(addressesPath, id), u, w)
}

// AddressRelease releases an address (DELETE /v1/ipam/addresses/{id}). It
// stays in quarantine for the ipam.quarantine setting unless force is set.
func (c *Client) AddressRelease(ctx context.Context, id string, force bool, w *WriteOptions) (*AddressRelease, *Meta, error) {
	return decodeOne[AddressRelease](ctx, c, deleteRequest(itemPath(addressesPath, id), force, w))
}

// decodeOne makes request r and decodes its answer.
func decodeOne[T any](ctx context.Context, c *Client, r *request) (*T, *Meta, error) {
	var out T
	m, err := c.call(ctx, r, &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, m, nil
}

// VLANGroupList lists the VLAN groups (GET /v1/ipam/vlan-groups).
func (c *Client) VLANGroupList(ctx context.Context, q *QueryOptions) ([]Pool, *Meta, error) {
	return getList[Pool](ctx, c, vlanGroupsPath, "vlan_groups", nil, q)
}

// VLANGroupCreate creates a VLAN group (POST /v1/ipam/vlan-groups); no
// ranges means 1-4094.
func (c *Client) VLANGroupCreate(ctx context.Context, req PoolRequest, w *WriteOptions) (*Pool, *Meta, error) {
	return writeOne[Pool](ctx, c, http.MethodPost, vlanGroupsPath, req, w)
}

// VLANGroupGet reads a VLAN group by ID or name (GET
// /v1/ipam/vlan-groups/{id}).
func (c *Client) VLANGroupGet(ctx context.Context, idOrName string, q *QueryOptions) (*Pool, *Meta, error) {
	return getOne[Pool](ctx, c, itemPath(vlanGroupsPath, idOrName), nil, q)
}

// VLANGroupUpdate changes a VLAN group given by ID or name (PATCH
// /v1/ipam/vlan-groups/{id}).
func (c *Client) VLANGroupUpdate(ctx context.Context, idOrName string, u PoolUpdate, w *WriteOptions) (*Pool, *Meta, error) {
	return writeOne[Pool](ctx, c, http.MethodPatch, itemPath(vlanGroupsPath, idOrName), u, w)
}

// VLANGroupDelete deletes a VLAN group by ID or name (DELETE
// /v1/ipam/vlan-groups/{id}).
func (c *Client) VLANGroupDelete(ctx context.Context, idOrName string, w *WriteOptions) (*Pool, *Meta, error) {
	return writeOne[Pool](ctx, c, http.MethodDelete, itemPath(vlanGroupsPath, idOrName), nil, w)
}

// VLANAllocate takes a VLAN ID from a group given by ID or name (POST
// /v1/ipam/vlan-groups/{id}/allocate).
func (c *Client) VLANAllocate(ctx context.Context, group string, req IDAllocateRequest, w *WriteOptions) (*VLAN, *Meta, error) {
	return writeOne[VLAN](ctx, c, http.MethodPost, itemPath(vlanGroupsPath, group)+"/allocate", req.body("vid"), w)
}

// VLANList lists the allocated VLANs f selects (GET /v1/ipam/vlans).
func (c *Client) VLANList(ctx context.Context, f IDFilter, q *QueryOptions) ([]VLAN, *Meta, error) {
	return getList[VLAN](ctx, c, vlansPath, "vlans", f.values("group_id"), q)
}

// VLANListPage lists one page of the allocated VLANs f selects, with the
// cursor of the next.
func (c *Client) VLANListPage(ctx context.Context, f IDFilter, q *QueryOptions) (*VLANPage, *Meta, error) {
	var out VLANPage
	m, err := c.call(ctx, readRequest(vlansPath, f.values("group_id"), q), &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, m, nil
}

// VLANGet reads an allocated VLAN (GET /v1/ipam/vlans/{id}).
func (c *Client) VLANGet(ctx context.Context, id string, q *QueryOptions) (*VLAN, *Meta, error) {
	return getOne[VLAN](ctx, c, itemPath(vlansPath, id), nil, q)
}

// VLANRelease returns a VLAN ID to its group (DELETE /v1/ipam/vlans/{id}).
func (c *Client) VLANRelease(ctx context.Context, id string, w *WriteOptions) (*VLAN, *Meta, error) {
	return writeOne[VLAN](ctx, c, http.MethodDelete, itemPath(vlansPath, id), nil, w)
}

// VLANUpdate changes an allocated VLAN (PATCH /v1/ipam/vlans/{id}).
func (c *Client) VLANUpdate(ctx context.Context, id string, u IDUpdate, w *WriteOptions) (*VLAN, *Meta, error) {
	return writeOne[VLAN](ctx, c, http.MethodPatch, itemPath(vlansPath, id), u, w)
}

// VNIPoolList lists the VNI pools (GET /v1/ipam/vni-pools).
func (c *Client) VNIPoolList(ctx context.Context, q *QueryOptions) ([]Pool, *Meta, error) {
	return getList[Pool](ctx, c, vniPoolsPath, "vni_pools", nil, q)
}

// VNIPoolCreate creates a VNI pool (POST /v1/ipam/vni-pools).
func (c *Client) VNIPoolCreate(ctx context.Context, req PoolRequest, w *WriteOptions) (*Pool, *Meta, error) {
	return writeOne[Pool](ctx, c, http.MethodPost, vniPoolsPath, req, w)
}

// VNIPoolGet reads a VNI pool by ID or name (GET /v1/ipam/vni-pools/{id}).
func (c *Client) VNIPoolGet(ctx context.Context, idOrName string, q *QueryOptions) (*Pool, *Meta, error) {
	return getOne[Pool](ctx, c, itemPath(vniPoolsPath, idOrName), nil, q)
}

// VNIPoolUpdate changes a VNI pool given by ID or name (PATCH
// /v1/ipam/vni-pools/{id}).
func (c *Client) VNIPoolUpdate(ctx context.Context, idOrName string, u PoolUpdate, w *WriteOptions) (*Pool, *Meta, error) {
	return writeOne[Pool](ctx, c, http.MethodPatch, itemPath(vniPoolsPath, idOrName), u, w)
}

// VNIPoolDelete deletes a VNI pool by ID or name (DELETE
// /v1/ipam/vni-pools/{id}).
func (c *Client) VNIPoolDelete(ctx context.Context, idOrName string, w *WriteOptions) (*Pool, *Meta, error) {
	return writeOne[Pool](ctx, c, http.MethodDelete, itemPath(vniPoolsPath, idOrName), nil, w)
}

// VNIAllocate takes a VNI from a pool given by ID or name (POST
// /v1/ipam/vni-pools/{id}/allocate).
func (c *Client) VNIAllocate(ctx context.Context, pool string, req IDAllocateRequest, w *WriteOptions) (*VNI, *Meta, error) {
	return writeOne[VNI](ctx, c, http.MethodPost, itemPath(vniPoolsPath, pool)+"/allocate", req.body("vni"), w)
}

// VNIList lists the allocated VNIs f selects (GET /v1/ipam/vnis).
func (c *Client) VNIList(ctx context.Context, f IDFilter, q *QueryOptions) ([]VNI, *Meta, error) {
	return getList[VNI](ctx, c, vnisPath, "vnis", f.values("pool_id"), q)
}

// VNIListPage lists one page of the allocated VNIs f selects, with the
// cursor of the next.
func (c *Client) VNIListPage(ctx context.Context, f IDFilter, q *QueryOptions) (*VNIPage, *Meta, error) {
	var out VNIPage
	m, err := c.call(ctx, readRequest(vnisPath, f.values("pool_id"), q), &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, m, nil
}

// VNIGet reads an allocated VNI (GET /v1/ipam/vnis/{id}).
func (c *Client) VNIGet(ctx context.Context, id string, q *QueryOptions) (*VNI, *Meta, error) {
	return getOne[VNI](ctx, c, itemPath(vnisPath, id), nil, q)
}

// VNIRelease returns a VNI to its pool (DELETE /v1/ipam/vnis/{id}).
func (c *Client) VNIRelease(ctx context.Context, id string, w *WriteOptions) (*VNI, *Meta, error) {
	return writeOne[VNI](ctx, c, http.MethodDelete, itemPath(vnisPath, id), nil, w)
}

// VNIUpdate changes an allocated VNI (PATCH /v1/ipam/vnis/{id}).
func (c *Client) VNIUpdate(ctx context.Context, id string, u IDUpdate, w *WriteOptions) (*VNI, *Meta, error) {
	return writeOne[VNI](ctx, c, http.MethodPatch, itemPath(vnisPath, id), u, w)
}

// ZoneList lists the DNS zones (GET /v1/dns/zones).
func (c *Client) ZoneList(ctx context.Context, q *QueryOptions) ([]Zone, *Meta, error) {
	return getList[Zone](ctx, c, zonesPath, "zones", nil, q)
}

// ZoneCreate creates a forward DNS zone (POST /v1/dns/zones).
func (c *Client) ZoneCreate(ctx context.Context, req ZoneRequest, w *WriteOptions) (*Zone, *Meta, error) {
	return writeOne[Zone](ctx, c, http.MethodPost, zonesPath, req, w)
}

// ZoneGet reads a DNS zone by name (GET /v1/dns/zones/{name}).
func (c *Client) ZoneGet(ctx context.Context, name string, q *QueryOptions) (*Zone, *Meta, error) {
	return getOne[Zone](ctx, c, itemPath(zonesPath, name), nil, q)
}

// ZoneUpdate changes a DNS zone's TTL or description (PATCH
// /v1/dns/zones/{name}).
func (c *Client) ZoneUpdate(ctx context.Context, name string, u ZoneUpdate, w *WriteOptions) (*Zone, *Meta, error) {
	return writeOne[Zone](ctx, c, http.MethodPatch, itemPath(zonesPath, name), u, w)
}

// ZoneDelete deletes a DNS zone by name (DELETE /v1/dns/zones/{name}).
// While addresses have names it serves the server refuses (409) unless
// force is set.
func (c *Client) ZoneDelete(ctx context.Context, name string, force bool, w *WriteOptions) (*Zone, *Meta, error) {
	return decodeOne[Zone](ctx, c, deleteRequest(itemPath(zonesPath, name), force, w))
}

// deleteRequest returns a DELETE of path, with ?force=true when force is
// set.
func deleteRequest(path string, force bool, w *WriteOptions) *request {
	r := newWrite(http.MethodDelete, path, w.key())
	if force {
		r.query = url.Values{"force": {"true"}}
	}
	return r
}

// itemPath returns the path of one object of a collection.
func itemPath(collection, id string) string {
	return collection + "/" + url.PathEscape(id)
}

func setNonEmpty(v url.Values, key, value string) {
	if value != "" {
		v.Set(key, value)
	}
}

// readRequest returns a GET of path with the filter parameters and those
// of q.
func readRequest(path string, filter url.Values, q *QueryOptions) *request {
	r := &request{method: http.MethodGet, path: path}
	r.query, r.wait = q.values()
	if len(filter) > 0 && r.query == nil {
		r.query = url.Values{}
	}
	for k, vs := range filter {
		r.query[k] = vs
	}
	return r
}

// getOne reads one object.
func getOne[T any](ctx context.Context, c *Client, path string, filter url.Values, q *QueryOptions) (*T, *Meta, error) {
	var out T
	m, err := c.call(ctx, readRequest(path, filter, q), &out)
	if err != nil {
		return nil, nil, err
	}
	return &out, m, nil
}

// getList reads a list answer, {"<field>": [...]}.
func getList[T any](ctx context.Context, c *Client, path, field string, filter url.Values, q *QueryOptions) ([]T, *Meta, error) {
	out := listOf[T]{field: field}
	m, err := c.call(ctx, readRequest(path, filter, q), &out)
	if err != nil {
		return nil, nil, err
	}
	return out.items, m, nil
}

// writeOne makes a write with body as JSON (none when nil) and decodes the one
// object it answers.
func writeOne[T any](ctx context.Context, c *Client, method, path string, body any, w *WriteOptions) (*T, *Meta, error) {
	r := newWrite(method, path, w.key())
	if body != nil {
		r.jsonBody(body)
	}
	return decodeOne[T](ctx, c, r)
}

// writeList POSTs body as JSON and decodes a list answer, {"<field>": [...]}.
func writeList[T any](ctx context.Context, c *Client, path, field string, body any, w *WriteOptions) ([]T, *Meta, error) {
	out := listOf[T]{field: field}
	m, err := c.call(ctx, newWrite(http.MethodPost, path, w.key()).jsonBody(body), &out)
	if err != nil {
		return nil, nil, err
	}
	return out.items, m, nil
}
