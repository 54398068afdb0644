package fsm

import (
	"slices"

	"github.com/hashicorp/go-memdb"
)

// Inventory tables: what the leader last observed on the virtualization
// platform. The sync loop writes only objects whose significant fields
// changed (see node/inventory.go), so a quiet cluster costs no log entries.
const (
	tableInvNodes   = "inv_nodes"
	tableInvGuests  = "inv_guests"
	tableInvStorage = "inv_storage"
	tableInvState   = "inv_state"
)

// invStateID is the key of the single inventory sync state row.
const invStateID = "sync"

// InvNode is one hypervisor host as last observed.
type InvNode struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	MaxCPU  int    `json:"maxcpu"`
	MaxMem  uint64 `json:"maxmem"`
	MaxDisk uint64 `json:"maxdisk"`
	// CPU (fraction of MaxCPU), Mem and Disk are usage as last recorded:
	// sync rewrites them only when they move by a noticeable step, so
	// ordinary fluctuation costs nothing.
	CPU  float64 `json:"cpu"`
	Mem  uint64  `json:"mem"`
	Disk uint64  `json:"disk"`
	InvMeta
}

// InvGuest is one virtual machine or container as last observed.
type InvGuest struct {
	VMID     int      `json:"vmid"`
	Kind     string   `json:"kind"` // qemu or lxc
	Node     string   `json:"node"`
	Name     string   `json:"name"`
	Status   string   `json:"status"`
	Template bool     `json:"template"`
	Tags     []string `json:"tags,omitempty"`
	Pool     string   `json:"pool,omitempty"`
	// Tenant comes from a "tenant.<name>" tag on the guest, Project from
	// a "project.<name>" tag.
	Tenant  string `json:"tenant,omitempty"`
	Project string `json:"project,omitempty" codec:",omitempty"`
	Lock    string `json:"lock,omitempty"`
	MaxCPU  int    `json:"maxcpu"`
	MaxMem  uint64 `json:"maxmem"`
	MaxDisk uint64 `json:"maxdisk"`
	// VolumeBytes is the size of all the guest's disk volumes, as the
	// storage sync last counted them; the inventory sync keeps it.
	VolumeBytes uint64 `json:"volume_bytes,omitempty" codec:",omitempty"`
	InvMeta
}

// InvStorage is one storage on one node as last observed.
type InvStorage struct {
	ID      string   `json:"id"` // node/storage
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

// InvMeta is what every inventory object records about its own history.
type InvMeta struct {
	// Gone is set when the object disappeared from the platform; it is
	// kept, not dropped, so its disappearance is visible.
	Gone bool `json:"gone"`
	// FirstSeen is when the object was first observed; LastSeen is when a
	// sync last observed it (reads raise it to the last successful sync
	// for objects still present); GoneAt is when it was found missing.
	FirstSeen Timestamp `json:"first_seen"`
	LastSeen  Timestamp `json:"last_seen"`
	GoneAt    Timestamp `json:"gone_at,omitzero"`
	// LastChanged is when a sync last wrote a change to the object.
	LastChanged Timestamp `json:"last_changed"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// InvState is the state of inventory sync as a whole.
type InvState struct {
	ID string `json:"-" codec:"ID"`
	// LastSync is the leader time of the last sync that reached the
	// platform and recorded its result.
	LastSync Timestamp `json:"last_sync,omitzero"`
	// Stale is set while the platform cannot be read; the inventory is
	// kept as it was last seen. StaleSince and Error say since when and why.
	Stale      bool      `json:"stale"`
	StaleSince Timestamp `json:"stale_since,omitzero"`
	Error      string    `json:"error,omitempty"`
	// Nodes, Guests and Storage count the objects present (not gone).
	Nodes   int `json:"nodes"`
	Guests  int `json:"guests"`
	Storage int `json:"storage"`
}

// SameAs reports whether n and o agree in every observed field, ignoring
// history.
func (n *InvNode) SameAs(o *InvNode) bool {
	return n.Name == o.Name && n.Status == o.Status && n.MaxCPU == o.MaxCPU && n.MaxMem == o.MaxMem &&
		n.MaxDisk == o.MaxDisk && n.CPU == o.CPU && n.Mem == o.Mem && n.Disk == o.Disk && n.Gone == o.Gone
}

// SameAs reports whether g and o agree in every observed field, ignoring
// history.
func (g *InvGuest) SameAs(o *InvGuest) bool {
	return g.VMID == o.VMID && g.Kind == o.Kind && g.Node == o.Node && g.Name == o.Name && g.Status == o.Status &&
		g.Template == o.Template && slices.Equal(g.Tags, o.Tags) && g.Pool == o.Pool && g.Tenant == o.Tenant && g.Project == o.Project &&
		g.Lock == o.Lock && g.MaxCPU == o.MaxCPU && g.MaxMem == o.MaxMem && g.MaxDisk == o.MaxDisk && g.Gone == o.Gone
}

// SameAs reports whether s and o agree in every observed field, ignoring
// history.
func (s *InvStorage) SameAs(o *InvStorage) bool {
	return s.ID == o.ID && s.Node == o.Node && s.Storage == o.Storage && s.Type == o.Type &&
		slices.Equal(s.Content, o.Content) && s.Shared == o.Shared && s.Status == o.Status &&
		s.Used == o.Used && s.Total == o.Total && s.Gone == o.Gone
}

// inventoryTables returns the inventory part of the memdb schema.
func inventoryTables() map[string]*memdb.TableSchema {
	str := func(field string) memdb.Indexer { return &memdb.StringFieldIndex{Field: field} }
	return map[string]*memdb.TableSchema{
		tableInvNodes: {Name: tableInvNodes, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: str("Name")},
		}},
		tableInvGuests: {Name: tableInvGuests, Indexes: map[string]*memdb.IndexSchema{
			"id":     {Name: "id", Unique: true, Indexer: &memdb.IntFieldIndex{Field: "VMID"}},
			"node":   {Name: "node", Indexer: str("Node")},
			"tenant": {Name: "tenant", AllowMissing: true, Indexer: str("Tenant")},
		}},
		tableInvStorage: {Name: tableInvStorage, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: str("ID")},
		}},
		tableInvState: {Name: tableInvState, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: str("ID")},
		}},
	}
}
