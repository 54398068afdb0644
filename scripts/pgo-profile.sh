#!/usr/bin/env bash
# pgo-profile.sh: writes cmd/moxxied/default.pgo, the CPU profile that `go
# build` uses to optimize moxxied (profile-guided optimization; see
# docs/benchmarks.md, "Profile-guided optimization").
#
# It starts a dev cluster and drives it with moxxiebench, one load after
# another: single-address allocations through every server (the hot path
# the IPAM target measures), 100-address allocations, and cluster setting
# writes. During each load it takes a CPU profile of every server
# (GET /debug/pprof/profile with the dev cluster's admin token) and at the
# end merges them all into one profile. Run it again after changes to a hot
# path; a stale profile still builds, it only optimizes less.
#
# Environment:
#   DURATION  profiled seconds of each load (default 20)
#   OUT       the profile to write (default cmd/moxxied/default.pgo)
#   NICE      niceness of the cluster and moxxiebench (default 0)
set -euo pipefail

DURATION=${DURATION:-20}

# shellcheck source=scripts/lib-bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib-bench.sh"
OUT=${OUT:-$root/cmd/moxxied/default.pgo}
if ! command -v curl >/dev/null 2>&1; then
	echo "pgo-profile: curl not found; install it with: apt-get install -y curl" >&2
	exit 1
fi
bench_init pgo-profile no-etcd
mkdir -p "$tmp/profiles"

echo "== new moxxie dev cluster, three servers"
start_moxxie
# shellcheck disable=SC1091
. "$tmp/moxxie/env"
IFS=, read -r -a servers <<<"$MOXXIE_ADDR"
common=(--addr "$MOXXIE_ADDR" --token "$MOXXIE_TOKEN" --cacert "$MOXXIE_CACERT" --clients 64
	--target all --warmup 2s --duration "$((DURATION + 3))s")

# profile NAME MOXXIEBENCH-ARGS... runs one load and profiles every server
# for DURATION seconds of it, after its warm-up.
profile() {
	local name=$1 load i curls=()
	shift
	echo "== $name: $* (${DURATION}s profiled)"
	"${run[@]}" "$bench" "$@" "${common[@]}" --label "$name" --out "$tmp/results/$name.json" &
	load=$!
	pids+=("$load")
	sleep 3
	for i in "${!servers[@]}"; do
		curl -sSf --cacert "$MOXXIE_CACERT" -H "Authorization: Bearer $MOXXIE_TOKEN" \
			-o "$tmp/profiles/$name-s$((i + 1)).pb.gz" "${servers[$i]}/debug/pprof/profile?seconds=$DURATION" &
		curls+=("$!")
	done
	pids+=("${curls[@]}")
	for i in "${curls[@]}"; do wait "$i"; done
	wait "$load"
	forget "$load" "${curls[@]}"
}

profile alloc-1 alloc --count 1
profile alloc-100 alloc --count 100
profile write write
stop_moxxie profile

go tool pprof -proto "$tmp"/profiles/*.pb.gz >"$tmp/default.pgo"
mv "$tmp/default.pgo" "$OUT"
echo "== wrote $OUT ($(wc -c <"$OUT") bytes) from $(find "$tmp/profiles" -name '*.pb.gz' | wc -l) profiles"
