package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestConfig_DebugDump(t *testing.T) {
	c := DefaultConfig()
	c.NodeID = "s1"
	c.TLS = TLSConfig{CAFile: "/etc/moxxie/ca.pem", CertFile: "/etc/moxxie/s1.pem", KeyFile: "/etc/moxxie/s1-key.pem"}
	c.Secrets.KEKFile = "/etc/moxxie/kek"
	c.Secrets.PreviousKEKFiles = []string{"/etc/moxxie/kek.old"}
	c.Proxmox = ProxmoxConfig{
		URL: "https://root:hunter2@pve1.example.com:8006", TokenID: "moxxie@pve!sync",
		TokenSecret: "secret:pve-token", Fingerprint: "AB:CD",
	}
	c.AuditKeyFile = "/etc/moxxie/audit.key"
	v, err := c.debugDump()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		NodeID string `json:"node_id"`
		TLS    struct {
			KeyFile string `json:"key_file"`
		} `json:"tls"`
		Secrets struct {
			KEKFile          string   `json:"kek_file"`
			PreviousKEKFiles []string `json:"previous_kek_files"`
		} `json:"secrets"`
		Proxmox struct {
			URL         string `json:"url"`
			TokenID     string `json:"token_id"`
			TokenSecret string `json:"token_secret"`
		} `json:"proxmox"`
		AuditKeyFile string `json:"audit_key_file"`
		Raft         struct {
			HeartbeatTimeout string `json:"heartbeat_timeout"`
		} `json:"raft"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.NodeID != "s1" || got.TLS.KeyFile != c.TLS.KeyFile || got.Secrets.KEKFile != "/etc/moxxie/kek" ||
		len(got.Secrets.PreviousKEKFiles) != 1 || got.AuditKeyFile != c.AuditKeyFile || got.Raft.HeartbeatTimeout != "500ms" {
		t.Errorf("dump %s", b)
	}
	// Secrets by name, never by value; a URL's password masked.
	if got.Proxmox.TokenSecret != "secret:pve-token" || got.Proxmox.TokenID != "moxxie@pve!sync" ||
		got.Proxmox.URL != "https://root:xxxxx@pve1.example.com:8006" || strings.Contains(string(b), "hunter2") {
		t.Errorf("proxmox %+v", got.Proxmox)
	}
}

func TestRedactDump(t *testing.T) {
	in := map[string]any{
		"webhook_secret":    "plain",
		"token_secret":      "secret:ok",
		"token_secret_file": "/etc/x",
		"token_id":          "a@b!c",
		"password":          123,
		"api_token":         []any{"t1", "secret:t2"},
		"kek":               "k",
		"signing_key":       "s",
		"key_file":          "/k",
		"enabled":           true,
		"endpoint":          "http://u:p@collector:4318",
		"nested":            map[string]any{"client_secret": "c", "name": "n"},
	}
	got := redactDump("", in)
	b, _ := json.Marshal(got)
	want := `{"api_token":["[redacted]","secret:t2"],"enabled":true,"endpoint":"http://u:xxxxx@collector:4318","kek":"[redacted]","key_file":"/k","nested":{"client_secret":"[redacted]","name":"n"},"password":"[redacted]","signing_key":"[redacted]","token_id":"a@b!c","token_secret":"secret:ok","token_secret_file":"/etc/x","webhook_secret":"[redacted]"}`
	if string(b) != want {
		t.Errorf("redacted\n%s\nwant\n%s", b, want)
	}
}

// TestServer_DebugRoutes reads a real server's configuration and logs:
// the key-encryption key appears by path, never its contents, and the
// log keeps the info lines of a server that logs only warnings.
func TestServer_DebugRoutes(t *testing.T) {
	kek, _ := testKEK(t)
	s := TestServer(t, func(c *Config) { c.Secrets.KEKFile = kek })
	WaitForLeader(t, s)
	token := bootstrapToken(t, s)
	kekText, err := os.ReadFile(kek)
	if err != nil {
		t.Fatal(err)
	}

	r := call(t, s, "GET", "/v1/debug/config", token, nil, nil)
	var cfg struct {
		ID     string         `json:"id"`
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(r.body, &cfg); r.status != 200 || err != nil {
		t.Fatalf("config: %d %s", r.status, r.body)
	}
	sec, _ := cfg.Config["secrets"].(map[string]any)
	if cfg.ID != s.ID() || cfg.Config["node_id"] != s.ID() || sec["kek_file"] != kek {
		t.Errorf("config %s", r.body)
	}
	if bytes.Contains(r.body, bytes.TrimSpace(kekText)) {
		t.Error("the configuration dump holds the key-encryption key")
	}

	r = call(t, s, "GET", "/v1/debug/logs?lines=100", token, nil, nil)
	var logs struct {
		Lines []map[string]any `json:"lines"`
	}
	if err := json.Unmarshal(r.body, &logs); r.status != 200 || err != nil {
		t.Fatalf("logs: %d %s", r.status, r.body)
	}
	var msgs []string
	for _, l := range logs.Lines {
		if l["server"] == s.ID() {
			msgs = append(msgs, fmt.Sprint(l["msg"]))
		}
	}
	if !slices.Contains(msgs, "server started") {
		t.Errorf("the server's log (level %s) lacks its start: %q", s.cfg.LogLevel, msgs)
	}
}
