#!/bin/bash
# net_loss_accuracy.sh: how exactly net-loss drops the share of packets it is
# asked to. For percent = 1, 10, 50 (and a 0 % baseline without a fault):
# N 64-byte UDP datagrams (default 100,000) at PPS (default 20,000/s) from
# namespace h1 to a targeted address in namespace ops, and, at the same
# time, N datagrams of an untargeted control flow to a second address of
# ops. The fault is applied by a real agent in h1 through the coordinator
# CLI (`faultline inject h1 net-loss percent=P dst=<target> protocol=udp`).
#
#   sudo bench/net_loss_accuracy.sh [BUILD_DIR] [N] [PPS]
#
# Prints per level: sent, received, measured loss, expected loss, sigma =
# sqrt(n p (1-p))/n, z = (measured - p)/sigma and whether |z| <= 3; the
# control flow's count (must be exactly N); and the counters that prove no
# packet was lost anywhere but in the fault's rule: UDP RcvbufErrors/
# InErrors of the ops namespace and the rx/tx drop counters of both veth
# ends. Creates namespaces flla$$-ops and flla$$-h1 (10.234.1.0/24 only
# inside them) and removes them, the agent and every process it started at
# exit, also on failure and Ctrl-C. Needs root.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/bench}
n=${2:-100000}
pps=${3:-20000}
agent=$build/agent/faultline-agent
cli=$build/coordinator/faultline
nt=$build/tests/fl-nettool
[ "$(id -u)" -eq 0 ] || { echo "net_loss_accuracy.sh: needs root" >&2; exit 2; }
for b in "$agent" "$cli" "$nt"; do [ -x "$b" ] || { echo "net_loss_accuracy.sh: $b not built" >&2; exit 2; }; done
case "$n$pps" in *[!0-9]*) echo "usage: $0 [BUILD_DIR] [N] [PPS]" >&2; exit 2 ;; esac
[ "$n" -ge 100 ] && [ "$n" -le 10000000 ] && [ "$pps" -ge 100 ] && [ "$pps" -le 200000 ] ||
	{ echo "net_loss_accuracy.sh: N in 100..10^7, PPS in 100..200000" >&2; exit 2; }

OPS="flla$$-ops"; H1="flla$$-h1"
# Plain tcp:// on a namespace address: agents that require TLS or an explicit
# opt-in for non-loopback listeners take it from here (older ones ignore it).
export FAULTLINE_AGENT_INSECURE=1
tmp=$(mktemp -d /tmp/fl-loss-acc.XXXXXX)
chmod 700 "$tmp"
pids=()
cleanup() {
	local rc=$?
	set +e
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	ip netns del "$H1" 2>/dev/null
	ip netns del "$OPS" 2>/dev/null
	if [ $rc -ne 0 ]; then for f in "$tmp"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done; fi
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "net_loss_accuracy.sh: $*" >&2; exit 1; }
in_ops() { ip netns exec "$OPS" "$@"; }
in_h1() { ip netns exec "$H1" "$@"; }
# bg NS LOG CMD...: start in the background; the pid (ip netns exec execs
# the command, so it is the command's own) is recorded for cleanup.
bg() { local ns=$1 log=$2; shift 2; ip netns exec "$ns" "$@" >"$tmp/$log" 2>&1 & LAST=$!; pids+=("$LAST"); }
forget() { local p; local keep=(); for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done; pids=("${keep[@]}"); }
wait_for() { # SECS CMD...: poll every 50 ms, bounded
	local end=$(( $(date +%s) + $1 )); shift
	while [ "$(date +%s)" -le "$end" ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
	return 1
}

ip netns add "$OPS"; ip netns add "$H1"
ip -n "$OPS" link set lo up; ip -n "$H1" link set lo up
ip link add lao0 netns "$OPS" type veth peer name eth0 netns "$H1"
ip -n "$OPS" addr add 10.234.1.1/24 dev lao0
ip -n "$OPS" addr add 10.234.1.3/24 dev lao0
ip -n "$H1" addr add 10.234.1.2/24 dev eth0
ip -n "$OPS" link set lao0 up; ip -n "$H1" link set eth0 up

mkdir -m 700 "$tmp/state"
bg "$H1" agent.log "$agent" --foreground --listen tcp://10.234.1.2:7070 --state-dir "$tmp/state"
agent_pid=$LAST
printf 'agents:\n  - name: h1\n    address: tcp://10.234.1.2:7070\n' >"$tmp/inv.yaml"
wait_for 10 in_ops "$cli" -i "$tmp/inv.yaml" agents || die "agent did not come up"

# Counters that would show a loss outside the fault's rule.
snmp_udp() { # FIELD: value of Udp FIELD in the ops namespace
	in_ops cat /proc/net/snmp | awk -v f="$1" '$1 == "Udp:" && !h { for (i = 2; i <= NF; i++) col[$i] = i; h = 1; next }
		$1 == "Udp:" && h { print $col[f] }'
}
drops() { # rx_dropped+tx_dropped of both veth ends
	local a b
	a=$(in_ops cat /sys/class/net/lao0/statistics/rx_dropped /sys/class/net/lao0/statistics/tx_dropped | paste -sd+ | bc)
	b=$(in_h1 cat /sys/class/net/eth0/statistics/rx_dropped /sys/class/net/eth0/statistics/tx_dropped | paste -sd+ | bc)
	echo $(( a + b ))
}

secs=$(( n / pps + 4 ))
echo "== machine: $(nproc) vCPU, $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "== net-loss accuracy: $n datagrams per flow at $pps/s, targeted 10.234.1.1:9000, control 10.234.1.3:9001 (concurrent)"
printf '%-8s %-9s %-9s %-9s %-10s %-10s %-9s %-8s %-7s %-10s %-9s %-6s\n' percent sent recv lost loss% expect% sigma% z in3sig ctl_recv rcvbuf veth
status=0
for pct in 0 1 10 50; do
	inj=""
	if [ "$pct" != 0 ]; then
		bg "$OPS" "inject$pct.log" "$cli" -i "$tmp/inv.yaml" inject h1 net-loss percent="$pct" \
			dst=10.234.1.1 protocol=udp --duration 120s
		inj=$LAST
		wait_for 15 grep -q applied "$tmp/inject$pct.log" || die "net-loss $pct % not applied: $(cat "$tmp/inject$pct.log")"
		grep -q "backend nftables" "$tmp/inject$pct.log" || die "expected the nftables backend: $(cat "$tmp/inject$pct.log")"
	fi
	rb0=$(snmp_udp RcvbufErrors); ie0=$(snmp_udp InErrors); d0=$(drops)
	bg "$OPS" "sink$pct.out" "$nt" udp-sink 10.234.1.1 9000 "$secs"; s1=$LAST
	bg "$OPS" "ctl$pct.out" "$nt" udp-sink 10.234.1.3 9001 "$secs"; s2=$LAST
	sleep 0.3
	bg "$H1" "send$pct.out" "$nt" udp-send 10.234.1.1 9000 "$n" "$pps"; p1=$LAST
	bg "$H1" "sendctl$pct.out" "$nt" udp-send 10.234.1.3 9001 "$n" "$pps"; p2=$LAST
	for p in $p1 $p2 $s1 $s2; do wait "$p" || die "traffic process $p failed"; forget "$p"; done
	rb=$(( $(snmp_udp RcvbufErrors) - rb0 )); ie=$(( $(snmp_udp InErrors) - ie0 )); d=$(( $(drops) - d0 ))
	sent=$(awk '{print $2}' "$tmp/send$pct.out"); sentc=$(awk '{print $2}' "$tmp/sendctl$pct.out")
	got=$(awk '{print $2}' "$tmp/sink$pct.out"); ctl=$(awk '{print $2}' "$tmp/ctl$pct.out")
	if [ -n "$inj" ]; then
		kill -INT "$inj"; wait "$inj" || true; forget "$inj"
		wait_for 5 bash -c "! ip netns exec $H1 nft list table inet faultline" || die "faultline table left after revert"
	fi
	line=$(awk -v n="$sent" -v got="$got" -v p="$pct" 'BEGIN {
		p /= 100; lost = n - got; m = lost / n; s = sqrt(n * p * (1 - p)) / n
		z = s > 0 ? (m - p) / s : (lost == 0 ? 0 : 1e9)
		ok = (z <= 3 && z >= -3) ? "yes" : "NO"
		printf "%-9d %-9d %-9d %-10.4f %-10.4f %-9.4f %-8.2f %-7s", n, got, lost, 100 * m, 100 * p, 100 * s, z, ok }')
	printf '%-8s %s %-10s %-9s %-6s\n' "$pct" "$line" "$ctl/$sentc" "$rb+$ie" "$d"
	case "$line" in *" NO "*) status=1 ;; esac
	[ "$sent" = "$n" ] && [ "$sentc" = "$n" ] || { echo "  senders sent $sent / $sentc of $n"; status=1; }
	[ "$ctl" = "$n" ] || { echo "  control flow lost packets: $ctl of $n"; status=1; }
	[ "$rb" = 0 ] && [ "$ie" = 0 ] && [ "$d" = 0 ] || { echo "  drops outside the fault: rcvbuf $rb inerr $ie veth $d"; status=1; }
done
kill -0 "$agent_pid" 2>/dev/null || die "agent died"
echo "loadavg at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "columns: lost = sent - received on the targeted flow; sigma% = 100*sqrt(n p (1-p))/n;"
echo "z = (loss - p)/sigma; ctl_recv = control flow received/sent; rcvbuf = UDP RcvbufErrors+InErrors"
echo "(ops namespace); veth = rx+tx drops of both veth ends, all during the level's traffic"
exit $status
