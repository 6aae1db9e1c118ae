#!/usr/bin/env bash
# Network faults on this kernel (no sch_netem here: loss via nftables,
# bandwidth via htb): real traffic between namespaces the test creates,
# untargeted traffic untouched, and a revert that leaves nothing behind —
# no `inet faultline` table, `tc qdisc show` exactly as before, including a
# root qdisc the test installs first.
. "$(dirname "$0")/lib.sh"
t_setup
command -v nft >/dev/null && command -v tc >/dev/null || skip "nft/tc (nftables, iproute2) needed to inspect state"
NT=$FL_BUILD_DIR/tests/fl-nettool
t_hosts 1
t_inventory 1
# A second address on the ops side: the "untargeted destination".
ip -n "$OPS" addr add 10.231.1.3/24 dev "${T_ID}o1"
t_agent 1
H1="${T_ID}-h1"
in_h1() { ip netns exec "$H1" "$@"; }
in_ops() { ip netns exec "$OPS" "$@"; }
no_table() { ! in_h1 nft list table inet faultline >/dev/null 2>&1; }
# tc's view of eth0's qdiscs without packet counters (a recreated qdisc
# starts its statistics from zero; its configuration must match exactly).
qdiscs() { in_h1 tc qdisc show dev eth0 | sed -E 's/ direct_packets_stat [0-9]+//'; }

# count_udp DST PORT N PPS: datagrams received at DST:PORT out of N sent from h1.
count_udp() {
  local dst=$1 port=$2 n=$3 pps=$4 secs
  secs=$(( n / pps + 3 ))
  in_ops "$NT" udp-sink "$dst" "$port" "$secs" >"$T_TMP/sink-$dst-$port.out" &
  local sp=$!
  sleep 0.3
  in_h1 "$NT" udp-send "$dst" "$port" "$n" "$pps" >/dev/null
  wait $sp
  awk '{print $2}' "$T_TMP/sink-$dst-$port.out"
}

# --- net-loss 10 % over 20,000 packets, with a pre-existing root qdisc ----
in_h1 tc qdisc add dev eth0 root handle 1: tbf rate 1gbit burst 1mb latency 50ms
before=$(qdiscs)
t_bg "$OPS" loss "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 net-loss percent=10 \
  dst=10.231.1.1 protocol=udp --duration 30s
t_wait_for 5 grep -q applied "$T_TMP/loss.log" || fail "net-loss not applied: $(cat $T_TMP/loss.log)"
grep -q "backend nftables" "$T_TMP/loss.log" || fail "expected the nftables backend here (no netem): $(cat $T_TMP/loss.log)"
got=$(count_udp 10.231.1.1 9000 20000 5000)
other=$(count_udp 10.231.1.3 9001 5000 5000)
loss=$(awk -v g="$got" 'BEGIN { printf "%.2f", 100 * (20000 - g) / 20000 }')
log "targeted: $got of 20000 received (loss $loss %); untargeted: $other of 5000"
awk -v l="$loss" 'BEGIN { exit !(l >= 9 && l <= 11) }' || fail "loss $loss % not within 10 ± 1"
[ "$other" -eq 5000 ] || fail "untargeted destination lost packets: $other of 5000"
pass "net-loss 10 %: measured $loss % over 20,000 packets, untargeted flow lost nothing"
kill -INT "$(pgrep -f "inject h1 net-loss" | head -1)" 2>/dev/null
t_wait_for 5 no_table || fail "inet faultline table left after revert: $(in_h1 nft list ruleset)"
after=$(qdiscs)
[ "$before" = "$after" ] || fail "tc qdisc changed: before [$before] after [$after]"
pass "revert: no faultline table, tc qdisc exactly as before ($before)"

# --- net-bandwidth over the pre-existing tbf: refused without force ------
out=$(t_fl inject h1 net-bandwidth rate=8mbit dst=10.231.1.1 --duration 5s 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "force=true" || fail "foreign root qdisc not refused ($rc): $out"
pass "foreign root qdisc refused without force: $(echo "$out" | head -1)"

# --- with force=true: cap measured, untargeted unshaped, root restored ----
t_bg "$OPS" bw "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 net-bandwidth rate=8mbit \
  dst=10.231.1.1 force=true --duration 60s
t_wait_for 5 grep -q applied "$T_TMP/bw.log" || fail "net-bandwidth not applied: $(cat $T_TMP/bw.log)"
in_h1 tc qdisc show dev eth0 | grep -q "htb fa17:" || fail "no htb root: $(in_h1 tc qdisc show dev eth0)"
tcp_mbit() {
  in_ops "$NT" tcp-sink "$1" "$2" 8 >"$T_TMP/tcp-$1-$2.out" &
  local sp=$!
  sleep 0.3
  in_h1 "$NT" tcp-send "$1" "$2" 4
  wait $sp
  awk '{print $6}' "$T_TMP/tcp-$1-$2.out"
}
capped=$(tcp_mbit 10.231.1.1 9100)
free=$(tcp_mbit 10.231.1.3 9101)
log "shaped flow: $capped Mbit/s (rate 8 mbit); untargeted: $free Mbit/s"
awk -v r="$capped" 'BEGIN { exit !(r >= 7.2 && r <= 8.8) }' || fail "shaped throughput $capped Mbit/s not within 8 ± 10 %"
awk -v r="$free" 'BEGIN { exit !(r > 40) }' || fail "untargeted flow was shaped too: $free Mbit/s"
pass "net-bandwidth 8mbit: measured $capped Mbit/s; untargeted $free Mbit/s"
kill -INT "$(pgrep -f "inject h1 net-bandwidth" | head -1)" 2>/dev/null
t_wait_for 5 no_table || fail "table left after bandwidth revert"
same_qdiscs() { [ "$(qdiscs)" = "$before" ]; }
t_wait_for 5 same_qdiscs || fail "root not restored: [$(qdiscs)] vs [$before]"
pass "bandwidth revert restored the foreign tbf root exactly"
in_h1 tc qdisc del dev eth0 root

# --- net-port-block (DNS style: udp) -------------------------------------
t_bg "$OPS" pb "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 net-port-block port=9200 protocol=udp --duration 30s
t_wait_for 5 grep -q applied "$T_TMP/pb.log" || fail "port-block not applied: $(cat $T_TMP/pb.log)"
blocked=$(count_udp 10.231.1.1 9200 500 2000)
open=$(count_udp 10.231.1.1 9201 500 2000)
[ "$blocked" -eq 0 ] && [ "$open" -eq 500 ] || fail "port-block: port 9200 got $blocked, port 9201 got $open"
pass "net-port-block: udp/9200 0 of 500, udp/9201 500 of 500"
kill -INT "$(pgrep -f "inject h1 net-port-block" | head -1)" 2>/dev/null
t_wait_for 5 no_table || fail "table left after port-block"

# --- net-partition one direction -----------------------------------------
t_bg "$OPS" part "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 net-partition peers=10.231.1.1/32 direction=ingress --duration 30s
t_wait_for 5 grep -q applied "$T_TMP/part.log" || fail "partition not applied: $(cat $T_TMP/part.log)"
# ingress cut: ops -> h1 dropped, h1 -> ops still flows.
in_h1 "$NT" udp-sink 10.231.1.2 9300 3 >"$T_TMP/in.out" & sp=$!
sleep 0.3; in_ops "$NT" udp-send 10.231.1.2 9300 200 1000 >/dev/null; wait $sp
inbound=$(awk '{print $2}' "$T_TMP/in.out")
outbound=$(count_udp 10.231.1.1 9301 200 1000)
[ "$inbound" -eq 0 ] && [ "$outbound" -eq 200 ] || fail "ingress partition: inbound $inbound, outbound $outbound"
pass "net-partition direction=ingress: inbound 0 of 200, outbound 200 of 200"
kill -INT "$(pgrep -f "inject h1 net-partition" | head -1)" 2>/dev/null
t_wait_for 5 no_table || fail "table left after partition"

# --- partition of everything: control traffic exempt, abort gets through --
out=$(t_fl inject h1 net-partition peers=0.0.0.0/0 --duration 5s 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q force || fail "host-wide partition without force not refused: $out"
t_bg "$OPS" all "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 net-partition peers=0.0.0.0/0,::/0 force=true --duration 60s
t_wait_for 5 grep -q applied "$T_TMP/all.log" || fail "full partition not applied: $(cat $T_TMP/all.log)"
in_ops "$NT" tcp-connect 10.231.1.2 22 300 && true
! in_h1 "$NT" tcp-connect 10.231.1.1 9999 300 || fail "traffic still flows under a full partition"
t_fl status | grep -q net-partition || fail "status did not get through the partition"
out=$(t_fl abort) || fail "abort did not get through: $out"
echo "$out" | grep -q "1 fault(s) reverted" || fail "abort: $out"
t_wait_for 5 no_table || fail "table left after abort"
pass "full partition: status and abort reached the agent; abort reverted it"

# --- crash safety: SIGKILL the agent with a network fault active ---------
in_h1 tc qdisc add dev eth0 root handle 1: htb default 1
before=$(qdiscs)
t_bg "$OPS" crash1 "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 net-bandwidth rate=2mbit interface=eth0 force=true --duration 120s
t_bg "$OPS" crash2 "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 net-loss percent=50 dst=10.231.1.3 --duration 120s
t_wait_for 5 bash -c "grep -q applied $T_TMP/crash1.log && grep -q applied $T_TMP/crash2.log" || fail "crash faults not applied"
kill -KILL "$AGENT_PID_1"; wait "$AGENT_PID_1" 2>/dev/null
in_h1 nft list table inet faultline >/dev/null || fail "faults vanished without recovery?"
t_bg "$H1" agent1b "$AGENT" --foreground --listen tcp://10.231.1.2:7070 --state-dir "$T_TMP/state1"
t_wait_for 10 t_fl agents || fail "agent did not restart"
no_table || fail "nft table left after restart: $(in_h1 nft list ruleset)"
same_qdiscs || fail "qdisc not restored after crash: [$(qdiscs)] vs [$before]"
pass "SIGKILL + restart: nftables rules gone, foreign htb root restored"

# --- a forced fault over a full foreign tree: restored exactly -----------
# Classes, a leaf qdisc, u32 filters at several priorities and families on
# the root and on classes: the snapshot (raw dump) must bring every one of
# them back, u32 hash-table numbers included.
in_h1 tc qdisc del dev eth0 root
in_h1 tc qdisc add dev eth0 root handle 1: htb default 1
in_h1 tc class add dev eth0 parent 1: classid 1:1 htb rate 500mbit
in_h1 tc class add dev eth0 parent 1: classid 1:2 htb rate 300mbit
in_h1 tc qdisc add dev eth0 parent 1:2 handle 20: pfifo limit 50
# u32 numbers root and handle-less hash tables 800:, 801:, ... per qdisc
# in creation order, never reusing one: made here out of priority order,
# with a hole (803:, deleted), an auto-numbered table (806:) and a hashing
# filter on a class whose root table (804:) holds nothing but the link.
in_h1 tc filter add dev eth0 parent 1: protocol ipv6 prio 7 u32 match ip6 dst fd00::1/128 flowid 1:2
in_h1 tc filter add dev eth0 parent 1: protocol ip prio 5 u32 match ip dst 10.231.1.7/32 flowid 1:1
in_h1 tc filter add dev eth0 parent 1: protocol ip prio 5 u32 match ip dst 10.231.1.9/32 flowid 1:2
in_h1 tc filter add dev eth0 parent 1:1 protocol ip prio 6 u32 match ip dst 10.231.1.8/32 flowid 1:1
in_h1 tc filter add dev eth0 parent 1: protocol ip prio 9 u32 match ip dst 10.231.1.6/32 flowid 1:1
in_h1 tc filter del dev eth0 parent 1: protocol ip prio 9
in_h1 tc filter add dev eth0 parent 1:2 prio 8 handle 2: protocol ip u32 divisor 256
in_h1 tc filter add dev eth0 parent 1:2 prio 8 protocol ip u32 ht 804:: match ip dst 10.231.1.0/24 hashkey mask 0x000000ff at 16 link 2:
in_h1 tc filter add dev eth0 parent 1:2 prio 8 protocol ip u32 ht 2:7: match ip dst 10.231.1.7/32 flowid 1:2
in_h1 tc filter add dev eth0 parent 1: prio 4 protocol ip u32 divisor 16
in_h1 tc filter show dev eth0 | grep -q "pref 4 u32 chain 0 fh 806: ht divisor 16" || fail "fixture: u32 numbering is not what this test assumes: $(in_h1 tc filter show dev eth0)"
tree() { qdiscs; in_h1 tc -d class show dev eth0; in_h1 tc -d filter show dev eth0; in_h1 tc -d filter show dev eth0 parent 1:1; in_h1 tc -d filter show dev eth0 parent 1:2; }
tbefore=$(tree)
out=$(t_fl inject h1 net-bandwidth rate=8mbit interface=eth0 force=true --duration 2s 2>&1) || fail "forced fault over a foreign tree: $out"
same_tree() { [ "$(tree)" = "$tbefore" ]; }
t_wait_for 10 same_tree || { diff <(echo "$tbefore") <(tree); fail "foreign tree not restored exactly"; }
pass "forced net-bandwidth over a foreign htb tree (classes, leaf qdisc, u32 filters and hash tables, their numbers and holes): restored exactly"
in_h1 tc qdisc del dev eth0 root
# One priority on the qdisc and on a class: each instance lists the other's
# tables too (the kernel walks a qdisc's u32 tables by priority), so whose
# root a table is cannot be read from the dump; the replay makes those
# instances in dump order, which restores this tree exactly too.
in_h1 tc qdisc add dev eth0 root handle 1: htb default 1
in_h1 tc class add dev eth0 parent 1: classid 1:1 htb rate 500mbit
in_h1 tc filter add dev eth0 parent 1: prio 5 protocol ip u32 match ip dst 10.231.1.7/32 flowid 1:1
in_h1 tc filter add dev eth0 parent 1:1 prio 5 protocol ip u32 match ip dst 10.231.1.8/32 flowid 1:1
tree() { qdiscs; in_h1 tc -d class show dev eth0; in_h1 tc -d filter show dev eth0; in_h1 tc -d filter show dev eth0 parent 1:1; }
tbefore=$(tree)
out=$(t_fl inject h1 net-bandwidth rate=8mbit interface=eth0 force=true --duration 2s 2>&1) || fail "forced fault over a same-priority tree: $out"
t_wait_for 10 same_tree || { diff <(echo "$tbefore") <(tree); fail "same-priority u32 tree not restored exactly"; }
pass "forced net-bandwidth over u32 instances sharing a priority on the qdisc and a class: restored exactly"
in_h1 tc qdisc del dev eth0 root

# --- the interface replaced while a forced fault holds it -------------------
# Deleted and made again under the same name (a container restarted): the
# new interface has a new index and nobody's tree; the snapshot belonged to
# the old one and is not replayed onto it, and the revert still completes.
in_h1 ip link add fx0 type veth peer name fx1
in_h1 ip link set fx0 up
in_h1 tc qdisc add dev fx0 root handle 1: tbf rate 1gbit burst 1mb latency 50ms
t_bg "$OPS" fx0 "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 net-bandwidth rate=8mbit interface=fx0 force=true --duration 3s
t_wait_for 5 grep -q applied "$T_TMP/fx0.log" || fail "forced fault on fx0: $(cat "$T_TMP/fx0.log")"
in_h1 ip link del fx0
in_h1 ip link add fx0 type veth peer name fx1
in_h1 ip link set fx0 up
fresh=$(in_h1 tc qdisc show dev fx0)
wait "$T_LAST_PID" 2>/dev/null || true
replaced_logged() { grep -q "was replaced since the fault began" "$T_TMP"/agent1*.log; }
t_wait_for 10 replaced_logged || fail "no notice of the replaced interface: $(tail -5 "$T_TMP"/agent1b.log)"
sleep 0.5
[ "$(in_h1 tc qdisc show dev fx0)" = "$fresh" ] || fail "the new fx0's qdiscs were touched: $(in_h1 tc qdisc show dev fx0)"
out=$(t_fl status 2>&1)
echo "$out" | grep -q "f-" && fail "fault still listed after its revert: $out"
grep -q "revert.*failed" "$T_TMP"/agent1b.log && fail "revert failed: $(grep 'revert.*failed' "$T_TMP"/agent1b.log | head -2)"
in_h1 ip link del fx0
pass "interface replaced under a forced fault: old snapshot not replayed onto the new one, revert completed"
