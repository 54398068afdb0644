package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
)

// Exit codes of Run.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// Run runs moxxiectl with args (without the program name) and returns the
// exit code: 0 on success, 1 when the command failed, 2 on a usage error.
func Run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, args, os.Stdout, os.Stderr, os.Getenv)
}

// run is Run with its surroundings passed in, for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	root := a.rootCommand()
	if args == nil {
		args = []string{} // cobra would read os.Args instead of nil
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = errors.New("interrupted")
	}
	msg := "Error: " + oneLine(err.Error())
	if flag := flagOfField(cmd, err); flag != "" {
		msg += "; check --" + flag
	}
	fmt.Fprintln(stderr, msg)
	var ue *usageError
	if errors.As(err, &ue) {
		if ue.showHelp {
			cmd.SetOut(stderr)
			_ = cmd.Help()
		} else {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return exitUsage
	}
	return exitFailure
}

// usageError is a mistake in how moxxiectl was called: exit code 2.
type usageError struct {
	err error
	// showHelp prints the command's help after the error, for a group
	// command called without a subcommand.
	showHelp bool
}

func (e *usageError) Error() string { return e.err.Error() }

func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// exactArgs requires one argument per name and names them in the error.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == len(names) {
			return nil
		}
		if len(names) == 0 {
			return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args)
		}
		return usagef("%s needs %s, got %d argument(s)", cmd.CommandPath(), strings.Join(names, " "), len(args))
	}
}

// group returns a command that only holds subcommands. Called alone it
// shows its help; with an unknown subcommand it suggests a known one.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:                        use,
		Short:                      short,
		Args:                       cobra.ArbitraryArgs,
		SuggestionsMinimumDistance: 2,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return &usageError{err: fmt.Errorf("%s needs a subcommand", cmd.CommandPath()), showHelp: true}
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf("; did you mean %q?", s[0])
			}
			return &usageError{err: errors.New(msg)}
		},
	}
	c.AddCommand(subs...)
	return c
}

// oneLine folds a message onto one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// fieldFlags names the flags whose names are not their API fields'.
var fieldFlags = map[string]string{"address": "ip", "prefix_length": "length"}

// flagOfField returns the flag of cmd that sets the request field a 400
// names (dns_name: dns-name), or "" when none does, so that an error in
// the API's words points at the command line too. A conflict (409) is
// about the state, not the value given, and gets none. Only cmd's own
// flags count: --address is the server's on every command.
func flagOfField(cmd *cobra.Command, err error) string {
	var ae *client.APIError
	if cmd == nil || !errors.As(err, &ae) || ae.Field == "" || ae.Status != http.StatusBadRequest {
		return ""
	}
	name, ok := fieldFlags[ae.Field]
	if !ok {
		name = strings.ToLower(strings.ReplaceAll(ae.Field, "_", "-"))
	}
	flags := cmd.LocalNonPersistentFlags()
	f := flags.Lookup(name)
	if f == nil {
		return ""
	}
	// A value read from a file (-f) was not given by the flag.
	if file := flags.Lookup("file"); file != nil && file.Changed && !f.Changed {
		return ""
	}
	return name
}
