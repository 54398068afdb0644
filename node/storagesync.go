package node

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/provider"
	"github.com/moxxie/moxxie/storage"
)

// defaultStorageSyncInterval is how often the leader lists the storages'
// backups and disk volumes.
const defaultStorageSyncInterval = 30 * time.Second

// runStorageSync lists, every interval and when kicked, the content of
// every storage that holds backups or disk images, and records it: the
// backups policies and coverage work from, and the volumes that count
// against disk quotas.
func (s *Server) runStorageSync(stop <-chan struct{}) {
	if s.provider == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	every := time.Duration(s.cfg.Proxmox.StorageSyncInterval)
	if every <= 0 {
		every = defaultStorageSyncInterval
	}
	wait := time.Duration(0)
	for {
		select {
		case <-stop:
			return
		case <-time.After(wait):
		case <-s.storageKick:
		}
		if err := s.syncStorage(ctx); err != nil && ctx.Err() == nil {
			s.logger.Warn("storage sync failed", "error", err)
		}
		wait = every
	}
}

// kickStorageSync asks the storage sync to run now.
func (s *Server) kickStorageSync() {
	select {
	case s.storageKick <- struct{}{}:
	default:
	}
}

// storageListing is one storage to list and the node to list it from.
type storageListing struct {
	id, node, storage string
}

// storageListings picks, from the inventory, each storage that can hold
// backups or disks once: a shared storage from its first node, a local
// one from its own node.
func storageListings(list []*fsm.InvStorage) []storageListing {
	var out []storageListing
	seen := map[string]bool{}
	for _, st := range list {
		if st.Gone || st.Status != "available" || !slices.ContainsFunc(st.Content, func(c string) bool {
			return c == "backup" || c == "images" || c == "rootdir"
		}) {
			continue
		}
		id := st.Node + "/" + st.Storage
		if st.Shared {
			id = st.Storage
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, storageListing{id: id, node: st.Node, storage: st.Storage})
	}
	return out
}

// syncStorage lists every storage and records what it holds. A storage
// that cannot be listed keeps its last listing.
func (s *Server) syncStorage(ctx context.Context) error {
	_, inv, err := s.State().InventoryStorage(nil, false)
	if err != nil {
		return err
	}
	req := &fsm.StorageSyncRequest{}
	var firstErr error
	for _, l := range storageListings(inv) {
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		content, err := s.provider.StorageContent(lctx, l.node, l.storage, "")
		cancel()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		req.StorageIDs = append(req.StorageIDs, l.id)
		for _, c := range content {
			switch c.Content {
			case "backup":
				req.Backups = append(req.Backups, backupOf(l, c))
			case "images", "rootdir":
				req.Volumes = append(req.Volumes, fsm.Volume{
					VolID: c.VolID, StorageID: l.id, Node: l.node, Storage: l.storage,
					VMID: c.VMID, Size: c.Size, Format: c.Format, Content: c.Content,
				})
			}
		}
	}
	if len(req.StorageIDs) > 0 {
		if _, err := s.raftApply(req); err != nil {
			return err
		}
		s.storageCycles.Add(1)
	}
	return firstErr
}

// backupOf turns a listed backup into its record.
func backupOf(l storageListing, c provider.Content) fsm.Backup {
	b := fsm.Backup{
		VolID: c.VolID, StorageID: l.id, Node: l.node, Storage: l.storage, VMID: c.VMID,
		Time: fsm.Timestamp(c.Created.UnixNano()), Size: c.Size, Format: c.Format, Notes: c.Notes, PlatformProtected: c.Protected,
	}
	if c.Created.IsZero() {
		b.Time = 0
	}
	switch {
	case strings.Contains(c.VolID, "vzdump-qemu-"):
		b.Kind = string(provider.KindVM)
	case strings.Contains(c.VolID, "vzdump-lxc-"):
		b.Kind = string(provider.KindContainer)
	}
	if policy, run, ok := storage.ParseBackupNotes(c.Notes); ok {
		b.Policy, b.Run = policy, run
	}
	return b
}

// awaitStorageSync asks for a storage sync and waits, a bounded time,
// until one that started after the call has been recorded: the sync
// running at the call may have listed before the change, the one after it
// has not.
func (s *Server) awaitStorageSync(ctx context.Context) {
	target := s.storageCycles.Load() + 2
	deadline := time.Now().Add(time.Minute)
	for s.storageCycles.Load() < target && time.Now().Before(deadline) {
		s.kickStorageSync()
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}
