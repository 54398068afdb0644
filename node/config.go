package node

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/moxxie/moxxie/site"
	"github.com/moxxie/moxxie/telemetry"
)

// Config is one server's configuration. It is built as DefaultConfig, then
// the YAML file, then MOXXIE_* environment variables, then flags, and is
// checked by Validate.
type Config struct {
	// NodeID names the server in the raft configuration; it never changes.
	NodeID string `yaml:"node_id"`
	// DataDir holds the raft log, stable store and snapshots.
	DataDir string `yaml:"data_dir"`
	// RaftAddress is the host:port the raft transport (and server-to-server
	// forwarding) listens on and advertises.
	RaftAddress string `yaml:"raft_address"`
	// APIAddress is the host:port of the HTTPS API.
	APIAddress string `yaml:"api_address"`
	// DNSAddress is the host:port this server answers DNS on, UDP and TCP,
	// from its own replicated state: "10.0.0.11:53", or ":53" for every
	// address. Empty turns DNS off.
	DNSAddress string `yaml:"dns_address"`
	// DNSForward lists upstream resolvers ("10.0.0.2", "[2001:db8::53]:53",
	// "tls://9.9.9.9") asked about names outside Moxxie's zones; without
	// any, such queries are refused.
	DNSForward []string `yaml:"dns_forward"`
	// MetricsAddress is a host:port serving GET /metrics in plain HTTP
	// without a token, for a trusted scrape network: "10.0.0.11:9300", or
	// ":9300" for every address. Empty (the default) turns it off; the
	// API serves the same metrics at /v1/metrics to tokens with
	// metrics:read.
	MetricsAddress string `yaml:"metrics_address"`
	// BootstrapExpect is the number of servers to wait for before
	// bootstrapping a new cluster; 0 means never bootstrap (join instead).
	BootstrapExpect int `yaml:"bootstrap_expect"`
	// RetryJoin lists raft addresses of other servers, used to discover
	// peers for bootstrap and to join an existing cluster.
	RetryJoin []string `yaml:"retry_join"`
	// HoldTimeout bounds how long a request waits for a leader before 503.
	HoldTimeout Duration `yaml:"hold_timeout"`
	// GCPercent is the Go garbage collector's target (GOGC), which the
	// moxxied command applies unless the GOGC variable is set. The state
	// is a large, long-lived heap of small objects: collecting less often
	// trades memory (up to 1+GCPercent/100 times the live heap) for CPU.
	GCPercent int `yaml:"gc_percent"`
	// MemoryLimit is the Go runtime's soft memory limit (GOMEMLIMIT),
	// which the moxxied command applies unless the GOMEMLIMIT variable is
	// set: "auto" (the default) for 70% of the memory the server may use
	// (the host's, or its cgroup's limit when lower), "off", or a size
	// such as "8GiB". Near the limit the collector runs more often instead
	// of letting the heap grow to 1+GCPercent/100 times the live state.
	MemoryLimit string `yaml:"memory_limit"`
	// HeapHugePages has the moxxied command ask the kernel for transparent
	// huge pages for the Go heap (package hugeheap) on a host whose mode
	// is madvise: the heap then grows in 2 MiB pages instead of 4 KiB ones,
	// which saves most page faults and TLB misses at the cost of up to
	// 2 MiB of memory per partly used huge page. Off by default: where
	// the hypervisor backs a huge page only when the guest first touches
	// it, each costs far more than its 512 small pages (docs/benchmarks.md).
	// Hosts in mode never or always are left as they are.
	HeapHugePages bool `yaml:"heap_huge_pages"`
	// LogLevel is debug, info, warn or error; LogFormat is json (the
	// default) or text (moxxied dev). Every line logged while serving a
	// request carries its request_id, and its trace_id when there is one.
	LogLevel  string `yaml:"log_level"`
	LogFormat string `yaml:"log_format"`
	// Tracing exports OpenTelemetry traces; off without an endpoint.
	Tracing TracingConfig `yaml:"tracing"`

	TLS     TLSConfig     `yaml:"tls"`
	Raft    RaftConfig    `yaml:"raft"`
	Proxmox ProxmoxConfig `yaml:"proxmox"`
	Secrets SecretsConfig `yaml:"secrets"`
	// AuditKeyFile holds the ed25519 key (moxxiectl audit keygen) with
	// which the leader signs audit checkpoints; every server should have
	// the same one. Without it no checkpoints are made and retention
	// keeps every entry.
	AuditKeyFile string `yaml:"audit_key_file"`
	// APIRateLimit bounds the API requests of each token and of each
	// client address without a valid token (see RateLimitConfig).
	APIRateLimit RateLimitConfig `yaml:"api_rate_limit"`
	// MeteringInterval is how often the leader meters usage into the
	// hourly buckets (default 1m, at least 100ms; each tick is a raft log
	// entry, so short intervals are for tests). A change of what a tenant
	// holds is metered from the next tick on.
	MeteringInterval Duration `yaml:"metering_interval"`
	// Retention bounds how long history is kept (see RetentionConfig).
	Retention RetentionConfig `yaml:"retention"`
	// Site joins this server to the pool of every site's servers
	// (docs/sites.md); without a site name the server is not federated.
	Site SiteConfig `yaml:"site"`
}

// RetentionConfig bounds the history the state keeps. Finished operations
// (VM work, policy and DR runs) and inventory objects gone from Proxmox are
// kept for these durations after they finished or went, then the leader
// deletes them; zero keeps them forever. What storage policies and DR
// plans name as their runs, and gone guests and storage that backups or
// volumes name, are always kept (fsm.RetentionPruneRequest).
type RetentionConfig struct {
	Operations    Duration `yaml:"operations"`
	GoneInventory Duration `yaml:"gone_inventory"`
}

// defaultRetention is how long history is kept unless configured: 90 days.
const defaultRetention = Duration(90 * 24 * time.Hour)

// minRetention is the shortest retention accepted: history younger than
// an hour is what operators look at.
const minRetention = Duration(time.Hour)

func (r RetentionConfig) validate() error {
	for _, f := range []struct {
		key string
		v   Duration
	}{{"retention.operations", r.Operations}, {"retention.gone_inventory", r.GoneInventory}} {
		if f.v != 0 && f.v < minRetention {
			return fmt.Errorf("config: %s: must be 0 (keep forever) or at least %v (got %v)", f.key, minRetention.Duration(), f.v.Duration())
		}
	}
	return nil
}

// SiteConfig places a server in a site and the site in the WAN pool of
// all sites, gossiped with hashicorp/memberlist.
type SiteConfig struct {
	// Name is the site's name, the same on its three servers.
	Name string `yaml:"name"`
	// Role is server (default) or witness: a witness site holds no
	// workloads and only votes when another site fails.
	Role string `yaml:"role"`
	// GossipAddress is host:port the pool's gossip listens on, TCP and
	// UDP; AdvertiseGossipAddress what the others reach, when different.
	GossipAddress          string `yaml:"gossip_address"`
	AdvertiseGossipAddress string `yaml:"advertise_gossip_address"`
	// Join lists gossip addresses of servers of any site.
	Join []string `yaml:"join"`
	// GossipKey names the secret holding the gossip keys
	// ("secret:NAME"), or GossipKeyFile a file of mode 0600 holding them:
	// base64 AES keys of 16, 24 or 32 bytes, one per line, the first the
	// one gossip is encrypted with. A change of the secret's value
	// rotates the keys without a restart.
	GossipKey     string `yaml:"gossip_key"`
	GossipKeyFile string `yaml:"gossip_key_file"`
	// FenceGrace is how long a failover this site runs holds its copies
	// after it started (default 10s; 0 starts each as soon as it is
	// restored): the time the source site, if it is cut off rather than
	// down, has to see that and stop the plan's guests itself
	// (docs/dr.md). Restores go on meanwhile.
	FenceGrace Duration `yaml:"fence_grace"`
	// Timing tunes the pool's failure detector (site.Timing; zero keys
	// keep their defaults). Every server of every site should use the
	// same values.
	Timing SiteTiming `yaml:"timing"`
}

// SiteTiming is site.Timing in the configuration file: the defaults suit
// round trips between sites under about 175 ms (docs/sites.md).
type SiteTiming struct {
	ProbeInterval     Duration `yaml:"probe_interval"`
	ProbeTimeout      Duration `yaml:"probe_timeout"`
	SuspicionMult     int      `yaml:"suspicion_mult"`
	GossipInterval    Duration `yaml:"gossip_interval"`
	DownAfter         Duration `yaml:"down_after"`
	PushPullInterval  Duration `yaml:"push_pull_interval"`
	ReconnectInterval Duration `yaml:"reconnect_interval"`
	ReapAfter         Duration `yaml:"reap_after"`
}

// timing returns t as the site package takes it, zero fields left zero
// (they take the package's defaults).
func (t SiteTiming) timing() site.Timing {
	return site.Timing{
		ProbeInterval:     t.ProbeInterval.Duration(),
		ProbeTimeout:      t.ProbeTimeout.Duration(),
		SuspicionMult:     t.SuspicionMult,
		GossipInterval:    t.GossipInterval.Duration(),
		DownAfter:         t.DownAfter.Duration(),
		PushPullInterval:  t.PushPullInterval.Duration(),
		ReconnectInterval: t.ReconnectInterval.Duration(),
		ReapAfter:         t.ReapAfter.Duration(),
	}
}

// siteTimingKeys maps site.Timing's fields to their keys under
// site.timing.
var siteTimingKeys = map[string]string{
	"ProbeInterval": "probe_interval", "ProbeTimeout": "probe_timeout", "SuspicionMult": "suspicion_mult",
	"GossipInterval": "gossip_interval", "DownAfter": "down_after", "PushPullInterval": "push_pull_interval",
	"ReconnectInterval": "reconnect_interval", "ReapAfter": "reap_after",
}

// defaultFenceGrace is FenceGrace unless configured: a cut-off site sees
// it is cut off 1 to 3 s after the others see it down, and its stops of
// a plan's guests take a few seconds more (docs/benchmarks.md).
const defaultFenceGrace = Duration(10 * time.Second)

// maxFenceGrace bounds FenceGrace: it adds to every failover's recovery
// time when restores are fast.
const maxFenceGrace = Duration(10 * time.Minute)

// siteNameRe is the rule for site names.
var siteNameRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

func (c *SiteConfig) validate() error {
	bad := func(key, format string, a ...any) error {
		return fmt.Errorf("config: site.%s: %s", key, fmt.Sprintf(format, a...))
	}
	if c.FenceGrace < 0 || c.FenceGrace > maxFenceGrace {
		return bad("fence_grace", "must be between 0 and %v (got %v)", maxFenceGrace.Duration(), c.FenceGrace.Duration())
	}
	if field, err := c.Timing.timing().Check(); err != nil {
		return bad("timing."+cmp.Or(siteTimingKeys[field], field), "%v", err)
	}
	if c.Name == "" {
		if c.GossipAddress != "" || len(c.Join) > 0 || c.GossipKey != "" || c.GossipKeyFile != "" {
			return bad("name", "is required to join the sites' pool")
		}
		return nil
	}
	if !siteNameRe.MatchString(c.Name) {
		return bad("name", "%q must be a lowercase letter and up to 31 of a-z, 0-9 and '-'", c.Name)
	}
	if c.Role != "" && c.Role != "server" && c.Role != "witness" {
		return bad("role", "must be server or witness (got %q)", c.Role)
	}
	if err := checkHostPort(c.GossipAddress); err != nil {
		return bad("gossip_address", "%v", err)
	}
	if c.AdvertiseGossipAddress != "" {
		if err := checkHostPort(c.AdvertiseGossipAddress); err != nil {
			return bad("advertise_gossip_address", "%v", err)
		}
	}
	for i, a := range c.Join {
		if err := checkHostPort(a); err != nil {
			return bad(fmt.Sprintf("join[%d]", i), "%v", err)
		}
	}
	switch {
	case c.GossipKey == "" && c.GossipKeyFile == "":
		return bad("gossip_key", "is required: the pool's gossip is always encrypted (secret:NAME, or gossip_key_file)")
	case c.GossipKey != "" && c.GossipKeyFile != "":
		return bad("gossip_key", "give gossip_key or gossip_key_file, not both")
	case c.GossipKey != "":
		name, ok := strings.CutPrefix(c.GossipKey, secretRefPrefix)
		if !ok || !validSecretRef(name) {
			return bad("gossip_key", "%q must be secret:NAME: the keys never go in this configuration", c.GossipKey)
		}
	}
	return nil
}

// TracingConfig turns on OpenTelemetry tracing: spans of API requests,
// forwards to the leader, raft and FSM applies and provider calls are
// exported over OTLP/HTTP to Endpoint. Without an endpoint nothing is
// recorded, but a W3C traceparent a caller sends is still accepted and
// passed on to the leader, so its trace ID appears in the logs.
type TracingConfig struct {
	// Endpoint is the OTLP/HTTP collector URL, e.g.
	// http://otel-collector:4318 (path /v1/traces unless the URL has one).
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of new traces recorded, 0 to 1 (default
	// 1). Requests that carry a traceparent follow their caller's
	// sampling decision.
	SampleRatio float64 `yaml:"sample_ratio"`
}

// SecretsConfig names the key-encryption key (KEK) of the secrets store:
// base64 of 32 random bytes in a file of mode 0600 outside data_dir, or in
// the MOXXIE_SECRETS_KEK variable. Every server needs the same KEK. To
// rotate it, give every server the new file as kek_file and the old one
// in previous_kek_files, reload them one at a time (the leader re-wraps
// the data keys), then drop the old file.
type SecretsConfig struct {
	KEKFile          string   `yaml:"kek_file"`
	PreviousKEKFiles []string `yaml:"previous_kek_files"`
}

// secretRefPrefix starts a reference to the secrets store in the
// configuration: secret:NAME.
const secretRefPrefix = "secret:"

// ProxmoxConfig connects the server to the Proxmox VE cluster it manages.
// Without a URL there is no platform: inventory sync is off and VM
// operations are refused.
type ProxmoxConfig struct {
	// URL is the API endpoint, e.g. https://pve1.example.com:8006.
	URL string `yaml:"url"`
	// TokenID is the API token, USER@REALM!NAME (Datacenter > Permissions
	// > API Tokens); TokenSecret names its secret in the secrets store
	// ("secret:NAME"), or TokenSecretFile holds it. The secret itself
	// never goes in this file.
	TokenID         string `yaml:"token_id"`
	TokenSecret     string `yaml:"token_secret"`
	TokenSecretFile string `yaml:"token_secret_file"`
	// The server's certificate is verified against CAFile, or pinned by
	// Fingerprint (SHA-256, as the Proxmox UI shows it); Insecure skips
	// verification and must be set explicitly.
	CAFile      string `yaml:"ca_file"`
	Fingerprint string `yaml:"fingerprint"`
	Insecure    bool   `yaml:"insecure"`
	// Timeout bounds one API request (default 30s).
	Timeout Duration `yaml:"timeout"`
	// SyncInterval is how often the leader syncs the inventory (default 10s).
	SyncInterval Duration `yaml:"sync_interval"`
	// StorageSyncInterval is how often the leader lists the storages'
	// backups and disk volumes (default 30s; operations also trigger it).
	StorageSyncInterval Duration `yaml:"storage_sync_interval"`
	// SDNMirror also writes the SDN zones and vnets to Proxmox SDN after
	// every committed rollout (and once a minute), so they appear in the
	// Proxmox UI. Off by default: Moxxie's agents hold the hosts either way.
	SDNMirror bool `yaml:"sdn_mirror"`
}

// TLSConfig names the PEM files of the cluster CA and this server's
// certificate. The same certificate serves the API and the raft transport.
type TLSConfig struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// RaftConfig tunes raft. The defaults suit servers on one LAN.
type RaftConfig struct {
	HeartbeatTimeout   Duration `yaml:"heartbeat_timeout"`
	ElectionTimeout    Duration `yaml:"election_timeout"`
	LeaderLeaseTimeout Duration `yaml:"leader_lease_timeout"`
	CommitTimeout      Duration `yaml:"commit_timeout"`
	SnapshotThreshold  uint64   `yaml:"snapshot_threshold"`
	SnapshotInterval   Duration `yaml:"snapshot_interval"`
	TrailingLogs       uint64   `yaml:"trailing_logs"`
	// MaxBatch bounds how many concurrent writes are coalesced into one log
	// entry.
	MaxBatch int `yaml:"max_batch"`
}

// Duration is a time.Duration that reads from YAML as "500ms" or "2s".
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML parses a duration from a YAML node, naming the key and
// line when the value is not a duration.
func (d *Duration) UnmarshalYAML(n ast.Node) error {
	s := strings.Trim(n.String(), `"'`)
	if sn, ok := n.(*ast.StringNode); ok {
		s = sn.Value
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		line := 0
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			line = tk.Position.Line
		}
		return fmt.Errorf("%s (line %d): %q is not a duration (use e.g. 500ms or 2s)", strings.TrimPrefix(n.GetPath(), "$."), line, s)
	}
	*d = Duration(v)
	return nil
}

// Duration returns d as a time.Duration.
func (d Duration) Duration() time.Duration { return time.Duration(d) }

// MarshalText formats the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// DefaultConfig returns the configuration a server starts from.
func DefaultConfig() *Config {
	return &Config{
		DataDir:     "/var/lib/moxxie",
		RaftAddress: "127.0.0.1:7301",
		APIAddress:  "127.0.0.1:7300",
		HoldTimeout: Duration(5 * time.Second),
		GCPercent:   400,
		MemoryLimit: MemoryLimitAuto,
		LogLevel:    "info",
		LogFormat:   "json",
		Tracing:     TracingConfig{SampleRatio: 1},
		Retention:   RetentionConfig{Operations: defaultRetention, GoneInventory: defaultRetention},
		Site:        SiteConfig{FenceGrace: defaultFenceGrace},
		Raft: RaftConfig{
			HeartbeatTimeout:   Duration(500 * time.Millisecond),
			ElectionTimeout:    Duration(500 * time.Millisecond),
			LeaderLeaseTimeout: Duration(250 * time.Millisecond),
			CommitTimeout:      Duration(20 * time.Millisecond),
			SnapshotThreshold:  8192,
			SnapshotInterval:   Duration(2 * time.Minute),
			TrailingLogs:       10240,
			MaxBatch:           256,
		},
	}
}

// LoadConfigFile reads a YAML file over c. Unknown keys are errors that
// name the key.
func (c *Config) LoadConfigFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.UnmarshalWithOptions(b, c, yaml.Strict()); err != nil {
		return fmt.Errorf("config %s: %s", path, yaml.FormatError(err, false, true))
	}
	return nil
}

// envPrefix starts every environment override: MOXXIE_NODE_ID,
// MOXXIE_RAFT_HEARTBEAT_TIMEOUT, MOXXIE_TLS_CA_FILE and so on.
const envPrefix = "MOXXIE_"

// ApplyEnv overrides fields from MOXXIE_* variables named after the YAML
// keys (nested keys joined by "_", list values comma-separated).
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	return applyEnv(reflect.ValueOf(c).Elem(), envPrefix, "", lookup)
}

func applyEnv(v reflect.Value, prefix, path string, lookup func(string) (string, bool)) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if key == "" {
			continue
		}
		fv := v.Field(i)
		full := key
		if path != "" {
			full = path + "." + key
		}
		name := prefix + strings.ToUpper(strings.ReplaceAll(full, ".", "_"))
		if fv.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Duration(0)) {
			if err := applyEnv(fv, prefix, full, lookup); err != nil {
				return err
			}
			continue
		}
		s, ok := lookup(name)
		if !ok {
			continue
		}
		if err := setField(fv, s); err != nil {
			return fmt.Errorf("%s (%s): %w", name, full, err)
		}
	}
	return nil
}

func setField(fv reflect.Value, s string) error {
	switch p := fv.Addr().Interface().(type) {
	case *Duration:
		return p.UnmarshalText([]byte(s))
	case *string:
		*p = s
	case *int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return errors.New("must be an integer")
		}
		*p = n
	case *float64:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return errors.New("must be a number")
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("must be true or false")
		}
		*p = b
	case *uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return errors.New("must be a non-negative integer")
		}
		*p = n
	case *[]string:
		*p = nil
		for _, e := range strings.Split(s, ",") {
			if e = strings.TrimSpace(e); e != "" {
				*p = append(*p, e)
			}
		}
	default:
		return fmt.Errorf("unsupported type %s", fv.Type())
	}
	return nil
}

var nodeIDRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

// Validate checks the configuration and names the first bad key.
func (c *Config) Validate() error {
	bad := func(key, format string, a ...any) error {
		return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, a...))
	}
	if !nodeIDRe.MatchString(c.NodeID) {
		return bad("node_id", "must be 1-64 characters of letters, digits, '.', '_' or '-' (got %q)", c.NodeID)
	}
	if c.DataDir == "" {
		return bad("data_dir", "is required")
	}
	for key, addr := range map[string]string{"raft_address": c.RaftAddress, "api_address": c.APIAddress} {
		if err := checkHostPort(addr); err != nil {
			return bad(key, "%v", err)
		}
	}
	if c.RaftAddress == c.APIAddress && !strings.HasSuffix(c.APIAddress, ":0") {
		return bad("api_address", "must differ from raft_address")
	}
	if c.DNSAddress != "" {
		if err := checkListenAddr(c.DNSAddress); err != nil {
			return bad("dns_address", "%v", err)
		}
	}
	for i, up := range c.DNSForward {
		if up == "" || strings.ContainsAny(up, " \t\n{}#") {
			return bad(fmt.Sprintf("dns_forward[%d]", i), "%q is not an address", up)
		}
	}
	if len(c.DNSForward) > 0 && c.DNSAddress == "" {
		return bad("dns_forward", "needs dns_address: DNS is off")
	}
	if c.MetricsAddress != "" {
		if err := checkListenAddr(c.MetricsAddress); err != nil {
			return bad("metrics_address", "%v", err)
		}
		if (c.MetricsAddress == c.APIAddress || c.MetricsAddress == c.RaftAddress) && !strings.HasSuffix(c.MetricsAddress, ":0") {
			return bad("metrics_address", "must differ from api_address and raft_address")
		}
	}
	for i, a := range c.RetryJoin {
		if err := checkHostPort(a); err != nil {
			return bad(fmt.Sprintf("retry_join[%d]", i), "%v", err)
		}
	}
	if c.BootstrapExpect < 0 || c.BootstrapExpect > 7 {
		return bad("bootstrap_expect", "must be between 0 and 7 (got %d)", c.BootstrapExpect)
	}
	if c.BootstrapExpect > 1 && len(c.RetryJoin) < c.BootstrapExpect-1 {
		return bad("retry_join", "lists %d peers; bootstrap_expect %d needs at least %d", len(c.RetryJoin), c.BootstrapExpect, c.BootstrapExpect-1)
	}
	if c.TLS.CAFile == "" || c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
		return bad("tls", "ca_file, cert_file and key_file are required: servers only talk mutual TLS")
	}
	if c.HoldTimeout <= 0 {
		return bad("hold_timeout", "must be positive")
	}
	if c.GCPercent < 25 || c.GCPercent > 10000 {
		return bad("gc_percent", "must be between 25 and 10000, not %d", c.GCPercent)
	}
	if _, _, err := ParseMemoryLimit(c.MemoryLimit); err != nil {
		return bad("memory_limit", "%v", err)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return bad("log_level", "must be debug, info, warn or error (got %q)", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return bad("log_format", "must be json or text (got %q)", c.LogFormat)
	}
	if c.Tracing.Endpoint != "" {
		if err := telemetry.CheckEndpoint(c.Tracing.Endpoint); err != nil {
			return bad("tracing.endpoint", "%v", err)
		}
	}
	if r := c.Tracing.SampleRatio; !(r >= 0 && r <= 1) {
		return bad("tracing.sample_ratio", "must be between 0 and 1 (got %v)", r)
	}
	if err := c.Proxmox.validate(); err != nil {
		return err
	}
	if err := c.Secrets.validate(c.DataDir); err != nil {
		return err
	}
	if err := c.APIRateLimit.validate(); err != nil {
		return err
	}
	if err := c.Site.validate(); err != nil {
		return err
	}
	if err := c.Retention.validate(); err != nil {
		return err
	}
	if c.MeteringInterval != 0 && c.MeteringInterval < Duration(100*time.Millisecond) {
		return bad("metering_interval", "must be at least 100ms (got %v)", time.Duration(c.MeteringInterval))
	}
	r := c.Raft
	if r.HeartbeatTimeout < Duration(5*time.Millisecond) {
		return bad("raft.heartbeat_timeout", "must be at least 5ms")
	}
	if r.ElectionTimeout < r.HeartbeatTimeout {
		return bad("raft.election_timeout", "must be at least raft.heartbeat_timeout")
	}
	if r.LeaderLeaseTimeout <= 0 || r.LeaderLeaseTimeout > r.HeartbeatTimeout {
		return bad("raft.leader_lease_timeout", "must be positive and at most raft.heartbeat_timeout")
	}
	if r.CommitTimeout <= 0 {
		return bad("raft.commit_timeout", "must be positive")
	}
	if r.MaxBatch < 1 || r.MaxBatch > 4096 {
		return bad("raft.max_batch", "must be between 1 and 4096")
	}
	if r.SnapshotThreshold == 0 {
		return bad("raft.snapshot_threshold", "must be positive")
	}
	return nil
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		return fmt.Errorf("%q must name an address other servers can reach, not a wildcard", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has a bad port", addr)
	}
	return nil
}

// checkListenAddr checks an address to listen on: host:port with an IP
// address, or no host for every address.
func checkListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host != "" && net.ParseIP(host) == nil {
		return fmt.Errorf("%q: the host must be an IP address, or empty for every address", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has a bad port", addr)
	}
	return nil
}

func (p *ProxmoxConfig) validate() error {
	bad := func(key, format string, a ...any) error {
		return fmt.Errorf("config: proxmox.%s: %s", key, fmt.Sprintf(format, a...))
	}
	if p.TokenSecret != "" && !strings.HasPrefix(p.TokenSecret, secretRefPrefix) {
		return bad("token_secret", "put the credential in the secrets store (moxxiectl secret put NAME) and write secret:NAME here; plain credentials are refused")
	}
	if name, ok := strings.CutPrefix(p.TokenSecret, secretRefPrefix); ok && !validSecretRef(name) {
		return bad("token_secret", "%q does not name a secret: secret names match ^[a-z0-9][a-z0-9_.-]{0,127}$", p.TokenSecret)
	}
	if p.URL == "" {
		if p.TokenID != "" || p.TokenSecretFile != "" || p.TokenSecret != "" {
			return bad("url", "is required when a token is configured")
		}
		return nil
	}
	if !strings.HasPrefix(p.URL, "https://") && !(p.Insecure && strings.HasPrefix(p.URL, "http://")) {
		return bad("url", "must be https:// (got %q)", p.URL)
	}
	if !strings.Contains(p.TokenID, "@") || !strings.Contains(p.TokenID, "!") {
		return bad("token_id", "must be USER@REALM!TOKEN, e.g. moxxie@pve!sync (got %q)", p.TokenID)
	}
	if p.TokenSecretFile == "" && p.TokenSecret == "" {
		return bad("token_secret", "is required (secret:NAME, from the secrets store), or token_secret_file: the token secret never goes in this configuration")
	}
	if p.TokenSecretFile != "" && p.TokenSecret != "" {
		return bad("token_secret", "give token_secret or token_secret_file, not both")
	}
	if p.Fingerprint != "" && p.CAFile != "" {
		return bad("fingerprint", "give ca_file or fingerprint, not both")
	}
	if p.Insecure && (p.Fingerprint != "" || p.CAFile != "") {
		return bad("insecure", "cannot be combined with ca_file or fingerprint")
	}
	if p.Timeout < 0 || p.SyncInterval < 0 {
		return bad("sync_interval", "durations must not be negative")
	}
	if p.SyncInterval != 0 && p.SyncInterval < Duration(time.Second) {
		return bad("sync_interval", "must be at least 1s")
	}
	if p.StorageSyncInterval != 0 && p.StorageSyncInterval < Duration(time.Second) {
		return bad("storage_sync_interval", "must be at least 1s")
	}
	return nil
}

// validSecretRef reports whether name is a valid secret name.
func validSecretRef(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch ch := name[i]; {
		case 'a' <= ch && ch <= 'z', '0' <= ch && ch <= '9':
		case i > 0 && (ch == '_' || ch == '.' || ch == '-'):
		default:
			return false
		}
	}
	return true
}

func (sc *SecretsConfig) validate(dataDir string) error {
	bad := func(key, format string, a ...any) error {
		return fmt.Errorf("config: secrets.%s: %s", key, fmt.Sprintf(format, a...))
	}
	if len(sc.PreviousKEKFiles) > 0 && sc.KEKFile == "" {
		return bad("previous_kek_files", "needs kek_file: the previous keys only serve a rotation to a new one")
	}
	files := map[string]string{}
	if sc.KEKFile != "" {
		files["kek_file"] = sc.KEKFile
	}
	for i, f := range sc.PreviousKEKFiles {
		files[fmt.Sprintf("previous_kek_files[%d]", i)] = f
	}
	dd, err := filepath.Abs(dataDir)
	if err != nil {
		return bad("kek_file", "%v", err)
	}
	for key, f := range files {
		if f == "" {
			return bad(key, "is empty")
		}
		abs, err := filepath.Abs(f)
		if err != nil {
			return bad(key, "%v", err)
		}
		if rel, err := filepath.Rel(dd, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return bad(key, "%s is inside data_dir %s; keep the key-encryption key apart from the data it protects (snapshots and backups of data_dir must not carry it)", f, dataDir)
		}
	}
	return nil
}
