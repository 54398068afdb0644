package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/moxxie/moxxie/provider"
	"github.com/moxxie/moxxie/provider/proxmox"
	"go.opentelemetry.io/otel/trace"
)

// newProvider builds the platform the proxmox section describes; nil
// when it names none. The token secret is read from its file, which must
// not be readable by group or others, or from the secrets store through
// resolve when token_secret is a secret:NAME reference: that one can only
// be read once this server's state has caught up, so the provider is then
// built on first use (see lazyProvider).
func newProvider(cfg ProxmoxConfig, logger *slog.Logger, tp trace.TracerProvider, resolve func(name string) (string, error)) (provider.Provider, error) {
	if cfg.URL == "" {
		return nil, nil
	}
	if name, ok := strings.CutPrefix(cfg.TokenSecret, secretRefPrefix); ok {
		if cfg.Insecure {
			logger.Warn("proxmox: TLS certificate verification is off (proxmox.insecure)")
		}
		return &lazyProvider{cfg: cfg, name: name, logger: logger, tp: tp, resolve: resolve}, nil
	}
	fi, err := os.Stat(cfg.TokenSecretFile)
	if err != nil {
		return nil, fmt.Errorf("config: proxmox.token_secret_file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("config: proxmox.token_secret_file: %s is readable by others (mode %04o); chmod 600 it", cfg.TokenSecretFile, fi.Mode().Perm())
	}
	b, err := os.ReadFile(cfg.TokenSecretFile)
	if err != nil {
		return nil, fmt.Errorf("config: proxmox.token_secret_file: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return nil, fmt.Errorf("config: proxmox.token_secret_file: %s is empty", cfg.TokenSecretFile)
	}
	p, err := buildProxmox(cfg, secret, logger, tp)
	if err != nil {
		return nil, err
	}
	if cfg.Insecure {
		logger.Warn("proxmox: TLS certificate verification is off (proxmox.insecure)")
	}
	return p, nil
}

func buildProxmox(cfg ProxmoxConfig, secret string, logger *slog.Logger, tp trace.TracerProvider) (provider.Provider, error) {
	p, err := proxmox.New(proxmox.Config{
		URL: cfg.URL, TokenID: cfg.TokenID, TokenSecret: secret, CAFile: cfg.CAFile,
		Fingerprint: cfg.Fingerprint, Insecure: cfg.Insecure, Timeout: cfg.Timeout.Duration(),
		Logger: logger.With("component", "proxmox"), TracerProvider: tp,
	})
	if err != nil {
		return nil, fmt.Errorf("config: proxmox: %w", err)
	}
	return p, nil
}

// lazyProvider is the Proxmox provider of a configuration whose token
// secret lives in the secrets store. It builds the real provider on first
// use, once the secret can be read and decrypted, and builds it again when
// the secret's value changes, so the token can be replaced without a
// restart. Until then every call fails with provider.ErrUnavailable and a
// message naming the secret.
type lazyProvider struct {
	cfg     ProxmoxConfig
	name    string
	logger  *slog.Logger
	tp      trace.TracerProvider
	resolve func(string) (string, error)

	mu     sync.Mutex
	p      provider.Provider // guarded by mu
	secret string            // guarded by mu; the value p was built with
	failed string            // guarded by mu; the last error logged
}

// get returns the provider for the secret's current value.
func (l *lazyProvider) get() (provider.Provider, error) {
	v, err := l.resolve(l.name)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("%w: proxmox.token_secret: secret %q cannot be read yet: %v", provider.ErrUnavailable, l.name, err)
		if msg := err.Error(); msg != l.failed {
			l.failed = msg
			l.logger.Warn("proxmox: token secret unavailable", "secret", l.name, "error", err)
		}
		return nil, err
	}
	v = strings.TrimSpace(v)
	if l.p != nil && v == l.secret {
		return l.p, nil
	}
	if v == "" {
		return nil, fmt.Errorf("%w: proxmox.token_secret: secret %q is empty", provider.ErrUnavailable, l.name)
	}
	p, err := buildProxmox(l.cfg, v, l.logger, l.tp)
	if err != nil {
		return nil, errors.Join(provider.ErrUnavailable, err)
	}
	if l.p != nil {
		l.logger.Info("proxmox: token secret changed; provider rebuilt", "secret", l.name)
	} else {
		l.logger.Info("proxmox: token secret read from the secrets store", "secret", l.name)
	}
	l.p, l.secret, l.failed = p, v, ""
	return p, nil
}

// Name returns "proxmox" without needing the secret.
func (l *lazyProvider) Name() string { return "proxmox" }

// Cluster implements provider.Provider.
func (l *lazyProvider) Cluster(ctx context.Context) (provider.ClusterInfo, error) {
	p, err := l.get()
	if err != nil {
		return provider.ClusterInfo{}, err
	}
	return p.Cluster(ctx)
}

// Inventory implements provider.Provider.
func (l *lazyProvider) Inventory(ctx context.Context) (provider.Inventory, error) {
	p, err := l.get()
	if err != nil {
		return provider.Inventory{}, err
	}
	return p.Inventory(ctx)
}

// Nodes implements provider.Provider.
func (l *lazyProvider) Nodes(ctx context.Context) ([]provider.Node, error) {
	p, err := l.get()
	if err != nil {
		return nil, err
	}
	return p.Nodes(ctx)
}

// Guest implements provider.Provider.
func (l *lazyProvider) Guest(ctx context.Context, ref provider.GuestRef) (provider.Guest, error) {
	p, err := l.get()
	if err != nil {
		return provider.Guest{}, err
	}
	return p.Guest(ctx, ref)
}

// GuestConfig implements provider.Provider.
func (l *lazyProvider) GuestConfig(ctx context.Context, ref provider.GuestRef) (map[string]string, error) {
	p, err := l.get()
	if err != nil {
		return nil, err
	}
	return p.GuestConfig(ctx, ref)
}

// NextID implements provider.Provider.
func (l *lazyProvider) NextID(ctx context.Context) (int, error) {
	p, err := l.get()
	if err != nil {
		return 0, err
	}
	return p.NextID(ctx)
}

// task runs f on the provider, for the methods that return a Task.
func (l *lazyProvider) task(f func(provider.Provider) (provider.Task, error)) (provider.Task, error) {
	p, err := l.get()
	if err != nil {
		return provider.Task{}, err
	}
	return f(p)
}

// CreateGuest implements provider.Provider.
func (l *lazyProvider) CreateGuest(ctx context.Context, ref provider.GuestRef, spec provider.GuestSpec) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.CreateGuest(ctx, ref, spec) })
}

// CloneGuest implements provider.Provider.
func (l *lazyProvider) CloneGuest(ctx context.Context, spec provider.CloneSpec) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.CloneGuest(ctx, spec) })
}

// ConfigureGuest implements provider.Provider.
func (l *lazyProvider) ConfigureGuest(ctx context.Context, ref provider.GuestRef, spec provider.GuestSpec) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.ConfigureGuest(ctx, ref, spec) })
}

// SetGuestConfig implements provider.Provider.
func (l *lazyProvider) SetGuestConfig(ctx context.Context, ref provider.GuestRef, set map[string]string, del []string) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.SetGuestConfig(ctx, ref, set, del) })
}

// StartGuest implements provider.Provider.
func (l *lazyProvider) StartGuest(ctx context.Context, ref provider.GuestRef) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.StartGuest(ctx, ref) })
}

// StopGuest implements provider.Provider.
func (l *lazyProvider) StopGuest(ctx context.Context, ref provider.GuestRef) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.StopGuest(ctx, ref) })
}

// ShutdownGuest implements provider.Provider.
func (l *lazyProvider) ShutdownGuest(ctx context.Context, ref provider.GuestRef, timeout time.Duration) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.ShutdownGuest(ctx, ref, timeout) })
}

// DeleteGuest implements provider.Provider.
func (l *lazyProvider) DeleteGuest(ctx context.Context, ref provider.GuestRef) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.DeleteGuest(ctx, ref) })
}

// MigrateGuest implements provider.Provider.
func (l *lazyProvider) MigrateGuest(ctx context.Context, ref provider.GuestRef, target string, online bool) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.MigrateGuest(ctx, ref, target, online) })
}

// Snapshots implements provider.Provider.
func (l *lazyProvider) Snapshots(ctx context.Context, ref provider.GuestRef) ([]provider.Snapshot, error) {
	p, err := l.get()
	if err != nil {
		return nil, err
	}
	return p.Snapshots(ctx, ref)
}

// CreateSnapshot implements provider.Provider.
func (l *lazyProvider) CreateSnapshot(ctx context.Context, ref provider.GuestRef, name, description string) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.CreateSnapshot(ctx, ref, name, description) })
}

// DeleteSnapshot implements provider.Provider.
func (l *lazyProvider) DeleteSnapshot(ctx context.Context, ref provider.GuestRef, name string) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.DeleteSnapshot(ctx, ref, name) })
}

// RollbackSnapshot implements provider.Provider.
func (l *lazyProvider) RollbackSnapshot(ctx context.Context, ref provider.GuestRef, name string) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.RollbackSnapshot(ctx, ref, name) })
}

// Backup implements provider.Provider.
func (l *lazyProvider) Backup(ctx context.Context, ref provider.GuestRef, spec provider.BackupSpec) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.Backup(ctx, ref, spec) })
}

// StorageContent implements provider.Provider.
func (l *lazyProvider) StorageContent(ctx context.Context, node, storage, content string) ([]provider.Content, error) {
	p, err := l.get()
	if err != nil {
		return nil, err
	}
	return p.StorageContent(ctx, node, storage, content)
}

// Networks implements provider.Provider.
func (l *lazyProvider) Networks(ctx context.Context, node string) ([]provider.Network, error) {
	p, err := l.get()
	if err != nil {
		return nil, err
	}
	return p.Networks(ctx, node)
}

// TaskStatus implements provider.Provider.
func (l *lazyProvider) TaskStatus(ctx context.Context, task provider.Task) (provider.TaskStatus, error) {
	p, err := l.get()
	if err != nil {
		return provider.TaskStatus{}, err
	}
	return p.TaskStatus(ctx, task)
}

// WaitTask implements provider.Provider.
func (l *lazyProvider) WaitTask(ctx context.Context, task provider.Task, progress func(provider.TaskStatus)) (provider.TaskStatus, error) {
	p, err := l.get()
	if err != nil {
		return provider.TaskStatus{}, err
	}
	return p.WaitTask(ctx, task, progress)
}

// DeleteVolume implements provider.Provider.
func (l *lazyProvider) DeleteVolume(ctx context.Context, node, volid string) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.DeleteVolume(ctx, node, volid) })
}

// RestoreBackup implements provider.Provider.
func (l *lazyProvider) RestoreBackup(ctx context.Context, ref provider.GuestRef, volid, storage string) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.RestoreBackup(ctx, ref, volid, storage) })
}

// RestoreBackupOver implements provider.Provider.
func (l *lazyProvider) RestoreBackupOver(ctx context.Context, ref provider.GuestRef, volid, storage string) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.RestoreBackupOver(ctx, ref, volid, storage) })
}

// AddDisk implements provider.Provider.
func (l *lazyProvider) AddDisk(ctx context.Context, ref provider.GuestRef, slot, storage string, sizeGiB int) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.AddDisk(ctx, ref, slot, storage, sizeGiB) })
}

// AttachDisk implements provider.Provider.
func (l *lazyProvider) AttachDisk(ctx context.Context, ref provider.GuestRef, slot, volid string) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.AttachDisk(ctx, ref, slot, volid) })
}

// DetachDisk implements provider.Provider.
func (l *lazyProvider) DetachDisk(ctx context.Context, ref provider.GuestRef, slot string) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.DetachDisk(ctx, ref, slot) })
}

// ResizeDisk implements provider.Provider.
func (l *lazyProvider) ResizeDisk(ctx context.Context, ref provider.GuestRef, slot string, sizeGiB int) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) { return p.ResizeDisk(ctx, ref, slot, sizeGiB) })
}

// MoveDisk implements provider.Provider.
func (l *lazyProvider) MoveDisk(ctx context.Context, ref provider.GuestRef, slot, storage string, deleteSource bool) (provider.Task, error) {
	return l.task(func(p provider.Provider) (provider.Task, error) {
		return p.MoveDisk(ctx, ref, slot, storage, deleteSource)
	})
}

// Disks implements provider.Provider.
func (l *lazyProvider) Disks(ctx context.Context, ref provider.GuestRef) ([]provider.Disk, error) {
	p, err := l.get()
	if err != nil {
		return nil, err
	}
	return p.Disks(ctx, ref)
}

var _ provider.Provider = (*lazyProvider)(nil)
