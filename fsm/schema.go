package fsm

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/ipam"
)

// Table names of the go-memdb schema.
const (
	tableIndex       = "index"
	tableSettings    = "settings"
	tableTokens      = "tokens"
	tableACL         = "acl"
	tableIdempotency = "idempotency"
)

// Setting is one cluster-wide key/value setting.
type Setting struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
	// UpdatedAt is the leader time of the last change, in Unix nanoseconds.
	UpdatedAt int64 `json:"updated_at"`
}

// SettingDefault returns what applies while the setting key is unset, for
// the settings that have a default.
func SettingDefault(key string) (string, bool) {
	switch key {
	case quarantineSetKey:
		return ipam.DefaultQuarantine.String(), true
	case AuditRetentionKey:
		return fmt.Sprintf("%dd", DefaultAuditRetention/(24*time.Hour)), true
	}
	return "", false
}

// Token is an API token. Only the SHA-256 hash of its secret is stored.
type Token struct {
	AccessorID  string `json:"accessor_id"`
	SecretHash  string `json:"-" codec:"SecretHash"`
	Description string `json:"description"`
	Role        string `json:"role"`
	Tenant      string `json:"tenant,omitempty"`
	// CreatedAt and ExpiresAt are leader times in Unix nanoseconds;
	// ExpiresAt 0 means the token does not expire.
	CreatedAt   int64  `json:"created_at"`
	ExpiresAt   int64  `json:"expires_at,omitempty"`
	CreateIndex uint64 `json:"create_index"`
}

// ACLState records whether the ACL system has been bootstrapped.
type ACLState struct {
	ID             string
	Bootstrapped   bool
	BootstrapIndex uint64
}

// IdempotencyRecord stores the first result of a command that carried an
// idempotency key.
type IdempotencyRecord struct {
	// Key is the caller's key scoped by actor: "<actor>/<key>".
	Key         string
	RequestHash string
	// Result is the JSON encoding of the command's result. It is nil
	// while list holds the result instead.
	Result    []byte
	Index     uint64
	CreatedAt int64

	// list is the result of an address allocation, kept as the addresses
	// themselves: they are the objects of the addresses table, which are
	// never changed in place, so writing their JSON when it is needed (a
	// replay, a snapshot) gives the bytes Apply would have stored. Most
	// records are never read, and their JSON was a sixth of the memory an
	// allocation keeps and, on every server, work only the leader's answer
	// uses. A restored record has Result and no list.
	list *AddressList
}

// result returns the JSON encoding of the command's result.
func (r *IdempotencyRecord) result() []byte {
	if r.list != nil {
		return r.list.json()
	}
	return r.Result
}

// stored returns r as a snapshot holds it: with its result as JSON.
func (r *IdempotencyRecord) stored() *IdempotencyRecord {
	if r.list == nil {
		return r
	}
	cp := *r
	cp.Result, cp.list = r.list.json(), nil
	return &cp
}

// IndexEntry records the raft index at which a table last changed.
type IndexEntry struct {
	Table string
	Index uint64
}

func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableIndex: {Name: tableIndex, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: fieldIndex(func(e *IndexEntry) string { return e.Table })},
		}},
		tableSettings: {Name: tableSettings, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
		}},
		tableTokens: {Name: tableTokens, Indexes: map[string]*memdb.IndexSchema{
			"id":     {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "AccessorID"}},
			"secret": {Name: "secret", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "SecretHash"}},
		}},
		tableACL: {Name: tableACL, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		}},
		tableIdempotency: {Name: tableIdempotency, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: fieldIndex(func(r *IdempotencyRecord) string { return r.Key })},
		}},
	}}
}

func newMemDB() *memdb.MemDB {
	sc := schema()
	for name, t := range idemEntryTables() {
		sc.Tables[name] = t
	}
	for name, t := range operationTables() {
		sc.Tables[name] = t
	}
	for name, t := range inventoryTables() {
		sc.Tables[name] = t
	}
	for name, t := range auditTables() {
		sc.Tables[name] = t
	}
	for name, t := range capacityTables() {
		sc.Tables[name] = t
	}
	for name, t := range meteringTables() {
		sc.Tables[name] = t
	}
	for name, t := range tenancyTables() {
		sc.Tables[name] = t
	}
	for name, t := range secretTables() {
		sc.Tables[name] = t
	}
	for name, t := range ipamTables() {
		sc.Tables[name] = t
	}
	for name, t := range sdnTables() {
		sc.Tables[name] = t
	}
	for name, t := range storageTables() {
		sc.Tables[name] = t
	}
	for name, t := range drTables() {
		sc.Tables[name] = t
	}
	db, err := memdb.NewMemDB(sc)
	if err != nil {
		panic(fmt.Sprintf("fsm: invalid schema: %v", err))
	}
	return db
}

// MarshalJSON writes UpdatedAt as an RFC 3339 time, like every time in the
// API.
func (s *Setting) MarshalJSON() ([]byte, error) {
	type plain Setting
	return json.Marshal(struct {
		*plain
		UpdatedAt string `json:"updated_at"`
	}{(*plain)(s), time.Unix(0, s.UpdatedAt).UTC().Format(time.RFC3339Nano)})
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (s *Setting) UnmarshalJSON(b []byte) error {
	type plain Setting
	aux := struct {
		*plain
		UpdatedAt string `json:"updated_at"`
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	s.UpdatedAt = 0
	if aux.UpdatedAt == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, aux.UpdatedAt)
	if err != nil {
		return fmt.Errorf("updated_at: %w", err)
	}
	s.UpdatedAt = t.UnixNano()
	return nil
}
