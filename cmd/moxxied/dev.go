package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/moxxie/moxxie/node"
	"github.com/spf13/cobra"
)

func devCmd() *cobra.Command {
	opts := node.DevOptions{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a whole dev appliance on loopback",
		Long: `Run a dev appliance: N server processes on loopback with a generated CA,
TLS everywhere and an admin token. It writes <data-dir>/env (source it to
point moxxiectl at the cluster) and <data-dir>/servers.json (id, pid and
addresses of each server). A server that dies is restarted. State is kept
in --data-dir across restarts. Ctrl-C stops everything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			opts.Binary = bin
			opts.Out = cmd.OutOrStdout()
			opts.Logf = func(format string, args ...any) { fmt.Fprintf(cmd.ErrOrStderr(), "dev: "+format+"\n", args...) }
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return node.RunDev(ctx, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.DataDir, "data-dir", "moxxie-dev", "directory for all dev state (kept across restarts)")
	f.IntVar(&opts.Nodes, "nodes", 3, "number of servers")
	f.BoolVar(&opts.Restart, "restart", true, "restart a server process that dies")
	f.StringVar(&opts.Host, "host", "", "loopback address to listen on (default 127.0.0.1); give each site its own, e.g. 127.0.0.2")
	f.StringVar(&opts.Site, "site", "", "put the servers in this site of a federation (docs/sites.md)")
	f.StringVar(&opts.SiteRole, "site-role", "", "the site's role with --site: server (default) or witness (votes when another site fails, holds no workloads)")
	f.StringSliceVar(&opts.SiteJoin, "site-join", nil, "gossip addresses of other sites' servers, comma-separated (their servers.json)")
	f.StringVar(&opts.GossipKeyFile, "gossip-key-file", "", "the federation's gossip keys, shared by every site (default <data-dir>/gossip.key, made when missing)")
	f.StringVar(&opts.CADir, "ca-dir", "", "a CA directory (ca.pem, ca-key.pem) to sign this appliance's certificates with, shared by every site")
	f.StringVar(&opts.BackupDir, "backup-dir", "", "give the Proxmox simulator a backup storage \"dr\" in this directory; appliances given the same one share their backups")
	return cmd
}
