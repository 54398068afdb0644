package main

import (
	"io"
	"time"

	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
)

// Environment variables read when the matching flag is not given.
const (
	envAddr       = "MOXXIE_ADDR"
	envToken      = "MOXXIE_TOKEN"
	envCACert     = "MOXXIE_CACERT"
	envClientCert = "MOXXIE_CLIENT_CERT"
	envClientKey  = "MOXXIE_CLIENT_KEY"
	envSite       = "MOXXIE_SITE"
)

// Output formats of -o.
const (
	outputTable = "table"
	outputJSON  = "json"
)

// app is one invocation of moxxiectl: where it writes, its environment and
// its global flags.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	address, token, caCert string
	clientCert, clientKey  string
	site                   string
	output                 string
	timeout, retryFor      time.Duration
}

func (a *app) rootCommand() *cobra.Command {
	root := group("moxxiectl", "Manage a Moxxie cluster")
	root.Long = `moxxiectl manages a Moxxie cluster through its HTTPS API.

The server address, API token and CA certificate come from the flags below or
from MOXXIE_ADDR, MOXXIE_TOKEN and MOXXIE_CACERT.`
	root.SilenceUsage = true
	root.SilenceErrors = true
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })

	f := root.PersistentFlags()
	f.StringVarP(&a.address, "address", "a", "", "server URL(s), https://host:port, comma-separated (env "+envAddr+")")
	f.StringVar(&a.token, "token", "", "API token secret (env "+envToken+")")
	f.StringVar(&a.caCert, "ca-cert", "", "CA certificate file to verify servers with (env "+envCACert+")")
	f.StringVar(&a.clientCert, "client-cert", "", "client certificate file, if servers require one (env "+envClientCert+")")
	f.StringVar(&a.clientKey, "client-key", "", "client key file (env "+envClientKey+")")
	f.StringVar(&a.site, "site", "", "send the request to this site: the server passes it on to a server of that site, with the same token (env "+envSite+")")
	f.StringVarP(&a.output, "output", "o", outputTable, "output format: table or json")
	f.DurationVar(&a.timeout, "timeout", client.DefaultTimeout, "time limit of each request attempt (a blocking read, with --index, may take its --wait on top)")
	f.DurationVar(&a.retryFor, "retry-for", client.DefaultRetryFor, "how long to retry unreachable or leaderless servers; 0 disables")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return a.resolve(cmd) }

	root.AddCommand(
		a.clusterCommand(),
		a.snapshotCommand(),
		a.aclCommand(),
		a.tokenCommand(),
		a.settingCommand(),
		a.secretCommand(),
		a.auditCommand(),
		a.ipamCommand(), a.dnsCommand(), a.inventoryCommand(), a.vmCommand(), a.operationCommand(),
		a.tenantCommand(), a.projectCommand(),
		a.reportCommand(), a.rateCardCommand(), a.capacityCommand(),
		a.sdnCommand(),
		a.storageCommand(), a.backupCommand(),
		a.siteCommand(), a.drCommand(),
		a.debugCommand(),
		a.versionCommand(),
	)
	return root
}

// resolve fills global flags that were not given from the environment and
// checks them.
func (a *app) resolve(cmd *cobra.Command) error {
	fromEnv := []struct {
		flag string
		dst  *string
		env  string
	}{
		{"address", &a.address, envAddr},
		{"token", &a.token, envToken},
		{"ca-cert", &a.caCert, envCACert},
		{"client-cert", &a.clientCert, envClientCert},
		{"client-key", &a.clientKey, envClientKey},
		{"site", &a.site, envSite},
	}
	for _, e := range fromEnv {
		if !cmd.Flags().Changed(e.flag) {
			*e.dst = a.getenv(e.env)
		}
	}
	if a.output != outputTable && a.output != outputJSON {
		return usagef("invalid output format %q: want table or json", a.output)
	}
	if a.timeout <= 0 {
		return usagef("--timeout must be positive, got %s", a.timeout)
	}
	if a.retryFor < 0 {
		return usagef("--retry-for must not be negative, got %s", a.retryFor)
	}
	return nil
}

// client returns an API client for the global flags.
func (a *app) client() (*client.Client, error) {
	if a.address == "" {
		return nil, usagef("no server address: use --address or set %s", envAddr)
	}
	retry := a.retryFor
	if retry == 0 {
		retry = -1 // the client's "no retries"
	}
	return client.New(client.Config{
		Address:    a.address,
		Token:      a.token,
		CACert:     a.caCert,
		ClientCert: a.clientCert,
		ClientKey:  a.clientKey,
		Timeout:    a.timeout,
		RetryFor:   retry,
		Site:       a.site,
	})
}

func (a *app) json() bool { return a.output == outputJSON }
