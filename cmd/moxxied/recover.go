package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/moxxie/moxxie/node"
	"github.com/spf13/cobra"
)

func recoverCmd() *cobra.Command {
	var configFile, peersFile string
	cmd := &cobra.Command{
		Use:   "recover --config FILE --peers peers.json",
		Short: "Rewrite the raft configuration after quorum is lost (server stopped)",
		Long: `Recover a cluster that lost quorum for good. Stop every surviving server,
run this on each of them with the same peers.json, a JSON list of
{"id": ..., "raft_address": ...} naming the survivors, then start them.
See docs/runbooks/lost-quorum.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile == "" || peersFile == "" {
				return usageError{fmt.Errorf("--config and --peers are required")}
			}
			cfg := node.DefaultConfig()
			if err := cfg.LoadConfigFile(configFile); err != nil {
				return err
			}
			if err := cfg.ApplyEnv(os.LookupEnv); err != nil {
				return err
			}
			b, err := os.ReadFile(peersFile)
			if err != nil {
				return err
			}
			var peers []node.RecoverPeer
			if err := json.Unmarshal(b, &peers); err != nil {
				return fmt.Errorf("%s: %w", peersFile, err)
			}
			if err := node.Recover(cfg, peers); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "raft configuration of %s rewritten to %d servers; start the servers now\n", cfg.NodeID, len(peers))
			return nil
		},
	}
	cmd.Flags().StringVarP(&configFile, "config", "c", "", "the stopped server's configuration file")
	cmd.Flags().StringVar(&peersFile, "peers", "", "JSON file listing the surviving servers")
	return cmd
}
