package site

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfig_Validate(t *testing.T) {
	valid := func() Config {
		return Config{
			Site:       "fra1",
			Node:       "server-1",
			BindAddr:   "0.0.0.0:7947",
			APIAddress: "https://fra1.example.com:7300",
			Join:       []string{"10.0.0.1:7947", "ams1.example.com:7947"},
			Keyring:    [][]byte{keyOne, keyTwo},
		}
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // in the error; "" for valid
	}{
		{"valid", func(*Config) {}, ""},
		{"witness", func(c *Config) { c.Role = RoleWitness }, ""},
		{"server role", func(c *Config) { c.Role = RoleServer }, ""},
		{"port 0", func(c *Config) { c.BindAddr = "127.0.0.1:0" }, ""},
		{"IPv6", func(c *Config) { c.BindAddr, c.AdvertiseAddr = "[::]:7947", "[2001:db8::1]:7947" }, ""},
		{"API address without port", func(c *Config) { c.APIAddress = "https://fra1.example.com" }, ""},
		{"partial timing", func(c *Config) { c.Timing = Timing{DownAfter: 2 * time.Second} }, ""},
		{"32-character site", func(c *Config) { c.Site = "a" + strings.Repeat("b", 31) }, ""},
		{"no site", func(c *Config) { c.Site = "" }, "Config.Site"},
		{"uppercase site", func(c *Config) { c.Site = "Fra1" }, "Config.Site"},
		{"site starting with a digit", func(c *Config) { c.Site = "1fra" }, "Config.Site"},
		{"33-character site", func(c *Config) { c.Site = "a" + strings.Repeat("b", 32) }, "Config.Site"},
		{"site with a slash", func(c *Config) { c.Site = "fra/1" }, "Config.Site"},
		{"no node", func(c *Config) { c.Node = "" }, "Config.Node"},
		{"node with a slash", func(c *Config) { c.Node = "a/b" }, "Config.Node"},
		{"65-character node", func(c *Config) { c.Node = strings.Repeat("n", 65) }, "Config.Node"},
		{"unknown role", func(c *Config) { c.Role = "arbiter" }, "Config.Role"},
		{"no bind address", func(c *Config) { c.BindAddr = "" }, "Config.BindAddr"},
		{"bind to a host name", func(c *Config) { c.BindAddr = "localhost:7947" }, "Config.BindAddr"},
		{"bind without port", func(c *Config) { c.BindAddr = "127.0.0.1" }, "Config.BindAddr"},
		{"bind port too large", func(c *Config) { c.BindAddr = "127.0.0.1:65536" }, "Config.BindAddr"},
		{"advertise port 0", func(c *Config) { c.AdvertiseAddr = "10.0.0.2:0" }, "Config.AdvertiseAddr"},
		{"advertise a host name", func(c *Config) { c.AdvertiseAddr = "fra1.example.com:7947" }, "Config.AdvertiseAddr"},
		{"no API address", func(c *Config) { c.APIAddress = "" }, "Config.APIAddress"},
		{"http API address", func(c *Config) { c.APIAddress = "http://fra1.example.com:7300" }, "Config.APIAddress"},
		{"API address with a path", func(c *Config) { c.APIAddress = "https://fra1.example.com:7300/v1" }, "Config.APIAddress"},
		{"API address with a query", func(c *Config) { c.APIAddress = "https://fra1.example.com:7300?a=b" }, "Config.APIAddress"},
		{"API address with a user", func(c *Config) { c.APIAddress = "https://u:p@fra1.example.com:7300" }, "Config.APIAddress"},
		{"API address with a bad port", func(c *Config) { c.APIAddress = "https://fra1.example.com:0" }, "Config.APIAddress"},
		{"API address too long", func(c *Config) { c.APIAddress = "https://" + strings.Repeat("a", 121) + ".com" }, "Config.APIAddress"},
		{"join without port", func(c *Config) { c.Join = []string{"10.0.0.1:7947", "10.0.0.2"} }, "Config.Join[1]"},
		{"join port 0", func(c *Config) { c.Join = []string{"10.0.0.1:0"} }, "Config.Join[0]"},
		{"no keyring", func(c *Config) { c.Keyring = nil }, "Config.Keyring"},
		{"short key", func(c *Config) { c.Keyring = [][]byte{keyOne, []byte("0123456789")} }, "Config.Keyring[1]"},
		{"duplicate key", func(c *Config) { c.Keyring = [][]byte{keyOne, bytes.Clone(keyOne)} }, "Config.Keyring[1]"},
		{"negative probe interval", func(c *Config) { c.Timing.ProbeInterval = -time.Second }, "Config.Timing.ProbeInterval"},
		{"negative down after", func(c *Config) { c.Timing.DownAfter = -time.Second }, "Config.Timing.DownAfter"},
		{"negative suspicion", func(c *Config) { c.Timing.SuspicionMult = -1 }, "Config.Timing.SuspicionMult"},
		{"probe timeout over the interval", func(c *Config) {
			c.Timing = Timing{ProbeInterval: time.Second, ProbeTimeout: time.Second}
		}, "Config.Timing.ProbeTimeout"},
		{"probe timeout over the default interval", func(c *Config) { c.Timing = Timing{ProbeTimeout: 2 * time.Second} }, "Config.Timing.ProbeTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("no error, want one naming %s", tc.want)
			case tc.want != "" && (!strings.Contains(err.Error(), tc.want+":") || !errors.Is(err, ErrInvalidConfig)):
				t.Fatalf("error %q does not name %s or wrap ErrInvalidConfig", err, tc.want)
			}
		})
	}
}

func TestTiming_Defaults(t *testing.T) {
	d := DefaultTiming()
	if got := (Timing{}).withDefaults(); got != d {
		t.Fatalf("zero Timing gives %+v, want %+v", got, d)
	}
	if got := (Timing{DownAfter: time.Minute}).withDefaults(); got.DownAfter != time.Minute || got.ProbeInterval != d.ProbeInterval {
		t.Fatalf("partial Timing gives %+v", got)
	}
	if d.ProbeTimeout >= d.ProbeInterval {
		t.Fatalf("default ProbeTimeout %s not under ProbeInterval %s", d.ProbeTimeout, d.ProbeInterval)
	}
	// The documented arithmetic, in the 1-in-100 case: the last dead server
	// first probed after 4.9 intervals, then the failed probe, suspicion
	// (log10(n) <= 1), DownAfter, the re-evaluation tick and two gossips.
	worst := time.Duration(4.9*float64(d.ProbeInterval)) + d.ProbeInterval +
		time.Duration(d.SuspicionMult)*d.ProbeInterval + d.DownAfter + d.ProbeInterval/2 + 2*d.GossipInterval
	if worst >= 10*time.Second {
		t.Fatalf("default timing detects in %s in 1 case out of 100, not within 10 s", worst)
	}
}
