#!/usr/bin/env bash
# Three Proxmox-like hosts as network namespaces, each held by a real
# moxxie-agent, for trying Moxxie's network automation next to a
# `moxxied dev` appliance. Needs root, iproute2 and nftables.
#
#   scripts/sdn-lab.sh up [DEV_DIR]   # namespaces mxlab-h1..3, agents pve1..3
#   scripts/sdn-lab.sh down           # stops the agents, deletes the namespaces
#
# The hosts' eth0 (192.0.2.1-3/24) hang on a bridge in the namespace
# mxlab-ul. The agents run in this namespace (they reach the dev servers on
# loopback) and manage their host's namespace with --netns; their logs and
# state are in /run/mxlab until `down`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
run=/run/mxlab

down() {
	local pids=()
	for pid in "$run"/*.pid; do
		[ -e "$pid" ] || continue
		pids+=("$(cat "$pid")")
	done
	if [ ${#pids[@]} -gt 0 ]; then
		kill "${pids[@]}" 2>/dev/null || true
		# The agents leave on SIGTERM; wait for them before their
		# namespaces go.
		for _ in $(seq 50); do
			kill -0 "${pids[@]}" 2>/dev/null || break
			sleep 0.1
		done
	fi
	for ns in $(ip netns list | awk '/^mxlab-/ {print $1}'); do
		ip netns del "$ns"
	done
	rm -rf "$run"
}

up() {
	local dev=${1:-moxxie-dev}
	[ -r "$dev/env" ] || { echo "no $dev/env: start 'moxxied dev' first" >&2; exit 1; }
	# shellcheck disable=SC1091
	. "$dev/env"
	go build -o bin/ ./cmd/moxxie-agent ./cmd/moxxiectl
	down
	local token err
	err=$(mktemp)
	token=$(bin/moxxiectl acl token create --role agent --description sdn-lab -o json 2>"$err" | sed -n 's/.*"secret_id": *"\([^"]*\)".*/\1/p') || true
	[ -n "$token" ] || { cat "$err" >&2; rm -f "$err"; echo "could not create an agent token" >&2; exit 1; }
	rm -f "$err"
	mkdir -p "$run"
	ip netns add mxlab-ul
	ip -n mxlab-ul link add ulbr type bridge
	ip -n mxlab-ul link set ulbr up
	for i in 1 2 3; do
		local ns=mxlab-h$i
		ip netns add "$ns"
		ip -n "$ns" link set lo up
		ip link add "ul$i" netns mxlab-ul type veth peer name eth0 netns "$ns"
		ip -n mxlab-ul link set "ul$i" master ulbr up
		ip -n "$ns" addr add "192.0.2.$i/24" dev eth0
		ip -n "$ns" link set eth0 up
		mkdir -p "$run/state-pve$i"
		MOXXIE_TOKEN=$token nohup bin/moxxie-agent --netns "$ns" --host "pve$i" --address "192.0.2.$i" \
			--uplink eth0 --management eth0 --state-dir "$run/state-pve$i" >"$run/pve$i.log" 2>&1 &
		echo $! >"$run/pve$i.pid"
	done
	echo "hosts pve1..3 in namespaces mxlab-h1..3; agent logs in $run/"
}

if [ "$(id -u)" != 0 ] && [ "${1:-}" != "" ]; then
	echo "$0 needs root: it adds network namespaces (run it with sudo, or as root)" >&2
	exit 1
fi

case ${1:-} in
up) up "${2:-}" ;;
down) down ;;
*)
	echo "usage: $0 up [DEV_DIR] | down" >&2
	exit 2
	;;
esac
