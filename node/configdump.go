package node

import (
	"net/url"
	"strings"

	"github.com/goccy/go-yaml"
)

// redacted replaces a value the configuration dump leaves out.
const redacted = "[redacted]"

// debugDump returns the configuration under its YAML keys for GET
// /v1/debug/config. The configuration names its secrets: secret:NAME
// references and the paths of key files (tls.key_file, secrets.kek_file,
// proxmox.token_secret_file, audit_key_file), which the dump shows as
// written; it never holds their values, and the dump reads no file.
// Validate refuses a plain proxmox.token_secret, but the dump does not
// rely on it: any value under a key that sounds secret is redacted unless
// it is a file path or a secret:NAME reference, and the password of a
// URL is masked.
func (c *Config) debugDump() (any, error) {
	b, err := yaml.Marshal(c)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return redactDump("", m), nil
}

// redactDump returns v, found under key, with secrets redacted.
func redactDump(key string, v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = redactDump(k, e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = redactDump(key, e)
		}
		return v
	case string:
		switch {
		case v == "" || strings.HasPrefix(v, secretRefPrefix):
			return v
		case sensitiveKey(key):
			return redacted
		}
		if u, err := url.Parse(v); err == nil && u.User != nil {
			return u.Redacted()
		}
		return v
	case nil, bool:
		return v
	}
	if sensitiveKey(key) {
		return redacted
	}
	return v
}

// sensitiveKey reports whether a configuration key names a secret value:
// its name says secret, password, token or key, and it is not a file
// path or an ID.
func sensitiveKey(key string) bool {
	if strings.HasSuffix(key, "_file") || strings.HasSuffix(key, "_files") || strings.HasSuffix(key, "_id") {
		return false
	}
	for _, w := range []string{"secret", "password", "passphrase", "credential", "token", "kek", "private"} {
		if strings.Contains(key, w) {
			return true
		}
	}
	return key == "key" || strings.HasSuffix(key, "_key")
}
