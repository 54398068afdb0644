package main

import (
	"context"
	"io"

	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
)

func (a *app) addressCommand() *cobra.Command {
	var force bool
	release := &cobra.Command{
		Use:   "release ID",
		Short: "Release an address; it stays in quarantine for ipam.quarantine unless --force",
		Args:  exactArgs("ID"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			r, _, err := c.AddressRelease(ctx, args[0], force, nil)
			if err != nil {
				return err
			}
			return a.show(r, func(w io.Writer) error {
				if r.QuarantinedUntil.IsZero() {
					return printf(w, "Address %s released (ID %s)\n", cell(r.Address.Address), cell(args[0]))
				}
				return printf(w, "Address %s released (ID %s), in quarantine until %s\n",
					cell(r.Address.Address), cell(args[0]), formatTime(r.QuarantinedUntil))
			})
		}),
	}
	release.Flags().BoolVar(&force, "force", false, "skip the quarantine: the address may be handed out again at once")
	return group("address", "Manage IP addresses",
		a.addressListCommand(),
		a.addressCreateCommand(),
		a.readCommand("get ID", "Show an address", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				addr, _, err := c.AddressGet(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(addr, func(w io.Writer) error { return printAddress(w, addr) })
			}),
		a.addressUpdateCommand(),
		release,
	)
}

// addressPageSize is how many addresses a listing without --limit asks
// for at a time, so that no server answers with a large estate at once.
// Tests make it smaller.
var addressPageSize = 5000

func (a *app) addressListCommand() *cobra.Command {
	var f client.AddressFilter
	var cmd *cobra.Command
	cmd = a.readCommand("list", "List addresses", exactArgs(),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
			if f.Limit < 0 || f.Limit == 0 && cmd.Flags().Changed("limit") {
				return usagef("--limit must be at least 1, got %d", f.Limit)
			}
			if f.PrefixID != "" {
				id, err := resolvePrefix(ctx, c, f.PrefixID, q)
				if err != nil {
					return err
				}
				f.PrefixID = id
			}
			list, next, err := listAddresses(ctx, c, f, q)
			if err != nil {
				return err
			}
			if err := showList(a, list, func(w io.Writer) error { return addressTable(w, list) }); err != nil {
				return err
			}
			if next != "" {
				return printf(a.stderr, "More addresses follow: --after %s\n", next)
			}
			return nil
		})
	fl := cmd.Flags()
	fl.StringVar(&f.PrefixID, "prefix", "", "only addresses of this prefix (ID or CIDR)")
	// The API's name for it, which scripts written against the API reach for.
	fl.StringVar(&f.PrefixID, "prefix-id", "", "the same as --prefix")
	_ = fl.MarkHidden("prefix-id")
	fl.StringVar(&f.VRF, "vrf", "", "only addresses of this VRF")
	fl.StringVar(&f.Address, "ip", "", "only the addresses at this IP (in every VRF unless --vrf is given)")
	fl.StringVar(&f.Tenant, "tenant", "", "only addresses of this tenant")
	fl.StringVar(&f.Owner, "owner", "", "only addresses of this owner, e.g. vm:101/net0")
	fl.StringVar(&f.DNSName, "dns-name", "", "only addresses with this DNS name")
	fl.StringVar(&f.Status, "status", "", "only addresses with this status: active, reserved or deprecated")
	fl.IntVar(&f.Limit, "limit", 0, "list at most this many; when more follow, a line on stderr gives the --after of the next page")
	fl.StringVar(&f.After, "after", "", "list the addresses after the page that gave this cursor")
	return cmd
}

// listAddresses lists what f selects: with a limit one page and the
// cursor of the next (empty after the last page); without one all of
// them, read addressPageSize at a time; a blocking query (--index) in
// one read.
func listAddresses(ctx context.Context, c *client.Client, f client.AddressFilter, q *client.QueryOptions) ([]client.Address, string, error) {
	if f.Limit == 0 && q != nil && q.Index != 0 {
		list, _, err := c.AddressList(ctx, f, q)
		return list, "", err
	}
	if f.Limit > 0 {
		p, _, err := c.AddressListPage(ctx, f, q)
		if err != nil {
			return nil, "", err
		}
		return p.Addresses, p.Next, nil
	}
	var all []client.Address
	f.Limit = addressPageSize
	for {
		p, _, err := c.AddressListPage(ctx, f, q)
		if err != nil {
			return nil, "", err
		}
		all = append(all, p.Addresses...)
		if p.Next == "" {
			return all, "", nil
		}
		f.After = p.Next
	}
}

func (a *app) addressCreateCommand() *cobra.Command {
	var req client.AddressRequest
	var idem idempotencyFlag
	cmd := &cobra.Command{
		Use:   "create IP",
		Short: "Allocate a given address from the active prefix containing it",
		Args:  exactArgs("IP"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			req.Address = args[0]
			addrs, m, err := c.AddressCreate(ctx, req, idem.options())
			if err != nil {
				return err
			}
			a.noteReplayed(m)
			return showList(a, addrs, func(w io.Writer) error { return addressTable(w, addrs) })
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&req.VRF, "vrf", "", "VRF to find the prefix in (default global)")
	fl.BoolVar(&req.Fallback, "fallback", false, "take the lowest free address of the prefix when this one is taken")
	fl.BoolVar(&req.Force, "force", false, "take the address even if it is still in quarantine")
	fl.StringVar(&req.DNSName, "dns-name", "", "DNS name of the address")
	fl.StringVar(&req.Tenant, "tenant", "", "tenant owning the address")
	fl.StringVar(&req.Project, "project", "", "project of the tenant the address counts against (see moxxiectl project)")
	fl.StringVar(&req.Owner, "owner", "", "what uses the address, e.g. vm:101/net0")
	fl.StringVar(&req.Status, "status", "", "status of the address: active (default), reserved or deprecated")
	fl.StringVar(&req.Description, "description", "", "what the address is for")
	idem.register(cmd)
	return refusesEmpty(cmd)
}

func (a *app) addressUpdateCommand() *cobra.Command {
	var status, dnsName, tenant, project, owner, description string
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change fields of an address",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := client.AddressUpdate{
				Status:      changed(cmd, "status", status),
				DNSName:     changed(cmd, "dns-name", dnsName),
				Tenant:      changed(cmd, "tenant", tenant),
				Project:     changed(cmd, "project", project),
				Owner:       changed(cmd, "owner", owner),
				Description: changed(cmd, "description", description),
			}
			if u == (client.AddressUpdate{}) {
				return usagef("nothing to update: give --status, --dns-name, --tenant, --project, --owner or --description")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			addr, m, err := c.AddressUpdate(cmd.Context(), args[0], u, nil)
			if err != nil {
				return err
			}
			a.noteReplayed(m)
			return a.show(addr, func(w io.Writer) error { return printAddress(w, addr) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&status, "status", "", "new status: active, reserved or deprecated")
	fl.StringVar(&dnsName, "dns-name", "", "new DNS name; empty clears it")
	fl.StringVar(&tenant, "tenant", "", "new tenant; empty clears it")
	fl.StringVar(&project, "project", "", "new project of the tenant; empty clears it (clearing the tenant clears it too)")
	fl.StringVar(&owner, "owner", "", "new owner; empty clears it")
	fl.StringVar(&description, "description", "", "new description; empty clears it")
	return cmd
}

func addressTable(w io.Writer, list []client.Address) error {
	tw := newTable(w)
	row(tw, "ADDRESS", "VRF", "DNS NAME", "STATUS", "OWNER", "TENANT", "ID")
	for _, a := range list {
		row(tw, cell(a.Address), orDash(cell(a.VRF)), orDash(cell(a.DNSName)), cell(a.Status), orDash(cell(a.Owner)), orDash(cell(tenantOf(a))), cell(a.ID))
	}
	return tw.Flush()
}

// tenantOf is an address's tenant, as tenant/project when it has a
// project.
func tenantOf(a client.Address) string {
	if a.Project != "" {
		return a.Tenant + "/" + a.Project
	}
	return a.Tenant
}

func printAddress(w io.Writer, a *client.Address) error {
	kv := []string{
		"ID", cell(a.ID),
		"Address", cell(a.Address),
		"Prefix ID", cell(a.PrefixID),
		"VRF", cell(a.VRF),
		"Status", cell(a.Status),
		"DNS name", orDash(cell(a.DNSName)),
		"Tenant", orDash(cell(a.Tenant)),
	}
	if a.Project != "" {
		kv = append(kv, "Project", cell(a.Project))
	}
	kv = append(kv,
		"Owner", orDash(cell(a.Owner)),
		"Description", orDash(cell(a.Description)),
		"Created", formatTime(a.CreatedAt),
		"Updated", formatTime(a.UpdatedAt),
	)
	return keyValues(w, kv...)
}
