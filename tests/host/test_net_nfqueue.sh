#!/usr/bin/env bash
# The NFQUEUE delayer in the host lane: net-delay backend=nfqueue on this
# kernel, whose nf_tables has no native `queue` expression but does have
# the xtables NFQUEUE target through nft_compat (the agent then adds the
# queue rule with the xt target, as iptables-nft does). Real UDP round
# trips between namespaces the test creates: the RTT rises by the delay,
# an untargeted destination is untouched, SIGKILL of the agent lets
# traffic flow at once (bypass, no listener), the restart removes the
# leftover rules, and a normal revert leaves no `inet faultline` table.
. "$(dirname "$0")/lib.sh"
t_setup
command -v nft >/dev/null || skip "nft (nftables) needed to inspect state"
NT=$FL_BUILD_DIR/tests/fl-nettool
t_hosts 1
t_inventory 1
ip -n "$OPS" addr add 10.231.1.3/24 dev "${T_ID}o1"
t_agent 1
H1="${T_ID}-h1"
in_h1() { ip netns exec "$H1" "$@"; }
no_table() { ! in_h1 nft list table inet faultline >/dev/null 2>&1; }

out=$(t_fl agents) || fail "agents: $out"
echo "$out" | grep -q "net-delay(unavailable" && skip "no NFQUEUE path on this kernel: $out"

t_bg "$OPS" echo1 "$NT" udp-echo 10.231.1.1 9500 120
t_bg "$OPS" echo3 "$NT" udp-echo 10.231.1.3 9500 120
sleep 0.3
rtt() { in_h1 "$NT" rtt "$1" 9500 "$2" | awk '{print $3}'; }
base=$(rtt 10.231.1.1 20)

# --- bad input changes nothing ------------------------------------------------
out=$(t_fl inject h1 net-delay delay=50ms jitter=5ms distribution=pareto backend=nfqueue dst=10.231.1.1 --duration 5s 2>&1) && fail "distribution= accepted by the delayer: $out"
echo "$out" | grep -q "uniform jitter only" || fail "unclear refusal: $out"
out=$(t_fl inject h1 net-delay delay=50ms backend=bogus dst=10.231.1.1 --duration 5s 2>&1) && fail "backend=bogus accepted: $out"
out=$(t_fl inject h1 net-delay delay=50ms busy-poll=2s backend=nfqueue dst=10.231.1.1 --duration 5s 2>&1) && fail "busy-poll=2s accepted: $out"
echo "$out" | grep -q "at most 1s" || fail "unclear refusal of busy-poll=2s: $out"
out=$(t_fl inject h1 net-delay delay=50ms busy-poll=fast backend=nfqueue dst=10.231.1.1 --duration 5s 2>&1) && fail "busy-poll=fast accepted: $out"
echo "$out" | grep -q "busy-poll=fast" || fail "unclear refusal of busy-poll=fast: $out"
out=$(t_fl inject h1 net-delay delay=50ms busy-poll=1ms backend=netem dst=10.231.1.1 --duration 5s 2>&1) && fail "busy-poll with netem accepted: $out"
echo "$out" | grep -q "NFQUEUE delayer" || fail "unclear refusal of busy-poll with netem: $out"
no_table || fail "a refused fault left a table: $(in_h1 nft list ruleset)"
pass "bad input refused, nothing installed"

# --- delay 50 ms on one destination --------------------------------------------
t_bg "$OPS" delay "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 net-delay delay=50ms \
  jitter=1ms dst=10.231.1.1 backend=nfqueue --duration 60s
t_wait_for 15 grep -q applied "$T_TMP/delay.log" || fail "not applied: $(cat $T_TMP/delay.log)"
grep -q "backend nfqueue" "$T_TMP/delay.log" || fail "backend: $(cat $T_TMP/delay.log)"
# JSON: nft prints an inet xt rule as an empty line (its libxtables cannot
# render xt targets in the inet family) but names the expression in JSON.
rules=$(in_h1 nft -j list table inet faultline 2>/dev/null)
if echo "$rules" | grep -q '"queue"'; then how="native nft queue"
elif echo "$rules" | grep -q '"xt"'; then how="xt NFQUEUE via nft_compat"
else fail "no queue rule in the table: $rules"; fi
if [ "$how" != "native nft queue" ]; then
  in_h1 nft list table inet faultline 2>/dev/null | grep -q 'comment "faultline .*xt NFQUEUE num [0-9]* bypass' ||
    fail "the xt chain does not say what it holds: $(in_h1 nft list table inet faultline 2>&1)"
fi
# The worker is the agent's child (pgrep -P: only ours, never another test's).
wpid=$(pgrep -P "$AGENT_PID_1" -x fl-nfq-delayer) || fail "no delayer worker running"
delayed=$(rtt 10.231.1.1 20)
other=$(rtt 10.231.1.3 20)
log "RTT ${base} ms -> ${delayed} ms with delay=50ms ($how); untargeted ${other} ms"
awk -v d="$delayed" -v b="$base" 'BEGIN { exit !(d - b >= 49 && d - b <= 80) }' || fail "RTT rise $delayed - $base not ~50 ms"
awk -v o="$other" -v b="$base" 'BEGIN { exit !(o < b + 10) }' || fail "untargeted destination delayed: $other ms"
pass "nfqueue delayer ($how): RTT ${base} -> ${delayed} ms, untargeted ${other} ms"

# --- SIGKILL: bypass lets traffic through at once; restart cleans up -----------
kill -KILL "$AGENT_PID_1"; wait "$AGENT_PID_1" 2>/dev/null
in_h1 nft list table inet faultline >/dev/null 2>&1 || fail "rules vanished without recovery?"
t_wait_for 5 sh -c "! kill -0 $wpid" || fail "delayer $wpid outlived the agent"
after=$(rtt 10.231.1.1 10)
log "RTT right after SIGKILL (rules in place, no listener): ${after} ms"
awk -v a="$after" -v b="$base" 'BEGIN { exit !(a < b + 10) }' || fail "traffic still delayed or blocked after the agent died: $after ms"
pass "agent SIGKILLed: traffic flows at once (${after} ms) thanks to queue bypass"

t_agent 1
t_wait_for 10 no_table || fail "rules left after restart: $(in_h1 nft list ruleset)"
pass "restart removed the leftover queue rules"

# --- busy-poll, then a normal revert ---------------------------------------------
# busy-poll=20ms: the worker reads without sleeping until 20 ms after the
# last packet. While probes flow (one every ~20 ms) it burns CPU; once
# they stop it must go back to sleep.
t_bg "$OPS" delay2 "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 net-delay delay=20ms \
  busy-poll=20ms dst=10.231.1.1 backend=nfqueue --duration 60s
t_wait_for 15 grep -q applied "$T_TMP/delay2.log" || fail "not applied: $(cat $T_TMP/delay2.log)"
grep -q "busy-poll=20000us" "$T_TMP/delay2.log" || fail "busy-poll not in the fault's target: $(cat $T_TMP/delay2.log)"
wpid=$(pgrep -P "$AGENT_PID_1" -x fl-nfq-delayer) || fail "no delayer worker running"
ticks() { awk '{ print $14 + $15 }' "/proc/$wpid/stat"; }
t0=$(ticks)
d2=$(rtt 10.231.1.1 20)
t1=$(ticks)
sleep 0.5
t2=$(ticks); sleep 1; t3=$(ticks)
log "busy-poll=20ms: worker CPU $((t1 - t0)) ticks over 20 delayed round trips, $((t3 - t2)) ticks in 1 s idle"
awk -v d="$d2" -v b="$base" 'BEGIN { exit !(d - b >= 19 && d - b <= 50) }' || fail "RTT rise $d2 - $base not ~20 ms"
[ $((t1 - t0)) -ge 3 ] || fail "busy-poll=20ms: the worker did not poll while traffic flowed ($((t1 - t0)) ticks)"
[ $((t3 - t2)) -le 2 ] || fail "busy-poll=20ms: the worker kept spinning with no traffic ($((t3 - t2)) ticks in 1 s)"
pass "busy-poll: worker polled while traffic flowed, slept once it stopped; RTT +20 ms kept"
kill -INT "$T_LAST_PID"
t_wait_for 10 no_table || fail "table left after revert: $(in_h1 nft list ruleset)"
t_wait_for 5 sh -c "! kill -0 $wpid" || fail "delayer $wpid left after revert"
again=$(rtt 10.231.1.1 10)
awk -v a="$again" -v b="$base" 'BEGIN { exit !(a < b + 10) }' || fail "still delayed after revert: $again ms"
pass "revert: RTT back to ${again} ms, no table, no worker"
