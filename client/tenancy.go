package client

import (
	"context"
	"encoding/json"
	"net/http"
)

// tenantsPath is the path of the tenancy API (docs/tenancy.md).
const tenantsPath = "/v1/tenants"

// The resources a quota limits, in the order the API reports them.
const (
	ResourceVCPUs     = "vcpus"
	ResourceMemoryMiB = "memory_mib"
	ResourceDiskGiB   = "disk_gib"
	ResourceGuests    = "guests"
	ResourceSnapshots = "snapshots"
	ResourceIPv4      = "ipv4_addresses"
	ResourcePrefixes  = "prefixes"
	ResourceVLANs     = "vlans"
	ResourceVNIs      = "vnis"
)

// Resources lists the quota resources in the order the API reports them.
var Resources = []string{
	ResourceVCPUs, ResourceMemoryMiB, ResourceDiskGiB, ResourceGuests, ResourceSnapshots,
	ResourceIPv4, ResourcePrefixes, ResourceVLANs, ResourceVNIs,
}

// QuotaLine is what a tenant or project holds of one resource: its limit
// (nil when unlimited), what is used and what is left (nil when
// unlimited). Used may pass Limit after the limit was lowered.
type QuotaLine struct {
	Resource string `json:"resource"`
	Limit    *int64 `json:"limit,omitempty"`
	Used     int64  `json:"used"`
	Free     *int64 `json:"free,omitempty"`
}

// Tenant is a customer or team with a quota, and its usage.
type Tenant struct {
	ID          string `json:"id"`
	Description string `json:"description,omitempty"`
	// Quota maps a resource to its limit; a resource without an entry
	// is unlimited, a limit of 0 forbids it.
	Quota map[string]int64 `json:"quota"`
	// Usage has one line per resource, in the order of Resources.
	Usage []QuotaLine `json:"usage,omitempty"`
	// Addresses counts every address the tenant holds, IPv4 and IPv6.
	Addresses   int64  `json:"addresses"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
	CreatedAt   Time   `json:"created_at,omitzero"`
	UpdatedAt   Time   `json:"updated_at,omitzero"`
}

// Project is a part of a tenant with a quota of its own; what it holds
// counts against its tenant's quota too. ID is "tenant/name".
type Project struct {
	ID          string           `json:"id"`
	Tenant      string           `json:"tenant"`
	Name        string           `json:"name"`
	Description string           `json:"description,omitempty"`
	Quota       map[string]int64 `json:"quota"`
	Usage       []QuotaLine      `json:"usage,omitempty"`
	Addresses   int64            `json:"addresses"`
	CreateIndex uint64           `json:"create_index"`
	ModifyIndex uint64           `json:"modify_index"`
	CreatedAt   Time             `json:"created_at,omitzero"`
	UpdatedAt   Time             `json:"updated_at,omitzero"`
}

// TenantCreate describes a tenant to create. A nil Quota sets no limits.
type TenantCreate struct {
	ID          string           `json:"id"`
	Description string           `json:"description,omitempty"`
	Quota       map[string]int64 `json:"quota,omitempty"`
}

// ProjectCreate describes a project to create under a tenant.
type ProjectCreate struct {
	Name        string           `json:"name"`
	Description string           `json:"description,omitempty"`
	Quota       map[string]int64 `json:"quota,omitempty"`
}

// TenancyUpdate changes a tenant or a project; nil fields are left alone.
// A given Quota replaces the whole quota: resources it does not list
// become unlimited, and an empty map removes every limit.
type TenancyUpdate struct {
	Description *string
	Quota       *map[string]int64
}

// MarshalJSON encodes the update, with a Quota pointing to a nil map sent
// as {} (every limit removed) rather than null (left alone).
func (u TenancyUpdate) MarshalJSON() ([]byte, error) {
	body := struct {
		Description *string           `json:"description,omitempty"`
		Quota       *map[string]int64 `json:"quota,omitempty"`
	}{u.Description, u.Quota}
	if u.Quota != nil && *u.Quota == nil {
		body.Quota = &map[string]int64{}
	}
	return json.Marshal(body)
}

// tenantPath returns the path of a tenant, with more appended.
func tenantPath(id string, more ...string) string {
	p := itemPath(tenantsPath, id)
	for _, m := range more {
		p = itemPath(p, m)
	}
	return p
}

// TenantList lists the tenants with their usage (GET /v1/tenants). A
// tenant token sees its own tenant only.
func (c *Client) TenantList(ctx context.Context, q *QueryOptions) ([]Tenant, *Meta, error) {
	return getList[Tenant](ctx, c, tenantsPath, "tenants", nil, q)
}

// TenantGet reads a tenant with its usage (GET /v1/tenants/{id}).
func (c *Client) TenantGet(ctx context.Context, id string, q *QueryOptions) (*Tenant, *Meta, error) {
	return getOne[Tenant](ctx, c, tenantPath(id), nil, q)
}

// TenantCreate creates a tenant (POST /v1/tenants).
func (c *Client) TenantCreate(ctx context.Context, req TenantCreate, w *WriteOptions) (*Tenant, *Meta, error) {
	return writeOne[Tenant](ctx, c, http.MethodPost, tenantsPath, req, w)
}

// TenantUpdate changes a tenant's description or replaces its quota
// (PATCH /v1/tenants/{id}). Lowering a limit below the usage is allowed:
// it refuses new requests until usage falls under it.
func (c *Client) TenantUpdate(ctx context.Context, id string, u TenancyUpdate, w *WriteOptions) (*Tenant, *Meta, error) {
	return writeOne[Tenant](ctx, c, http.MethodPatch, tenantPath(id), u, w)
}

// TenantDelete deletes a tenant that has no projects and holds nothing
// (DELETE /v1/tenants/{id}) and returns it as it was, without usage.
func (c *Client) TenantDelete(ctx context.Context, id string, w *WriteOptions) (*Tenant, *Meta, error) {
	return writeOne[Tenant](ctx, c, http.MethodDelete, tenantPath(id), nil, w)
}

// ProjectList lists the projects of a tenant with their usage (GET
// /v1/tenants/{id}/projects).
func (c *Client) ProjectList(ctx context.Context, tenant string, q *QueryOptions) ([]Project, *Meta, error) {
	return getList[Project](ctx, c, tenantPath(tenant)+"/projects", "projects", nil, q)
}

// ProjectGet reads a project with its usage (GET
// /v1/tenants/{id}/projects/{name}).
func (c *Client) ProjectGet(ctx context.Context, tenant, name string, q *QueryOptions) (*Project, *Meta, error) {
	return getOne[Project](ctx, c, tenantPath(tenant, "projects", name), nil, q)
}

// ProjectCreate creates a project of an existing tenant (POST
// /v1/tenants/{id}/projects).
func (c *Client) ProjectCreate(ctx context.Context, tenant string, req ProjectCreate, w *WriteOptions) (*Project, *Meta, error) {
	return writeOne[Project](ctx, c, http.MethodPost, tenantPath(tenant)+"/projects", req, w)
}

// ProjectUpdate changes a project's description or replaces its quota
// (PATCH /v1/tenants/{id}/projects/{name}).
func (c *Client) ProjectUpdate(ctx context.Context, tenant, name string, u TenancyUpdate, w *WriteOptions) (*Project, *Meta, error) {
	return writeOne[Project](ctx, c, http.MethodPatch, tenantPath(tenant, "projects", name), u, w)
}

// ProjectDelete deletes a project that holds nothing (DELETE
// /v1/tenants/{id}/projects/{name}) and returns it as it was, without
// usage.
func (c *Client) ProjectDelete(ctx context.Context, tenant, name string, w *WriteOptions) (*Project, *Meta, error) {
	return writeOne[Project](ctx, c, http.MethodDelete, tenantPath(tenant, "projects", name), nil, w)
}
