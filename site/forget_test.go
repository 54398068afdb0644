package site

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// siteLeft checks that p sees site left, out of the quorum of the others.
func siteLeft(site string, quorum int) func(*Pool) error {
	return func(p *Pool) error {
		for _, s := range p.Sites() {
			switch {
			case s.Name == site && s.State != SiteLeft:
				return fmt.Errorf("%s sees %s %s", p.name, site, s.State)
			case s.Name != site && s.Quorum != quorum:
				return fmt.Errorf("%s sees %s with quorum %d, want %d", p.name, s.Name, s.Quorum, quorum)
			}
		}
		return nil
	}
}

// Three sites, one lost for good: the other two cannot vote each other
// down until it is forgotten, and can again afterwards.
func TestPool_ForgetLostSite(t *testing.T) {
	c := startCluster(t, 2, []string{"a", "b", "c"}, nil)
	start := shutdownSite(t, c, "c")
	detect(t, start, fastDetect, c.all("a", "b"), "c", []string{"a", "b"})

	forgetter := c.sites["a"][0]
	if err := forgetter.Forget("c"); err != nil {
		t.Fatal(err)
	}
	if err := siteLeft("c", 1)(forgetter); err != nil {
		t.Fatalf("at once, on the server that forgot: %v", err)
	}
	waitAll(t, fastDetect, c.all("a", "b"), siteLeft("c", 1))
	if err := forgetter.Forget("c"); err != nil {
		t.Errorf("forgetting it again: %v", err)
	}
	// b lost too: a alone is the quorum now, and votes it down.
	start = shutdownSite(t, c, "b")
	detect(t, start, fastDetect, c.all("a"), "b", []string{"a"})
	if got := siteState(forgetter, "c"); got != SiteLeft {
		t.Errorf("c is %s after b went, want left", got)
	}
}

func TestPool_ForgetRefuses(t *testing.T) {
	c := startCluster(t, 2, []string{"a", "b"}, nil)
	p := c.sites["a"][0]
	if err := p.Forget("a"); !errors.Is(err, ErrOwnSite) {
		t.Errorf("own site: %v, want ErrOwnSite", err)
	}
	if err := p.Forget("nowhere"); !errors.Is(err, ErrUnknownSite) {
		t.Errorf("unknown site: %v, want ErrUnknownSite", err)
	}
	var alive *SiteAliveError
	if err := p.Forget("b"); !errors.As(err, &alive) || alive.Site != "b" || !slices.Equal(alive.Alive, []string{"b/s1", "b/s2"}) {
		t.Errorf("site up: %v, want a SiteAliveError naming b/s1 and b/s2", err)
	}
	// One server of b down: the site is degraded, not gone.
	if err := c.sites["b"][0].Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fastDetect, func() error {
		if s := siteState(p, "b"); s != SiteDegraded {
			return fmt.Errorf("b is %s", s)
		}
		return nil
	})
	if err := p.Forget("b"); !errors.As(err, &alive) || !slices.Equal(alive.Alive, []string{"b/s2"}) {
		t.Errorf("site degraded: %v, want a SiteAliveError naming b/s2", err)
	}
	if got := siteState(p, "b"); got != SiteDegraded {
		t.Errorf("b is %s after a refused forget, want degraded", got)
	}
}

// A site forgotten while it was only cut off counts again once the link
// is back, and a later failure of it is a failure (down), not a leave.
func TestPool_ForgetCutOffSiteComesBack(t *testing.T) {
	n := newTestNet()
	c := startCutCluster(t, n, []string{"a", "b", "c"}, nil)
	start := time.Now()
	n.partition("a", "c")
	n.partition("b", "c")
	detect(t, start, fastDetect, c.all("a", "b"), "c", []string{"a", "b"})
	if err := c.sites["b"][0].Forget("c"); err != nil {
		t.Fatal(err)
	}
	waitAll(t, fastDetect, c.all("a", "b"), siteLeft("c", 1))

	n.heal("a", "c")
	n.heal("b", "c")
	// Up is not enough: a site is up with some servers left.
	waitAll(t, 3*fastDetect, c.all(), func(p *Pool) error {
		if err := sitesIn(p, SiteUp, 3, "a", "b", "c"); err != nil {
			return err
		}
		for _, s := range p.Sites() {
			for _, m := range s.Members {
				if m.State != StateAlive {
					return fmt.Errorf("%s sees %s %s", p.name, m.Name, m.State)
				}
			}
		}
		return nil
	})
	for _, p := range c.all() {
		p.mu.Lock()
		for name, l := range p.left {
			if l.Forced {
				t.Errorf("%s still holds the forced notice of %s, alive", p.name, name)
			}
		}
		p.mu.Unlock()
	}
	start = shutdownSite(t, c, "c")
	detect(t, start, fastDetect, c.all("a", "b"), "c", []string{"a", "b"})
}
