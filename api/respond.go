package api

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// writeJSON answers with v as JSON. A json.RawMessage (a replayed
// idempotent result) is written as it is.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var body []byte
	if raw, ok := v.(json.RawMessage); ok {
		body = raw
	} else {
		var err error
		if body, err = json.Marshal(v); err != nil {
			// Our own response types always marshal; this is a bug.
			panic("api: encode response: " + err.Error())
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// setIndex sets X-Moxxie-Index to the index the response reflects.
func (c *call) setIndex(index uint64) {
	c.w.Header().Set(headerIndex, strconv.FormatUint(index, 10))
}
