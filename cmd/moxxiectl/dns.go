package main

import (
	"context"
	"io"
	"strconv"

	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
)

func (a *app) dnsCommand() *cobra.Command {
	return group("dns", "Manage the DNS zones Moxxie serves", a.zoneCommand())
}

func (a *app) zoneCommand() *cobra.Command {
	var req client.ZoneRequest
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a forward DNS zone, served from the addresses' DNS names",
		Args:  exactArgs("NAME"),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("ttl") && req.TTL == 0 {
				return usagef("--ttl must be 1 to 86400 seconds, got 0; leave it out for the server's default")
			}
			return nil
		},
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			req.Name = args[0]
			z, _, err := c.ZoneCreate(ctx, req, nil)
			if err != nil {
				return err
			}
			return a.show(z, func(w io.Writer) error { return printZone(w, z) })
		}),
	}
	create.Flags().Uint32Var(&req.TTL, "ttl", 0, "TTL of the zone's records in seconds (default: the server's)")
	create.Flags().StringVar(&req.Tenant, "tenant", "", "tenant owning the zone")
	create.Flags().StringVar(&req.Description, "description", "", "what the zone is for")
	refusesEmpty(create)
	return group("zone", "Manage forward DNS zones",
		a.readCommand("list", "List DNS zones", exactArgs(),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
				list, _, err := c.ZoneList(ctx, q)
				if err != nil {
					return err
				}
				return showList(a, list, func(w io.Writer) error {
					tw := newTable(w)
					row(tw, "NAME", "TTL", "TENANT", "DESCRIPTION")
					for _, z := range list {
						row(tw, cell(z.ID), strconv.FormatUint(uint64(z.TTL), 10), orDash(cell(z.Tenant)), orDash(cell(z.Description)))
					}
					return tw.Flush()
				})
			}),
		create,
		a.readCommand("get NAME", "Show a DNS zone", exactArgs("NAME"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				z, _, err := c.ZoneGet(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(z, func(w io.Writer) error { return printZone(w, z) })
			}),
		a.zoneUpdateCommand(),
		a.zoneDeleteCommand(),
	)
}

func (a *app) zoneUpdateCommand() *cobra.Command {
	var ttl uint32
	var description string
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Change the TTL or description of a DNS zone",
		Long: `Change the TTL or description of a DNS zone: only the flags given are sent,
and an empty --description clears it. Every server answers the zone's names
with the new TTL at once, and its SOA serial moves on: lower the TTL ahead
of a migration by at least the old TTL.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := client.ZoneUpdate{Description: changed(cmd, "description", description)}
			if cmd.Flags().Changed("ttl") {
				if ttl == 0 {
					return usagef("--ttl must be 1 to 86400 seconds, got 0")
				}
				u.TTL = &ttl
			}
			if u == (client.ZoneUpdate{}) {
				return usagef("nothing to update: give --ttl or --description")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			z, _, err := c.ZoneUpdate(cmd.Context(), args[0], u, nil)
			if err != nil {
				return err
			}
			return a.show(z, func(w io.Writer) error { return printZone(w, z) })
		},
	}
	cmd.Flags().Uint32Var(&ttl, "ttl", 0, "new TTL of the zone's records in seconds")
	cmd.Flags().StringVar(&description, "description", "", "new description; empty clears it")
	return cmd
}

func (a *app) zoneDeleteCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a DNS zone",
		Long: `Delete a DNS zone. While addresses have names the zone serves it is refused,
naming how many and the first, when deleting it would take them out of DNS or
hand them to a zone above it against the tenant naming rules; a zone above
that may serve them takes them over. --force deletes it anyway.`,
		Args: exactArgs("NAME"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			z, _, err := c.ZoneDelete(ctx, args[0], force, nil)
			if err != nil {
				return err
			}
			return a.show(z, func(w io.Writer) error { return printf(w, "Zone %s deleted\n", cell(args[0])) })
		}),
	}
	cmd.Flags().BoolVar(&force, "force", false, "delete the zone even while addresses have names it serves")
	return cmd
}

func printZone(w io.Writer, z *client.Zone) error {
	return keyValues(w,
		"Name", cell(z.ID),
		"TTL", strconv.FormatUint(uint64(z.TTL), 10),
		"Tenant", orDash(cell(z.Tenant)),
		"Description", orDash(cell(z.Description)),
		"Created", formatTime(z.CreatedAt),
		"Updated", formatTime(z.UpdatedAt),
	)
}
