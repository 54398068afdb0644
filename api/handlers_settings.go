package api

import (
	"net/http"
	"strconv"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/fsm"
)

// Setting limits.
const (
	maxSettingKeyLen   = 128
	maxSettingValueLen = 64 << 10
)

// SettingList is the body of GET /v1/cluster/settings.
type SettingList struct {
	Settings []*fsm.Setting `json:"settings"`
}

// SettingPutRequest is the body of PUT /v1/cluster/settings/{key}.
type SettingPutRequest struct {
	// Value is required; it may be the empty string.
	Value *string `json:"value"`
}

// validSettingKey reports whether key matches ^[a-z0-9][a-z0-9_.-]{0,127}$.
func validSettingKey(key string) bool {
	if key == "" || len(key) > maxSettingKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		switch ch := key[i]; {
		case 'a' <= ch && ch <= 'z', '0' <= ch && ch <= '9':
		case i > 0 && (ch == '_' || ch == '.' || ch == '-'):
		default:
			return false
		}
	}
	return true
}

// settingKey returns the validated {key} path value.
func settingKey(c *call) (string, error) {
	key := c.r.PathValue("key")
	if !validSettingKey(key) {
		return "", invalid("key", "must match ^[a-z0-9][a-z0-9_.-]{0,127}$, not %q", key)
	}
	return key, nil
}

// handleSettingList lists every setting; it supports blocking queries.
func (s *server) handleSettingList(c *call) error {
	var list []*fsm.Setting
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		idx, l, err := st.Settings(ws)
		list = l
		return idx, err
	})
	if err != nil {
		return err
	}
	c.setIndex(idx)
	writeJSON(c.w, http.StatusOK, SettingList{Settings: list})
	return nil
}

// handleSettingGet returns one setting; it supports blocking queries.
func (s *server) handleSettingGet(c *call) error {
	key, err := settingKey(c)
	if err != nil {
		return err
	}
	var set *fsm.Setting
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		idx, v, err := st.Setting(ws, key)
		set = v
		return idx, err
	})
	if err != nil {
		return err
	}
	c.setIndex(idx)
	if set == nil {
		msg := "setting " + strconv.Quote(key) + " not found"
		if d, ok := fsm.SettingDefault(key); ok {
			msg += "; while it is unset its default applies: " + d
		}
		return &apiError{status: http.StatusNotFound, code: CodeNotFound, field: "key", message: msg}
	}
	writeJSON(c.w, http.StatusOK, set)
	return nil
}

// handleSettingPut creates or replaces a setting, optionally as a
// compare-and-set on its modify index (?cas=N, 0: must not exist yet).
func (s *server) handleSettingPut(c *call) error {
	key, err := settingKey(c)
	if err != nil {
		return err
	}
	var req SettingPutRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	if req.Value == nil {
		return invalid("value", "is required")
	}
	if len(*req.Value) > maxSettingValueLen {
		return invalid("value", "must be at most %d bytes", maxSettingValueLen)
	}
	if err := fsm.CheckSetting(key, *req.Value); err != nil {
		return invalid("value", "%v", err)
	}
	cmd := &fsm.SettingUpsertRequest{Key: key, Value: *req.Value}
	if c.r.URL.RawQuery != "" {
		if v, ok := c.q()["cas"]; ok {
			n, err := strconv.ParseUint(v[0], 10, 64)
			if err != nil {
				return invalid("cas", "must be a non-negative integer, not %q", v[0])
			}
			cmd.CASIndex = &n
		}
	}
	if cmd.WriteMeta, err = s.writeMeta(c); err != nil {
		return err
	}
	return s.apply(c, cmd, http.StatusOK, nil)
}

// handleSettingDelete deletes a setting and shows what was deleted.
func (s *server) handleSettingDelete(c *call) error {
	key, err := settingKey(c)
	if err != nil {
		return err
	}
	meta, err := s.writeMeta(c)
	if err != nil {
		return err
	}
	return s.apply(c, &fsm.SettingDeleteRequest{WriteMeta: meta, Key: key}, http.StatusOK, nil)
}
