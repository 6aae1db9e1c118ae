#!/usr/bin/env bash
# vm-modules: nft_queue,nfnetlink_queue,sch_htb
#
# The NFQUEUE fallback: with sch_netem absent (and kept absent: module
# autoloading is switched off in this guest), net-delay runs through the
# agent's userspace delayer; the RTT rises by the delay; SIGKILL of the
# agent lets traffic flow again at once (queue bypass), before any restart;
# the restart removes the leftover rule.
. "$(dirname "$0")/../lib-vm.sh"
t_setup
NT=$FL_BUILD_DIR/tests/fl-nettool
t_hosts 1
# Keep netem out: the agent's capability probe would otherwise autoload it.
# Everything else this case needs is loaded by now (the topology above, the
# header's modules), so autoloading can go.
for m in nf_tables nft_queue nfnetlink_queue; do modprobe "$m" 2>/dev/null; done
ip netns exec "${T_ID}-h1" nft add table inet fl_warmup && ip netns exec "${T_ID}-h1" nft delete table inet fl_warmup
echo /nonexistent >/proc/sys/kernel/modprobe
grep -q '^sch_netem ' /proc/modules && fail "sch_netem is loaded; this case needs it absent"
t_inventory 1
ip -n "$OPS" addr add 10.231.1.3/24 dev "${T_ID}o1"
t_agent 1
H1="${T_ID}-h1"
in_h1() { ip netns exec "$H1" "$@"; }
out=$(t_fl agents) || fail "agents: $out"
echo "$out" | grep -q "net-delay(unavailable" && fail "net-delay should be available through NFQUEUE: $out"
echo "$out" | grep -q "net-corrupt(unavailable" || fail "net-corrupt should be unavailable without netem: $out"
pass "capabilities: net-delay via NFQUEUE, netem-only faults unavailable with a reason"

t_bg "$OPS" echo1 "$NT" udp-echo 10.231.1.1 9500 120
t_bg "$OPS" echo3 "$NT" udp-echo 10.231.1.3 9500 120
sleep 0.5
rtt() { in_h1 "$NT" rtt "$1" 9500 "$2" | awk '{print $3}'; }
base=$(rtt 10.231.1.1 20)

t_bg "$OPS" delay "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 net-delay delay=50ms dst=10.231.1.1 --duration 120s
t_wait_for 15 grep -q applied "$T_TMP/delay.log" || fail "not applied: $(cat $T_TMP/delay.log)"
grep -q "backend nfqueue" "$T_TMP/delay.log" || fail "backend: $(cat $T_TMP/delay.log)"
delayed=$(rtt 10.231.1.1 10)
other=$(rtt 10.231.1.3 10)
log "RTT ${base} ms -> ${delayed} ms with delay=50ms (nfqueue); untargeted ${other} ms"
awk -v d="$delayed" -v b="$base" 'BEGIN { exit !(d - b >= 48 && d - b <= 300) }' || fail "RTT rise $delayed - $base not ~50 ms"
awk -v o="$other" 'BEGIN { exit !(o < 30) }' || fail "untargeted delayed: $other"
pass "nfqueue delayer: RTT ${base} -> ${delayed} ms, untargeted ${other} ms"

# SIGKILL the agent: its delayer dies with it and `bypass` lets packets by.
kill -KILL "$AGENT_PID_1"; wait "$AGENT_PID_1" 2>/dev/null
in_h1 nft list table inet faultline | grep -q "queue" || fail "rule vanished without recovery?"
after=$(rtt 10.231.1.1 10)
log "RTT right after SIGKILL (rule still in place, no listener): ${after} ms"
awk -v a="$after" 'BEGIN { exit !(a < 30) }' || fail "traffic still delayed or blocked after the agent died: $after ms"
pass "agent SIGKILLed: traffic flows at once (${after} ms) thanks to queue bypass"

t_bg "$H1" agent1b "$AGENT" --foreground --listen tcp://10.231.1.2:7070 --state-dir "$T_TMP/state1"
t_wait_for 20 t_fl agents || fail "agent did not restart"
! in_h1 nft list table inet faultline >/dev/null 2>&1 || fail "rule left after restart"
pass "restart removed the leftover queue rule"
