package pvesim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// serveAdmin serves the simulator's own API below /pvesim/v1/, for tests
// running outside the process (e.g. against moxxied dev). It takes the
// same API tokens as the Proxmox API.
//
//	GET  /pvesim/v1/faults               the injected faults
//	PUT  /pvesim/v1/faults               replace them: {"latency": "50ms", "error_rate": 0.1, ...}
//	PUT  /pvesim/v1/nodes/{node}/online  {"online": false}
//	GET  /pvesim/v1/stats                {"requests": N}
func (s *Sim) serveAdmin(w http.ResponseWriter, r *http.Request, rest string) {
	token := authValue(r.Header.Get("Authorization"), "PVEAPIToken")
	if _, ok := s.verifyToken(token); token == "" || !ok {
		adminError(w, http.StatusUnauthorized, "authentication failed")
		return
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "faults" && r.Method == http.MethodGet:
		adminJSON(w, s.faults())
	case len(parts) == 1 && parts[0] == "faults" && r.Method == http.MethodPut:
		var f Faults
		if err := decodeStrict(r.Body, &f); err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := f.validate(); err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.SetFaults(f)
		adminJSON(w, s.faults())
	case len(parts) == 3 && parts[0] == "nodes" && parts[2] == "online" && r.Method == http.MethodPut:
		var body struct {
			Online *bool `json:"online"`
		}
		if err := decodeStrict(r.Body, &body); err != nil || body.Online == nil {
			adminError(w, http.StatusBadRequest, `body must be {"online": true|false}`)
			return
		}
		if err := s.SetNodeOnline(parts[1], *body.Online); err != nil {
			adminError(w, http.StatusNotFound, err.Error())
			return
		}
		adminJSON(w, map[string]any{"node": parts[1], "online": *body.Online})
	case len(parts) == 1 && parts[0] == "stats" && r.Method == http.MethodGet:
		adminJSON(w, map[string]any{"requests": s.Requests()})
	default:
		adminError(w, http.StatusNotFound, "no such admin route: "+r.Method+" /pvesim/v1/"+rest)
	}
}

// decodeStrict decodes one JSON value from a size-limited body, rejecting
// unknown fields.
func decodeStrict(body io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after JSON body")
	}
	return nil
}

func adminJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func adminError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
