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
#   TMPDIR      where the clusters keep their data (default /tmp)
set -euo pipefail

CLIENTS=${CLIENTS:-64}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-2s}
VALUE_SIZE=${VALUE_SIZE:-64}
KEYS=${KEYS:-10000}
ROUNDS=${ROUNDS:-1}

NICE=${NICE:-0}
run=(nice -n "$NICE")

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if ! command -v etcd >/dev/null 2>&1; then
	echo "bench-vs-etcd: etcd not found; install it with: apt-get install -y etcd-server" >&2
	exit 1
fi
if ! command -v go >/dev/null 2>&1; then
	echo "bench-vs-etcd: go not found in PATH" >&2
	exit 1
fi

tmp=$(cd "$(mktemp -d "${TMPDIR:-/tmp}/moxxie-bench.XXXXXX")" && pwd -P)
pids=()

# stop sends SIGTERM to the given pids, waits up to 15 s for them to exit,
# then SIGKILLs what is left.
stop() {
	local p i
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for i in $(seq 150); do
		local alive=0
		for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# stop_dev_servers kills the moxxied servers a dev supervisor started, in case
# the supervisor itself died without stopping them.
stop_dev_servers() {
	local sj=$1/servers.json p
	[ -f "$sj" ] || return 0
	while read -r p; do
		if { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q "moxxied server --config $1/"; then
			kill -KILL "$p" 2>/dev/null || true
		fi
	done < <(grep -o '"pid": *[0-9]*' "$sj" | grep -o '[0-9]*$')
}

# dev_server_pids prints the pids in a dev cluster's servers.json, comma-separated.
dev_server_pids() {
	grep -o '"pid": *[0-9]*' "$1/servers.json" | grep -o '[0-9]*$' | paste -sd, -
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ "${#pids[@]}" -gt 0 ]; then stop "${pids[@]}"; fi
	stop_dev_servers "$tmp/moxxie"
	if [ -n "${RESULTS:-}" ] && [ -d "$tmp/results" ]; then
		mkdir -p "$RESULTS"
		cp "$tmp"/results/* "$RESULTS"/ 2>/dev/null || true
	fi
	if [ "$rc" != 0 ]; then
		echo "bench-vs-etcd: failed (exit $rc); last lines of the logs:" >&2
		for f in "$tmp"/etcd/*.log "$tmp"/moxxie-dev.log "$tmp"/moxxie/*/moxxied.log; do
			[ -f "$f" ] && { echo "== $f" >&2; tail -n 15 "$f" >&2; }
		done
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== building moxxied and moxxiebench"
mkdir -p "$tmp/bin" "$tmp/results"
(cd "$root" && go build -o "$tmp/bin/moxxied" ./cmd/moxxied && go build -o "$tmp/bin/moxxiebench" ./bench/moxxiebench)
bench=$tmp/bin/moxxiebench
common=(--clients "$CLIENTS" --duration "$DURATION" --warmup "$WARMUP" --value-size "$VALUE_SIZE" --keys "$KEYS")

# start_etcd starts a three-member etcd cluster in $tmp/etcd and sets
# etcd_pids and etcd_endpoints.
start_etcd() {
	local ports i cluster=""
	mapfile -t ports < <("$bench" ports 6)
	rm -rf "$tmp/etcd" && mkdir -p "$tmp/etcd"
	for i in 1 2 3; do
		cluster+="${cluster:+,}e$i=http://127.0.0.1:${ports[$((2 * i - 1))]}"
	done
	etcd_pids=()
	etcd_endpoints=""
	for i in 1 2 3; do
		local cport=${ports[$((2 * i - 2))]} pport=${ports[$((2 * i - 1))]}
		"${run[@]}" etcd --name "e$i" --data-dir "$tmp/etcd/e$i" \
			--listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
			--listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
			--initial-cluster "$cluster" --initial-cluster-token "moxxie-bench-$$" --initial-cluster-state new \
			--logger zap --log-outputs stderr >"$tmp/etcd/e$i.log" 2>&1 &
		etcd_pids+=($!)
		pids+=($!)
		etcd_endpoints+="${etcd_endpoints:+,}http://127.0.0.1:$cport"
	done
}

# start_moxxie starts a dev cluster in $tmp/moxxie, waits for its env file
# and sets dev_pid.
start_moxxie() {
	rm -rf "$tmp/moxxie"
	"${run[@]}" "$tmp/bin/moxxied" dev --data-dir "$tmp/moxxie" >"$tmp/moxxie-dev.log" 2>&1 &
	dev_pid=$!
	pids+=("$dev_pid")
	local i
	for i in $(seq 900); do
		[ -s "$tmp/moxxie/env" ] && [ -s "$tmp/moxxie/servers.json" ] && return 0
		if ! kill -0 "$dev_pid" 2>/dev/null; then
			echo "bench-vs-etcd: moxxied dev exited" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "bench-vs-etcd: moxxied dev not ready after 90s" >&2
	return 1
}

# forget removes pids that were stopped from the cleanup list.
forget() {
	local keep=() p q skip
	for p in "${pids[@]}"; do
		skip=0
		for q in "$@"; do [ "$p" = "$q" ] && skip=1; done
		[ "$skip" = 0 ] && keep+=("$p")
	done
	pids=("${keep[@]+"${keep[@]}"}")
}

files=()
for round in $(seq "$ROUNDS"); do
	sfx=""
	[ "$ROUNDS" -gt 1 ] && sfx=" #$round"

	echo "== round $round/$ROUNDS: etcd $(etcd --version | awk '/etcd Version/ {print $3}'), three members"
	start_etcd
	"${run[@]}" "$bench" etcd --endpoints "$etcd_endpoints" "${common[@]}" --cpu-pids "$(IFS=,; echo "${etcd_pids[*]}")" --label "etcd /v3/kv/put$sfx" --out "$tmp/results/etcd-$round.json"
	stop "${etcd_pids[@]}"
	forget "${etcd_pids[@]}"
	for i in 1 2 3; do cp "$tmp/etcd/e$i.log" "$tmp/results/etcd-$round-e$i.log"; done
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
	stop "$dev_pid"
	forget "$dev_pid"
	stop_dev_servers "$tmp/moxxie"
	for f in "$tmp"/moxxie/*/moxxied.log; do
		cp "$f" "$tmp/results/moxxie-$round-$(basename "$(dirname "$f")").log"
	done
done

echo
echo "== results: $CLIENTS clients, $DURATION each (after $WARMUP warm-up), $VALUE_SIZE-byte values, $(nproc) CPUs"
"$bench" report "${files[@]}"
