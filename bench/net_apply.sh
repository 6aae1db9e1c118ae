#!/bin/bash
# net_apply.sh: run bench/net_apply (apply+verify / revert time of net-loss
# and net-bandwidth through the agent, side by side with exec'ing tc/nft)
# inside two network namespaces this script creates and removes, joined by
# a veth pair; the host's own interfaces are never touched. Runs the bench
# twice: agent state dir on tmpfs (/dev/shm), then on disk (/var/tmp).
#
#   sudo bench/net_apply.sh [BUILD_DIR] [COUNT]
#
# BUILD_DIR defaults to build/bench (it must hold agent/faultline-agent and
# bench/net_apply); COUNT defaults to 1000. FL_AGENT=PATH runs another agent
# binary (e.g. a scratch-patched one) with the same bench; FL_AGENT_B=PATH
# adds a second agent whose two faults are timed in the same iterations
# (net_apply --agent-b), to compare two builds under the same load.
# STATE_PARENTS (default "/dev/shm /var/tmp") picks the state-dir
# filesystems. Needs root, iproute2, tc, nft.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/bench}
count=${2:-1000}
agent=${FL_AGENT:-$build/agent/faultline-agent}
bench=$build/bench/net_apply
[ "$(id -u)" -eq 0 ] || { echo "net_apply.sh: needs root (namespaces, the agent)" >&2; exit 2; }
[ -x "$agent" ] && [ -x "$bench" ] || { echo "net_apply.sh: build $agent and $bench first" >&2; exit 2; }
case "$count" in ''|*[!0-9]*) echo "net_apply.sh: COUNT must be a number" >&2; exit 2 ;; esac

ns_a="flnb$$-a"; ns_b="flnb$$-b"
bpid=""
cleanup() {
	local rc=$?
	set +e
	# Only the bench process started here; it stops its own agent.
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
echo "== agent $agent${FL_AGENT_B:+; agent-b $FL_AGENT_B}"
echo "== $(command -v tc): $(tc -V 2>&1 | head -1); $(command -v nft): $(nft --version)"
for parent in ${STATE_PARENTS:-/dev/shm /var/tmp}; do
	echo
	echo "== net_apply, agent state dir under $parent; loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
	ip netns exec "$ns_a" "$bench" --netns "$ns_a" --agent "$agent" --ifname nb0 --dst 10.233.1.2 \
		--state-parent "$parent" --count "$count" ${FL_AGENT_B:+--agent-b "$FL_AGENT_B"} &
	bpid=$!
	wait "$bpid"
	bpid=""
	echo "== loadavg after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine inflates the tails)"
done
