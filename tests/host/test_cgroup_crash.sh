#!/usr/bin/env bash
# Crash safety of the cgroup faults: with cpu-stress, memory-stress,
# io-stress, cpu-throttle, memory-squeeze, io-throttle (on the loop disk,
# over a limit of our own) and a freezer pause active,
# SIGKILL the agent. Its workers die with it (PR_SET_PDEATHSIG); the
# limits stay until the agent restarts, and the restart restores every
# one of them exactly and removes every cgroup it created, before it
# answers. Then the same again with `--recover` alone.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cg_lib.sh"
t_setup
cg_detect
[ "$CG_MODE" != none ] || skip "no cgroup filesystem mounted"
[ -n "$CG_CPU" ] && [ -n "$CG_MEM" ] && [ -n "$CG_FRZ" ] || skip "cpu, memory or freezer controller missing"
command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 (e2fsprogs) not installed"
truncate -s 128M "$T_TMP/disk.img"
mkfs.ext4 -q -F -m 0 "$T_TMP/disk.img" || fail "mkfs"
mkdir "$T_TMP/mnt"
mount -o loop "$T_TMP/disk.img" "$T_TMP/mnt" || skip "cannot loop-mount here"
T_MOUNTS+=("$T_TMP/mnt")
t_hosts 1
t_inventory 1
cg_agent 1
W=flcrash$$
cg_make "$W"
if [ "$CG_MODE" = v1 ]; then echo 250000 >"$CG_CPU/$W/cpu.cfs_quota_us"; else echo "250000 100000" >"$CG_CPU/$W/cpu.max"; fi
sf=memory.soft_limit_in_bytes; [ "$CG_MODE" = v2 ] && sf=memory.high
t_victim "flc$$"; victim=$T_LAST_PID
cg_enter "$W" "$victim" || fail "cannot move the victim into $W"
q0=$(cg_quota "$CG_CPU/$W"); s0=$(cat "$CG_MEM/$W/$sf")
# io-throttle over a write limit of our own: the restart must bring back
# exactly 4 MiB/s, not "no limit".
devno=$(mountpoint -d "$T_TMP/mnt"); io0=""
if [ -n "$CG_IO" ]; then
  if [ "$CG_MODE" = v1 ]; then echo "$devno 4194304" >"$CG_IO/$W/blkio.throttle.write_bps_device"
  else echo "$devno wbps=4194304" >"$CG_IO/$W/io.max"; fi
  io0=$(cg_io_limits "$CG_IO/$W")
fi
NFAULTS=6; [ -n "$CG_IO" ] && NFAULTS=7

owned() { ls -d "$CG_CPU"/faultline/f-* "$CG_ACCT"/faultline/f-* "$CG_MEM"/faultline/f-* "$CG_IO"/faultline/f-* 2>/dev/null | sort -u; }
frozen() {
  if [ "$CG_MODE" = v1 ]; then [ "$(cat "$CG_FRZ/$W/freezer.state")" = FROZEN ]
  else grep -q "^frozen 1" "$CG_FRZ/$W/cgroup.events"; fi
}

apply_all() {
  cg_inject "cpu$1" cpu-stress cores=1 load=30 -- 120s
  cg_inject "mem$1" memory-stress bytes=64M -- 120s
  cg_inject "io$1" io-stress path="$T_TMP/mnt" bytes=4M workers=2 -- 120s
  cg_inject "thr$1" cpu-throttle cgroup=/$W percent=10 -- 120s
  cg_inject "sq$1" memory-squeeze cgroup=/$W bytes=32M -- 120s
  if [ -n "$CG_IO" ]; then
    cg_inject "iot$1" io-throttle cgroup=/$W path="$T_TMP/mnt" wbps=1M riops=500 -- 120s
    [ "$(cg_io_limits "$CG_IO/$W")" != "$io0" ] || fail "io-throttle not in place"
  fi
  cg_inject "pause$1" process-pause cgroup=/$W -- 120s
  [ "$(cg_quota "$CG_CPU/$W")" != "$q0" ] || fail "throttle not in place"
  [ "$(cat "$CG_MEM/$W/$sf")" = $((32 << 20)) ] || fail "squeeze not in place"
  frozen || fail "pause not in place"
  WORKERS=$(for d in $(owned); do cg_procs "$d"; done | sort -u)
  [ "$(echo "$WORKERS" | wc -w)" -ge 4 ] || fail "expected >= 4 workers, got: $WORKERS"
  ls "$T_TMP/mnt"/.faultline-io-* >/dev/null || fail "no io-stress files"
}

check_clean() {
  [ "$(cg_quota "$CG_CPU/$W")" = "$q0" ] || fail "$1: quota '$(cg_quota "$CG_CPU/$W")', want '$q0'"
  [ "$(cat "$CG_MEM/$W/$sf")" = "$s0" ] || fail "$1: $sf $(cat "$CG_MEM/$W/$sf"), want $s0"
  frozen && fail "$1: $W still frozen"
  [ -z "$CG_IO" ] || [ "$(cg_io_limits "$CG_IO/$W")" = "$io0" ] ||
    fail "$1: io limits '$(cg_io_limits "$CG_IO/$W")', want '$io0'"
  [ -z "$(owned)" ] || fail "$1: cgroups left: $(owned)"
  ls -d "$CG_CPU/faultline" "$CG_MEM/faultline" 2>/dev/null && fail "$1: faultline parent left"
  ls "$T_TMP/mnt"/.faultline-io-* 2>/dev/null && fail "$1: io files left"
  ls "$T_TMP/state1/faults/"*.json 2>/dev/null && fail "$1: journal entries left"
  return 0
}

# --- SIGKILL, restart -------------------------------------------------
apply_all 1
kill -KILL "$AGENT_PID_1"; wait "$AGENT_PID_1" 2>/dev/null
# SIGKILL is immediate; an io worker may finish one direct write first.
none_alive() { local p; for p in $WORKERS; do alive "$p" && return 1; done; return 0; }
t_wait_for 3 none_alive || fail "workers outlived the agent: $(for p in $WORKERS; do alive $p && echo "$p($(proc_state $p))"; done)"

frozen || fail "the freezer thawed without recovery?"
pass "SIGKILL: all $(echo $WORKERS | wc -w) workers died with the agent; limits still in place (as expected)"

mv "$T_TMP/agent1.log" "$T_TMP/agent1-first.log"
cg_agent 1
check_clean "restart"
[ "$(grep -c "why=recovered-after-restart" "$T_TMP/agent1.log")" -eq "$NFAULTS" ] || fail "expected $NFAULTS recovered faults: $(grep recover "$T_TMP/agent1.log")"
pass "restart: quota '$q0', $sf $s0, io limits '$(echo "$io0" | tr '\n' ';')' restored exactly, thawed, cgroups and files removed"

# --- SIGKILL, --recover alone ------------------------------------------
apply_all 2
kill -KILL "$AGENT_PID_1"; wait "$AGENT_PID_1" 2>/dev/null
"$AGENT" --recover --state-dir "$T_TMP/state1" >"$T_TMP/recover.log" 2>&1 || fail "--recover exit $?: $(cat "$T_TMP/recover.log")"
check_clean "--recover"
pass "--recover alone restored everything and exited 0"
