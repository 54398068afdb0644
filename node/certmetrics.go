package node

import (
	"crypto/x509"
	"sync"
	"weak"

	"github.com/moxxie/moxxie/pki"
	"github.com/prometheus/client_golang/prometheus"
)

// certExpiryDesc describes moxxie_tls_certificate_expiry_timestamp_seconds:
// when a certificate in use stops being valid, as a Unix time. Alert on
// it minus time() to renew before a server drops out of the cluster.
var certExpiryDesc = prometheus.NewDesc(
	"moxxie_tls_certificate_expiry_timestamp_seconds",
	"When a TLS certificate this process uses expires (its NotAfter), in seconds since the Unix epoch; role is server or ca, name the certificate's common name.",
	[]string{"role", "name"}, nil,
)

// certExpiry is the collector of certificate expiry times, registered in
// the default registry that GET /v1/metrics serves.
var certExpiry = func() *certCollector {
	c := &certCollector{}
	prometheus.MustRegister(c)
	return c
}()

// certCollector reports, at scrape time, the expiry of the certificates
// every server of this process uses: its own server certificate and the CA
// certificates it trusts. It reads them after each reload, so a renewed
// certificate shows at the next scrape. It holds the servers' certificate
// sets weakly: a server that is gone stops being reported.
type certCollector struct {
	mu   sync.Mutex
	sets []weak.Pointer[certs] // guarded by mu
}

// add starts reporting the certificates of cs.
func (c *certCollector) add(cs *certs) {
	c.mu.Lock()
	defer c.mu.Unlock()
	live := c.sets[:0]
	for _, p := range c.sets {
		if p.Value() != nil {
			live = append(live, p)
		}
	}
	c.sets = append(live, weak.Make(cs))
}

// Describe sends the one metric description.
func (c *certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- certExpiryDesc }

// Collect sends one gauge per distinct role and name. Several servers of
// one process (tests) may share a CA or a name: each label set is sent
// once, with the earliest expiry.
func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct{ role, name string }
	earliest := map[key]float64{}
	note := func(role string, cert *x509.Certificate) {
		k := key{role, cert.Subject.CommonName}
		v := float64(cert.NotAfter.Unix())
		if old, ok := earliest[k]; !ok || v < old {
			earliest[k] = v
		}
	}
	c.mu.Lock()
	for _, p := range c.sets {
		cs := p.Value()
		if cs == nil {
			continue
		}
		note(string(pki.RoleServer), cs.leaf())
		for _, ca := range cs.caCerts() {
			note("ca", ca)
		}
	}
	c.mu.Unlock()
	for k, v := range earliest {
		ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, v, k.role, k.name)
	}
}
