package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"

	"github.com/moxxie/moxxie/fsm"
)

func dump(t *testing.T, ts *testServer) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := ts.b.State().Dump(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSnapshot_RoundTrip(t *testing.T) {
	ts := newLeader(t)
	for _, k := range []string{"a", "b", "c"} {
		wantStatus(t, ts.do("PUT", "/v1/cluster/settings/"+k, `{"value":"`+k+`"}`), 200)
	}
	saved := dump(t, ts)
	savedSettings := ts.body("/v1/cluster/settings")
	rec := ts.do("GET", "/v1/snapshot", "")
	archive := wantStatus(t, rec, 200)
	if ct := rec.Header().Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	sum := sha256.Sum256(archive)
	if rec.Header().Get("X-Moxxie-Snapshot-SHA256") != hex.EncodeToString(sum[:]) {
		t.Errorf("sha header %q", rec.Header().Get("X-Moxxie-Snapshot-SHA256"))
	}
	if rec.Header().Get("Content-Length") != strconv.Itoa(len(archive)) {
		t.Errorf("Content-Length %q for %d bytes", rec.Header().Get("Content-Length"), len(archive))
	}
	a, err := fsm.ReadArchive(bytes.NewReader(archive), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Header().Get("X-Moxxie-Index") != strconv.FormatUint(a.Meta.Index, 10) || a.Meta.Index != ts.b.State().LatestIndex() {
		t.Errorf("index header %q, archive %d", rec.Header().Get("X-Moxxie-Index"), a.Meta.Index)
	}

	// Change everything, then restore.
	wantStatus(t, ts.do("DELETE", "/v1/cluster/settings/a", ""), 200)
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/d", `{"value":"d"}`), 200)
	rec = ts.do("PUT", "/v1/snapshot", string(archive), "Content-Type", "application/octet-stream")
	var rr RestoreResponse
	mustJSON(t, wantStatus(t, rec, 200), &rr)
	if rr.RestoredIndex != a.Meta.Index {
		t.Fatalf("restored_index %d, want %d", rr.RestoredIndex, a.Meta.Index)
	}
	// The state is the saved one plus the audit entry of the restore.
	if got := ts.body("/v1/cluster/settings"); got != savedSettings {
		t.Fatalf("restored settings %s, want %s", got, savedSettings)
	}
	_, es, _ := ts.b.State().AuditEntries(nil, fsm.AuditFilter{})
	if len(es) == 0 || es[len(es)-1].Action != "PUT /v1/snapshot" || es[len(es)-1].Seq != 5 {
		t.Fatalf("restore not audited after the saved log: %+v", es)
	}
	if bytes.Equal(dump(t, ts), saved) {
		t.Fatal("the restore left no audit entry")
	}
}

func TestSnapshot_DamagedArchiveChangesNothing(t *testing.T) {
	ts := newLeader(t)
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/a", `{"value":"a"}`), 200)
	archive := wantStatus(t, ts.do("GET", "/v1/snapshot", ""), 200)
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/b", `{"value":"b"}`), 200)
	// A refused restore is audited (unless the audit rate limit drops
	// it): everything but the audit log stays as it was.
	before, settings := ts.b.State().StateIndex(), ts.body("/v1/cluster/settings")

	flipped := bytes.Clone(archive)
	flipped[len(flipped)/2] ^= 0xff
	for name, body := range map[string][]byte{
		"empty":     nil,
		"garbage":   []byte("not a snapshot at all, clearly not a snapshot"),
		"truncated": archive[:len(archive)-10],
		"flipped":   flipped,
		"trailing":  append(bytes.Clone(archive), 0),
	} {
		t.Run(name, func(t *testing.T) {
			d := wantError(t, ts.do("PUT", "/v1/snapshot", string(body)), 400, CodeBadSnapshot, "")
			if len(d.Message) < len("bad snapshot: ") {
				t.Errorf("message %q gives no reason", d.Message)
			}
			if ts.b.State().StateIndex() != before || ts.body("/v1/cluster/settings") != settings {
				t.Fatal("a damaged archive changed the state")
			}
		})
	}

	small := newTestServer(t, ts.b, Options{MaxSnapshotBytes: 100})
	small.secret = ts.secret
	wantError(t, small.do("PUT", "/v1/snapshot", string(archive)), 413, CodeRequestTooLarge, "")
}
