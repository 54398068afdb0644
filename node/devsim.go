package node

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moxxie/moxxie/pki"
	"github.com/moxxie/moxxie/pvesim"
)

// devSimTokenID is the API token the dev servers use against the
// embedded Proxmox simulator.
const devSimTokenID = "root@pam!moxxie"

// devSim is the Proxmox VE simulator a dev appliance runs in its
// supervisor process, over HTTPS with a certificate of the dev CA.
type devSim struct {
	sim        *pvesim.Sim
	srv        *http.Server
	addr       string
	secretFile string
}

// devBackupStorage is the ID of the backup storage a dev simulator has
// in DevOptions.BackupDir.
const devBackupStorage = "dr"

// startDevSim starts the simulator on addr ("host:port"). Its state
// lives in memory: a restarted dev appliance starts from the seed again,
// and inventory sync marks guests created before as gone. With a
// backupDir, it also has the backup storage devBackupStorage there,
// whose backups live in files and survive restarts.
func startDevSim(dd, addr, backupDir string) (*devSim, error) {
	tlsDir := filepath.Join(dd, "tls")
	if _, err := os.Stat(pki.CertPath(tlsDir, "pvesim")); errors.Is(err, os.ErrNotExist) {
		host, _, _ := net.SplitHostPort(addr)
		if err := pki.CreateCert(tlsDir, tlsDir, "pvesim", pki.RoleServer, []string{host, "127.0.0.1", "localhost"}, 365*24*time.Hour); err != nil {
			return nil, err
		}
	}
	cert, err := pki.LoadKeyPair(pki.CertPath(tlsDir, "pvesim"), pki.KeyPath(tlsDir, "pvesim"))
	if err != nil {
		return nil, err
	}
	secretFile := filepath.Join(dd, "pvesim-token")
	secret, err := devSimSecret(secretFile)
	if err != nil {
		return nil, err
	}
	cfg := pvesim.Config{Tokens: map[string]string{devSimTokenID: secret}}
	if backupDir != "" {
		cfg.Seed = pvesim.DefaultSeed()
		cfg.Seed.BackupDirs = map[string]string{devBackupStorage: backupDir}
	}
	sim, err := pvesim.New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		sim.Close()
		return nil, fmt.Errorf("proxmox simulator: %w", err)
	}
	d := &devSim{sim: sim, addr: addr, secretFile: secretFile}
	d.srv = newHTTPServer(sim.Handler(), nil)
	d.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	go func() { _ = d.srv.ServeTLS(ln, "", "") }()
	return d, nil
}

// devSimSecret reads the simulator's token secret, making it on the first
// run.
func devSimSecret(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	s := hex.EncodeToString(raw[:])
	return s, os.WriteFile(path, []byte(s+"\n"), 0o600)
}

// config is the proxmox section of the dev servers' configuration.
func (d *devSim) config(caFile string) ProxmoxConfig {
	return ProxmoxConfig{URL: "https://" + d.addr, TokenID: devSimTokenID, TokenSecretFile: d.secretFile, CAFile: caFile, SDNMirror: true}
}

func (d *devSim) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = d.srv.Shutdown(ctx)
	d.sim.Close()
}
