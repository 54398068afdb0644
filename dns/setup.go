package dns

import (
	"net"
	"slices"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"
)

func init() {
	plugin.Register(pluginName, setup)
	dnsserver.Directives = withDirective(dnsserver.Directives)
}

// withDirective returns directives with "moxxie" inserted right before
// "forward": it answers for its zones and hands every other name on, so it
// runs after the plugins that shape requests (errors, log, cache, rewrite)
// and before those that resolve elsewhere.
func withDirective(directives []string) []string {
	if slices.Contains(directives, pluginName) {
		return directives
	}
	i := slices.Index(directives, "forward")
	if i < 0 {
		i = len(directives)
	}
	return slices.Insert(slices.Clone(directives), i, pluginName)
}

func setup(c *caddy.Controller) error {
	name, f, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	cfg := dnsserver.GetConfig(c)
	m := newMoxxie(serverLabel(cfg))
	m.Fall = f
	src, queries, ok := useSource(name, m)
	if !ok {
		return plugin.Error(pluginName, c.Errf("no source registered as %q", name))
	}
	m.metrics.countQueriesIn(queries)
	w := newWatcher(m, src)
	c.OnStartup(w.start)
	c.OnShutdown(func() error {
		err := w.close()
		m.metrics.unregister()
		return err
	})
	cfg.AddPlugin(func(next plugin.Handler) plugin.Handler {
		m.Next = next
		return m
	})
	return nil
}

// parse reads
//
//	moxxie NAME {
//	    fallthrough [ZONES...]
//	}
func parse(c *caddy.Controller) (string, fall.F, error) {
	var (
		name string
		f    fall.F
	)
	i := 0
	for c.Next() {
		if i > 0 {
			return "", f, plugin.ErrOnce
		}
		i++
		args := c.RemainingArgs()
		if len(args) != 1 {
			return "", f, c.ArgErr()
		}
		name = args[0]
		for c.NextBlock() {
			switch c.Val() {
			case "fallthrough":
				f.SetZonesFromArgs(c.RemainingArgs())
			default:
				return "", f, c.Errf("unknown property %q", c.Val())
			}
		}
	}
	if name == "" {
		return "", f, c.ArgErr()
	}
	return name, f, nil
}

// serverLabel names the server in metrics as CoreDNS does, "dns://host:port".
func serverLabel(cfg *dnsserver.Config) string {
	host := ""
	if len(cfg.ListenHosts) > 0 {
		host = cfg.ListenHosts[0]
	}
	return cfg.Transport + "://" + net.JoinHostPort(host, cfg.Port)
}
