package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/moxxie/moxxie/node"
)

// TestProcess_MeteringThroughLeaderKill meters a tenant holding five
// addresses on three server processes ticking every 300 ms, SIGKILLs the
// leader and lets the others go on: the addresses accrued from a first
// reading to a last one are exactly five times the metered time between
// them, so no interval was metered twice and none was left out. The
// restarted server catches up to the same numbers.
func TestProcess_MeteringThroughLeaderKill(t *testing.T) {
	c := startClusterWith(t, 3, func(cfg *node.Config) { cfg.MeteringInterval = node.Duration(300 * time.Millisecond) })
	leader := c.leader()
	auth := map[string]string{"Authorization": "Bearer " + c.token}
	post := func(path, body string) []byte {
		t.Helper()
		r, err := c.do(leader, "POST", path, []byte(body), auth)
		if err != nil || r.status != http.StatusCreated {
			t.Fatalf("POST %s: %v %+v", path, err, r)
		}
		return r.body
	}
	var p struct{ ID string }
	if err := json.Unmarshal(post("/v1/ipam/prefixes", `{"prefix":"10.9.0.0/24"}`), &p); err != nil {
		t.Fatal(err)
	}
	post("/v1/ipam/prefixes/"+p.ID+"/allocate", `{"count":5,"tenant":"acme"}`)

	day := time.Now().UTC().Truncate(24 * time.Hour)
	path := fmt.Sprintf("/v1/reports/usage?tenant=acme&from=%s&to=%s", day.Add(-48*time.Hour).Format("2006-01-02"), day.Add(48*time.Hour).Format("2006-01-02"))
	// read returns the addresses metered so far (address-ms) and how far
	// metering went (unix ms), from one read of the store.
	read := func(on *proc) (int64, int64, error) {
		r, err := c.do(on, "GET", path+"&stale", nil, auth)
		if err != nil || r.status != http.StatusOK {
			return 0, 0, fmt.Errorf("GET %s: %v %+v", path, err, r)
		}
		var rep struct {
			MeteredUntil time.Time `json:"metered_until"`
			Rows         []struct {
				Meter    string `json:"meter"`
				Quantity int64  `json:"quantity_unit_ms"`
			} `json:"rows"`
		}
		if err := json.Unmarshal(r.body, &rep); err != nil {
			return 0, 0, err
		}
		var q int64
		for _, row := range rep.Rows {
			if row.Meter == "addresses" {
				q += row.Quantity
			}
		}
		return q, rep.MeteredUntil.UnixMilli(), nil
	}
	var q1, t1 int64
	waitUntil(t, 15*time.Second, "the addresses metered", func() error {
		var err error
		if q1, t1, err = read(leader); err == nil && q1 == 0 {
			err = fmt.Errorf("nothing metered yet (metered until %d)", t1)
		}
		return err
	})
	c.kill(leader)
	next := c.leader()
	var qn, tn int64
	waitUntil(t, 20*time.Second, "metering on the new leader", func() error {
		var err error
		if qn, tn, err = read(next); err == nil && tn < t1+3000 {
			err = fmt.Errorf("metered until %d, want past %d", tn, t1+3000)
		}
		return err
	})
	if got, want := qn-q1, 5*(tn-t1); got != want {
		t.Fatalf("%d address-ms metered over %d ms, want %d", got, tn-t1, want)
	}
	// The killed server restarts and holds the same buckets for the
	// same metered time.
	c.start(leader)
	waitUntil(t, 20*time.Second, "the restarted server catching up", func() error {
		q, until, err := read(leader)
		if err != nil {
			return err
		}
		if until < tn {
			return fmt.Errorf("metered until %d on %s, %d on the leader", until, leader.id, tn)
		}
		if want := qn + 5*(until-tn); q != want {
			return fmt.Errorf("%s: %d address-ms at %d, want %d", leader.id, q, until, want)
		}
		return nil
	})
}
