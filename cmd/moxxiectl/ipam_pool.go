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

// poolKind describes the commands of one kind of ID pool: VLAN groups and
// VLANs, or VNI pools and VNIs. The two differ only in names.
type poolKind struct {
	vni bool
	// poolCmd and idCmd are the command names, poolName and idName the
	// names in messages.
	poolCmd, idCmd   string
	poolName, idName string
	// numberFlag names the flag and column of the ID itself; poolFlag the
	// list filter by pool.
	numberFlag, poolFlag string
	// space describes the whole ID space, for help texts.
	space string
}

var (
	poolVLAN = &poolKind{poolCmd: "vlan-group", idCmd: "vlan", poolName: "VLAN group", idName: "VLAN",
		numberFlag: "vid", poolFlag: "group", space: "1-4094"}
	poolVNI = &poolKind{vni: true, poolCmd: "vni-pool", idCmd: "vni", poolName: "VNI pool", idName: "VNI",
		numberFlag: "vni", poolFlag: "pool", space: "1-16777215"}
)

// idAlloc is a VLAN or a VNI, for tables; raw is the client's object, for
// JSON.
type idAlloc struct {
	raw                                             any
	id, poolID, name, tenant, project, owner, descr string
	number                                          int
	created, updated                                client.Time
}

func vlanView(v *client.VLAN) idAlloc {
	return idAlloc{raw: v, id: v.ID, poolID: v.PoolID, name: v.Name, tenant: v.Tenant, project: v.Project, owner: v.Owner,
		descr: v.Description, number: v.VID, created: v.CreatedAt, updated: v.UpdatedAt}
}

func vniView(v *client.VNI) idAlloc {
	return idAlloc{raw: v, id: v.ID, poolID: v.PoolID, name: v.Name, tenant: v.Tenant, project: v.Project, owner: v.Owner,
		descr: v.Description, number: v.VNI, created: v.CreatedAt, updated: v.UpdatedAt}
}

func (k *poolKind) listPools(ctx context.Context, c *client.Client, q *client.QueryOptions) ([]client.Pool, error) {
	if k.vni {
		l, _, err := c.VNIPoolList(ctx, q)
		return l, err
	}
	l, _, err := c.VLANGroupList(ctx, q)
	return l, err
}

func (k *poolKind) createPool(ctx context.Context, c *client.Client, req client.PoolRequest) (*client.Pool, error) {
	if k.vni {
		p, _, err := c.VNIPoolCreate(ctx, req, nil)
		return p, err
	}
	p, _, err := c.VLANGroupCreate(ctx, req, nil)
	return p, err
}

func (k *poolKind) getPool(ctx context.Context, c *client.Client, id string, q *client.QueryOptions) (*client.Pool, error) {
	if k.vni {
		p, _, err := c.VNIPoolGet(ctx, id, q)
		return p, err
	}
	p, _, err := c.VLANGroupGet(ctx, id, q)
	return p, err
}

func (k *poolKind) updatePool(ctx context.Context, c *client.Client, id string, u client.PoolUpdate) (*client.Pool, error) {
	if k.vni {
		p, _, err := c.VNIPoolUpdate(ctx, id, u, nil)
		return p, err
	}
	p, _, err := c.VLANGroupUpdate(ctx, id, u, nil)
	return p, err
}

func (k *poolKind) deletePool(ctx context.Context, c *client.Client, id string) (*client.Pool, error) {
	if k.vni {
		p, _, err := c.VNIPoolDelete(ctx, id, nil)
		return p, err
	}
	p, _, err := c.VLANGroupDelete(ctx, id, nil)
	return p, err
}

func (k *poolKind) allocate(ctx context.Context, c *client.Client, pool string, req client.IDAllocateRequest, w *client.WriteOptions) (idAlloc, *client.Meta, error) {
	if k.vni {
		v, m, err := c.VNIAllocate(ctx, pool, req, w)
		if err != nil {
			return idAlloc{}, nil, err
		}
		return vniView(v), m, nil
	}
	v, m, err := c.VLANAllocate(ctx, pool, req, w)
	if err != nil {
		return idAlloc{}, nil, err
	}
	return vlanView(v), m, nil
}

// listIDs lists the VLANs or VNIs f selects, as the API gives them (for
// -o json) and as table rows, with the cursor of the next page when
// --limit cut the list short (listPaged).
func (k *poolKind) listIDs(ctx context.Context, c *client.Client, f client.IDFilter, q *client.QueryOptions) (any, []idAlloc, string, error) {
	var out []idAlloc
	if k.vni {
		l, next, err := listPaged(f, q, func(f client.IDFilter) ([]client.VNI, error) {
			l, _, err := c.VNIList(ctx, f, q)
			return l, err
		}, func(f client.IDFilter) ([]client.VNI, string, error) {
			p, _, err := c.VNIListPage(ctx, f, q)
			if err != nil {
				return nil, "", err
			}
			return p.VNIs, p.Next, nil
		})
		for i := range l {
			out = append(out, vniView(&l[i]))
		}
		return l, out, next, err
	}
	l, next, err := listPaged(f, q, func(f client.IDFilter) ([]client.VLAN, error) {
		l, _, err := c.VLANList(ctx, f, q)
		return l, err
	}, func(f client.IDFilter) ([]client.VLAN, string, error) {
		p, _, err := c.VLANListPage(ctx, f, q)
		if err != nil {
			return nil, "", err
		}
		return p.VLANs, p.Next, nil
	})
	for i := range l {
		out = append(out, vlanView(&l[i]))
	}
	return l, out, next, err
}

// listPaged lists what f selects as listAddresses lists addresses: with
// a limit one page (page) and the cursor of the next, without one all of
// them, read addressPageSize at a time, and a blocking query (--index) in
// one read (list). It never returns a nil list without an error.
func listPaged[T any](f client.IDFilter, q *client.QueryOptions, list func(client.IDFilter) ([]T, error), page func(client.IDFilter) ([]T, string, error)) ([]T, string, error) {
	if f.Limit == 0 && q != nil && q.Index != 0 {
		l, err := list(f)
		return nonNil(l), "", err
	}
	if f.Limit > 0 {
		l, next, err := page(f)
		return nonNil(l), next, err
	}
	out := []T{}
	f.Limit = addressPageSize
	for {
		l, next, err := page(f)
		if err != nil {
			return nil, "", err
		}
		out = append(out, l...)
		if next == "" {
			return out, "", nil
		}
		f.After = next
	}
}

// nonNil returns l, or an empty list for nil (-o json prints [], not null).
func nonNil[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}

func (k *poolKind) getID(ctx context.Context, c *client.Client, id string, q *client.QueryOptions) (idAlloc, error) {
	if k.vni {
		v, _, err := c.VNIGet(ctx, id, q)
		if err != nil {
			return idAlloc{}, err
		}
		return vniView(v), nil
	}
	v, _, err := c.VLANGet(ctx, id, q)
	if err != nil {
		return idAlloc{}, err
	}
	return vlanView(v), nil
}

func (k *poolKind) releaseID(ctx context.Context, c *client.Client, id string) (idAlloc, error) {
	if k.vni {
		v, _, err := c.VNIRelease(ctx, id, nil)
		if err != nil {
			return idAlloc{}, err
		}
		return vniView(v), nil
	}
	v, _, err := c.VLANRelease(ctx, id, nil)
	if err != nil {
		return idAlloc{}, err
	}
	return vlanView(v), nil
}

func (k *poolKind) updateID(ctx context.Context, c *client.Client, id string, u client.IDUpdate) (idAlloc, error) {
	if k.vni {
		v, _, err := c.VNIUpdate(ctx, id, u, nil)
		if err != nil {
			return idAlloc{}, err
		}
		return vniView(v), nil
	}
	v, _, err := c.VLANUpdate(ctx, id, u, nil)
	if err != nil {
		return idAlloc{}, err
	}
	return vlanView(v), nil
}

// parseRanges parses --range values: "100-199" or "100", each flag value
// possibly a comma-separated list (the flag splits on commas).
func parseRanges(values []string) ([]client.IDRange, error) {
	var out []client.IDRange
	for _, v := range values {
		first, last, isRange := strings.Cut(strings.TrimSpace(v), "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(first))
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(last))
		}
		if err1 != nil || err2 != nil || a < 0 {
			return nil, usagef("invalid --range %q: want FIRST-LAST, such as 100-199, or one number", v)
		}
		if b < a {
			return nil, usagef("invalid --range %q: it ends before it starts", v)
		}
		out = append(out, client.IDRange{First: a, Last: b})
	}
	return out, nil
}

func formatRanges(rs []client.IDRange) string {
	var parts []string
	for _, r := range rs {
		if r.First == r.Last {
			parts = append(parts, strconv.Itoa(r.First))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r.First, r.Last))
		}
	}
	return orDash(strings.Join(parts, ","))
}

// poolCommand returns the vlan-group or vni-pool command group.
func (a *app) poolCommand(k *poolKind) *cobra.Command {
	var req client.PoolRequest
	var ranges []string
	var create *cobra.Command
	create = &cobra.Command{
		Use:   "create NAME",
		Short: "Create a " + k.poolName,
		Args:  exactArgs("NAME"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			rs, err := parseRanges(ranges)
			if err != nil {
				return err
			}
			if len(rs) == 0 && create.Flags().Changed("range") {
				// --range "" would otherwise mean the whole space.
				return usagef("--range is empty: give FIRST-LAST, such as 100-199, or leave --range out for %s", k.space)
			}
			req.Name, req.Ranges = args[0], rs
			p, err := k.createPool(ctx, c, req)
			if err != nil {
				return err
			}
			return a.show(p, func(w io.Writer) error { return printPool(w, p) })
		}),
	}
	create.Flags().StringSliceVar(&ranges, "range", nil, "range of IDs to hand out, FIRST-LAST; repeatable (default "+k.space+")")
	create.Flags().StringVar(&req.Tenant, "tenant", "", "tenant owning the "+k.poolName)
	create.Flags().StringVar(&req.Description, "description", "", "what the "+k.poolName+" is for")
	refusesEmpty(create)

	return group(k.poolCmd, "Manage "+k.poolName+"s and allocate "+k.idName+"s from them",
		a.readCommand("list", "List "+k.poolName+"s", exactArgs(),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
				list, err := k.listPools(ctx, c, q)
				if err != nil {
					return err
				}
				return showList(a, list, func(w io.Writer) error {
					tw := newTable(w)
					row(tw, "NAME", "RANGES", "UTILIZATION", "TENANT", "ID")
					for _, p := range list {
						row(tw, cell(p.Name), formatRanges(p.Ranges), percent(p.Utilization), orDash(cell(p.Tenant)), cell(p.ID))
					}
					return tw.Flush()
				})
			}),
		create,
		a.readCommand("get ID-OR-NAME", "Show a "+k.poolName, exactArgs("ID-OR-NAME"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				p, err := k.getPool(ctx, c, args[0], q)
				if err != nil {
					return err
				}
				return a.show(p, func(w io.Writer) error { return printPool(w, p) })
			}),
		a.poolUpdateCommand(k),
		&cobra.Command{
			Use:   "delete ID-OR-NAME",
			Short: "Delete a " + k.poolName + " with no allocations",
			Args:  exactArgs("ID-OR-NAME"),
			RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
				p, err := k.deletePool(ctx, c, args[0])
				if err != nil {
					return err
				}
				return a.show(p, func(w io.Writer) error {
					return printf(w, "%s %s deleted (ID %s)\n", k.poolName, cell(p.Name), cell(p.ID))
				})
			}),
		},
		a.idAllocateCommand(k),
	)
}

// poolUpdateCommand returns the command that changes a pool's name,
// ranges or description.
func (a *app) poolUpdateCommand(k *poolKind) *cobra.Command {
	var name, description, tenant string
	var ranges []string
	cmd := &cobra.Command{
		Use:   "update ID-OR-NAME",
		Short: "Change the name, ranges, description or tenant of a " + k.poolName,
		Long: "Change the name, ranges, description or tenant of a " + k.poolName + ". --range replaces all the ranges;\n" +
			"the new ones must hold every " + k.idName + " handed out. The " + k.idName + "s handed out keep their tenants.",
		Args: exactArgs("ID-OR-NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := client.PoolUpdate{Name: changed(cmd, "name", name), Description: changed(cmd, "description", description), Tenant: changed(cmd, "tenant", tenant)}
			if cmd.Flags().Changed("range") {
				rs, err := parseRanges(ranges)
				if err != nil {
					return err
				}
				if len(rs) == 0 {
					return usagef("--range is empty: give the ranges the %s is to have, FIRST-LAST", k.poolName)
				}
				u.Ranges = &rs
			}
			if u == (client.PoolUpdate{}) {
				return usagef("nothing to update: give --name, --range, --description or --tenant")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			p, err := k.updatePool(cmd.Context(), c, args[0], u)
			if err != nil {
				return err
			}
			return a.show(p, func(w io.Writer) error { return printPool(w, p) })
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "new name")
	cmd.Flags().StringSliceVar(&ranges, "range", nil, "new range of IDs, FIRST-LAST; repeatable; replaces all the ranges")
	cmd.Flags().StringVar(&description, "description", "", "new description; empty clears it")
	cmd.Flags().StringVar(&tenant, "tenant", "", "new tenant, whose tokens may allocate from it; empty clears it")
	return cmd
}

func (a *app) idAllocateCommand(k *poolKind) *cobra.Command {
	var req client.IDAllocateRequest
	var idem idempotencyFlag
	cmd := &cobra.Command{
		Use:   "allocate ID-OR-NAME",
		Short: "Allocate a " + k.idName + ": the lowest free one, or the one given with --" + k.numberFlag,
		Args:  exactArgs("ID-OR-NAME"),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed(k.numberFlag) && req.Number < 1 {
				return usagef("--%s must be in %s, got %d; leave it out for the lowest free one", k.numberFlag, k.space, req.Number)
			}
			if req.Fallback && !cmd.Flags().Changed(k.numberFlag) {
				return usagef("--fallback takes effect only with --%s", k.numberFlag)
			}
			return nil
		},
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			v, m, err := k.allocate(ctx, c, args[0], req, idem.options())
			if err != nil {
				return err
			}
			a.noteReplayed(m)
			return a.show(v.raw, func(w io.Writer) error { return k.printID(w, v) })
		}),
	}
	fl := cmd.Flags()
	fl.IntVar(&req.Number, k.numberFlag, 0, "allocate this "+k.idName)
	fl.BoolVar(&req.Fallback, "fallback", false, "with --"+k.numberFlag+", take the lowest free one when it is taken")
	fl.StringVar(&req.Name, "name", "", "name of the "+k.idName)
	fl.StringVar(&req.Tenant, "tenant", "", "tenant owning the "+k.idName)
	fl.StringVar(&req.Project, "project", "", "project of the tenant the "+k.idName+" counts against")
	fl.StringVar(&req.Owner, "owner", "", "what uses the "+k.idName)
	fl.StringVar(&req.Description, "description", "", "what the "+k.idName+" is for")
	idem.register(cmd)
	return refusesEmpty(cmd)
}

// idCommand returns the vlan or vni command group.
func (a *app) idCommand(k *poolKind) *cobra.Command {
	var f client.IDFilter
	var listCmd *cobra.Command
	list := a.readCommand("list", "List allocated "+k.idName+"s", exactArgs(),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
			if f.Limit < 0 || f.Limit == 0 && listCmd.Flags().Changed("limit") {
				return usagef("--limit must be at least 1, got %d", f.Limit)
			}
			raw, list, next, err := k.listIDs(ctx, c, f, q)
			if err != nil {
				return err
			}
			if err := a.show(raw, func(w io.Writer) error {
				tw := newTable(w)
				row(tw, strings.ToUpper(k.numberFlag), "NAME", "OWNER", "TENANT", strings.ToUpper(k.poolFlag)+" ID", "ID")
				for _, v := range list {
					row(tw, strconv.Itoa(v.number), orDash(cell(v.name)), orDash(cell(v.owner)), orDash(cell(v.tenant)), cell(v.poolID), cell(v.id))
				}
				return tw.Flush()
			}); err != nil {
				return err
			}
			if next != "" {
				return printf(a.stderr, "More %ss follow: --after %s\n", k.idName, next)
			}
			return nil
		})
	listCmd = list
	list.Flags().StringVar(&f.PoolID, k.poolFlag, "", "only "+k.idName+"s of this "+k.poolName+" (ID or name)")
	list.Flags().StringVar(&f.Tenant, "tenant", "", "only "+k.idName+"s of this tenant")
	list.Flags().IntVar(&f.Limit, "limit", 0, "list at most this many; when more follow, a line on stderr gives the --after of the next page")
	list.Flags().StringVar(&f.After, "after", "", "list the "+k.idName+"s after the page that gave this cursor")
	return group(k.idCmd, "Manage allocated "+k.idName+"s",
		list,
		a.readCommand("get ID", "Show an allocated "+k.idName, exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				v, err := k.getID(ctx, c, args[0], q)
				if err != nil {
					return err
				}
				return a.show(v.raw, func(w io.Writer) error { return k.printID(w, v) })
			}),
		a.idUpdateCommand(k),
		&cobra.Command{
			Use:   "release ID",
			Short: "Return a " + k.idName + " to its " + k.poolName,
			Args:  exactArgs("ID"),
			RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
				v, err := k.releaseID(ctx, c, args[0])
				if err != nil {
					return err
				}
				return a.show(v.raw, func(w io.Writer) error {
					return printf(w, "%s %d released to %s %s (ID %s)\n", k.idName, v.number, k.poolName, cell(v.poolID), cell(args[0]))
				})
			}),
		},
	)
}

func (a *app) idUpdateCommand(k *poolKind) *cobra.Command {
	var name, tenant, project, owner, description string
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change the name, tenant, project, owner or description of a " + k.idName,
		Long: "Change fields of an allocated " + k.idName + ": only the flags given are sent, and an empty value clears a field.\n" +
			"A name stays unique within the " + k.poolName + "; the tag of an SDN vnet keeps its owner and tenant.",
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := client.IDUpdate{
				Name:        changed(cmd, "name", name),
				Tenant:      changed(cmd, "tenant", tenant),
				Project:     changed(cmd, "project", project),
				Owner:       changed(cmd, "owner", owner),
				Description: changed(cmd, "description", description),
			}
			if u == (client.IDUpdate{}) {
				return usagef("nothing to update: give --name, --tenant, --project, --owner or --description")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			v, err := k.updateID(cmd.Context(), c, args[0], u)
			if err != nil {
				return err
			}
			return a.show(v.raw, func(w io.Writer) error { return k.printID(w, v) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "new name, unique within the "+k.poolName+"; empty clears it")
	fl.StringVar(&tenant, "tenant", "", "new tenant; empty clears it")
	fl.StringVar(&project, "project", "", "new project of the tenant; empty clears it (clearing the tenant clears it too)")
	fl.StringVar(&owner, "owner", "", "new owner, e.g. vm:101/net0; empty clears it")
	fl.StringVar(&description, "description", "", "new description; empty clears it")
	return cmd
}

func printPool(w io.Writer, p *client.Pool) error {
	return keyValues(w,
		"ID", cell(p.ID),
		"Name", cell(p.Name),
		"Kind", cell(p.Kind),
		"Ranges", formatRanges(p.Ranges),
		"Tenant", orDash(cell(p.Tenant)),
		"Description", orDash(cell(p.Description)),
		"Utilization", usage(p.Utilization),
		"Created", formatTime(p.CreatedAt),
	)
}

func (k *poolKind) printID(w io.Writer, v idAlloc) error {
	return keyValues(w,
		"ID", cell(v.id),
		k.idName, strconv.Itoa(v.number),
		k.poolName+" ID", cell(v.poolID),
		"Name", orDash(cell(v.name)),
		"Tenant", orDash(cell(v.tenant)),
		"Project", orDash(cell(v.project)),
		"Owner", orDash(cell(v.owner)),
		"Description", orDash(cell(v.descr)),
		"Created", formatTime(v.created),
		"Updated", formatTime(v.updated),
	)
}
