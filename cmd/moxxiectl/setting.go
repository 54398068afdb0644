package main

import (
	"time"

	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// readFlags are the consistency and blocking-query flags of reads.
type readFlags struct {
	stale, consistent bool
	index             uint64
	wait              time.Duration
	flags             *pflag.FlagSet
}

func (r *readFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	r.flags = f
	f.BoolVar(&r.stale, "stale", false, "let any server answer from its local copy, which may lag")
	f.BoolVar(&r.consistent, "consistent", false, "make the leader confirm its leadership before answering")
	f.Uint64Var(&r.index, "index", 0, "block until the store index passes this value")
	f.DurationVar(&r.wait, "wait", 0, "with --index, the longest time to block (default 5m, at most 10m)")
}

func (r *readFlags) options() (*client.QueryOptions, error) {
	if r.stale && r.consistent {
		return nil, usagef("--stale and --consistent exclude each other")
	}
	if r.wait < 0 {
		return nil, usagef("--wait must not be negative, got %s", r.wait)
	}
	if r.wait > 0 && !r.flags.Changed("index") {
		return nil, usagef("--wait takes effect only with --index, the store index to block until it passes")
	}
	return &client.QueryOptions{Stale: r.stale, Consistent: r.consistent, Index: r.index, Wait: r.wait}, nil
}

func (a *app) settingCommand() *cobra.Command {
	var getFlags, listFlags readFlags
	var cas uint64
	get := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value of a setting",
		Args:  exactArgs("KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.settingGet(cmd, args[0], &getFlags)
		},
	}
	getFlags.register(get)
	list := &cobra.Command{
		Use:   "list",
		Short: "List all settings",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.settingList(cmd, &listFlags)
		},
	}
	listFlags.register(list)
	put := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Set a setting",
		Args:  exactArgs("KEY", "VALUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var w *client.WriteOptions
			if cmd.Flags().Changed("cas") {
				w = &client.WriteOptions{CAS: &cas}
			}
			return a.settingPut(cmd, args[0], args[1], w)
		},
	}
	put.Flags().Uint64Var(&cas, "cas", 0, "write only if the setting's modify index is this value (0: only if it does not exist)")
	return group("setting", "Read and write cluster settings",
		get, list, put,
		&cobra.Command{
			Use:   "delete KEY",
			Short: "Delete a setting",
			Args:  exactArgs("KEY"),
			RunE:  a.settingDelete,
		},
	)
}

func (a *app) settingGet(cmd *cobra.Command, key string, rf *readFlags) error {
	q, err := rf.options()
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	s, _, err := c.SettingGet(cmd.Context(), key, q)
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, s)
	}
	return printf(a.stdout, "%s\n", s.Value)
}

func (a *app) settingList(cmd *cobra.Command, rf *readFlags) error {
	q, err := rf.options()
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	list, _, err := c.SettingList(cmd.Context(), q)
	if err != nil {
		return err
	}
	if a.json() {
		if list == nil {
			list = []client.Setting{}
		}
		return printJSON(a.stdout, list)
	}
	tw := newTable(a.stdout)
	row(tw, "KEY", "VALUE", "MODIFY INDEX", "UPDATED")
	for _, s := range list {
		row(tw, cell(s.Key), cell(s.Value), u64(s.ModifyIndex), formatTime(s.UpdatedAt))
	}
	return tw.Flush()
}

func (a *app) settingPut(cmd *cobra.Command, key, value string, w *client.WriteOptions) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	s, _, err := c.SettingPut(cmd.Context(), key, value, w)
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, s)
	}
	return printf(a.stdout, "Setting %s written (modify index %d)\n", key, s.ModifyIndex)
}

func (a *app) settingDelete(cmd *cobra.Command, args []string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	if _, err := c.SettingDelete(cmd.Context(), args[0], nil); err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, map[string]string{"key": args[0]})
	}
	return printf(a.stdout, "Setting %s deleted\n", args[0])
}
