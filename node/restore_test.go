package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
)

// TestMultiNode_RestoreFencesWrites: while a restore runs, from the
// verification of its archive until the state is replaced, writes wait
// for it; one that waits longer than the hold timeout is refused with 503
// restoring (nothing proposed), one that waits less lands in the restored
// state. No write is acknowledged during the restore and then lost to it.
func TestMultiNode_RestoreFencesWrites(t *testing.T) {
	servers := TestCluster(t, 3, func(c *Config) { c.HoldTimeout = Duration(time.Second) })
	l := WaitForLeader(t, servers...)
	tok := bootstrapToken(t, l)
	archive := backupBetween(t, l, tok)
	// A zone after the backup moves the SOA serials (the DNS index) on;
	// the restore takes the zone away but not the serials back.
	if r := call(t, l, "POST", "/v1/dns/zones", tok, map[string]string{"name": "after.test"}, nil); r.status != http.StatusCreated {
		t.Fatalf("zone: %d %s", r.status, r.body)
	}
	d, err := l.State().DNS(nil)
	if err != nil {
		t.Fatal(err)
	}
	serial := d.Index
	var f *Server
	for _, s := range servers {
		if s != l {
			f = s
			break
		}
	}

	entered, release := make(chan struct{}), make(chan struct{})
	restored := make(chan error, 1)
	go func() {
		meta := fsm.WriteMeta{Actor: "restorer", Audit: &fsm.AuditInfo{Action: "PUT /v1/snapshot", Object: "/v1/snapshot"}}
		_, err := l.SnapshotRestore(context.Background(), meta, func() (*fsm.Archive, error) {
			close(entered)
			<-release
			return fsm.ReadArchive(bytes.NewReader(archive.Bytes()), 1<<30)
		})
		restored <- err
	}()
	<-entered
	if _, err := l.SnapshotRestore(context.Background(), fsm.WriteMeta{}, nil); err == nil {
		t.Fatal("a second restore ran beside the first")
	}
	r := call(t, f, "PUT", "/v1/cluster/settings/refused", tok, map[string]string{"value": "1"}, nil)
	if r.status != http.StatusServiceUnavailable || !bytes.Contains(r.body, []byte(`"restoring"`)) {
		t.Fatalf("write during the restore: %d %s, want 503 restoring", r.status, r.body)
	}
	// Writes wait for it, through a follower and the leader.
	const waiting = 8
	during := make(chan httpResult, waiting)
	for i := range waiting {
		go func() {
			during <- call(t, []*Server{f, l}[i%2], "PUT", fmt.Sprintf("/v1/cluster/settings/during-%d", i), tok, map[string]string{"value": "1"}, nil)
		}()
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case r := <-during:
		t.Fatalf("a write was answered while the restore ran: %d %s", r.status, r.body)
	default:
	}
	close(release)
	if err := <-restored; err != nil {
		t.Fatalf("restore: %v", err)
	}
	for range waiting {
		if r := <-during; r.status != http.StatusOK {
			t.Fatalf("write that waited for the restore: %d %s", r.status, r.body)
		}
	}
	WaitForResult(t, 10*time.Second, func() error {
		for _, s := range servers {
			for key, want := range map[string]bool{"before": true, "during-0": true, "during-7": true, "after-backup": false, "refused": false} {
				_, set, err := s.State().Setting(nil, key)
				if err != nil {
					return err
				}
				if (set != nil) != want {
					return fmt.Errorf("%s: setting %s present %v, want %v", s.ID(), key, set != nil, want)
				}
			}
			d, err := s.State().DNS(nil)
			if err != nil {
				return err
			}
			if len(d.Zones) != 0 || d.Index <= serial {
				return fmt.Errorf("%s: zones %v at DNS index %d, want none at an index above %d", s.ID(), d.Zones, d.Index, serial)
			}
		}
		return nil
	})
	// The audit log records the restore first after the restored state,
	// then the writes that waited for it.
	_, entries, err := l.State().AuditEntries(nil, fsm.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	var restoredAt time.Time
	for _, e := range entries {
		if e.Action == "PUT /v1/snapshot" {
			restoredAt = time.Unix(0, int64(e.Time))
		}
		if e.Action == "PUT /v1/snapshot" || strings.HasPrefix(e.Object, "/v1/cluster/settings/during-") {
			order = append(order, e.Object)
			if at := time.Unix(0, int64(e.Time)); at.Before(restoredAt) {
				t.Errorf("%s at %v, before the restore it waited for (%v)", e.Object, at, restoredAt)
			}
		}
	}
	if len(order) != waiting+1 || order[0] != "/v1/snapshot" {
		t.Fatalf("audit entries after the restore %q, want the restore first and %d writes", order, waiting)
	}
}

// TestMultiNode_RestoreUploadIsFenced sends a restore through a follower
// whose upload stays open: while it lasts a second restore is 409, a write
// is not acknowledged (503 restoring after the hold timeout), and once the
// upload ends the restore goes through.
func TestMultiNode_RestoreUploadIsFenced(t *testing.T) {
	servers, l, tok, archive := restoreCluster(t)
	var f *Server
	for _, s := range servers {
		if s != l {
			f = s
			break
		}
	}

	pw, restored := uploadRestore(t, f, tok)
	defer pw.Close()
	// The first bytes reach the leader, which takes the fence to read them.
	half := archive.Len() / 2
	if _, err := pw.Write(archive.Bytes()[:half]); err != nil {
		t.Fatal(err)
	}
	waitRestoring(t, l, true)
	start := time.Now()
	if r := call(t, l, "PUT", "/v1/snapshot", tok, nil, map[string]string{"Content-Type": "application/octet-stream"}); r.status != http.StatusConflict {
		t.Fatalf("a second restore during the upload: %d %s, want 409", r.status, r.body)
	}
	// At once: its audit record does not wait for the fence.
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("the second restore was refused after %s", d)
	}
	if _, _, err := l.Apply(context.Background(), &fsm.AuditRecordRequest{Result: "conflict"}); !errors.Is(err, api.ErrRestoring) {
		t.Errorf("an audit record during the upload: %v, want %v at once", err, api.ErrRestoring)
	}
	// Once, to the leader: a follower would ask again within its own hold
	// timeout, by when this test's idle upload (2 s) is abandoned.
	if r := call(t, l, "PUT", "/v1/cluster/settings/during-upload", tok, map[string]string{"value": "1"}, nil); r.status != http.StatusServiceUnavailable || !bytes.Contains(r.body, []byte(`"restoring"`)) {
		t.Fatalf("a write during the upload: %d %s, want 503 restoring", r.status, r.body)
	}
	if _, err := pw.Write(archive.Bytes()[half:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if r := <-restored; r.status != http.StatusOK {
		t.Fatalf("restore: %d %s", r.status, r.body)
	}
	if r := put(t, f, tok, "after", "1"); r.status != http.StatusOK {
		t.Fatalf("a write after the restore: %d %s", r.status, r.body)
	}
}

// backupBetween writes the setting "before", saves a backup through l
// and writes "after-backup", which a restore of the backup takes away.
func backupBetween(t *testing.T, l *Server, tok string) *bytes.Buffer {
	t.Helper()
	if r := put(t, l, tok, "before", "1"); r.status != http.StatusOK {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	var archive bytes.Buffer
	if _, err := l.SnapshotSave(context.Background(), &archive); err != nil {
		t.Fatal(err)
	}
	if r := put(t, l, tok, "after-backup", "1"); r.status != http.StatusOK {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	return &archive
}

// restoreCluster starts three servers with a hold timeout of 1 s and
// returns them, the leader, an admin token and a backup of the state.
func restoreCluster(t *testing.T) ([]*Server, *Server, string, *bytes.Buffer) {
	t.Helper()
	servers := TestCluster(t, 3, func(c *Config) { c.HoldTimeout = Duration(time.Second) })
	l := WaitForLeader(t, servers...)
	tok := bootstrapToken(t, l)
	var archive bytes.Buffer
	if _, err := l.SnapshotSave(context.Background(), &archive); err != nil {
		t.Fatal(err)
	}
	return servers, l, tok, &archive
}

// uploadRestore starts PUT /v1/snapshot on s with a body the caller writes
// to pw; the answer comes on the channel.
func uploadRestore(t *testing.T, s *Server, tok string) (*io.PipeWriter, <-chan httpResult) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest("PUT", s.URL()+"/v1/snapshot", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/octet-stream")
	restored := make(chan httpResult, 1)
	go func() {
		resp, err := clientFor(t, s).Do(req)
		if err != nil {
			restored <- httpResult{body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		restored <- httpResult{status: resp.StatusCode, body: b}
	}()
	return pw, restored
}

// waitRestoring waits until s holds a restore, or holds none.
func waitRestoring(t *testing.T, s *Server, held bool) {
	t.Helper()
	WaitForResult(t, 10*time.Second, func() error {
		if (s.restoring.Load() != nil) != held {
			return fmt.Errorf("%s holds a restore: %v, want %v", s.ID(), !held, held)
		}
		return nil
	})
}

// TestMultiNode_RestoreUploadStallsOrLeadershipMoves: an upload that sends
// nothing is abandoned and releases the fence; one during which the leader
// stopped leading and led again restores nothing, and the writes the other
// leader took meanwhile stay.
func TestMultiNode_RestoreUploadStallsOrLeadershipMoves(t *testing.T) {
	servers, l, tok, archive := restoreCluster(t)
	half := archive.Len() / 2

	// Stalled: abandoned after twice the hold timeout.
	pw, restored := uploadRestore(t, l, tok)
	if _, err := pw.Write(archive.Bytes()[:half]); err != nil {
		t.Fatal(err)
	}
	waitRestoring(t, l, true)
	waitRestoring(t, l, false)
	if r := <-restored; r.status != http.StatusBadRequest || !bytes.Contains(r.body, []byte("sent nothing for 2s")) {
		t.Fatalf("a stalled upload: %d %s, want 400", r.status, r.body)
	}
	pw.Close()
	if r := put(t, l, tok, "after-stall", "1"); r.status != http.StatusOK {
		t.Fatalf("a write after the stalled upload: %d %s", r.status, r.body)
	}

	// The leadership moves away and back while the upload runs. (It may
	// have moved already on a loaded machine: 50 ms timers.)
	l = WaitForLeader(t, servers...)
	pw, restored = uploadRestore(t, l, tok)
	defer pw.Close()
	if _, err := pw.Write(archive.Bytes()[:half]); err != nil {
		t.Fatal(err)
	}
	waitRestoring(t, l, true)
	if err := l.raft.LeadershipTransfer().Error(); err != nil {
		t.Fatal(err)
	}
	other := WaitForLeader(t, servers...)
	if other == l {
		t.Fatal("the leadership did not move")
	}
	if r := put(t, other, tok, "meanwhile", "1"); r.status != http.StatusOK {
		t.Fatalf("a write to the other leader: %d %s", r.status, r.body)
	}
	if err := other.raft.LeadershipTransferToServer(raft.ServerID(l.ID()), raft.ServerAddress(l.RaftAddress())).Error(); err != nil {
		t.Fatal(err)
	}
	WaitForResult(t, 10*time.Second, func() error {
		if !l.IsLeader() {
			return fmt.Errorf("%s does not lead again", l.ID())
		}
		return nil
	})
	if _, err := pw.Write(archive.Bytes()[half:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if r := <-restored; r.status != http.StatusServiceUnavailable || !bytes.Contains(r.body, []byte("stopped leading while the snapshot was uploading")) {
		t.Fatalf("an upload across a leadership change: %d %s, want 503", r.status, r.body)
	}
	WaitForResult(t, 10*time.Second, func() error {
		for _, s := range servers {
			if _, set, err := s.State().Setting(nil, "meanwhile"); err != nil || set == nil {
				return fmt.Errorf("%s: the write taken meanwhile is gone (%v)", s.ID(), err)
			}
		}
		return nil
	})
}

// TestMultiNode_RestoreOnTheLeaderAloneHalts: a restore reaches the
// leader's state before any other server has it (raft installs it there
// first). Cut off at that moment, the leader keeps the restored state
// while the others elect a leader that goes on with theirs. Restarted over
// its data, the old leader halts at the new leader's lineage check rather
// than apply the cluster's writes to its other state, where allocations
// would give other answers (the same address to two owners).
func TestMultiNode_RestoreOnTheLeaderAloneHalts(t *testing.T) {
	// ahead is how far the backup's index lies beyond the cluster's log:
	// 0 for a backup of this cluster; a backup of another, older cluster
	// restored into a new one lies far beyond, and the server left with it
	// skips the cluster's entries up to there, the first lineage check
	// of the new leader's term among them, and meets a later one.
	for _, c := range []struct {
		name  string
		ahead uint64
	}{{"backup of this cluster", 0}, {"backup beyond the log", 200}} {
		t.Run(c.name, func(t *testing.T) { testRestoreOnTheLeaderAlone(t, c.ahead) })
	}
}

func testRestoreOnTheLeaderAlone(t *testing.T, ahead uint64) {
	servers := TestCluster(t, 3, func(c *Config) {
		// Long enough for the cut-off leader to install the snapshot
		// before it steps down.
		c.Raft.HeartbeatTimeout = Duration(400 * time.Millisecond)
		c.Raft.ElectionTimeout = Duration(400 * time.Millisecond)
		c.Raft.LeaderLeaseTimeout = Duration(400 * time.Millisecond)
	})
	l := WaitForLeader(t, servers...)
	tok := bootstrapToken(t, l)
	archive := backupBetween(t, l, tok)
	var others []*Server
	for _, s := range servers {
		if s != l {
			others = append(others, s)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := l.SnapshotRestore(ctx, fsm.WriteMeta{Actor: "restorer"}, func() (*fsm.Archive, error) {
		l.Isolate(true) // the upload is in: the leader is cut off now
		a, err := fsm.ReadArchive(bytes.NewReader(archive.Bytes()), 1<<30)
		if err == nil {
			a.Meta.Index += ahead
		}
		return a, err
	})
	if err == nil {
		t.Fatal("a restore committed on a cut-off leader")
	}
	lineage := l.State().Lineage()
	if lineage == 0 {
		t.Fatalf("the restore did not reach the cut-off leader's state (%v): nothing to test", err)
	}
	n := WaitForLeader(t, others...)
	if r := put(t, n, tok, "after-cut", "1"); r.status != http.StatusOK {
		t.Fatalf("put on the new leader: %d %s", r.status, r.body)
	}
	// Restarted over its data, as its supervisor would, as if it had
	// crashed before the entry raft writes after a restore reached its
	// disk. (With that entry, of the old term, in its log after the
	// snapshot's gap, it rejects the new leader's entries for ever.)
	cfg := l.Config()
	if err := l.Shutdown(false); err != nil {
		t.Fatal(err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft", "raft.db")})
	if err != nil {
		t.Fatal(err)
	}
	if last, err := store.LastIndex(); err != nil || last <= lineage {
		t.Fatalf("the old leader's log ends at %d (%v), not after the restore at %d", last, err, lineage)
	} else if err := store.DeleteRange(lineage+1, last); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	halted := make(chan string, 1)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r, err := New(cfg, Options{Logger: logger, OnHalt: func(reason string) {
		halted <- reason
		runtime.Goexit() // the applying goroutine stops here, as a panic would stop the process
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(false) })
	// The cluster's log passes the restore's index.
	for i := 0; n.LastIndex() <= lineage; i++ {
		if r := put(t, n, tok, fmt.Sprintf("filler-%d", i), "1"); r.status != http.StatusOK {
			t.Fatalf("put on the new leader: %d %s", r.status, r.body)
		}
	}
	select {
	case reason := <-halted:
		if !strings.Contains(reason, fsm.ErrLineage.Error()) || !strings.Contains(reason, fmt.Sprintf("this server's from the restore at index %d", lineage)) {
			t.Errorf("halted: %s", reason)
		}
	case <-time.After(30 * time.Second):
		_, cut, _ := r.State().Setting(nil, "after-cut")
		_, backup, _ := r.State().Setting(nil, "after-backup")
		t.Fatalf("the old leader did not halt on the new leader's lineage check (it holds the new leader's write: %v, on the restored state: %v)", cut != nil, backup == nil)
	}
	// It applied nothing of the cluster's to its restored state (but,
	// beyond the log, what came between the restore's index and the next
	// check: at most lineageInterval of writes).
	if _, set, _ := r.State().Setting(nil, "after-cut"); set != nil {
		t.Fatal("the old leader applied the new leader's write to its restored state")
	}
	// The others go on without it.
	if r := put(t, n, tok, "later", "1"); r.status != http.StatusOK {
		t.Fatalf("put after the halt: %d %s", r.status, r.body)
	}
	for _, s := range others {
		if s.State().Lineage() != 0 {
			t.Errorf("%s: lineage %d, want the state from before the restore", s.ID(), s.State().Lineage())
		}
	}
}
