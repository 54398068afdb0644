package node

import (
	"github.com/moxxie/moxxie/pki"
	"github.com/moxxie/moxxie/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// certExpiryDesc describes moxxie_tls_certificate_expiry_timestamp_seconds:
// when a certificate in use stops being valid, as a Unix time. Alert on
// it minus time() to renew before a server drops out of the cluster.
var certExpiryDesc = prometheus.NewDesc(
	"moxxie_tls_certificate_expiry_timestamp_seconds",
	"When a TLS certificate this server uses expires (its NotAfter), in seconds since the Unix epoch; role is server or ca, name the certificate's common name.",
	[]string{"role", "name"}, nil,
)

// certCollector reports, at scrape time, the expiry of the certificates
// the server uses: its own server certificate and the CA certificates it
// trusts. It reads them as last reloaded, so a renewed certificate shows
// at the next scrape. A name is sent once per role, with its earliest
// expiry (a CA file may hold an old and a new CA of one name).
func certCollector(cs *certs) prometheus.Collector {
	return telemetry.NewCollector(func(ch chan<- prometheus.Metric) {
		leaf := cs.leaf()
		telemetry.Gauge(ch, certExpiryDesc, float64(leaf.NotAfter.Unix()), string(pki.RoleServer), leaf.Subject.CommonName)
		earliest := map[string]float64{}
		for _, ca := range cs.caCerts() {
			v := float64(ca.NotAfter.Unix())
			if old, ok := earliest[ca.Subject.CommonName]; !ok || v < old {
				earliest[ca.Subject.CommonName] = v
			}
		}
		for name, v := range earliest {
			telemetry.Gauge(ch, certExpiryDesc, v, "ca", name)
		}
	}, certExpiryDesc)
}
