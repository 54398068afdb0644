package client

import (
	"context"
	"net/url"
	"strconv"
)

// Paths of the inventory API.
const (
	inventoryPath        = "/v1/inventory"
	inventoryNodesPath   = "/v1/inventory/nodes"
	inventoryGuestsPath  = "/v1/inventory/guests"
	inventoryStoragePath = "/v1/inventory/storage"
)

// Guest kinds.
const (
	GuestKindVM        = "qemu"
	GuestKindContainer = "lxc"
)

// InvMeta is what every inventory object records about its own history.
type InvMeta struct {
	// Gone is set when the object disappeared from the platform; it is
	// kept so that its disappearance is visible.
	Gone bool `json:"gone"`
	// FirstSeen is when the object was first observed; LastSeen is when a
	// sync last observed it; GoneAt is when it was found missing.
	FirstSeen Time `json:"first_seen,omitzero"`
	LastSeen  Time `json:"last_seen,omitzero"`
	GoneAt    Time `json:"gone_at,omitzero"`
	// LastChanged is when a sync last recorded a change to the object.
	LastChanged Time   `json:"last_changed,omitzero"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
}

// InvState is the state of inventory sync (GET /v1/inventory).
type InvState struct {
	// LastSync is when the leader last read the platform and recorded the
	// result; zero before the first sync.
	LastSync Time `json:"last_sync,omitzero"`
	// Stale is set while the platform cannot be read; the inventory is
	// kept as last seen. StaleSince and Error say since when and why.
	Stale      bool   `json:"stale"`
	StaleSince Time   `json:"stale_since,omitzero"`
	Error      string `json:"error,omitempty"`
	// Nodes, Guests and Storage count the objects present (not gone).
	Nodes   int `json:"nodes"`
	Guests  int `json:"guests"`
	Storage int `json:"storage"`
}

// InvNode is one hypervisor host as last observed.
type InvNode struct {
	Name string `json:"name"`
	// Status is online, offline or unknown.
	Status  string `json:"status"`
	MaxCPU  int    `json:"maxcpu"`
	MaxMem  uint64 `json:"maxmem"`
	MaxDisk uint64 `json:"maxdisk"`
	// CPU is the fraction of MaxCPU in use; Mem and Disk are bytes in use.
	CPU  float64 `json:"cpu"`
	Mem  uint64  `json:"mem"`
	Disk uint64  `json:"disk"`
	InvMeta
}

// InvGuest is one virtual machine or container as last observed.
type InvGuest struct {
	VMID int `json:"vmid"`
	// Kind is GuestKindVM or GuestKindContainer.
	Kind     string   `json:"kind"`
	Node     string   `json:"node"`
	Name     string   `json:"name"`
	Status   string   `json:"status"`
	Template bool     `json:"template"`
	Tags     []string `json:"tags,omitempty"`
	Pool     string   `json:"pool,omitempty"`
	// Tenant comes from a "tenant.<name>" tag on the guest, Project
	// from a "project.<name>" tag.
	Tenant  string `json:"tenant,omitempty"`
	Project string `json:"project,omitempty"`
	Lock    string `json:"lock,omitempty"`
	MaxCPU  int    `json:"maxcpu"`
	MaxMem  uint64 `json:"maxmem"`
	MaxDisk uint64 `json:"maxdisk"`
	InvMeta
}

// InvStorage is one storage as seen from one node, as last observed.
type InvStorage struct {
	// ID is "node/storage".
	ID      string   `json:"id"`
	Node    string   `json:"node"`
	Storage string   `json:"storage"`
	Type    string   `json:"type"`
	Content []string `json:"content,omitempty"`
	Shared  bool     `json:"shared"`
	Status  string   `json:"status"`
	Used    uint64   `json:"used"`
	Total   uint64   `json:"total"`
	InvMeta
}

// GuestFilter selects guests to list; empty fields select all.
type GuestFilter struct {
	Node   string
	Tag    string
	Tenant string
	// Status is a platform status such as "running", or "gone" for the
	// guests that disappeared.
	Status string
	// Kind is GuestKindVM or GuestKindContainer.
	Kind string
	// Template, when set, selects templates (true) or the guests that are
	// not templates (false).
	Template *bool
	// IncludeGone lists the guests that disappeared too.
	IncludeGone bool
}

func (f GuestFilter) values() url.Values {
	v := url.Values{}
	setNonEmpty(v, "node", f.Node)
	setNonEmpty(v, "tag", f.Tag)
	setNonEmpty(v, "tenant", f.Tenant)
	setNonEmpty(v, "status", f.Status)
	setNonEmpty(v, "kind", f.Kind)
	if f.Template != nil {
		v.Set("template", strconv.FormatBool(*f.Template))
	}
	if f.IncludeGone {
		v.Set("include_gone", "true")
	}
	return v
}

// goneQuery returns the query of a list that includes gone objects when
// yes.
func goneQuery(yes bool) url.Values {
	if !yes {
		return nil
	}
	return url.Values{"include_gone": {"true"}}
}

// InventoryState reads the state of inventory sync: when the platform was
// last read and whether the inventory is stale (GET /v1/inventory).
func (c *Client) InventoryState(ctx context.Context, q *QueryOptions) (*InvState, *Meta, error) {
	return getOne[InvState](ctx, c, inventoryPath, nil, q)
}

// InventoryNodes lists the hypervisor nodes, with those that disappeared
// when includeGone (GET /v1/inventory/nodes).
func (c *Client) InventoryNodes(ctx context.Context, includeGone bool, q *QueryOptions) ([]InvNode, *Meta, error) {
	return getList[InvNode](ctx, c, inventoryNodesPath, "nodes", goneQuery(includeGone), q)
}

// InventoryNode reads one node, also when it is gone (GET
// /v1/inventory/nodes/{name}).
func (c *Client) InventoryNode(ctx context.Context, name string, q *QueryOptions) (*InvNode, *Meta, error) {
	return getOne[InvNode](ctx, c, itemPath(inventoryNodesPath, name), nil, q)
}

// InventoryGuests lists the virtual machines and containers f selects
// (GET /v1/inventory/guests).
func (c *Client) InventoryGuests(ctx context.Context, f GuestFilter, q *QueryOptions) ([]InvGuest, *Meta, error) {
	return getList[InvGuest](ctx, c, inventoryGuestsPath, "guests", f.values(), q)
}

// InventoryGuest reads one guest, also when it is gone (GET
// /v1/inventory/guests/{vmid}).
func (c *Client) InventoryGuest(ctx context.Context, vmid int, q *QueryOptions) (*InvGuest, *Meta, error) {
	return getOne[InvGuest](ctx, c, itemPath(inventoryGuestsPath, strconv.Itoa(vmid)), nil, q)
}

// InventoryStorage lists storage per node, with the entries that
// disappeared when includeGone (GET /v1/inventory/storage).
func (c *Client) InventoryStorage(ctx context.Context, includeGone bool, q *QueryOptions) ([]InvStorage, *Meta, error) {
	return getList[InvStorage](ctx, c, inventoryStoragePath, "storage", goneQuery(includeGone), q)
}
