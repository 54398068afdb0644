#!/usr/bin/env bash
# bench-failover.sh: leader failover time of a Moxxie dev cluster (see
# docs/benchmarks.md).
#
# It starts a dev cluster from a freshly built moxxied, then runs
# `moxxiebench failover`: KILLS times, kill -9 the leader, time the first
# successful write through a survivor, wait for the dev supervisor to restart
# the killed server and for all three servers to be healthy again. The
# cluster is stopped and its temporary directory removed on exit, also on
# failure.
#
# Environment:
#   KILLS    number of leader kills (default 20)
#   RESULTS  keep the JSON result and the server logs in this directory
#            (default: discarded)
#   NICE     run the cluster and moxxiebench at this niceness, e.g. -10 on a
#            machine shared with other work (default 0: unchanged)
#   TMPDIR   where the cluster keeps its data (default /tmp)
#   FAILOVER_FLAGS  extra flags for moxxiebench failover, e.g. "--attempt-timeout 1s"
set -euo pipefail

KILLS=${KILLS:-20}

NICE=${NICE:-0}
run=(nice -n "$NICE")

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if ! command -v go >/dev/null 2>&1; then
	echo "bench-failover: go not found in PATH" >&2
	exit 1
fi

tmp=$(cd "$(mktemp -d "${TMPDIR:-/tmp}/moxxie-failover.XXXXXX")" && pwd -P)
dev_pid=""

# stop_dev_servers kills the moxxied servers the dev supervisor started, in
# case the supervisor died without stopping them.
stop_dev_servers() {
	local sj=$1/servers.json p
	[ -f "$sj" ] || return 0
	while read -r p; do
		if { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q "moxxied server --config $1/"; then
			kill -KILL "$p" 2>/dev/null || true
		fi
	done < <(grep -o '"pid": *[0-9]*' "$sj" | grep -o '[0-9]*$')
}

cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	if [ -n "$dev_pid" ]; then
		# SIGTERM: the supervisor stops its servers; give it 15 s.
		kill -TERM "$dev_pid" 2>/dev/null || true
		for i in $(seq 150); do
			kill -0 "$dev_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$dev_pid" 2>/dev/null || true
		wait "$dev_pid" 2>/dev/null || true
	fi
	stop_dev_servers "$tmp/moxxie"
	if [ -n "${RESULTS:-}" ]; then
		mkdir -p "$RESULTS"
		[ -f "$tmp/failover.json" ] && cp "$tmp/failover.json" "$RESULTS"/
		for f in "$tmp"/moxxie/*/moxxied.log; do
			[ -f "$f" ] && cp "$f" "$RESULTS/failover-$(basename "$(dirname "$f")").log"
		done
		[ -f "$tmp/moxxie-dev.log" ] && cp "$tmp/moxxie-dev.log" "$RESULTS/failover-dev.log"
	fi
	if [ "$rc" != 0 ]; then
		echo "bench-failover: failed (exit $rc); last lines of the logs:" >&2
		for f in "$tmp"/moxxie-dev.log "$tmp"/moxxie/*/moxxied.log; do
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
mkdir -p "$tmp/bin"
(cd "$root" && go build -o "$tmp/bin/moxxied" ./cmd/moxxied && go build -o "$tmp/bin/moxxiebench" ./bench/moxxiebench)

echo "== starting a moxxie dev cluster"
"${run[@]}" "$tmp/bin/moxxied" dev --data-dir "$tmp/moxxie" >"$tmp/moxxie-dev.log" 2>&1 &
dev_pid=$!
for i in $(seq 900); do
	[ -s "$tmp/moxxie/env" ] && [ -s "$tmp/moxxie/servers.json" ] && break
	if ! kill -0 "$dev_pid" 2>/dev/null; then
		echo "bench-failover: moxxied dev exited" >&2
		exit 1
	fi
	if [ "$i" = 900 ]; then
		echo "bench-failover: moxxied dev not ready after 90s" >&2
		exit 1
	fi
	sleep 0.1
done
# shellcheck disable=SC1091
. "$tmp/moxxie/env"

echo "== $KILLS leader kills"
# shellcheck disable=SC2086
"${run[@]}" "$tmp/bin/moxxiebench" failover --servers-json "$tmp/moxxie/servers.json" \
	--addr "$MOXXIE_ADDR" --token "$MOXXIE_TOKEN" --cacert "$MOXXIE_CACERT" \
	--kills "$KILLS" --out "$tmp/failover.json" ${FAILOVER_FLAGS:-}
