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

func (a *app) operationCommand() *cobra.Command {
	var active bool
	list := a.readCommand("list", "List operations, oldest first", exactArgs(),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
			ops, _, err := c.Operations(ctx, active, q)
			if err != nil {
				return err
			}
			return showList(a, ops, func(w io.Writer) error { return operationTable(w, ops) })
		})
	list.Flags().BoolVar(&active, "active", false, "only operations still pending or running")
	return group("operation", "Follow long-running work on the platform, such as a VM being created",
		a.readCommand("get ID", "Show an operation", exactArgs("ID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				op, _, err := c.Operation(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(op, func(w io.Writer) error { return printOperation(w, op) })
			}),
		list,
		&cobra.Command{
			Use:   "wait ID",
			Short: "Follow an operation to its end, printing progress on stderr; fail when it fails",
			Args:  exactArgs("ID"),
			RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
				return a.waitOperation(ctx, c, args[0])
			}),
		},
	)
}

// followOperation prints an operation just started, or with wait follows
// it to its end and prints how it ended.
func (a *app) followOperation(ctx context.Context, c *client.Client, op *client.Operation, wait bool) error {
	if wait {
		return a.waitOperation(ctx, c, op.ID)
	}
	if err := a.show(op, func(w io.Writer) error { return printOperation(w, op) }); err != nil {
		return err
	}
	if op.Active() && !a.json() {
		fmt.Fprintf(a.stderr, "Follow it with: moxxiectl operation wait %s\n", op.ID)
	}
	return nil
}

// waitOperation follows an operation to its end, printing a line on
// stderr whenever its status, step or progress changes, then prints the
// operation. It fails when the operation failed.
func (a *app) waitOperation(ctx context.Context, c *client.Client, id string) error {
	last := ""
	op, err := c.WaitOperation(ctx, id, func(op *client.Operation) {
		if line := progressLine(op); line != last {
			last = line
			at := ""
			if !op.UpdatedAt.IsZero() {
				at = op.UpdatedAt.UTC().Format("15:04:05") + " "
			}
			fmt.Fprintln(a.stderr, at+line)
		}
	})
	if op == nil {
		return err
	}
	if perr := a.show(op, func(w io.Writer) error { return printOperation(w, op) }); perr != nil {
		return perr
	}
	return err
}

// progressLine describes an operation's state in one line, such as
// "vm.create 104 running: cloning template 9000: transferred 1.0 GiB of 8.0 GiB (12.50%)".
// The progress of a task is left out once the operation has finished.
func progressLine(op *client.Operation) string {
	var b strings.Builder
	b.WriteString(op.Kind)
	if op.VMID != 0 {
		b.WriteString(" " + strconv.Itoa(op.VMID))
	}
	b.WriteString(" " + op.Status)
	if op.Step != "" {
		b.WriteString(": " + op.Step)
	}
	if op.Progress != "" && op.Active() {
		b.WriteString(": " + op.Progress)
	}
	return oneLine(b.String())
}

func operationTable(w io.Writer, ops []client.Operation) error {
	tw := newTable(w)
	row(tw, "ID", "KIND", "STATUS", "VMID", "NODE", "POLICY", "STEP", "CREATED")
	for _, op := range ops {
		row(tw, cell(op.ID), cell(op.Kind), cell(op.Status), vmidOrDash(op.VMID), orDash(cell(op.Node)),
			orDash(cell(op.Policy)), orDash(cell(op.Step)), formatTime(op.CreatedAt))
	}
	return tw.Flush()
}

func printOperation(w io.Writer, op *client.Operation) error {
	kv := []string{
		"ID", cell(op.ID),
		"Kind", cell(op.Kind),
		"Status", cell(op.Status),
		"VMID", vmidOrDash(op.VMID),
		"Node", orDash(cell(op.Node)),
	}
	if s := op.Spec; s != nil {
		kv = append(kv, "Spec", specSummary(s))
		for i, n := range s.NICs {
			kv = append(kv, "NIC net"+strconv.Itoa(i), nicSummary(n))
		}
	}
	kv = append(kv, "Step", orDash(cell(op.Step)))
	if op.Progress != "" {
		kv = append(kv, "Progress", cell(op.Progress))
	}
	if op.Task != "" {
		kv = append(kv, "Task", cell(op.Task))
	}
	for _, ad := range op.Addresses {
		v := cell(ad.Address)
		if ad.DNSName != "" {
			v += " " + cell(ad.DNSName)
		}
		kv = append(kv, "Address net"+strconv.Itoa(ad.NIC), v+" (ID "+cell(ad.ID)+")")
	}
	if e := op.Error; e != nil {
		msg := cell(e.Code) + ": " + cell(e.Message)
		if e.Field != "" {
			msg += " (field " + cell(e.Field) + ")"
		}
		kv = append(kv, "Error", msg)
	}
	if op.Status == client.OpFailed {
		kv = append(kv, "Rolled back", yesNo(op.RolledBack))
	}
	if op.Actor != "" {
		kv = append(kv, "Actor", cell(op.Actor))
	}
	kv = append(kv,
		"Created", formatTime(op.CreatedAt),
		"Updated", formatTime(op.UpdatedAt),
		"Finished", formatTime(op.FinishedAt),
	)
	return keyValues(w, append(kv, storageValues(op)...)...)
}

// specSummary describes a VM spec in one line: "web1, template 9000, 2
// cores, 2048 MiB".
func specSummary(s *client.VMSpec) string {
	parts := []string{cell(s.Name)}
	if s.TemplateVMID != 0 {
		parts = append(parts, "template "+strconv.Itoa(s.TemplateVMID))
	}
	parts = append(parts, plural(s.Cores, "core"), strconv.Itoa(s.MemoryMiB)+" MiB")
	if s.DiskGiB != 0 {
		parts = append(parts, strconv.Itoa(s.DiskGiB)+" GiB disk")
	}
	if s.Storage != "" {
		parts = append(parts, "storage "+cell(s.Storage))
	}
	if s.Tenant != "" {
		parts = append(parts, "tenant "+cell(s.Tenant))
	}
	if s.Project != "" {
		parts = append(parts, "project "+cell(s.Project))
	}
	if len(s.Tags) > 0 {
		parts = append(parts, "tags "+cell(strings.Join(s.Tags, ",")))
	}
	if len(s.SSHKeys) > 0 {
		parts = append(parts, plural(len(s.SSHKeys), "SSH key"))
	}
	if !s.Start {
		parts = append(parts, "not started")
	}
	return strings.Join(parts, ", ")
}

// nicSummary describes a NIC of a spec: "vmbr0 vlan 10, prefix p1, 10.0.0.5,
// web1.moxxie.test".
func nicSummary(n client.VMNIC) string {
	s := cell(n.Bridge)
	if n.VLAN != 0 {
		s += " vlan " + strconv.Itoa(n.VLAN)
	}
	for _, p := range []struct{ label, v string }{{"prefix ", n.PrefixID}, {"", n.Address}, {"", n.DNSName}} {
		if p.v != "" {
			s += ", " + p.label + cell(p.v)
		}
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func vmidOrDash(vmid int) string {
	if vmid == 0 {
		return "-"
	}
	return strconv.Itoa(vmid)
}

// storageValues are the key, value pairs of what an operation did to a
// volume or, for a policy run, its policy, slot and counts.
func storageValues(op *client.Operation) []string {
	var kv []string
	if v := op.Volume; v != nil {
		kv = append(kv, "Volume", volumeSummary(op.Kind, v))
		if v.Result != "" {
			kv = append(kv, "Result", cell(v.Result))
		}
	}
	if op.Policy != "" {
		kv = append(kv, "Policy", cell(op.Policy), "Slot", formatTime(op.Slot))
		if op.Missed > 0 {
			kv = append(kv, "Missed slots", strconv.Itoa(op.Missed))
		}
	}
	if s := op.Stats; s != nil {
		kv = append(kv, "Guests", fmt.Sprintf("%d: %d succeeded, %d failed; %d pruned", s.Total, s.Succeeded, s.Failed, s.Pruned))
	}
	return kv
}
