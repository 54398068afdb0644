package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/moxxie/moxxie/pvesim"
	"github.com/spf13/cobra"
)

func pvesimCmd() *cobra.Command {
	var (
		listen, certFile, keyFile string
		tokenID, secretFile       string
		backupDir                 string
		nodes, guests             int
		taskDuration, latency     time.Duration
		errorRate                 float64
		verbose                   bool
	)
	cmd := &cobra.Command{
		Use:   "pvesim",
		Short: "Run the Proxmox VE API simulator",
		Long: `Run the Proxmox VE 9.1 API simulator on its own, for tests and
benchmarks against a cluster that does not exist. It serves the Proxmox
API under /api2/json (HTTPS when given a certificate, like Proxmox on port
8006; plain HTTP otherwise) and its admin API under /pvesim/v1 (faults,
node outages, request counts). Both take the API token given with
--token-id and --token-secret-file; without a secret file a secret is
generated and printed to stderr. Without --guests the cluster is the
default seed: three nodes, a few VMs and containers, two templates.
With --backup-dir it also has a backup storage "dr" in that directory,
shared with every simulator given the same one: backups made by one are
listed and restored by the others.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (certFile == "") != (keyFile == "") {
				return usageError{errors.New("give both --tls-cert and --tls-key, or neither")}
			}
			if !strings.Contains(tokenID, "@") || !strings.Contains(tokenID, "!") {
				return usageError{fmt.Errorf("--token-id %q is not USER@REALM!TOKENID", tokenID)}
			}
			if nodes < 1 || guests < 0 {
				return usageError{errors.New("--nodes must be at least 1 and --guests not negative")}
			}
			stderr := cmd.ErrOrStderr()
			secret, err := tokenSecret(secretFile)
			if err != nil {
				return err
			}
			if secretFile == "" {
				fmt.Fprintf(stderr, "pvesim: generated API token: PVEAPIToken=%s=%s\n", tokenID, secret)
			}
			seed := pvesim.DefaultSeed()
			if nodes != 3 || guests != 0 {
				seed = pvesim.Seed{Nodes: nodes, Guests: guests, SharedStorage: "nfs-shared"}
			}
			if backupDir != "" {
				seed.BackupDirs = map[string]string{"dr": backupDir}
			}
			cfg := pvesim.Config{
				Seed:         seed,
				Tokens:       map[string]string{tokenID: secret},
				TaskDuration: taskDuration,
				Faults:       pvesim.Faults{Latency: latency, ErrorRate: errorRate},
			}
			if verbose {
				cfg.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, "pvesim: "+format+"\n", args...) }
			}
			sim, err := pvesim.New(cfg)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				sim.Close()
				return err
			}
			srv := &http.Server{
				Handler:           sim.Handler(),
				ReadHeaderTimeout: 10 * time.Second,
				ReadTimeout:       10 * time.Minute,
				WriteTimeout:      10 * time.Minute,
				IdleTimeout:       2 * time.Minute,
				MaxHeaderBytes:    64 << 10,
				// Proxmox speaks HTTP/1.1 only; its error messages are
				// reason phrases, which HTTP/2 does not have.
				TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
			}
			scheme := "http"
			if certFile != "" {
				scheme = "https"
			}
			fmt.Fprintf(stderr, "pvesim: serving the Proxmox VE API on %s://%s/api2/json (%d nodes, %d guests)\n",
				scheme, ln.Addr(), nodes, len(sim.Guests()))

			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			errc := make(chan error, 1)
			go func() {
				if certFile != "" {
					errc <- srv.ServeTLS(ln, certFile, keyFile)
				} else {
					errc <- srv.Serve(ln)
				}
			}()
			select {
			case err := <-errc:
				sim.Close()
				return err
			case <-ctx.Done():
			}
			fmt.Fprintln(stderr, "pvesim: shutting down")
			// Close first: it ends running tasks and releases requests
			// held by the timeout fault, so that Shutdown can finish.
			sim.Close()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				return srv.Close()
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8006", "address to serve on")
	f.StringVar(&certFile, "tls-cert", "", "TLS certificate file (serve HTTPS)")
	f.StringVar(&keyFile, "tls-key", "", "TLS key file")
	f.StringVar(&tokenID, "token-id", "root@pam!moxxie", "API token ID (USER@REALM!TOKENID)")
	f.StringVar(&secretFile, "token-secret-file", "", "file holding the API token secret (generated and printed when not given)")
	f.IntVar(&nodes, "nodes", 3, "number of nodes")
	f.IntVar(&guests, "guests", 0, "number of guests to generate (0: the default seed's few)")
	f.DurationVar(&taskDuration, "task-duration", 0, "base duration of a task (0: a short default)")
	f.DurationVar(&latency, "latency", 0, "latency added to every request")
	f.Float64Var(&errorRate, "error-rate", 0, "fraction of requests answered with a 500")
	f.StringVar(&backupDir, "backup-dir", "", "a directory for a backup storage \"dr\", shared with every simulator given the same one")
	f.BoolVarP(&verbose, "verbose", "v", false, "log every request and task")
	return cmd
}

// tokenSecret reads the token secret from file, or makes a random one (a
// UUID, like Proxmox's) when file is empty.
func tokenSecret(file string) (string, error) {
	if file == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("token secret file %s is empty", file)
	}
	return secret, nil
}
