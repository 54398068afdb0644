#!/usr/bin/env bash
# bench-sites.sh: how long the sites take to see a whole site fail
# (docs/benchmarks.md, issue 11's detection target: within 10 s).
#
# It starts three dev appliances as the sites east, west and north of one
# federation, each on its own loopback address (127.0.0.2-4), and ROUNDS
# times freezes every server of east with SIGSTOP and measures the time
# until a server of west reports east "down" (moxxiectl site get, polled
# every 100 ms), then wakes them and waits until east is "up" again. It
# prints each round and the minimum, median and maximum. Everything it
# starts is stopped and its temporary directory removed on exit, also on
# failure.
#
# Environment:
#   ROUNDS   repetitions (default 10)
#   TMPDIR   where the sites keep their data (default /tmp)
#   KEEP     when set, keep the temporary directory (logs) on exit
set -euo pipefail

ROUNDS=${ROUNDS:-10}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(cd "$(mktemp -d "${TMPDIR:-/tmp}/moxxie-sites.XXXXXX")" && pwd -P)
devs=()

cleanup() {
	local p
	for p in $(all_server_pids); do kill -CONT "$p" 2>/dev/null || true; done
	for p in "${devs[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	for p in "${devs[@]}"; do wait "$p" 2>/dev/null || true; done
	for p in $(all_server_pids); do kill -KILL "$p" 2>/dev/null || true; done
	if [ -n "${KEEP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# pids prints the server pids of a site's servers.json.
pids() { grep -o '"pid": *[0-9]*' "$tmp/$1/servers.json" 2>/dev/null | grep -o '[0-9]*$' || true; }
all_server_pids() { for s in east west north; do pids "$s"; done; }

echo "== building moxxied and moxxiectl"
(cd "$root" && go build -o "$tmp/bin/" ./cmd/moxxied ./cmd/moxxiectl)

# start_site NAME HOST [ARGS...] starts a dev appliance and waits for it.
start_site() {
	local name=$1 host=$2
	shift 2
	"$tmp/bin/moxxied" dev --data-dir "$tmp/$name" --site "$name" --host "$host" \
		--gossip-key-file "$tmp/gossip.key" "$@" >"$tmp/$name.log" 2>&1 &
	devs+=($!)
	for _ in $(seq 600); do
		[ -f "$tmp/$name/env" ] && return 0
		sleep 0.1
	done
	echo "site $name did not start:" >&2
	cat "$tmp/$name.log" >&2
	exit 1
}

echo "== starting the sites east, west and north"
start_site east 127.0.0.2
join=$(grep -o '"gossip_address": *"[^"]*"' "$tmp/east/servers.json" | grep -o '"[0-9.]*:[0-9]*"' | tr -d '"' | paste -sd, -)
start_site west 127.0.0.3 --ca-dir "$tmp/east/tls" --site-join "$join"
start_site north 127.0.0.4 --ca-dir "$tmp/east/tls" --site-join "$join"

# east_state prints east's state as west's servers see it.
east_state() {
	(
		# shellcheck disable=SC1091
		. "$tmp/west/env"
		"$tmp/bin/moxxiectl" --retry-for 0 site get east -o json 2>/dev/null | grep -o '"state": *"[a-z]*"' | head -1 | grep -o '[a-z]*"$' | tr -d '"'
	)
}

# wait_for STATE waits up to 60 s until west sees east in STATE.
wait_for() {
	for _ in $(seq 600); do
		[ "$(east_state)" = "$1" ] && return 0
		sleep 0.1
	done
	echo "east did not become $1 in west's view" >&2
	exit 1
}

wait_for up
times=()
for r in $(seq "$ROUNDS"); do
	start=$(date +%s%N)
	for p in $(pids east); do kill -STOP "$p"; done
	wait_for down
	ms=$((($(date +%s%N) - start) / 1000000))
	times+=("$ms")
	echo "round $r: east down in west's view after ${ms} ms"
	for p in $(pids east); do kill -CONT "$p"; done
	wait_for up
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
echo "== detection over $ROUNDS rounds (ms): min $(head -1 <<<"$sorted"), median $(sed -n "$(((ROUNDS + 1) / 2))p" <<<"$sorted"), max $(tail -1 <<<"$sorted")"
