package main

import (
	"github.com/moxxie/moxxie/version"
	"github.com/spf13/cobra"
)

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of moxxiectl",
		Args:  exactArgs(),
		RunE: func(*cobra.Command, []string) error {
			info := version.Get()
			if a.json() {
				return printJSON(a.stdout, info)
			}
			return printf(a.stdout, "moxxiectl %s\n", info)
		},
	}
}
