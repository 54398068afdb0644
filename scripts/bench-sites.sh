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
# shellcheck source=scripts/lib-sites.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib-sites.sh"
sites_init sites
# shellcheck disable=SC2119 # these sites take no extra arguments
start_sites

# east_state prints east's state as west's servers see it.
east_state() {
	ctl west site get east -o json 2>/dev/null | grep -o '"state": *"[a-z]*"' | head -1 | grep -o '[a-z]*"$' | tr -d '"'
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
echo "== detection over $ROUNDS rounds (ms): $(stats "${times[@]}")"
