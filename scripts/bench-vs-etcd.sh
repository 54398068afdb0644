#!/usr/bin/env bash
# bench-vs-etcd.sh: durable write throughput of Moxxie against a three-member
# etcd cluster on this machine, in one run (see docs/benchmarks.md).
#
# It starts a three-member etcd cluster on loopback (default fsync
# settings), runs `moxxiebench etcd` against its HTTP gateway and stops it;
# then starts a Moxxie dev cluster from a freshly built moxxied and runs
# `moxxiebench write --target all` and `--target leader` with the same
# parameters; and prints a comparison table. Each system runs alone, so the
# two never compete for the CPU or the disk. Everything it starts is
# stopped and its temporary directory removed on exit, also on failure.
#
# The results start with what the first write to a fresh page of memory
# costs on this machine (`moxxiebench pages`): under some hypervisors tens of
# times what it costs on bare metal, which weighs more on a Moxxie server,
# whose heap grows with what it stores, than on etcd, whose data lives in
# bbolt's file mapping.
#
# Environment:
#   CLIENTS     concurrent clients (default 64)
#   DURATION    measured duration of each run (default 20s)
#   WARMUP      unmeasured warm-up before each run (default 2s)
#   VALUE_SIZE  bytes per value (default 64)
#   KEYS        key space (default 10000)
#   ROUNDS      repeat etcd, moxxie (default 1)
#   RESULTS     keep the JSON results and the server logs in this directory
#               (default: discarded)
#   NICE        run the clusters and moxxiebench at this niceness, e.g. -10 on
#               a machine shared with other work (default 0: unchanged)
#   ETCD_TLS    1 (default): etcd serves clients over TLS and its members
#               talk mutual TLS, as Moxxie always does; 0: plain HTTP
#   TMPDIR      where the clusters keep their data (default /tmp)
set -euo pipefail

CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-2s}
VALUE_SIZE=${VALUE_SIZE:-64}
KEYS=${KEYS:-10000}
ROUNDS=${ROUNDS:-1}

# shellcheck source=scripts/lib-bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib-bench.sh"
bench_init bench-vs-etcd
common=(--clients "$CLIENTS" --duration "$DURATION" --warmup "$WARMUP" --value-size "$VALUE_SIZE" --keys "$KEYS")

files=()
for round in $(seq "$ROUNDS"); do
	sfx=""
	[ "$ROUNDS" -gt 1 ] && sfx=" #$round"

	echo "== round $round/$ROUNDS: etcd $(etcd_version), three members"
	start_etcd
	"${run[@]}" "$bench" etcd --endpoints "$etcd_endpoints" ${etcd_cacert:+--cacert "$etcd_cacert"} "${common[@]}" --cpu-pids "$(IFS=,; echo "${etcd_pids[*]}")" --label "$(etcd_label)$sfx" --out "$tmp/results/etcd-$round.json"
	stop_etcd "$round"
	files+=("$tmp/results/etcd-$round.json")

	echo "== round $round/$ROUNDS: moxxie dev cluster, three servers"
	start_moxxie
	# shellcheck disable=SC1091
	. "$tmp/moxxie/env"
	for target in all leader; do
		"${run[@]}" "$bench" write --addr "$MOXXIE_ADDR" --token "$MOXXIE_TOKEN" --cacert "$MOXXIE_CACERT" --target "$target" \
			"${common[@]}" --cpu-pids "$(dev_server_pids "$tmp/moxxie")" --label "moxxie --target $target$sfx" --out "$tmp/results/moxxie-$target-$round.json"
		files+=("$tmp/results/moxxie-$target-$round.json")
	done
	stop_moxxie "$round"
done

echo
echo "== results: $CLIENTS clients, $DURATION each (after $WARMUP warm-up), $VALUE_SIZE-byte values, $(nproc) CPUs"
echo "== memory: $("$bench" pages 2>&1 || true)"
"$bench" report "${files[@]}"
