package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/pvesim"
	"github.com/moxxie/moxxie/quota"
)

// TestQuota_ConcurrentVMCreates sends 64 VM creates at once for a tenant
// whose quota allows 10 guests: exactly 10 are admitted, the others are
// refused with quota_exceeded, and the 10 run to completion.
func TestQuota_ConcurrentVMCreates(t *testing.T) {
	s, sim, token := simServer(t, pvesim.Config{})
	waitGuests(t, s, len(sim.Guests()))
	if r := call(t, s, http.MethodPost, "/v1/tenants", token, map[string]any{"id": "acme", "quota": map[string]int{"guests": 10}}, nil); r.status != http.StatusCreated {
		t.Fatalf("create tenant: %d %s", r.status, r.body)
	}
	hc := clientFor(t, s)
	type outcome struct {
		status int
		body   []byte
		err    error
	}
	out := make([]outcome, 64)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range out {
		wg.Go(func() {
			body, _ := json.Marshal(map[string]any{"name": fmt.Sprintf("q-%d", i), "template": "debian-12-cloud", "tenant": "acme", "memory": 512, "cores": 1})
			req, err := http.NewRequest(http.MethodPost, s.URL()+"/v1/vms", bytes.NewReader(body))
			if err != nil {
				out[i].err = err
				return
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			<-start
			resp, err := hc.Do(req)
			if err != nil {
				out[i].err = err
				return
			}
			defer resp.Body.Close()
			out[i].status = resp.StatusCode
			out[i].body, out[i].err = io.ReadAll(resp.Body)
		})
	}
	close(start)
	wg.Wait()
	var ops []string
	for i, o := range out {
		switch {
		case o.err != nil:
			t.Fatalf("request %d: %v", i, o.err)
		case o.status == http.StatusAccepted:
			var op fsm.Operation
			if err := json.Unmarshal(o.body, &op); err != nil {
				t.Fatal(err)
			}
			ops = append(ops, op.ID)
		case o.status == http.StatusConflict:
			var e api.ErrorResponse
			if err := json.Unmarshal(o.body, &e); err != nil || e.Error.Code != api.CodeQuotaExceeded || e.Error.Quota == nil ||
				e.Error.Quota.Resource != quota.Guests || e.Error.Quota.Limit != 10 || e.Error.Quota.Request != 1 {
				t.Fatalf("request %d refused with %s", i, o.body)
			}
		default:
			t.Fatalf("request %d: %d %s", i, o.status, o.body)
		}
	}
	if len(ops) != 10 {
		t.Fatalf("%d creates admitted, want exactly 10", len(ops))
	}
	for _, id := range ops {
		if op := waitOp(t, s, id); op.Status != fsm.OpSucceeded {
			t.Fatalf("operation %s: %+v", id, op.Error)
		}
	}
	// The guests are now counted from the inventory: still 10, and no
	// more creates are admitted.
	WaitForResult(t, 10*time.Second, func() error {
		u, err := s.State().UsageOf("acme")
		if err != nil || u.Amounts[quota.Guests] != 10 {
			return fmt.Errorf("usage %+v %v", u, err)
		}
		return nil
	})
	r := call(t, s, http.MethodPost, "/v1/vms", token, map[string]any{"name": "q-x", "template": "debian-12-cloud", "tenant": "acme"}, nil)
	if r.status != http.StatusConflict || !bytes.Contains(r.body, []byte(`"quota_exceeded"`)) {
		t.Fatalf("an 11th create: %d %s", r.status, r.body)
	}
}
