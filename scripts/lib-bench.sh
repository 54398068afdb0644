# shellcheck shell=bash
# lib-bench.sh: what the bench scripts share: building the binaries,
# starting and stopping a three-member etcd cluster and a Moxxie dev
# cluster, and cleaning up on exit. Source it from a bash script that runs
# with set -euo pipefail; it is not meant to be run.
#
# bench_init NAME [no-etcd] checks for go and, unless told no-etcd, for
# etcd, creates the temporary directory $tmp, installs the EXIT trap that
# stops everything started and removes $tmp (copying results and logs to
# $RESULTS first), and builds moxxied and moxxiebench ($bench) into it. The
# caller then uses start_etcd / stop_etcd and start_moxxie / stop_moxxie
# around its runs, which write into $tmp/results.
#
# Globals it sets: bench_name, root, run (the nice prefix from $NICE), tmp,
# pids (everything to stop on exit), bench, etcd_pids, etcd_endpoints,
# dev_pid.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NICE=${NICE:-0}
run=(nice -n "$NICE")
pids=()

# bench_init checks the tools, creates $tmp, installs the cleanup trap and
# builds the binaries.
bench_init() {
	bench_name=$1
	if [ "${2:-}" != no-etcd ] && ! command -v etcd >/dev/null 2>&1; then
		echo "$bench_name: etcd not found; install it with: apt-get install -y etcd-server" >&2
		exit 1
	fi
	if ! command -v go >/dev/null 2>&1; then
		echo "$bench_name: go not found in PATH" >&2
		exit 1
	fi
	tmp=$(cd "$(mktemp -d "${TMPDIR:-/tmp}/moxxie-bench.XXXXXX")" && pwd -P)
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	echo "== building moxxied and moxxiebench"
	mkdir -p "$tmp/bin" "$tmp/results"
	(cd "$root" && go build -o "$tmp/bin/moxxied" ./cmd/moxxied && go build -o "$tmp/bin/moxxiebench" ./bench/moxxiebench)
	bench=$tmp/bin/moxxiebench
}

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
		echo "$bench_name: failed (exit $rc); last lines of the logs:" >&2
		for f in "$tmp"/etcd/*.log "$tmp"/moxxie-dev.log "$tmp"/moxxie/*/moxxied.log; do
			[ -f "$f" ] && { echo "== $f" >&2; tail -n 15 "$f" >&2; }
		done
	fi
	rm -rf "$tmp"
	exit "$rc"
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

# etcd_version prints the version of the etcd binary.
etcd_version() {
	etcd --version | awk '/etcd Version/ {print $3}'
}

# start_etcd starts a three-member etcd cluster in $tmp/etcd and sets
# etcd_pids, etcd_endpoints and etcd_cacert. With ETCD_TLS=1 (the default)
# etcd is set up as Moxxie always runs: TLS on the client port and mutual
# TLS between members, with certificates from a CA of its own made by
# `moxxied tls`; ETCD_TLS=0 runs it on plain HTTP.
start_etcd() {
	local ports i cluster="" scheme=http tlsflags=()
	mapfile -t ports < <("$bench" ports 6)
	rm -rf "$tmp/etcd" && mkdir -p "$tmp/etcd"
	etcd_cacert=""
	if [ "${ETCD_TLS:-1}" = 1 ]; then
		scheme=https
		"$tmp/bin/moxxied" tls ca create --dir "$tmp/etcd/tls" --common-name "etcd bench CA" >/dev/null
		"$tmp/bin/moxxied" tls cert create --server --name etcd --ca-dir "$tmp/etcd/tls" --dir "$tmp/etcd/tls" >/dev/null
		etcd_cacert=$tmp/etcd/tls/ca.pem
		tlsflags=(--cert-file "$tmp/etcd/tls/etcd.pem" --key-file "$tmp/etcd/tls/etcd-key.pem"
			--peer-cert-file "$tmp/etcd/tls/etcd.pem" --peer-key-file "$tmp/etcd/tls/etcd-key.pem"
			--peer-trusted-ca-file "$etcd_cacert" --peer-client-cert-auth)
	fi
	for i in 1 2 3; do
		cluster+="${cluster:+,}e$i=$scheme://127.0.0.1:${ports[$((2 * i - 1))]}"
	done
	etcd_pids=()
	etcd_endpoints=""
	for i in 1 2 3; do
		local cport=${ports[$((2 * i - 2))]} pport=${ports[$((2 * i - 1))]}
		"${run[@]}" etcd --name "e$i" --data-dir "$tmp/etcd/e$i" \
			--listen-client-urls "$scheme://127.0.0.1:$cport" --advertise-client-urls "$scheme://127.0.0.1:$cport" \
			--listen-peer-urls "$scheme://127.0.0.1:$pport" --initial-advertise-peer-urls "$scheme://127.0.0.1:$pport" \
			--initial-cluster "$cluster" --initial-cluster-token "moxxie-bench-$$" --initial-cluster-state new \
			"${tlsflags[@]+"${tlsflags[@]}"}" --logger zap --log-outputs stderr >"$tmp/etcd/e$i.log" 2>&1 &
		etcd_pids+=($!)
		pids+=($!)
		etcd_endpoints+="${etcd_endpoints:+,}$scheme://127.0.0.1:$cport"
	done
}

# etcd_label prints how etcd runs, for result labels.
etcd_label() {
	if [ "${ETCD_TLS:-1}" = 1 ]; then echo "etcd /v3/kv/put (TLS)"; else echo "etcd /v3/kv/put (plain HTTP)"; fi
}

# stop_etcd ROUND stops the etcd cluster and keeps its logs in
# $tmp/results/etcd-ROUND-eN.log.
stop_etcd() {
	local i
	stop "${etcd_pids[@]}"
	forget "${etcd_pids[@]}"
	for i in 1 2 3; do cp "$tmp/etcd/e$i.log" "$tmp/results/etcd-$1-e$i.log"; done
}

# start_moxxie starts a dev cluster in $tmp/moxxie, waits for its env file
# and sets dev_pid. Its servers run without the per-token API rate limit
# (api_rate_limit.per_second -1): all clients of a run share one token,
# and etcd, the peer, limits no client either.
start_moxxie() {
	rm -rf "$tmp/moxxie"
	MOXXIE_API_RATE_LIMIT_PER_SECOND=-1 "${run[@]}" "$tmp/bin/moxxied" dev --data-dir "$tmp/moxxie" >"$tmp/moxxie-dev.log" 2>&1 &
	dev_pid=$!
	pids+=("$dev_pid")
	local i
	for i in $(seq 900); do
		[ -s "$tmp/moxxie/env" ] && [ -s "$tmp/moxxie/servers.json" ] && return 0
		if ! kill -0 "$dev_pid" 2>/dev/null; then
			echo "$bench_name: moxxied dev exited" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "$bench_name: moxxied dev not ready after 90s" >&2
	return 1
}

# stop_moxxie ROUND stops the dev cluster and keeps the server logs in
# $tmp/results/moxxie-ROUND-sN.log.
stop_moxxie() {
	local f
	stop "$dev_pid"
	forget "$dev_pid"
	stop_dev_servers "$tmp/moxxie"
	for f in "$tmp"/moxxie/*/moxxied.log; do
		cp "$f" "$tmp/results/moxxie-$1-$(basename "$(dirname "$f")").log"
	done
}
