package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `moxxiebench measures Moxxie (and etcd, for comparison).

Commands:
  write     concurrent durable writes (PUT /v1/cluster/settings/{key})
  etcd      concurrent durable puts to etcd's HTTP gateway (POST /v3/kv/put)
  alloc     concurrent IPAM address allocations (POST /v1/ipam/prefixes/{id}/allocate)
  failover  kill -9 the leader repeatedly; time to the first successful write
  inventory inventory sync against a simulated 64-node, 10,000-guest Proxmox cluster
  pages     what the first write to a fresh page of memory costs on this machine
  report    print a comparison table from write, etcd and alloc --out files
  ports     print N free loopback TCP ports (for scripts)

Run "moxxiebench COMMAND -h" for the flags of a command.
`

// errUsage reports a command line that could not be parsed; the flag package
// has already printed why.
var errUsage = errors.New("usage")

// run executes the command line args and returns the process exit code:
// 0 on success, 1 on failure, 2 on a usage error.
func run(args []string) int {
	return runTo(os.Stdout, os.Stderr, args)
}

func runTo(stdout, stderr io.Writer, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "write":
		err = writeCmd(ctx, stdout, stderr, args[1:])
	case "etcd":
		err = etcdCmd(ctx, stdout, stderr, args[1:])
	case "alloc":
		err = allocCmd(ctx, stdout, stderr, args[1:])
	case "failover":
		err = failoverCmd(ctx, stdout, stderr, args[1:])
	case "inventory":
		err = inventoryCmd(ctx, stdout, stderr, args[1:])
	case "pages":
		err = pagesCmd(stdout, stderr, args[1:])
	case "report":
		err = reportCmd(stdout, stderr, args[1:])
	case "ports":
		err = portsCmd(stdout, stderr, args[1:])
	default:
		fmt.Fprintf(stderr, "moxxiebench: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "moxxiebench %s: %v\n", args[0], err)
		return 1
	}
}

// newFlagSet returns a flag set for a subcommand that reports errors instead
// of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("moxxiebench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args into fs and rejects positional arguments unless
// positional is true.
func parseFlags(fs *flag.FlagSet, args []string, positional bool) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if !positional && fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %q\n", fs.Args())
		return errUsage
	}
	return nil
}
