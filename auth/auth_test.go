package auth

import "testing"

func TestAuthorize(t *testing.T) {
	cases := []struct {
		name   string
		role   Role
		tenant string
		perm   Permission
		scope  Scope
		allow  bool
		confin string
	}{
		{"public needs nothing", "", "", PermPublic, ScopeCluster, true, ""},
		{"admin everything", RoleAdmin, "", PermSecretWrite, ScopeCluster, true, ""},
		{"unknown role", "reader", "", PermStatusRead, ScopeCluster, false, ""},
		{"operator no tokens", RoleOperator, "", PermTokenWrite, ScopeCluster, false, ""},
		{"auditor reads audit", RoleAuditor, "", PermAuditRead, ScopeCluster, true, ""},
		{"auditor writes nothing", RoleAuditor, "", PermIPAMWrite, ScopeCluster, false, ""},
		{"tenant admin creates VMs in its tenant", RoleTenantAdmin, "acme", PermVMWrite, ScopeTenant, true, "acme"},
		{"tenant user powers VMs", RoleTenantUser, "acme", PermVMPower, ScopeTenant, true, "acme"},
		{"tenant user cannot create VMs", RoleTenantUser, "acme", PermVMWrite, ScopeTenant, false, ""},
		{"tenant viewer reads", RoleTenantViewer, "acme", PermInventoryRead, ScopeTenant, true, "acme"},
		{"tenant token on a cluster route", RoleTenantAdmin, "acme", PermInventoryRead, ScopeCluster, false, ""},
		{"tenant role without tenant", RoleTenantViewer, "", PermInventoryRead, ScopeTenant, false, ""},
		{"agent reads no IPAM", RoleAgent, "", PermIPAMRead, ScopeCluster, false, ""},
		{"agent reads no SDN intent", RoleAgent, "", PermSDNRead, ScopeCluster, false, ""},
		{"agent writes no SDN intent", RoleAgent, "", PermSDNWrite, ScopeCluster, false, ""},
		{"agent acts as an agent", RoleAgent, "", PermAgent, ScopeCluster, true, ""},
		{"admin acts as an agent", RoleAdmin, "", PermAgent, ScopeCluster, true, ""},
		{"operator is no agent", RoleOperator, "", PermAgent, ScopeCluster, false, ""},
		{"operator applies SDN", RoleOperator, "", PermSDNWrite, ScopeCluster, true, ""},
		{"auditor reads SDN", RoleAuditor, "", PermSDNRead, ScopeCluster, true, ""},
		{"auditor changes no SDN", RoleAuditor, "", PermSDNWrite, ScopeCluster, false, ""},
		{"tenant admin has no SDN", RoleTenantAdmin, "acme", PermSDNRead, ScopeCluster, false, ""},
		{"operator manages storage", RoleOperator, "", PermStorageWrite, ScopeCluster, true, ""},
		{"auditor reads storage", RoleAuditor, "", PermStorageRead, ScopeCluster, true, ""},
		{"auditor changes no storage", RoleAuditor, "", PermStorageWrite, ScopeCluster, false, ""},
		{"tenant admin changes its storage", RoleTenantAdmin, "acme", PermStorageWrite, ScopeTenant, true, "acme"},
		{"tenant user reads its storage", RoleTenantUser, "acme", PermStorageRead, ScopeTenant, true, "acme"},
		{"tenant user changes no storage", RoleTenantUser, "acme", PermStorageWrite, ScopeTenant, false, ""},
		{"tenant viewer reads its storage", RoleTenantViewer, "acme", PermStorageRead, ScopeTenant, true, "acme"},
		{"tenant admin has no pool thresholds", RoleTenantAdmin, "acme", PermStorageWrite, ScopeCluster, false, ""},
		{"agent has no storage", RoleAgent, "", PermStorageRead, ScopeCluster, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Authorize(tc.role, tc.tenant, tc.perm, tc.scope)
			if d.Allowed != tc.allow || d.Tenant != tc.confin || !d.Allowed && d.Reason == "" {
				t.Fatalf("Authorize = %+v, want allowed %v tenant %q", d, tc.allow, tc.confin)
			}
		})
	}
}

func TestGrants_OnlyKnownRoles(t *testing.T) {
	for role := range grants {
		if !role.Valid() {
			t.Errorf("grants name unknown role %q", role)
		}
	}
	for _, role := range Roles {
		if len(Grants(role)) == 0 {
			t.Errorf("role %s has no permissions", role)
		}
	}
}
