package site

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// A server with another gossip key can neither join nor be seen.
func TestPool_WrongKeyCannotJoin(t *testing.T) {
	c := startCluster(t, 2, []string{"a"}, nil)
	cfg := testConfig(t, "b", "s1")
	cfg.Keyring = [][]byte{keyTwo}
	cfg.Join = []string{c.sites["a"][0].Local().Addr}
	stranger := startPool(t, cfg)
	if _, err := stranger.ml.Join(cfg.Join); err == nil {
		t.Fatal("a join with the wrong key succeeded")
	}
	if logsOf(t).decrypts.Load() == 0 {
		t.Fatal("memberlist logged no decryption failure")
	}
	holdsThroughout(t, 3*fastDetectTypical, append(c.all(), stranger), func(p *Pool) error {
		want := "a"
		if p == stranger {
			want = "b"
		}
		if got := p.Sites(); len(got) != 1 || got[0].Name != want {
			return fmt.Errorf("%s sees %+v", p.name, got)
		}
		return nil
	})
}

func TestPool_KeyRotation(t *testing.T) {
	c := startCluster(t, 2, []string{"a", "b", "c"}, nil)
	all := c.all()
	// The pool stays whole: no packet fails to decrypt, no site goes down,
	// and every site is up again after each step (memberlist may suspect a
	// live server for a moment under load, which has nothing to do with
	// keys).
	step := func(name string, f func(p *Pool) error) {
		t.Helper()
		for _, p := range all {
			if err := f(p); err != nil {
				t.Fatalf("%s on %s: %v", name, p.name, err)
			}
		}
		holdsThroughout(t, fastDetectTypical, all, notDown("a", "b", "c"))
		if n := logsOf(t).decrypts.Load(); n != 0 {
			t.Fatalf("after %s: %d decryption failures", name, n)
		}
		waitAll(t, fastDetect, all, func(p *Pool) error { return sitesIn(p, SiteUp, 2, "a", "b", "c") })
	}

	step("install", func(p *Pool) error { return p.InstallKey(keyTwo) })
	step("use", func(p *Pool) error { return p.UseKey(keyTwo) })
	for _, p := range all {
		if err := p.RemoveKey(keyTwo); !errors.Is(err, ErrPrimaryKey) {
			t.Fatalf("RemoveKey of the primary key on %s: %v, want ErrPrimaryKey", p.name, err)
		}
	}
	step("remove", func(p *Pool) error { return p.RemoveKey(keyOne) })

	for _, p := range all {
		primary, keys := p.Keys()
		if !bytes.Equal(primary, keyTwo) || len(keys) != 1 || !bytes.Equal(keys[0], keyTwo) {
			t.Fatalf("%s has keys %x, primary %x", p.name, keys, primary)
		}
	}

	// The pool now speaks only the new key: a server with the old one
	// cannot join, one with the new one can.
	old := testConfig(t, "d", "s1")
	old.Join = []string{c.sites["a"][0].Local().Addr}
	if _, err := startPool(t, old).ml.Join(old.Join); err == nil {
		t.Fatal("a join with the removed key succeeded")
	}
	fresh := testConfig(t, "e", "s1")
	fresh.Keyring = [][]byte{keyTwo}
	fresh.Join = old.Join
	newcomer := startPool(t, fresh)
	waitAll(t, fastDetect, append(all, newcomer), func(p *Pool) error {
		if s := siteState(p, "e"); s != SiteUp {
			return fmt.Errorf("%s sees e %q", p.name, s)
		}
		if s := siteState(p, "d"); s != "" {
			return fmt.Errorf("%s sees d %q", p.name, s)
		}
		return nil
	})
}

func TestPool_KeyErrors(t *testing.T) {
	p := startPool(t, testConfig(t, "a", "s1"))
	for _, tc := range []struct {
		name string
		f    func() error
	}{
		{"install a short key", func() error { return p.InstallKey([]byte("short")) }},
		{"use a key not installed", func() error { return p.UseKey(keyTwo) }},
		{"remove the primary key", func() error { return p.RemoveKey(keyOne) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.f(); err == nil {
				t.Fatal("no error")
			}
		})
	}
	// Keys returns copies.
	primary, all := p.Keys()
	primary[0], all[0][0] = 9, 9
	if primary, _ := p.Keys(); !bytes.Equal(primary, keyOne) {
		t.Fatalf("the keyring changed through Keys: %x", primary)
	}
}
