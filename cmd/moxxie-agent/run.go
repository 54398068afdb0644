package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/moxxie/moxxie/agent"
	"github.com/moxxie/moxxie/client"
	"github.com/moxxie/moxxie/sdn"
	"github.com/moxxie/moxxie/telemetry"
	"github.com/spf13/cobra"
)

// usageError marks errors in how the command was called (exit status 2).
type usageError struct{ error }

// options are the agent's flags.
type options struct {
	server, tokenFile, caCert, cert, key string
	host                                 sdn.Host
	netns, stateDir, logLevel, logFormat string
	dryRun                               bool
	resync                               time.Duration
	metricsAddr                          string
}

// Run executes moxxie-agent with args and returns the process exit status.
func Run(args []string) int {
	var o options
	hostname, _ := os.Hostname()
	root := rootCmd(&o, hostname)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// rootCmd returns the agent's command, its flags bound to o; hostname is
// the default of --host (also read by the man page generator, mangen.go).
func rootCmd(o *options, hostname string) *cobra.Command {
	root := &cobra.Command{
		Use:   "moxxie-agent",
		Short: "Moxxie host agent: holds this host's network plan in the kernel",
		Long: `moxxie-agent enrols this host with the Moxxie servers, follows the host's
network plan, applies it with netlink (bridges, VLAN and VXLAN devices) and
nftables (the inet moxxie table), restores managed links that change or
disappear, and reports the version it holds. It changes only links whose
alias starts with "moxxie:", never the management interface.

The servers, token and CA come from flags or MOXXIE_ADDR, MOXXIE_TOKEN and
MOXXIE_CACERT. The token must have the agent role
(moxxiectl token create --role agent).`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE:          func(*cobra.Command, []string) error { return run(*o) },
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := root.Flags()
	f.StringVar(&o.server, "server", os.Getenv("MOXXIE_ADDR"), "server URLs, comma-separated (MOXXIE_ADDR)")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the agent token (else MOXXIE_TOKEN)")
	f.StringVar(&o.caCert, "cacert", os.Getenv("MOXXIE_CACERT"), "CA certificate of the servers (MOXXIE_CACERT)")
	f.StringVar(&o.cert, "cert", "", "agent certificate, for servers that require one")
	f.StringVar(&o.key, "key", "", "key of the agent certificate")
	f.StringVar(&o.host.Name, "host", hostname, "this host's name (the Proxmox node name)")
	f.StringVar(&o.host.Address, "address", "", "underlay address: VXLAN local address and the address peers send to (required)")
	f.StringVar(&o.host.Uplink, "uplink", "", "interface carrying VLAN-tagged traffic (e.g. eth0, bond0)")
	f.IntVar(&o.host.MTU, "mtu", 0, "MTU of the uplink (0: 1500)")
	f.StringVar(&o.host.Management, "management", "", "management interface, never changed")
	f.StringVar(&o.netns, "netns", "", "manage this named network namespace instead of the agent's own (tests, nested setups)")
	f.StringVar(&o.stateDir, "state-dir", "/var/lib/moxxie-agent", "directory keeping the last applied plan (empty: none)")
	f.BoolVar(&o.dryRun, "dry-run", false, "log what would change, change nothing, report nothing")
	f.DurationVar(&o.resync, "resync", 30*time.Second, "how often to verify the kernel without a prompt")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.metricsAddr, "metrics-address", "", "host:port serving GET /metrics in plain HTTP, without a token, for a trusted scrape network (empty: off)")
	f.StringVar(&o.logFormat, "log-format", "json", "json or text")
	return root
}

func run(o options) error {
	if o.server == "" {
		return usageError{errors.New("--server (or MOXXIE_ADDR) is required")}
	}
	if o.host.Address == "" {
		return usageError{errors.New("--address is required: the host's underlay address")}
	}
	if err := sdn.ValidateHost(o.host); err != nil {
		return usageError{fmt.Errorf("--%s: %w", flagOf(err), err)}
	}
	token := os.Getenv("MOXXIE_TOKEN")
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return err
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" && o.cert == "" {
		return usageError{errors.New("no credentials: give --token-file, MOXXIE_TOKEN or --cert/--key")}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return usageError{fmt.Errorf("--log-level: %w", err)}
	}
	opts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler
	switch o.logFormat {
	case "json":
		handler = slog.NewJSONHandler(os.Stderr, opts)
	case "text":
		handler = slog.NewTextHandler(os.Stderr, opts)
	default:
		return usageError{fmt.Errorf("--log-format: %q is not json or text", o.logFormat)}
	}
	logger := slog.New(handler).With("host", o.host.Name)
	c, err := client.New(client.Config{Address: o.server, Token: token, CACert: o.caCert, ClientCert: o.cert, ClientKey: o.key})
	if err != nil {
		return err
	}
	reg := telemetry.NewRegistry()
	metrics := agent.NewMetrics(reg)
	if o.metricsAddr != "" {
		stopMetrics, err := serveMetrics(o.metricsAddr, reg, logger)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	addr, _ := netip.ParseAddr(o.host.Address)
	k, err := agent.NewKernel(agent.KernelConfig{
		Netns: o.netns, Management: o.host.Management, ProtectAddrs: []netip.Addr{addr}, DryRun: o.dryRun, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer k.Close()
	if o.stateDir != "" && !o.dryRun {
		if err := os.MkdirAll(o.stateDir, 0o700); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("moxxie-agent starting", "server", o.server, "address", o.host.Address, "dry_run", o.dryRun)
	return agent.Run(ctx, agent.Config{
		Host: o.host, Server: apiServer{c}, Kernel: k, StateDir: o.stateDir,
		Resync: o.resync, DryRun: o.dryRun, Logger: logger, Metrics: metrics,
	})
}

// flagOf maps a host validation error's field to its flag.
func flagOf(err error) string {
	var fe *sdn.Error
	if errors.As(err, &fe) {
		switch fe.Field {
		case "name":
			return "host"
		case "":
		default:
			return fe.Field
		}
	}
	return "host"
}
