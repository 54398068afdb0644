package node

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/moxxie/moxxie/provider"
	"github.com/moxxie/moxxie/provider/proxmox"
)

// newProvider builds the platform the proxmox section describes; nil
// when it names none. The token secret is read from its file, which must
// not be readable by group or others.
func newProvider(cfg ProxmoxConfig, logger *slog.Logger) (provider.Provider, error) {
	if cfg.URL == "" {
		return nil, nil
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
	p, err := proxmox.New(proxmox.Config{
		URL: cfg.URL, TokenID: cfg.TokenID, TokenSecret: secret, CAFile: cfg.CAFile,
		Fingerprint: cfg.Fingerprint, Insecure: cfg.Insecure, Timeout: cfg.Timeout.Duration(),
		Logger: logger.With("component", "proxmox"),
	})
	if err != nil {
		return nil, fmt.Errorf("config: proxmox: %w", err)
	}
	if cfg.Insecure {
		logger.Warn("proxmox: TLS certificate verification is off (proxmox.insecure)")
	}
	return p, nil
}
