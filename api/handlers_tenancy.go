package api

import (
	"net/http"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/quota"
)

// tenancyRoutes are the endpoints of tenants, their projects and quotas.
// Tenant tokens see their own tenant (and its projects and usage) and
// change nothing here; admins and operators manage them.
var tenancyRoutes = []route{
	{Route{http.MethodGet, "/v1/tenants", KindRead, auth.PermTenantRead, auth.ScopeTenant}, bodyNone, (*server).handleTenantList},
	{Route{http.MethodPost, "/v1/tenants", KindWrite, auth.PermTenantWrite, auth.ScopeCluster}, bodyJSON, (*server).handleTenantCreate},
	{Route{http.MethodGet, "/v1/tenants/{id}", KindRead, auth.PermTenantRead, auth.ScopeTenant}, bodyNone, (*server).handleTenantGet},
	{Route{http.MethodPatch, "/v1/tenants/{id}", KindWrite, auth.PermTenantWrite, auth.ScopeCluster}, bodyJSON, (*server).handleTenantUpdate},
	{Route{http.MethodDelete, "/v1/tenants/{id}", KindWrite, auth.PermTenantWrite, auth.ScopeCluster}, bodyNone, (*server).handleTenantDelete},
	{Route{http.MethodGet, "/v1/tenants/{id}/projects", KindRead, auth.PermTenantRead, auth.ScopeTenant}, bodyNone, (*server).handleProjectList},
	{Route{http.MethodPost, "/v1/tenants/{id}/projects", KindWrite, auth.PermTenantWrite, auth.ScopeCluster}, bodyJSON, (*server).handleProjectCreate},
	{Route{http.MethodGet, "/v1/tenants/{id}/projects/{name}", KindRead, auth.PermTenantRead, auth.ScopeTenant}, bodyNone, (*server).handleProjectGet},
	{Route{http.MethodPatch, "/v1/tenants/{id}/projects/{name}", KindWrite, auth.PermTenantWrite, auth.ScopeCluster}, bodyJSON, (*server).handleProjectUpdate},
	{Route{http.MethodDelete, "/v1/tenants/{id}/projects/{name}", KindWrite, auth.PermTenantWrite, auth.ScopeCluster}, bodyNone, (*server).handleProjectDelete},
}

// TenantRequest is the body of POST /v1/tenants.
type TenantRequest struct {
	ID          string       `json:"id"`
	Description string       `json:"description"`
	Quota       quota.Limits `json:"quota"`
}

// ProjectRequest is the body of POST /v1/tenants/{id}/projects.
type ProjectRequest struct {
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Quota       quota.Limits `json:"quota"`
}

// TenancyUpdate is the body of PATCH on a tenant or project: a given
// description replaces the old one, a given quota replaces the whole
// quota (an empty object removes every limit).
type TenancyUpdate struct {
	Description *string       `json:"description"`
	Quota       *quota.Limits `json:"quota"`
}

// change returns the update as the FSM's change.
func (u *TenancyUpdate) change() fsm.ScopeChange {
	c := fsm.ScopeChange{Description: u.Description}
	if u.Quota != nil {
		c.Quota, c.SetQuota = *u.Quota, true
	}
	return c
}

// QuotaLine is one resource of a scope: its limit (absent when
// unlimited), what is used and what is left.
type QuotaLine struct {
	Resource quota.Resource `json:"resource"`
	Limit    *int64         `json:"limit,omitempty"`
	Used     int64          `json:"used"`
	Free     *int64         `json:"free,omitempty"`
}

// TenantView is a tenant with its usage against its quota.
type TenantView struct {
	*fsm.Tenant
	Usage     []QuotaLine `json:"usage"`
	Addresses int64       `json:"addresses"`
}

// ProjectView is a project with its usage against its quota.
type ProjectView struct {
	*fsm.Project
	Usage     []QuotaLine `json:"usage"`
	Addresses int64       `json:"addresses"`
}

// TenantList is the body of GET /v1/tenants.
type TenantList struct {
	Tenants []TenantView `json:"tenants"`
}

// ProjectList is the body of GET /v1/tenants/{id}/projects.
type ProjectList struct {
	Projects []ProjectView `json:"projects"`
}

// quotaLines puts usage next to limits, one line per resource in the
// fixed order.
func quotaLines(limits quota.Limits, u *fsm.Usage) []QuotaLine {
	out := make([]QuotaLine, 0, len(quota.Resources))
	for _, r := range quota.Resources {
		l := QuotaLine{Resource: r, Used: u.Amounts[r]}
		if lim, ok := limits[r]; ok {
			free := max(0, lim-l.Used)
			l.Limit, l.Free = &lim, &free
		}
		out = append(out, l)
	}
	return out
}

func tenantView(st *fsm.Store, t *fsm.Tenant) (TenantView, error) {
	u, err := st.UsageOf(t.ID)
	if err != nil {
		return TenantView{}, err
	}
	return TenantView{Tenant: t, Usage: quotaLines(t.Quota, u), Addresses: u.Addresses}, nil
}

func projectView(st *fsm.Store, p *fsm.Project) (ProjectView, error) {
	u, err := st.UsageOf(p.ID)
	if err != nil {
		return ProjectView{}, err
	}
	return ProjectView{Project: p, Usage: quotaLines(p.Quota, u), Addresses: u.Addresses}, nil
}

// tenantID returns the {id} path value, which a tenant token may only
// name as its own tenant: another tenant is not found, as if it did not
// exist.
func tenantID(c *call) (string, error) {
	id := c.r.PathValue("id")
	if !fsm.ValidName(id) {
		return "", invalid("id", "tenant id %q must be 1-63 lower-case letters, digits, '-', '_' or '.'", id)
	}
	if !visible(c, id) {
		return "", notFoundError("id", "tenant", id)
	}
	return id, nil
}

func (s *server) handleTenantList(c *call) error {
	return serveViews(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.Tenant, error) {
		idx, l, err := st.Tenants(ws)
		return idx, filterVisible(c, l, func(t *fsm.Tenant) string { return t.ID }), err
	}, tenantView, func(l []TenantView) any { return TenantList{Tenants: l} })
}

func (s *server) handleTenantGet(c *call) error {
	id, err := tenantID(c)
	if err != nil {
		return err
	}
	return serveView(s, c, "id", "tenant", id, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *fsm.Tenant, error) {
		return st.Tenant(ws, id)
	}, tenantView)
}

// serveViews answers a list read whose objects are shown with their
// usage; it supports blocking queries.
func serveViews[T, V any](s *server, c *call, read func(*fsm.Store, memdb.WatchSet) (uint64, []*T, error),
	view func(*fsm.Store, *T) (V, error), wrap func([]V) any) error {
	var views []V
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		idx, list, err := read(st, ws)
		if err != nil {
			return 0, err
		}
		views = make([]V, 0, len(list))
		for _, o := range list {
			v, err := view(st, o)
			if err != nil {
				return 0, err
			}
			views = append(views, v)
		}
		return idx, nil
	})
	if err != nil {
		return err
	}
	c.setIndex(idx)
	writeJSON(c.w, http.StatusOK, wrap(views))
	return nil
}

// serveView answers the read of one object shown with its usage, or a 404
// naming field; it supports blocking queries.
func serveView[T, V any](s *server, c *call, field, what, id string, read func(*fsm.Store, memdb.WatchSet) (uint64, *T, error),
	view func(*fsm.Store, *T) (V, error)) error {
	var out *V
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		idx, o, err := read(st, ws)
		if err != nil || o == nil {
			out = nil
			return idx, err
		}
		v, err := view(st, o)
		out = &v
		return idx, err
	})
	if err != nil {
		return err
	}
	c.setIndex(idx)
	if out == nil {
		return notFoundError(field, what, id)
	}
	writeJSON(c.w, http.StatusOK, out)
	return nil
}

func (s *server) handleTenantCreate(c *call) error {
	var req TenantRequest
	if err := decodeQuotaJSON(c.body, &req); err != nil {
		return err
	}
	cmd := &fsm.TenantCreateRequest{Tenant: fsm.Tenant{ID: req.ID, Description: req.Description, Quota: req.Quota}}
	return s.propose(c, cmd, http.StatusCreated, s.renderTenant)
}

func (s *server) handleTenantUpdate(c *call) error {
	id, err := tenantID(c)
	if err != nil {
		return err
	}
	var req TenancyUpdate
	if err := decodeQuotaPatch(c.body, &req); err != nil {
		return err
	}
	cmd := &fsm.TenantUpdateRequest{ID: id, ScopeChange: req.change()}
	return s.propose(c, cmd, http.StatusOK, s.renderTenant)
}

func (s *server) handleTenantDelete(c *call) error {
	id, err := tenantID(c)
	if err != nil {
		return err
	}
	return s.propose(c, &fsm.TenantDeleteRequest{ID: id}, http.StatusOK, nil)
}

// renderTenant shows a written tenant with its usage.
func (s *server) renderTenant(v any) (any, error) {
	t, err := resultOf[fsm.Tenant](v)
	if err != nil {
		return nil, err
	}
	return tenantView(s.b.State(), t)
}

// renderProject shows a written project with its usage.
func (s *server) renderProject(v any) (any, error) {
	p, err := resultOf[fsm.Project](v)
	if err != nil {
		return nil, err
	}
	return projectView(s.b.State(), p)
}

// projectID returns the ID of the {id}/{name} project.
func projectID(c *call) (string, error) {
	tenant, err := tenantID(c)
	if err != nil {
		return "", err
	}
	name := c.r.PathValue("name")
	if !fsm.ValidName(name) {
		return "", invalid("name", "project name %q must be 1-63 lower-case letters, digits, '-', '_' or '.'", name)
	}
	return fsm.ProjectID(tenant, name), nil
}

func (s *server) handleProjectList(c *call) error {
	tenant, err := tenantID(c)
	if err != nil {
		return err
	}
	return serveViews(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.Project, error) {
		return st.Projects(ws, tenant)
	}, projectView, func(l []ProjectView) any { return ProjectList{Projects: l} })
}

func (s *server) handleProjectGet(c *call) error {
	id, err := projectID(c)
	if err != nil {
		return err
	}
	return serveView(s, c, "name", "project", id, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *fsm.Project, error) {
		return st.Project(ws, id)
	}, projectView)
}

func (s *server) handleProjectCreate(c *call) error {
	tenant, err := tenantID(c)
	if err != nil {
		return err
	}
	var req ProjectRequest
	if err := decodeQuotaJSON(c.body, &req); err != nil {
		return err
	}
	cmd := &fsm.ProjectCreateRequest{Project: fsm.Project{
		ID: fsm.ProjectID(tenant, req.Name), Tenant: tenant, Name: req.Name, Description: req.Description, Quota: req.Quota,
	}}
	return s.propose(c, cmd, http.StatusCreated, s.renderProject)
}

func (s *server) handleProjectUpdate(c *call) error {
	id, err := projectID(c)
	if err != nil {
		return err
	}
	var req TenancyUpdate
	if err := decodeQuotaPatch(c.body, &req); err != nil {
		return err
	}
	cmd := &fsm.ProjectUpdateRequest{ID: id, ScopeChange: req.change()}
	// The project is addressed by tenant and name; a missing one is on name.
	return withField(s.propose(c, cmd, http.StatusOK, s.renderProject), "name")
}

func (s *server) handleProjectDelete(c *call) error {
	id, err := projectID(c)
	if err != nil {
		return err
	}
	return withField(s.propose(c, &fsm.ProjectDeleteRequest{ID: id}, http.StatusOK, nil), "name")
}

// decodeQuotaJSON decodes the body of a POST that creates a tenant or a
// project, refusing a null limit in its quota.
func decodeQuotaJSON(body []byte, req any) error {
	if err := decodeJSON(body, req, true); err != nil {
		return err
	}
	return checkQuotaNulls(body, false)
}

// decodeQuotaPatch decodes the body of a PATCH of a tenant or a project,
// refusing a null quota or a null limit in it.
func decodeQuotaPatch(body []byte, req *TenancyUpdate) error {
	if err := checkQuotaNulls(body, true); err != nil {
		return err
	}
	return decodePatch(body, req)
}
