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
#
# FL_BENCH_WARM_KEYS=1: also give $ns_b what any host with a firewall or
# container networking has somewhere: one tc filter (u32 on lo's ingress
# qdisc) and an nftables table with output and input base chains. The
# kernel's static keys for tc classification and netfilter hooks are
# global: while anything uses them they stay on, and a fault's first
# filter or chain does not pay for patching kernel text (jump labels,
# which take cross-CPU synchronisation, tens of microseconds on a VM).
# Without it (the default) this machine has neither, so every apply turns
# the keys on and every revert turns them off, for tc/nft as for faultline.

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
	if [ "${FL_BENCH_WARM_KEYS:-0}" = 1 ]; then
		ip netns exec "$ns_b" tc qdisc add dev lo ingress
		ip netns exec "$ns_b" tc filter add dev lo parent ffff: protocol all prio 1 u32 match u32 0 0 classid 1:1
		ip netns exec "$ns_b" nft 'add table inet flwarm; add chain inet flwarm o { type filter hook output priority 0; }; add chain inet flwarm i { type filter hook input priority 0; }'
		echo "== warm keys: a tc filter and nft output/input chains exist (in $ns_b), as on a host with a firewall"
	fi
	echo "== machine: $(nproc) vCPU, $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
}

run_bench() {
	ip netns exec "$ns_a" "$@" &
	bpid=$!
	wait "$bpid"
	bpid=""
}
