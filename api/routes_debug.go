package api

import (
	"net/http"

	"github.com/moxxie/moxxie/auth"
)

// debugRoutes are the admin-only routes for profiling and support: Go's
// profiles under /debug/pprof (the paths go tool pprof expects), and this
// server's configuration and recent logs under /v1/debug. All are local:
// each server answers for itself and never forwards them, so a profile
// of a follower is the follower's.
var debugRoutes = []route{
	{Route{http.MethodGet, "/debug/pprof/", KindLocal, auth.PermDebugRead, auth.ScopeCluster}, bodyNone, (*server).handlePprofIndex},
	{Route{http.MethodGet, "/debug/pprof/cmdline", KindLocal, auth.PermDebugRead, auth.ScopeCluster}, bodyNone, (*server).handlePprofCmdline},
	{Route{http.MethodGet, "/debug/pprof/profile", KindLocal, auth.PermDebugRead, auth.ScopeCluster}, bodyNone, (*server).handlePprofProfile},
	{Route{http.MethodGet, "/debug/pprof/trace", KindLocal, auth.PermDebugRead, auth.ScopeCluster}, bodyNone, (*server).handlePprofTrace},
	{Route{http.MethodGet, "/debug/pprof/symbol", KindLocal, auth.PermDebugRead, auth.ScopeCluster}, bodyNone, (*server).handlePprofSymbol},
	{Route{http.MethodPost, "/debug/pprof/symbol", KindLocal, auth.PermDebugRead, auth.ScopeCluster}, bodyNone, (*server).handlePprofSymbol},
	{Route{http.MethodGet, "/debug/pprof/allocs", KindLocal, auth.PermDebugRead, auth.ScopeCluster}, bodyNone, pprofNamed("allocs")},
	{Route{http.MethodGet, "/debug/pprof/block", KindLocal, auth.PermDebugRead, auth.ScopeCluster}, bodyNone, pprofNamed("block")},
	{Route{http.MethodGet, "/debug/pprof/goroutine", KindLocal, auth.PermDebugRead, auth.ScopeCluster}, bodyNone, pprofNamed("goroutine")},
	{Route{http.MethodGet, "/debug/pprof/heap", KindLocal, auth.PermDebugRead, auth.ScopeCluster}, bodyNone, pprofNamed("heap")},
	{Route{http.MethodGet, "/debug/pprof/mutex", KindLocal, auth.PermDebugRead, auth.ScopeCluster}, bodyNone, pprofNamed("mutex")},
	{Route{http.MethodGet, "/debug/pprof/threadcreate", KindLocal, auth.PermDebugRead, auth.ScopeCluster}, bodyNone, pprofNamed("threadcreate")},

	{Route{http.MethodGet, "/v1/debug/config", KindLocal, auth.PermDebugRead, auth.ScopeCluster}, bodyNone, (*server).handleDebugConfig},
	{Route{http.MethodGet, "/v1/debug/logs", KindLocal, auth.PermDebugRead, auth.ScopeCluster}, bodyNone, (*server).handleDebugLogs},
}
