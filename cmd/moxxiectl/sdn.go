package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moxxie/moxxie/client"
	"github.com/moxxie/moxxie/sdn"
	"github.com/spf13/cobra"
)

func (a *app) sdnCommand() *cobra.Command {
	root := group("sdn", "Manage the software-defined network: zones, vnets, subnets, allow rules, hosts and rollouts",
		a.sdnZoneCommand(),
		a.sdnVnetCommand(),
		a.sdnSubnetCommand(),
		a.sdnAllowCommand(),
		a.sdnHostCommand(),
		a.sdnApplyCommand(),
		a.sdnStatusCommand(),
		a.sdnRolloutCommand(),
	)
	root.Long = `Manage the software-defined network.

Zones, vnets, subnets and allow rules are the intent: changing them changes
nothing on the hosts. "moxxiectl sdn apply" compiles the intent into a plan
per host and rolls it out as a new version: every host's agent applies it,
and the version commits when all did, or aborts (every host back to its
previous version) when one fails or the deadline passes.`
	return root
}

// sdnUpdate runs the update command of an SDN object: it reads the
// object, lets change apply the flags given and, when any was, writes it
// back whole.
func sdnUpdate[T any](cmd *cobra.Command, get func() (*T, error), change func(*T) (bool, error), put func(T) error) error {
	v, err := get()
	if err != nil {
		return err
	}
	changed, err := change(v)
	if err != nil {
		return err
	}
	if !changed {
		return usagef("nothing to update: give at least one of the flags of %s", cmd.CommandPath())
	}
	return put(*v)
}

// splitList splits a comma-separated flag value, dropping blanks; an
// empty value is an empty list.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// zoneFlags are the flags of sdn zone create and update.
type zoneFlags struct {
	typ, nodes, pool string
	mtu, port        int
}

func (f *zoneFlags) register(cmd *cobra.Command, create bool) {
	fl := cmd.Flags()
	if create {
		fl.StringVar(&f.typ, "type", "", "zone type: simple (a bridge local to each host), vlan or vxlan (required)")
	}
	fl.IntVar(&f.mtu, "mtu", 0, "MTU of the zone's vnets; 0 derives it from the hosts' uplinks")
	fl.StringVar(&f.nodes, "nodes", "", "comma-separated hosts the zone spans; empty means every host")
	fl.StringVar(&f.pool, "pool", "", "IPAM VLAN group (vlan zones) or VNI pool (vxlan zones) that vnets without a tag take one from")
	fl.IntVar(&f.port, "port", 0, "VXLAN UDP port (vxlan zones); 0 means 4789")
}

// apply sets the fields of z whose flags cmd was given, and reports
// whether any was.
func (f *zoneFlags) apply(cmd *cobra.Command, z *sdn.Zone) bool {
	ch := changesOf(cmd)
	ch.set("mtu", func() { z.MTU = f.mtu })
	ch.set("nodes", func() { z.Nodes = splitList(f.nodes) })
	ch.set("pool", func() { z.Pool = f.pool })
	ch.set("port", func() { z.Port = f.port })
	return ch.any()
}

func (a *app) sdnZoneCommand() *cobra.Command {
	var cf zoneFlags
	create := &cobra.Command{
		Use:   "create ID",
		Short: "Create a zone",
		Example: `  moxxiectl sdn zone create lan --type simple
  moxxiectl sdn zone create ovl --type vxlan --pool tenants --nodes pve1,pve2,pve3`,
		Args: exactArgs("ID"),
		RunE: a.withCmdClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
			z := sdn.Zone{ID: args[0], Type: sdn.ZoneType(cf.typ)}
			cf.apply(cmd, &z)
			out, _, err := c.SDNZoneCreate(cmd.Context(), z, nil)
			if err != nil {
				return err
			}
			return a.show(out, func(w io.Writer) error { return printSDNZone(w, out) })
		}),
	}
	cf.register(create, true)

	var uf zoneFlags
	update := &cobra.Command{
		Use:   "update ID",
		Short: "Change a zone's MTU, hosts, pool or port",
		Long:  "Change a zone. Only the flags given change; --nodes \"\" spans every host again.",
		Args:  exactArgs("ID"),
		RunE: a.withCmdClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
			ctx := cmd.Context()
			return sdnUpdate(cmd,
				func() (*sdn.Zone, error) {
					z, _, err := c.SDNZoneGet(ctx, args[0], nil)
					if err != nil {
						return nil, err
					}
					return &z.Zone, nil
				},
				func(z *sdn.Zone) (bool, error) { return uf.apply(cmd, z), nil },
				func(z sdn.Zone) error {
					out, _, err := c.SDNZoneUpdate(ctx, z, nil)
					if err != nil {
						return err
					}
					return a.show(out, func(w io.Writer) error { return printSDNZone(w, out) })
				})
		}),
	}
	uf.register(update, false)

	return group("zone", "Manage zones: groups of vnets of one type (simple, vlan, vxlan) spanning hosts",
		a.readCommand("list", "List zones", exactArgs(),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
				list, _, err := c.SDNZoneList(ctx, q)
				if err != nil {
					return err
				}
				return showList(a, list, func(w io.Writer) error {
					tw := newTable(w)
					row(tw, "ID", "TYPE", "MTU", "NODES", "POOL", "PORT")
					for _, z := range list {
						row(tw, cell(z.ID), cell(string(z.Type)), intOr(z.MTU, "auto"), orDash(cell(strings.Join(z.Nodes, ","))),
							orDash(cell(z.Pool)), intOr(z.Port, portDefault(z.Type)))
					}
					return tw.Flush()
				})
			}),
		a.readCommand("get ID", "Show a zone", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				z, _, err := c.SDNZoneGet(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(z, func(w io.Writer) error { return printSDNZone(w, z) })
			}),
		create,
		update,
		a.sdnDeleteCommand("delete ID", "Delete a zone no vnet uses", "Zone", func(ctx context.Context, c *client.Client, id string) (any, error) {
			v, _, err := c.SDNZoneDelete(ctx, id, nil)
			return v, err
		}),
	)
}

// withCmdClient is withClient for a RunE that needs its command (for the
// flags it was given).
func (a *app) withCmdClient(fn func(cmd *cobra.Command, c *client.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		return fn(cmd, c, args)
	}
}

// sdnDeleteCommand returns a delete command: del deletes the object named
// by the one argument and returns it as it was.
func (a *app) sdnDeleteCommand(use, short, noun string, del func(ctx context.Context, c *client.Client, id string) (any, error)) *cobra.Command {
	arg := strings.Fields(use)[1]
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(arg),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			v, err := del(ctx, c, args[0])
			if err != nil {
				return err
			}
			return a.show(v, func(w io.Writer) error { return printf(w, "%s %s deleted\n", noun, cell(args[0])) })
		}),
	}
}

// intOr formats n, or def when it is zero.
func intOr(n int, def string) string {
	if n == 0 {
		return def
	}
	return strconv.Itoa(n)
}

// portDefault is what a zone's zero port means.
func portDefault(t sdn.ZoneType) string {
	if t == sdn.ZoneVXLAN {
		return strconv.Itoa(sdn.DefaultVXLANPort)
	}
	return "-"
}

func printSDNZone(w io.Writer, z *client.SDNZone) error {
	return keyValues(w,
		"ID", cell(z.ID),
		"Type", cell(string(z.Type)),
		"MTU", intOr(z.MTU, "auto (from the hosts' uplinks)"),
		"Nodes", orDefault(cell(strings.Join(z.Nodes, ", ")), "every host"),
		"Pool", orDash(cell(z.Pool)),
		"Port", intOr(z.Port, portDefault(z.Type)),
		"Created", formatTime(z.CreatedAt),
		"Updated", formatTime(z.UpdatedAt),
	)
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// vnetFlags are the flags of sdn vnet create and update.
type vnetFlags struct {
	zone, tenant, alias string
	tag                 int
}

func (f *vnetFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.zone, "zone", "", "zone of the vnet (required on create)")
	fl.IntVar(&f.tag, "tag", 0, "VLAN ID (vlan zones) or VNI (vxlan zones); without one, the zone's pool assigns one")
	fl.StringVar(&f.tenant, "tenant", "", "tenant owning the vnet: its vnets reach each other, other tenants' only through allow rules")
	fl.StringVar(&f.alias, "alias", "", "free description")
}

func (f *vnetFlags) apply(cmd *cobra.Command, v *sdn.Vnet) bool {
	ch := changesOf(cmd)
	ch.set("zone", func() { v.Zone = f.zone })
	ch.set("tag", func() { v.Tag = f.tag })
	ch.set("tenant", func() { v.Tenant = f.tenant })
	ch.set("alias", func() { v.Alias = f.alias })
	return ch.any()
}

func (a *app) sdnVnetCommand() *cobra.Command {
	var cf vnetFlags
	var key idempotencyFlag
	create := &cobra.Command{
		Use:   "create ID",
		Short: "Create a vnet: a bridge named ID on every host of its zone",
		Example: `  moxxiectl sdn vnet create web --zone ovl --tenant acme
  moxxiectl sdn vnet create db --zone vl --tag 120`,
		Args: exactArgs("ID"),
		RunE: a.withCmdClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
			v := sdn.Vnet{ID: args[0]}
			cf.apply(cmd, &v)
			out, m, err := c.SDNVnetCreate(cmd.Context(), v, key.options())
			if err != nil {
				return err
			}
			a.noteReplayed(m)
			return a.show(out, func(w io.Writer) error { return printSDNVnet(w, out) })
		}),
	}
	cf.register(create)
	key.register(create)

	var uf vnetFlags
	update := &cobra.Command{
		Use:   "update ID",
		Short: "Change a vnet's zone, tag, tenant or alias",
		Long:  "Change a vnet. Only the flags given change.",
		Args:  exactArgs("ID"),
		RunE: a.withCmdClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
			ctx := cmd.Context()
			return sdnUpdate(cmd,
				func() (*sdn.Vnet, error) {
					v, _, err := c.SDNVnetGet(ctx, args[0], nil)
					if err != nil {
						return nil, err
					}
					return &v.Vnet, nil
				},
				func(v *sdn.Vnet) (bool, error) { return uf.apply(cmd, v), nil },
				func(v sdn.Vnet) error {
					out, _, err := c.SDNVnetUpdate(ctx, v, nil)
					if err != nil {
						return err
					}
					return a.show(out, func(w io.Writer) error { return printSDNVnet(w, out) })
				})
		}),
	}
	uf.register(update)

	var zone, tenant string
	list := a.readCommand("list", "List vnets", exactArgs(),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
			all, _, err := c.SDNVnetList(ctx, q)
			if err != nil {
				return err
			}
			list := slices.DeleteFunc(all, func(v client.SDNVnet) bool {
				return zone != "" && v.Zone != zone || tenant != "" && v.Tenant != tenant
			})
			return showList(a, list, func(w io.Writer) error {
				tw := newTable(w)
				row(tw, "ID", "ZONE", "TAG", "TENANT", "ALIAS")
				for _, v := range list {
					row(tw, cell(v.ID), cell(v.Zone), intOr(v.Tag, "-"), orDash(cell(v.Tenant)), orDash(cell(v.Alias)))
				}
				return tw.Flush()
			})
		})
	list.Flags().StringVar(&zone, "zone", "", "only the vnets of this zone")
	list.Flags().StringVar(&tenant, "tenant", "", "only the vnets of this tenant")

	return group("vnet", "Manage vnets: virtual networks, one bridge on every host of their zone",
		list,
		a.readCommand("get ID", "Show a vnet", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				v, _, err := c.SDNVnetGet(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(v, func(w io.Writer) error { return printSDNVnet(w, v) })
			}),
		create,
		update,
		a.sdnDeleteCommand("delete ID", "Delete a vnet no subnet uses, releasing its tag", "Vnet", func(ctx context.Context, c *client.Client, id string) (any, error) {
			v, _, err := c.SDNVnetDelete(ctx, id, nil)
			return v, err
		}),
	)
}

func printSDNVnet(w io.Writer, v *client.SDNVnet) error {
	kv := []string{
		"ID", cell(v.ID),
		"Zone", cell(v.Zone),
		"Tag", intOr(v.Tag, "-"),
		"Tenant", orDash(cell(v.Tenant)),
		"Alias", orDash(cell(v.Alias)),
	}
	if v.AllocationID != "" {
		kv = append(kv, "Allocation", cell(v.AllocationID))
	}
	kv = append(kv, "Created", formatTime(v.CreatedAt), "Updated", formatTime(v.UpdatedAt))
	return keyValues(w, kv...)
}

// subnetFlags are the flags of sdn subnet create and update.
type subnetFlags struct {
	vnet, prefix, gateway string
	snat                  bool
}

func (f *subnetFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.vnet, "vnet", "", "vnet of the subnet (required on create)")
	fl.StringVar(&f.prefix, "prefix", "", "IPAM prefix the subnet is: its ID, or its CIDR when one prefix has it (required on create)")
	fl.StringVar(&f.gateway, "gateway", "", "address the hosts hold on the vnet's bridge (simple zones); empty for none")
	fl.BoolVar(&f.snat, "snat", false, "masquerade the subnet's traffic leaving through the hosts' uplinks (needs a gateway)")
}

func (f *subnetFlags) apply(ctx context.Context, cmd *cobra.Command, c *client.Client, s *sdn.Subnet) (bool, error) {
	ch := changesOf(cmd)
	if ch.given("prefix") {
		id, err := prefixIDOf(ctx, c, f.prefix)
		if err != nil {
			return false, err
		}
		if id != s.PrefixID {
			s.PrefixID, s.CIDR = id, "" // the server fills in the new prefix's CIDR
		}
	}
	ch.set("vnet", func() { s.Vnet = f.vnet })
	ch.set("gateway", func() { s.Gateway = f.gateway })
	ch.set("snat", func() { s.SNAT = f.snat })
	return ch.any(), nil
}

// prefixIDOf returns the ID of the IPAM prefix ref names: ref itself, or
// the ID of the one prefix whose CIDR ref is.
func prefixIDOf(ctx context.Context, c *client.Client, ref string) (string, error) {
	cidr, err := netip.ParsePrefix(ref)
	if err != nil {
		return ref, nil
	}
	list, _, err := c.PrefixList(ctx, client.PrefixFilter{Contains: cidr.String()}, nil)
	if err != nil {
		return "", fmt.Errorf("looking up prefix %s: %w", cidr, err)
	}
	var found []client.Prefix
	for _, p := range list {
		if pp, err := netip.ParsePrefix(p.Prefix); err == nil && pp == cidr {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no prefix %s in IPAM (see moxxiectl ipam prefix list)", cidr)
	case 1:
		return found[0].ID, nil
	}
	var in []string
	for _, p := range found {
		in = append(in, fmt.Sprintf("%s in VRF %s", p.ID, p.VRF))
	}
	return "", fmt.Errorf("prefix %s exists in several VRFs (%s): give the prefix ID", cidr, strings.Join(in, ", "))
}

func (a *app) sdnSubnetCommand() *cobra.Command {
	var cf subnetFlags
	create := &cobra.Command{
		Use:     "create ID",
		Short:   "Create a subnet of an IPAM prefix on a vnet",
		Example: `  moxxiectl sdn subnet create web4 --vnet web --prefix 10.1.0.0/24 --gateway 10.1.0.1 --snat`,
		Args:    exactArgs("ID"),
		RunE: a.withCmdClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
			ctx := cmd.Context()
			s := sdn.Subnet{ID: args[0]}
			if _, err := cf.apply(ctx, cmd, c, &s); err != nil {
				return err
			}
			out, _, err := c.SDNSubnetCreate(ctx, s, nil)
			if err != nil {
				return err
			}
			return a.show(out, func(w io.Writer) error { return printSDNSubnet(w, out) })
		}),
	}
	cf.register(create)

	var uf subnetFlags
	update := &cobra.Command{
		Use:   "update ID",
		Short: "Change a subnet's vnet, prefix, gateway or SNAT",
		Long:  "Change a subnet. Only the flags given change; --gateway \"\" removes the gateway, --snat=false SNAT.",
		Args:  exactArgs("ID"),
		RunE: a.withCmdClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
			ctx := cmd.Context()
			return sdnUpdate(cmd,
				func() (*sdn.Subnet, error) {
					s, _, err := c.SDNSubnetGet(ctx, args[0], nil)
					if err != nil {
						return nil, err
					}
					return &s.Subnet, nil
				},
				func(s *sdn.Subnet) (bool, error) { return uf.apply(ctx, cmd, c, s) },
				func(s sdn.Subnet) error {
					out, _, err := c.SDNSubnetUpdate(ctx, s, nil)
					if err != nil {
						return err
					}
					return a.show(out, func(w io.Writer) error { return printSDNSubnet(w, out) })
				})
		}),
	}
	uf.register(update)

	var vnet string
	list := a.readCommand("list", "List subnets", exactArgs(),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
			all, _, err := c.SDNSubnetList(ctx, q)
			if err != nil {
				return err
			}
			list := slices.DeleteFunc(all, func(s client.SDNSubnet) bool { return vnet != "" && s.Vnet != vnet })
			return showList(a, list, func(w io.Writer) error {
				tw := newTable(w)
				row(tw, "ID", "VNET", "CIDR", "GATEWAY", "SNAT", "PREFIX")
				for _, s := range list {
					row(tw, cell(s.ID), cell(s.Vnet), orDash(cell(s.CIDR)), orDash(cell(s.Gateway)), yesNo(s.SNAT), cell(s.PrefixID))
				}
				return tw.Flush()
			})
		})
	list.Flags().StringVar(&vnet, "vnet", "", "only the subnets of this vnet")

	return group("subnet", "Manage subnets: IPAM prefixes on vnets, with their gateway and SNAT",
		list,
		a.readCommand("get ID", "Show a subnet", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				s, _, err := c.SDNSubnetGet(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(s, func(w io.Writer) error { return printSDNSubnet(w, s) })
			}),
		create,
		update,
		a.sdnDeleteCommand("delete ID", "Delete a subnet", "Subnet", func(ctx context.Context, c *client.Client, id string) (any, error) {
			v, _, err := c.SDNSubnetDelete(ctx, id, nil)
			return v, err
		}),
	)
}

func printSDNSubnet(w io.Writer, s *client.SDNSubnet) error {
	return keyValues(w,
		"ID", cell(s.ID),
		"Vnet", cell(s.Vnet),
		"CIDR", orDash(cell(s.CIDR)),
		"Prefix", cell(s.PrefixID),
		"Gateway", orDash(cell(s.Gateway)),
		"SNAT", yesNo(s.SNAT),
		"Created", formatTime(s.CreatedAt),
		"Updated", formatTime(s.UpdatedAt),
	)
}

// allowFlags are the flags of sdn allow create and update.
type allowFlags struct {
	from, to, description string
}

func (f *allowFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "where the traffic comes from: vnet:<id> or tenant:<name> (required on create)")
	fl.StringVar(&f.to, "to", "", "where it may go: vnet:<id> or tenant:<name> (required on create)")
	fl.StringVar(&f.description, "description", "", "why the rule exists")
}

func (f *allowFlags) apply(cmd *cobra.Command, r *sdn.Allow) bool {
	ch := changesOf(cmd)
	ch.set("from", func() { r.From = f.from })
	ch.set("to", func() { r.To = f.to })
	ch.set("description", func() { r.Description = f.description })
	return ch.any()
}

func (a *app) sdnAllowCommand() *cobra.Command {
	var cf allowFlags
	var key idempotencyFlag
	create := &cobra.Command{
		Use:   "create [ID]",
		Short: "Allow routed traffic from one vnet or tenant to another (the server names a rule without ID)",
		Long: `Allow routed traffic from one vnet or tenant to another. Without allow rules a
tenant's vnets reach only the same tenant's vnets. A rule allows one
direction; replies pass as established traffic.`,
		Example: `  moxxiectl sdn allow create --from tenant:acme --to vnet:shared --description "ACME uses the shared services"`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("%s takes at most one ID, got %d arguments", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: a.withCmdClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
			var r sdn.Allow
			if len(args) == 1 {
				r.ID = args[0]
			}
			cf.apply(cmd, &r)
			out, m, err := c.SDNAllowCreate(cmd.Context(), r, key.options())
			if err != nil {
				return err
			}
			a.noteReplayed(m)
			return a.show(out, func(w io.Writer) error { return printSDNAllow(w, out) })
		}),
	}
	cf.register(create)
	key.register(create)

	var uf allowFlags
	update := &cobra.Command{
		Use:   "update ID",
		Short: "Change an allow rule",
		Args:  exactArgs("ID"),
		RunE: a.withCmdClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
			ctx := cmd.Context()
			return sdnUpdate(cmd,
				func() (*sdn.Allow, error) {
					r, _, err := c.SDNAllowGet(ctx, args[0], nil)
					if err != nil {
						return nil, err
					}
					return &r.Allow, nil
				},
				func(r *sdn.Allow) (bool, error) { return uf.apply(cmd, r), nil },
				func(r sdn.Allow) error {
					out, _, err := c.SDNAllowUpdate(ctx, r, nil)
					if err != nil {
						return err
					}
					return a.show(out, func(w io.Writer) error { return printSDNAllow(w, out) })
				})
		}),
	}
	uf.register(update)

	return group("allow", "Manage allow rules: routed traffic permitted between vnets or tenants",
		a.readCommand("list", "List allow rules", exactArgs(),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
				list, _, err := c.SDNAllowList(ctx, q)
				if err != nil {
					return err
				}
				return showList(a, list, func(w io.Writer) error {
					tw := newTable(w)
					row(tw, "ID", "FROM", "TO", "DESCRIPTION")
					for _, r := range list {
						row(tw, cell(r.ID), cell(r.From), cell(r.To), orDash(cell(r.Description)))
					}
					return tw.Flush()
				})
			}),
		a.readCommand("get ID", "Show an allow rule", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				r, _, err := c.SDNAllowGet(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(r, func(w io.Writer) error { return printSDNAllow(w, r) })
			}),
		create,
		update,
		a.sdnDeleteCommand("delete ID", "Delete an allow rule", "Allow rule", func(ctx context.Context, c *client.Client, id string) (any, error) {
			v, _, err := c.SDNAllowDelete(ctx, id, nil)
			return v, err
		}),
	)
}

func printSDNAllow(w io.Writer, r *client.SDNAllow) error {
	return keyValues(w,
		"ID", cell(r.ID),
		"From", cell(r.From),
		"To", cell(r.To),
		"Description", orDash(cell(r.Description)),
		"Created", formatTime(r.CreatedAt),
		"Updated", formatTime(r.UpdatedAt),
	)
}

func (a *app) sdnHostCommand() *cobra.Command {
	return group("host", "Show and remove the hosts whose agents enrolled",
		a.readCommand("list", "List enrolled hosts with the version each applied", exactArgs(),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
				list, _, err := c.SDNHostList(ctx, q)
				if err != nil {
					return err
				}
				return showList(a, list, func(w io.Writer) error {
					tw := newTable(w)
					row(tw, "NAME", "ADDRESS", "UPLINK", "MTU", "COMMITTED", "APPLIED", "STATE", "REPORTED")
					for _, h := range list {
						st := h.State
						if st == nil {
							st = &client.SDNHostState{}
						}
						row(tw, cell(h.Name), cell(h.Address), orDash(cell(h.Uplink)), intOr(h.MTU, "1500"),
							u64(st.Committed), u64(st.Applied), orDefault(cell(st.State), "never reported"), formatTime(st.ReportedAt))
					}
					return tw.Flush()
				})
			}),
		a.readCommand("get NAME", "Show an enrolled host and its agent's last report", exactArgs("NAME"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				h, _, err := c.SDNHostGet(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(h, func(w io.Writer) error { return printSDNHost(w, h) })
			}),
		a.sdnDeleteCommand("delete NAME", "Remove a host from the network; the next rollout leaves it out", "Host", func(ctx context.Context, c *client.Client, name string) (any, error) {
			v, _, err := c.SDNHostDelete(ctx, name, nil)
			return v, err
		}),
	)
}

func printSDNHost(w io.Writer, h *client.SDNHost) error {
	kv := []string{
		"Name", cell(h.Name),
		"Address", cell(h.Address),
		"Uplink", orDash(cell(h.Uplink)),
		"MTU", intOr(h.MTU, "1500"),
		"Management", orDash(cell(h.Management)),
		"Enrolled", formatTime(h.EnrolledAt),
	}
	if st := h.State; st != nil {
		kv = append(kv,
			"Committed", u64(st.Committed),
			"Target", u64(st.Target),
			"Applied", u64(st.Applied),
			"State", orDefault(cell(st.State), "never reported"),
			"Reported", formatTime(st.ReportedAt),
			"Actions", strconv.Itoa(st.Actions),
		)
		if st.Error != "" {
			kv = append(kv, "Error", cell(st.Error))
		}
		for _, d := range st.Drift {
			kv = append(kv, "Drift", cell(d))
		}
	} else {
		kv = append(kv, "State", "never reported")
	}
	return keyValues(w, kv...)
}

func (a *app) sdnApplyCommand() *cobra.Command {
	var req client.SDNApplyRequest
	var wait bool
	var key idempotencyFlag
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Roll the intent out to every host as a new version, showing what changes on each",
		Long: `Compile the intent into a plan per host and roll it out as a new version.
Every enrolled host's agent applies its plan; the version commits when all
did, and aborts when one fails or --timeout passes, sending every host back
to the version it was committed to.

--dry-run shows what would change on each host and rolls nothing out.
--wait follows the rollout until it commits or aborts; it exits non-zero
when it aborts.`,
		Example: `  moxxiectl sdn apply --dry-run
  moxxiectl sdn apply --timeout 2m --wait`,
		Args: exactArgs(),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			if req.Timeout < 0 {
				return usagef("--timeout must not be negative, got %s", req.Timeout)
			}
			if req.DryRun && wait {
				return usagef("--dry-run rolls nothing out: there is nothing to --wait for")
			}
			res, m, err := c.SDNApply(ctx, req, key.options())
			if err != nil {
				return err
			}
			a.noteReplayed(m)
			if req.DryRun || res.Rollout == nil {
				return a.show(res, func(w io.Writer) error { return printSDNApplyResult(w, res) })
			}
			r := res.Rollout
			if !wait {
				if err := a.show(res, func(w io.Writer) error { return printSDNApplyResult(w, res) }); err != nil {
					return err
				}
				if !a.json() {
					fmt.Fprintf(a.stderr, "Follow it with: moxxiectl sdn rollout wait %s\n", r.ID)
				}
				return nil
			}
			if !a.json() {
				if err := printSDNRolloutChanges(a.stdout, r); err != nil {
					return err
				}
			}
			return a.waitRollout(ctx, c, r.ID, false)
		}),
	}
	fl := cmd.Flags()
	fl.BoolVar(&req.DryRun, "dry-run", false, "show what would change on each host; roll nothing out")
	fl.DurationVar(&req.Timeout, "timeout", 0, "how long the hosts have to apply the new version before the rollout aborts, 1s to 10m (default 60s); on this command --timeout is not the request time limit")
	fl.BoolVar(&wait, "wait", false, "follow the rollout until it commits or aborts; fail when it aborts")
	key.register(cmd)
	return cmd
}

// printSDNApplyResult prints the answer of an apply: each host's changes,
// then what was (or, in a dry run, would be) rolled out.
func printSDNApplyResult(w io.Writer, res *client.SDNApplyResult) error {
	if r := res.Rollout; r != nil {
		if err := printSDNRolloutChanges(w, r); err != nil {
			return err
		}
		return printf(w, "Rollout %s started: version %d to %s, deadline %s\n",
			cell(r.ID), r.Version, plural(len(r.Hosts), "host"), formatTime(r.Deadline))
	}
	if res.NoChange {
		return printf(w, "No change: every host is committed to what the intent compiles to (version %d).\n", res.Version)
	}
	changed := 0
	var same []string
	for _, h := range res.Hosts {
		if len(h.Changes) == 0 {
			same = append(same, h.Host)
			continue
		}
		changed++
		if err := printSDNDiff(w, h.Host, h.FromVersion, h.ToVersion, h.Changes); err != nil {
			return err
		}
	}
	if len(same) > 0 {
		if err := printf(w, "No change on %s\n", cell(strings.Join(same, ", "))); err != nil {
			return err
		}
	}
	return printf(w, "Dry run: version %d would change %d of %s; nothing was rolled out.\n", res.Version, changed, plural(len(res.Hosts), "host"))
}

// printSDNDiff prints what a version changes on one host.
func printSDNDiff(w io.Writer, host string, from, to uint64, changes []sdn.Change) error {
	return printf(w, "%s", sdn.FormatDiff(fmt.Sprintf("%s (version %d -> %d)", cell(host), from, to), changes))
}

// printSDNRolloutChanges prints the changes of a rollout, host by host.
func printSDNRolloutChanges(w io.Writer, r *client.SDNRollout) error {
	var same []string
	for _, h := range r.Hosts {
		ch := r.Changes[h]
		if len(ch) == 0 {
			same = append(same, h)
			continue
		}
		if err := printSDNDiff(w, h, r.Previous[h], r.Version, ch); err != nil {
			return err
		}
	}
	if len(same) > 0 {
		return printf(w, "No change on %s\n", cell(strings.Join(same, ", ")))
	}
	return nil
}

// waitRollout follows a rollout to its end, printing a line on stderr
// whenever it moves, then prints the rollout, with its changes when
// changes is set. It fails when the rollout aborted.
func (a *app) waitRollout(ctx context.Context, c *client.Client, id string, changes bool) error {
	last := ""
	r, err := c.WaitSDNRollout(ctx, id, func(r *client.SDNRollout) {
		if line := rolloutLine(r); line != last {
			last = line
			fmt.Fprintln(a.stderr, time.Now().UTC().Format("15:04:05")+" "+line)
		}
	})
	if r == nil {
		return err
	}
	if perr := a.show(r, func(w io.Writer) error {
		if !changes {
			return printSDNRolloutSummary(w, r)
		}
		return printSDNRollout(w, r)
	}); perr != nil {
		return perr
	}
	return err
}

// rolloutLine describes a rollout's progress in one line, such as
// "version 4 preparing: 2 of 3 hosts applied (waiting for pve3)".
func rolloutLine(r *client.SDNRollout) string {
	line := fmt.Sprintf("version %d %s: %d of %s applied", r.Version, r.Phase, len(r.Prepared), plural(len(r.Hosts), "host"))
	if r.Phase == client.RolloutPreparing {
		var waiting []string
		for _, h := range r.Hosts {
			if !slices.Contains(r.Prepared, h) {
				waiting = append(waiting, h)
			}
		}
		if len(waiting) > 0 {
			line += " (waiting for " + strings.Join(waiting, ", ") + ")"
		}
	}
	if r.Reason != "" {
		line += ": " + r.Reason
	}
	return oneLine(line)
}

func (a *app) sdnStatusCommand() *cobra.Command {
	return a.readCommand("status", "Show the network's version and the version each host applied", exactArgs(),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
			st, _, err := c.SDNStatus(ctx, q)
			if err != nil {
				return err
			}
			return a.show(st, func(w io.Writer) error { return printSDNStatus(w, st) })
		})
}

func printSDNStatus(w io.Writer, st *client.SDNStatus) error {
	rollout := "-"
	if r := st.Rollout; r != nil {
		rollout = cell(r.ID) + " " + rolloutLine(r)
	}
	if err := keyValues(w,
		"Version", u64(st.Version),
		"Committed", u64(st.Committed),
		"Rollout", rollout,
	); err != nil {
		return err
	}
	if len(st.Hosts) == 0 {
		return printf(w, "\nNo host is enrolled: start moxxie-agent on the hosts.\n")
	}
	if err := printf(w, "\n"); err != nil {
		return err
	}
	tw := newTable(w)
	row(tw, "HOST", "COMMITTED", "TARGET", "APPLIED", "STATE", "REPORTED", "ERROR")
	for _, h := range st.Hosts {
		state := orDefault(cell(h.State), "never reported")
		if !h.Enrolled {
			state += " (not enrolled)"
		}
		if len(h.Drift) > 0 {
			state += fmt.Sprintf(" (healed %s)", plural(len(h.Drift), "drift"))
		}
		row(tw, cell(h.Host), u64(h.Committed), u64(h.Target), u64(h.Applied), state, formatTime(h.ReportedAt), orDash(cell(oneLine(h.Error))))
	}
	return tw.Flush()
}

func (a *app) sdnRolloutCommand() *cobra.Command {
	var reason string
	abort := &cobra.Command{
		Use:   "abort ID",
		Short: "Abort a rollout still preparing: every host goes back to its previous version",
		Args:  exactArgs("ID"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			r, _, err := c.SDNRolloutAbort(ctx, args[0], reason, nil)
			if err != nil {
				return err
			}
			return a.show(r, func(w io.Writer) error { return printSDNRollout(w, r) })
		}),
	}
	abort.Flags().StringVar(&reason, "reason", "", "why, recorded in the rollout")

	return group("rollout", "Follow and abort the rollouts of new versions of the network",
		a.readCommand("list", "List rollouts, newest first", exactArgs(),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
				list, _, err := c.SDNRolloutList(ctx, q)
				if err != nil {
					return err
				}
				return showList(a, list, func(w io.Writer) error {
					tw := newTable(w)
					row(tw, "ID", "VERSION", "PHASE", "HOSTS", "APPLIED", "CREATED", "DONE", "REASON")
					for _, r := range list {
						row(tw, cell(r.ID), u64(r.Version), cell(r.Phase), strconv.Itoa(len(r.Hosts)), strconv.Itoa(len(r.Prepared)),
							formatTime(r.CreatedAt), formatTime(r.DoneAt), orDash(cell(oneLine(r.Reason))))
					}
					return tw.Flush()
				})
			}),
		a.readCommand("get ID", "Show a rollout and what it changes on each host", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				r, _, err := c.SDNRolloutGet(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(r, func(w io.Writer) error { return printSDNRollout(w, r) })
			}),
		&cobra.Command{
			Use:   "wait ID",
			Short: "Follow a rollout until it commits or aborts, printing progress on stderr; fail when it aborts",
			Args:  exactArgs("ID"),
			RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
				return a.waitRollout(ctx, c, args[0], true)
			}),
		},
		abort,
	)
}

// printSDNRollout prints a rollout and its changes, host by host.
func printSDNRollout(w io.Writer, r *client.SDNRollout) error {
	if err := printSDNRolloutSummary(w, r); err != nil {
		return err
	}
	if len(r.Changes) == 0 {
		return nil
	}
	if err := printf(w, "\n"); err != nil {
		return err
	}
	return printSDNRolloutChanges(w, r)
}

// printSDNRolloutSummary prints a rollout without its changes.
func printSDNRolloutSummary(w io.Writer, r *client.SDNRollout) error {
	kv := []string{
		"ID", cell(r.ID),
		"Version", u64(r.Version),
		"Phase", cell(r.Phase),
		"Hosts", orDash(cell(strings.Join(r.Hosts, ", "))),
		"Applied", orDash(cell(strings.Join(r.Prepared, ", "))),
	}
	if r.Reason != "" {
		kv = append(kv, "Reason", cell(oneLine(r.Reason)))
	}
	kv = append(kv,
		"Created", formatTime(r.CreatedAt),
		"Deadline", formatTime(r.Deadline),
		"Done", formatTime(r.DoneAt),
	)
	return keyValues(w, kv...)
}
