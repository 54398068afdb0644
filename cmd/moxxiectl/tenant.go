package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
)

// quotaHelp describes the --quota flag.
const quotaHelp = `comma-separated resource=number limits, e.g. vcpus=16,memory=64GiB,guests=10
(resources: vcpus, memory_mib, disk_gib, guests, snapshots, ipv4_addresses,
prefixes, vlans, vnis; memory=SIZE and disk=SIZE take MiB, GiB or TiB)`

func (a *app) tenantCommand() *cobra.Command {
	var create client.TenantCreate
	var createQuota string
	createCmd := &cobra.Command{
		Use:   "create ID",
		Short: "Create a tenant, with a quota if --quota is given",
		Example: `  moxxiectl tenant create acme --description "ACME Corp" \
    --quota vcpus=16,memory=64GiB,disk=500GiB,guests=10,ipv4_addresses=32`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			create.ID = args[0]
			if cmd.Flags().Changed("quota") {
				q, err := parseQuota(createQuota)
				if err != nil {
					return err
				}
				create.Quota = q
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			t, _, err := c.TenantCreate(cmd.Context(), create, nil)
			if err != nil {
				return err
			}
			return a.show(t, func(w io.Writer) error { return printTenant(w, t) })
		},
	}
	createCmd.Flags().StringVar(&create.Description, "description", "", "what the tenant is")
	createCmd.Flags().StringVar(&createQuota, "quota", "", quotaHelp)

	var u tenancyUpdateFlags
	updateCmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change a tenant's description or replace its quota",
		Long: `Change a tenant's description or replace its quota. --quota replaces the
whole quota: resources it does not name become unlimited. --clear-quota
removes every limit. A limit may be set below what the tenant already holds:
new requests are then refused until usage falls below it.`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			upd, err := u.update(cmd)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			t, _, err := c.TenantUpdate(cmd.Context(), args[0], upd, nil)
			if err != nil {
				return err
			}
			return a.show(t, func(w io.Writer) error { return printTenant(w, t) })
		},
	}
	u.register(updateCmd)

	return group("tenant", "Manage tenants and their quotas",
		a.readCommand("list", "List tenants with their usage", exactArgs(),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
				list, _, err := c.TenantList(ctx, q)
				if err != nil {
					return err
				}
				return showList(a, list, func(w io.Writer) error {
					tw := newTable(w)
					row(tw, append([]string{"ID"}, usageColumns...)...)
					for _, t := range list {
						row(tw, append([]string{cell(t.ID)}, usageCells(t.Usage, t.Description)...)...)
					}
					return tw.Flush()
				})
			}),
		a.readCommand("get ID", "Show a tenant's quota and usage", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				t, _, err := c.TenantGet(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(t, func(w io.Writer) error { return printTenant(w, t) })
			}),
		createCmd,
		updateCmd,
		&cobra.Command{
			Use:   "delete ID",
			Short: "Delete a tenant that has no projects and holds nothing",
			Args:  exactArgs("ID"),
			RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
				t, _, err := c.TenantDelete(ctx, args[0], nil)
				if err != nil {
					return err
				}
				return a.show(t, func(w io.Writer) error { return printf(w, "Tenant %s deleted\n", cell(args[0])) })
			}),
		},
	)
}

func (a *app) projectCommand() *cobra.Command {
	var create client.ProjectCreate
	var createQuota string
	createCmd := &cobra.Command{
		Use:   "create TENANT NAME",
		Short: "Create a project of a tenant, with a quota if --quota is given",
		Long: `Create a project of an existing tenant. What the project holds counts against
its own quota and its tenant's.`,
		Example: `  moxxiectl project create acme web --quota guests=4,vcpus=8`,
		Args:    exactArgs("TENANT", "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			create.Name = args[1]
			if cmd.Flags().Changed("quota") {
				q, err := parseQuota(createQuota)
				if err != nil {
					return err
				}
				create.Quota = q
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			p, _, err := c.ProjectCreate(cmd.Context(), args[0], create, nil)
			if err != nil {
				return err
			}
			return a.show(p, func(w io.Writer) error { return printProject(w, p) })
		},
	}
	createCmd.Flags().StringVar(&create.Description, "description", "", "what the project is")
	createCmd.Flags().StringVar(&createQuota, "quota", "", quotaHelp)

	var u tenancyUpdateFlags
	updateCmd := &cobra.Command{
		Use:   "update TENANT NAME",
		Short: "Change a project's description or replace its quota",
		Long: `Change a project's description or replace its quota. --quota replaces the
whole quota: resources it does not name become unlimited (within the
tenant's quota). --clear-quota removes every limit.`,
		Args: exactArgs("TENANT", "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			upd, err := u.update(cmd)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			p, _, err := c.ProjectUpdate(cmd.Context(), args[0], args[1], upd, nil)
			if err != nil {
				return err
			}
			return a.show(p, func(w io.Writer) error { return printProject(w, p) })
		},
	}
	u.register(updateCmd)

	return group("project", "Manage the projects of a tenant and their quotas",
		a.readCommand("list TENANT", "List a tenant's projects with their usage", exactArgs("TENANT"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				list, _, err := c.ProjectList(ctx, args[0], q)
				if err != nil {
					return err
				}
				return showList(a, list, func(w io.Writer) error {
					tw := newTable(w)
					row(tw, append([]string{"NAME"}, usageColumns...)...)
					for _, p := range list {
						row(tw, append([]string{cell(p.Name)}, usageCells(p.Usage, p.Description)...)...)
					}
					return tw.Flush()
				})
			}),
		a.readCommand("get TENANT NAME", "Show a project's quota and usage", exactArgs("TENANT", "NAME"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				p, _, err := c.ProjectGet(ctx, args[0], args[1], q)
				if err != nil {
					return err
				}
				return a.show(p, func(w io.Writer) error { return printProject(w, p) })
			}),
		createCmd,
		updateCmd,
		&cobra.Command{
			Use:   "delete TENANT NAME",
			Short: "Delete a project that holds nothing",
			Args:  exactArgs("TENANT", "NAME"),
			RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
				p, _, err := c.ProjectDelete(ctx, args[0], args[1], nil)
				if err != nil {
					return err
				}
				return a.show(p, func(w io.Writer) error {
					return printf(w, "Project %s/%s deleted\n", cell(args[0]), cell(args[1]))
				})
			}),
		},
	)
}

// tenancyUpdateFlags are the flags of tenant and project update.
type tenancyUpdateFlags struct {
	description, quota string
	clearQuota         bool
}

func (u *tenancyUpdateFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&u.description, "description", "", "new description; empty clears it")
	fl.StringVar(&u.quota, "quota", "", "new quota, replacing the old one: "+quotaHelp)
	fl.BoolVar(&u.clearQuota, "clear-quota", false, "remove every limit")
}

// update returns the change the flags given to cmd ask for.
func (u *tenancyUpdateFlags) update(cmd *cobra.Command) (client.TenancyUpdate, error) {
	upd := client.TenancyUpdate{Description: changed(cmd, "description", u.description)}
	setQuota := cmd.Flags().Changed("quota")
	switch {
	case setQuota && u.clearQuota:
		return upd, usagef("give --quota or --clear-quota, not both")
	case setQuota:
		q, err := parseQuota(u.quota)
		if err != nil {
			return upd, err
		}
		upd.Quota = &q
	case u.clearQuota:
		upd.Quota = &map[string]int64{}
	}
	if upd.Description == nil && upd.Quota == nil {
		return upd, usagef("nothing to update: give --description, --quota or --clear-quota")
	}
	return upd, nil
}

// Sizes in MiB of the units --quota takes for memory and disk.
const (
	mib = 1
	gib = 1 << 10
	tib = 1 << 20
)

// parseQuota parses a --quota value: comma-separated resource=number
// pairs, with memory=SIZE and disk=SIZE standing for memory_mib and
// disk_gib. A bad pair is a usage error naming it.
func parseQuota(s string) (map[string]int64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, usagef("--quota is empty: give resource=number pairs such as vcpus=16,guests=10 (or --clear-quota to remove every limit)")
	}
	out := map[string]int64{}
	for _, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, usagef("--quota %q: %q is not resource=number", s, pair)
		}
		var res string
		var n int64
		var err error
		switch {
		case k == "memory":
			res = client.ResourceMemoryMiB
			n, err = parseSize(v, mib)
		case k == "disk":
			res = client.ResourceDiskGiB
			n, err = parseSize(v, gib)
		case slices.Contains(client.Resources, k):
			res = k
			if n, err = strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
				err = fmt.Errorf("%s must be a whole number of at least 0, got %q", k, v)
			}
		default:
			err = fmt.Errorf("unknown resource %q: want one of %s, or memory=SIZE or disk=SIZE", k, strings.Join(client.Resources, ", "))
		}
		if err != nil {
			return nil, usagef("--quota %q: %v", pair, err)
		}
		if _, dup := out[res]; dup {
			return nil, usagef("--quota %q: %s is limited twice", pair, res)
		}
		out[res] = n
	}
	return out, nil
}

// parseSize parses a size such as 64GiB (MiB, GiB or TiB, in any case)
// into a number of units of unit MiB, which it must be a whole number of.
func parseSize(s string, unit int64) (int64, error) {
	want := map[int64]string{mib: "MiB", gib: "GiB"}[unit]
	num, mult := s, int64(0)
	for _, u := range []struct {
		suffix string
		mib    int64
	}{{"MiB", mib}, {"GiB", gib}, {"TiB", tib}} {
		if len(s) > 3 && strings.EqualFold(s[len(s)-3:], u.suffix) {
			num, mult = strings.TrimSpace(s[:len(s)-3]), u.mib
		}
	}
	if mult == 0 {
		return 0, fmt.Errorf("%q needs a unit: MiB, GiB or TiB, such as 64GiB", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a whole number of MiB, GiB or TiB", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	if n*mult%unit != 0 {
		return 0, fmt.Errorf("%q is not a whole number of %s", s, want)
	}
	return n * mult / unit, nil
}

// usageColumns head the usage columns of tenant and project lists.
var usageColumns = []string{"GUESTS", "VCPUS", "MEMORY", "IPV4", "DESCRIPTION"}

// usageCells returns the usage columns of a list row: used/limit of the
// main resources ("-" as the limit when unlimited), then the description.
func usageCells(lines []client.QuotaLine, description string) []string {
	line := func(r string) client.QuotaLine {
		if i := slices.IndexFunc(lines, func(l client.QuotaLine) bool { return l.Resource == r }); i >= 0 {
			return lines[i]
		}
		return client.QuotaLine{Resource: r}
	}
	usedOf := func(r string, format func(int64) string) string {
		l := line(r)
		limit := "-"
		if l.Limit != nil {
			limit = format(*l.Limit)
		}
		return format(l.Used) + "/" + limit
	}
	count := func(n int64) string { return strconv.FormatInt(n, 10) }
	return []string{
		usedOf(client.ResourceGuests, count),
		usedOf(client.ResourceVCPUs, count),
		usedOf(client.ResourceMemoryMiB, formatMiB),
		usedOf(client.ResourceIPv4, count),
		orDash(cell(description)),
	}
}

// formatMiB formats an amount of MiB in the largest unit it is a whole
// number of.
func formatMiB(n int64) string {
	switch {
	case n != 0 && n%tib == 0:
		return strconv.FormatInt(n/tib, 10) + " TiB"
	case n != 0 && n%gib == 0:
		return strconv.FormatInt(n/gib, 10) + " GiB"
	}
	return strconv.FormatInt(n, 10) + " MiB"
}

func printTenant(w io.Writer, t *client.Tenant) error {
	if err := keyValues(w,
		"ID", cell(t.ID),
		"Description", orDash(cell(t.Description)),
		"Addresses", strconv.FormatInt(t.Addresses, 10)+" (IPv4 and IPv6)",
		"Created", formatTime(t.CreatedAt),
		"Updated", formatTime(t.UpdatedAt),
	); err != nil {
		return err
	}
	return quotaTable(w, t.Usage)
}

func printProject(w io.Writer, p *client.Project) error {
	if err := keyValues(w,
		"ID", cell(p.ID),
		"Tenant", cell(p.Tenant),
		"Name", cell(p.Name),
		"Description", orDash(cell(p.Description)),
		"Addresses", strconv.FormatInt(p.Addresses, 10)+" (IPv4 and IPv6)",
		"Created", formatTime(p.CreatedAt),
		"Updated", formatTime(p.UpdatedAt),
	); err != nil {
		return err
	}
	return quotaTable(w, p.Usage)
}

// quotaTable prints one line per resource: its limit ("-" when
// unlimited), what is used and what is free.
func quotaTable(w io.Writer, lines []client.QuotaLine) error {
	if len(lines) == 0 {
		return nil
	}
	if err := printf(w, "\n"); err != nil {
		return err
	}
	tw := newTable(w)
	row(tw, "RESOURCE", "LIMIT", "USED", "FREE")
	for _, l := range lines {
		limit, free := "-", "-"
		if l.Limit != nil {
			limit = strconv.FormatInt(*l.Limit, 10)
		}
		if l.Free != nil {
			free = strconv.FormatInt(*l.Free, 10)
		}
		row(tw, cell(l.Resource), limit, strconv.FormatInt(l.Used, 10), free)
	}
	return tw.Flush()
}
