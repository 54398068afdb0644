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
		a.zoneDeleteCommand(),
	)
}

func (a *app) zoneDeleteCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a DNS zone",
		Long: `Delete a DNS zone. While addresses have names the zone serves it is refused,
naming how many and the first: deleting it would take them out of DNS.
--force deletes it anyway.`,
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
	)
}
