package proxmox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func TestConfig_Validate(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	fp := strings.Repeat("AB:", 31) + "AB"
	good := Config{URL: "https://pve1.example:8006", TokenID: testTokenID, TokenSecret: testSecret}
	cases := []struct {
		name string
		mod  func(*Config)
		want string // substring of the error
	}{
		{"no url", func(c *Config) { c.URL = "" }, "URL is empty"},
		{"ftp", func(c *Config) { c.URL = "ftp://pve1" }, "scheme must be https"},
		{"http", func(c *Config) { c.URL = "http://pve1:8006" }, "needs Insecure"},
		{"no host", func(c *Config) { c.URL = "https:///x" }, "no host"},
		{"user info", func(c *Config) { c.URL = "https://root:" + testSecret + "@pve1:8006" }, "user info"},
		{"token shape", func(c *Config) { c.TokenID = "root@pam" }, "USER@REALM!NAME"},
		{"token no realm", func(c *Config) { c.TokenID = "root!x" }, "USER@REALM!NAME"},
		{"no secret", func(c *Config) { c.TokenSecret = "" }, "TokenSecret is empty"},
		{"secret newline", func(c *Config) { c.TokenSecret = testSecret + "\n" }, "whitespace"},
		{"two trust modes", func(c *Config) { c.CAFile, c.Fingerprint = empty, fp }, "either CAFile or Fingerprint"},
		{"insecure and pin", func(c *Config) { c.Insecure, c.Fingerprint = true, fp }, "Insecure excludes"},
		{"bad fingerprint", func(c *Config) { c.Fingerprint = "AB:CD" }, "not a SHA-256 fingerprint"},
		{"ca missing", func(c *Config) { c.CAFile = filepath.Join(dir, "missing.pem") }, "CAFile"},
		{"ca empty", func(c *Config) { c.CAFile = empty }, "no PEM certificate"},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, "Timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.mod(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v, want an error with %q", err, c.want)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error shows the secret: %v", err)
			}
		})
	}

	urls := map[string]string{
		"https://pve1:8006":               "https://pve1:8006/api2/json",
		"https://pve1:8006/":              "https://pve1:8006/api2/json",
		"https://pve1:8006/api2/json":     "https://pve1:8006/api2/json",
		"https://pve1:8006/api2/json/":    "https://pve1:8006/api2/json",
		"https://proxy/pve/":              "https://proxy/pve/api2/json",
		"http://127.0.0.1:8006/api2/json": "http://127.0.0.1:8006/api2/json",
	}
	for in, want := range urls {
		cfg := good
		cfg.URL = in
		cfg.Insecure = strings.HasPrefix(in, "http:")
		s, err := cfg.validate()
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if s.baseURL != want {
			t.Errorf("%s: base URL %q, want %q", in, s.baseURL, want)
		}
	}

	s, err := good.validate()
	if err != nil {
		t.Fatal(err)
	}
	if s.timeout != DefaultTimeout || s.retries != DefaultRetries || s.taskPoll != DefaultTaskPoll {
		t.Errorf("defaults: %+v", s)
	}
	if s.tls.InsecureSkipVerify || s.tls.RootCAs != nil {
		t.Error("no trust setting must mean verification against the system roots")
	}
	noRetry := good
	noRetry.Retries = -1
	if s, _ := noRetry.validate(); s.retries != 0 {
		t.Errorf("Retries -1 gives %d retries", s.retries)
	}
}

func TestConfig_RedactsSecret(t *testing.T) {
	cfg := Config{URL: "https://pve1:8006", TokenID: testTokenID, TokenSecret: testSecret, Insecure: true}
	var out []string
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		out = append(out, fmt.Sprintf(f, cfg), fmt.Sprintf(f, &cfg))
	}
	out = append(out, cfg.String(), fmt.Sprint(cfg), fmt.Sprintln(&cfg))
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "cfg", cfg, "ptr", &cfg)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", cfg, "ptr", &cfg)
	out = append(out, buf.String())
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(js))
	for _, s := range out {
		if strings.Contains(s, testSecret) {
			t.Errorf("secret printed: %s", s)
		}
	}
	if !strings.Contains(cfg.String(), redacted) || !strings.Contains(buf.String(), redacted) || !strings.Contains(string(js), redacted) {
		t.Errorf("redaction marker missing: %s %s %s", cfg, buf.String(), js)
	}

	var back Config
	if err := json.Unmarshal([]byte(`{"URL":"https://x","TokenSecret":"abc"}`), &back); err != nil || back.TokenSecret != "abc" {
		t.Errorf("decoding lost the secret: %v %v", err, back.TokenSecret == "abc")
	}
}

func TestParseFingerprint(t *testing.T) {
	want := bytes.Repeat([]byte{0xab}, 32)
	for _, s := range []string{
		strings.Repeat("AB:", 31) + "AB",
		strings.Repeat("ab", 32),
		" " + strings.Repeat("aB:", 31) + "Ab ",
	} {
		got, err := parseFingerprint(s)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("parseFingerprint(%q) = %x, %v", s, got, err)
		}
	}
	if got := formatFingerprint(want[:3]); got != "AB:AB:AB" {
		t.Errorf("formatFingerprint = %q", got)
	}
}
