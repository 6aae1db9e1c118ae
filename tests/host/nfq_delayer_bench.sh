# shellcheck shell=bash
# Body of the NFQUEUE-delayer bench (net-delay backend=nfqueue), shared by
# its two entry points, which source their fixture first and then this:
#
#   sudo bench/nfq_delayer.sh [BUILD_DIR]           host lane (this kernel: xt
#                                                   NFQUEUE through nft_compat)
#   tests/vm/run-vm.sh --build-dir BUILD --timeout 900 tests/vm/cases/bench_nfq_delayer.sh
#                                                   VM lane (stock kernel, TCG)
#
# Not a test (ctest registers only test_*.sh). Sizes: FL_BENCH_N,
# FL_BENCH_LOW_N, FL_BENCH_FLOOD_N, FL_BENCH_PPS (environment).
#
# Sender in h1, receiver in ops, one process and one clock (fl-bench-owd,
# bench/owd_probe.c): every datagram carries its CLOCK_MONOTONIC send time,
# so the receiver measures the one-way delay directly. The fault is applied
# by a real agent in h1: net-delay dst=10.231.1.1 protocol=udp
# backend=nfqueue.
#  1. baseline one-way delay (no fault) at PPS and at 1,000/s; baseline flood
#  2. delay=10ms: one-way delay at PPS and at 1,000/s
#     -> error = owd - baseline mean - 10 ms
#  3. delay=1us (the agent refuses delay=0): one-way delay at 1,000/s and at
#     PPS -> added latency; flood of 64-byte datagrams -> packets/s through
#     the queue (the worker answers with batch verdicts), and the worker's
#     CPU time per packet queued (/proc/PID/schedstat; the queue's id
#     sequence less the worker socket's drops in /proc/net/netlink)
#  3b. busy-poll=5ms (opt-in: the worker reads without sleeping until 5 ms
#     after the last packet): delay=1us added latency at 1,000/s and PPS,
#     delay=10ms error at PPS, and the worker's CPU share during each; a
#     flood (a reading worker costs the sender no wake-up per packet)
#  4. release timing with nothing else queued: 50/s with delay=10ms and
#     delay=10500us (the worker sleeps in ppoll with a microsecond timeout)
# After each faulted run: h1's /proc/net/netfilter/nfnetlink_queue
# (queue_dropped = queue full, user_dropped = netlink socket buffer full;
# with fail-open both pass the packet undelayed instead of dropping it).

t_setup
OWD=$FL_BUILD_DIR/tests/fl-bench-owd
[ -x "$OWD" ] || skip "fl-bench-owd not built in $FL_BUILD_DIR (cmake --build ... --target fl-bench-owd)"
N=${FL_BENCH_N:-20000}            # datagrams at PPS
LOW_N=${FL_BENCH_LOW_N:-3000}     # datagrams at 1,000/s
FLOOD_N=${FL_BENCH_FLOOD_N:-200000}  # ~0.7 s per flood here: long enough to average over
PPS=${FL_BENCH_PPS:-10000}
t_hosts 1
t_inventory 1
t_agent 1 --log-level info
H1="${T_ID}-h1"
log "kernel $(uname -r), $(nproc) CPUs${FL_VM:+, qemu TCG guest (software emulation)}; load $(cut -d" " -f1-3 /proc/loadavg); N=$N at $PPS/s, $LOW_N at 1000/s, flood $FLOOD_N"
log "clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource), net.core.rmem_max=$(sysctl -n net.core.rmem_max)"
log "timers: $("$OWD" timer 300)"

owd() { "$OWD" owd "$H1" "$OPS" 10.231.1.1 9600 "$1" "$2"; }
flood() { "$OWD" flood "$H1" "$OPS" 10.231.1.1 9600 "$1"; }
field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' <<<"$1"; }
INJ_N=0
inject() { # PARAMS...: apply net-delay with these params; pid in INJ
  INJ_N=$((INJ_N + 1))
  local l="inject$INJ_N"
  t_bg "$OPS" "$l" "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 net-delay "$@" \
    dst=10.231.1.1 protocol=udp backend=nfqueue --duration 600s
  INJ=$T_LAST_PID
  t_wait_for 30 grep -q applied "$T_TMP/$l.log" || fail "net-delay $* not applied: $(cat "$T_TMP/$l.log")"
  grep -q "backend nfqueue" "$T_TMP/$l.log" || fail "not the nfqueue backend: $(cat "$T_TMP/$l.log")"
  WORKER=$(pgrep -P "$AGENT_PID_1" -x fl-nfq-delayer | head -1)
}
cpu_ticks() { [ -n "$WORKER" ] && awk '{ print $14 + $15 }' "/proc/$WORKER/stat" 2>/dev/null || echo 0; }
TCK=$(getconf CLK_TCK)
# "owd" with the worker's CPU share while it ran appended (cpu_pct N).
owd_cpu() {
  local c0 t0 c1 t1 r
  c0=$(cpu_ticks); t0=$(date +%s%N)
  r=$(owd "$1" "$2")
  c1=$(cpu_ticks); t1=$(date +%s%N)
  echo "$r cpu_pct $(awk -v c=$((c1 - c0)) -v t=$((t1 - t0)) -v k="$TCK" 'BEGIN { printf "%.0f", 100 * c / k / (t / 1e9) }')"
}
nfq_stats() { # queue_num portid queue_total copy_mode copy_range queue_dropped user_dropped id_seq
  ip netns exec "$H1" cat /proc/net/netfilter/nfnetlink_queue 2>/dev/null |
    awk '{ printf "queue %s held %s queue_dropped %s user_dropped %s last_id %s", $1, $3, $6, $7, $8 }'
}
revert() {
  kill -INT "$INJ"; wait "$INJ" 2>/dev/null
  no_rule() { ! ip netns exec "$H1" nft list table inet faultline >/dev/null 2>&1; }
  t_wait_for 10 no_rule || fail "faultline table left after revert"
}

# delay=0 is refused by the agent: record the message.
out=$(t_fl inject h1 net-delay delay=0ms dst=10.231.1.1 backend=nfqueue --duration 5s 2>&1) && fail "delay=0ms accepted?"
log "delay=0ms: $(echo "$out" | head -1)"

b_hi=$(owd "$N" "$PPS");    log "baseline   @${PPS}/s: $b_hi"
b_lo=$(owd "$LOW_N" 1000);  log "baseline   @1000/s: $b_lo"
b_fl=$(flood "$FLOOD_N");   log "baseline   flood:   $b_fl"

inject delay=10ms
d_hi=$(owd "$N" "$PPS");    log "delay=10ms @${PPS}/s: $d_hi"
log "  nfqueue after @${PPS}/s: $(nfq_stats)"
d_lo=$(owd "$LOW_N" 1000);  log "delay=10ms @1000/s: $d_lo"
q_a=$(owd 150 50);          log "delay=10ms @50/s: $q_a"
log "  nfqueue: $(nfq_stats)"
worker=$(pgrep -P "$AGENT_PID_1" -x fl-nfq-delayer | head -1)
[ -n "$worker" ] && log "delayer worker pid $worker: $(awk '{print "utime", $14, "stime", $15, "ticks"}' /proc/$worker/stat)"
revert

inject delay=1us
z_lo=$(owd_cpu "$LOW_N" 1000);  log "delay=1us  @1000/s: $z_lo"
z_hi=$(owd_cpu "$N" "$PPS");    log "delay=1us  @${PPS}/s: $z_hi"
log "  nfqueue after @${PPS}/s: $(nfq_stats)"
# The worker's own CPU time in the flood (schedstat, ns; on this kernel, without
# IRQ time accounting, it includes the receive path its verdicts run in softirq)
# and the packets queued (the queue's id sequence): what one queue costs per
# packet, whatever the sender managed.
sched_ns() { [ -n "$WORKER" ] && awk '{ print $1 }' "/proc/$WORKER/schedstat" 2>/dev/null || echo 0; }
queued() { ip netns exec "$H1" awk '{ print $8 }' /proc/net/netfilter/nfnetlink_queue 2>/dev/null | head -1; }
# Messages the kernel could not hand the worker (its socket buffer full): a
# fail-open queue passes those packets undelayed and counts them nowhere else.
sock_drops() {
  local portid
  portid=$(ip netns exec "$H1" awk '{ print $2; exit }' /proc/net/netfilter/nfnetlink_queue 2>/dev/null)
  ip netns exec "$H1" awk -v p="$portid" '$2 == 12 && $3 == p { print $9; exit }' /proc/net/netlink
}
f_s0=$(sched_ns); f_i0=$(queued); f_d0=$(sock_drops)
z_fl=$(flood "$FLOOD_N");   log "delay=1us  flood:   $z_fl"
f_s1=$(sched_ns); f_i1=$(queued); f_d1=$(sock_drops)
log "  nfqueue after flood: $(nfq_stats); worker CPU in the flood $(( (f_s1 - f_s0) / 1000 )) us for $(( f_i1 - f_i0 )) packets queued; socket drops $(( ${f_d1:-0} - ${f_d0:-0} ))"
revert

# Opt-in busy polling: the worker reads without sleeping until 5 ms after
# the last packet, so an arrival costs no wake-up.
inject delay=1us busy-poll=5ms
p_lo=$(owd_cpu "$LOW_N" 1000);  log "delay=1us busy-poll=5ms @1000/s: $p_lo"
p_hi=$(owd_cpu "$N" "$PPS");    log "delay=1us busy-poll=5ms @${PPS}/s: $p_hi"
# A reading worker needs no wake-up per packet: the sender's queueing is cheaper.
p_d0=$(sock_drops)
p_fl=$(flood "$FLOOD_N");   log "delay=1us busy-poll=5ms flood: $p_fl"
log "  nfqueue after flood: $(nfq_stats); socket drops $(( $(sock_drops) - ${p_d0:-0} ))"
revert
inject delay=10ms busy-poll=5ms
pd_hi=$(owd_cpu "$N" "$PPS");   log "delay=10ms busy-poll=5ms @${PPS}/s: $pd_hi"
revert

inject delay=10500us
q_b=$(owd 150 50);          log "delay=10500us @50/s: $q_b"
revert
b_q=$(owd 150 50);          log "baseline   @50/s: $b_q"

# Figures (microseconds). Error = delayed owd - baseline mean owd (same rate) - 10,000.
awk -v bm="$(field "$b_hi" mean)" -v dm="$(field "$d_hi" mean)" -v d50="$(field "$d_hi" p50)" -v d99="$(field "$d_hi" p99)" \
    -v r="$(field "$d_hi" rate_pps)" -v l="$(field "$d_hi" lost)" -v pps="$PPS" 'BEGIN {
  printf "FIGURE delay=10ms @%d/s (achieved %d/s, lost %d): error mean %.1f us, p50 %.1f us, p99 %.1f us\n",
    pps, r, l, dm - bm - 10000, d50 - bm - 10000, d99 - bm - 10000 }'
awk -v bm="$(field "$b_lo" mean)" -v dm="$(field "$d_lo" mean)" -v d50="$(field "$d_lo" p50)" -v d99="$(field "$d_lo" p99)" \
    -v r="$(field "$d_lo" rate_pps)" -v l="$(field "$d_lo" lost)" 'BEGIN {
  printf "FIGURE delay=10ms @1000/s (achieved %d/s, lost %d): error mean %.1f us, p50 %.1f us, p99 %.1f us\n",
    r, l, dm - bm - 10000, d50 - bm - 10000, d99 - bm - 10000 }'
awk -v b50="$(field "$b_lo" p50)" -v z50="$(field "$z_lo" p50)" -v b99="$(field "$b_lo" p99)" -v z99="$(field "$z_lo" p99)" 'BEGIN {
  printf "FIGURE delay=1us @1000/s: added latency p50 %.1f us (owd p50 %.1f vs %.1f baseline), p99 owd %.1f vs %.1f\n",
    z50 - b50, z50, b50, z99, b99 }'
awk -v b50="$(field "$b_hi" p50)" -v z50="$(field "$z_hi" p50)" -v l="$(field "$z_hi" lost)" -v pps="$PPS" 'BEGIN {
  printf "FIGURE delay=1us @%d/s: added latency p50 %.1f us (lost %d)\n", pps, z50 - b50, l }'
awk -v b50="$(field "$b_lo" p50)" -v z50="$(field "$p_lo" p50)" -v b99="$(field "$b_lo" p99)" -v z99="$(field "$p_lo" p99)" -v c="$(field "$p_lo" cpu_pct)" -v c0="$(field "$z_lo" cpu_pct)" 'BEGIN {
  printf "FIGURE delay=1us busy-poll=5ms @1000/s: added latency p50 %.1f us (owd p50 %.1f vs %.1f baseline), p99 owd %.1f vs %.1f; worker CPU %d%% (%d%% without busy-poll)\n",
    z50 - b50, z50, b50, z99, b99, c, c0 }'
awk -v b50="$(field "$b_hi" p50)" -v z50="$(field "$p_hi" p50)" -v l="$(field "$p_hi" lost)" -v pps="$PPS" -v c="$(field "$p_hi" cpu_pct)" -v c0="$(field "$z_hi" cpu_pct)" 'BEGIN {
  printf "FIGURE delay=1us busy-poll=5ms @%d/s: added latency p50 %.1f us (lost %d); worker CPU %d%% (%d%% without busy-poll)\n", pps, z50 - b50, l, c, c0 }'
awk -v bm="$(field "$b_hi" mean)" -v dm="$(field "$pd_hi" mean)" -v d50="$(field "$pd_hi" p50)" -v d99="$(field "$pd_hi" p99)" \
    -v r="$(field "$pd_hi" rate_pps)" -v l="$(field "$pd_hi" lost)" -v pps="$PPS" 'BEGIN {
  printf "FIGURE delay=10ms busy-poll=5ms @%d/s (achieved %d/s, lost %d): error mean %.1f us, p50 %.1f us, p99 %.1f us\n",
    pps, r, l, dm - bm - 10000, d50 - bm - 10000, d99 - bm - 10000 }'
awk -v b="$(field "$b_q" p50)" -v a="$(field "$q_a" p50)" -v c="$(field "$q_b" p50)" 'BEGIN {
  printf "FIGURE release granularity @50/s: p50 error delay=10ms %.1f us, delay=10500us %.1f us (baseline p50 %.1f)\n",
    a - b - 10000, c - b - 10500, b }'
log "FIGURE flood, 64-byte UDP: no fault recv_pps $(field "$b_fl" recv_pps) (sent at $(field "$b_fl" send_pps)/s, lost $(field "$b_fl" lost)); through the NFQUEUE delayer (delay=1us) recv_pps $(field "$z_fl" recv_pps) (sent at $(field "$z_fl" send_pps)/s, lost $(field "$z_fl" lost))"
log "FIGURE flood with busy-poll=5ms: recv_pps $(field "$p_fl" recv_pps) (sent at $(field "$p_fl" send_pps)/s, lost $(field "$p_fl" lost))"
awk -v ns=$((f_s1 - f_s0)) -v n=$((f_i1 - f_i0 - ${f_d1:-0} + ${f_d0:-0})) 'BEGIN {
  if (ns > 0 && n > 0)
    printf "FIGURE flood through the delayer: worker CPU %.0f ns per packet (%d packets, %.1f ms) = %.0f kpps on one CPU\n", ns / n, n, ns / 1e6, n / (ns / 1e9) / 1000
  else
    printf "FIGURE flood through the delayer: worker CPU not readable\n" }'
pass "nfq delayer bench done"
