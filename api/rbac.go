package api

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/fsm"
)

// Every route declares the permission it needs: a route without one would
// be served to nobody by accident or to everybody by mistake, so the
// package refuses to start with one.
func init() {
	if err := checkRoutes(routeTable); err != nil {
		panic(err)
	}
}

// checkRoutes reports the first route that declares no permission, or one
// no role holds (a misspelt permission would deny everybody).
func checkRoutes(routes []route) error {
	for _, rt := range routes {
		switch {
		case rt.Perm == "":
			return fmt.Errorf("api: route %s declares no permission", rt.Pattern())
		case rt.Perm == auth.PermPublic:
		case !slices.ContainsFunc(auth.Roles, func(r auth.Role) bool { return slices.Contains(auth.Grants(r), rt.Perm) }):
			return fmt.Errorf("api: route %s needs permission %q, which no role holds", rt.Pattern(), rt.Perm)
		}
		if rt.handle == nil {
			return fmt.Errorf("api: route %s has no handler", rt.Pattern())
		}
	}
	return nil
}

// visible reports whether the call may see an object of tenant: always,
// unless the call is confined to a tenant, and then only that tenant's.
func visible(c *call, tenant string) bool {
	return c.tenant == "" || tenant == c.tenant
}

// filterVisible returns the objects of list the call may see; tenant
// names an object's tenant.
func filterVisible[T any](c *call, list []T, tenant func(T) string) []T {
	if c.tenant == "" {
		return list
	}
	out := make([]T, 0, len(list))
	for _, v := range list {
		if visible(c, tenant(v)) {
			out = append(out, v)
		}
	}
	return out
}

// forTenant is the tenant a write of the call creates objects for: the
// body's tenant, which a confined call may only leave empty or set to its
// own (anything else is a 403 naming field).
func forTenant(c *call, tenant, field string) (string, error) {
	switch {
	case c.tenant == "":
		return tenant, nil
	case tenant == "" || tenant == c.tenant:
		return c.tenant, nil
	}
	return "", &apiError{
		status: http.StatusForbidden, code: CodeForbidden, field: field,
		message: fmt.Sprintf("this token acts within tenant %s; it cannot act for tenant %s", c.tenant, tenant),
	}
}

// opTenant is the tenant an operation belongs to: the one recorded when
// it was created or, for an operation recorded before tenants were, its
// spec's.
func opTenant(op *fsm.Operation) string {
	if op.Tenant == "" && op.Spec != nil {
		return op.Spec.Tenant
	}
	return op.Tenant
}
