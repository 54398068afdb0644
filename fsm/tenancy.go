package fsm

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/quota"
)

// Tenancy: tenants and their projects, with quotas, and the usage each
// holds of every quota resource. Usage is kept as counters that change in
// the same transaction as the objects they count (addresses, prefixes,
// VLAN and VNI allocations, guests and the reservations of VM creates in
// flight), so admission is atomic with the allocation it guards: Apply
// checks the limit and records the allocation together, and concurrent
// requests cannot overshoot.
//
// Tenants are names on objects before they are objects: an address or a
// guest may carry a tenant that has no Tenant record, and its usage is
// counted all the same, so that a quota set later starts from the truth.
// A project, in contrast, must exist before anything names it.

// Table names of tenancy.
const (
	tableTenants  = "tenants"
	tableProjects = "projects"
	tableUsage    = "quota_usage"
)

// Tenant is a customer or team: a name objects carry, a quota and a
// description.
type Tenant struct {
	ID          string       `json:"id"`
	Description string       `json:"description,omitempty"`
	Quota       quota.Limits `json:"quota"`
	CreateIndex uint64       `json:"create_index"`
	ModifyIndex uint64       `json:"modify_index"`
	CreatedAt   Timestamp    `json:"created_at"`
	UpdatedAt   Timestamp    `json:"updated_at"`
}

// Project is a part of a tenant with a quota of its own; what a project
// holds counts against its tenant's quota too. ID is "tenant/name".
type Project struct {
	ID          string       `json:"id"`
	Tenant      string       `json:"tenant"`
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	Quota       quota.Limits `json:"quota"`
	CreateIndex uint64       `json:"create_index"`
	ModifyIndex uint64       `json:"modify_index"`
	CreatedAt   Timestamp    `json:"created_at"`
	UpdatedAt   Timestamp    `json:"updated_at"`
}

// ProjectID returns the ID of project name of tenant.
func ProjectID(tenant, name string) string { return tenant + "/" + name }

// Usage is what one scope (a tenant, or a project of it) holds of each
// quota resource. Addresses counts every address, IPv4 and IPv6, for
// metering; the ipv4_addresses quota counts IPv4 ones only.
type Usage struct {
	// Scope is the tenant, or "tenant/project".
	Scope     string        `json:"scope"`
	Tenant    string        `json:"tenant"`
	Project   string        `json:"project,omitempty"`
	Amounts   quota.Amounts `json:"usage"`
	Addresses int64         `json:"addresses"`

	// txn is the write transaction that made this row. Until it commits
	// no reader can see the row, so later charges in it change the row
	// in place instead of copying it: a batch of a tenant's allocations
	// writes its usage once, not once per allocation. Holding the
	// pointer keeps its address from being reused by a later txn.
	txn *memdb.Txn
}

// TenantCreateRequest creates a tenant.
type TenantCreateRequest struct {
	WriteMeta
	Tenant Tenant
}

// ScopeChange changes a tenant's or a project's description, or replaces
// its quota (with SetQuota; an empty Quota removes every limit); nil
// fields are left alone.
type ScopeChange struct {
	Description *string
	Quota       quota.Limits `codec:",omitempty"`
	SetQuota    bool
}

// validate checks the change.
func (c *ScopeChange) validate() error {
	if c.Description != nil {
		if err := checkDescription(*c.Description); err != nil {
			return err
		}
	}
	return checkQuota(c.Quota)
}

// apply makes the change to an object's description and quota, and
// stamps its history.
func (c *ScopeChange) apply(description *string, q *quota.Limits, modify *uint64, updated *Timestamp, index uint64, now int64) {
	if c.Description != nil {
		*description = *c.Description
	}
	if c.SetQuota {
		*q = c.Quota
		if *q == nil {
			*q = quota.Limits{}
		}
	}
	*modify, *updated = index, Timestamp(now)
}

// TenantUpdateRequest changes a tenant.
type TenantUpdateRequest struct {
	WriteMeta
	ID string
	ScopeChange
}

// TenantDeleteRequest deletes a tenant that holds nothing and has no
// projects.
type TenantDeleteRequest struct {
	WriteMeta
	ID string
}

// ProjectCreateRequest creates a project of an existing tenant.
type ProjectCreateRequest struct {
	WriteMeta
	Project Project
}

// ProjectUpdateRequest changes a project.
type ProjectUpdateRequest struct {
	WriteMeta
	ID string
	ScopeChange
}

// ProjectDeleteRequest deletes a project that holds nothing.
type ProjectDeleteRequest struct {
	WriteMeta
	ID string
}

// Type returns TenantCreateType.
func (*TenantCreateRequest) Type() MessageType { return TenantCreateType }

// Type returns TenantUpdateType.
func (*TenantUpdateRequest) Type() MessageType { return TenantUpdateType }

// Type returns TenantDeleteType.
func (*TenantDeleteRequest) Type() MessageType { return TenantDeleteType }

// Type returns ProjectCreateType.
func (*ProjectCreateRequest) Type() MessageType { return ProjectCreateType }

// Type returns ProjectUpdateType.
func (*ProjectUpdateRequest) Type() MessageType { return ProjectUpdateType }

// Type returns ProjectDeleteType.
func (*ProjectDeleteRequest) Type() MessageType { return ProjectDeleteType }

func checkQuota(l quota.Limits) error {
	if err := l.Validate(); err != nil {
		return fieldErrf("quota", ErrInvalid, "%v", err)
	}
	return nil
}

// Validate checks the tenant.
func (r *TenantCreateRequest) Validate() error {
	if err := checkName("id", r.Tenant.ID); err != nil {
		return err
	}
	if err := checkDescription(r.Tenant.Description); err != nil {
		return err
	}
	return checkQuota(r.Tenant.Quota)
}

// Validate checks the change.
func (r *TenantUpdateRequest) Validate() error { return r.validate() }

// Validate checks the project.
func (r *ProjectCreateRequest) Validate() error {
	p := &r.Project
	if err := checkName("tenant", p.Tenant); err != nil {
		return err
	}
	if err := checkName("name", p.Name); err != nil {
		return err
	}
	if p.ID != ProjectID(p.Tenant, p.Name) {
		return fieldErrf("id", ErrInvalid, "project id %q must be %q", p.ID, ProjectID(p.Tenant, p.Name))
	}
	if err := checkDescription(p.Description); err != nil {
		return err
	}
	return checkQuota(p.Quota)
}

// Validate checks the change.
func (r *ProjectUpdateRequest) Validate() error { return r.validate() }

func applyTenantCreate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*TenantCreateRequest)
	if raw, err := txn.First(tableTenants, "id", req.Tenant.ID); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("id", ErrConflict, "tenant %s already exists", req.Tenant.ID)
	}
	t := req.Tenant
	if t.Quota == nil {
		t.Quota = quota.Limits{}
	}
	t.CreateIndex, t.ModifyIndex, t.CreatedAt, t.UpdatedAt = index, index, Timestamp(req.Now), Timestamp(req.Now)
	if err := insert(txn, tableTenants, index, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

func applyTenantUpdate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*TenantUpdateRequest)
	old, err := lookup[Tenant](txn, tableTenants, "tenant", req.ID)
	if err != nil {
		return nil, err
	}
	t := *old
	req.apply(&t.Description, &t.Quota, &t.ModifyIndex, &t.UpdatedAt, index, req.Now)
	if err := insert(txn, tableTenants, index, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

func applyTenantDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*TenantDeleteRequest)
	t, err := lookup[Tenant](txn, tableTenants, "tenant", req.ID)
	if err != nil {
		return nil, err
	}
	if raw, err := txn.First(tableProjects, "tenant", t.ID); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("id", ErrConflict, "tenant %s still has projects, such as %s; delete them first", t.ID, raw.(*Project).Name)
	}
	if err := checkEmpty(txn, t.ID, "tenant "+t.ID); err != nil {
		return nil, err
	}
	if err := remove(txn, tableTenants, index, t); err != nil {
		return nil, err
	}
	return t, nil
}

// checkEmpty refuses to delete a scope that still holds something.
func checkEmpty(txn *memdb.Txn, scope, what string) error {
	u, err := usageOf(txn, scope)
	if err != nil {
		return err
	}
	for _, r := range quota.Resources {
		if n := u.Amounts[r]; n > 0 {
			return fieldErrf("id", ErrConflict, "%s still holds %d %s; release them first", what, n, r)
		}
	}
	if u.Addresses > 0 {
		return fieldErrf("id", ErrConflict, "%s still holds %d addresses; release them first", what, u.Addresses)
	}
	return nil
}

func applyProjectCreate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*ProjectCreateRequest)
	if _, err := lookup[Tenant](txn, tableTenants, "tenant", req.Project.Tenant); err != nil {
		return nil, fieldErr("tenant", err)
	}
	if raw, err := txn.First(tableProjects, "id", req.Project.ID); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("name", ErrConflict, "project %s already exists", req.Project.ID)
	}
	p := req.Project
	if p.Quota == nil {
		p.Quota = quota.Limits{}
	}
	p.CreateIndex, p.ModifyIndex, p.CreatedAt, p.UpdatedAt = index, index, Timestamp(req.Now), Timestamp(req.Now)
	if err := insert(txn, tableProjects, index, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func applyProjectUpdate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*ProjectUpdateRequest)
	old, err := lookup[Project](txn, tableProjects, "project", req.ID)
	if err != nil {
		return nil, err
	}
	p := *old
	req.apply(&p.Description, &p.Quota, &p.ModifyIndex, &p.UpdatedAt, index, req.Now)
	if err := insert(txn, tableProjects, index, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func applyProjectDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*ProjectDeleteRequest)
	p, err := lookup[Project](txn, tableProjects, "project", req.ID)
	if err != nil {
		return nil, err
	}
	if err := checkEmpty(txn, p.ID, "project "+p.ID); err != nil {
		return nil, err
	}
	if err := remove(txn, tableProjects, index, p); err != nil {
		return nil, err
	}
	return p, nil
}

// usageOf returns the usage of scope; a scope that holds nothing has an
// empty Usage.
func usageOf(txn *memdb.Txn, scope string) (*Usage, error) {
	raw, err := txn.First(tableUsage, "id", scope)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		tenant, project, _ := strings.Cut(scope, "/")
		return &Usage{Scope: scope, Tenant: tenant, Project: project, Amounts: quota.Amounts{}}, nil
	}
	return raw.(*Usage), nil
}

// holding is a change of what a tenant (and a project of it) holds.
type holding struct {
	tenant, project string
	delta           quota.Amounts
	addresses       int64
}

// negate returns the holding that undoes h.
func (h holding) negate() holding {
	return holding{h.tenant, h.project, h.delta.Neg(), -h.addresses}
}

// oneIPv4 is the delta of one IPv4 address, shared by every holding of
// one: holdings' deltas are never changed in place.
var oneIPv4 = quota.Amounts{quota.IPv4: 1}

// addressHolding is what n addresses of a tenant hold. IPv6 addresses
// count in no quota, only in the address count.
func addressHolding(tenant, project string, is4 bool, n int) holding {
	h := holding{tenant: tenant, project: project, addresses: int64(n)}
	switch {
	case !is4 || tenant == "":
	case n == 1:
		h.delta = oneIPv4
	default:
		h.delta = quota.Amounts{quota.IPv4: int64(n)}
	}
	return h
}

// holding is what the address holds.
func (a *Address) holding() holding {
	return addressHolding(a.Tenant, a.Project, netip.MustParseAddr(a.Address).Is4(), 1)
}

// holding is what the prefix holds.
func (p *Prefix) holding() holding {
	if p.Tenant == "" {
		return holding{}
	}
	return holding{tenant: p.Tenant, project: p.Project, delta: quota.Amounts{quota.Prefixes: 1}}
}

// holding is what the VLAN ID or VNI holds.
func (a *IDAllocation) holding() holding {
	r := quota.VLANs
	if a.Kind == PoolVNI {
		r = quota.VNIs
	}
	return holding{tenant: a.Tenant, project: a.Project, delta: quota.Amounts{r: 1}}
}

// reservation is what a vm.create, or a volume operation that adds disk,
// holds while it runs.
func (o *Operation) reservation() holding {
	if o.Tenant == "" {
		return holding{}
	}
	if isVolumeOp(o.Kind) && o.Volume != nil && o.Volume.ReserveGiB > 0 {
		return holding{tenant: o.Tenant, project: o.Volume.Project, delta: quota.Amounts{quota.DiskGiB: o.Volume.ReserveGiB}}
	}
	if o.Kind != OpVMCreate || o.Spec == nil {
		return holding{}
	}
	return holding{tenant: o.Tenant, project: o.Spec.Project, delta: quota.Amounts{
		quota.Guests: 1, quota.VCPUs: int64(o.Spec.Cores), quota.MemoryMiB: int64(o.Spec.MemoryMiB), quota.DiskGiB: int64(o.Spec.DiskGiB),
	}}
}

// holding is what a guest the platform reports holds; templates and
// guests that are gone hold nothing.
func (g *InvGuest) holding() holding {
	if g.Tenant == "" || g.Template || g.Gone {
		return holding{}
	}
	const gib = 1 << 30
	// Proxmox reports the boot disk as maxdisk; the storage sync adds up
	// every volume of the guest.
	disk := max(g.MaxDisk, g.VolumeBytes)
	return holding{tenant: g.Tenant, project: g.Project, delta: quota.Amounts{
		quota.Guests: 1, quota.VCPUs: int64(g.MaxCPU), quota.MemoryMiB: int64(g.MaxMem >> 20), quota.DiskGiB: int64((disk + gib - 1) / gib),
	}}
}

// checkProject refuses a project that does not exist, or one named
// without its tenant.
func checkProject(txn *memdb.Txn, tenant, project string) error {
	if project == "" {
		return nil
	}
	if tenant == "" {
		return fieldErrf("project", ErrInvalid, "a project needs its tenant")
	}
	if raw, err := txn.First(tableProjects, "id", ProjectID(tenant, project)); err != nil {
		return err
	} else if raw == nil {
		return fieldErrf("project", ErrNotFound, "tenant %s has no project %s", tenant, project)
	}
	return nil
}

// checkMovedProject is checkProject for an object of kind moved from
// tenant from to tenant to that keeps its project because the change did
// not name one (given): when the new tenant has no project of that name,
// the error says to give the project with the tenant, rather than that a
// project the caller never named was not found.
func checkMovedProject(txn *memdb.Txn, kind, name, from, to, project string, given bool) error {
	err := checkProject(txn, to, project)
	if err == nil || given || from == to || !errors.Is(err, ErrNotFound) {
		return err
	}
	return fieldErrf("project", ErrInvalid, "%s %s is in project %s of tenant %s, and tenant %s has no project of that name: give project with the new tenant (\"\" for none)", kind, name, project, from, to)
}

// charge records h. With enforce, an increase that would pass a limit of
// the tenant's or the project's quota is refused with an error wrapping a
// *quota.ExceededError, and nothing is recorded; without it (usage the
// platform reports, or releases) usage may pass a limit.
func charge(txn *memdb.Txn, index uint64, h holding, enforce bool) error {
	return chargeChange(txn, index, holding{}, h, enforce)
}

// moveHolding moves what an object of kind named name holds from old to
// new when its tenant or project changes: the project must be one of the
// new tenant's (checkMovedProject, with projectGiven whether the update
// named it), and the charge moves, refused by the new scopes' quotas.
func moveHolding(txn *memdb.Txn, index uint64, kind, name string, old, new holding, projectGiven bool) error {
	if old.tenant == new.tenant && old.project == new.project {
		return nil
	}
	if err := checkMovedProject(txn, kind, name, old.tenant, new.tenant, new.project, projectGiven); err != nil {
		return err
	}
	return chargeChange(txn, index, old, new, true)
}

// chargeChange records the change from holding old to holding new (an
// object moved between tenants or projects, or changed size). Only what a
// scope gains on balance is checked against its quota (with enforce): a
// move between two projects of one tenant leaves the tenant's usage as it
// was and passes its quota whatever its usage.
//
// It runs for every allocation of a tenant, so it allocates nothing in
// the common case: a scope's usage row made earlier in the same
// transaction is changed in place.
func chargeChange(txn *memdb.Txn, index uint64, old, new holding, enforce bool) error {
	// At most four scopes: old's tenant and project, new's. Sorted, so
	// that admission reports the same scope first on every server.
	var buf [4]string
	scopes := buf[:0]
	for _, h := range []*holding{&old, &new} {
		for _, scope := range h.scopeIDs() {
			if scope != "" && !slices.Contains(scopes, scope) {
				scopes = append(scopes, scope)
			}
		}
	}
	slices.Sort(scopes)
	var usages [4]*Usage
	for i, scope := range scopes {
		u, err := usageOf(txn, scope)
		if err != nil {
			return err
		}
		if enforce {
			if err := admit(txn, scope, u, netDelta(scope, old, new)); err != nil {
				return err
			}
		}
		usages[i] = u
	}
	for i, scope := range scopes {
		if netZero(scope, old, new) {
			// A move between two projects leaves their tenant's usage
			// as it was: no write.
			continue
		}
		u := usages[i]
		if u.txn != txn {
			next := *u
			next.Amounts = maps.Clone(u.Amounts)
			if next.Amounts == nil {
				next.Amounts = quota.Amounts{}
			}
			next.txn = txn
			u = &next
		}
		for _, side := range []struct {
			h    *holding
			sign int64
		}{{&old, -1}, {&new, 1}} {
			if !side.h.in(scope) {
				continue
			}
			for r, v := range side.h.delta {
				if u.Amounts[r] += side.sign * v; u.Amounts[r] == 0 {
					delete(u.Amounts, r)
				}
			}
			u.Addresses += side.sign * side.h.addresses
		}
		if len(u.Amounts) == 0 && u.Addresses == 0 {
			if raw, _ := txn.First(tableUsage, "id", scope); raw != nil {
				if err := remove(txn, tableUsage, index, raw); err != nil {
					return err
				}
			}
			continue
		}
		if u == usages[i] {
			// This transaction's row, changed in place; inserting it
			// recorded index, which every command of a transaction
			// shares, as the table's latest.
			continue
		}
		if err := insert(txn, tableUsage, index, u); err != nil {
			return err
		}
	}
	return nil
}

// scopeIDs returns the usage scopes h counts in (its tenant and its
// project), without allocating; empty strings stand for none.
func (h *holding) scopeIDs() [2]string {
	if h.tenant == "" {
		return [2]string{}
	}
	if h.project == "" {
		return [2]string{h.tenant}
	}
	return [2]string{h.tenant, ProjectID(h.tenant, h.project)}
}

// in reports whether h counts in scope.
func (h *holding) in(scope string) bool {
	if h.tenant == "" {
		return false
	}
	if scope == h.tenant {
		return true
	}
	return h.project != "" && len(scope) == len(h.tenant)+1+len(h.project) &&
		strings.HasPrefix(scope, h.tenant) && scope[len(h.tenant)] == '/' && strings.HasSuffix(scope, h.project)
}

// netZero reports whether going from old to new leaves scope's usage as
// it was.
func netZero(scope string, old, new holding) bool {
	inOld, inNew := old.in(scope), new.in(scope)
	switch {
	case inOld && inNew:
		if old.addresses != new.addresses {
			return false
		}
		for r, v := range old.delta {
			if new.delta[r] != v {
				return false
			}
		}
		for r, v := range new.delta {
			if old.delta[r] != v {
				return false
			}
		}
		return true
	case inOld:
		return old.addresses == 0 && old.delta.IsZero()
	case inNew:
		return new.addresses == 0 && new.delta.IsZero()
	}
	return true
}

// netDelta returns what scope gains on balance going from old to new.
// When only new counts in scope (a plain charge) that is new's delta
// itself, which the caller must not change.
func netDelta(scope string, old, new holding) quota.Amounts {
	inOld, inNew := old.in(scope), new.in(scope)
	switch {
	case inNew && !inOld:
		return new.delta
	case inOld && !inNew:
		return old.delta.Neg()
	case !inOld && !inNew:
		return nil
	}
	d := make(quota.Amounts, len(new.delta))
	for r, v := range new.delta {
		d[r] += v
	}
	for r, v := range old.delta {
		d[r] -= v
	}
	return d
}

// admit checks delta against the quota of scope, if it has one.
func admit(txn *memdb.Txn, scope string, u *Usage, delta quota.Amounts) error {
	var limits quota.Limits
	name := "tenant " + scope
	if strings.Contains(scope, "/") {
		raw, err := txn.First(tableProjects, "id", scope)
		if err != nil {
			return err
		}
		if raw != nil {
			limits = raw.(*Project).Quota
		}
		name = "project " + scope
	} else {
		raw, err := txn.First(tableTenants, "id", scope)
		if err != nil {
			return err
		}
		if raw != nil {
			limits = raw.(*Tenant).Quota
		}
	}
	if len(limits) == 0 {
		return nil
	}
	if err := quota.Check(name, limits, u.Amounts, delta); err != nil {
		return fieldErr("quota", err)
	}
	return nil
}

// tenancyTables returns the tenancy part of the memdb schema.
func tenancyTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableTenants: {Name: tableTenants, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		}},
		tableProjects: {Name: tableProjects, Indexes: map[string]*memdb.IndexSchema{
			"id":     {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
			"tenant": {Name: "tenant", Indexer: &memdb.StringFieldIndex{Field: "Tenant"}},
		}},
		// Usage rows change with every allocation of a tenant: one index
		// only. A tenant's rows are its own and those with its prefix
		// and '/'.
		tableUsage: {Name: tableUsage, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: fieldIndex(func(u *Usage) string { return u.Scope })},
		}},
	}
}

// Tenants lists the tenants by ID.
func (s *Store) Tenants(ws memdb.WatchSet) (uint64, []*Tenant, error) {
	return list[*Tenant](s, ws, tableTenants, "id")
}

// Tenant returns one tenant, or nil.
func (s *Store) Tenant(ws memdb.WatchSet, id string) (uint64, *Tenant, error) {
	return getByID[*Tenant](s, ws, tableTenants, id)
}

// Projects lists the projects by ID, of one tenant when tenant is set.
func (s *Store) Projects(ws memdb.WatchSet, tenant string) (uint64, []*Project, error) {
	if tenant != "" {
		return list[*Project](s, ws, tableProjects, "tenant", tenant)
	}
	return list[*Project](s, ws, tableProjects, "id")
}

// Project returns one project, or nil.
func (s *Store) Project(ws memdb.WatchSet, id string) (uint64, *Project, error) {
	return getByID[*Project](s, ws, tableProjects, id)
}

// UsageOf returns the usage of one scope, empty when it holds nothing.
func (s *Store) UsageOf(scope string) (*Usage, error) {
	u, err := usageOf(s.db.Txn(false), scope)
	if err != nil {
		return nil, fmt.Errorf("fsm: usage of %s: %w", scope, err)
	}
	return u, nil
}
