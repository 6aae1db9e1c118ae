#!/bin/bash
# net_backend.sh: run bench/net_backend (the agent's net-loss and
# net-bandwidth backends timed in-process, prepare+apply+verify and
# revert, side by side with exec'ing tc/nft) inside two network namespaces
# this script creates and removes, joined by a veth pair; the host's own
# interfaces are never touched.
#
#   sudo bench/net_backend.sh [BUILD_DIR] [COUNT]
#
# BUILD_DIR defaults to build/bench (it must hold bench/net_backend);
# COUNT defaults to 1000. Needs root, iproute2, tc, nft.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/bench}
count=${2:-1000}
bench=$build/bench/net_backend
[ "$(id -u)" -eq 0 ] || { echo "net_backend.sh: needs root (namespaces)" >&2; exit 2; }
[ -x "$bench" ] || { echo "net_backend.sh: build $bench first" >&2; exit 2; }
case "$count" in ''|*[!0-9]*) echo "net_backend.sh: COUNT must be a number" >&2; exit 2 ;; esac

ns_a="flnk$$-a"; ns_b="flnk$$-b"
bpid=""
cleanup() {
	local rc=$?
	set +e
	# Only the bench process started here.
	if [ -n "$bpid" ] && kill -0 "$bpid" 2>/dev/null; then
		kill -TERM "$bpid"
		for _ in $(seq 1 100); do kill -0 "$bpid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$bpid" 2>/dev/null
	fi
	ip netns del "$ns_a" 2>/dev/null
	ip netns del "$ns_b" 2>/dev/null
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$ns_a"
ip netns add "$ns_b"
ip -n "$ns_a" link set lo up
ip -n "$ns_b" link set lo up
ip link add nb0 netns "$ns_a" type veth peer name nb1 netns "$ns_b"
ip -n "$ns_a" addr add 10.233.1.1/24 dev nb0
ip -n "$ns_b" addr add 10.233.1.2/24 dev nb1
ip -n "$ns_a" link set nb0 up
ip -n "$ns_b" link set nb1 up

echo "== machine: $(nproc) vCPU, $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "== $(command -v tc): $(tc -V 2>&1 | head -1); $(command -v nft): $(nft --version)"
echo "== net_backend; loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
ip netns exec "$ns_a" "$bench" --netns "$ns_a" --ifname nb0 --dst 10.233.1.2 --count "$count" &
bpid=$!
wait "$bpid"
bpid=""
echo "== loadavg after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine inflates the tails)"
