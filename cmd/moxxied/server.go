package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/moxxie/moxxie/hugeheap"
	"github.com/moxxie/moxxie/node"
	"github.com/moxxie/moxxie/telemetry"
	"github.com/spf13/cobra"
)

func serverCmd() *cobra.Command {
	var (
		configFile     string
		exitWithParent bool
		flags          node.Config
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run one Moxxie server",
		Long: `Run one Moxxie server. Configuration comes from the defaults, then the
YAML file given with --config, then MOXXIE_* environment variables (named
after the YAML keys, e.g. MOXXIE_NODE_ID, MOXXIE_RAFT_HEARTBEAT_TIMEOUT),
then flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := node.DefaultConfig()
			if configFile != "" {
				if err := cfg.LoadConfigFile(configFile); err != nil {
					return err
				}
			}
			if err := cfg.ApplyEnv(os.LookupEnv); err != nil {
				return err
			}
			f := cmd.Flags()
			if f.Changed("node-id") {
				cfg.NodeID = flags.NodeID
			}
			if f.Changed("data-dir") {
				cfg.DataDir = flags.DataDir
			}
			if f.Changed("raft-address") {
				cfg.RaftAddress = flags.RaftAddress
			}
			if f.Changed("api-address") {
				cfg.APIAddress = flags.APIAddress
			}
			if f.Changed("bootstrap-expect") {
				cfg.BootstrapExpect = flags.BootstrapExpect
			}
			if f.Changed("retry-join") {
				cfg.RetryJoin = flags.RetryJoin
			}
			if f.Changed("log-level") {
				cfg.LogLevel = flags.LogLevel
			}
			if f.Changed("log-format") {
				cfg.LogFormat = flags.LogFormat
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			return runServer(cfg, exitWithParent)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configFile, "config", "c", "", "YAML configuration file (e.g. /etc/moxxie/moxxied.yaml)")
	f.StringVar(&flags.NodeID, "node-id", "", "server ID")
	f.StringVar(&flags.DataDir, "data-dir", "", "data directory")
	f.StringVar(&flags.RaftAddress, "raft-address", "", "raft host:port")
	f.StringVar(&flags.APIAddress, "api-address", "", "API host:port")
	f.IntVar(&flags.BootstrapExpect, "bootstrap-expect", 0, "servers to wait for before bootstrapping")
	f.StringSliceVar(&flags.RetryJoin, "retry-join", nil, "raft addresses of other servers")
	f.StringVar(&flags.LogLevel, "log-level", "", "debug, info, warn or error")
	f.StringVar(&flags.LogFormat, "log-format", "", "json (the default) or text")
	f.BoolVar(&exitWithParent, "exit-with-parent", false, "exit when the parent process dies (used by moxxied dev)")
	_ = f.MarkHidden("exit-with-parent")
	return cmd
}

func runServer(cfg *node.Config, exitWithParent bool) error {
	logger, err := telemetry.NewLogger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	slog.SetDefault(logger)
	telemetry.RouteStdLog(logger)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(cfg.GCPercent)
	}
	if err := setMemoryLimit(logger, cfg.MemoryLimit); err != nil {
		return err
	}
	if !cfg.HeapHugePages {
		logger.Info("heap huge pages not advised", "reason", "heap_huge_pages is false")
	} else {
		adv, err := hugeheap.Start(10*time.Millisecond, logger)
		switch {
		case errors.Is(err, hugeheap.ErrNotNeeded):
			logger.Info("heap huge pages not advised", "reason", err)
		case err != nil:
			logger.Warn("heap huge pages not advised", "error", err)
		default:
			defer adv.Stop()
			logger.Info("heap huge pages advised", "advised_bytes", adv.AdvisedBytes())
		}
	}
	wd, err := watchdogInterval(os.Getenv, os.Getpid())
	if err != nil {
		logger.Warn("systemd watchdog off", "error", err)
	}
	srv, err := node.New(cfg, node.Options{Logger: logger})
	if err != nil {
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	parentGone := make(chan struct{})
	if exitWithParent {
		ppid := os.Getppid()
		go func() {
			for os.Getppid() == ppid {
				time.Sleep(500 * time.Millisecond)
			}
			close(parentGone)
		}()
	}
	return serve(srv, cfg, logger, newSDNotifier(os.Getenv), wd, sigs, parentGone)
}

// serve runs a started server until a signal on sigs (SIGTERM, SIGINT) or
// parentGone stops it, reloading certificates and keys on SIGHUP, and
// keeps systemd informed (notify.go): READY=1 once the server answers its
// own health check, watchdog pings every half wd while it stays healthy,
// STOPPING=1 before the shutdown, which hands leadership off.
func serve(srv *node.Server, cfg *node.Config, logger *slog.Logger, sd sdNotifier, wd time.Duration, sigs <-chan os.Signal, parentGone <-chan struct{}) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	notify := func(state string) {
		if err := sd.notify(state); err != nil {
			logger.Warn("telling systemd failed", "state", state, "error", err)
		}
	}
	readyCh := make(chan error, 1)
	go func() { readyCh <- waitServing(ctx, srv.Healthy, logger) }()
	ready := false
	for {
		select {
		case err := <-readyCh:
			readyCh = nil
			if err != nil {
				continue
			}
			ready = true
			notify(fmt.Sprintf("READY=1\nSTATUS=serving: API %s, raft %s", srv.APIAddress(), srv.RaftAddress()))
			if wd > 0 && sd.enabled() {
				go watchdog{interval: wd, check: srv.Healthy, notify: sd.notify, logger: logger}.run(ctx)
				logger.Info("systemd watchdog on", "interval", wd.String())
			}
			continue
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if ready {
					notify(reloading())
				}
				if err := srv.ReloadCertificates(); err != nil {
					logger.Error("certificate reload failed; keeping the old ones", "error", err)
				} else {
					logger.Info("certificates reloaded")
				}
				if err := srv.ReloadSecretKeys(cfg.Secrets); err != nil {
					logger.Error("secrets: key-encryption key reload failed; keeping the old keys", "error", err)
				}
				if ready {
					notify("READY=1")
				}
				continue
			}
			logger.Info("shutting down", "signal", sig.String())
		case <-parentGone:
			logger.Info("parent process exited; shutting down")
		}
		cancel()
		notify("STOPPING=1\nSTATUS=shutting down")
		return srv.Shutdown(true)
	}
}

// setMemoryLimit gives the Go runtime the soft memory limit memory_limit
// resolves to, unless the GOMEMLIMIT variable set one, and logs it.
func setMemoryLimit(logger *slog.Logger, value string) error {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		logger.Info("memory limit from GOMEMLIMIT", "limit", v)
		return nil
	}
	limit, how, err := node.ResolveMemoryLimit(value, os.DirFS("/"))
	if err != nil {
		return fmt.Errorf("config: memory_limit: %w", err)
	}
	if limit == 0 {
		logger.Info("no memory limit", "from", how)
		return nil
	}
	debug.SetMemoryLimit(limit)
	logger.Info("memory limit", "limit_bytes", limit, "limit", node.FormatBytes(limit), "from", how)
	return nil
}
