package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// usageError marks errors in how the command was called (exit status 2).
type usageError struct{ error }

// Run executes moxxied with args and returns the process exit status.
func Run(args []string) int {
	root := rootCmd()
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

// rootCmd returns moxxied's command tree (also read by the man page
// generator, mangen.go).
func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "moxxied",
		Short:         "Moxxie control-plane server",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(serverCmd(), devCmd(), versionCmd(), recoverCmd(), tlsCmd(), pvesimCmd())
	return root
}
