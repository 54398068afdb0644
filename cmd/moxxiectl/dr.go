package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
)

// drNow is the clock "synced 5s ago" is measured against; tests set it.
var drNow = time.Now

func (a *app) drCommand() *cobra.Command {
	root := group("dr", "Manage disaster-recovery plans between sites, their runs and conflicts",
		a.drPlanCommand(),
		a.drRunCommand(),
		a.drConflictsCommand(),
	)
	root.Long = `Manage disaster-recovery plans between sites, their runs and conflicts.

A plan is written at its source site and names the guests that come back at
its recovery site, in which order, from the backups on a storage both sites'
Proxmox clusters read, and on which networks. The source site's leader sends
it, with each guest's newest backup, to the recovery site every few seconds;
there it is a replica. When the source site is down the recovery site fails
the plan over by itself, unless the plan is manual. "moxxiectl site failover"
and "moxxiectl site drill" run one at the recovery site (--site NAME);
"moxxiectl site failback" brings the guests home at the source site. The
runbook is docs/dr.md.`
	return root
}

func (a *app) drPlanCommand() *cobra.Command {
	return group("plan", "Write, list and show disaster-recovery plans and their replicas",
		a.readCommand("list", "List the plans this site protects and the replicas it holds for other sites", exactArgs(),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
				l, _, err := c.DRPlans(ctx, q)
				if err != nil {
					return err
				}
				return showList(a, l, func(w io.Writer) error { return drPlanTable(w, l, drNow()) })
			}),
		a.readCommand("get ID", "Show a plan or a replica, with the backup each guest would come back from", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				p, _, err := c.DRPlan(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(p, func(w io.Writer) error { return printDRPlan(w, p, drNow()) })
			}),
		a.drPlanPutCommand(),
		a.sdnDeleteCommand("delete ID", "Delete a plan with no run in progress that was not failed over", "Plan",
			func(ctx context.Context, c *client.Client, id string) (any, error) {
				v, _, err := c.DeleteDRPlan(ctx, id, nil)
				return v, err
			}),
	)
}

// drPlanRole is a plan's role at the answering site.
func drPlanRole(p *client.DRPlan) string {
	if p.Replica {
		return "replica"
	}
	return "source"
}

// drPlanState says in a few words where a plan stands: fenced, failed
// over, running, or for a replica when its source last sent it.
func drPlanState(p *client.DRPlan, now time.Time) string {
	switch {
	case p.Fence != nil && p.Fence.Isolated && p.Fence.Lifted:
		return "fence lifted, guests starting"
	case p.Fence != nil && p.Fence.Isolated:
		return "fenced: " + cell(p.Fence.By) + " out of sight"
	case p.Fence != nil:
		return "fenced by " + cell(p.Fence.By)
	case p.Failover != nil:
		return "failed over: " + cell(p.Failover.State)
	case p.ActiveRun != "":
		return "run " + cell(p.ActiveRun) + " in progress"
	case p.Replica && !p.SyncedAt.IsZero():
		return "synced " + ago(now.Sub(p.SyncedAt.Time))
	}
	return "-"
}

// drFenceText says what a fence does.
func drFenceText(f *client.DRFence) string {
	stopped := make([]string, len(f.Stopped))
	for i, v := range f.Stopped {
		stopped[i] = strconv.Itoa(v)
	}
	switch {
	case f.Isolated && f.Lifted:
		return fmt.Sprintf("lifted (by %s): the guests this site stopped while it saw neither %s nor a quorum of the other sites start again (left: %s)",
			cell(f.LiftedBy), cell(f.By), orDash(strings.Join(stopped, ", ")))
	case f.Isolated:
		return fmt.Sprintf("since %s this site sees neither %s nor a quorum of the other sites, which may be failing it over: its guests are kept stopped (stopped: %s) until %s answers (or moxxiectl site unfence)",
			formatTime(f.Since), cell(f.By), orDash(strings.Join(stopped, ", ")), cell(f.By))
	}
	return fmt.Sprintf("failed over by %s (run %s) since %s: its guests are kept stopped here until a failback",
		cell(f.By), orDash(cell(f.Run)), formatTime(f.Since))
}

// ago formats a duration as "5s ago", "3m ago", "2h ago" or "4d ago".
func ago(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d ago"
}

// drGuestCount counts a plan's guests, and those of a replica that
// cannot come back.
func drGuestCount(p *client.DRPlan) string {
	s := strconv.Itoa(len(p.Guests))
	bad := 0
	for _, st := range p.Status {
		if st.Error != "" {
			bad++
		}
	}
	if bad > 0 {
		s += " (" + strconv.Itoa(bad) + " not recoverable)"
	}
	return s
}

func drPlanTable(w io.Writer, l []client.DRPlan, now time.Time) error {
	tw := newTable(w)
	row(tw, "ID", "SOURCE", "RECOVERY", "GUESTS", "ROLE", "STATE")
	for _, p := range l {
		row(tw, cell(p.ID), cell(p.SourceSite), cell(p.RecoverySite), drGuestCount(&p), drPlanRole(&p), drPlanState(&p, now))
	}
	return tw.Flush()
}

func printDRPlan(w io.Writer, p *client.DRPlan, now time.Time) error {
	role := "source: this site's guests"
	if p.Replica {
		role = "replica: site " + cell(p.SourceSite) + "'s plan"
	}
	manual := "no: fails over by itself when site " + cell(p.SourceSite) + " is down"
	if p.Manual {
		manual = "yes: fails over only when asked (moxxiectl site failover)"
	}
	kv := []string{
		"ID", cell(p.ID),
		"Role", role,
		"Source site", cell(p.SourceSite),
		"Recovery site", cell(p.RecoverySite),
		"Backup storage", cell(p.BackupStorage),
		"Target storage", cell(p.TargetStorage),
		"Target node", orDefault(cell(p.TargetNode), "for each guest, the online node with the most free memory"),
		"Manual", manual,
		"RPO", orDefault(cell(p.RPO), "26h (the default)"),
	}
	for _, n := range p.Networks {
		v := cell(n.Target)
		if n.Prefix != "" {
			v += ", addresses from prefix " + cell(n.Prefix)
		}
		kv = append(kv, "Network "+cell(n.Source), v)
	}
	kv = append(kv, "State", drPlanState(p, now))
	if f := p.Failover; f != nil {
		kv = append(kv, "Failover", fmt.Sprintf("run %s, %s, started %s, %s", cell(f.Run), cell(f.Trigger), formatTime(f.StartedAt), cell(f.State)))
	}
	if f := p.Fence; f != nil {
		kv = append(kv, "Fence", drFenceText(f))
	}
	kv = append(kv, "Active run", orDash(cell(p.ActiveRun)), "Last run", orDash(cell(p.LastRun)))
	if p.Replica {
		synced := formatTime(p.SyncedAt)
		if !p.SyncedAt.IsZero() {
			synced += " (" + ago(now.Sub(p.SyncedAt.Time)) + ")"
		}
		kv = append(kv, "Synced", synced, "Source version", formatTime(p.SourceUpdatedAt))
	}
	kv = append(kv, "Created", formatTime(p.CreatedAt), "Updated", formatTime(p.UpdatedAt))
	if err := keyValues(w, kv...); err != nil {
		return err
	}
	if err := printf(w, "\n"); err != nil {
		return err
	}
	return drGuestTable(w, p)
}

// drGuestTable lists a plan's guests in recovery order; a replica's with
// the backup each comes back from.
func drGuestTable(w io.Writer, p *client.DRPlan) error {
	guests := slices.Clone(p.Guests)
	slices.SortStableFunc(guests, func(a, b client.DRGuest) int {
		return cmp.Or(cmp.Compare(a.Order, b.Order), cmp.Compare(a.VMID, b.VMID))
	})
	status := map[int]client.DRGuestStatus{}
	for _, st := range p.Status {
		status[st.VMID] = st
	}
	tw := newTable(w)
	if !p.Replica {
		row(tw, "ORDER", "VMID", "TARGET VMID", "DNS NAME")
		for _, g := range guests {
			row(tw, strconv.Itoa(g.Order), strconv.Itoa(g.VMID), intOr(g.TargetVMID, "next free"), orDash(cell(g.DNSName)))
		}
		return tw.Flush()
	}
	row(tw, "ORDER", "VMID", "NAME", "TARGET VMID", "DNS NAME", "BACKUP", "BACKUP TIME", "ERROR")
	for _, g := range guests {
		st := status[g.VMID]
		row(tw, strconv.Itoa(g.Order), strconv.Itoa(g.VMID), orDash(cell(st.Name)), intOr(g.TargetVMID, "next free"), orDash(cell(g.DNSName)),
			orDash(cell(st.Backup)), formatTime(st.BackupAt), orDash(cell(st.Error)))
	}
	return tw.Flush()
}

// drPlanFlags are the flags of dr plan put.
type drPlanFlags struct {
	file                                                        string
	recoverySite, backupStorage, targetStorage, targetNode, rpo string
	guests, networks                                            []string
	manual                                                      bool
}

// drPlanRequired are the flags a plan put without a file needs.
var drPlanRequired = []string{"recovery-site", "backup-storage", "target-storage", "guest"}

func (f *drPlanFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "read the plan from this YAML or JSON file; the flags given replace its fields")
	fl.StringVar(&f.recoverySite, "recovery-site", "", "the site the guests come back at")
	fl.StringVar(&f.backupStorage, "backup-storage", "", "the storage holding the guests' backups, readable by both sites' Proxmox clusters under this ID")
	fl.StringVar(&f.targetStorage, "target-storage", "", "the recovery site's storage the restored disks go to")
	fl.StringVar(&f.targetNode, "target-node", "", "the recovery site's node the guests come back on (default: for each guest, its online node with the most memory free, counting the copies already placed)")
	fl.StringArrayVar(&f.guests, "guest", nil, "a guest to protect, as VMID[:ORDER[:DNSNAME]]: lower orders start first (later ones restore meanwhile); DNSNAME is re-pointed to its new address (repeatable)")
	fl.StringArrayVar(&f.networks, "network", nil, "map a source bridge or vnet to a recovery one, as SRC=DST[@PREFIXID]: guests on it take addresses from that IPAM prefix (repeatable)")
	fl.BoolVar(&f.manual, "manual", false, "never fail over by itself: only moxxiectl site failover runs it")
	fl.StringVar(&f.rpo, "rpo", "", `recovery point objective: the recovery site alerts when the backups a failover would restore get older, such as "4h" (default 26h)`)
}

// request builds the plan to put for id from the file and the flags
// given.
func (f *drPlanFlags) request(cmd *cobra.Command, id string) (client.DRPlanRequest, error) {
	var req client.DRPlanRequest
	if f.file != "" {
		var err error
		if req, err = readDRPlanFile(f.file); err != nil {
			return req, err
		}
		if req.ID != "" && req.ID != id {
			return req, usagef("%s: the file's plan is %q, not %q: a plan cannot be renamed", f.file, req.ID, id)
		}
	} else {
		for _, n := range drPlanRequired {
			if !cmd.Flags().Changed(n) {
				return req, usagef("%s needs --%s, or the plan in a file (-f FILE)", cmd.CommandPath(), n)
			}
		}
	}
	req.ID = id
	guests, err := parseDRGuests(f.guests)
	if err != nil {
		return req, err
	}
	networks, err := parseDRNetworks(f.networks)
	if err != nil {
		return req, err
	}
	ch := changesOf(cmd)
	ch.set("recovery-site", func() { req.RecoverySite = f.recoverySite })
	ch.set("backup-storage", func() { req.BackupStorage = f.backupStorage })
	ch.set("target-storage", func() { req.TargetStorage = f.targetStorage })
	ch.set("target-node", func() { req.TargetNode = f.targetNode })
	ch.set("manual", func() { req.Manual = f.manual })
	ch.set("rpo", func() { req.RPO = f.rpo })
	ch.set("guest", func() { req.Guests = guests })
	ch.set("network", func() { req.Networks = networks })
	return req, nil
}

// readDRPlanFile reads a plan from a JSON or YAML file with the fields of
// the API (what dr plan get -o json prints is accepted); unknown fields
// are refused.
func readDRPlanFile(path string) (client.DRPlanRequest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return client.DRPlanRequest{}, err
	}
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		if data, err = yaml.YAMLToJSON(data); err != nil {
			return client.DRPlanRequest{}, usagef("%s: %v", path, oneLine(err.Error()))
		}
	}
	var p client.DRPlan
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return client.DRPlanRequest{}, usagef("%s: %v", path, err)
	}
	return p.DRPlanRequest, nil
}

// parseDRGuests parses the --guest values, VMID[:ORDER[:DNSNAME]].
func parseDRGuests(values []string) ([]client.DRGuest, error) {
	var out []client.DRGuest
	seen := map[int]bool{}
	for _, v := range values {
		g, err := parseDRGuest(v)
		if err != nil {
			return nil, err
		}
		if seen[g.VMID] {
			return nil, usagef("--guest %q: guest %d is given twice", v, g.VMID)
		}
		seen[g.VMID] = true
		out = append(out, g)
	}
	return out, nil
}

func parseDRGuest(v string) (client.DRGuest, error) {
	parts := strings.SplitN(v, ":", 3)
	vmid, err := strconv.Atoi(parts[0])
	if err != nil || vmid <= 0 {
		return client.DRGuest{}, usagef("--guest %q: VMID %q is not a positive number (want VMID[:ORDER[:DNSNAME]])", v, parts[0])
	}
	g := client.DRGuest{VMID: vmid}
	if len(parts) > 1 && parts[1] != "" {
		if g.Order, err = strconv.Atoi(parts[1]); err != nil || g.Order < 0 {
			return client.DRGuest{}, usagef("--guest %q: ORDER %q is not a number of 0 or more", v, parts[1])
		}
	}
	if len(parts) > 2 {
		if parts[2] == "" {
			return client.DRGuest{}, usagef("--guest %q: the DNS name after the second colon is empty", v)
		}
		g.DNSName = parts[2]
	}
	return g, nil
}

// parseDRNetworks parses the --network values, SRC=DST[@PREFIXID].
func parseDRNetworks(values []string) ([]client.DRNetwork, error) {
	var out []client.DRNetwork
	for _, v := range values {
		src, rest, ok := strings.Cut(v, "=")
		if !ok || src == "" {
			return nil, usagef("--network %q: want SRC=DST[@PREFIXID], such as vmbr0=vmbr1@p1", v)
		}
		dst, prefix, hasPrefix := strings.Cut(rest, "@")
		switch {
		case dst == "":
			return nil, usagef("--network %q: no recovery bridge or vnet after '='", v)
		case hasPrefix && prefix == "":
			return nil, usagef("--network %q: no prefix ID after '@'", v)
		case slices.ContainsFunc(out, func(n client.DRNetwork) bool { return n.Source == src }):
			return nil, usagef("--network %q: %s is mapped twice", v, src)
		}
		out = append(out, client.DRNetwork{Source: src, Target: dst, Prefix: prefix})
	}
	return out, nil
}

func (a *app) drPlanPutCommand() *cobra.Command {
	var f drPlanFlags
	cmd := &cobra.Command{
		Use:   "put ID",
		Short: "Create or replace a disaster-recovery plan at its source site",
		Long: `Create or replace a disaster-recovery plan at its source site, the site the
request reaches: the whole plan is replaced by what is given; its run state is
kept.

The plan comes from a YAML or JSON file (-f) with the fields of the API:

  recovery_site: west
  backup_storage: pbs
  target_storage: local-lvm
  target_node: pve2        # optional
  manual: false            # optional
  guests:
    - {vmid: 103, order: 0, dns_name: db1}
    - {vmid: 101, order: 1, target_vmid: 9101, dns_name: web1}
  networks:
    - {source: vmbr0, target: vmbr1, prefix: p1}

or, for a simple plan, from the flags alone; flags given with a file replace
its fields (--guest and --network replace all its guests or networks).`,
		Example: `  moxxiectl dr plan put web -f web.yaml
  moxxiectl dr plan put web --recovery-site west --backup-storage pbs --target-storage local-lvm \
      --guest 103:0:db1 --guest 101:1:web1 --network vmbr0=vmbr1@p1`,
		Args: exactArgs("ID"),
		RunE: a.withCmdClient(func(cmd *cobra.Command, c *client.Client, args []string) error {
			req, err := f.request(cmd, args[0])
			if err != nil {
				return err
			}
			p, _, err := c.PutDRPlan(cmd.Context(), req, nil)
			if err != nil {
				return err
			}
			verb := "replaced"
			if p.CreateIndex == p.ModifyIndex {
				verb = "created"
			}
			return a.show(p, func(w io.Writer) error {
				return printf(w, "Plan %s %s: %s of site %s come back at site %s.\n", cell(p.ID), verb, plural(len(p.Guests), "guest"),
					cell(p.SourceSite), cell(p.RecoverySite))
			})
		}),
	}
	f.register(cmd)
	return cmd
}

func (a *app) drRunCommand() *cobra.Command {
	var wait bool
	get := &cobra.Command{
		Use:   "get RUN",
		Short: "Show a failover, drill or failback and how far each guest came",
		Args:  exactArgs("RUN"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			if wait {
				return a.waitDRRun(ctx, c, args[0])
			}
			run, _, err := c.DRRun(ctx, args[0], nil)
			if err != nil {
				return err
			}
			return a.show(run, func(w io.Writer) error { return printDRRun(w, run) })
		}),
	}
	get.Flags().BoolVar(&wait, "wait", false, "follow the run to its end, printing each guest's progress on stderr; fail when it fails")
	return group("run", "Follow the failovers, drills and failbacks of disaster-recovery plans", get)
}

// waitDRRun follows a DR run to its end, printing its progress on
// stderr, then prints the run. It fails when the run failed.
func (a *app) waitDRRun(ctx context.Context, c *client.Client, id string) error {
	run, err := c.WaitDRRun(ctx, id, a.drProgressPrinter())
	if run == nil {
		return err
	}
	if perr := a.show(run, func(w io.Writer) error { return printDRRun(w, run) }); perr != nil {
		return perr
	}
	return err
}

// drProgressPrinter returns a WaitDRRun progress function that prints a
// line on stderr whenever the operation's progress line or a guest's
// step changes (guests still pending are not listed).
func (a *app) drProgressPrinter() func(*client.DRRun) {
	lastOp := ""
	items := map[int]string{}
	return func(r *client.DRRun) {
		if line := progressLine(r.Operation); line != lastOp {
			lastOp = line
			if !r.Operation.UpdatedAt.IsZero() {
				line = r.Operation.UpdatedAt.UTC().Format("15:04:05") + " " + line
			}
			fmt.Fprintln(a.stderr, line)
		}
		for _, it := range r.Items {
			line := drItemLine(it)
			if old, seen := items[it.VMID]; line == old || !seen && it.Step == client.DRStepPending {
				items[it.VMID] = line
				continue
			}
			items[it.VMID] = line
			fmt.Fprintln(a.stderr, "  "+line)
		}
	}
}

// drItemLine describes where a guest of a run is: "guest 101 (web1):
// running as 9101 on pve2, 10.0.0.5".
func drItemLine(it client.DRItem) string {
	s := "guest " + strconv.Itoa(it.VMID)
	if it.Name != "" {
		s += " (" + cell(it.Name) + ")"
	}
	s += ": " + cell(it.Step)
	if t := drTarget(it); t != "-" {
		s += " as " + t
	}
	if it.Address != "" {
		s += ", " + cell(it.Address)
	}
	if it.Error != "" {
		s += ": " + oneLine(it.Error)
	}
	return s
}

// drTarget is where an item's guest comes back: "9101 on pve2".
func drTarget(it client.DRItem) string {
	s := ""
	if it.TargetVMID != 0 {
		s = strconv.Itoa(it.TargetVMID)
	}
	if it.TargetNode != "" {
		s = strings.TrimSpace(s + " on " + cell(it.TargetNode))
	}
	return orDash(s)
}

func printDRRun(w io.Writer, run *client.DRRun) error {
	op := run.Operation
	if op == nil {
		op = &client.Operation{}
	}
	kv := []string{
		"Run", cell(op.ID),
		"Kind", cell(op.Kind),
		"Plan", orDash(cell(op.Policy)),
		"Status", cell(op.Status),
		"Step", orDash(cell(op.Step)),
	}
	if s := op.Stats; s != nil {
		kv = append(kv, "Guests", fmt.Sprintf("%d: %d succeeded, %d failed", s.Total, s.Succeeded, s.Failed))
	}
	if e := op.Error; e != nil {
		msg := cell(e.Code) + ": " + cell(e.Message)
		if e.Field != "" {
			msg += " (field " + cell(e.Field) + ")"
		}
		kv = append(kv, "Error", msg)
	}
	if op.Actor != "" {
		kv = append(kv, "Actor", cell(op.Actor))
	}
	kv = append(kv, "Created", formatTime(op.CreatedAt), "Updated", formatTime(op.UpdatedAt), "Finished", formatTime(op.FinishedAt))
	if err := keyValues(w, kv...); err != nil {
		return err
	}
	if err := printf(w, "\n"); err != nil {
		return err
	}
	tw := newTable(w)
	row(tw, "ORDER", "VMID", "NAME", "STEP", "TARGET", "ADDRESS", "ERROR")
	for _, it := range run.Items {
		addr := cell(it.Address)
		if addr != "" && it.DNSName != "" {
			addr += " (" + cell(it.DNSName) + ")"
		}
		step := cell(it.Step)
		if o := drWaitsFor(op, run.Items, it); o >= 0 {
			step += ", waits for order " + strconv.Itoa(o)
		}
		row(tw, strconv.Itoa(it.Order), strconv.Itoa(it.VMID), orDash(cell(it.Name)), step, drTarget(it), orDash(addr), orDash(cell(oneLine(it.Error))))
	}
	return tw.Flush()
}

// drWaitsFor returns the earliest recovery order whose guests the item,
// ready to start in an active run, waits for (the server starts a guest
// only once every guest of the earlier orders runs or failed), or -1.
func drWaitsFor(op *client.Operation, items []client.DRItem, it client.DRItem) int {
	ready := it.Step == "configured" || op.Kind == client.OpDRFailback && it.Step == "restored"
	if !op.Active() || !ready {
		return -1
	}
	first := -1
	for _, o := range items {
		started := o.Step == "running" || o.Step == "cleaned" || o.Step == "failed"
		if o.Order < it.Order && !started && (first < 0 || o.Order < first) {
			first = o.Order
		}
	}
	return first
}

func (a *app) drConflictsCommand() *cobra.Command {
	cmd := a.readCommand("conflicts", "List the changes made on both sides of a partition that were not applied", exactArgs(),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
			l, _, err := c.DRConflicts(ctx, q)
			if err != nil {
				return err
			}
			return showList(a, l, func(w io.Writer) error {
				tw := newTable(w)
				row(tw, "AT", "PLAN", "KIND", "SITE", "VMID", "DETAIL")
				for _, cf := range l {
					row(tw, formatTime(cf.At), cell(cf.Plan), cell(cf.Kind), cell(cf.Site), vmidOrDash(cf.VMID), cell(oneLine(cf.Detail)))
				}
				return tw.Flush()
			})
		})
	cmd.Long = `List the changes made on both sides of a partition that were not applied,
oldest first: reported, never dropped silently.

plan_changed: the source site changed a plan after it was failed over; the
recovery site keeps the version it failed over with. guest_ran: a guest ran at
the source site after the recovery site started its copy; what it wrote since
is not in that copy.`
	return cmd
}

// The failover, drill and failback of a plan are site commands: the first
// two run at the plan's recovery site (moxxiectl --site NAME site failover
// PLAN), the failback at its source site.

func (a *app) siteFailoverCommand() *cobra.Command {
	var force bool
	cmd := a.drRunStartCommand("failover PLAN", "Fail a disaster-recovery plan over to this site, its recovery site",
		func(ctx context.Context, c *client.Client, plan string, w *client.WriteOptions) (*client.Operation, *client.Meta, error) {
			return c.DRFailover(ctx, plan, force, w)
		})
	cmd.Long = `Fail a disaster-recovery plan over: restore its guests at its recovery site
from their newest backups, in order, move their NICs to the mapped networks,
give them addresses from the mapped prefixes, re-point their DNS names and
start them. A plan fails over once, until a failback; a failover that failed
(some guests failed) runs again when asked again: each guest that failed
resumes from the last step it reached, and the copies that run are left alone.

The request must reach the recovery site, which holds the plan's replica: pass
--site NAME. Unless --force, the source site must be down (a quorum of the
other sites agrees); with --force you vouch that the plan's guests are stopped
there, or they run twice. A drill (moxxiectl site drill) tries a plan out
without either risk.`
	cmd.Example = `  moxxiectl --site west site failover web --wait`
	cmd.Flags().BoolVar(&force, "force", false, "fail over although the source site is not down: its guests must be stopped there")
	return cmd
}

func (a *app) siteDrillCommand() *cobra.Command {
	var keep bool
	cmd := a.drRunStartCommand("drill PLAN", "Try a disaster-recovery plan out at its recovery site, touching nothing at its source",
		func(ctx context.Context, c *client.Client, plan string, w *client.WriteOptions) (*client.Operation, *client.Meta, error) {
			return c.DRDrill(ctx, plan, keep, w)
		})
	cmd.Long = `Try a disaster-recovery plan out: restore its guests at its recovery site
from their newest backups, with their network links down and no address or DNS
name, start them, then remove them again unless --keep. Nothing at the source
site is stopped or changed.

The request must reach the recovery site, which holds the plan's replica: pass
--site NAME.`
	cmd.Example = `  moxxiectl --site west site drill web --wait`
	cmd.Flags().BoolVar(&keep, "keep", false, "leave the restored copies running, for inspection")
	return cmd
}

func (a *app) siteFailbackCommand() *cobra.Command {
	cmd := a.drRunStartCommand("failback PLAN", "Fail a disaster-recovery plan back to this site, its source site",
		func(ctx context.Context, c *client.Client, plan string, w *client.WriteOptions) (*client.Operation, *client.Meta, error) {
			return c.DRFailback(ctx, plan, w)
		})
	cmd.Long = `Fail a disaster-recovery plan back to its source site once it was failed over
and the source site came back (the plan is fenced there). The recovery site
releases its copies: each is stopped, backed up to the plan's backup storage
and its address released. Each guest is then restored here over its original
from that backup, in the plan's order, and started, and the fence is lifted.

What a guest wrote at the source site after the failover started is
overwritten: read "moxxiectl dr conflicts" first (guest_ran). The request must
reach the source site. The stopped copies stay at the recovery site until
deleted.`
	cmd.Example = `  moxxiectl --site east site failback web --wait`
	return cmd
}

func (a *app) siteUnfenceCommand() *cobra.Command {
	var idem idempotencyFlag
	cmd := &cobra.Command{
		Use:   "unfence PLAN",
		Short: "Start the guests a cut-off site stopped for a plan, vouching that its recovery site did not fail it over",
		Args:  exactArgs("PLAN"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			p, m, err := c.DRUnfence(ctx, args[0], idem.options())
			if err != nil {
				return err
			}
			a.noteReplayed(m)
			return a.show(p, func(w io.Writer) error {
				if p.Fence == nil || len(p.Fence.Stopped) == 0 {
					return printf(w, "Plan %s: fence lifted; no guest it stopped waits to start.\n", cell(p.ID))
				}
				return printf(w, "Plan %s: fence lifted; the leader starts the %d guests it stopped again.\n", cell(p.ID), len(p.Fence.Stopped))
			})
		}),
	}
	cmd.Long = `A site that sees neither a plan's recovery site nor a quorum of the other sites
may be failed over by them, so it fences the plan itself and stops its guests.
When the recovery site answers that it did not fail the plan over, the fence
lifts by itself and the guests start again.

unfence lifts it now, while the site is still cut off: you vouch that the
recovery site did not and will not fail the plan over (it is down too, or you
made the plan manual there). If it did, both copies run; when the sites see
each other again this site learns of the failover, stops the guests again and
records a guest_ran conflict. A fence of a known failover is lifted only by a
failback.`
	cmd.Example = `  moxxiectl --site east site unfence web`
	idem.register(cmd)
	return cmd
}

// drRunStartCommand returns a command that starts a run of the plan its
// one argument names with start and, with --wait, follows it to its end.
func (a *app) drRunStartCommand(use, short string,
	start func(ctx context.Context, c *client.Client, plan string, w *client.WriteOptions) (*client.Operation, *client.Meta, error)) *cobra.Command {
	var wait bool
	var idem idempotencyFlag
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs("PLAN"),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			op, m, err := start(ctx, c, args[0], idem.options())
			if err != nil {
				return err
			}
			a.noteReplayed(m)
			if wait {
				return a.waitDRRun(ctx, c, op.ID)
			}
			if err := a.show(op, func(w io.Writer) error {
				return printf(w, "Run %s: %s of plan %s, %s.\n", cell(op.ID), cell(op.Kind), cell(op.Policy), cell(op.Status))
			}); err != nil {
				return err
			}
			if op.Active() && !a.json() {
				fmt.Fprintf(a.stderr, "Follow it with: moxxiectl %sdr run get %s --wait\n", a.siteFlag(), op.ID)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the run to its end, printing each guest's progress on stderr; fail when it fails")
	idem.register(cmd)
	return cmd
}

// siteFlag returns "--site NAME " when requests go to another site, for
// the commands moxxiectl suggests.
func (a *app) siteFlag() string {
	if a.site == "" {
		return ""
	}
	return "--site " + a.site + " "
}
