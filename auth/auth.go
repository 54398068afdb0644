// Package auth is Moxxie's authorization policy: the roles a token can
// have, the permissions every API route declares, and which roles hold
// which permissions. It is pure: the API asks it, with the route's
// declared permission and the token's role and tenant, whether a request
// may proceed. Anything not granted here is denied.
package auth

import (
	"fmt"
	"slices"
)

// Role is what a token may do. Tenant roles act only within the token's
// tenant.
type Role string

// The roles.
const (
	// RoleAdmin may do everything, an agent's calls included.
	RoleAdmin Role = "admin"
	// RoleOperator runs the platform: everything but tokens, secrets and
	// restoring snapshots.
	RoleOperator Role = "operator"
	// RoleAuditor reads everything, the audit log included, and changes
	// nothing.
	RoleAuditor Role = "auditor"
	// RoleTenantAdmin manages its tenant's VMs, addresses and names.
	RoleTenantAdmin Role = "tenant-admin"
	// RoleTenantUser operates its tenant's VMs and addresses.
	RoleTenantUser Role = "tenant-user"
	// RoleTenantViewer reads its tenant's objects.
	RoleTenantViewer Role = "tenant-viewer"
	// RoleAgent is a host agent: it reads the network plan and reports.
	RoleAgent Role = "agent"
	// RoleSite is a server of another site, authenticated by its server
	// certificate: it sends the DR plans it holds for this site.
	RoleSite Role = "site"
)

// Roles lists every role, in the order documentation shows them.
var Roles = []Role{RoleAdmin, RoleOperator, RoleAuditor, RoleTenantAdmin, RoleTenantUser, RoleTenantViewer, RoleAgent, RoleSite}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Tenanted reports whether tokens of role r must name a tenant and act
// only within it.
func (r Role) Tenanted() bool {
	return r == RoleTenantAdmin || r == RoleTenantUser || r == RoleTenantViewer
}

// Permission is what a route needs: a resource and an action.
type Permission string

// Permissions. Every API route declares exactly one; PermPublic routes
// need no token.
const (
	PermPublic Permission = "public"

	PermStatusRead    Permission = "status:read"
	PermMetricsRead   Permission = "metrics:read"
	PermClusterWrite  Permission = "cluster:write"
	PermSettingRead   Permission = "setting:read"
	PermSettingWrite  Permission = "setting:write"
	PermTokenRead     Permission = "token:read"
	PermTokenWrite    Permission = "token:write"
	PermSnapshotRead  Permission = "snapshot:read"
	PermSnapshotWrite Permission = "snapshot:write"
	PermIPAMRead      Permission = "ipam:read"
	PermIPAMWrite     Permission = "ipam:write"
	PermIPAMAllocate  Permission = "ipam:allocate"
	PermDNSRead       Permission = "dns:read"
	PermDNSWrite      Permission = "dns:write"
	PermInventoryRead Permission = "inventory:read"
	PermVMWrite       Permission = "vm:write"
	PermVMPower       Permission = "vm:power"
	PermOperationRead Permission = "operation:read"
	PermSecretRead    Permission = "secret:read"
	PermSecretWrite   Permission = "secret:write"
	PermAuditRead     Permission = "audit:read"
	PermTenantRead    Permission = "tenant:read"
	PermTenantWrite   Permission = "tenant:write"
	PermReportRead    Permission = "report:read"
	PermCapacityRead  Permission = "capacity:read"
	PermBillingWrite  Permission = "billing:write"
	PermSDNRead       Permission = "sdn:read"
	PermSDNWrite      Permission = "sdn:write"
	// PermStorageRead reads storage pools, volumes, snapshot and backup
	// policies, their runs, snapshots and backups; PermStorageWrite
	// changes them and runs volume operations and restores.
	PermStorageRead  Permission = "storage:read"
	PermStorageWrite Permission = "storage:write"
	// PermAgent is what a host agent does: enrol its host, read its
	// network plan and report what it applied.
	PermAgent Permission = "agent"
	// PermDRRead reads DR plans, their replicas, runs and conflicts;
	// PermDRWrite writes plans and runs failovers and drills;
	// PermDRReplicate is what sites ask of each other: send a site's
	// plans to their recovery site, release copies for a failback.
	PermDRRead      Permission = "dr:read"
	PermDRWrite     Permission = "dr:write"
	PermDRReplicate Permission = "dr:replicate"
	// PermDebugRead reads a server's insides: Go profiles
	// (/debug/pprof), its effective configuration and its recent logs.
	// Only admins hold it: profiles show memory and call stacks.
	PermDebugRead Permission = "debug:read"
)

// Scope says how a route treats tenant tokens.
type Scope uint8

const (
	// ScopeCluster routes act on the whole cluster: tenant tokens are
	// refused whatever their role holds.
	ScopeCluster Scope = iota
	// ScopeTenant routes act on objects that belong to a tenant: a
	// tenant token sees and touches only its own tenant's.
	ScopeTenant
)

// grants lists each role's permissions.
var grants = map[Role][]Permission{
	RoleAdmin: {
		PermStatusRead, PermMetricsRead, PermClusterWrite, PermSettingRead, PermSettingWrite, PermTokenRead, PermTokenWrite,
		PermSnapshotRead, PermSnapshotWrite, PermIPAMRead, PermIPAMWrite, PermIPAMAllocate, PermDNSRead, PermDNSWrite,
		PermInventoryRead, PermVMWrite, PermVMPower, PermOperationRead, PermSecretRead, PermSecretWrite, PermAuditRead,
		PermTenantRead, PermTenantWrite, PermReportRead, PermCapacityRead, PermBillingWrite,
		PermSDNRead, PermSDNWrite, PermAgent, PermDebugRead, PermStorageRead, PermStorageWrite,
		PermDRRead, PermDRWrite, PermDRReplicate,
	},
	RoleOperator: {
		PermStatusRead, PermMetricsRead, PermClusterWrite, PermSettingRead, PermSettingWrite, PermSnapshotRead,
		PermIPAMRead, PermIPAMWrite, PermIPAMAllocate, PermDNSRead, PermDNSWrite,
		PermInventoryRead, PermVMWrite, PermVMPower, PermOperationRead, PermSecretRead,
		PermTenantRead, PermTenantWrite, PermReportRead, PermCapacityRead,
		PermSDNRead, PermSDNWrite, PermStorageRead, PermStorageWrite, PermDRRead, PermDRWrite,
	},
	RoleAuditor: {
		PermStatusRead, PermMetricsRead, PermSettingRead, PermTokenRead, PermIPAMRead, PermDNSRead,
		PermInventoryRead, PermOperationRead, PermSecretRead, PermAuditRead,
		PermTenantRead, PermReportRead, PermCapacityRead, PermSDNRead, PermStorageRead, PermDRRead,
	},
	RoleTenantAdmin: {
		PermIPAMRead, PermIPAMAllocate, PermDNSRead, PermInventoryRead, PermVMWrite, PermVMPower, PermOperationRead,
		PermTenantRead, PermReportRead, PermStorageRead, PermStorageWrite,
	},
	RoleTenantUser: {
		PermIPAMRead, PermIPAMAllocate, PermDNSRead, PermInventoryRead, PermVMPower, PermOperationRead,
		PermTenantRead, PermStorageRead,
	},
	RoleTenantViewer: {
		PermIPAMRead, PermDNSRead, PermInventoryRead, PermOperationRead, PermTenantRead, PermReportRead, PermStorageRead,
	},
	RoleAgent: {
		PermAgent, PermStatusRead,
	},
	RoleSite: {
		PermDRReplicate, PermDRRead, PermStatusRead,
	},
}

// Decision is the outcome of Authorize.
type Decision struct {
	// Allowed is true when the request may proceed.
	Allowed bool
	// Tenant, when not empty, confines the request to that tenant's
	// objects: reads are filtered to it and writes must be for it.
	Tenant string
	// Reason says why a request was denied.
	Reason string
}

// Authorize decides whether a token of role with tenant may use a route
// that needs perm in scope.
func Authorize(role Role, tenant string, perm Permission, scope Scope) Decision {
	if perm == PermPublic {
		return Decision{Allowed: true}
	}
	if !role.Valid() {
		return Decision{Reason: fmt.Sprintf("unknown role %q", role)}
	}
	if !slices.Contains(grants[role], perm) {
		return Decision{Reason: fmt.Sprintf("role %s lacks permission %s", role, perm)}
	}
	if !role.Tenanted() {
		return Decision{Allowed: true}
	}
	if tenant == "" {
		return Decision{Reason: fmt.Sprintf("a %s token must name a tenant", role)}
	}
	if scope != ScopeTenant {
		return Decision{Reason: fmt.Sprintf("role %s acts within tenant %s; this route acts on the whole cluster", role, tenant)}
	}
	return Decision{Allowed: true, Tenant: tenant}
}

// Grants returns the permissions of role, for documentation and tests.
func Grants(role Role) []Permission { return slices.Clone(grants[role]) }
