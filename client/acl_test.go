package client

import (
	"context"
	"errors"
	"net/http"
	"testing"
)

func TestTokenCreate_Tenant(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer viewer" {
			writeErr(w, 403, "forbidden", "role tenant-viewer lacks permission token:write", "")
			return
		}
		writeJSON(w, 201, map[string]any{"accessor_id": "acc-2", "secret_id": "mxx_s", "role": "tenant-user",
			"tenant": "acme", "created_at": "2025-01-02T03:04:05Z"})
	})
	ctx := context.Background()
	ts, _, err := f.client(t, Config{Token: "admin"}).TokenCreate(ctx, TokenRequest{Role: "tenant-user", Tenant: "acme"}, nil)
	if err != nil || ts.Tenant != "acme" || ts.Role != "tenant-user" || ts.SecretID != "mxx_s" {
		t.Fatalf("created %+v, %v", ts, err)
	}
	if got := string(f.requests()[0].body); got != `{"role":"tenant-user","tenant":"acme"}` {
		t.Errorf("body %s", got)
	}

	_, _, err = f.client(t, Config{Token: "viewer"}).TokenCreate(ctx, TokenRequest{Role: "admin"}, nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 403 || ae.Code != "forbidden" || StatusCode(err) != http.StatusForbidden {
		t.Fatalf("error %v, want a 403", err)
	}
}
