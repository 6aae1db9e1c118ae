#!/usr/bin/env bash
# vm-modules: sch_netem,sch_htb,sch_ingress,cls_u32,act_mirred,ifb
#
# Ingress shaping through an IFB on Debian's stock kernel (netem present):
# net-delay direction=ingress src=<peer> raises the RTT to that peer (its
# replies arrive delayed) and not to another address; net-loss with
# backend=netem drops arriving datagrams from the targeted source only;
# revert removes the ifb and the ingress qdisc; a SIGKILLed agent's ingress
# netem fault is undone at restart. TCG timing is noisy: magnitudes here.
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
QBEFORE=$(in_h1 tc qdisc show dev eth0)
out=$(t_fl agents) || fail "agents: $out"
echo "$out" | grep -q "net-delay(unavailable" && fail "netem not detected: $out"
clean() {
  ! in_h1 nft list table inet faultline >/dev/null 2>&1 && ! in_h1 ip -o link show | grep -q flifb- &&
    [ "$(in_h1 tc qdisc show dev eth0)" = "$QBEFORE" ]
}
state() { in_h1 tc -s qdisc show; in_h1 tc -s filter show dev eth0 ingress; in_h1 ip -s link show; }
inject_bg() {
  local name=$1 t0; shift
  t0=$(now_ms)
  t_bg "$OPS" "$name" "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 "$@"
  t_wait_for 15 grep -q applied "$T_TMP/$name.log" || { state; fail "$name not applied: $(cat "$T_TMP/$name.log")"; }
  log "$name applied in $(( $(now_ms) - t0 )) ms"
  INJ=$T_LAST_PID
}
stop_inject() {
  kill -INT "$INJ"; wait "$INJ" 2>/dev/null
  t_wait_for 10 clean || fail "not clean after revert: $(in_h1 tc qdisc show dev eth0; in_h1 ip -o link show | grep flifb)"
}

t_bg "$OPS" echo1 "$NT" udp-echo 10.231.1.1 9500 120
t_bg "$OPS" echo3 "$NT" udp-echo 10.231.1.3 9500 120
sleep 0.5
rtt() { in_h1 "$NT" rtt "$1" 9500 "$2" | awk '{print $3}'; }
base=$(rtt 10.231.1.1 20)
log "baseline RTT ${base} ms"

# --- net-delay on arriving packets from one source ---------------------------
inject_bg delay net-delay delay=100ms direction=ingress src=10.231.1.1 --duration 120s
grep -q "backend netem+ifb" "$T_TMP/delay.log" || fail "delay backend: $(cat "$T_TMP/delay.log")"
in_h1 tc qdisc show | grep -q "netem" || fail "no netem on the ifb: $(in_h1 tc qdisc show)"
delayed=$(rtt 10.231.1.1 10)
other=$(rtt 10.231.1.3 10)
log "RTT with ingress delay=100ms from 10.231.1.1: ${delayed} ms; from 10.231.1.3: ${other} ms"
# Absolute bounds: TCG makes the baseline itself noisy by a few ms.
awk -v d="$delayed" 'BEGIN { exit !(d >= 95 && d <= 400) }' || fail "RTT $delayed ms under delay=100ms (baseline $base ms)"
awk -v o="$other" 'BEGIN { exit !(o < 50) }' || fail "untargeted source delayed: $other ms"
stop_inject
pass "net-delay direction=ingress 100ms: RTT ${base} -> ${delayed} ms via the targeted source, ${other} ms via the other, revert clean"

# --- net-loss via netem on ingress --------------------------------------------
count_in() { # SRC PORT N PPS: datagrams h1 receives out of N sent from SRC
  in_ops ip route replace 10.231.1.2/32 dev "${T_ID}o1" src "$1"
  in_h1 "$NT" udp-sink 10.231.1.2 "$2" $(( $3 / $4 + 4 )) >"$T_TMP/c.out" & local sp=$!
  sleep 0.3; in_ops "$NT" udp-send 10.231.1.2 "$2" "$3" "$4" >/dev/null; wait $sp
  in_ops ip route del 10.231.1.2/32 dev "${T_ID}o1"
  awk '{print $2}' "$T_TMP/c.out"
}
inject_bg loss net-loss percent=20 backend=netem direction=ingress src=10.231.1.1 protocol=udp --duration 120s
grep -q "backend netem+ifb" "$T_TMP/loss.log" || fail "loss backend: $(cat "$T_TMP/loss.log")"
got=$(count_in 10.231.1.1 9600 2000 1000)
free=$(count_in 10.231.1.3 9601 1000 1000)
log "net-loss 20 % ingress: $got of 2000 from the targeted source, $free of 1000 from the other"
[ "$got" -ge 1400 ] && [ "$got" -le 1750 ] && [ "$free" -ge 990 ] || fail "ingress loss: $got of 2000, untargeted $free of 1000"
stop_inject
pass "net-loss backend=netem direction=ingress: $got of 2000 received, untargeted $free of 1000"

# --- crash safety --------------------------------------------------------------
inject_bg crash net-delay delay=50ms direction=ingress interface=eth0 --duration 120s
kill -KILL "$AGENT_PID_1"; wait "$AGENT_PID_1" 2>/dev/null
in_h1 ip -o link show | grep -q flifb- || fail "ifb vanished without recovery?"
t_bg "$H1" agent1b "$AGENT" --foreground $(t_agent_args 1) --state-dir "$T_TMP/state1"
t_wait_for 20 t_fl agents || fail "agent did not restart"
t_wait_for 10 clean || fail "not restored after restart: $(in_h1 tc qdisc show; in_h1 ip -o link show)"
pass "SIGKILL with an ingress netem fault active + restart: ifb and ingress qdisc gone"
