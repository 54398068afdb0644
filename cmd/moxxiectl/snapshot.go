package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/moxxie/moxxie/client"
	"github.com/moxxie/moxxie/fsm"
	"github.com/spf13/cobra"
)

// maxArchiveSize bounds the snapshot files moxxiectl reads; they are read
// into memory whole.
const maxArchiveSize = 4 << 30

func (a *app) snapshotCommand() *cobra.Command {
	return group("snapshot", "Save, restore and inspect backups of the cluster state; guest snapshot policies and their snapshots",
		a.policyCommand(policyNoun{client.PolicyKindSnapshot, "snapshot"}),
		a.snapshotListCommand(),
		a.snapshotProtectCommand(true),
		a.snapshotProtectCommand(false),
		&cobra.Command{
			Use:   "save FILE",
			Short: "Save a verified backup of the whole cluster state to FILE",
			Args:  exactArgs("FILE"),
			RunE:  a.snapshotSave,
		},
		&cobra.Command{
			Use:   "restore FILE",
			Short: "Replace the whole cluster state with the backup in FILE",
			Long: `Replace the whole cluster state with the backup in FILE.

The file is verified locally first; a damaged file is refused before anything
is sent. Every object created since the backup was taken is lost. While the
leader receives, verifies and installs the backup, writes wait for it (up to
the hold timeout, then 503 restoring, nothing applied), so none is
acknowledged during the restore and then lost to it; a second restore
meanwhile is refused (409). Writes the leader applied before it began the
restore, whose answers may reach their clients just after the upload starts,
are lost with everything else since the backup.`,
			Args: exactArgs("FILE"),
			RunE: a.snapshotRestore,
		},
		&cobra.Command{
			Use:   "inspect FILE",
			Short: "Verify a backup file and describe it, without contacting a server",
			Args:  exactArgs("FILE"),
			RunE:  a.snapshotInspect,
		},
	)
}

// snapshotInfo describes a backup file in -o json output.
type snapshotInfo struct {
	File     string `json:"file"`
	FileSize int64  `json:"file_size"`
	// SHA256 is the checksum of the whole file, as sha256sum prints it.
	SHA256 string `json:"sha256"`
	fsm.ArchiveMeta
	Tables map[string]int `json:"tables,omitempty"`
}

func (a *app) snapshotSave(cmd *cobra.Command, args []string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	file := args[0]
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	info, err := saveVerified(cmd, c, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(file))
	info.File = file
	if a.json() {
		return printJSON(a.stdout, info)
	}
	return printf(a.stdout, "Saved snapshot to %s: index %d, term %d, %d bytes, sha256 %s\n",
		file, info.Index, info.Term, info.FileSize, info.SHA256)
}

// saveVerified downloads a snapshot into f, syncs it and verifies it.
func saveVerified(cmd *cobra.Command, c *client.Client, f *os.File) (*snapshotInfo, error) {
	m, err := c.SnapshotSave(cmd.Context(), f)
	if err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	ar, err := fsm.ReadArchive(f, maxArchiveSize)
	if err != nil {
		return nil, fmt.Errorf("the snapshot received from %s is damaged, nothing was saved: %w", m.Address, err)
	}
	if s := m.ServerSHA256; s != "" && s != m.SHA256 && s != ar.Checksum && s != ar.Meta.DataChecksum {
		return nil, fmt.Errorf("the snapshot received from %s does not match the checksum the server announced (%s), nothing was saved", m.Address, s)
	}
	return &snapshotInfo{FileSize: m.Size, SHA256: m.SHA256, ArchiveMeta: ar.Meta}, nil
}

// syncDir makes a rename in dir durable. It is best effort: some systems
// cannot sync directories.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// readArchiveFile reads and verifies a backup file.
func readArchiveFile(file string) ([]byte, *fsm.Archive, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, nil, err
	}
	if fi.Size() > maxArchiveSize {
		return nil, nil, fmt.Errorf("%s is not a valid snapshot: larger than %d bytes", file, int64(maxArchiveSize))
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	ar, err := fsm.ReadArchive(bytes.NewReader(data), maxArchiveSize)
	if err != nil {
		return nil, nil, fmt.Errorf("%s is not a valid snapshot: %w", file, err)
	}
	return data, ar, nil
}

func (a *app) snapshotRestore(cmd *cobra.Command, args []string) error {
	file := args[0]
	data, ar, err := readArchiveFile(file)
	if err != nil {
		return fmt.Errorf("%w; nothing was sent", err)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	idx, err := c.SnapshotRestore(cmd.Context(), bytes.NewReader(data))
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, map[string]any{"file": file, "snapshot_index": ar.Meta.Index, "restored_index": idx})
	}
	return printf(a.stdout, "Restored snapshot %s (taken at index %d): the cluster now holds its state, and what was written after it is gone\n",
		file, ar.Meta.Index)
}

func (a *app) snapshotInspect(_ *cobra.Command, args []string) error {
	file := args[0]
	data, ar, err := readArchiveFile(file)
	if err != nil {
		return err
	}
	counts, err := fsm.TableCounts(bytes.NewReader(ar.Data))
	if err != nil {
		return fmt.Errorf("%s is not a valid snapshot: %w", file, err)
	}
	sum := sha256.Sum256(data)
	info := &snapshotInfo{
		File:        file,
		FileSize:    int64(len(data)),
		SHA256:      hex.EncodeToString(sum[:]),
		ArchiveMeta: ar.Meta,
		Tables:      counts,
	}
	if a.json() {
		return printJSON(a.stdout, info)
	}
	m := ar.Meta
	if err := keyValues(a.stdout,
		"File", file,
		"Size", strconv.FormatInt(info.FileSize, 10)+" bytes",
		"SHA256", info.SHA256,
		"Version", strconv.Itoa(m.Version),
		"FSM version", strconv.Itoa(m.FSMVersion),
		"Index", u64(m.Index),
		"Term", u64(m.Term),
		"Created", orDash(cell(m.CreatedAt)),
		"Server", orDash(cell(m.ServerID)),
		"Data size", strconv.FormatInt(m.Size, 10)+" bytes",
		"Data SHA256", m.DataChecksum,
	); err != nil {
		return err
	}
	if err := printf(a.stdout, "\n"); err != nil {
		return err
	}
	names := make([]string, 0, len(counts))
	for t := range counts {
		names = append(names, t)
	}
	sort.Strings(names)
	tw := newTable(a.stdout)
	row(tw, "TABLE", "OBJECTS")
	for _, t := range names {
		row(tw, t, strconv.Itoa(counts[t]))
	}
	return tw.Flush()
}

// snapshotListCommand lists the guest snapshots the snapshot policies made
// and keep.
func (a *app) snapshotListCommand() *cobra.Command {
	var f client.SnapshotFilter
	cmd := a.readCommand("list", "List the guest snapshots the snapshot policies made and keep", exactArgs(),
		func(ctx context.Context, c *client.Client, q *client.QueryOptions, _ []string) error {
			l, _, err := c.PolicySnapshots(ctx, f, q)
			if err != nil {
				return err
			}
			return showList(a, l, func(w io.Writer) error {
				tw := newTable(w)
				row(tw, "VMID", "NAME", "POLICY", "TIME", "PROTECTED")
				for _, s := range l {
					row(tw, strconv.Itoa(s.VMID), cell(s.Name), cell(s.Policy), formatTime(s.Time), yesNo(s.Protected))
				}
				return tw.Flush()
			})
		})
	cmd.Flags().StringVar(&f.Policy, "policy", "", "only the snapshots of this policy")
	cmd.Flags().IntVar(&f.VMID, "vmid", 0, "only the snapshots of this guest")
	return cmd
}

// snapshotProtectCommand returns the command that protects a policy
// snapshot from pruning or, with protect false, lifts the protection.
func (a *app) snapshotProtectCommand(protect bool) *cobra.Command {
	return a.protectCommand("policy snapshot", protect, []string{"VMID", "NAME"},
		func(ctx context.Context, c *client.Client, args []string) (any, string, error) {
			vmid, err := parseVMID(args[0])
			if err != nil {
				return nil, "", err
			}
			s, _, err := c.ProtectSnapshot(ctx, vmid, args[1], protect, nil)
			if err != nil {
				return nil, "", err
			}
			return s, fmt.Sprintf("Snapshot %s of guest %d", cell(s.Name), s.VMID), nil
		})
}
