#!/usr/bin/env bash
# vm-modules: sch_netem,nft_queue
#
# The VM lane itself works: Debian's stock kernel, cgroup v2 controllers,
# netem and nft queue (which this build machine's kernel lacks), namespaces
# and veth, a real agent answering the coordinator, and a process-pause
# fault round trip.
. "$(dirname "$0")/../lib-vm.sh"
t_setup

# Kernel: the one fetch-kernel.sh took from Debian.
[ "$(uname -r)" = "$FL_VM_KVER" ] || fail "kernel $(uname -r), expected $FL_VM_KVER"
grep -q 'Debian' /proc/version || fail "not a Debian kernel: $(cat /proc/version)"
[ "$(vm_config CONFIG_NET_SCH_NETEM)" = m ] || fail "vm_config: CONFIG_NET_SCH_NETEM=$(vm_config CONFIG_NET_SCH_NETEM)"
pass "kernel $(uname -r) (Debian stock)"

# cgroup v2 with the controllers faultline's resource faults need.
ctl=$(cat /sys/fs/cgroup/cgroup.controllers)
sub=$(cat /sys/fs/cgroup/cgroup.subtree_control)
for c in cpu io memory pids; do
  echo " $ctl " | grep -q " $c " || fail "cgroup v2 controller $c missing: $ctl"
  echo " $sub " | grep -q " $c " || fail "controller $c not enabled for children: $sub"
done
vm_cgroup smoke
echo $$ >"$VM_CG/cgroup.procs" && echo $$ >/sys/fs/cgroup/cgroup.procs || fail "cannot move into $VM_CG"
echo 50000 100000 >"$VM_CG/cpu.max" || fail "cpu.max not writable"
pass "cgroup v2: $ctl"

# Modules named in the header were loaded by /init.
for m in sch_netem nft_queue; do
  [ -d "/sys/module/$m" ] || fail "module $m not loaded (FL_VM_MODULES=$FL_VM_MODULES)"
done
pass "modules loaded: $FL_VM_MODULES"

# Namespaces and veth (lib.sh): ops <-> h1 over a veth pair.
t_hosts 1
t_inventory 1
ip netns exec "$OPS" ping -c 1 -W 2 10.231.1.2 >/dev/null || fail "no ping over veth"
pass "network namespaces + veth"

# netem on the host namespace's lo: ~10 ms each way, so ~20 ms round trip.
# (Tests may drive and inspect state with tc; the product never execs tc.)
H1="${T_ID}-h1"
ip netns exec "$H1" tc qdisc add dev lo root netem delay 10ms || fail "tc netem add"
ip netns exec "$H1" tc qdisc show dev lo | grep -q 'netem.*delay 10ms' ||
  fail "netem not shown: $(ip netns exec "$H1" tc qdisc show dev lo)"
rtt=$(ip netns exec "$H1" ping -c 3 -i 0.2 -W 2 127.0.0.1 | awk -F/ '/^rtt/ {print int($5)}')
log "lo rtt with netem 10ms: ${rtt:-none} ms"
[ -n "$rtt" ] && [ "$rtt" -ge 15 ] && [ "$rtt" -le 500 ] || fail "rtt ${rtt:-none} ms with 10ms netem"
ip netns exec "$H1" tc qdisc del dev lo root || fail "tc netem del"
ip netns exec "$H1" tc qdisc show dev lo | grep -q netem && fail "netem still there"
pass "sch_netem: delay applied (${rtt} ms rtt) and removed"

# nft with a queue rule (bypass: no listener, packets pass).
ip netns exec "$H1" nft -f - <<'EOF' || fail "nft queue ruleset rejected"
table inet flsmoke {
  chain out {
    type filter hook output priority 0; policy accept;
    meta l4proto udp udp dport 9 queue num 3 bypass
    meta l4proto tcp tcp dport 9 numgen random mod 100 < 1 drop
  }
}
EOF
ip netns exec "$H1" nft list table inet flsmoke | grep -Eq 'queue (flags bypass )?to 3' ||
  fail "queue rule not listed: $(ip netns exec "$H1" nft list table inet flsmoke)"
ip netns exec "$H1" nft delete table inet flsmoke || fail "nft delete table"
pass "nft table with a queue rule"

# A real agent in h1 answers the coordinator in ops.
t_agent 1
out=$(t_fl agents) || fail "faultline agents: $out"
echo "$out"
echo "$out" | grep -q h1 || fail "h1 not in: $out"
pass "agent answers faultline agents"
ip netns exec "$H1" grep -q ' /sys/fs/cgroup cgroup2 ' /proc/self/mounts ||
  fail "cgroup2 not visible under ip netns exec"
pass "cgroup2 visible to processes in test namespaces"

# process-pause round trip: paused, then resumed by the agent at 2 s.
t_victim "flv$$"; victim=$T_LAST_PID
t_bg "$OPS" inject "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 process-pause pid=$victim --duration 2s
start=$(now_ms)
t_wait_for 10 bash -c "[ \"\$(awk '{print \$3}' /proc/$victim/stat)\" = T ]" ||
  fail "victim not paused ($(proc_state $victim))"
paused_at=$(( $(now_ms) - start ))
t_wait_for 15 bash -c "[ \"\$(awk '{print \$3}' /proc/$victim/stat)\" != T ]" || fail "victim not resumed"
took=$(( $(now_ms) - start ))
log "paused after ${paused_at} ms, resumed after ${took} ms (duration 2000 ms; TCG timing is loose)"
[ "$took" -ge 1500 ] || fail "resumed after ${took} ms, before the 2 s duration"
alive "$victim" || fail "victim died"
t_wait_for 10 bash -c "grep -q why=duration-elapsed '$T_TMP/agent1.log'" || fail "no duration-elapsed revert in the agent log"
pass "process-pause injected and reverted in the VM"
