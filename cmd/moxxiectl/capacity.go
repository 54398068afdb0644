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

func (a *app) capacityCommand() *cobra.Command {
	var window string
	cmd := &cobra.Command{
		Use:   "capacity",
		Short: "Show allocated and allocatable capacity per node, with forecasts",
		Long: `Show each node's vCPUs, memory and local disk as allocated/allocatable, and
the cluster's sums. Allocated is what the guests in the inventory on the node
were given (not templates), plus VM creates in flight; allocatable is
floor(physical x ratio) - reserve under the node's capacity policy (see
'moxxiectl capacity policy'), and nothing on an offline node. Disk counts
only on nodes with local storage for VM images: elsewhere its allocatable is
"-" and FULL IN leaves it out.

FULL IN is the soonest any resource of the node is fully allocated at the
trend of the hourly allocation samples of the last --window, fitted by least
squares: "-" when none is filling up, "now" when one is full already.`,
		Example: `  moxxiectl capacity
  moxxiectl capacity --window 7d -o json`,
		Args: exactArgs(),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			r, _, err := c.Capacity(ctx, window)
			if err != nil {
				return err
			}
			if r.Nodes == nil {
				r.Nodes = []client.NodeCapacity{}
			}
			return a.show(r, func(w io.Writer) error { return printCapacity(w, r) })
		}),
	}
	cmd.Flags().StringVar(&window, "window", "", "allocation history the forecasts fit, 1d to 90d (default 30d)")
	cmd.AddCommand(a.capacityPolicyCommand())
	return cmd
}

func printCapacity(w io.Writer, r *client.CapacityReport) error {
	tw := newTable(w)
	row(tw, "NODE", "GROUP", "ONLINE", "VCPUS", "MEMORY (GiB)", "DISK (GiB)", "FULL IN")
	online := 0
	for _, n := range r.Nodes {
		if n.Online {
			online++
		}
		row(tw, append([]string{cell(n.Name), orDash(cell(n.Group)), yesNo(n.Online)}, capacityCells(n.Physical, n.Headroom, n.Forecast)...)...)
	}
	cl := r.Cluster
	row(tw, append([]string{"CLUSTER", "", fmt.Sprintf("%d of %d", online, len(r.Nodes))}, capacityCells(cl.Physical, cl.Headroom, cl.Forecast)...)...)
	if err := tw.Flush(); err != nil {
		return err
	}
	return printf(w, "\nForecasts fit the hourly allocation samples of the last %s.\n", plural(r.WindowDays, "day"))
}

// capacityCells returns the allocated/allocatable cells of vCPUs, memory
// and disk, and the soonest forecast. Disk on a node without local image
// storage counts on no node: it has no allocatable and no forecast.
func capacityCells(physical client.Capacity, h client.Headroom, f client.CapacityForecast) []string {
	count := func(n int64) string { return strconv.FormatInt(n, 10) }
	disk := count(h.Allocated.DiskGiB) + "/-"
	if physical.DiskGiB > 0 {
		disk = count(h.Allocated.DiskGiB) + "/" + count(h.Allocatable.DiskGiB)
	} else {
		f.DiskGiB = nil
	}
	return []string{
		count(h.Allocated.VCPUs) + "/" + count(h.Allocatable.VCPUs),
		gibOf(h.Allocated.MemoryMiB) + "/" + gibOf(h.Allocatable.MemoryMiB),
		disk,
		fullIn(f),
	}
}

// gibOf formats MiB as GiB, with one decimal unless whole.
func gibOf(mib int64) string {
	if mib%1024 == 0 {
		return strconv.FormatInt(mib/1024, 10)
	}
	return strconv.FormatFloat(float64(mib)/1024, 'f', 1, 64)
}

// fullIn names the soonest forecast and its resource, or "-".
func fullIn(f client.CapacityForecast) string {
	var days *float64
	what := ""
	for _, r := range []struct {
		name string
		d    *float64
	}{{"vcpus", f.VCPUs}, {"memory", f.MemoryMiB}, {"disk", f.DiskGiB}} {
		if r.d != nil && (days == nil || *r.d < *days) {
			days, what = r.d, r.name
		}
	}
	switch {
	case days == nil:
		return "-"
	case *days <= 0:
		return "now (" + what + ")"
	case *days == 1:
		return "1 day (" + what + ")"
	}
	return strconv.FormatFloat(*days, 'f', -1, 64) + " days (" + what + ")"
}

// policyFlags are the flags of capacity policy set.
type policyFlags struct {
	req                        client.CapacityPolicyRequest
	reserveMemory, reserveDisk string
}

func (a *app) capacityPolicyCommand() *cobra.Command {
	var pf policyFlags
	set := &cobra.Command{
		Use:   "set ID",
		Short: "Create or replace a capacity policy",
		Long: `Create or replace the overcommit policy of a group of nodes (--nodes), or
with ID default and no --nodes that of every node in no group. A node may be
allocated floor(physical x ratio) - reserve of each resource; VM placement
honours it from then on. A node is in at most one group.

set replaces the whole policy: a ratio not given is 1 (no overcommit) and a
reserve not given is none. While no default policy is stored, nodes in no
group have the built-in one: CPU ratio 4, memory and disk 1.`,
		Example: `  moxxiectl capacity policy set dense --nodes pve1,pve2 --cpu-ratio 8 --memory-ratio 1.2 \
    --reserve-vcpus 2 --reserve-memory 8GiB --reserve-disk 100GiB
  moxxiectl capacity policy set default --cpu-ratio 4`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := pf.request(cmd)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			p, _, err := c.CapacityPolicyPut(cmd.Context(), args[0], req, nil)
			if err != nil {
				return err
			}
			return a.show(p, func(w io.Writer) error { return policyTable(w, []client.CapacityPolicy{*p}, nil) })
		},
	}
	fl := set.Flags()
	fl.StringSliceVar(&pf.req.Nodes, "nodes", nil, "the group's nodes, comma-separated; none for the default policy")
	fl.Float64Var(&pf.req.CPURatio, "cpu-ratio", 0, "vCPUs per physical CPU, 0.1 to 100 (default 1)")
	fl.Float64Var(&pf.req.MemoryRatio, "memory-ratio", 0, "memory allocatable per physical memory, 0.1 to 100 (default 1)")
	fl.Float64Var(&pf.req.DiskRatio, "disk-ratio", 0, "disk allocatable per local image storage, 0.1 to 100 (default 1)")
	fl.Int64Var(&pf.req.ReserveVCPUs, "reserve-vcpus", 0, "vCPUs held back for the host")
	fl.StringVar(&pf.reserveMemory, "reserve-memory", "", "memory held back for the host, such as 8GiB (MiB, GiB or TiB)")
	fl.StringVar(&pf.reserveDisk, "reserve-disk", "", "local disk held back for the host, such as 100GiB (GiB or TiB)")

	return group("policy", "Manage the overcommit policies VM placement honours",
		a.readCommand("list", "List capacity policies, and the built-in default while none is stored", exactArgs(),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
				l, _, err := c.CapacityPolicyList(ctx, q)
				if err != nil {
					return err
				}
				if l.Policies == nil {
					l.Policies = []client.CapacityPolicy{}
				}
				return a.show(l, func(w io.Writer) error {
					var builtin *client.CapacityPolicy
					if !hasDefaultPolicy(l.Policies) {
						builtin = &l.Builtin
					}
					return policyTable(w, l.Policies, builtin)
				})
			}),
		set,
		&cobra.Command{
			Use:   "delete ID",
			Short: "Delete a capacity policy; its nodes fall back to the default one",
			Args:  exactArgs("ID"),
			RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
				p, _, err := c.CapacityPolicyDelete(ctx, args[0], nil)
				if err != nil {
					return err
				}
				return a.show(p, func(w io.Writer) error { return printf(w, "Capacity policy %s deleted\n", cell(args[0])) })
			}),
		},
	)
}

// request returns the policy the flags given to cmd describe.
func (pf *policyFlags) request(cmd *cobra.Command) (client.CapacityPolicyRequest, error) {
	req := pf.req
	for _, f := range []struct {
		name  string
		ratio float64
	}{{"cpu-ratio", req.CPURatio}, {"memory-ratio", req.MemoryRatio}, {"disk-ratio", req.DiskRatio}} {
		if cmd.Flags().Changed(f.name) && !(f.ratio > 0) {
			return req, usagef("--%s must be positive, got %v", f.name, f.ratio)
		}
	}
	if req.ReserveVCPUs < 0 {
		return req, usagef("--reserve-vcpus must not be negative, got %d", req.ReserveVCPUs)
	}
	var err error
	if pf.reserveMemory != "" {
		if req.ReserveMemoryMiB, err = parseSize(pf.reserveMemory, mib); err != nil {
			return req, usagef("--reserve-memory: %v", err)
		}
	}
	if pf.reserveDisk != "" {
		if req.ReserveDiskGiB, err = parseSize(pf.reserveDisk, gib); err != nil {
			return req, usagef("--reserve-disk: %v", err)
		}
	}
	return req, nil
}

func hasDefaultPolicy(l []client.CapacityPolicy) bool {
	for _, p := range l {
		if p.ID == client.DefaultPolicyID {
			return true
		}
	}
	return false
}

// policyTable prints policies one a line, and builtin, if set, as the
// default.
func policyTable(w io.Writer, l []client.CapacityPolicy, builtin *client.CapacityPolicy) error {
	tw := newTable(w)
	row(tw, "ID", "NODES", "CPU RATIO", "MEMORY RATIO", "DISK RATIO", "RESERVE VCPUS", "RESERVE MEMORY", "RESERVE DISK")
	line := func(id string, p client.CapacityPolicy) {
		nodes := cell(strings.Join(p.Nodes, ","))
		if p.ID == client.DefaultPolicyID {
			nodes = "(nodes in no group)"
		}
		row(tw, id, nodes, ratio(p.CPURatio), ratio(p.MemoryRatio), ratio(p.DiskRatio),
			reserve(p.ReserveVCPUs, func(n int64) string { return strconv.FormatInt(n, 10) }),
			reserve(p.ReserveMemoryMiB, formatMiB), reserve(p.ReserveDiskGiB*gib, formatMiB))
	}
	for _, p := range l {
		line(cell(p.ID), p)
	}
	if builtin != nil {
		line(client.DefaultPolicyID+" (built-in)", *builtin)
	}
	return tw.Flush()
}

// reserve formats a reserve with format, or "-" for none.
func reserve(n int64, format func(int64) string) string {
	if n == 0 {
		return "-"
	}
	return format(n)
}

// ratio formats an overcommit ratio, 0 being 1.
func ratio(r float64) string {
	if r == 0 {
		r = 1
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}
