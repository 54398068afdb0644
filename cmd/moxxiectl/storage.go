package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/moxxie/moxxie/client"
	"github.com/moxxie/moxxie/storage"
	"github.com/spf13/cobra"
)

func (a *app) storageCommand() *cobra.Command {
	root := group("storage", "Manage storage pools and guest disks",
		a.storagePoolCommand(),
		a.storageVolumeCommand(),
	)
	root.Long = `Manage storage pools and guest disks.

Pools are the platform's storages: a shared storage once, a local one once per
node (node/storage). Each has warning and critical thresholds and a forecast of
when it fills up. Volumes are guest disks; creating, resizing, attaching,
detaching, moving and deleting one is an operation the leader runs, checked
against the guest's tenant and project quotas. Snapshot and backup policies are
under "moxxiectl snapshot policy" and "moxxiectl backup policy".`
	return root
}

func (a *app) storagePoolCommand() *cobra.Command {
	var warn, critical float64
	thresholds := &cobra.Command{
		Use:     "thresholds STORAGE",
		Short:   "Set the warning and critical thresholds of a storage, as fractions of its capacity",
		Example: `  moxxiectl storage pool thresholds local-lvm --warn 0.8 --critical 0.9`,
		Args:    exactArgs("STORAGE"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			t, _, err := c.SetStorageThresholds(ctx, args[0], warn, critical, nil)
			if err != nil {
				return err
			}
			return a.show(t, func(w io.Writer) error {
				return printf(w, "Storage %s: warning at %s, critical at %s\n", cell(t.Storage), fraction(t.Warn), fraction(t.Critical))
			})
		}),
	}
	thresholds.Flags().Float64Var(&warn, "warn", 0.8, "warning threshold, a fraction of capacity in (0, 1]")
	thresholds.Flags().Float64Var(&critical, "critical", 0.9, "critical threshold, at least --warn")

	return group("pool", "List storage pools, their fill forecast and thresholds",
		a.readCommand("list", "List storage pools", exactArgs(),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
				l, _, err := c.StoragePools(ctx, q)
				if err != nil {
					return err
				}
				return showList(a, l, func(w io.Writer) error {
					tw := newTable(w)
					row(tw, "ID", "TYPE", "NODES", "USED", "STATE", "FULL IN")
					for _, p := range l {
						row(tw, cell(p.ID), cell(p.Type), cell(strings.Join(p.Nodes, ",")), usedOf(p.Used, p.Total), cell(p.State), daysOrDash(p.DaysUntilFull))
					}
					return tw.Flush()
				})
			}),
		a.readCommand("get ID", "Show a storage pool (a local one as node/storage)", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				p, _, err := c.StoragePool(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(p, func(w io.Writer) error {
					return keyValues(w,
						"ID", cell(p.ID),
						"Storage", cell(p.Storage),
						"Type", cell(p.Type),
						"Shared", yesNo(p.Shared),
						"Nodes", cell(strings.Join(p.Nodes, ", ")),
						"Content", orDash(cell(strings.Join(p.Content, ", "))),
						"Status", cell(p.Status),
						"Used", usedOf(p.Used, p.Total),
						"State", cell(p.State),
						"Thresholds", "warning at "+fraction(p.Warn)+", critical at "+fraction(p.Critical),
						"Full in", daysOrDash(p.DaysUntilFull),
					)
				})
			}),
		thresholds,
	)
}

// fraction formats a fraction as a percentage: 0.85 is "85%".
func fraction(f float64) string {
	return strconv.FormatFloat(f*100, 'f', -1, 64) + "%"
}

// daysOrDash formats a fill forecast in days, or a dash when there is
// none.
func daysOrDash(d *float64) string {
	if d == nil {
		return "-"
	}
	return strconv.FormatFloat(*d, 'f', 1, 64) + " days"
}

func (a *app) storageVolumeCommand() *cobra.Command {
	var f client.VolumeFilter
	list := a.readCommand("list", "List guest disks", exactArgs(),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
			l, _, err := c.Volumes(ctx, f, q)
			if err != nil {
				return err
			}
			return showList(a, l, func(w io.Writer) error {
				tw := newTable(w)
				row(tw, "VOLID", "VMID", "NODE", "STORAGE", "SIZE", "FORMAT")
				for _, v := range l {
					row(tw, cell(v.VolID), vmidOrDash(v.VMID), cell(v.Node), cell(v.Storage), bytesIEC(v.Size), orDash(cell(v.Format)))
				}
				return tw.Flush()
			})
		})
	fl := list.Flags()
	fl.IntVar(&f.VMID, "vmid", 0, "only the disks of this guest")
	fl.StringVar(&f.Node, "node", "", "only disks on this node")
	fl.StringVar(&f.Storage, "storage", "", "only disks on this storage")

	var create client.VolumeCreateRequest
	createCmd := a.storageOpCommand("create", "Add a new disk to a guest", exactArgs(),
		func(ctx context.Context, c *client.Client, _ []string, w *client.WriteOptions) (*client.Operation, *client.Meta, error) {
			return c.CreateVolume(ctx, create, w)
		})
	fl = createCmd.Flags()
	fl.IntVar(&create.VMID, "vmid", 0, "the guest (required)")
	fl.StringVar(&create.Storage, "storage", "", "the storage to allocate the disk on (required)")
	fl.IntVar(&create.SizeGiB, "size-gib", 0, "the disk's size in GiB (required)")
	fl.StringVar(&create.Slot, "slot", "", "the disk slot, such as scsi1 or virtio2 (default: the next free scsi slot)")
	requireFlags(createCmd, "vmid", "storage", "size-gib")

	var size int
	resize := a.storageOpCommand("resize VOLID", "Grow a disk", exactArgs("VOLID"),
		func(ctx context.Context, c *client.Client, args []string, w *client.WriteOptions) (*client.Operation, *client.Meta, error) {
			return c.ResizeVolume(ctx, args[0], size, w)
		})
	resize.Flags().IntVar(&size, "size-gib", 0, "the new size in GiB, larger than the disk's (required)")
	requireFlags(resize, "size-gib")

	var slot string
	attach := a.storageOpCommand("attach VOLID", "Attach an unused disk of its guest", exactArgs("VOLID"),
		func(ctx context.Context, c *client.Client, args []string, w *client.WriteOptions) (*client.Operation, *client.Meta, error) {
			return c.AttachVolume(ctx, args[0], slot, w)
		})
	attach.Flags().StringVar(&slot, "slot", "", "the disk slot to attach it at, such as scsi2 (required)")
	requireFlags(attach, "slot")

	var target string
	var keep bool
	move := a.storageOpCommand("move VOLID", "Move a disk to another storage, live when its guest runs", exactArgs("VOLID"),
		func(ctx context.Context, c *client.Client, args []string, w *client.WriteOptions) (*client.Operation, *client.Meta, error) {
			return c.MoveVolume(ctx, args[0], target, keep, w)
		})
	move.Long = `Move a disk to another storage, live when its guest runs. The source is
deleted once the copy is in use, unless --keep-source leaves it as an unused
disk. A move that fails half-way leaves the original disk in use, and the
operation's error says so.`
	move.Flags().StringVar(&target, "storage", "", "the storage to move the disk to (required)")
	move.Flags().BoolVar(&keep, "keep-source", false, "keep the source as an unused disk of the guest")
	requireFlags(move, "storage")

	return group("volume", "Create, resize, attach, detach, move and delete guest disks",
		list,
		a.readCommand("get VOLID", "Show a disk", exactArgs("VOLID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				v, _, err := c.Volume(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(v, func(w io.Writer) error {
					return keyValues(w,
						"Volume", cell(v.VolID),
						"VMID", vmidOrDash(v.VMID),
						"Node", cell(v.Node),
						"Storage", cell(v.Storage),
						"Size", bytesIEC(v.Size),
						"Format", orDash(cell(v.Format)),
						"Content", cell(v.Content),
					)
				})
			}),
		createCmd, resize, attach,
		a.storageOpCommand("detach VOLID", "Detach a disk; it stays as an unused disk of its guest", exactArgs("VOLID"),
			func(ctx context.Context, c *client.Client, args []string, w *client.WriteOptions) (*client.Operation, *client.Meta, error) {
				return c.DetachVolume(ctx, args[0], w)
			}),
		move,
		a.storageOpCommand("delete VOLID", "Delete a disk, detaching it first", exactArgs("VOLID"),
			func(ctx context.Context, c *client.Client, args []string, w *client.WriteOptions) (*client.Operation, *client.Meta, error) {
				return c.DeleteVolume(ctx, args[0], w)
			}),
	)
}

// requireFlags makes cmd refuse to run, as a usage error, unless each
// of the flags names was given.
func requireFlags(cmd *cobra.Command, names ...string) {
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		for _, n := range names {
			if !cmd.Flags().Changed(n) {
				return usagef("%s needs --%s", cmd.CommandPath(), n)
			}
		}
		return nil
	}
}

// storageOpCommand returns a command that starts a storage operation
// with do and, with --wait, follows it to its end.
func (a *app) storageOpCommand(use, short string, args cobra.PositionalArgs,
	do func(ctx context.Context, c *client.Client, args []string, w *client.WriteOptions) (*client.Operation, *client.Meta, error)) *cobra.Command {
	var wait bool
	var idem idempotencyFlag
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			op, m, err := do(ctx, c, args, idem.options())
			if err != nil {
				return err
			}
			a.noteReplayed(m)
			return a.followStorageOperation(ctx, c, op, wait)
		}),
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the operation to its end, printing progress on stderr")
	idem.register(cmd)
	return cmd
}

// followStorageOperation prints a storage operation just started, or with
// wait follows it to its end and prints how it ended, with its volume.
func (a *app) followStorageOperation(ctx context.Context, c *client.Client, op *client.Operation, wait bool) error {
	var werr error
	if wait {
		if _, werr = c.WaitOperation(ctx, op.ID, a.progressPrinter()); werr != nil && !isOperationFailure(werr) {
			return werr
		}
		final, _, err := c.Operation(ctx, op.ID, nil)
		if err != nil {
			return err
		}
		op = final
	}
	if err := a.show(op, func(w io.Writer) error { return printOperation(w, op) }); err != nil {
		return err
	}
	if op.Active() && !a.json() {
		fmt.Fprintf(a.stderr, "Follow it with: moxxiectl operation wait %s\n", op.ID)
	}
	return werr
}

// progressPrinter returns a WaitOperation progress function that prints
// a line on stderr whenever the operation's progress line changes.
func (a *app) progressPrinter() func(*client.Operation) {
	last := ""
	return func(op *client.Operation) {
		line := progressLine(op)
		if line == last {
			return
		}
		last = line
		if !op.UpdatedAt.IsZero() {
			line = op.UpdatedAt.UTC().Format("15:04:05") + " " + line
		}
		fmt.Fprintln(a.stderr, line)
	}
}

// isOperationFailure reports whether err says an operation failed (as
// opposed to failing to follow it).
func isOperationFailure(err error) bool {
	var fe *client.OperationFailedError
	return errors.As(err, &fe)
}

// volumeSummary describes what a volume operation of kind asked for in
// one line: "local-lvm:vm-101-disk-1, to nfs, deleting the source".
func volumeSummary(kind string, v *client.VolumeSpec) string {
	var parts []string
	for _, p := range []struct{ label, v string }{{"", v.VolID}, {"backup ", v.Archive}, {"slot ", v.Slot}} {
		if p.v != "" {
			parts = append(parts, p.label+cell(p.v))
		}
	}
	if v.SizeGiB != 0 {
		parts = append(parts, strconv.Itoa(v.SizeGiB)+" GiB")
	}
	if v.Storage != "" {
		on := "on "
		if kind == client.OpVolumeMove || kind == client.OpBackupRestore {
			on = "to "
		}
		parts = append(parts, on+cell(v.Storage))
	}
	if v.DeleteSource {
		parts = append(parts, "deleting the source")
	}
	if v.ReserveGiB != 0 {
		parts = append(parts, strconv.FormatInt(v.ReserveGiB, 10)+" GiB reserved")
	}
	return strings.Join(parts, ", ")
}

// protectCommand returns the command that protects a policy snapshot or
// a backup (what) from pruning or, with protect false, lifts the
// protection: do makes the request for the arguments named args and
// returns the record and how to name it.
func (a *app) protectCommand(what string, protect bool, args []string,
	do func(ctx context.Context, c *client.Client, args []string) (any, string, error)) *cobra.Command {
	verb, short := "protect", "Keep a "+what+" from ever being pruned"
	if !protect {
		verb, short = "unprotect", "Let retention prune a "+what+" again"
	}
	return &cobra.Command{
		Use:   verb + " " + strings.Join(args, " "),
		Short: short,
		Args:  exactArgs(args...),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			v, name, err := do(ctx, c, args)
			if err != nil {
				return err
			}
			return a.show(v, func(w io.Writer) error { return printf(w, "%s: protected %s\n", name, yesNo(protect)) })
		}),
	}
}

// Policies: the snapshot and backup policy commands are built by one
// builder.

// policyNoun is the kind of policy a command group manages.
type policyNoun struct {
	// kind is client.PolicyKindSnapshot or client.PolicyKindBackup; noun
	// names it in help.
	kind, noun string
}

// storagePolicyFlags are the flags of policy create and update.
type storagePolicyFlags struct {
	schedule, timezone, description, tenant string
	tags                                    []string
	vmids                                   []int
	all, repeatMissed, disabled             bool
	keep                                    storage.Keep
	// Backup policies only.
	storage, mode, compress string
}

// selectorFlags are the flags that make a selector.
var selectorFlags = []string{"all", "vmids", "tenant", "tags"}

func (f *storagePolicyFlags) register(cmd *cobra.Command, kind string) {
	fl := cmd.Flags()
	fl.StringVar(&f.schedule, "schedule", "", `calendar event, as Proxmox writes them: "*/15", "02:00", "mon..fri 02:00", "sat 18:15"`)
	fl.StringVar(&f.timezone, "timezone", "", `the IANA time zone the schedule is in, such as "Europe/Berlin" (default UTC; "" to return to it)`)
	fl.StringVar(&f.description, "description", "", "what the policy is for")
	fl.BoolVar(&f.all, "all", false, "select every guest (not templates)")
	fl.IntSliceVar(&f.vmids, "vmids", nil, "select these guests, comma-separated VMIDs")
	fl.StringVar(&f.tenant, "tenant", "", "select the guests of this tenant (with --vmids or --tags: only those of them)")
	fl.StringSliceVar(&f.tags, "tags", nil, "select the guests with any of these tags, comma-separated")
	for _, k := range []struct {
		name string
		v    *int
		what string
	}{
		{"keep-last", &f.keep.Last, "keep the newest N"},
		{"keep-hourly", &f.keep.Hourly, "keep the newest of each of the last N hours that have one"},
		{"keep-daily", &f.keep.Daily, "keep the newest of each of the last N days that have one"},
		{"keep-weekly", &f.keep.Weekly, "keep the newest of each of the last N ISO weeks that have one"},
		{"keep-monthly", &f.keep.Monthly, "keep the newest of each of the last N months that have one"},
		{"keep-yearly", &f.keep.Yearly, "keep the newest of each of the last N years that have one"},
	} {
		fl.IntVar(k.v, k.name, 0, k.what)
	}
	fl.BoolVar(&f.repeatMissed, "repeat-missed", false, "run once for the slots missed while no leader ran the policy")
	fl.BoolVar(&f.disabled, "disabled", false, "keep the policy from running")
	if kind == client.PolicyKindBackup {
		fl.StringVar(&f.storage, "storage", "", "the storage the backups go to (required to create)")
		fl.StringVar(&f.mode, "mode", "", "vzdump mode: snapshot (default), suspend or stop")
		fl.StringVar(&f.compress, "compress", "", "compression: 0, gzip, lzo or zstd")
	}
}

// apply sets the fields of p whose flags cmd was given, and reports
// whether any was. The selector flags given replace the whole selector.
func (f *storagePolicyFlags) apply(cmd *cobra.Command, p *client.StoragePolicyRequest) bool {
	ch := changesOf(cmd)
	ch.setAny(selectorFlags, func() {
		p.Selector = storage.Selector{All: f.all, VMIDs: f.vmids, Tenant: f.tenant, Tags: f.tags}
	})
	ch.set("schedule", func() { p.Schedule = f.schedule })
	ch.set("timezone", func() { p.Timezone = f.timezone })
	ch.set("description", func() { p.Description = f.description })
	ch.set("keep-last", func() { p.Keep.Last = f.keep.Last })
	ch.set("keep-hourly", func() { p.Keep.Hourly = f.keep.Hourly })
	ch.set("keep-daily", func() { p.Keep.Daily = f.keep.Daily })
	ch.set("keep-weekly", func() { p.Keep.Weekly = f.keep.Weekly })
	ch.set("keep-monthly", func() { p.Keep.Monthly = f.keep.Monthly })
	ch.set("keep-yearly", func() { p.Keep.Yearly = f.keep.Yearly })
	ch.set("repeat-missed", func() { p.RepeatMissed = f.repeatMissed })
	ch.set("disabled", func() { p.Disabled = f.disabled })
	ch.set("storage", func() { p.Storage = f.storage })
	ch.set("mode", func() { p.Mode = f.mode })
	ch.set("compress", func() { p.Compress = f.compress })
	return ch.any()
}

// policyCommand returns the policy command group of kind.
func (a *app) policyCommand(k policyNoun) *cobra.Command {
	example := "  moxxiectl " + k.noun + ` policy create daily --schedule "mon..fri 02:00" --tags db --keep-daily 7 --keep-weekly 4`
	if k.kind == client.PolicyKindBackup {
		example += " --storage pbs"
	}
	var cf storagePolicyFlags
	create := &cobra.Command{
		Use:   "create ID",
		Short: "Create a " + k.noun + " policy",
		Long: "Create a " + k.noun + ` policy: a schedule, the guests it selects and the retention of
what it makes, pruned like Proxmox Backup Server prunes (keep-last, keep-hourly,
keep-daily, keep-weekly, keep-monthly, keep-yearly; none keeps everything).
Protected ` + k.noun + `s are never pruned. Schedules are Proxmox calendar events,
evaluated by the leader in UTC or in the --timezone given; a slot missed while
no leader ran the policy is skipped, unless --repeat-missed runs it once.`,
		Example: example,
		Args:    exactArgs("ID"),
		RunE: a.withCmdClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
			req := client.StoragePolicyRequest{ID: args[0]}
			cf.apply(cmd, &req)
			p, _, err := c.CreateStoragePolicy(cmd.Context(), k.kind, req, nil)
			if err != nil {
				return err
			}
			return a.show(p, func(w io.Writer) error { return printPolicy(w, p) })
		}),
	}
	cf.register(create, k.kind)
	requireFlags(create, "schedule")

	var uf storagePolicyFlags
	update := &cobra.Command{
		Use:   "update ID",
		Short: "Change a " + k.noun + " policy",
		Long:  "Change a " + k.noun + " policy. Only the flags given change; the selector flags given (--all, --vmids, --tenant, --tags) replace the whole selector.",
		Args:  exactArgs("ID"),
		RunE: a.withCmdClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
			ctx := cmd.Context()
			return sdnUpdate(cmd,
				func() (*client.StoragePolicyRequest, error) {
					p, _, err := c.StoragePolicy(ctx, k.kind, args[0], nil)
					if err != nil {
						return nil, err
					}
					return &p.StoragePolicyRequest, nil
				},
				func(p *client.StoragePolicyRequest) (bool, error) { return uf.apply(cmd, p), nil },
				func(req client.StoragePolicyRequest) error {
					p, _, err := c.UpdateStoragePolicy(ctx, k.kind, req, nil)
					if err != nil {
						return err
					}
					return a.show(p, func(w io.Writer) error { return printPolicy(w, p) })
				})
		}),
	}
	uf.register(update, k.kind)

	return group("policy", "Manage "+k.noun+" policies: schedules, the guests they select and retention",
		a.readCommand("list", "List "+k.noun+" policies", exactArgs(),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
				l, _, err := c.StoragePolicies(ctx, k.kind, q)
				if err != nil {
					return err
				}
				return showList(a, l, func(w io.Writer) error {
					tw := newTable(w)
					row(tw, "ID", "SCHEDULE", "SELECTOR", "KEEP", "NEXT RUN", "LAST RUN")
					for _, p := range l {
						row(tw, cell(p.ID), cell(p.Schedule), selectorSummary(p.Selector), keepSummary(p.Keep), nextRun(&p), orDash(cell(p.LastRun)))
					}
					return tw.Flush()
				})
			}),
		a.readCommand("get ID", "Show a "+k.noun+" policy", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				p, _, err := c.StoragePolicy(ctx, k.kind, args[0], q)
				if err != nil {
					return err
				}
				return a.show(p, func(w io.Writer) error { return printPolicy(w, p) })
			}),
		create,
		update,
		a.sdnDeleteCommand("delete ID", "Delete a "+k.noun+" policy with no run in progress; what it made is kept", "Policy",
			func(ctx context.Context, c *client.Client, id string) (any, error) {
				v, _, err := c.DeleteStoragePolicy(ctx, k.kind, id, nil)
				return v, err
			}),
		a.storageOpCommand("run ID", "Run a "+k.noun+" policy now, outside its schedule, disabled or not", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, args []string, w *client.WriteOptions) (*client.Operation, *client.Meta, error) {
				return c.RunStoragePolicy(ctx, k.kind, args[0], w)
			}),
		a.readCommand("runs ID", "List a "+k.noun+" policy's runs, newest first", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				l, _, err := c.StoragePolicyRuns(ctx, k.kind, args[0], q)
				if err != nil {
					return err
				}
				return showList(a, l, func(w io.Writer) error {
					tw := newTable(w)
					row(tw, "RUN", "STATUS", "SLOT", "MISSED", "GUESTS", "OK", "FAILED", "PRUNED", "FINISHED")
					for _, r := range l {
						s := r.Stats
						if s == nil {
							s = &client.RunStats{}
						}
						row(tw, cell(r.ID), cell(r.Status), formatTime(r.Slot), strconv.Itoa(r.Missed), strconv.Itoa(s.Total),
							strconv.Itoa(s.Succeeded), strconv.Itoa(s.Failed), strconv.Itoa(s.Pruned), formatTime(r.FinishedAt))
					}
					return tw.Flush()
				})
			}),
		a.readCommand("items RUN", "List the guests of a run and how each fared", exactArgs("RUN"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				l, _, err := c.RunItems(ctx, args[0], q)
				if err != nil {
					return err
				}
				return showList(a, l, func(w io.Writer) error {
					tw := newTable(w)
					row(tw, "VMID", "NODE", "STATUS", strings.ToUpper(k.noun), "FINISHED", "ERROR")
					for _, it := range l {
						row(tw, strconv.Itoa(it.VMID), cell(it.Node), cell(it.Status), orDash(cell(it.Name)), formatTime(it.Finished), orDash(cell(it.Error)))
					}
					return tw.Flush()
				})
			}),
	)
}

// selectorSummary describes a selector in one line: "all", "vmids
// 101,102", "tenant acme, tags db,web".
func selectorSummary(s storage.Selector) string {
	if s.All {
		return "all"
	}
	var parts []string
	if len(s.VMIDs) > 0 {
		ids := make([]string, len(s.VMIDs))
		for i, id := range s.VMIDs {
			ids[i] = strconv.Itoa(id)
		}
		parts = append(parts, "vmids "+strings.Join(ids, ","))
	}
	if s.Tenant != "" {
		parts = append(parts, "tenant "+cell(s.Tenant))
	}
	if len(s.Tags) > 0 {
		parts = append(parts, "tags "+cell(strings.Join(s.Tags, ",")))
	}
	return orDash(strings.Join(parts, ", "))
}

// keepSummary describes retention in one line, "last 3, daily 7", or
// "all" when it keeps everything.
func keepSummary(k storage.Keep) string {
	var parts []string
	for _, r := range []struct {
		name string
		n    int
	}{{"last", k.Last}, {"hourly", k.Hourly}, {"daily", k.Daily}, {"weekly", k.Weekly}, {"monthly", k.Monthly}, {"yearly", k.Yearly}} {
		if r.n > 0 {
			parts = append(parts, r.name+" "+strconv.Itoa(r.n))
		}
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, ", ")
}

// nextRun is a policy's next slot, or "disabled".
func nextRun(p *client.StoragePolicy) string {
	if p.Disabled {
		return "disabled"
	}
	return formatTime(p.NextRun)
}

// nextRunIn is nextRun, followed by the slot in the policy's time zone
// when it names one this machine knows.
func nextRunIn(p *client.StoragePolicy) string {
	out := nextRun(p)
	if p.Disabled || p.NextRun.IsZero() || p.Timezone == "" {
		return out
	}
	loc, err := time.LoadLocation(p.Timezone)
	if err != nil {
		return out
	}
	return out + " (" + p.NextRun.In(loc).Format("2006-01-02 15:04:05 MST") + ")"
}

func printPolicy(w io.Writer, p *client.StoragePolicy) error {
	kv := []string{
		"ID", cell(p.ID),
		"Kind", cell(p.Kind),
		"Description", orDash(cell(p.Description)),
		"Schedule", cell(p.Schedule) + " (" + orDefault(cell(p.Timezone), "UTC") + ")",
		"Selector", selectorSummary(p.Selector),
		"Keep", keepSummary(p.Keep),
	}
	if p.Kind == client.PolicyKindBackup {
		kv = append(kv, "Storage", cell(p.Storage), "Mode", cell(p.Mode), "Compress", orDefault(cell(p.Compress), "vzdump's default"))
	}
	kv = append(kv,
		"Repeat missed", yesNo(p.RepeatMissed),
		"Next run", nextRunIn(p),
		"Last slot", formatTime(p.LastSlot),
		"Last run", orDash(cell(p.LastRun)),
		"Active run", orDash(cell(p.ActiveRun)),
		"Skipped slots", strconv.Itoa(p.Skipped),
		"Created", formatTime(p.CreatedAt),
		"Updated", formatTime(p.UpdatedAt),
	)
	return keyValues(w, kv...)
}
