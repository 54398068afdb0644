#!/usr/bin/env bash
# bench-quota.sh: what quota admission adds to address allocation latency
# (docs/benchmarks.md, issue 6's target: under 5%).
#
# It starts one Moxxie dev cluster and, ROUNDS times, runs `moxxiebench
# alloc` four ways in turn, each from a new prefix of its own: one client
# (latency) and CLIENTS clients (throughput), each without a tenant and
# for a tenant with an IPv4 quota (created by moxxiebench with a limit no
# run reaches, so every allocation is admitted against it and counted in
# its usage in the same raft Apply), alternating which of the two runs
# first. It prints the runs and, per load, the median over the rounds of
# the mean and p50 latency with quota relative to without. Everything it starts is stopped and its temporary directory
# removed on exit, also on failure.
#
# Environment:
#   CLIENTS     concurrent clients of the throughput runs (default 64)
#   DURATION    measured duration of each run (default 10s)
#   WARMUP      unmeasured warm-up before each run (default 2s)
#   ROUNDS      repetitions (default 3)
#   NICE        niceness of the cluster and moxxiebench, e.g. -10 (default 0)
#   RESULTS     keep the JSON results in this directory (default: discarded)
#   TMPDIR      where the cluster keeps its data (default /tmp)
set -euo pipefail

CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}

# shellcheck source=scripts/lib-bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib-bench.sh"
bench_init bench-quota
if ! command -v jq >/dev/null 2>&1; then
	echo "bench-quota: jq not found; install it with: apt-get install -y jq" >&2
	exit 1
fi

start_moxxie
# shellcheck disable=SC1091
. "$tmp/moxxie/env"
files=()
n=0
for round in $(seq "$ROUNDS"); do
	for clients in 1 "$CLIENTS"; do
		# The cluster grows with every run, which slows later runs a
		# little: odd rounds run without a tenant first, even rounds
		# with it first, so that neither side always runs on the
		# larger state.
		order=("" quota-bench)
		if ((round % 2 == 0)); then
			order=(quota-bench "")
		fi
		for tenant in "${order[@]}"; do
			n=$((n + 1))
			label="alloc c=$clients ${tenant:+tenant+quota}${tenant:-no tenant} #$round"
			out=$tmp/results/run-$n.json
			"${run[@]}" "$bench" alloc --addr "$MOXXIE_ADDR" --token "$MOXXIE_TOKEN" --cacert "$MOXXIE_CACERT" \
				--prefix "10.$n.0.0/16" ${tenant:+--tenant "$tenant"} --clients "$clients" --duration "$DURATION" --warmup "$WARMUP" \
				--cpu-pids "$(dev_server_pids "$tmp/moxxie")" --label "$label" --out "$out"
			files+=("$out")
		done
	done
done
stop_moxxie 1

echo
echo "== results: $(nproc) CPUs"
"$bench" report "${files[@]}"
echo
echo "== with quota / without, per round (mean and p50 latency, writes/s), and the median"
jq -rs --argjson clients "$CLIENTS" '
	def median: sort | if length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end;
	[ .[] | {c: .clients, t: (.tenant // ""), round: (.label | capture("#(?<r>[0-9]+)$").r), mean: .latency.mean_ms, p50: .latency.p50_ms, w: .writes_per_second} ]
	| group_by(.c)[] | . as $runs
	| [ $runs | group_by(.round)[] | { mean: ((map(select(.t != ""))[0].mean) / (map(select(.t == ""))[0].mean)),
	                                     p50: ((map(select(.t != ""))[0].p50) / (map(select(.t == ""))[0].p50)),
	                                     w: ((map(select(.t != ""))[0].w) / (map(select(.t == ""))[0].w)) } ] as $r
	| "clients \($runs[0].c): mean latency x\([$r[].mean] | map(. * 1000 | round / 1000))  p50 x\([$r[].p50] | map(. * 1000 | round / 1000))  writes/s x\([$r[].w] | map(. * 1000 | round / 1000))  median: mean x\([$r[].mean] | median * 1000 | round / 1000), p50 x\([$r[].p50] | median * 1000 | round / 1000), writes/s x\([$r[].w] | median * 1000 | round / 1000)"
' "${files[@]}"
