# shellcheck shell=bash
# Sourced by bench/net_apply.sh and bench/net_backend.sh: two network
# namespaces joined by a veth pair (nb0 10.233.1.1 in $ns_a, nb1 10.233.1.2
# in $ns_b), and an EXIT trap that stops the bench process in $bpid (only
# that one: it stops anything it started itself) and deletes both
# namespaces, failure and signals included.
#
#   netns_pair PREFIX     makes "$PREFIX$$-a" / "$PREFIX$$-b"
#   run_bench CMD...      runs CMD in $ns_a, in the background, and waits
#                         (so a signal reaches the trap while it runs)

bpid=""
netns_cleanup() {
	local rc=$?
	set +e
	if [ -n "$bpid" ] && kill -0 "$bpid" 2>/dev/null; then
		kill -TERM "$bpid"
		for _ in $(seq 1 100); do kill -0 "$bpid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$bpid" 2>/dev/null
	fi
	ip netns del "$ns_a" 2>/dev/null
	ip netns del "$ns_b" 2>/dev/null
	exit $rc
}

netns_pair() {
	ns_a="$1$$-a"; ns_b="$1$$-b"
	trap netns_cleanup EXIT
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
}

run_bench() {
	ip netns exec "$ns_a" "$@" &
	bpid=$!
	wait "$bpid"
	bpid=""
}
