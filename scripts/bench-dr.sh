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
#   ORDERS   each (default): one guest per recovery order, so they
#            restore together but start one after another; one: all in
#            order 1, so they come back together (up to four at a time)
#   RESTORE_DELAY  added to every restore at west (a Go duration, e.g.
#            60s; default none: the simulator restores in about a second,
#            a real guest's restore takes minutes)
#   TMPDIR   where the sites keep their data (default /tmp)
#   KEEP     when set, keep the temporary directory (logs) on exit
set -euo pipefail

ROUNDS=${ROUNDS:-10}
GUESTS=${GUESTS:-4}
ORDERS=${ORDERS:-each}
RESTORE_DELAY=${RESTORE_DELAY:-}
case $ORDERS in
each | one) ;;
*)
	echo "ORDERS must be each or one (got $ORDERS)" >&2
	exit 2
	;;
esac
command -v jq >/dev/null || {
	echo "bench-dr.sh needs jq: apt-get install jq" >&2
	exit 1
}
# shellcheck source=scripts/lib-sites.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib-sites.sh"
sites_init dr
start_sites --backup-dir "$tmp/dr"

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

east_is() { [ "$(ctl west site get east -o json | jq -r .state)" = "$1" ]; }
until_ok "west to see east up" east_is up

vmids=$(seq 100 $((99 + GUESTS)) | paste -sd, -)
guests=()
order=1
for v in $(seq 100 $((99 + GUESTS))); do
	guests+=(--guest "$v:$order:g$v.dr.moxxie.test")
	if [ "$ORDERS" = each ]; then order=$((order + 1)); fi
done
echo "== east backs up guests $vmids to the shared storage dr; plan shop recovers them at west"
prefix=$(ctl west ipam prefix create 10.88.0.0/22 --gateway 10.88.0.1 -o json | jq -r .id)
until_ok "east's guests to sync" sh -c "$(declare -f ctl); tmp=$tmp; ctl east backup coverage -o json | grep -q '\"vmid\": *100'"
ctl east backup policy create dr-bench --schedule '*:*:0/5' --vmids "$vmids" --storage dr --mode snapshot --keep-last 2 >/dev/null
ctl east dr plan put shop --recovery-site west --backup-storage dr --target-storage local-lvm "${guests[@]}" --network "vmbr0=vmbr0@$prefix" >/dev/null
replica_ready() { ctl west dr plan get shop -o json | jq -e "[.status[]? | select((.backup // \"\") != \"\")] | length == $GUESTS" >/dev/null; }
until_ok "west's replica to hold a backup of every guest" replica_ready
ctl east backup policy update dr-bench --disabled >/dev/null

if [ -n "$RESTORE_DELAY" ]; then
	echo "== west's simulator: every restore takes $RESTORE_DELAY longer"
	(
		# shellcheck disable=SC1091
		. "$tmp/west/env"
		curl -fsS --cacert "$tmp/west/tls/ca.pem" -X PUT \
			-H "Authorization: PVEAPIToken=root@pam!moxxie=$(cat "$tmp/west/pvesim-token")" \
			--data "{\"slow_task_types\": {\"qmrestore\": \"$RESTORE_DELAY\"}}" \
			"https://$MOXXIE_PVESIM_ADDR/pvesim/v1/faults" >/dev/null
	)
fi

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

echo "== over $ROUNDS rounds (ms), $GUESTS guests, orders: $ORDERS${RESTORE_DELAY:+, restores $RESTORE_DELAY slower}"
echo "detection (west sees east down):   $(stats "${detect[@]}")"
echo "failover started:                  $(stats "${started[@]}")"
echo "every protected guest running:     $(stats "${running[@]}")"
