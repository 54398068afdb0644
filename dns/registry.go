package dns

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrSourceExists is returned by RegisterSource for a name already in use.
var ErrSourceExists = errors.New("moxxie: a source is already registered under this name")

// sources maps the names Corefiles use ("moxxie NAME") to Sources: a
// Corefile is text and cannot carry a Go value.
var sources struct {
	sync.Mutex
	m map[string]*registered // guarded by the mutex
}

// registered is a source and the handler a Corefile set up for it.
type registered struct {
	src     Source
	handler *Moxxie
	// queries is where the handler counts moxxie_dns_queries_total: the
	// counter Serve registered in ServerConfig.Metrics, nil for sources
	// registered with RegisterSource (the default registry's).
	queries *prometheus.CounterVec
}

// RegisterSource makes src available to Corefiles as "moxxie NAME". Serve
// registers its source itself; this is for callers writing their own
// Corefile. Unregister the name when the server using it has stopped.
func RegisterSource(name string, src Source) error {
	return registerSource(name, src, nil)
}

// registerSource registers src as name, with the counter its handler
// counts queries in (nil: the default registry's).
func registerSource(name string, src Source, queries *prometheus.CounterVec) error {
	if name == "" || src == nil {
		return errors.New("moxxie: RegisterSource needs a name and a source")
	}
	sources.Lock()
	defer sources.Unlock()
	if _, ok := sources.m[name]; ok {
		return fmt.Errorf("%w: %q", ErrSourceExists, name)
	}
	if sources.m == nil {
		sources.m = make(map[string]*registered)
	}
	sources.m[name] = &registered{src: src, queries: queries}
	return nil
}

// UnregisterSource forgets the source registered as name.
func UnregisterSource(name string) {
	sources.Lock()
	defer sources.Unlock()
	delete(sources.m, name)
}

// useSource returns the source registered as name and the counter of its
// queries, and records the handler serving it.
func useSource(name string, m *Moxxie) (Source, *prometheus.CounterVec, bool) {
	sources.Lock()
	defer sources.Unlock()
	r, ok := sources.m[name]
	if !ok {
		return nil, nil, false
	}
	r.handler = m
	return r.src, r.queries, true
}

// handlerOf returns the handler last set up for the source registered as name.
func handlerOf(name string) *Moxxie {
	sources.Lock()
	defer sources.Unlock()
	if r, ok := sources.m[name]; ok {
		return r.handler
	}
	return nil
}
