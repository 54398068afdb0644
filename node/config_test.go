package node

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/site"
)

func validConfig() *Config {
	c := DefaultConfig()
	c.NodeID = "s1"
	c.TLS = TLSConfig{CAFile: "ca.pem", CertFile: "s1.pem", KeyFile: "s1-key.pem"}
	return c
}

func TestConfig_LoadFileEnvAndValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "moxxied.yaml")
	yaml := `node_id: s2
data_dir: /var/lib/moxxie
raft_address: 10.0.0.12:7301
api_address: 10.0.0.12:7300
dns_address: 10.0.0.12:5353
dns_forward: [10.0.0.1]
bootstrap_expect: 3
retry_join: [10.0.0.11:7301, 10.0.0.13:7301]
tls: {ca_file: /etc/moxxie/ca.pem, cert_file: /etc/moxxie/s2.pem, key_file: /etc/moxxie/s2-key.pem}
raft:
  heartbeat_timeout: 1s
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	if err := c.LoadConfigFile(file); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"MOXXIE_LOG_LEVEL":              "debug",
		"MOXXIE_RAFT_ELECTION_TIMEOUT":  "2s",
		"MOXXIE_RETRY_JOIN":             "10.0.0.21:7301, 10.0.0.23:7301",
		"MOXXIE_RAFT_SNAPSHOT_INTERVAL": "5m",
		"MOXXIE_DNS_ADDRESS":            "10.0.0.12:53",
		"MOXXIE_DNS_FORWARD":            "10.0.0.2, [2001:db8::53]:53",
		"MOXXIE_SITE_FENCE_GRACE":       "30s",
		"MOXXIE_MEMORY_LIMIT":           "6GiB",
		"MOXXIE_HEAP_HUGE_PAGES":        "true",
	}
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.NodeID != "s2" || c.BootstrapExpect != 3 || c.LogLevel != "debug" ||
		time.Duration(c.Raft.HeartbeatTimeout) != time.Second || time.Duration(c.Raft.ElectionTimeout) != 2*time.Second ||
		time.Duration(c.Raft.SnapshotInterval) != 5*time.Minute || len(c.RetryJoin) != 2 || c.RetryJoin[1] != "10.0.0.23:7301" ||
		c.Raft.MaxBatch != DefaultConfig().Raft.MaxBatch ||
		c.DNSAddress != "10.0.0.12:53" || len(c.DNSForward) != 2 || c.DNSForward[1] != "[2001:db8::53]:53" ||
		c.Site.FenceGrace != Duration(30*time.Second) || c.MemoryLimit != "6GiB" || !c.HeapHugePages {
		t.Fatalf("merged config wrong: %+v", c)
	}
}

func TestConfig_FenceGrace(t *testing.T) {
	if got := DefaultConfig().Site.FenceGrace; got != Duration(10*time.Second) {
		t.Errorf("default site.fence_grace %v, want 10s", got.Duration())
	}
	c := validConfig()
	c.Site.FenceGrace = 0 // copies start as soon as they are restored
	if err := c.Validate(); err != nil {
		t.Errorf("site.fence_grace 0: %v", err)
	}
}

// TestConfig_SiteTiming: the failure detector's timers come from the file
// and the environment and reach the site package as given, zero keys left
// to its defaults.
func TestConfig_SiteTiming(t *testing.T) {
	file := filepath.Join(t.TempDir(), "moxxied.yaml")
	yaml := `site:
  timing:
    probe_interval: 2s
    probe_timeout: 1s
    suspicion_mult: 4
    push_pull_interval: 1m
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c := validConfig()
	if err := c.LoadConfigFile(file); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MOXXIE_SITE_TIMING_REAP_AFTER": "24h"}
	if err := c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := site.Timing{ProbeInterval: 2 * time.Second, ProbeTimeout: time.Second, SuspicionMult: 4, PushPullInterval: time.Minute, ReapAfter: 24 * time.Hour}
	if got := c.Site.Timing.timing(); got != want {
		t.Errorf("site timing %+v, want %+v", got, want)
	}
	s := &Server{cfg: c}
	if got := s.drFenceSettle(); got != 4*time.Minute {
		t.Errorf("drFenceSettle %v with a push/pull interval of 1m, want 4m", got)
	}
	if got := (&Server{cfg: validConfig()}).drFenceSettle(); got != 4*site.DefaultTiming().PushPullInterval {
		t.Errorf("drFenceSettle %v by default", got)
	}
}

func TestConfig_FileErrorsNameTheKey(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key":   {"node_id: s1\nbootstrap_expct: 3\n", "bootstrap_expct"},
		"wrong type":    {"bootstrap_expect: three\n", "bootstrap_expect"},
		"bad duration":  {"raft:\n  heartbeat_timeout: soon\n", "heartbeat_timeout"},
		"nested unkown": {"tls:\n  ca: x\n", "ca"},
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			err := DefaultConfig().LoadConfigFile(file)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v does not name %q", err, tc.want)
			}
		})
	}
	if err := DefaultConfig().ApplyEnv(func(k string) (string, bool) {
		return "x", k == "MOXXIE_BOOTSTRAP_EXPECT"
	}); err == nil || !strings.Contains(err.Error(), "bootstrap_expect") {
		t.Fatalf("env error %v does not name the key", err)
	}
	if err := DefaultConfig().ApplyEnv(func(k string) (string, bool) {
		return "maybe", k == "MOXXIE_HEAP_HUGE_PAGES"
	}); err == nil || !strings.Contains(err.Error(), "heap_huge_pages") || !strings.Contains(err.Error(), "true or false") {
		t.Fatalf("env error %v does not name the key and what it takes", err)
	}
}

func TestConfig_Validate(t *testing.T) {
	for _, tc := range []struct {
		key    string
		mutate func(*Config)
	}{
		{"node_id", func(c *Config) { c.NodeID = "" }},
		{"node_id", func(c *Config) { c.NodeID = "has space" }},
		{"data_dir", func(c *Config) { c.DataDir = "" }},
		{"raft_address", func(c *Config) { c.RaftAddress = "nohost" }},
		{"raft_address", func(c *Config) { c.RaftAddress = "0.0.0.0:7301" }},
		{"api_address", func(c *Config) { c.APIAddress = c.RaftAddress }},
		{"retry_join[0]", func(c *Config) { c.RetryJoin = []string{"bad"} }},
		{"dns_address", func(c *Config) { c.DNSAddress = "53" }},
		{"dns_address", func(c *Config) { c.DNSAddress = "dns.example:53" }},
		{"dns_address", func(c *Config) { c.DNSAddress = "127.0.0.1:65536" }},
		{"dns_forward[1]", func(c *Config) { c.DNSAddress = ":53"; c.DNSForward = []string{"10.0.0.2", "1.1.1.1 }"} }},
		{"dns_forward", func(c *Config) { c.DNSForward = []string{"10.0.0.2"} }},
		{"bootstrap_expect", func(c *Config) { c.BootstrapExpect = 9 }},
		{"retry_join", func(c *Config) { c.BootstrapExpect = 3; c.RetryJoin = []string{"10.0.0.2:7301"} }},
		{"tls", func(c *Config) { c.TLS.KeyFile = "" }},
		{"hold_timeout", func(c *Config) { c.HoldTimeout = 0 }},
		{"memory_limit", func(c *Config) { c.MemoryLimit = "4GB" }},
		{"memory_limit", func(c *Config) { c.MemoryLimit = "" }},
		{"log_level", func(c *Config) { c.LogLevel = "loud" }},
		{"log_format", func(c *Config) { c.LogFormat = "xml" }},
		{"retention.operations", func(c *Config) { c.Retention.Operations = Duration(time.Minute) }},
		{"retention.gone_inventory", func(c *Config) { c.Retention.GoneInventory = Duration(-time.Hour) }},
		{"site.name", func(c *Config) { c.Site = SiteConfig{GossipAddress: "10.0.0.1:7946"} }},
		{"site.name", func(c *Config) {
			c.Site = SiteConfig{Name: "east", GossipAddress: "10.0.0.1:7946", GossipKeyFile: "/etc/moxxie/gossip.key"}
			c.Site.Name = "East"
		}},
		{"site.role", func(c *Config) {
			c.Site = SiteConfig{Name: "east", GossipAddress: "10.0.0.1:7946", GossipKeyFile: "/etc/moxxie/gossip.key"}
			c.Site.Role = "voter"
		}},
		{"site.gossip_address", func(c *Config) {
			c.Site = SiteConfig{Name: "east", GossipAddress: "10.0.0.1:7946", GossipKeyFile: "/etc/moxxie/gossip.key"}
			c.Site.GossipAddress = "0.0.0.0:7946"
		}},
		{"site.advertise_gossip_address", func(c *Config) {
			c.Site = SiteConfig{Name: "east", GossipAddress: "10.0.0.1:7946", GossipKeyFile: "/etc/moxxie/gossip.key"}
			c.Site.AdvertiseGossipAddress = "x"
		}},
		{"site.join[0]", func(c *Config) {
			c.Site = SiteConfig{Name: "east", GossipAddress: "10.0.0.1:7946", GossipKeyFile: "/etc/moxxie/gossip.key"}
			c.Site.Join = []string{"nohost"}
		}},
		{"site.gossip_key", func(c *Config) {
			c.Site = SiteConfig{Name: "east", GossipAddress: "10.0.0.1:7946", GossipKeyFile: "/etc/moxxie/gossip.key"}
			c.Site.GossipKeyFile = ""
		}},
		{"site.gossip_key", func(c *Config) {
			c.Site = SiteConfig{Name: "east", GossipAddress: "10.0.0.1:7946", GossipKeyFile: "/etc/moxxie/gossip.key"}
			c.Site.GossipKey = "plaintext-key"
			c.Site.GossipKeyFile = ""
		}},
		{"site.gossip_key", func(c *Config) {
			c.Site = SiteConfig{Name: "east", GossipAddress: "10.0.0.1:7946", GossipKeyFile: "/etc/moxxie/gossip.key"}
			c.Site.GossipKey = "secret:gossip"
		}},
		{"proxmox.storage_sync_interval", func(c *Config) {
			c.Proxmox = ProxmoxConfig{URL: "https://pve:8006", TokenID: "moxxie@pve!t", TokenSecret: "secret:pve", CAFile: "/ca.pem", StorageSyncInterval: Duration(time.Millisecond)}
		}},
		{"site.timing.probe_interval", func(c *Config) { c.Site.Timing.ProbeInterval = Duration(-time.Second) }},
		{"site.timing.probe_timeout", func(c *Config) { c.Site.Timing.ProbeTimeout = Duration(time.Second) }}, // not under the 750ms default interval
		{"site.timing.suspicion_mult", func(c *Config) { c.Site.Timing.SuspicionMult = -1 }},
		{"site.timing.reap_after", func(c *Config) { c.Site.Timing.ReapAfter = Duration(-time.Hour) }},
		{"site.fence_grace", func(c *Config) { c.Site.FenceGrace = Duration(-time.Second) }},
		{"site.fence_grace", func(c *Config) { c.Site.FenceGrace = Duration(time.Hour) }},
		{"raft.heartbeat_timeout", func(c *Config) { c.Raft.HeartbeatTimeout = Duration(time.Millisecond) }},
		{"raft.election_timeout", func(c *Config) { c.Raft.ElectionTimeout = Duration(10 * time.Millisecond) }},
		{"raft.leader_lease_timeout", func(c *Config) { c.Raft.LeaderLeaseTimeout = Duration(time.Hour) }},
		{"raft.max_batch", func(c *Config) { c.Raft.MaxBatch = 0 }},
		{"raft.snapshot_threshold", func(c *Config) { c.Raft.SnapshotThreshold = 0 }},
	} {
		c := validConfig()
		tc.mutate(c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), "config: "+tc.key+":") {
			t.Errorf("%s: got %v", tc.key, err)
		}
	}
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for _, addr := range []string{":53", "0.0.0.0:5353", "[::1]:0", "127.0.0.1:53"} {
		c := validConfig()
		c.DNSAddress = addr
		if err := c.Validate(); err != nil {
			t.Errorf("dns_address %q refused: %v", addr, err)
		}
	}
}

// TestSiteConfig: the pool is started with the configured site, role and
// timers.
func TestSiteConfig(t *testing.T) {
	c := validConfig()
	c.Site.Name, c.Site.GossipAddress = "east", "10.1.0.11:7946"
	c.Site.Timing.ProbeTimeout = Duration(time.Second)
	c.Site.Timing.ProbeInterval = Duration(3 * time.Second)
	s := &Server{cfg: c, apiAddr: "10.1.0.11:7300", logger: slog.New(slog.DiscardHandler)}
	got := s.siteConfig([][]byte{make([]byte, 32)})
	if got.Site != "east" || got.Node != "s1" || got.Role != site.RoleServer || got.APIAddress != "https://10.1.0.11:7300" ||
		got.Timing != (site.Timing{ProbeInterval: 3 * time.Second, ProbeTimeout: time.Second}) {
		t.Errorf("site config %+v", got)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
