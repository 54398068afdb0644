package site

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestPool_ThreeSitesUp(t *testing.T) {
	c := startCluster(t, 3, []string{"a", "b", "c"}, func(cfg *Config) {
		if cfg.Site == "c" {
			cfg.Role = RoleWitness
		}
	})
	for _, p := range c.all() {
		for _, s := range p.Sites() {
			wantRole := RoleServer
			if s.Name == "c" {
				wantRole = RoleWitness
			}
			if s.Role != wantRole || s.Quorum != 2 || len(s.Votes) != 0 || !s.DownSince.IsZero() {
				t.Errorf("%s sees %s: role %q quorum %d votes %v down since %v", p.name, s.Name, s.Role, s.Quorum, s.Votes, s.DownSince)
			}
			for i, m := range s.Members {
				node := fmt.Sprintf("s%d", i+1)
				want := Member{
					Name:       s.Name + "/" + node,
					Site:       s.Name,
					Node:       node,
					Role:       wantRole,
					APIAddress: fmt.Sprintf("https://%s-%s.example:8443", s.Name, node),
					Addr:       c.sites[s.Name][i].Local().Addr,
					State:      StateAlive,
					Since:      m.Since,
				}
				if m.Since.IsZero() || !reflect.DeepEqual(m, want) {
					t.Errorf("%s sees member\n%+v\nwant\n%+v", p.name, m, want)
				}
			}
		}
	}

	// Health propagates, and Changed fires for it.
	leader := c.sites["b"][1]
	watched := c.sites["a"][0]
	changed := watched.Changed()
	leader.SetHealth(Health{Leader: true, Healthy: true, FailedOver: []string{"c"}})
	leader.SetHealth(Health{Leader: true, Healthy: true, FailedOver: []string{"c"}})
	waitAll(t, 5*time.Second, c.all(), func(p *Pool) error {
		s, _ := p.Site("b")
		if m := s.Members[1]; !m.Leader || !m.Healthy || !slices.Equal(m.FailedOver, []string{"c"}) {
			return fmt.Errorf("%s sees %s with %+v", p.name, m.Name, m.Health)
		}
		return nil
	})
	select {
	case <-changed:
	default:
		t.Errorf("Changed of %s did not fire when the health of %s changed", watched.name, leader.name)
	}
	if got := leader.Local().Health; !got.equal(Health{Leader: true, Healthy: true, FailedOver: []string{"c"}}) {
		t.Errorf("Local().Health = %+v", got)
	}
}

// shutdownSite crashes every server of site and returns when it did.
func shutdownSite(t *testing.T, c *cluster, site string) time.Time {
	t.Helper()
	for _, p := range c.sites[site] {
		if err := p.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
	return time.Now()
}

// detect waits until every observer sees site down with votes from want,
// and returns how long each took from start.
func detect(t *testing.T, start time.Time, timeout time.Duration, observers []*Pool, site string, want []string) []time.Duration {
	t.Helper()
	took := make([]time.Duration, len(observers))
	waitFor(t, timeout, func() error {
		var err error
		for i, p := range observers {
			if took[i] != 0 {
				continue
			}
			s, _ := p.Site(site)
			if s.State != SiteDown {
				err = errors.Join(err, fmt.Errorf("%s sees %s %s (votes %v, quorum %d)", p.name, site, s.State, s.Votes, s.Quorum))
				continue
			}
			if !slices.Equal(s.Votes, want) {
				t.Errorf("%s sees %s down with votes %v, want %v", p.name, site, s.Votes, want)
			}
			took[i] = time.Since(start)
		}
		return err
	})
	return took
}

func TestPool_SiteFailureDetected(t *testing.T) {
	c := startCluster(t, 3, []string{"a", "b", "c"}, nil)
	start := shutdownSite(t, c, "a")
	took := detect(t, start, fastDetect, c.all("b", "c"), "a", []string{"b", "c"})
	t.Logf("site a down in every view of b and c after %v (fast timing)", took)
	for _, p := range c.all("b", "c") {
		s, _ := p.Site("a")
		for _, m := range s.Members {
			if m.State != StateDead {
				t.Errorf("%s sees %s %s", p.name, m.Name, m.State)
			}
		}
		if s.DownSince.Before(start) {
			t.Errorf("%s: down since %v, before the failure at %v", p.name, s.DownSince, start)
		}
	}
	// A server may see the site down on the others' votes a tick before
	// its own DownAfter has passed and it votes too.
	waitAll(t, 5*time.Second, c.all("b", "c"), func(p *Pool) error {
		if got := p.Local().Down; !slices.Equal(got, []string{"a"}) {
			return fmt.Errorf("%s votes %v down, want [a]", p.name, got)
		}
		return nil
	})
}

func TestPool_SiteFailureDefaultTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short: detecting a site failure with the default timers takes about 6 s; run without -short (CI does)")
	}
	c := startCluster(t, 3, []string{"a", "b", "c"}, func(cfg *Config) { cfg.Timing = Timing{} })
	start := shutdownSite(t, c, "a")
	took := detect(t, start, 10*time.Second, c.all("b", "c"), "a", []string{"b", "c"})
	t.Logf("site a down in every view of b and c after %v (default timing)", took)
}

func TestPool_SiteLeft(t *testing.T) {
	c := startCluster(t, 3, []string{"a", "b", "c"}, nil)
	for _, p := range c.sites["a"] {
		// On a loaded machine memberlist may not confirm its leave
		// broadcast in time. Leave says so but the server still leaves;
		// what counts is that the others see the site left.
		if err := p.Leave(5 * time.Second); err != nil {
			t.Logf("%s: %v", p.name, err)
		}
	}
	waitAll(t, 3*fastDetect, c.all("b", "c"), func(p *Pool) error {
		s, _ := p.Site("a")
		if s.State != SiteLeft {
			return fmt.Errorf("%s sees a %s: %+v", p.name, s.State, s.Members)
		}
		return nil
	})
	// A site that left stays left, and does not count in the quorum of the
	// others.
	holdsThroughout(t, 3*fastDetectTypical, c.all("b", "c"), func(p *Pool) error {
		for _, s := range p.Sites() {
			if s.Name == "a" && (s.State != SiteLeft || s.Quorum != 2) {
				return fmt.Errorf("%s sees a %s with quorum %d, want left with 2", p.name, s.State, s.Quorum)
			}
			if s.Name != "a" && (s.State == SiteDown || s.Quorum != 1) {
				return fmt.Errorf("%s sees %s %s with quorum %d, want quorum 1", p.name, s.Name, s.State, s.Quorum)
			}
		}
		return nil
	})
}

func TestPool_OneServerDownIsDegraded(t *testing.T) {
	c := startCluster(t, 3, []string{"a", "b", "c"}, nil)
	if err := c.sites["a"][0].Shutdown(); err != nil {
		t.Fatal(err)
	}
	observers := c.all()[1:]
	crashed := c.sites["a"][0].name
	waitAll(t, fastDetect, observers, func(p *Pool) error {
		s, _ := p.Site("a")
		if s.State != SiteDegraded || s.Members[0].State != StateDead {
			return fmt.Errorf("%s sees a %s, %s %s", p.name, s.State, crashed, s.Members[0].State)
		}
		return nil
	})
	holdsThroughout(t, 3*fastDetectTypical, observers, func(p *Pool) error {
		// Under load memberlist may also suspect a live server for a
		// moment (degraded or unreachable); a stays dead, and a is not down.
		if s, _ := p.Site("a"); s.State == SiteDown || s.State == SiteUp {
			return fmt.Errorf("%s sees a %s (votes %v)", p.name, s.State, s.Votes)
		}
		return nil
	})
}

// With two sites the quorum of the other sites is one: the surviving site
// declares the other down on its own. It cannot tell a failure from a
// partition (TestPool_TwoSitesPartition).
func TestPool_TwoSitesFailure(t *testing.T) {
	c := startCluster(t, 3, []string{"a", "b"}, nil)
	start := shutdownSite(t, c, "b")
	took := detect(t, start, fastDetect, c.sites["a"], "b", []string{"a"})
	t.Logf("site b down in every view of a after %v", took)
	for _, p := range c.sites["a"] {
		if s, _ := p.Site("b"); s.Quorum != 1 {
			t.Errorf("%s: quorum %d, want 1", p.name, s.Quorum)
		}
	}
}

func TestConfig_ValidateStartFails(t *testing.T) {
	cfg := testConfig(t, "a", "s1")
	cfg.Keyring = nil
	if _, err := Start(cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Start without a keyring: %v, want ErrInvalidConfig", err)
	}
}

// TestPool_GoneServerForgotten: a server that dies for good while the rest
// of its site runs (replaced under another name) is forgotten after
// ReapAfter, so its site is up again; a site with no server alive keeps
// its servers and stays down.
func TestPool_GoneServerForgotten(t *testing.T) {
	const reapAfter = timingScale * 1500 * time.Millisecond
	c := startCluster(t, 2, []string{"a", "b", "c"}, func(cfg *Config) {
		cfg.Timing = fastTiming
		cfg.Timing.ReapAfter = reapAfter
	})
	gone := c.sites["a"][0]
	if err := gone.Shutdown(); err != nil {
		t.Fatal(err)
	}
	shutdownSite(t, c, "c")
	observers := []*Pool{c.sites["a"][1], c.sites["b"][0], c.sites["b"][1]}
	waitAll(t, fastDetect, observers, func(p *Pool) error {
		if s, _ := p.Site("a"); s.State != SiteDegraded {
			return fmt.Errorf("%s sees a %s", p.name, s.State)
		}
		return nil
	})
	waitAll(t, fastDetect+reapAfter+time.Second, observers, func(p *Pool) error {
		s, _ := p.Site("a")
		if s.State != SiteUp || len(s.Members) != 1 {
			return fmt.Errorf("%s sees a %s with %d members, want up with 1", p.name, s.State, len(s.Members))
		}
		return nil
	})
	holdsThroughout(t, 2*reapAfter, observers, func(p *Pool) error {
		if s, _ := p.Site("c"); s.State != SiteDown || len(s.Members) != 2 {
			return fmt.Errorf("%s sees c %s with %d members, want down with 2", p.name, s.State, len(s.Members))
		}
		return nil
	})
}

func TestReap(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	members := map[string]Member{
		"a/s1": {Name: "a/s1", Site: "a", State: StateAlive, Since: ago(100 * time.Hour)},
		"a/s2": {Name: "a/s2", Site: "a", State: StateDead, Since: ago(73 * time.Hour)},  // replaced: forgotten
		"a/s3": {Name: "a/s3", Site: "a", State: StateLeft, Since: ago(72 * time.Hour)},  // left long ago: forgotten
		"a/s4": {Name: "a/s4", Site: "a", State: StateDead, Since: ago(71 * time.Hour)},  // not yet
		"b/s1": {Name: "b/s1", Site: "b", State: StateDead, Since: ago(500 * time.Hour)}, // the whole site: kept
		"b/s2": {Name: "b/s2", Site: "b", State: StateLeft, Since: ago(500 * time.Hour)},
	}
	gone := reap(members, 72*time.Hour, now)
	var names []string
	for _, m := range gone {
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{"a/s2", "a/s3"}) {
		t.Errorf("reaped %v, want [a/s2 a/s3]", names)
	}
	var left []string
	for name := range members {
		left = append(left, name)
	}
	slices.Sort(left)
	if !slices.Equal(left, []string{"a/s1", "a/s4", "b/s1", "b/s2"}) {
		t.Errorf("kept %v", left)
	}
}
