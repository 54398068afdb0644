#!/usr/bin/env bash
# bench-dns.sh: DNS queries per second of Moxxie's DNS plugin against
# PowerDNS (pdns-server with the bind backend), serving the same records on
# this machine, in one run (see docs/benchmarks-dns.md).
#
# It builds bench/moxxiedns, which writes NAMES host names (A, PTR, SOA, NS
# in bench.test. and 0.10.in-addr.arpa.) as BIND zone files and a dnsperf
# query file (A and PTR queries for existing names, one in eleven for a
# missing name). Then, ROUNDS times, one after the other so they never
# compete for the CPU: it starts `moxxiedns serve` (the plugin inside an
# embedded CoreDNS, through dns.Serve) and runs dnsperf against it, stops
# it, starts pdns_server on the same zone files and runs the same dnsperf
# against it, stops it. It prints qps, latency and the server's CPU time
# per query of every run, and the median of each server. Everything started is stopped and the temporary
# directory removed on exit, also on failure.
#
# Needs: go, dnsperf, pdns_server with the bind backend. On Debian:
#   apt-get install -y dnsperf pdns-server pdns-backend-bind
#
# Environment:
#   NAMES           host names served (default 10000)
#   DURATION        seconds each measured dnsperf run lasts (default 20)
#   WARMUP          seconds of unmeasured queries before each run (default 2)
#   ROUNDS          moxxie, pdns pairs (default 3)
#   CLIENTS         dnsperf -c, simulated clients (default 4)
#   THREADS         dnsperf -T, client threads (default 2)
#   OUTSTANDING     dnsperf -q, queries in flight (default 100)
#   SOCKETS         moxxiedns --sockets, UDP sockets of the plugin's fast
#                   path (default 0: one per CPU)
#   PDNS_RECEIVERS  pdns receiver-threads, with reuseport (default: nproc)
#   MOXXIE_PORT, PDNS_PORT  loopback ports (default 15353, 15300)
set -euo pipefail

NAMES=${NAMES:-10000}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-4}
THREADS=${THREADS:-2}
OUTSTANDING=${OUTSTANDING:-100}
SOCKETS=${SOCKETS:-0}
PDNS_RECEIVERS=${PDNS_RECEIVERS:-$(nproc)}
MOXXIE_PORT=${MOXXIE_PORT:-15353}
PDNS_PORT=${PDNS_PORT:-15300}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

missing=()
command -v go >/dev/null 2>&1 || missing+=("go (not in PATH)")
command -v dnsperf >/dev/null 2>&1 || missing+=("dnsperf: apt-get install -y dnsperf")
pdns=$(command -v pdns_server 2>/dev/null || true)
[ -z "$pdns" ] && [ -x /usr/sbin/pdns_server ] && pdns=/usr/sbin/pdns_server
[ -z "$pdns" ] && missing+=("pdns_server: apt-get install -y pdns-server pdns-backend-bind")
if [ -n "$pdns" ] && ! ls /usr/lib/*/pdns/libbindbackend.so >/dev/null 2>&1; then
	missing+=("the PowerDNS bind backend: apt-get install -y pdns-backend-bind")
fi
if [ "${#missing[@]}" -gt 0 ]; then
	echo "bench-dns: missing:" >&2
	printf '  %s\n' "${missing[@]}" >&2
	exit 1
fi

tmp=$(cd "$(mktemp -d "${TMPDIR:-/tmp}/moxxie-bench-dns.XXXXXX")" && pwd -P)
pid=""

# stop ends the server started last: SIGTERM, up to 10 s, then SIGKILL.
stop() {
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=""
}

cleanup() {
	stop
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for LOG TEXT: waits up to 30 s for TEXT in LOG, or fails.
wait_for() {
	for _ in $(seq 300); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "bench-dns: server did not start; its log:" >&2
	cat "$1" >&2
	exit 1
}

echo "bench-dns: building bench/moxxiedns and generating $NAMES names" >&2
(cd "$root" && go build -o "$tmp/moxxiedns" ./bench/moxxiedns)
mkdir -p "$tmp/data" "$tmp/pdns"
"$tmp/moxxiedns" gen --dir "$tmp/data" --names "$NAMES"

cat >"$tmp/pdns/pdns.conf" <<CONF
launch=bind
bind-config=$tmp/data/named.conf
local-address=127.0.0.1
local-port=$PDNS_PORT
socket-dir=$tmp/pdns
receiver-threads=$PDNS_RECEIVERS
reuseport=yes
daemon=no
guardian=no
disable-syslog=yes
loglevel=4
webserver=no
api=no
security-poll-suffix=
CONF

perf() { # perf PORT DURATION: dnsperf against 127.0.0.1:PORT
	dnsperf -s 127.0.0.1 -p "$1" -d "$tmp/data/queries.txt" -l "$2" \
		-c "$CLIENTS" -T "$THREADS" -q "$OUTSTANDING"
}

# cputicks: CPU time (user + system, in clock ticks) the server has used.
cputicks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)

# measure NAME PORT: warms up, runs dnsperf, appends "NAME qps latency_ms
# lost cpu_us_per_query" to results. The server's CPU time per query is
# the measure least disturbed by other load on the machine.
measure() {
	[ "$WARMUP" -gt 0 ] && perf "$2" "$WARMUP" >/dev/null 2>&1
	local out qps lat lost t0 t1 cpu
	t0=$(cputicks)
	out=$(perf "$2" "$DURATION" 2>&1)
	t1=$(cputicks)
	qps=$(awk '/Queries per second:/ {print $4}' <<<"$out")
	lat=$(awk '/Average Latency \(s\):/ {printf "%.3f", $4 * 1000}' <<<"$out")
	lost=$(awk '/Queries lost:/ {print $3}' <<<"$out")
	if [ -z "$qps" ]; then
		echo "bench-dns: dnsperf failed against $1:" >&2
		echo "$out" >&2
		exit 1
	fi
	cpu=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v q="$qps" -v d="$DURATION" 'BEGIN {printf "%.2f", t / hz * 1e6 / (q * d)}')
	printf '%s %.0f %s %s %s\n' "$1" "$qps" "$lat" "$lost" "$cpu" >>"$tmp/results"
	printf '  %-7s %9.0f qps  %7s ms avg latency  %s lost  %6s us server CPU per query\n' "$1" "$qps" "$lat" "$lost" "$cpu"
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), Linux $(uname -r)"
echo "load:    $NAMES names, dnsperf -c $CLIENTS -T $THREADS -q $OUTSTANDING -l $DURATION, $ROUNDS rounds"
for r in $(seq "$ROUNDS"); do
	echo "round $r"
	"$tmp/moxxiedns" serve --listen "127.0.0.1:$MOXXIE_PORT" --names "$NAMES" --sockets "$SOCKETS" >"$tmp/moxxie.log" 2>&1 &
	pid=$!
	wait_for "$tmp/moxxie.log" "serving"
	measure moxxie "$MOXXIE_PORT"
	stop

	"$pdns" --config-dir="$tmp/pdns" >"$tmp/pdns.log" 2>&1 &
	pid=$!
	wait_for "$tmp/pdns.log" "ready to distribute questions"
	measure pdns "$PDNS_PORT"
	stop
done

# median NAME COLUMN
median() {
	awk -v n="$1" -v c="$2" '$1 == n {print $c}' "$tmp/results" | sort -n |
		awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
mq=$(median moxxie 2)
pq=$(median pdns 2)
echo
printf '%-8s %12s %16s %22s\n' server "median qps" "median latency" "median CPU per query"
printf '%-8s %12.0f %13s ms %19s us\n' moxxie "$mq" "$(median moxxie 3)" "$(median moxxie 5)"
printf '%-8s %12.0f %13s ms %19s us\n' pdns "$pq" "$(median pdns 3)" "$(median pdns 5)"
awk -v m="$mq" -v p="$pq" 'BEGIN {
	printf "moxxie/pdns: %.2f (target >= 1.00): %s\n", m / p, (m >= p ? "met" : "NOT met")
}'
