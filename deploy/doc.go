// Package deploy holds no code. Its directory ships the monitoring files
// of a Moxxie installation, and its tests check them:
//
//   - prometheus/moxxie-rules.yml: the SLO recording rules, the burn-rate
//     alerts and the plain alerts (docs/slo.md, docs/runbooks/), unit
//     tested by prometheus/moxxie-rules_test.yml with promtool;
//   - grafana/moxxie-dashboard.json: the dashboard, importable with a
//     Prometheus data source as its DS_PROMETHEUS input.
//
// Both may use only the metric names of the metrics contract (metricsContract
// in contract_test.go) and the recording rules the rules file defines, so a
// renamed metric breaks a test here rather than an alert in production.
package deploy
