package main

import (
	"errors"
	"fmt"

	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
)

const secretWarning = "Warning: store the secret ID now, it is shown only once.\n"

func (a *app) aclCommand() *cobra.Command {
	return group("acl", "Set up access control",
		&cobra.Command{
			Use:   "bootstrap",
			Short: "Create the first admin token (once per cluster)",
			Args:  exactArgs(),
			RunE:  a.aclBootstrap,
		},
	)
}

func (a *app) tokenCommand() *cobra.Command {
	var req client.TokenRequest
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API token and show its secret once",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.tokenCreate(cmd, req)
		},
	}
	f := create.Flags()
	f.StringVar(&req.Description, "description", "", "what the token is for")
	f.StringVar(&req.Role, "role", "", "role granted to the token")
	f.StringVar(&req.Tenant, "tenant", "", "tenant the token is limited to")
	f.DurationVar(&req.TTL, "ttl", 0, "lifetime of the token, e.g. 720h; 0 never expires")
	return group("token", "Manage API tokens",
		create,
		&cobra.Command{
			Use:   "list",
			Short: "List API tokens (without their secrets)",
			Args:  exactArgs(),
			RunE:  a.tokenList,
		},
		&cobra.Command{
			Use:   "revoke ACCESSOR_ID",
			Short: "Revoke an API token",
			Args:  exactArgs("ACCESSOR_ID"),
			RunE:  a.tokenRevoke,
		},
	)
}

func (a *app) aclBootstrap(cmd *cobra.Command, _ []string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	ts, err := c.Bootstrap(cmd.Context())
	if err != nil {
		return secretErr(err)
	}
	return a.printSecret(ts)
}

func (a *app) tokenCreate(cmd *cobra.Command, req client.TokenRequest) error {
	if req.TTL < 0 {
		return usagef("--ttl must not be negative, got %s", req.TTL)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	ts, _, err := c.TokenCreate(cmd.Context(), req, nil)
	if err != nil {
		return secretErr(err)
	}
	return a.printSecret(ts)
}

// secretErr explains a token created without its secret in the answer.
func secretErr(err error) error {
	if errors.Is(err, client.ErrNoSecret) {
		return fmt.Errorf("the token was created but the answer did not include its secret (%v); revoke it and create another", err)
	}
	return err
}

// printSecret shows a new token with its secret and warns on stderr that
// the secret is shown only once.
func (a *app) printSecret(ts *client.TokenSecret) error {
	fmt.Fprint(a.stderr, secretWarning)
	if a.json() {
		return printJSON(a.stdout, ts)
	}
	return keyValues(a.stdout,
		"Accessor ID", ts.AccessorID,
		"Secret ID", ts.SecretID,
		"Role", orDash(cell(ts.Role)),
		"Tenant", orDash(cell(ts.Tenant)),
		"Description", orDash(cell(ts.Description)),
		"Created", formatTime(ts.CreatedAt),
		"Expires", expires(ts.ExpiresAt),
	)
}

func expires(t client.Time) string {
	if t.IsZero() {
		return "never"
	}
	return formatTime(t)
}

func (a *app) tokenList(cmd *cobra.Command, _ []string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	toks, _, err := c.TokenList(cmd.Context(), nil)
	if err != nil {
		return err
	}
	if a.json() {
		if toks == nil {
			toks = []client.Token{}
		}
		return printJSON(a.stdout, toks)
	}
	tw := newTable(a.stdout)
	row(tw, "ACCESSOR ID", "ROLE", "TENANT", "DESCRIPTION", "CREATED", "EXPIRES")
	for _, t := range toks {
		row(tw, cell(t.AccessorID), orDash(cell(t.Role)), orDash(cell(t.Tenant)), orDash(cell(t.Description)),
			formatTime(t.CreatedAt), expires(t.ExpiresAt))
	}
	return tw.Flush()
}

func (a *app) tokenRevoke(cmd *cobra.Command, args []string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	if _, err := c.TokenRevoke(cmd.Context(), args[0], nil); err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, map[string]string{"accessor_id": args[0]})
	}
	return printf(a.stdout, "Token %s revoked\n", args[0])
}
