package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
)

const secretWarning = "Warning: store the secret ID now, it is shown only once.\n"

// aclCommand is "acl": bootstrap, and the token commands also found at
// the top level as "token".
func (a *app) aclCommand() *cobra.Command {
	return group("acl", "Set up access control",
		&cobra.Command{
			Use:   "bootstrap",
			Short: "Create the first admin token (once per cluster)",
			Args:  exactArgs(),
			RunE:  a.aclBootstrap,
		},
		a.tokenCommand(),
	)
}

// roleHelp describes the roles for the help of token create.
func roleHelp() string {
	var b strings.Builder
	b.WriteString("Roles:\n")
	for _, r := range auth.Roles {
		scope := ""
		if r.Tenanted() {
			scope = " (needs --tenant)"
		}
		fmt.Fprintf(&b, "  %-14s %s%s\n", r, roleSummary[r], scope)
	}
	return b.String()
}

// roleSummary says in a few words what each role may do.
var roleSummary = map[auth.Role]string{
	auth.RoleAdmin:        "everything, tokens included",
	auth.RoleOperator:     "runs the platform: everything but tokens, secrets and snapshot restore",
	auth.RoleAuditor:      "reads everything, the audit log included; changes nothing",
	auth.RoleTenantAdmin:  "manages its tenant's VMs and addresses",
	auth.RoleTenantUser:   "operates its tenant's VMs and addresses",
	auth.RoleTenantViewer: "reads its tenant's objects",
	auth.RoleAgent:        "a host agent: reads the network plan and reports",
	auth.RoleSite:         "a server of another site: sends the DR plans it holds for this one",
}

// checkTokenRequest refuses, before asking the server, a token request
// whose role is unknown or whose tenant does not suit the role.
func checkTokenRequest(req client.TokenRequest) error {
	role := auth.Role(req.Role)
	switch {
	case req.Role == "":
		return usagef("--role is required: one of %s", roleList())
	case !role.Valid():
		return usagef("--role %q is not a role: one of %s", req.Role, roleList())
	case role.Tenanted() && req.Tenant == "":
		return usagef("--tenant is required: %s tokens act within one tenant", role)
	case !role.Tenanted() && req.Tenant != "":
		return usagef("--tenant is only for tenant roles, not %s", role)
	case req.TTL < 0:
		return usagef("--ttl must not be negative, got %s", req.TTL)
	}
	return nil
}

// roleList returns the roles separated by commas.
func roleList() string {
	names := make([]string, len(auth.Roles))
	for i, r := range auth.Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

func (a *app) tokenCommand() *cobra.Command {
	var req client.TokenRequest
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API token and show its secret once",
		Long: "Create an API token and show its secret once: the server keeps only its hash.\n\n" + roleHelp() +
			"\nOnly an admin token may create tokens.",
		Example: "  moxxiectl token create --role operator --description ci --ttl 720h\n" +
			"  moxxiectl token create --role tenant-user --tenant acme",
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.tokenCreate(cmd, req)
		},
	}
	f := create.Flags()
	f.StringVar(&req.Description, "description", "", "what the token is for")
	f.StringVar(&req.Role, "role", "", "role granted to the token: "+roleList())
	f.StringVar(&req.Tenant, "tenant", "", "tenant the token acts within (tenant roles only)")
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
	if err := checkTokenRequest(req); err != nil {
		return err
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
