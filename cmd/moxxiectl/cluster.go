package main

import (
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) clusterCommand() *cobra.Command {
	return group("cluster", "Inspect and change the servers of the cluster",
		&cobra.Command{
			Use:   "status",
			Short: "Show the servers, the leader and the raft indexes",
			Args:  exactArgs(),
			RunE:  a.clusterStatus,
		},
		&cobra.Command{
			Use:   "join ID RAFT_ADDRESS",
			Short: "Add a server to the cluster as a voter",
			Args:  exactArgs("ID", "RAFT_ADDRESS"),
			RunE:  a.clusterJoin,
		},
		&cobra.Command{
			Use:   "remove ID",
			Short: "Remove a server from the cluster",
			Args:  exactArgs("ID"),
			RunE:  a.clusterRemove,
		},
	)
}

func (a *app) clusterStatus(cmd *cobra.Command, _ []string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	st, err := c.Status(cmd.Context())
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, st)
	}
	tw := newTable(a.stdout)
	row(tw, "ID", "STATE", "VOTER", "RAFT ADDRESS", "API ADDRESS", "CERT EXPIRES")
	for _, s := range st.Servers {
		expires := "-"
		if !s.CertNotAfter.IsZero() {
			expires = s.CertNotAfter.UTC().Format(time.DateOnly)
		}
		row(tw, cell(s.ID), cell(s.State), strconv.FormatBool(s.Voter), cell(s.RaftAddress), orDash(cell(s.APIAddress)), expires)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := printf(a.stdout, "\n"); err != nil {
		return err
	}
	return keyValues(a.stdout,
		"Leader", orDash(cell(st.Leader)),
		"Term", u64(st.Term),
		"Commit index", u64(st.CommitIndex),
		"Applied index", u64(st.AppliedIndex),
	)
}

func (a *app) clusterJoin(cmd *cobra.Command, args []string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	id, addr := args[0], args[1]
	if err := c.Join(cmd.Context(), id, addr); err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, map[string]string{"id": id, "raft_address": addr})
	}
	return printf(a.stdout, "Server %s joined the cluster (raft address %s)\n", id, addr)
}

func (a *app) clusterRemove(cmd *cobra.Command, args []string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	if err := c.Remove(cmd.Context(), args[0]); err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, map[string]string{"id": args[0]})
	}
	return printf(a.stdout, "Server %s removed from the cluster\n", args[0])
}
