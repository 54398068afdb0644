package node

import (
	"context"
	"time"

	"github.com/moxxie/moxxie/provider"
)

// meteredProvider counts and times every call to the platform
// (moxxie_provider_requests_total, moxxie_provider_request_duration_seconds)
// by operation, the snake_case name of the method.
type meteredProvider struct {
	p provider.Provider
	m *serverMetrics
}

var _ provider.Provider = meteredProvider{}

// metered wraps p; nil stays nil (no platform).
func metered(p provider.Provider, m *serverMetrics) provider.Provider {
	if p == nil {
		return nil
	}
	return meteredProvider{p: p, m: m}
}

// observe records one call of op that began at start.
func (mp meteredProvider) observe(op string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	mp.m.providerRequests.WithLabelValues(op, result).Inc()
	mp.m.providerDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func meter[T any](mp meteredProvider, op string, f func() (T, error)) (T, error) {
	start := time.Now()
	v, err := f()
	mp.observe(op, start, err)
	return v, err
}

func meter0(mp meteredProvider, op string, f func() error) error {
	start := time.Now()
	err := f()
	mp.observe(op, start, err)
	return err
}

func (mp meteredProvider) Name() string { return mp.p.Name() }

func (mp meteredProvider) Cluster(ctx context.Context) (provider.ClusterInfo, error) {
	return meter(mp, "cluster", func() (provider.ClusterInfo, error) { return mp.p.Cluster(ctx) })
}

func (mp meteredProvider) Inventory(ctx context.Context) (provider.Inventory, error) {
	return meter(mp, "inventory", func() (provider.Inventory, error) { return mp.p.Inventory(ctx) })
}

func (mp meteredProvider) Nodes(ctx context.Context) ([]provider.Node, error) {
	return meter(mp, "nodes", func() ([]provider.Node, error) { return mp.p.Nodes(ctx) })
}

func (mp meteredProvider) Guest(ctx context.Context, ref provider.GuestRef) (provider.Guest, error) {
	return meter(mp, "guest", func() (provider.Guest, error) { return mp.p.Guest(ctx, ref) })
}

func (mp meteredProvider) GuestConfig(ctx context.Context, ref provider.GuestRef) (map[string]string, error) {
	return meter(mp, "guest_config", func() (map[string]string, error) { return mp.p.GuestConfig(ctx, ref) })
}

func (mp meteredProvider) NextID(ctx context.Context) (int, error) {
	return meter(mp, "next_id", func() (int, error) { return mp.p.NextID(ctx) })
}

func (mp meteredProvider) task(op string, f func() (provider.Task, error)) (provider.Task, error) {
	return meter(mp, op, f)
}

func (mp meteredProvider) CreateGuest(ctx context.Context, ref provider.GuestRef, spec provider.GuestSpec) (provider.Task, error) {
	return mp.task("create_guest", func() (provider.Task, error) { return mp.p.CreateGuest(ctx, ref, spec) })
}

func (mp meteredProvider) CloneGuest(ctx context.Context, spec provider.CloneSpec) (provider.Task, error) {
	return mp.task("clone_guest", func() (provider.Task, error) { return mp.p.CloneGuest(ctx, spec) })
}

func (mp meteredProvider) ConfigureGuest(ctx context.Context, ref provider.GuestRef, spec provider.GuestSpec) (provider.Task, error) {
	return mp.task("configure_guest", func() (provider.Task, error) { return mp.p.ConfigureGuest(ctx, ref, spec) })
}

func (mp meteredProvider) SetGuestConfig(ctx context.Context, ref provider.GuestRef, set map[string]string, del []string) (provider.Task, error) {
	return mp.task("set_guest_config", func() (provider.Task, error) { return mp.p.SetGuestConfig(ctx, ref, set, del) })
}

func (mp meteredProvider) StartGuest(ctx context.Context, ref provider.GuestRef) (provider.Task, error) {
	return mp.task("start_guest", func() (provider.Task, error) { return mp.p.StartGuest(ctx, ref) })
}

func (mp meteredProvider) StopGuest(ctx context.Context, ref provider.GuestRef) (provider.Task, error) {
	return mp.task("stop_guest", func() (provider.Task, error) { return mp.p.StopGuest(ctx, ref) })
}

func (mp meteredProvider) ShutdownGuest(ctx context.Context, ref provider.GuestRef, timeout time.Duration) (provider.Task, error) {
	return mp.task("shutdown_guest", func() (provider.Task, error) { return mp.p.ShutdownGuest(ctx, ref, timeout) })
}

func (mp meteredProvider) DeleteGuest(ctx context.Context, ref provider.GuestRef) (provider.Task, error) {
	return mp.task("delete_guest", func() (provider.Task, error) { return mp.p.DeleteGuest(ctx, ref) })
}

func (mp meteredProvider) MigrateGuest(ctx context.Context, ref provider.GuestRef, target string, online bool) (provider.Task, error) {
	return mp.task("migrate_guest", func() (provider.Task, error) { return mp.p.MigrateGuest(ctx, ref, target, online) })
}

func (mp meteredProvider) Snapshots(ctx context.Context, ref provider.GuestRef) ([]provider.Snapshot, error) {
	return meter(mp, "snapshots", func() ([]provider.Snapshot, error) { return mp.p.Snapshots(ctx, ref) })
}

func (mp meteredProvider) CreateSnapshot(ctx context.Context, ref provider.GuestRef, name, description string) (provider.Task, error) {
	return mp.task("create_snapshot", func() (provider.Task, error) { return mp.p.CreateSnapshot(ctx, ref, name, description) })
}

func (mp meteredProvider) DeleteSnapshot(ctx context.Context, ref provider.GuestRef, name string) (provider.Task, error) {
	return mp.task("delete_snapshot", func() (provider.Task, error) { return mp.p.DeleteSnapshot(ctx, ref, name) })
}

func (mp meteredProvider) RollbackSnapshot(ctx context.Context, ref provider.GuestRef, name string) (provider.Task, error) {
	return mp.task("rollback_snapshot", func() (provider.Task, error) { return mp.p.RollbackSnapshot(ctx, ref, name) })
}

func (mp meteredProvider) Backup(ctx context.Context, ref provider.GuestRef, spec provider.BackupSpec) (provider.Task, error) {
	return mp.task("backup", func() (provider.Task, error) { return mp.p.Backup(ctx, ref, spec) })
}

func (mp meteredProvider) StorageContent(ctx context.Context, node, storage, content string) ([]provider.Content, error) {
	return meter(mp, "storage_content", func() ([]provider.Content, error) { return mp.p.StorageContent(ctx, node, storage, content) })
}

func (mp meteredProvider) DeleteVolume(ctx context.Context, node, volid string) (provider.Task, error) {
	return mp.task("delete_volume", func() (provider.Task, error) { return mp.p.DeleteVolume(ctx, node, volid) })
}

func (mp meteredProvider) RestoreBackup(ctx context.Context, ref provider.GuestRef, volid, storage string) (provider.Task, error) {
	return mp.task("restore_backup", func() (provider.Task, error) { return mp.p.RestoreBackup(ctx, ref, volid, storage) })
}

func (mp meteredProvider) RestoreBackupOver(ctx context.Context, ref provider.GuestRef, volid, storage string) (provider.Task, error) {
	return mp.task("restore_backup", func() (provider.Task, error) { return mp.p.RestoreBackupOver(ctx, ref, volid, storage) })
}

func (mp meteredProvider) AddDisk(ctx context.Context, ref provider.GuestRef, slot, storage string, sizeGiB int) (provider.Task, error) {
	return mp.task("add_disk", func() (provider.Task, error) { return mp.p.AddDisk(ctx, ref, slot, storage, sizeGiB) })
}

func (mp meteredProvider) AttachDisk(ctx context.Context, ref provider.GuestRef, slot, volid string) (provider.Task, error) {
	return mp.task("attach_disk", func() (provider.Task, error) { return mp.p.AttachDisk(ctx, ref, slot, volid) })
}

func (mp meteredProvider) DetachDisk(ctx context.Context, ref provider.GuestRef, slot string) (provider.Task, error) {
	return mp.task("detach_disk", func() (provider.Task, error) { return mp.p.DetachDisk(ctx, ref, slot) })
}

func (mp meteredProvider) ResizeDisk(ctx context.Context, ref provider.GuestRef, slot string, sizeGiB int) (provider.Task, error) {
	return mp.task("resize_disk", func() (provider.Task, error) { return mp.p.ResizeDisk(ctx, ref, slot, sizeGiB) })
}

func (mp meteredProvider) MoveDisk(ctx context.Context, ref provider.GuestRef, slot, storage string, deleteSource bool) (provider.Task, error) {
	return mp.task("move_disk", func() (provider.Task, error) { return mp.p.MoveDisk(ctx, ref, slot, storage, deleteSource) })
}

func (mp meteredProvider) Disks(ctx context.Context, ref provider.GuestRef) ([]provider.Disk, error) {
	return meter(mp, "disks", func() ([]provider.Disk, error) { return mp.p.Disks(ctx, ref) })
}

func (mp meteredProvider) Networks(ctx context.Context, node string) ([]provider.Network, error) {
	return meter(mp, "networks", func() ([]provider.Network, error) { return mp.p.Networks(ctx, node) })
}

func (mp meteredProvider) TaskStatus(ctx context.Context, task provider.Task) (provider.TaskStatus, error) {
	return meter(mp, "task_status", func() (provider.TaskStatus, error) { return mp.p.TaskStatus(ctx, task) })
}

func (mp meteredProvider) WaitTask(ctx context.Context, task provider.Task, progress func(provider.TaskStatus)) (provider.TaskStatus, error) {
	return meter(mp, "wait_task", func() (provider.TaskStatus, error) { return mp.p.WaitTask(ctx, task, progress) })
}

func (mp meteredProvider) SDNZones(ctx context.Context) ([]provider.SDNZone, error) {
	return meter(mp, "sdn_zones", func() ([]provider.SDNZone, error) { return mp.p.SDNZones(ctx) })
}

func (mp meteredProvider) CreateSDNZone(ctx context.Context, zone provider.SDNZone) error {
	return meter0(mp, "create_sdn_zone", func() error { return mp.p.CreateSDNZone(ctx, zone) })
}

func (mp meteredProvider) UpdateSDNZone(ctx context.Context, zone provider.SDNZone) error {
	return meter0(mp, "update_sdn_zone", func() error { return mp.p.UpdateSDNZone(ctx, zone) })
}

func (mp meteredProvider) DeleteSDNZone(ctx context.Context, id string) error {
	return meter0(mp, "delete_sdn_zone", func() error { return mp.p.DeleteSDNZone(ctx, id) })
}

func (mp meteredProvider) SDNVnets(ctx context.Context) ([]provider.SDNVnet, error) {
	return meter(mp, "sdn_vnets", func() ([]provider.SDNVnet, error) { return mp.p.SDNVnets(ctx) })
}

func (mp meteredProvider) CreateSDNVnet(ctx context.Context, vnet provider.SDNVnet) error {
	return meter0(mp, "create_sdn_vnet", func() error { return mp.p.CreateSDNVnet(ctx, vnet) })
}

func (mp meteredProvider) UpdateSDNVnet(ctx context.Context, vnet provider.SDNVnet) error {
	return meter0(mp, "update_sdn_vnet", func() error { return mp.p.UpdateSDNVnet(ctx, vnet) })
}

func (mp meteredProvider) DeleteSDNVnet(ctx context.Context, id string) error {
	return meter0(mp, "delete_sdn_vnet", func() error { return mp.p.DeleteSDNVnet(ctx, id) })
}

func (mp meteredProvider) ApplySDN(ctx context.Context) (provider.Task, error) {
	return mp.task("apply_sdn", func() (provider.Task, error) { return mp.p.ApplySDN(ctx) })
}
