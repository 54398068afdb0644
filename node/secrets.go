package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/secrets"
)

// The secrets store: values are sealed here, on the leader, before they
// are proposed, so the log, the state and every snapshot hold only
// ciphertexts; the data keys are stored wrapped under the key-encryption
// key (KEK) that each server loads from secrets.kek_file or the
// MOXXIE_SECRETS_KEK variable. Nothing here logs a value: only names and
// key IDs.

// rewrapRetry is how long the leader waits before retrying a re-wrap that
// failed (for example while a new leader settles).
const rewrapRetry = 5 * time.Second

// secretKeys holds this server's key-encryption keys.
type secretKeys struct {
	lookupEnv func(string) (string, bool)
	logger    *slog.Logger

	mu       sync.RWMutex
	current  *secrets.Key   // guarded by mu; nil without a KEK
	previous []*secrets.Key // guarded by mu
	source   string         // guarded by mu; where current came from, for logs

	// kick wakes the leader's re-wrap loop after a reload.
	kick chan struct{}
	// sealMu serializes making data keys on the leader, so concurrent
	// first writes share one key.
	sealMu sync.Mutex
}

// loadSecretKeys loads the KEK named by cfg (or the environment) and the
// previous ones of a rotation. Without any it logs that the secrets store
// is off; a named file that cannot be used is an error.
func loadSecretKeys(cfg SecretsConfig, lookupEnv func(string) (string, bool), logger *slog.Logger) (*secretKeys, error) {
	k := &secretKeys{lookupEnv: lookupEnv, logger: logger, kick: make(chan struct{}, 1)}
	if err := k.load(cfg); err != nil {
		return nil, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.current == nil {
		logger.Warn("secrets: no key-encryption key configured (secrets.kek_file or " + secrets.EnvKEK + "): the secrets API answers 503 and secret:NAME references in the configuration cannot be resolved")
	} else {
		logger.Info("secrets: key-encryption key loaded", "kek_id", k.current.ID(), "source", k.source, "previous", len(k.previous))
	}
	return k, nil
}

// load reads the keys of cfg and replaces the loaded ones; on error the
// loaded keys stay.
func (k *secretKeys) load(cfg SecretsConfig) error {
	var cur *secrets.Key
	var prev []*secrets.Key
	source := ""
	var err error
	switch {
	case cfg.KEKFile != "":
		if cur, err = secrets.LoadKeyFile(cfg.KEKFile); err != nil {
			return fmt.Errorf("config: secrets.kek_file: %w", err)
		}
		source = cfg.KEKFile
	default:
		if cur, err = secrets.KeyFromEnv(k.lookupEnv); err != nil {
			return fmt.Errorf("secrets: %w", err)
		}
		source = secrets.EnvKEK
	}
	for i, f := range cfg.PreviousKEKFiles {
		p, err := secrets.LoadKeyFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			// A previous key is only needed during a rotation: the
			// configuration may name the file for good.
			k.logger.Info("secrets: previous key-encryption key file absent; skipped", "file", f)
			continue
		}
		if err != nil {
			return fmt.Errorf("config: secrets.previous_kek_files[%d]: %w", i, err)
		}
		prev = append(prev, p)
	}
	k.mu.Lock()
	k.current, k.previous, k.source = cur, prev, source
	k.mu.Unlock()
	return nil
}

// kek returns the current KEK, or nil.
func (k *secretKeys) kek() *secrets.Key {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}

// byID returns the loaded KEK (current or previous) with id, or nil.
func (k *secretKeys) byID(id string) *secrets.Key {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.current != nil && k.current.ID() == id {
		return k.current
	}
	for _, p := range k.previous {
		if p.ID() == id {
			return p
		}
	}
	return nil
}

// ReloadSecretKeys loads the key-encryption keys sc names in place of
// the loaded ones (on a configuration reload); on error the loaded keys
// stay. A leader that now has a new KEK re-wraps every data key under it.
func (s *Server) ReloadSecretKeys(sc SecretsConfig) error {
	if err := sc.validate(s.cfg.DataDir); err != nil {
		return err
	}
	if err := s.secrets.load(sc); err != nil {
		return err
	}
	if cur := s.secrets.kek(); cur != nil {
		s.logger.Info("secrets: key-encryption keys reloaded", "kek_id", cur.ID())
	}
	select {
	case s.secrets.kick <- struct{}{}:
	default:
	}
	return nil
}

// dataKey unwraps a stored data key with whichever loaded KEK wrapped it.
func (s *Server) dataKey(k *fsm.SecretKey) (*secrets.Key, error) {
	if s.secrets.kek() == nil {
		return nil, api.ErrNoKEK
	}
	kek := s.secrets.byID(k.KEKID)
	if kek == nil {
		return nil, fmt.Errorf("data key %s is wrapped by key-encryption key %s, which this server does not have (add its file to secrets.previous_kek_files): %w", k.ID, k.KEKID, api.ErrNoKEK)
	}
	dek, err := secrets.Unwrap(kek, k.Wrapped, k.ID)
	if err != nil {
		return nil, fmt.Errorf("secrets: data key %s: %w", k.ID, err)
	}
	return dek, nil
}

// Secret returns the value of the named secret, decrypted from this
// server's copy of the state, for internal consumers such as the
// platform provider. It never leaves the process.
func (s *Server) Secret(name string) (string, error) {
	if s.secrets.kek() == nil {
		return "", api.ErrNoKEK
	}
	st := s.State()
	_, sec, err := st.Secret(nil, name)
	if err != nil {
		return "", err
	}
	if sec == nil {
		return "", fmt.Errorf("secret %q: %w", name, fsm.ErrNotFound)
	}
	_, key, err := st.SecretKey(nil, sec.DEKID)
	if err != nil {
		return "", err
	}
	if key == nil {
		return "", fmt.Errorf("secret %q: data key %s: %w", name, sec.DEKID, fsm.ErrNotFound)
	}
	dek, err := s.dataKey(key)
	if err != nil {
		return "", fmt.Errorf("secret %q: %w", name, err)
	}
	v, err := secrets.Open(dek, name, sec.Ciphertext, sec.Nonce)
	if err != nil {
		return "", fmt.Errorf("secret %q: %w", name, err)
	}
	return string(v), nil
}

// SealSecret encrypts value for the secret called name under the current
// data key. Before the first secret there is none: it makes one, wraps it
// under the KEK and stores it first (stamped with meta), holding a lock so
// that concurrent first writes share one key. Leader only.
func (s *Server) SealSecret(ctx context.Context, meta fsm.WriteMeta, name, value string) (fsm.Secret, error) {
	if !s.IsLeader() {
		return fsm.Secret{}, api.ErrNotLeader
	}
	kek := s.secrets.kek()
	if kek == nil {
		return fsm.Secret{}, api.ErrNoKEK
	}
	s.secrets.sealMu.Lock()
	defer s.secrets.sealMu.Unlock()
	cur, err := s.State().CurrentSecretKey()
	if err != nil {
		return fsm.Secret{}, err
	}
	var dek *secrets.Key
	var dekID string
	if cur == nil {
		wrap, k, err := s.newDataKey(kek)
		if err != nil {
			return fsm.Secret{}, err
		}
		wrap.WriteMeta = meta
		if _, err := s.applyCommand(ctx, wrap); err != nil {
			return fsm.Secret{}, err
		}
		dek, dekID = k, wrap.Key.ID
		s.logger.Info("secrets: new data key", "dek_id", dekID, "kek_id", kek.ID())
	} else {
		if dek, err = s.dataKey(cur); err != nil {
			return fsm.Secret{}, err
		}
		dekID = cur.ID
	}
	ct, nonce, err := secrets.Seal(dek, name, []byte(value))
	if err != nil {
		return fsm.Secret{}, err
	}
	return fsm.Secret{Name: name, Ciphertext: ct, Nonce: nonce, DEKID: dekID}, nil
}

// newDataKey makes a data key and the command that stores it wrapped
// under kek.
func (s *Server) newDataKey(kek *secrets.Key) (*fsm.SecretKeyWrapRequest, *secrets.Key, error) {
	dek, id, err := secrets.NewDataKey()
	if err != nil {
		return nil, nil, err
	}
	w, err := secrets.Wrap(kek, dek, id)
	if err != nil {
		return nil, nil, err
	}
	meta := fsm.WriteMeta{Now: s.now().UnixNano(), Actor: "server:" + s.cfg.NodeID}
	return &fsm.SecretKeyWrapRequest{WriteMeta: meta, Key: fsm.SecretKey{ID: id, KEKID: kek.ID(), Wrapped: w}}, dek, nil
}

// applyCommand applies cmd and returns the FSM's value, or its error.
func (s *Server) applyCommand(ctx context.Context, cmd fsm.Command) (any, error) {
	res, _, err := s.Apply(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return res.Value, res.Err
}

// RotateSecrets makes a new data key and re-encrypts every secret under
// it; the old data key goes with its last ciphertext. A secret written
// meanwhile under the old key is skipped (and counted): the next rotation
// takes it. Leader only.
func (s *Server) RotateSecrets(ctx context.Context, meta fsm.WriteMeta) (*api.SecretRotation, error) {
	if !s.IsLeader() {
		return nil, api.ErrNotLeader
	}
	kek := s.secrets.kek()
	if kek == nil {
		return nil, api.ErrNoKEK
	}
	s.secrets.sealMu.Lock()
	wrap, dek, err := s.newDataKey(kek)
	if err == nil {
		wrap.WriteMeta = meta
		_, err = s.applyCommand(ctx, wrap)
	}
	s.secrets.sealMu.Unlock()
	if err != nil {
		return nil, err
	}
	out := &api.SecretRotation{DEKID: wrap.Key.ID}
	st := s.State()
	_, list, err := st.Secrets(nil)
	if err != nil {
		return nil, err
	}
	for _, sec := range list {
		if sec.DEKID == out.DEKID {
			continue
		}
		v, err := s.Secret(sec.Name)
		if err != nil {
			return out, err
		}
		ct, nonce, err := secrets.Seal(dek, sec.Name, []byte(v))
		if err != nil {
			return out, err
		}
		put := &fsm.SecretPutRequest{
			WriteMeta: fsm.WriteMeta{Now: s.now().UnixNano(), Actor: meta.Actor, RequestID: meta.RequestID},
			Secret:    fsm.Secret{Name: sec.Name, Ciphertext: ct, Nonce: nonce, DEKID: out.DEKID, Description: sec.Description},
			IfVersion: sec.Version, Reencrypt: true,
		}
		switch _, err := s.applyCommand(ctx, put); {
		case errors.Is(err, fsm.ErrConflict), errors.Is(err, fsm.ErrNotFound):
			out.Skipped++
		case err != nil:
			return out, err
		default:
			out.Reencrypted++
		}
	}
	s.logger.Info("secrets: data key rotated", "dek_id", out.DEKID, "reencrypted", out.Reencrypted, "skipped", out.Skipped)
	return out, nil
}

// runSecretRewrap is a leader loop: whenever a data key is wrapped by a
// KEK other than the current one, and that KEK is among the previous keys,
// it re-wraps the data key under the current KEK. That is how a KEK
// rotation completes without downtime.
func (s *Server) runSecretRewrap(stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	warned := map[string]bool{}
	for {
		st := s.State()
		ws := memdb.NewWatchSet()
		ws.Add(st.AbandonCh())
		_, keys, err := st.SecretKeys(ws)
		retry := false
		if err != nil {
			s.logger.Warn("secrets: reading data keys failed", "error", err)
			retry = true
		} else if !s.rewrap(ctx, keys, warned) {
			retry = true
		}
		var after <-chan time.Time
		if retry {
			after = time.After(rewrapRetry)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.secrets.kick:
		case <-ws.WatchCh(ctx):
		case <-after:
		}
	}
}

// rewrap re-wraps the keys not wrapped by the current KEK; it returns
// false when one failed and should be retried.
func (s *Server) rewrap(ctx context.Context, keys []*fsm.SecretKey, warned map[string]bool) bool {
	cur := s.secrets.kek()
	if cur == nil {
		return true
	}
	ok := true
	for _, k := range keys {
		if k.KEKID == cur.ID() {
			continue
		}
		dek, err := s.dataKey(k)
		if err != nil {
			if !warned[k.ID+"/"+k.KEKID] {
				warned[k.ID+"/"+k.KEKID] = true
				s.logger.Error("secrets: cannot re-wrap data key", "dek_id", k.ID, "error", err)
			}
			continue
		}
		w, err := secrets.Wrap(cur, dek, k.ID)
		if err != nil {
			s.logger.Warn("secrets: re-wrapping data key failed", "dek_id", k.ID, "error", err)
			ok = false
			continue
		}
		cmd := &fsm.SecretKeyWrapRequest{
			WriteMeta: fsm.WriteMeta{Now: s.now().UnixNano(), Actor: "server:" + s.cfg.NodeID},
			Key:       fsm.SecretKey{ID: k.ID, KEKID: cur.ID(), Wrapped: w}, PrevKEKID: k.KEKID,
		}
		actx, cancel := context.WithTimeout(ctx, defaultApplyTimeout)
		_, err = s.applyCommand(actx, cmd)
		cancel()
		switch {
		case errors.Is(err, fsm.ErrConflict), errors.Is(err, fsm.ErrNotFound):
			// Re-wrapped or dropped meanwhile; the watch shows the new state.
		case err != nil:
			if ctx.Err() == nil {
				s.logger.Warn("secrets: storing re-wrapped data key failed", "dek_id", k.ID, "error", err)
			}
			ok = false
		default:
			s.logger.Info("secrets: data key re-wrapped under the current key-encryption key", "dek_id", k.ID, "from_kek", k.KEKID, "to_kek", cur.ID())
		}
	}
	return ok
}
