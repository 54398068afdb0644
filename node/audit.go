package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/moxxie/moxxie/audit"
	"github.com/moxxie/moxxie/fsm"
)

// The audit log's upkeep on the leader: it signs a checkpoint of the
// chain's head every auditCheckpointEvery entries or auditCheckpointAge,
// whichever comes first, with the key in audit_key_file (signing happens
// here, never in Apply), and drops the entries older than the
// audit.retention setting up to a checkpoint, so the rest stays
// verifiable from it. Without a key there are no checkpoints and nothing
// is dropped: retention needs a checkpoint to cut at.

// Checkpoint and retention cadence.
const (
	auditCheckpointEvery = 1000
	auditCheckpointAge   = 10 * time.Minute
	auditTick            = 15 * time.Second
)

// ErrNoAuditKey means the server has no audit_key_file.
var ErrNoAuditKey = errors.New("no audit signing key (audit_key_file)")

// LoadAuditKey reads an audit signing key file, which must not be
// readable by the group or others.
func LoadAuditKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("audit_key_file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("audit_key_file: %s has mode %04o; it must not be readable by the group or others (chmod 600)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit_key_file: %w", err)
	}
	k, err := audit.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("audit_key_file: %s: %w", path, err)
	}
	return k, nil
}

// WriteAuditKey makes a new signing key in path (mode 0600); it fails
// with os.ErrExist when the file exists.
func WriteAuditKey(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(audit.MarshalPrivateKey(priv)); err != nil {
		f.Close()
		return nil, err
	}
	return pub, f.Close()
}

// auditKey returns the configured signing key, or ErrNoAuditKey.
func (s *Server) auditKey() (ed25519.PrivateKey, error) {
	if s.cfg.AuditKeyFile == "" {
		return nil, ErrNoAuditKey
	}
	return LoadAuditKey(s.cfg.AuditKeyFile)
}

// SignAuditHead signs a checkpoint of head at the leader's time without
// storing it; an export ends with one so that its tail is covered too.
func (s *Server) SignAuditHead(head audit.Head) (*audit.Checkpoint, error) {
	key, err := s.auditKey()
	if err != nil {
		return nil, err
	}
	cp := audit.Sign(key, head, s.now().UnixNano())
	return &cp, nil
}

// AuditCheckpoint signs the head of the audit log and stores the
// checkpoint; it returns nil when the head has one already. Leader only.
func (s *Server) AuditCheckpoint() (*audit.Checkpoint, error) {
	key, err := s.auditKey()
	if err != nil {
		return nil, err
	}
	return s.auditCheckpoint(key)
}

func (s *Server) auditCheckpoint(key ed25519.PrivateKey) (*audit.Checkpoint, error) {
	st := s.State()
	head, err := st.AuditHead()
	if err != nil || head.Seq == 0 {
		return nil, err
	}
	if last, err := lastCheckpoint(st); err != nil || (last != nil && last.Seq >= head.Seq) {
		return nil, err
	}
	cp := audit.Sign(key, head, s.now().UnixNano())
	if _, err := s.raftApply(&fsm.AuditCheckpointRequest{WriteMeta: fsm.WriteMeta{Now: int64(cp.Time)}, Checkpoint: cp}); err != nil {
		return nil, fmt.Errorf("audit checkpoint %d: %w", cp.Seq, err)
	}
	return &cp, nil
}

func lastCheckpoint(st *fsm.Store) (*audit.Checkpoint, error) {
	_, cps, err := st.AuditCheckpoints(nil)
	if err != nil || len(cps) == 0 {
		return nil, err
	}
	return cps[len(cps)-1], nil
}

// auditCheckpointDue reports whether the head is due for a checkpoint.
func (s *Server) auditCheckpointDue() bool {
	st := s.State()
	head, err := st.AuditHead()
	if err != nil || head.Seq == 0 {
		return false
	}
	last, err := lastCheckpoint(st)
	if err != nil {
		return false
	}
	if last == nil {
		return true
	}
	return head.Seq > last.Seq && (head.Seq-last.Seq >= auditCheckpointEvery || s.now().Sub(time.Unix(0, int64(last.Time))) >= auditCheckpointAge)
}

// AuditRetain drops the audit entries older than the audit.retention
// setting, up to the newest checkpoint older than that. It returns the
// number of entries dropped. Leader only.
func (s *Server) AuditRetain() (int, error) {
	st := s.State()
	retention := fsm.DefaultAuditRetention
	if _, set, err := st.Setting(nil, fsm.AuditRetentionKey); err != nil {
		return 0, err
	} else if set != nil {
		if retention, err = fsm.ParseAuditRetention(set.Value); err != nil {
			return 0, err
		}
	}
	if retention == 0 {
		return 0, nil
	}
	cutoff := s.now().Add(-retention).UnixNano()
	_, cps, err := st.AuditCheckpoints(nil)
	if err != nil {
		return 0, err
	}
	_, first, err := st.AuditEntries(nil, fsm.AuditFilter{Limit: 1})
	if err != nil || len(first) == 0 {
		return 0, err
	}
	var cut *audit.Checkpoint
	for _, c := range cps {
		if int64(c.Time) < cutoff && c.Seq >= first[0].Seq {
			cut = c
		}
	}
	if cut == nil {
		return 0, nil
	}
	res, err := s.raftApply(&fsm.AuditTruncateRequest{WriteMeta: fsm.WriteMeta{Now: s.now().UnixNano()}, Before: cut.Seq + 1})
	if err != nil {
		return 0, err
	}
	n, _ := res.(map[string]int)
	return n["deleted"], nil
}

// runAudit is the leader loop of checkpoints and retention.
func (s *Server) runAudit(stop chan struct{}) {
	key, err := s.auditKey()
	if err != nil {
		if errors.Is(err, ErrNoAuditKey) {
			s.logger.Warn("audit: no audit_key_file: the audit log gets no signed checkpoints and retention keeps every entry")
		} else {
			s.logger.Error("audit: cannot load the checkpoint key; no checkpoints are made", "error", err)
		}
		return
	}
	s.logger.Info("audit: signing checkpoints", "key_id", audit.KeyID(key.Public().(ed25519.PublicKey)))
	t := time.NewTicker(auditTick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if s.auditCheckpointDue() {
			if _, err := s.auditCheckpoint(key); err != nil {
				s.logger.Warn("audit: checkpoint failed", "error", err)
			}
		}
		if n, err := s.AuditRetain(); err != nil {
			s.logger.Warn("audit: retention failed", "error", err)
		} else if n > 0 {
			s.logger.Info("audit: entries past retention dropped", "entries", n)
		}
	}
}
