package api

import (
	"net/http"

	"github.com/moxxie/moxxie/auth"
)

// auditRoutes are the endpoints of the audit log. They only read it: the
// log is written by the writes it records.
var auditRoutes = []route{
	{Route{http.MethodGet, "/v1/audit", KindRead, auth.PermAuditRead, auth.ScopeCluster}, bodyNone, (*server).handleAuditList},
	{Route{http.MethodGet, "/v1/audit/export", KindRead, auth.PermAuditRead, auth.ScopeCluster}, bodyNone, (*server).handleAuditExport},
	{Route{http.MethodGet, "/v1/audit/verify", KindRead, auth.PermAuditRead, auth.ScopeCluster}, bodyNone, (*server).handleAuditVerify},
	{Route{http.MethodGet, "/v1/audit/checkpoints", KindRead, auth.PermAuditRead, auth.ScopeCluster}, bodyNone, (*server).handleAuditCheckpoints},
}
