package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
)

func (a *app) prefixCommand() *cobra.Command {
	return group("prefix", "Manage prefixes and allocate from them",
		a.prefixListCommand(),
		a.prefixCreateCommand(),
		a.readCommand("get ID|CIDR", "Show a prefix and its utilization", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				id, err := resolvePrefix(ctx, c, args[0], q)
				if err != nil {
					return err
				}
				p, _, err := c.PrefixGet(ctx, id, q)
				if err != nil {
					return err
				}
				return a.show(p, func(w io.Writer) error { return printPrefix(w, p) })
			}),
		a.prefixUpdateCommand(),
		a.prefixDeleteCommand(),
		a.prefixAllocateCommand(),
		a.prefixAllocatePrefixCommand(),
		a.prefixAvailableCommand(),
	)
}

func (a *app) prefixListCommand() *cobra.Command {
	var f client.PrefixFilter
	cmd := a.readCommand("list", "List prefixes", exactArgs(),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
			if f.Family != 0 && f.Family != 4 && f.Family != 6 {
				return usagef("--family must be 4 or 6, got %d", f.Family)
			}
			if f.ParentID != "" {
				id, err := resolvePrefix(ctx, c, f.ParentID, q)
				if err != nil {
					return err
				}
				f.ParentID = id
			}
			list, _, err := c.PrefixList(ctx, f, q)
			if err != nil {
				return err
			}
			return showList(a, list, func(w io.Writer) error { return prefixTable(w, list) })
		})
	fl := cmd.Flags()
	fl.StringVar(&f.VRF, "vrf", "", "only prefixes of this VRF")
	fl.StringVar(&f.Tenant, "tenant", "", "only prefixes of this tenant")
	fl.StringVar(&f.ParentID, "parent", "", "only the children of this container (ID or CIDR)")
	fl.StringVar(&f.Status, "status", "", "only prefixes with this status: active or container")
	fl.IntVar(&f.Family, "family", 0, "only IPv4 (4) or IPv6 (6) prefixes")
	fl.StringVar(&f.Contains, "contains", "", "only prefixes containing this IP or CIDR")
	return cmd
}

func (a *app) prefixCreateCommand() *cobra.Command {
	var req client.PrefixRequest
	var container bool
	cmd := &cobra.Command{
		Use:   "create CIDR",
		Short: "Create a prefix",
		Args:  exactArgs("CIDR"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			req.Prefix = args[0]
			if container {
				req.Status = client.PrefixContainer
			}
			p, _, err := c.PrefixCreate(ctx, req, nil)
			if err != nil {
				return err
			}
			return a.show(p, func(w io.Writer) error { return printPrefix(w, p) })
		}),
	}
	fl := cmd.Flags()
	fl.StringVar(&req.VRF, "vrf", "", "VRF of the prefix (default global)")
	fl.BoolVar(&container, "container", false, "create a container, which holds child prefixes instead of addresses")
	fl.BoolVar(&req.IsPool, "pool", false, "make every address usable, network and broadcast included")
	fl.StringVar(&req.Tenant, "tenant", "", "tenant owning the prefix")
	fl.StringVar(&req.Project, "project", "", "project of the tenant the prefix counts against")
	fl.StringVar(&req.Gateway, "gateway", "", "gateway address to reserve in the prefix (an IPv6 link-local one, in fe80::/64, is kept but not reserved)")
	fl.StringVar(&req.Description, "description", "", "what the prefix is for")
	return refusesEmpty(cmd)
}

func (a *app) prefixUpdateCommand() *cobra.Command {
	var tenant, project, description string
	var pool bool
	cmd := &cobra.Command{
		Use:   "update ID|CIDR",
		Short: "Change the tenant, project or description of a prefix, or whether it is a pool",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := client.PrefixUpdate{
				Tenant:      changed(cmd, "tenant", tenant),
				Project:     changed(cmd, "project", project),
				Description: changed(cmd, "description", description),
				IsPool:      changed(cmd, "pool", pool),
			}
			if u == (client.PrefixUpdate{}) {
				return usagef("nothing to update: give --tenant, --project, --description or --pool")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			id, err := resolvePrefix(cmd.Context(), c, args[0], nil)
			if err != nil {
				return err
			}
			p, _, err := c.PrefixUpdate(cmd.Context(), id, u, nil)
			if err != nil {
				return err
			}
			return a.show(p, func(w io.Writer) error { return printPrefix(w, p) })
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "new tenant; empty clears it")
	cmd.Flags().StringVar(&project, "project", "", "new project of the tenant; empty clears it")
	cmd.Flags().StringVar(&description, "description", "", "new description; empty clears it")
	cmd.Flags().BoolVar(&pool, "pool", false, "make every address usable, network and broadcast included; --pool=false makes them reserved again (they must be free)")
	return cmd
}

func (a *app) prefixDeleteCommand() *cobra.Command {
	var o client.PrefixDeleteOptions
	cmd := &cobra.Command{
		Use:   "delete ID|CIDR",
		Short: "Delete a prefix that holds no addresses and no child prefixes",
		Long: `Delete a prefix that holds no addresses and no child prefixes.

A container that holds child prefixes is refused unless --reparent is
given: its children then move to its parent (or the VRF's top level),
undoing what creating it over them did. While addresses released from the
prefix are in quarantine it is refused too: the quarantine goes with the
prefix, and a prefix made again in its place would hand them out at once.
--force deletes it anyway.`,
		Args: exactArgs("ID"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			id, err := resolvePrefix(ctx, c, args[0], nil)
			if err != nil {
				return err
			}
			p, _, err := c.PrefixDelete(ctx, id, o, nil)
			if err != nil {
				return err
			}
			return a.show(p, func(w io.Writer) error {
				return printf(w, "Prefix %s deleted (ID %s)\n", cell(p.Prefix), cell(id))
			})
		}),
	}
	cmd.Flags().BoolVar(&o.Force, "force", false, "delete even while released addresses are in quarantine, dropping it")
	cmd.Flags().BoolVar(&o.Reparent, "reparent", false, "delete a container holding child prefixes, moving them to its parent")
	return cmd
}

func (a *app) prefixAllocateCommand() *cobra.Command {
	var req client.AllocateRequest
	var idem idempotencyFlag
	cmd := &cobra.Command{
		Use:   "allocate ID|CIDR",
		Short: "Allocate addresses from an active prefix",
		Long: `Allocate addresses from an active prefix: the lowest free ones, or the one
given with --ip. The request carries an idempotency key, so a retry after
a timeout or failover never hands out addresses twice.`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("count") {
				if req.Count < 1 {
					return usagef("--count must be at least 1, got %d", req.Count)
				}
			} else if req.Address != "" {
				req.Count = 0 // one, the given address
			}
			if req.Address != "" && cmd.Flags().Changed("count") && req.Count != 1 {
				return usagef("--count %d and --ip exclude each other: --ip asks for one address", req.Count)
			}
			if req.Address == "" && (req.Force || req.Fallback) {
				flag := "--force"
				if !req.Force {
					flag = "--fallback"
				}
				return usagef("%s takes effect only with --ip", flag)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			id, err := resolvePrefix(cmd.Context(), c, args[0], nil)
			if err != nil {
				return err
			}
			addrs, m, err := c.PrefixAllocate(cmd.Context(), id, req, idem.options())
			if err != nil {
				return err
			}
			a.noteReplayed(m)
			return showList(a, addrs, func(w io.Writer) error { return addressTable(w, addrs) })
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&req.Count, "count", 1, "number of addresses to allocate")
	// Not --address: that is the global server address flag.
	fl.StringVar(&req.Address, "ip", "", "allocate this address")
	fl.BoolVar(&req.Fallback, "fallback", false, "with --ip, take the lowest free address when it is taken")
	fl.BoolVar(&req.Force, "force", false, "with --ip, take the address even if it is still in quarantine")
	fl.StringVar(&req.DNSName, "dns-name", "", "DNS name of the address")
	fl.StringVar(&req.Tenant, "tenant", "", "tenant owning the addresses")
	fl.StringVar(&req.Project, "project", "", "project of the tenant the addresses count against (see moxxiectl project)")
	fl.StringVar(&req.Owner, "owner", "", "what uses the addresses, e.g. vm:101/net0")
	fl.StringVar(&req.Status, "status", "", "status of the addresses: active (default), reserved or deprecated")
	fl.StringVar(&req.Description, "description", "", "what the addresses are for")
	idem.register(cmd)
	return refusesEmpty(cmd)
}

func (a *app) prefixAllocatePrefixCommand() *cobra.Command {
	var req client.PrefixAllocateRequest
	var container bool
	var idem idempotencyFlag
	cmd := &cobra.Command{
		Use:   "allocate-prefix ID|CIDR --length N",
		Short: "Allocate the lowest free child prefix of a container",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("length") {
				return usagef("%s needs --length", cmd.CommandPath())
			}
			if container {
				req.Status = client.PrefixContainer
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			id, err := resolvePrefix(cmd.Context(), c, args[0], nil)
			if err != nil {
				return err
			}
			p, m, err := c.PrefixAllocatePrefix(cmd.Context(), id, req, idem.options())
			if err != nil {
				return err
			}
			a.noteReplayed(m)
			return a.show(p, func(w io.Writer) error { return printPrefix(w, p) })
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&req.PrefixLength, "length", 0, "prefix length of the new prefix, e.g. 26")
	fl.BoolVar(&container, "container", false, "make the new prefix a container")
	fl.BoolVar(&req.IsPool, "pool", false, "make every address of the new prefix usable")
	fl.StringVar(&req.Tenant, "tenant", "", "tenant owning the new prefix")
	fl.StringVar(&req.Project, "project", "", "project of the tenant the new prefix counts against")
	fl.StringVar(&req.Description, "description", "", "what the new prefix is for")
	idem.register(cmd)
	return refusesEmpty(cmd)
}

func (a *app) prefixAvailableCommand() *cobra.Command {
	var limit int
	var cmd *cobra.Command
	cmd = a.readCommand("available ID|CIDR", "List free addresses of a prefix, or free CIDRs of a container", exactArgs("ID"),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
			if limit < 0 || limit == 0 && cmd.Flags().Changed("limit") {
				return usagef("--limit must be at least 1, got %d", limit)
			}
			id, err := resolvePrefix(ctx, c, args[0], q)
			if err != nil {
				return err
			}
			list, _, err := c.PrefixAvailable(ctx, id, limit, q)
			if err != nil {
				return err
			}
			switch n := cmp.Or(limit, availableDefault); {
			case len(list) == n && n < availableMax:
				fmt.Fprintf(a.stderr, "Note: the first %d shown; more may be free (--limit, at most %d; the prefix's utilization counts them).\n", n, availableMax)
			case len(list) == n:
				fmt.Fprintf(a.stderr, "Note: the first %d shown, as many as one listing gives; more may be free (the prefix's utilization counts them).\n", n)
			}
			return showList(a, list, func(w io.Writer) error {
				for _, s := range list {
					if err := printf(w, "%s\n", cell(s)); err != nil {
						return err
					}
				}
				return nil
			})
		})
	cmd.Flags().IntVar(&limit, "limit", 0, fmt.Sprintf("list at most this many (server default %d, at most %d)", availableDefault, availableMax))
	return cmd
}

// The server's default and largest limit of a prefix's available list.
const (
	availableDefault = 50
	availableMax     = 1000
)

func prefixTable(w io.Writer, list []client.Prefix) error {
	tw := newTable(w)
	row(tw, "PREFIX", "VRF", "STATUS", "UTILIZATION", "TENANT", "ID")
	for _, p := range list {
		status := p.Status
		if p.IsPool {
			status += " (pool)"
		}
		row(tw, cell(p.Prefix), cell(p.VRF), cell(status), percent(p.Utilization), orDash(cell(p.Tenant)), cell(p.ID))
	}
	return tw.Flush()
}

func printPrefix(w io.Writer, p *client.Prefix) error {
	return keyValues(w,
		"ID", cell(p.ID),
		"Prefix", cell(p.Prefix),
		"VRF", cell(p.VRF),
		"Status", cell(p.Status),
		"Pool", yesNo(p.IsPool),
		"Parent", orDash(cell(p.ParentID)),
		"Tenant", orDash(cell(p.Tenant)),
		"Gateway", orDash(cell(p.Gateway)),
		"Description", orDash(cell(p.Description)),
		"Utilization", usage(p.Utilization),
		"Created", formatTime(p.CreatedAt),
		"Updated", formatTime(p.UpdatedAt),
	)
}

func (a *app) ipRangeCommand() *cobra.Command {
	var prefixID string
	list := a.readCommand("list", "List IP ranges kept out of allocation", exactArgs(),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
			id := prefixID
			if id != "" {
				var err error
				if id, err = resolvePrefix(ctx, c, id, q); err != nil {
					return err
				}
			}
			list, _, err := c.IPRangeList(ctx, id, q)
			if err != nil {
				return err
			}
			return showList(a, list, func(w io.Writer) error {
				tw := newTable(w)
				row(tw, "START", "END", "PREFIX ID", "DESCRIPTION", "ID")
				for _, r := range list {
					row(tw, cell(r.StartAddress), cell(r.EndAddress), cell(r.PrefixID), orDash(cell(r.Description)), cell(r.ID))
				}
				return tw.Flush()
			})
		})
	list.Flags().StringVar(&prefixID, "prefix", "", "only the ranges of this prefix (ID or CIDR)")
	list.Flags().StringVar(&prefixID, "prefix-id", "", "the same as --prefix")
	_ = list.Flags().MarkHidden("prefix-id")

	var req client.IPRangeRequest
	create := &cobra.Command{
		Use:   "create PREFIX_ID|CIDR START END",
		Short: "Keep a range of an active prefix out of allocation (e.g. for DHCP)",
		Args:  exactArgs("PREFIX_ID", "START", "END"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			id, err := resolvePrefix(ctx, c, args[0], nil)
			if err != nil {
				return err
			}
			req.PrefixID, req.StartAddress, req.EndAddress = id, args[1], args[2]
			r, _, err := c.IPRangeCreate(ctx, req, nil)
			if err != nil {
				return err
			}
			return a.show(r, func(w io.Writer) error {
				return printf(w, "IP range %s-%s created in prefix %s (ID %s)\n",
					cell(r.StartAddress), cell(r.EndAddress), cell(r.PrefixID), cell(r.ID))
			})
		}),
	}
	create.Flags().StringVar(&req.Description, "description", "", "what the range is for")
	return group("range", "Manage IP ranges kept out of allocation",
		list,
		a.readCommand("get ID", "Show an IP range", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				r, _, err := c.IPRangeGet(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(r, func(w io.Writer) error {
					return keyValues(w,
						"ID", cell(r.ID),
						"Start", cell(r.StartAddress),
						"End", cell(r.EndAddress),
						"Prefix ID", cell(r.PrefixID),
						"Description", orDash(cell(r.Description)),
						"Created", formatTime(r.CreatedAt),
					)
				})
			}),
		create,
		&cobra.Command{
			Use:   "delete ID",
			Short: "Return an IP range to allocation",
			Args:  exactArgs("ID"),
			RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
				r, _, err := c.IPRangeDelete(ctx, args[0], nil)
				if err != nil {
					return err
				}
				return a.show(r, func(w io.Writer) error {
					return printf(w, "IP range %s-%s deleted (ID %s)\n", cell(r.StartAddress), cell(r.EndAddress), cell(args[0]))
				})
			}),
		},
	)
}

// resolvePrefix resolves ref, a prefix's ID or its CIDR, to the prefix's ID. A
// CIDR names the prefix with exactly that CIDR in whichever VRF holds it;
// when several VRFs do, the ID must be given. A read looks it up as it
// reads (q's stale or consistent; nil for a write).
func resolvePrefix(ctx context.Context, c *client.Client, ref string, q *client.QueryOptions) (string, error) {
	pfx, err := netip.ParsePrefix(ref)
	if err != nil {
		return ref, nil // an ID
	}
	if m := pfx.Masked(); m != pfx {
		return "", usagef("%s is not a prefix: did you mean %s?", ref, m)
	}
	var lq *client.QueryOptions
	if q != nil {
		lq = &client.QueryOptions{Stale: q.Stale, Consistent: q.Consistent}
	}
	list, _, err := c.PrefixList(ctx, client.PrefixFilter{Contains: pfx.String()}, lq)
	if err != nil {
		return "", err
	}
	var found []client.Prefix
	for _, p := range list {
		if p.Prefix == pfx.String() {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no prefix is %s, in any VRF (moxxiectl ipam prefix list --contains %s shows those around it)", pfx, pfx)
	case 1:
		return found[0].ID, nil
	}
	in := make([]string, len(found))
	for i, p := range found {
		in[i] = fmt.Sprintf("%s in VRF %s", p.ID, p.VRF)
	}
	return "", fmt.Errorf("%s is a prefix in %d VRFs: give the ID of the one you mean (%s)", pfx, len(found), strings.Join(in, ", "))
}
