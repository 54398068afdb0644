package deploy

import (
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// metricsContract is every metric name the rules and the dashboard may
// use, with its type: the contract of issue 8 ("the SLO rules, dashboard
// and e2e test use exactly these"), plus the inventory metrics that
// predate it and are kept, and the metrics of sites and DR (issue 11),
// which only a server in a site serves. A histogram also provides its
// _bucket, _count and _sum series.
var metricsContract = map[string]string{
	"moxxie_build_info": "gauge",

	"moxxie_raft_state":                  "gauge",
	"moxxie_raft_leader":                 "gauge",
	"moxxie_raft_term":                   "gauge",
	"moxxie_raft_commit_index":           "gauge",
	"moxxie_raft_applied_index":          "gauge",
	"moxxie_raft_last_contact_seconds":   "gauge",
	"moxxie_raft_apply_duration_seconds": "histogram",
	"moxxie_raft_snapshots_total":        "counter",
	"moxxie_raft_peers":                  "gauge",

	"moxxie_fsm_applies_total":      "counter",
	"moxxie_fsm_apply_errors_total": "counter",

	"moxxie_api_requests_total":           "counter",
	"moxxie_api_request_duration_seconds": "histogram",
	"moxxie_api_forwards_total":           "counter",
	"moxxie_api_forward_duration_seconds": "histogram",

	"moxxie_ipam_prefix_utilization_ratio": "gauge",
	"moxxie_ipam_pool_utilization_ratio":   "gauge",
	"moxxie_ipam_addresses":                "gauge",

	"moxxie_quota_usage": "gauge",
	"moxxie_quota_limit": "gauge",

	"moxxie_inventory_sync_lag_seconds":      "gauge",
	"moxxie_inventory_objects":               "gauge",
	"moxxie_inventory_syncs_total":           "counter",
	"moxxie_inventory_changes_total":         "counter",
	"moxxie_inventory_sync_duration_seconds": "histogram",
	"moxxie_inventory_stale":                 "gauge",

	"moxxie_provider_requests_total":           "counter",
	"moxxie_provider_request_duration_seconds": "histogram",

	"moxxie_sdn_committed_version": "gauge",
	"moxxie_sdn_hosts":             "gauge",
	"moxxie_sdn_rollouts_total":    "counter",

	"moxxie_agent_apply_duration_seconds":               "histogram",
	"moxxie_agent_applies_total":                        "counter",
	"moxxie_agent_drift_events_total":                   "counter",
	"moxxie_agent_plan_version":                         "gauge",
	"moxxie_agent_last_apply_success_timestamp_seconds": "gauge",

	"moxxie_dns_queries_total": "counter",

	"moxxie_audit_chain_length":                       "gauge",
	"moxxie_tls_certificate_expiry_timestamp_seconds": "gauge",

	"moxxie_site_state":                                  "gauge",
	"moxxie_dr_replica_sync_age_seconds":                 "gauge",
	"moxxie_dr_replica_unrecoverable_guests":             "gauge",
	"moxxie_dr_replica_recovery_point_age_seconds":       "gauge",
	"moxxie_dr_replica_recovery_point_objective_seconds": "gauge",
	"moxxie_dr_plan_failed_over":                         "gauge",
	"moxxie_dr_plan_fenced":                              "gauge",
	"moxxie_dr_plan_self_fenced":                         "gauge",
	"moxxie_dr_conflicts":                                "gauge",

	// The Go runtime's metrics a server serves, for the memory alert.
	"go_memstats_heap_alloc_bytes": "gauge",
	"go_gc_gomemlimit_bytes":       "gauge",
}

// contractMetric returns the contract metric a series name belongs to:
// the name itself, or the histogram a _bucket, _count or _sum series is
// part of.
func contractMetric(series string) (string, bool) {
	if _, ok := metricsContract[series]; ok {
		return series, true
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		base, ok := strings.CutSuffix(series, suffix)
		if ok && metricsContract[base] == "histogram" {
			return base, true
		}
	}
	return "", false
}

var (
	// promqlString matches a PromQL string literal.
	promqlString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	// promqlIdent matches an identifier: a metric, recording rule, label
	// or function name, or a keyword.
	promqlIdent = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// exprNames returns the metric names (moxxie_... and the Go runtime's
// go_...) and the recording rule
// names (level:metric:operations) an expression refers to. String
// literals (label values, regular expressions) are left out.
func exprNames(expr string) (metrics, records []string) {
	bare := promqlString.ReplaceAllString(expr, `""`)
	for _, loc := range promqlIdent.FindAllStringIndex(bare, -1) {
		if loc[0] > 0 {
			// Part of a number or a duration such as 5m, not a name.
			if c := bare[loc[0]-1]; c >= '0' && c <= '9' || c == '.' {
				continue
			}
		}
		name := bare[loc[0]:loc[1]]
		switch {
		case strings.Contains(name, ":"):
			records = append(records, name)
		case strings.HasPrefix(name, "moxxie_"), strings.HasPrefix(name, "go_"):
			metrics = append(metrics, name)
		}
	}
	return metrics, records
}

// checkExpr reports the names in expr that are neither contract metrics
// nor recording rules in defined.
func checkExpr(expr string, defined map[string]bool) []string {
	var bad []string
	metrics, records := exprNames(expr)
	for _, m := range metrics {
		if _, ok := contractMetric(m); !ok {
			bad = append(bad, fmt.Sprintf("metric %s is not in the metrics contract", m))
		}
	}
	for _, r := range records {
		if !defined[r] {
			bad = append(bad, fmt.Sprintf("recording rule %s is not defined (before its use) in the rules file", r))
		}
	}
	return bad
}

func TestExprNames(t *testing.T) {
	metrics, records := exprNames(`sum by (cluster) (rate(moxxie_api_requests_total{code=~"5..",route!~"/v1/moxxie_x"}[5m])) / slo:api:ratio_rate5m offset 1h + 1e3 * moxxie_raft_term`)
	if want := []string{"moxxie_api_requests_total", "moxxie_raft_term"}; !slices.Equal(metrics, want) {
		t.Errorf("metrics = %q, want %q", metrics, want)
	}
	if want := []string{"slo:api:ratio_rate5m"}; !slices.Equal(records, want) {
		t.Errorf("records = %q, want %q", records, want)
	}
	if bad := checkExpr(`moxxie_api_request_duration_seconds_bucket + moxxie_api_requests_total_bucket + slo:x`, map[string]bool{}); len(bad) != 2 {
		t.Errorf("checkExpr found %q, want the _bucket of a counter and the undefined rule", bad)
	}
}

// promtool returns the path of promtool, or skips the test.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("skipped: promtool is not installed, so the rules and the dashboard's queries cannot be checked; apt-get install prometheus (CI installs it)")
	}
	return path
}
