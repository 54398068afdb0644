package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
)

func (a *app) inventoryCommand() *cobra.Command {
	return group("inventory", "Show the virtualization platform as last observed",
		a.readCommand("status", "Show when the platform was last read and whether the inventory is stale", exactArgs(),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
				s, _, err := c.InventoryState(ctx, q)
				if err != nil {
					return err
				}
				return a.show(s, func(w io.Writer) error { return printInvState(w, s) })
			}),
		a.inventoryNodesCommand(),
		a.readCommand("node NAME", "Show a hypervisor node", exactArgs("NAME"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				n, _, err := c.InventoryNode(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(n, func(w io.Writer) error { return printInvNode(w, n) })
			}),
		a.inventoryGuestsCommand(),
		a.readCommand("guest VMID", "Show a virtual machine or container", exactArgs("VMID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				vmid, err := parseVMID(args[0])
				if err != nil {
					return err
				}
				g, _, err := c.InventoryGuest(ctx, vmid, q)
				if err != nil {
					return err
				}
				return a.show(g, func(w io.Writer) error { return printInvGuest(w, g) })
			}),
		a.inventoryStorageCommand(),
	)
}

func (a *app) inventoryNodesCommand() *cobra.Command {
	var gone bool
	cmd := a.readCommand("nodes", "List the hypervisor nodes", exactArgs(),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
			list, _, err := c.InventoryNodes(ctx, gone, q)
			if err != nil {
				return err
			}
			return showList(a, list, func(w io.Writer) error {
				tw := newTable(w)
				row(tw, "NAME", "STATUS", "CPUS", "CPU", "MEMORY", "DISK")
				for _, n := range list {
					row(tw, cell(n.Name), invStatus(n.Status, n.Gone), strconv.Itoa(n.MaxCPU), cpuPercent(n.CPU),
						usedOf(n.Mem, n.MaxMem), usedOf(n.Disk, n.MaxDisk))
				}
				return tw.Flush()
			})
		})
	cmd.Flags().BoolVar(&gone, "include-gone", false, "list the nodes that disappeared from the platform too")
	return cmd
}

func (a *app) inventoryGuestsCommand() *cobra.Command {
	var f client.GuestFilter
	var templates bool
	var cmd *cobra.Command
	cmd = a.readCommand("guests", "List virtual machines and containers", exactArgs(),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
			if cmd.Flags().Changed("templates") {
				f.Template = &templates
			}
			if f.Kind != "" && f.Kind != client.GuestKindVM && f.Kind != client.GuestKindContainer {
				return usagef("--kind must be %s or %s, got %q", client.GuestKindVM, client.GuestKindContainer, f.Kind)
			}
			list, _, err := c.InventoryGuests(ctx, f, q)
			if err != nil {
				return err
			}
			return showList(a, list, func(w io.Writer) error {
				tw := newTable(w)
				row(tw, "VMID", "NAME", "KIND", "NODE", "STATUS", "CORES", "MEMORY", "TENANT", "TAGS")
				for _, g := range list {
					row(tw, strconv.Itoa(g.VMID), orDash(cell(g.Name)), cell(g.Kind), cell(g.Node), guestStatus(&g),
						strconv.Itoa(g.MaxCPU), bytesIEC(g.MaxMem), orDash(cell(g.Tenant)), orDash(cell(strings.Join(g.Tags, ","))))
				}
				return tw.Flush()
			})
		})
	fl := cmd.Flags()
	fl.StringVar(&f.Node, "node", "", "only guests on this node")
	fl.StringVar(&f.Tag, "tag", "", "only guests with this tag")
	fl.StringVar(&f.Tenant, "tenant", "", "only guests of this tenant")
	fl.StringVar(&f.Status, "status", "", "only guests with this status, e.g. running or stopped; gone lists those that disappeared")
	fl.StringVar(&f.Kind, "kind", "", "only virtual machines (qemu) or containers (lxc)")
	fl.BoolVar(&templates, "templates", false, "only templates; --templates=false lists only guests that are not templates")
	fl.BoolVar(&f.IncludeGone, "include-gone", false, "list the guests that disappeared from the platform too")
	return cmd
}

func (a *app) inventoryStorageCommand() *cobra.Command {
	var gone bool
	cmd := a.readCommand("storage", "List storage per node", exactArgs(),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
			list, _, err := c.InventoryStorage(ctx, gone, q)
			if err != nil {
				return err
			}
			return showList(a, list, func(w io.Writer) error {
				tw := newTable(w)
				row(tw, "NODE", "STORAGE", "TYPE", "STATUS", "SHARED", "USED", "CONTENT")
				for _, s := range list {
					row(tw, cell(s.Node), cell(s.Storage), cell(s.Type), invStatus(s.Status, s.Gone), yesNo(s.Shared),
						usedOf(s.Used, s.Total), orDash(cell(strings.Join(s.Content, ","))))
				}
				return tw.Flush()
			})
		})
	cmd.Flags().BoolVar(&gone, "include-gone", false, "list the storage that disappeared from the platform too")
	return cmd
}

// parseVMID reads a VMID argument.
func parseVMID(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, usagef("VMID must be a positive number, got %q", s)
	}
	return n, nil
}

func printInvState(w io.Writer, s *client.InvState) error {
	lastSync := formatTime(s.LastSync)
	if s.LastSync.IsZero() {
		lastSync = "never"
	}
	kv := []string{"Last sync", lastSync, "Stale", yesNo(s.Stale)}
	if s.Stale {
		kv = append(kv, "Stale since", formatTime(s.StaleSince), "Error", orDash(cell(s.Error)))
	}
	kv = append(kv, "Nodes", strconv.Itoa(s.Nodes), "Guests", strconv.Itoa(s.Guests), "Storage", strconv.Itoa(s.Storage))
	return keyValues(w, kv...)
}

func printInvNode(w io.Writer, n *client.InvNode) error {
	kv := []string{
		"Name", cell(n.Name),
		"Status", invStatus(n.Status, n.Gone),
		"CPUs", strconv.Itoa(n.MaxCPU),
		"CPU", cpuPercent(n.CPU),
		"Memory", usedOf(n.Mem, n.MaxMem),
		"Disk", usedOf(n.Disk, n.MaxDisk),
	}
	return keyValues(w, append(kv, invMeta(&n.InvMeta)...)...)
}

func printInvGuest(w io.Writer, g *client.InvGuest) error {
	kv := []string{
		"VMID", strconv.Itoa(g.VMID),
		"Name", orDash(cell(g.Name)),
		"Kind", cell(g.Kind),
		"Template", yesNo(g.Template),
		"Node", cell(g.Node),
		"Status", invStatus(g.Status, g.Gone),
		"Cores", strconv.Itoa(g.MaxCPU),
		"Memory", bytesIEC(g.MaxMem),
		"Disk", bytesIEC(g.MaxDisk),
		"Tenant", orDash(cell(g.Tenant)),
		"Pool", orDash(cell(g.Pool)),
		"Tags", orDash(cell(strings.Join(g.Tags, ","))),
		"Lock", orDash(cell(g.Lock)),
	}
	return keyValues(w, append(kv, invMeta(&g.InvMeta)...)...)
}

// invMeta returns the history rows of an inventory object.
func invMeta(m *client.InvMeta) []string {
	kv := []string{"First seen", formatTime(m.FirstSeen), "Last seen", formatTime(m.LastSeen)}
	if m.Gone {
		kv = append(kv, "Gone since", formatTime(m.GoneAt))
	}
	return append(kv, "Last changed", formatTime(m.LastChanged))
}

// invStatus is an inventory object's status, or "gone" when it
// disappeared from the platform.
func invStatus(status string, gone bool) string {
	if gone {
		return "gone"
	}
	return orDash(cell(status))
}

// guestStatus is a guest's status for tables: templates are marked as
// such, guests that disappeared as gone.
func guestStatus(g *client.InvGuest) string {
	if g.Template && !g.Gone {
		return "template"
	}
	return invStatus(g.Status, g.Gone)
}

// cpuPercent formats a CPU usage fraction as a percentage with at most
// one decimal.
func cpuPercent(f float64) string {
	return strings.TrimSuffix(strconv.FormatFloat(f*100, 'f', 1, 64), ".0") + "%"
}

// usedOf formats usage in bytes as "16 GiB / 64 GiB (25%)".
func usedOf(used, total uint64) string {
	if total == 0 {
		return bytesIEC(used) + " / -"
	}
	pct := float64(used) * 100 / float64(total)
	return fmt.Sprintf("%s / %s (%s%%)", bytesIEC(used), bytesIEC(total), strconv.FormatFloat(pct, 'f', 0, 64))
}

// bytesIEC formats a byte count with a binary unit and at most one
// decimal: "512 MiB", "1.5 GiB".
func bytesIEC(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " " + units[i]
}
