#!/usr/bin/env bash
# Ingress shaping through an IFB on this kernel (htb only, no netem):
# net-bandwidth direction=ingress src=<peer> caps a TCP flow arriving from
# that peer and leaves a flow from another source address alone; revert
# removes the ifb and the ingress qdisc (`tc qdisc show` exactly as
# before, no `inet faultline` table); a SIGKILLed agent's ingress fault is
# undone at restart; a foreign ingress qdisc is refused without force=true
# and survives, filters included, a forced fault; direction=both shapes
# both ways; IPv6 selectors and unsupported ones.
. "$(dirname "$0")/lib.sh"
t_setup
command -v tc >/dev/null || skip "tc (iproute2) needed to inspect state"
NT=$FL_BUILD_DIR/tests/fl-nettool
t_hosts 1
t_inventory 1
# A second address on the ops side: the "untargeted source".
ip -n "$OPS" addr add 10.231.1.3/24 dev "${T_ID}o1"
t_agent 1
H1="${T_ID}-h1"
in_h1() { ip netns exec "$H1" "$@"; }
in_ops() { ip netns exec "$OPS" "$@"; }
no_table() { ! in_h1 nft list table inet faultline >/dev/null 2>&1; }
no_ifb() { ! in_h1 ip -o link show | grep -q flifb-; }
qdiscs() { in_h1 tc qdisc show dev eth0 | sed -E 's/ direct_packets_stat [0-9]+//'; }
ingress_filters() { in_h1 tc filter show dev eth0 ingress; }
egress_filters() { in_h1 tc filter show dev eth0; }
clean() { no_table && no_ifb && [ "$(qdiscs)" = "$QBEFORE" ]; }
QBEFORE=$(qdiscs)

inject_bg() { # NAME ARGS...: background `faultline inject`, wait for "applied"
  local name=$1; shift
  t_bg "$OPS" "$name" "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 "$@"
  t_wait_for 10 grep -q applied "$T_TMP/$name.log" || fail "$name not applied: $(cat "$T_TMP/$name.log")"
  INJ=$T_LAST_PID
}
stop_inject() {
  kill -INT "$INJ"; wait "$INJ" 2>/dev/null
  t_wait_for 10 clean || fail "not clean after revert: $(qdiscs; in_h1 ip -o link show | grep flifb; in_h1 nft list ruleset 2>&1)"
}
# tcp_in_mbit SRC PORT: Mbit/s of a 4 s TCP flow from the ops side to h1,
# sourced from SRC (the route's preferred source is switched for it).
tcp_in_mbit() {
  in_ops ip route replace 10.231.1.2/32 dev "${T_ID}o1" src "$1"
  in_h1 "$NT" tcp-sink 10.231.1.2 "$2" 8 >"$T_TMP/tcp-$2.out" &
  local sp=$!
  sleep 0.3
  in_ops "$NT" tcp-send 10.231.1.2 "$2" 4
  wait $sp
  in_ops ip route del 10.231.1.2/32 dev "${T_ID}o1"
  awk '{print $6}' "$T_TMP/tcp-$2.out"
}

# --- net-bandwidth ingress from one source -------------------------------
inject_bg bw net-bandwidth rate=8mbit direction=ingress src=10.231.1.1 --duration 120s
grep -q "htb+ifb" "$T_TMP/bw.log" || fail "expected the htb+ifb backend: $(cat "$T_TMP/bw.log")"
ifb=$(in_h1 ip -o link show | grep -o 'flifb-[0-9a-f]*' | head -1)
[ -n "$ifb" ] || fail "no flifb device in h1"
in_h1 ip -o link show "$ifb" | grep -q "UP" || fail "$ifb not up"
in_h1 tc qdisc show dev eth0 | grep -q "qdisc ingress ffff:" || fail "no ingress qdisc: $(qdiscs)"
in_h1 tc qdisc show dev "$ifb" | grep -q "htb fa17:.*default 0x1" || fail "no htb with default fa17:1 on $ifb: $(in_h1 tc qdisc show dev "$ifb")"
ingress_filters | grep -q "Egress Redirect to device $ifb" || fail "no mirred redirect: $(ingress_filters)"
no_table || fail "an ingress-only qdisc fault needs no nftables rules"
# The exemptions head the u32 list: the control port (7070 = 0x1b9e) and
# ssh (22 = 0x16), as source and destination port.
for m in 00001b9e/0000ffff 1b9e0000/ffff0000 00000016/0000ffff 00160000/ffff0000; do
  ingress_filters | grep -q "match $m at 20" || fail "exemption $m missing: $(ingress_filters)"
done
capped=$(tcp_in_mbit 10.231.1.1 9100)
free=$(tcp_in_mbit 10.231.1.3 9101)
log "inbound from the targeted source: $capped Mbit/s (rate 8 mbit); from another source: $free Mbit/s"
awk -v r="$capped" 'BEGIN { exit !(r >= 7.2 && r <= 8.8) }' || fail "shaped inbound throughput $capped Mbit/s not within 8 ± 10 %"
awk -v r="$free" 'BEGIN { exit !(r > 40) }' || fail "untargeted source was shaped too: $free Mbit/s"
out=$(t_fl status) || fail "status under the ingress fault: $out"
pass "net-bandwidth direction=ingress 8mbit: targeted $capped Mbit/s, untargeted $free Mbit/s, control traffic exempt"
stop_inject
pass "revert: $ifb gone, tc qdisc as before, no faultline table"

# --- unsupported selectors for ingress ---------------------------------------
out=$(t_fl inject h1 net-bandwidth rate=8mbit direction=ingress interface=eth0 dport=1000-2000 --duration 5s 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "port ranges are not supported for direction=ingress" || fail "port range on ingress not refused ($rc): $out"
out=$(t_fl inject h1 net-bandwidth rate=8mbit direction=ingress interface=eth0 cgroup=system.slice --duration 5s 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "not supported for direction=ingress" || fail "cgroup on ingress not refused ($rc): $out"
out=$(t_fl inject h1 net-bandwidth rate=8mbit direction=ingress --duration 5s 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "interface= is required" || fail "ingress without interface/src not refused ($rc): $out"
clean || fail "a refused fault left state behind"
pass "ingress refuses port ranges, cgroup= and a missing interface, leaving nothing behind"

# --- IPv6 source + protocol/port: the filters read back -----------------------
inject_bg v6 net-bandwidth rate=8mbit direction=ingress interface=eth0 src=fd00:231::/64,10.231.1.1 protocol=tcp dport=9100 --duration 120s
ingress_filters | grep -q "protocol ipv6" || fail "no IPv6 filter: $(ingress_filters)"
ingress_filters | grep -q "protocol ip " || fail "no IPv4 filter: $(ingress_filters)"
capped=$(tcp_in_mbit 10.231.1.1 9100)
other=$(tcp_in_mbit 10.231.1.1 9102)
log "port 9100 from the source: $capped Mbit/s; port 9102: $other Mbit/s"
awk -v r="$capped" -v o="$other" 'BEGIN { exit !(r >= 7.2 && r <= 8.8 && o > 40) }' || fail "protocol/dport selection: $capped vs $other Mbit/s"
stop_inject
pass "src= IPv4+IPv6 protocol=tcp dport=9100: port 9100 $capped Mbit/s, port 9102 $other Mbit/s"

# --- direction=both -------------------------------------------------------------
inject_bg both net-bandwidth rate=8mbit direction=both interface=eth0 --duration 120s
in_h1 tc qdisc show dev eth0 | grep -q "htb fa17:" || fail "no egress htb root for direction=both: $(qdiscs)"
# The whole interface is targeted: the egress htb's own u32 filters steer
# (exemptions direct, the rest to fa17:1); no nftables rule.
egress_filters | grep -q "flowid fa17:1" || fail "no u32 steering on the egress htb: $(egress_filters)"
no_table || fail "a whole-interface egress fault needs no nftables rules: $(in_h1 nft list ruleset 2>&1)"
inbound=$(tcp_in_mbit 10.231.1.1 9103)
in_ops "$NT" tcp-sink 10.231.1.1 9104 8 >"$T_TMP/out.out" & sp=$!
sleep 0.3; in_h1 "$NT" tcp-send 10.231.1.1 9104 4; wait $sp
outbound=$(awk '{print $6}' "$T_TMP/out.out")
log "direction=both: inbound $inbound, outbound $outbound Mbit/s"
awk -v i="$inbound" -v o="$outbound" 'BEGIN { exit !(i >= 7.2 && i <= 8.8 && o >= 7.2 && o <= 8.8) }' || fail "direction=both: inbound $inbound, outbound $outbound Mbit/s"
stop_inject
pass "direction=both: inbound $inbound and outbound $outbound Mbit/s, revert clean"

# --- an egress and an ingress fault side by side; a second ingress refused ---
inject_bg eg net-bandwidth rate=8mbit interface=eth0 --duration 120s
EG=$INJ
# Whole-interface egress: the exemptions head the htb's u32 list (control
# port and ssh, both ways, sent direct) and really bypass the cap: an
# outbound TCP flow to port 22 is not shaped.
for m in 00001b9e/0000ffff 1b9e0000/ffff0000 00000016/0000ffff 00160000/ffff0000; do
  egress_filters | grep -q "match $m at 20" || fail "egress exemption $m missing: $(egress_filters)"
done
in_ops "$NT" tcp-sink 10.231.1.1 22 8 >"$T_TMP/ssh.out" & sp=$!
sleep 0.3; in_h1 "$NT" tcp-send 10.231.1.1 22 4; wait $sp
exempt=$(awk '{print $6}' "$T_TMP/ssh.out")
awk -v r="$exempt" 'BEGIN { exit !(r > 40) }' || fail "exempt flow to port 22 was shaped: $exempt Mbit/s"
pass "whole-interface egress cap: exemptions are u32 filters sent direct; a flow to port 22 ran at $exempt Mbit/s"
inject_bg in net-bandwidth rate=8mbit direction=ingress interface=eth0 --duration 120s
out=$(t_fl inject h1 net-bandwidth rate=4mbit direction=ingress interface=eth0 --duration 5s 2>&1) && fail "second ingress fault accepted: $out"
echo "$out" | grep -q "already carries a faultline ingress fault" || fail "second ingress fault: $out"
kill -INT "$INJ"; wait "$INJ" 2>/dev/null
t_wait_for 10 no_ifb || fail "ifb left after the ingress revert"
in_h1 tc qdisc show dev eth0 | grep -q "htb fa17:" || fail "ingress revert removed the egress fault's root: $(qdiscs)"
in_h1 tc qdisc show dev eth0 | grep -q "ingress ffff:" && fail "ingress qdisc left: $(qdiscs)"
egress_filters | grep -q "flowid fa17:1" || fail "ingress revert removed the egress fault's filters: $(egress_filters)"
INJ=$EG; stop_inject
pass "egress + ingress faults on one interface: second ingress refused, each revert removes only its own"

# --- a foreign ingress qdisc -------------------------------------------------------
in_h1 tc qdisc add dev eth0 ingress
in_h1 tc filter add dev eth0 parent ffff: protocol ip prio 10 u32 match ip src 10.231.1.77/32 classid 1:1 || fail "cannot add a foreign ingress filter"
QBEFORE=$(qdiscs); FBEFORE=$(ingress_filters)
out=$(t_fl inject h1 net-bandwidth rate=8mbit direction=ingress interface=eth0 --duration 5s 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "force=true" || fail "foreign ingress qdisc not refused ($rc): $out"
clean || fail "refusal left state behind"
pass "foreign ingress qdisc refused without force: $(echo "$out" | grep -o 'has an ingress qdisc[^;]*' | head -1)"
inject_bg forced net-bandwidth rate=8mbit direction=ingress src=10.231.1.1 force=true --duration 120s
ingress_filters | grep -q "0ae7014d/ffffffff" || fail "foreign filter gone under force: $(ingress_filters)"
capped=$(tcp_in_mbit 10.231.1.1 9105)
awk -v r="$capped" 'BEGIN { exit !(r >= 7.2 && r <= 8.8) }' || fail "forced ingress fault: $capped Mbit/s"
stop_inject
[ "$(ingress_filters)" = "$FBEFORE" ] || { diff <(echo "$FBEFORE") <(ingress_filters); fail "foreign filters changed"; }
pass "force=true: shaped ($capped Mbit/s) next to the foreign filter; revert left their qdisc and filter exactly"
in_h1 tc qdisc del dev eth0 ingress
QBEFORE=$(qdiscs)

# --- crash safety -----------------------------------------------------------------
inject_bg crash net-bandwidth rate=2mbit direction=ingress interface=eth0 --duration 120s
kill -KILL "$AGENT_PID_1"; wait "$AGENT_PID_1" 2>/dev/null
in_h1 ip -o link show | grep -q flifb- || fail "ifb vanished without recovery?"
in_h1 tc qdisc show dev eth0 | grep -q "ingress ffff:" || fail "ingress qdisc vanished without recovery?"
t_bg "$H1" agent1b "$AGENT" --foreground $(t_agent_args 1) --state-dir "$T_TMP/state1"
t_wait_for 10 t_fl agents || fail "agent did not restart"
t_wait_for 5 clean || fail "not restored after restart: $(qdiscs; in_h1 ip -o link show | grep flifb)"
pass "SIGKILL with an ingress fault active + restart: ifb and ingress qdisc gone"
