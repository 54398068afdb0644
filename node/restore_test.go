package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

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
		_, err := l.SnapshotRestore(context.Background(), func() (*fsm.Archive, error) {
			close(entered)
			<-release
			return fsm.ReadArchive(bytes.NewReader(archive.Bytes()), 1<<30)
		})
		restored <- err
	}()
	<-entered
	if _, err := l.SnapshotRestore(context.Background(), nil); err == nil {
		t.Fatal("a second restore ran beside the first")
	}
	r := call(t, f, "PUT", "/v1/cluster/settings/refused", tok, map[string]string{"value": "1"}, nil)
	if r.status != http.StatusServiceUnavailable || !bytes.Contains(r.body, []byte(`"restoring"`)) {
		t.Fatalf("write during the restore: %d %s, want 503 restoring", r.status, r.body)
	}
	during := make(chan httpResult, 1)
	go func() {
		during <- call(t, f, "PUT", "/v1/cluster/settings/during", tok, map[string]string{"value": "1"}, nil)
	}()
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
	if r := <-during; r.status != http.StatusOK {
		t.Fatalf("write that waited for the restore: %d %s", r.status, r.body)
	}
	WaitForResult(t, 10*time.Second, func() error {
		for _, s := range servers {
			for key, want := range map[string]bool{"before": true, "during": true, "after-backup": false, "refused": false} {
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
}

// TestMultiNode_RestoreUploadIsFenced sends a restore through a follower
// whose upload stays open: while it lasts a second restore is 409, a write
// is not acknowledged (503 restoring after the hold timeout), and once the
// upload ends the restore goes through.
func TestMultiNode_RestoreUploadIsFenced(t *testing.T) {
	servers := TestCluster(t, 3, func(c *Config) { c.HoldTimeout = Duration(time.Second) })
	l := WaitForLeader(t, servers...)
	tok := bootstrapToken(t, l)
	var archive bytes.Buffer
	if _, err := l.SnapshotSave(context.Background(), &archive); err != nil {
		t.Fatal(err)
	}
	var f *Server
	for _, s := range servers {
		if s != l {
			f = s
			break
		}
	}

	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequest("PUT", f.URL()+"/v1/snapshot", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/octet-stream")
	restored := make(chan httpResult, 1)
	go func() {
		resp, err := clientFor(t, f).Do(req)
		if err != nil {
			restored <- httpResult{body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		restored <- httpResult{status: resp.StatusCode, body: b}
	}()
	// The first bytes reach the leader, which takes the fence to read them.
	half := archive.Len() / 2
	if _, err := pw.Write(archive.Bytes()[:half]); err != nil {
		t.Fatal(err)
	}
	WaitForResult(t, 10*time.Second, func() error {
		if l.restoring.Load() == nil {
			return fmt.Errorf("the leader holds no restore yet")
		}
		return nil
	})
	if r := call(t, l, "PUT", "/v1/snapshot", tok, nil, map[string]string{"Content-Type": "application/octet-stream"}); r.status != http.StatusConflict {
		t.Fatalf("a second restore during the upload: %d %s, want 409", r.status, r.body)
	}
	if r := put(t, f, tok, "during-upload", "1"); r.status != http.StatusServiceUnavailable || !bytes.Contains(r.body, []byte(`"restoring"`)) {
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
