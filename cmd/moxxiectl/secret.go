package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
)

// maxSecretInput bounds a value read from a file or stdin (the server's
// limit is 64 KiB).
const maxSecretInput = 64<<10 + 1

func (a *app) secretCommand() *cobra.Command {
	var fromFile, fromEnv, description string
	var listFlags readFlags
	put := &cobra.Command{
		Use:   "put NAME",
		Short: "Store a secret, read from --from-file, --from-env or stdin",
		Long: `Store a secret. The value is read from a file (--from-file), an environment
variable (--from-env) or stdin, never from a command-line argument, so it does
not end up in shell history or the process list. One trailing newline is
removed. The value is encrypted on the leader and is never shown again.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := a.secretValue(cmd, fromFile, fromEnv)
			if err != nil {
				return err
			}
			return a.secretPut(cmd, args[0], v, description)
		},
	}
	put.Flags().StringVar(&fromFile, "from-file", "", "read the value from this file")
	put.Flags().StringVar(&fromEnv, "from-env", "", "read the value from this environment variable")
	put.Flags().StringVar(&description, "description", "", "what the secret is for")
	list := &cobra.Command{
		Use:   "list",
		Short: "List secrets (names and metadata, never values)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.secretList(cmd, &listFlags)
		},
	}
	listFlags.register(list)
	return group("secret", "Store secrets encrypted in the cluster; values are never printed",
		put, list,
		&cobra.Command{
			Use:   "delete NAME",
			Short: "Delete a secret",
			Args:  exactArgs("NAME"),
			RunE:  a.secretDelete,
		},
		&cobra.Command{
			Use:   "rotate",
			Short: "Make a new data key and re-encrypt every secret under it",
			Args:  exactArgs(),
			RunE:  a.secretRotate,
		},
	)
}

// secretValue reads the value to store from exactly one source.
func (a *app) secretValue(cmd *cobra.Command, file, env string) (string, error) {
	var b []byte
	var err error
	switch {
	case file != "" && env != "":
		return "", usagef("give --from-file or --from-env, not both")
	case file != "":
		f, ferr := os.Open(file)
		if ferr != nil {
			return "", ferr
		}
		defer f.Close()
		b, err = io.ReadAll(io.LimitReader(f, maxSecretInput))
	case env != "":
		v := a.getenv(env)
		if v == "" {
			return "", usagef("environment variable %s is not set or empty", env)
		}
		b = []byte(v)
	default:
		if f, ok := cmd.InOrStdin().(*os.File); ok {
			if fi, serr := f.Stat(); serr == nil && fi.Mode()&os.ModeCharDevice != 0 {
				fmt.Fprintln(a.stderr, "Reading the secret value from stdin; end with Ctrl-D.")
			}
		}
		b, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxSecretInput))
	}
	if err != nil {
		return "", err
	}
	if len(b) >= maxSecretInput {
		return "", errors.New("the value exceeds 64 KiB")
	}
	v := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(v, "\r"), nil
}

func (a *app) secretPut(cmd *cobra.Command, name, value, description string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	s, _, err := c.SecretPut(cmd.Context(), name, value, description)
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, s)
	}
	return printf(a.stdout, "Secret %s stored (version %d)\n", s.Name, s.Version)
}

func (a *app) secretList(cmd *cobra.Command, rf *readFlags) error {
	q, err := rf.options()
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	list, _, err := c.SecretList(cmd.Context(), q)
	if err != nil {
		return err
	}
	if a.json() {
		if list == nil {
			list = []client.Secret{}
		}
		return printJSON(a.stdout, list)
	}
	tw := newTable(a.stdout)
	row(tw, "NAME", "VERSION", "DATA KEY", "UPDATED", "DESCRIPTION")
	for _, s := range list {
		row(tw, cell(s.Name), u64(s.Version), cell(s.DEKID), formatTime(s.UpdatedAt), cell(s.Description))
	}
	return tw.Flush()
}

func (a *app) secretDelete(cmd *cobra.Command, args []string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	if _, err := c.SecretDelete(cmd.Context(), args[0]); err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, map[string]string{"name": args[0]})
	}
	return printf(a.stdout, "Secret %s deleted\n", args[0])
}

func (a *app) secretRotate(cmd *cobra.Command, _ []string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	r, _, err := c.SecretRotate(cmd.Context())
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, r)
	}
	if err := printf(a.stdout, "New data key %s; %d secret(s) re-encrypted\n", r.DEKID, r.Reencrypted); err != nil {
		return err
	}
	if r.Skipped > 0 {
		return printf(a.stdout, "%d secret(s) changed meanwhile stay under an older key; rotate again to take them\n", r.Skipped)
	}
	return nil
}
