package api

import (
	"net/http"

	"github.com/moxxie/moxxie/auth"
)

// secretRoutes are the endpoints of the secrets store. None returns a
// secret's value.
var secretRoutes = []route{
	{Route{http.MethodGet, "/v1/secrets", KindRead, auth.PermSecretRead, auth.ScopeCluster}, bodyNone, (*server).handleSecretList},
	{Route{http.MethodPost, "/v1/secrets/rotate", KindWrite, auth.PermSecretWrite, auth.ScopeCluster}, bodyNone, (*server).handleSecretRotate},
	{Route{http.MethodGet, "/v1/secrets/{name}", KindRead, auth.PermSecretRead, auth.ScopeCluster}, bodyNone, (*server).handleSecretGet},
	{Route{http.MethodPut, "/v1/secrets/{name}", KindWrite, auth.PermSecretWrite, auth.ScopeCluster}, bodyJSON, (*server).handleSecretPut},
	{Route{http.MethodDelete, "/v1/secrets/{name}", KindWrite, auth.PermSecretWrite, auth.ScopeCluster}, bodyNone, (*server).handleSecretDelete},
}
