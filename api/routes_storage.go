package api

import (
	"net/http"
	"slices"

	"github.com/moxxie/moxxie/auth"
)

// storageRoutes are the endpoints of storage management: the pools and
// their thresholds, guest disks (volumes) and the operations on them,
// snapshot and backup policies and their runs, the snapshots and backups
// they made, backup coverage and restores. Pools are the cluster's;
// everything else belongs to the tenant of its guest (a policy to the
// tenant its selector names), and tenant tokens see and change only
// their tenant's. Volume identifiers hold ':' and often '/': a path
// carries them with each slash escaped as %2F, like a local pool's
// node/storage ID.
var storageRoutes = slices.Concat(
	[]route{
		{Route{http.MethodGet, "/v1/storage/pools", KindRead, auth.PermStorageRead, auth.ScopeCluster}, bodyNone, (*server).handleStoragePoolList},
		{Route{http.MethodGet, "/v1/storage/pools/{id}", KindRead, auth.PermStorageRead, auth.ScopeCluster}, bodyNone, (*server).handleStoragePoolGet},
		{Route{http.MethodPut, "/v1/storage/thresholds/{storage}", KindWrite, auth.PermStorageWrite, auth.ScopeCluster}, bodyJSON, (*server).handleStorageThresholds},

		{Route{http.MethodGet, "/v1/storage/volumes", KindRead, auth.PermStorageRead, auth.ScopeTenant}, bodyNone, (*server).handleVolumeList},
		{Route{http.MethodPost, "/v1/storage/volumes", KindWrite, auth.PermStorageWrite, auth.ScopeTenant}, bodyJSON, replayFirst(http.StatusAccepted, (*server).handleVolumeCreate)},
		{Route{http.MethodGet, "/v1/storage/volumes/{volid}", KindRead, auth.PermStorageRead, auth.ScopeTenant}, bodyNone, (*server).handleVolumeGet},
		{Route{http.MethodDelete, "/v1/storage/volumes/{volid}", KindWrite, auth.PermStorageWrite, auth.ScopeTenant}, bodyNone, replayFirst(http.StatusAccepted, volumeDelete)},
		{Route{http.MethodPost, "/v1/storage/volumes/{volid}/resize", KindWrite, auth.PermStorageWrite, auth.ScopeTenant}, bodyJSON, replayFirst(http.StatusAccepted, volumeResize)},
		{Route{http.MethodPost, "/v1/storage/volumes/{volid}/attach", KindWrite, auth.PermStorageWrite, auth.ScopeTenant}, bodyJSON, replayFirst(http.StatusAccepted, volumeAttach)},
		{Route{http.MethodPost, "/v1/storage/volumes/{volid}/detach", KindWrite, auth.PermStorageWrite, auth.ScopeTenant}, bodyOptionalJSON, replayFirst(http.StatusAccepted, volumeDetach)},
		{Route{http.MethodPost, "/v1/storage/volumes/{volid}/move", KindWrite, auth.PermStorageWrite, auth.ScopeTenant}, bodyJSON, replayFirst(http.StatusAccepted, volumeMove)},

		{Route{http.MethodGet, "/v1/storage/snapshots", KindRead, auth.PermStorageRead, auth.ScopeTenant}, bodyNone, (*server).handleSnapshotList},
		{Route{http.MethodPost, "/v1/storage/snapshots/{vmid}/{name}/protect", KindWrite, auth.PermStorageWrite, auth.ScopeTenant}, bodyNone, snapshotRecords.protect(true)},
		{Route{http.MethodPost, "/v1/storage/snapshots/{vmid}/{name}/unprotect", KindWrite, auth.PermStorageWrite, auth.ScopeTenant}, bodyNone, snapshotRecords.protect(false)},

		{Route{http.MethodGet, "/v1/backups", KindRead, auth.PermStorageRead, auth.ScopeTenant}, bodyNone, (*server).handleBackupList},
		{Route{http.MethodGet, "/v1/backups/coverage", KindRead, auth.PermStorageRead, auth.ScopeTenant}, bodyNone, (*server).handleBackupCoverage},
		{Route{http.MethodGet, "/v1/backups/{volid}", KindRead, auth.PermStorageRead, auth.ScopeTenant}, bodyNone, (*server).handleBackupGet},
		{Route{http.MethodPost, "/v1/backups/{volid}/restore", KindWrite, auth.PermStorageWrite, auth.ScopeTenant}, bodyJSON, replayFirst(http.StatusAccepted, (*server).handleBackupRestore)},
		{Route{http.MethodPost, "/v1/backups/{volid}/protect", KindWrite, auth.PermStorageWrite, auth.ScopeTenant}, bodyNone, backupRecords.protect(true)},
		{Route{http.MethodPost, "/v1/backups/{volid}/unprotect", KindWrite, auth.PermStorageWrite, auth.ScopeTenant}, bodyNone, backupRecords.protect(false)},

		{Route{http.MethodGet, "/v1/operations/{id}/items", KindRead, auth.PermOperationRead, auth.ScopeTenant}, bodyNone, (*server).handleRunItems},
	},
	snapshotPolicies.routes(), backupPolicies.routes(),
)

// routes returns the seven routes of a policy collection.
func (k *policyKind) routes() []route {
	item := k.path + "/{id}"
	return []route{
		{Route{http.MethodGet, k.path, KindRead, auth.PermStorageRead, auth.ScopeTenant}, bodyNone, k.handleList},
		{Route{http.MethodPost, k.path, KindWrite, auth.PermStorageWrite, auth.ScopeTenant}, bodyJSON, k.handleCreate},
		{Route{http.MethodGet, item, KindRead, auth.PermStorageRead, auth.ScopeTenant}, bodyNone, k.handleGet},
		{Route{http.MethodPut, item, KindWrite, auth.PermStorageWrite, auth.ScopeTenant}, bodyJSON, k.handleUpdate},
		{Route{http.MethodDelete, item, KindWrite, auth.PermStorageWrite, auth.ScopeTenant}, bodyNone, k.handleDelete},
		{Route{http.MethodGet, item + "/runs", KindRead, auth.PermStorageRead, auth.ScopeTenant}, bodyNone, k.handleRuns},
		{Route{http.MethodPost, item + "/run", KindWrite, auth.PermStorageWrite, auth.ScopeTenant}, bodyNone, replayFirst(http.StatusAccepted, k.handleRun)},
	}
}
