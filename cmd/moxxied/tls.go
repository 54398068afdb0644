package main

import (
	"fmt"
	"time"

	"github.com/moxxie/moxxie/pki"
	"github.com/spf13/cobra"
)

func tlsCmd() *cobra.Command {
	root := &cobra.Command{Use: "tls", Short: "Create the cluster CA and certificates"}
	ca := &cobra.Command{Use: "ca", Short: "Manage the cluster CA"}
	var dir, cn string
	var days int
	caCreate := &cobra.Command{
		Use:   "create",
		Short: "Create a cluster CA (ca.pem, ca-key.pem) in --dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pki.CreateCA(dir, cn, time.Duration(days)*24*time.Hour); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created CA in %s\n", dir)
			return nil
		},
	}
	caCreate.Flags().StringVar(&dir, "dir", ".", "directory to write the CA to")
	caCreate.Flags().StringVar(&cn, "common-name", "Moxxie cluster CA", "CA common name")
	caCreate.Flags().IntVar(&days, "days", 3650, "validity in days")
	ca.AddCommand(caCreate)

	cert := &cobra.Command{Use: "cert", Short: "Issue certificates"}
	var caDir, out, name, site string
	var hosts []string
	var server, client, agent bool
	var certDays int
	certCreate := &cobra.Command{
		Use:   "create --server|--client|--agent --name NAME",
		Short: "Issue a certificate signed by the cluster CA",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var role pki.Role
			n := 0
			for r, on := range map[pki.Role]bool{pki.RoleServer: server, pki.RoleClient: client, pki.RoleAgent: agent} {
				if on {
					role, n = r, n+1
				}
			}
			if n != 1 {
				return usageError{fmt.Errorf("give exactly one of --server, --client, --agent")}
			}
			if name == "" {
				return usageError{fmt.Errorf("--name is required")}
			}
			validity := time.Duration(certDays) * 24 * time.Hour
			switch {
			case site != "" && role != pki.RoleServer:
				return usageError{fmt.Errorf("--site is for server certificates (--server) only")}
			case site != "":
				if err := pki.CreateSiteCert(caDir, out, name, site, hosts, validity); err != nil {
					return err
				}
			default:
				if err := pki.CreateCert(caDir, out, name, role, hosts, validity); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s certificate %s and key %s\n", role, pki.CertPath(out, name), pki.KeyPath(out, name))
			return nil
		},
	}
	f := certCreate.Flags()
	f.StringVar(&caDir, "ca-dir", ".", "directory holding ca.pem and ca-key.pem")
	f.StringVar(&out, "dir", ".", "directory to write the certificate to")
	f.StringVar(&name, "name", "", "certificate name (file name and common name)")
	f.StringSliceVar(&hosts, "host", []string{"127.0.0.1", "localhost"}, "IP addresses and DNS names the certificate covers")
	f.BoolVar(&server, "server", false, "a moxxied server certificate")
	f.StringVar(&site, "site", "", "with --server: the site the server belongs to (site.name in its configuration); servers of federated sites need it to send DR plans (docs/dr.md)")
	f.BoolVar(&client, "client", false, "a client (operator, tool) certificate")
	f.BoolVar(&agent, "agent", false, "a moxxie-agent certificate")
	f.IntVar(&certDays, "days", 365, "validity in days")
	cert.AddCommand(certCreate)
	root.AddCommand(ca, cert)
	return root
}
