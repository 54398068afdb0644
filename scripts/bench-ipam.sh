#!/usr/bin/env bash
# bench-ipam.sh: IPAM allocation throughput of a three-server Moxxie cluster
# against the durable put throughput of a three-member etcd cluster on this
# machine, in one run (see docs/benchmarks.md).
#
# Each round starts a three-member etcd cluster on loopback (default fsync
# settings), runs `moxxiebench etcd` against its HTTP gateway and stops it;
# then runs `moxxiebench alloc` three times, each on a new Moxxie dev
# cluster from a freshly built moxxied: one address per allocation through
# every server (--target all) and to the leader only, then COUNT addresses
# per allocation through every server. Every run starts from empty state,
# as each etcd run does, so that no run pays for the addresses an earlier
# one left (a count-100 run after two single-address runs used to start
# with about 40,000 addresses in the cluster). Each alloc run allocates
# from a 10.0.0.0/8 in a VRF of its own.
# The etcd and Moxxie runs of a round alternate, so both see the same kind
# of machine; the table compares each run with the etcd run of its round
# (allocations/s vs puts/s) and the batched run with the single-address run
# through every server (addresses/s), then gives the medians over the
# rounds. Everything it starts is stopped and its temporary directory
# removed on exit, also on failure.
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
#   COUNT       addresses per allocation of the batched run (default 100)
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
COUNT=${COUNT:-100}
ROUNDS=${ROUNDS:-1}

# shellcheck source=scripts/lib-bench.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib-bench.sh"
bench_init bench-ipam
common=(--clients "$CLIENTS" --duration "$DURATION" --warmup "$WARMUP")

files=()
for round in $(seq "$ROUNDS"); do
	sfx=""
	[ "$ROUNDS" -gt 1 ] && sfx=" #$round"

	echo "== round $round/$ROUNDS: etcd $(etcd_version), three members"
	start_etcd
	"${run[@]}" "$bench" etcd --endpoints "$etcd_endpoints" ${etcd_cacert:+--cacert "$etcd_cacert"} "${common[@]}" --cpu-pids "$(IFS=,; echo "${etcd_pids[*]}")" \
		--label "$(etcd_label)$sfx" --out "$tmp/results/etcd-$round.json"
	stop_etcd "$round"
	files+=("$tmp/results/etcd-$round.json")

	for run_args in "1 all" "1 leader" "$COUNT all"; do
		read -r count target <<<"$run_args"
		echo "== round $round/$ROUNDS: new moxxie dev cluster, three servers, alloc $count --target $target"
		start_moxxie
		# shellcheck disable=SC1091
		. "$tmp/moxxie/env"
		out=$tmp/results/moxxie-alloc-$count-$target-$round.json
		"${run[@]}" "$bench" alloc --addr "$MOXXIE_ADDR" --token "$MOXXIE_TOKEN" --cacert "$MOXXIE_CACERT" \
			--count "$count" --target "$target" "${common[@]}" --cpu-pids "$(dev_server_pids "$tmp/moxxie")" \
			--label "moxxie alloc $count --target $target$sfx" --out "$out"
		files+=("$out")
		stop_moxxie "$round-$count-$target"
	done
done

echo
echo "== results: $CLIENTS clients, $DURATION each (after $WARMUP warm-up), $(nproc) CPUs"
echo "== memory: $("$bench" pages 2>&1 || true)"
"$bench" report --medians "${files[@]}"
