package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

const settingsPath = "/v1/cluster/settings"

// SettingGet reads one setting (GET /v1/cluster/settings/{key}). A missing
// setting is an *APIError with status 404 (see IsNotFound).
func (c *Client) SettingGet(ctx context.Context, key string, q *QueryOptions) (*Setting, *Meta, error) {
	r := &request{method: http.MethodGet, path: settingsPath + "/" + url.PathEscape(key)}
	r.query, r.wait = q.values()
	var s Setting
	m, err := c.call(ctx, r, &s)
	if err != nil {
		return nil, nil, err
	}
	return &s, m, nil
}

// SettingList lists all settings ordered by key (GET /v1/cluster/settings).
func (c *Client) SettingList(ctx context.Context, q *QueryOptions) ([]Setting, *Meta, error) {
	r := &request{method: http.MethodGet, path: settingsPath}
	r.query, r.wait = q.values()
	out := listOf[Setting]{field: "settings"}
	m, err := c.call(ctx, r, &out)
	if err != nil {
		return nil, nil, err
	}
	return out.items, m, nil
}

// SettingPut writes a setting (PUT /v1/cluster/settings/{key}), only if its
// modify index matches when w.CAS is set. It returns the setting as
// written.
func (c *Client) SettingPut(ctx context.Context, key, value string, w *WriteOptions) (*Setting, *Meta, error) {
	r := newWrite(http.MethodPut, settingsPath+"/"+url.PathEscape(key), w.key())
	r.jsonBody(struct {
		Value string `json:"value"`
	}{value})
	if w != nil && w.CAS != nil {
		r.query = url.Values{"cas": {strconv.FormatUint(*w.CAS, 10)}}
	}
	var s Setting
	m, err := c.call(ctx, r, &s)
	if err != nil {
		return nil, nil, err
	}
	return &s, m, nil
}

// SettingDelete deletes a setting (DELETE /v1/cluster/settings/{key}).
func (c *Client) SettingDelete(ctx context.Context, key string, w *WriteOptions) (*Meta, error) {
	return c.call(ctx, newWrite(http.MethodDelete, settingsPath+"/"+url.PathEscape(key), w.key()), nil)
}
