package main

import (
	"context"
	"io"
	"strconv"
	"strings"

	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
)

func (a *app) backupCommand() *cobra.Command {
	root := group("backup", "Back up guests with policies, list and restore backups, and report coverage",
		a.policyCommand(policyNoun{client.PolicyKindBackup, "backup"}),
		a.backupListCommand(),
		a.readCommand("get VOLID", "Show a backup", exactArgs("VOLID"),
			func(ctx context.Context, c *client.Client, q *client.QueryOptions, args []string) error {
				b, _, err := c.Backup(ctx, args[0], q)
				if err != nil {
					return err
				}
				return a.show(b, func(w io.Writer) error { return printBackup(w, b) })
			}),
		a.backupRestoreCommand(),
		a.backupProtectCommand(true),
		a.backupProtectCommand(false),
		a.backupCoverageCommand(),
	)
	root.Long = `Back up guests with policies, list and restore backups, and report coverage.

Backup policies run vzdump through the platform on a schedule, to a target
storage, and prune what they made like Proxmox Backup Server prunes. Backups
are listed as the storage sync last saw them; those no policy made are never
pruned, nor are protected ones.`
	return root
}

func (a *app) backupListCommand() *cobra.Command {
	var f client.BackupFilter
	cmd := a.readCommand("list", "List the backups on the storages", exactArgs(),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
			l, _, err := c.Backups(ctx, f, q)
			if err != nil {
				return err
			}
			return showList(a, l, func(w io.Writer) error {
				tw := newTable(w)
				row(tw, "VOLID", "VMID", "TIME", "SIZE", "POLICY", "PROTECTED")
				for _, b := range l {
					row(tw, cell(b.VolID), strconv.Itoa(b.VMID), formatTime(b.Time), bytesIEC(b.Size), orDash(cell(b.Policy)), backupProtection(&b))
				}
				return tw.Flush()
			})
		})
	fl := cmd.Flags()
	fl.IntVar(&f.VMID, "vmid", 0, "only the backups of this guest")
	fl.StringVar(&f.Policy, "policy", "", "only the backups this policy made")
	fl.StringVar(&f.Storage, "storage", "", "only the backups on this storage")
	return cmd
}

// backupProtection says whether a backup is protected, and by whom.
func backupProtection(b *client.Backup) string {
	switch {
	case b.Protected && b.PlatformProtected:
		return "yes (and on the platform)"
	case b.PlatformProtected:
		return "on the platform"
	}
	return yesNo(b.Protected)
}

func printBackup(w io.Writer, b *client.Backup) error {
	return keyValues(w,
		"Volume", cell(b.VolID),
		"VMID", strconv.Itoa(b.VMID),
		"Kind", orDash(cell(b.Kind)),
		"Node", cell(b.Node),
		"Storage", cell(b.Storage),
		"Time", formatTime(b.Time),
		"Size", bytesIEC(b.Size),
		"Format", orDash(cell(b.Format)),
		"Policy", orDash(cell(b.Policy)),
		"Run", orDash(cell(b.Run)),
		"Protected", backupProtection(b),
		"Notes", orDash(cell(b.Notes)),
	)
}

func (a *app) backupRestoreCommand() *cobra.Command {
	var req client.BackupRestoreRequest
	cmd := a.storageOpCommand("restore VOLID", "Make a new guest from a backup", exactArgs("VOLID"),
		func(ctx context.Context, c *client.Client, args []string, w *client.WriteOptions) (*client.Operation, *client.Meta, error) {
			return c.RestoreBackup(ctx, args[0], req, w)
		})
	cmd.Example = `  moxxiectl backup restore local:backup/vzdump-qemu-101-2026_01_02-02_00_00.vma.zst --vmid 9001 --wait`
	fl := cmd.Flags()
	fl.IntVar(&req.VMID, "vmid", 0, "the VMID of the new guest, which no guest may have (required)")
	fl.StringVar(&req.Node, "node", "", "the node to restore on (default: the backup's)")
	fl.StringVar(&req.Storage, "storage", "", "the storage for the guest's disks (default: those it was backed up from)")
	requireFlags(cmd, "vmid")
	return cmd
}

// backupProtectCommand returns the command that protects a backup from
// pruning or, with protect false, lifts the protection.
func (a *app) backupProtectCommand(protect bool) *cobra.Command {
	return a.protectCommand("backup", protect, []string{"VOLID"},
		func(ctx context.Context, c *client.Client, args []string) (any, string, error) {
			b, _, err := c.ProtectBackup(ctx, args[0], protect, nil)
			if err != nil {
				return nil, "", err
			}
			return b, "Backup " + cell(b.VolID), nil
		})
}

func (a *app) backupCoverageCommand() *cobra.Command {
	var only bool
	cmd := a.readCommand("coverage", "Show which guests a backup policy covers and their newest backup", exactArgs(),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
			cov, _, err := c.BackupCoverage(ctx, only, q)
			if err != nil {
				return err
			}
			return a.show(cov, func(w io.Writer) error {
				tw := newTable(w)
				row(tw, "VMID", "NAME", "NODE", "TENANT", "POLICIES", "LAST BACKUP")
				for _, g := range cov.Guests {
					last := "never"
					if !g.LastBackup.IsZero() {
						last = formatTime(client.Time{Time: g.LastBackup})
					}
					row(tw, strconv.Itoa(g.VMID), orDash(cell(g.Name)), orDash(cell(g.Node)), orDash(cell(g.Tenant)),
						orDefault(cell(strings.Join(g.Policies, ",")), "none"), last)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				return printf(w, "\n%s without a backup policy\n", plural(len(cov.Unprotected), "guest"))
			})
		})
	cmd.Flags().BoolVar(&only, "unprotected", false, "only the guests no enabled backup policy selects")
	return cmd
}
