#!/usr/bin/env bash
# bench-dr.sh: how long a site failover takes (docs/benchmarks.md, issue
# 11: detection time and time until every protected guest runs, over 10
# runs).
#
# It starts three dev appliances as the sites east, west and north of one
# federation (127.0.0.2-4) sharing a backup storage (dr). East backs up
# GUESTS guests with a backup policy and protects them with an automatic
# DR plan recovering at west. Then, ROUNDS times: it freezes every server
# of east (SIGSTOP) and measures, polling west every 100 ms, when west
# sees east down (detection), when west's leader starts the failover, and
# when the failover has every guest running; then it wakes east, waits
# until east has fenced the plan, fails it back from east (moxxiectl site
# failback --wait) and waits until west's failover has ended, so the next
# round fails over again. It prints each round and the minimum, median
# and maximum of each measure. Everything it starts is stopped and its
# temporary directory removed on exit, also on failure.
#
# Environment:
#   ROUNDS   repetitions (default 10)
#   GUESTS   guests protected, of the dev seed's 100-104 (default 4)
#   TMPDIR   where the sites keep their data (default /tmp)
#   KEEP     when set, keep the temporary directory (logs) on exit
set -euo pipefail

ROUNDS=${ROUNDS:-10}
GUESTS=${GUESTS:-4}
command -v jq >/dev/null || {
	echo "bench-dr.sh needs jq: apt-get install jq" >&2
	exit 1
}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(cd "$(mktemp -d "${TMPDIR:-/tmp}/moxxie-dr.XXXXXX")" && pwd -P)
devs=()

pids() { jq -r '.[].pid' "$tmp/$1/servers.json" 2>/dev/null || true; }
all_server_pids() { for s in east west north; do pids "$s"; done; }

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

echo "== building moxxied and moxxiectl"
(cd "$root" && go build -o "$tmp/bin/" ./cmd/moxxied ./cmd/moxxiectl)

# start_site NAME HOST [ARGS...] starts a dev appliance and waits for it.
start_site() {
	local name=$1 host=$2
	shift 2
	"$tmp/bin/moxxied" dev --data-dir "$tmp/$name" --site "$name" --host "$host" \
		--gossip-key-file "$tmp/gossip.key" --backup-dir "$tmp/dr" "$@" >"$tmp/$name.log" 2>&1 &
	devs+=($!)
	for _ in $(seq 600); do
		[ -f "$tmp/$name/env" ] && return 0
		sleep 0.1
	done
	echo "site $name did not start:" >&2
	cat "$tmp/$name.log" >&2
	exit 1
}

# ctl SITE ARGS... runs moxxiectl against a site.
ctl() {
	local site=$1
	shift
	(
		# shellcheck disable=SC1090
		. "$tmp/$site/env"
		"$tmp/bin/moxxiectl" --retry-for 0 "$@"
	)
}

# until_ok WHAT CMD... runs CMD every 100 ms until it succeeds (120 s).
until_ok() {
	local what=$1
	shift
	for _ in $(seq 1200); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "timed out waiting for $what" >&2
	exit 1
}

echo "== starting the sites east, west and north"
start_site east 127.0.0.2
join=$(jq -r '[.[].gossip_address] | join(",")' "$tmp/east/servers.json")
start_site west 127.0.0.3 --ca-dir "$tmp/east/tls" --site-join "$join"
start_site north 127.0.0.4 --ca-dir "$tmp/east/tls" --site-join "$join"

east_is() { [ "$(ctl west site get east -o json | jq -r .state)" = "$1" ]; }
until_ok "west to see east up" east_is up

vmids=$(seq 100 $((99 + GUESTS)) | paste -sd, -)
guests=()
order=1
for v in $(seq 100 $((99 + GUESTS))); do
	guests+=(--guest "$v:$order:g$v.dr.moxxie.test")
	order=$((order + 1))
done
echo "== east backs up guests $vmids to the shared storage dr; plan shop recovers them at west"
prefix=$(ctl west ipam prefix create 10.88.0.0/22 --gateway 10.88.0.1 -o json | jq -r .id)
until_ok "east's guests to sync" sh -c "$(declare -f ctl); tmp=$tmp; ctl east backup coverage -o json | grep -q '\"vmid\": *100'"
ctl east backup policy create dr-bench --schedule '*:*:0/5' --vmids "$vmids" --storage dr --mode snapshot --keep-last 2 >/dev/null
ctl east dr plan put shop --recovery-site west --backup-storage dr --target-storage local-lvm "${guests[@]}" --network "vmbr0=vmbr0@$prefix" >/dev/null
replica_ready() { ctl west dr plan get shop -o json | jq -e "[.status[]? | select((.backup // \"\") != \"\")] | length == $GUESTS" >/dev/null; }
until_ok "west's replica to hold a backup of every guest" replica_ready
ctl east backup policy update dr-bench --disabled >/dev/null

ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
detect=() started=() running=()
for r in $(seq "$ROUNDS"); do
	t0=$(date +%s%N)
	for p in $(pids east); do kill -STOP "$p"; done
	d="" s="" run=""
	for _ in $(seq 1200); do
		[ -z "$d" ] && east_is down && d=$(ms "$t0")
		if [ -z "$s" ]; then
			run=$(ctl west dr plan get shop -o json 2>/dev/null | jq -r '.failover.run // empty')
			[ -n "$run" ] && s=$(ms "$t0")
		fi
		if [ -n "$run" ] && [ "$(ctl west dr run get "$run" -o json 2>/dev/null | jq -r .operation.status)" = succeeded ]; then
			break
		fi
		sleep 0.1
	done
	[ -n "$run" ] || {
		echo "round $r: no failover" >&2
		exit 1
	}
	g=$(ms "$t0")
	status=$(ctl west dr run get "$run" -o json | jq -r .operation.status)
	[ "$status" = succeeded ] || {
		echo "round $r: failover $run $status" >&2
		exit 1
	}
	detect+=("$d") started+=("$s") running+=("$g")
	echo "round $r: east down at west after ${d} ms, failover started after ${s} ms, $GUESTS guests running after ${g} ms"
	for p in $(pids east); do kill -CONT "$p"; done
	fenced() { ctl east dr plan get shop -o json | jq -e '.fence != null' >/dev/null; }
	until_ok "east to fence the plan" fenced
	ctl east site failback shop --wait >/dev/null 2>&1
	ended() { ctl west dr plan get shop -o json | jq -e '.failover == null' >/dev/null; }
	until_ok "west's failover to end" ended
	until_ok "west to see east up" east_is up
done

stats() {
	local sorted
	sorted=$(printf '%s\n' "$@" | sort -n)
	echo "min $(head -1 <<<"$sorted"), median $(sed -n "$((($# + 1) / 2))p" <<<"$sorted"), max $(tail -1 <<<"$sorted")"
}
echo "== over $ROUNDS rounds (ms), $GUESTS guests"
echo "detection (west sees east down):   $(stats "${detect[@]}")"
echo "failover started:                  $(stats "${started[@]}")"
echo "every protected guest running:     $(stats "${running[@]}")"
