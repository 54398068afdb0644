# shellcheck shell=bash
# lib-sites.sh: what bench-sites.sh and bench-dr.sh share: three dev
# appliances as the sites east, west and north of one federation, each on
# its own loopback address (127.0.0.2-4), and cleaning up on exit. Source
# it from a bash script that runs with set -euo pipefail; it is not meant
# to be run.
#
# sites_init NAME creates the temporary directory $tmp, installs the EXIT
# trap that wakes, stops and kills every server started and removes $tmp
# (kept when KEEP is set), and builds moxxied and moxxiectl into $tmp/bin.
# start_sites [ARGS...] then starts the three sites, each with ARGS, and
# waits for them; ctl SITE ARGS... runs moxxiectl against a site; pids
# SITE prints its servers' pids; stats N... prints min, median and max.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
devs=()

# pids prints the server pids of a site's servers.json.
pids() { grep -o '"pid": *[0-9]*' "$tmp/$1/servers.json" 2>/dev/null | grep -o '[0-9]*$' || true; }
all_server_pids() { for s in east west north; do pids "$s"; done; }

sites_cleanup() {
	local p
	for p in $(all_server_pids); do kill -CONT "$p" 2>/dev/null || true; done
	for p in "${devs[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	for p in "${devs[@]}"; do wait "$p" 2>/dev/null || true; done
	for p in $(all_server_pids); do kill -KILL "$p" 2>/dev/null || true; done
	if [ -n "${KEEP:-}" ]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}

# sites_init NAME creates $tmp, installs the cleanup trap and builds.
sites_init() {
	tmp=$(cd "$(mktemp -d "${TMPDIR:-/tmp}/moxxie-$1.XXXXXX")" && pwd -P)
	trap sites_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	echo "== building moxxied and moxxiectl"
	(cd "$root" && go build -o "$tmp/bin/" ./cmd/moxxied ./cmd/moxxiectl)
}

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

# start_sites [ARGS...] starts east, then west and north joining it.
start_sites() {
	echo "== starting the sites east, west and north"
	start_site east 127.0.0.2 "$@"
	local join
	join=$(grep -o '"gossip_address": *"[^"]*"' "$tmp/east/servers.json" | grep -o '"[0-9.]*:[0-9]*"' | tr -d '"' | paste -sd, -)
	start_site west 127.0.0.3 --ca-dir "$tmp/east/tls" --site-join "$join" "$@"
	start_site north 127.0.0.4 --ca-dir "$tmp/east/tls" --site-join "$join" "$@"
}

# ctl SITE ARGS... runs moxxiectl against a site, without retries.
ctl() {
	local site=$1
	shift
	(
		# shellcheck disable=SC1090
		. "$tmp/$site/env"
		"$tmp/bin/moxxiectl" --retry-for 0 "$@"
	)
}

# stats N... prints the minimum, median and maximum of N.
stats() {
	local sorted
	sorted=$(printf '%s\n' "$@" | sort -n)
	echo "min $(head -1 <<<"$sorted"), median $(sed -n "$((($# + 1) / 2))p" <<<"$sorted"), max $(tail -1 <<<"$sorted")"
}
