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

. "$root/bench/netns_pair.sh"
netns_pair flnb
echo "== agent $agent${FL_AGENT_B:+; agent-b $FL_AGENT_B}"
echo "== $(command -v tc): $(tc -V 2>&1 | head -1); $(command -v nft): $(nft --version)"
for parent in ${STATE_PARENTS:-/dev/shm /var/tmp}; do
	echo
	echo "== net_apply, agent state dir under $parent; loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
	run_bench "$bench" --netns "$ns_a" --agent "$agent" --ifname nb0 --dst 10.233.1.2 \
		--state-parent "$parent" --count "$count" ${FL_AGENT_B:+--agent-b "$FL_AGENT_B"}
	echo "== loadavg after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine inflates the tails)"
done
