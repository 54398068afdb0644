package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/moxxie/moxxie/audit"
	"github.com/moxxie/moxxie/client"
	"github.com/spf13/cobra"
)

func (a *app) auditCommand() *cobra.Command {
	var lf readFlags
	var aq client.AuditQuery
	list := &cobra.Command{
		Use:   "list",
		Short: "List audit entries in order",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := noEmpty(cmd, "action", "token-id"); err != nil {
				return err
			}
			if cmd.Flags().Changed("limit") && cmd.Flags().Changed("last") {
				return usagef("give --limit (the oldest entries from --since-seq) or --last (the newest), not both")
			}
			for name, n := range map[string]int{"limit": aq.Limit, "last": aq.Last} {
				if cmd.Flags().Changed(name) && n < 1 {
					return usagef("--%s must be at least 1, got %d", name, n)
				}
			}
			return a.auditList(cmd, aq, &lf)
		},
	}
	lf.register(list)
	list.Flags().Uint64Var(&aq.SinceSeq, "since-seq", 0, "start at this sequence number")
	list.Flags().IntVar(&aq.Limit, "limit", 0, "at most this many entries, the oldest from --since-seq (server default 100)")
	list.Flags().IntVar(&aq.Last, "last", 0, "the newest this many entries instead, still oldest first")
	list.Flags().StringVar(&aq.TokenID, "token-id", "", "only the entries of this token accessor ID")
	list.Flags().StringVar(&aq.Action, "action", "", `only the entries of this action, e.g. "POST /v1/vms"`)

	var exportSince uint64
	var exportFile string
	export := &cobra.Command{
		Use:   "export",
		Short: "Write the audit log as JSON lines, for a SIEM or for verify --file",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.auditExport(cmd, exportSince, exportFile)
		},
	}
	export.Flags().Uint64Var(&exportSince, "since-seq", 0, "start at this sequence number (verify such a file with --partial)")
	export.Flags().StringVar(&exportFile, "file", "", "write to this file instead of standard output")

	var vf verifyFlags
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit log's chain and checkpoints; name the first bad entry",
		Long: `Verify checks the hash chain and the signed checkpoints of the audit log and
names the first modified, deleted, inserted or reordered entry; it exits 1 when
the log was tampered with.

Without --file it verifies an export read from the cluster now; with --file it
checks an exported file offline. Checkpoint signatures are checked against the
keys in --pubkey; without it, against the keys the checkpoints name, which
proves little against someone who holds the log (a warning says so).`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.auditVerify(cmd, &vf)
		},
	}
	verify.Flags().StringVar(&vf.file, "file", "", "verify this export file offline")
	verify.Flags().StringVar(&vf.pubkey, "pubkey", "", "trusted public key(s): PEM or hex key IDs, one a line")
	verify.Flags().BoolVar(&vf.partial, "partial", false, "accept an export made with --since-seq, whose first entry is taken on trust")

	checkpoints := &cobra.Command{
		Use:   "checkpoints",
		Short: "List the signed checkpoints of the audit log",
		Args:  exactArgs(),
		RunE:  a.auditCheckpoints,
	}
	var keyOut string
	keygen := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Make an audit checkpoint signing key (audit_key_file) and print its public key",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.auditKeygen(keyOut)
		},
	}
	keygen.Flags().StringVar(&keyOut, "out", "", "file to write the private key to (mode 0600; must not exist)")
	return group("audit", "Read, export and verify the audit log", list, export, verify, checkpoints, keygen)
}

type verifyFlags struct {
	file, pubkey string
	partial      bool
}

func (a *app) auditList(cmd *cobra.Command, aq client.AuditQuery, rf *readFlags) error {
	q, err := rf.options()
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	l, _, err := c.AuditList(cmd.Context(), aq, q)
	if err != nil {
		return err
	}
	if a.json() {
		if l.Entries == nil {
			l.Entries = []audit.Entry{}
		}
		return printJSON(a.stdout, l)
	}
	tw := newTable(a.stdout)
	row(tw, "SEQ", "TIME", "TOKEN", "ROLE", "TENANT", "SOURCE", "ACTION", "OBJECT", "RESULT")
	for _, e := range l.Entries {
		row(tw, u64(e.Seq), time.Unix(0, int64(e.Time)).UTC().Format(time.RFC3339), cell(e.TokenID), cell(e.Role), cell(e.Tenant),
			cell(e.Source), cell(e.Action), cell(e.Object), cell(e.Result))
	}
	return tw.Flush()
}

func (a *app) auditExport(cmd *cobra.Command, since uint64, file string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	w := a.stdout
	if file != "" {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	n, err := c.AuditExport(cmd.Context(), since, w)
	if err != nil {
		return err
	}
	if file != "" {
		return printf(a.stderr, "Audit log written to %s (%d bytes)\n", file, n)
	}
	return nil
}

func (a *app) auditVerify(cmd *cobra.Command, vf *verifyFlags) error {
	var data []byte
	var err error
	if vf.file != "" {
		if data, err = os.ReadFile(vf.file); err != nil {
			return err
		}
	} else {
		c, err := a.client()
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if _, err := c.AuditExport(cmd.Context(), 0, &buf); err != nil {
			return err
		}
		data = buf.Bytes()
	}
	entries, cps, lines, err := audit.ReadExportLines(bytes.NewReader(data))
	if err != nil {
		return err
	}
	opt := audit.Options{Unanchored: vf.partial, Lines: lines}
	if vf.pubkey != "" {
		b, err := os.ReadFile(vf.pubkey)
		if err != nil {
			return err
		}
		if opt.Trusted, err = audit.ParsePublicKeys(b); err != nil {
			return fmt.Errorf("--pubkey %s: %w", vf.pubkey, err)
		}
	} else if len(cps) > 0 {
		fmt.Fprintln(a.stderr, "Warning: no --pubkey: checkpoint signatures are checked against the keys they name, not against keys you trust")
	}
	rep, err := audit.Verify(entries, cps, opt)
	var te *audit.TamperError
	if errors.As(err, &te) {
		if a.json() {
			_ = printJSON(a.stdout, map[string]any{"ok": false, "kind": te.Kind, "seq": te.Seq, "line": te.Line, "message": te.Error()})
		}
		return err
	}
	if err != nil {
		return err
	}
	if a.json() {
		return printJSON(a.stdout, map[string]any{"ok": true, "report": rep})
	}
	if len(cps) == 0 && len(entries) > 0 {
		fmt.Fprintln(a.stderr, "Warning: the log has no checkpoints: the chain is consistent, but nothing signed vouches for it")
	}
	return printf(a.stdout, "Audit log OK: %d entries (%d-%d) from %s, head %s, %d checkpoints verified up to entry %d\n",
		rep.Entries, rep.First, rep.Last, rep.Anchor, rep.Head, rep.Checkpoints, rep.Covered)
}

func (a *app) auditCheckpoints(cmd *cobra.Command, _ []string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	cps, err := c.AuditCheckpoints(cmd.Context())
	if err != nil {
		return err
	}
	if a.json() {
		if cps == nil {
			cps = []audit.Checkpoint{}
		}
		return printJSON(a.stdout, cps)
	}
	tw := newTable(a.stdout)
	row(tw, "SEQ", "TIME", "HASH", "KEY")
	for _, cp := range cps {
		row(tw, u64(cp.Seq), time.Unix(0, int64(cp.Time)).UTC().Format(time.RFC3339), cp.Hash[:min(16, len(cp.Hash))], cp.KeyID[:min(16, len(cp.KeyID))])
	}
	return tw.Flush()
}

func (a *app) auditKeygen(out string) error {
	if out == "" {
		return usagef("--out FILE is required")
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(audit.MarshalPrivateKey(priv)); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "Audit signing key written to %s (key ID %s); give it to every server as audit_key_file. Its public key, for verify --pubkey:\n", out, audit.KeyID(pub))
	_, err = io.Copy(a.stdout, bytes.NewReader(audit.MarshalPublicKey(pub)))
	return err
}
