#!/usr/bin/env bash
# vm-modules: sch_netem,sch_htb
#
# netem-backed network faults on Debian's stock kernel: net-delay raises
# the measured RTT, net-loss picks the netem backend, corrupt, duplicate and
# reorder show in real counters, untargeted traffic is untouched, every
# revert leaves tc and nftables as they were, and a SIGKILLed agent's
# faults are undone at restart. TCG timing is noisy: magnitudes here,
# precision in the host lane.
. "$(dirname "$0")/../lib-vm.sh"
t_setup
NT=$FL_BUILD_DIR/tests/fl-nettool
t_hosts 1
t_inventory 1
ip -n "$OPS" addr add 10.231.1.3/24 dev "${T_ID}o1"
t_agent 1
H1="${T_ID}-h1"
in_h1() { ip netns exec "$H1" "$@"; }
in_ops() { ip netns exec "$OPS" "$@"; }
clean() { ! in_h1 nft list table inet faultline >/dev/null 2>&1 && [ "$(in_h1 tc qdisc show dev eth0)" = "$QBEFORE" ]; }
QBEFORE=$(in_h1 tc qdisc show dev eth0)
out=$(t_fl agents) || fail "agents: $out"
echo "$out" | grep -q "net-delay(unavailable" && fail "netem not detected: $out"
pass "agent reports netem faults available"

# Echo servers on both ops addresses for RTT probes.
t_bg "$OPS" echo1 "$NT" udp-echo 10.231.1.1 9500 120
t_bg "$OPS" echo3 "$NT" udp-echo 10.231.1.3 9500 120
sleep 0.5
rtt() { in_h1 "$NT" rtt "$1" 9500 "$2" | awk '{print $3}'; }
base=$(rtt 10.231.1.1 20)
log "baseline RTT ${base} ms"

# inject_bg NAME ARGS...: start `faultline inject` in the background, wait for "applied".
inject_bg() {
  local name=$1; shift
  t_bg "$OPS" "$name" "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 "$@"
  t_wait_for 15 grep -q applied "$T_TMP/$name.log" || fail "$name not applied: $(cat "$T_TMP/$name.log")"
  INJ=$T_LAST_PID
}
stop_inject() {
  kill -INT "$INJ"; wait "$INJ" 2>/dev/null
  t_wait_for 10 clean || fail "not clean after revert: $(in_h1 tc qdisc show dev eth0; in_h1 nft list ruleset)"
}

# --- net-delay ----------------------------------------------------------
inject_bg delay net-delay delay=100ms jitter=5ms distribution=normal dst=10.231.1.1 --duration 120s
grep -q "backend netem" "$T_TMP/delay.log" || fail "delay backend: $(cat $T_TMP/delay.log)"
delayed=$(rtt 10.231.1.1 10)
other=$(rtt 10.231.1.3 10)
log "RTT with delay=100ms: ${delayed} ms; untargeted destination: ${other} ms"
awk -v d="$delayed" -v b="$base" 'BEGIN { exit !(d - b >= 95 && d - b <= 400) }' || fail "RTT rose by $(awk -v d=$delayed -v b=$base 'BEGIN{print d-b}') ms, expected >= 100 (5 ms jitter slack)"
awk -v o="$other" 'BEGIN { exit !(o < 50) }' || fail "untargeted destination delayed: $other ms"
stop_inject
pass "net-delay 100ms: RTT ${base} -> ${delayed} ms, untargeted ${other} ms, revert clean"

# --- net-loss picks netem here -------------------------------------------
count() { # DST PORT N PPS -> "received reordered"
  local secs=$(( $3 / $4 + 4 ))
  in_ops "$NT" udp-sink "$1" "$2" "$secs" >"$T_TMP/c.out" & local sp=$!
  sleep 0.3; in_h1 "$NT" udp-send "$1" "$2" "$3" "$4" >/dev/null; wait $sp
  awk '{print $2, $4}' "$T_TMP/c.out"
}
inject_bg loss net-loss percent=20 dst=10.231.1.1 protocol=udp --duration 120s
grep -q "backend netem" "$T_TMP/loss.log" || fail "loss should use netem when available: $(cat $T_TMP/loss.log)"
got=$(count 10.231.1.1 9600 2000 1000 | cut -d' ' -f1)
log "net-loss 20 % (netem): $got of 2000"
[ "$got" -ge 1400 ] && [ "$got" -le 1750 ] || fail "received $got of 2000 with 20 % loss"
stop_inject
pass "net-loss via netem: $got of 2000 received"

# --- corrupt: the receiver's checksum counters move -----------------------
csum() { in_ops awk '/^Udp:/ { if (h) print $7 + 0; h = 1 }' /proc/net/snmp; }
iphdr() { in_ops awk '/^Ip:/ { if (h) print $5 + 0; h = 1 }' /proc/net/snmp; }
c0=$(csum); i0=$(iphdr)
inject_bg corrupt net-corrupt percent=50 dst=10.231.1.1 --duration 120s
got=$(count 10.231.1.1 9700 1000 1000 | cut -d' ' -f1)
c1=$(csum); i1=$(iphdr)
log "net-corrupt 50 %: received $got of 1000; UDP InCsumErrors +$((c1 - c0)), IP InHdrErrors +$((i1 - i0))"
[ "$got" -lt 950 ] && [ $(( c1 - c0 + i1 - i0 )) -gt 0 ] || fail "corruption not visible"
stop_inject
pass "net-corrupt visible in the receiver's checksum counters"

# --- duplicate -------------------------------------------------------------
inject_bg dup net-duplicate percent=50 dst=10.231.1.1 --duration 120s
got=$(count 10.231.1.1 9800 1000 1000 | cut -d' ' -f1)
log "net-duplicate 50 %: received $got for 1000 sent"
[ "$got" -ge 1300 ] || fail "duplicates not visible: $got"
stop_inject
pass "net-duplicate: $got datagrams for 1000 sent"

# --- reorder ---------------------------------------------------------------
inject_bg reo net-reorder percent=50 delay=20ms dst=10.231.1.1 --duration 120s
read -r got reo < <(count 10.231.1.1 9900 1000 1000)
log "net-reorder 50 % delay=20ms: received $got, out of order $reo"
[ "$reo" -ge 50 ] || fail "reordering not visible: $reo of $got"
stop_inject
pass "net-reorder: $reo of $got arrived out of order"

# --- crash safety ------------------------------------------------------------
inject_bg crash net-delay delay=50ms interface=eth0 --duration 120s
kill -KILL "$AGENT_PID_1"; wait "$AGENT_PID_1" 2>/dev/null
in_h1 tc qdisc show dev eth0 | grep -q netem || fail "netem vanished without recovery?"
t_bg "$H1" agent1b "$AGENT" --foreground --listen tcp://10.231.1.2:7070 --state-dir "$T_TMP/state1"
t_wait_for 20 t_fl agents || fail "agent did not restart"
clean || fail "not restored after restart: $(in_h1 tc qdisc show dev eth0)"
pass "SIGKILL with netem active + restart: interface restored"
