#!/usr/bin/env bash
# Safety core 3: SIGKILL the agent with a disk-fill and a paused process
# active; restart it: both are reverted before it accepts commands. Also
# --recover alone, and safety core 4: SIGTERM reverts everything, exit 0.
. "$(dirname "$0")/lib.sh"
t_setup
truncate -s 64M "$T_TMP/disk.img"
mkfs.ext4 -q -F -m 0 "$T_TMP/disk.img" || fail "mkfs"
mkdir "$T_TMP/mnt"
mount -o loop "$T_TMP/disk.img" "$T_TMP/mnt" || skip "cannot loop-mount here"
T_MOUNTS+=("$T_TMP/mnt")
t_hosts 1
t_inventory 1
t_agent 1

t_victim "flr$$"; victim=$T_LAST_PID
apply_both() {
  t_bg "$OPS" "inject-pause-$1" "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 process-pause name="flr$$" --duration 120s
  t_bg "$OPS" "inject-fill-$1" "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 disk-fill path="$T_TMP/mnt" bytes=16M --duration 120s
  t_wait_for 5 bash -c "[ \"\$(awk '{print \$3}' /proc/$victim/stat)\" = T ] && ls $T_TMP/mnt/.faultline-ballast-*" \
    || fail "faults not applied: $(cat $T_TMP/inject-*-$1.log)"
}

# --- crash, restart ---
apply_both 1
ls "$T_TMP/state1/faults/"*.json >/dev/null || fail "no journal entries while faults are active"
kill -KILL "$AGENT_PID_1"; wait "$AGENT_PID_1" 2>/dev/null
# The faults are really still there: this is what a crash leaves behind.
[ "$(proc_state $victim)" = T ] || fail "victim resumed without recovery?"
ls "$T_TMP/mnt"/.faultline-ballast-* >/dev/null || fail "ballast vanished without recovery?"
pass "after SIGKILL of the agent both faults are still in place (as expected)"

mv "$T_TMP/agent1.log" "$T_TMP/agent1-first.log"
t_bg "${T_ID}-h1" agent1 "$AGENT" --foreground --listen "tcp://10.231.1.2:7070" --state-dir "$T_TMP/state1"
AGENT_PID_1=$T_LAST_PID
# The first moment the agent answers, recovery must already be complete.
t_wait_for 10 t_fl agents || fail "restarted agent does not answer"
[ "$(proc_state $victim)" != T ] || fail "paused process not resumed by recovery"
ls "$T_TMP/mnt"/.faultline-ballast-* 2>/dev/null && fail "ballast not removed by recovery"
ls "$T_TMP/state1/faults/"*.json 2>/dev/null && fail "journal entries left"
grep -q "recovered-after-restart" "$T_TMP/agent1.log" || fail "recovery not logged"
pass "restart reverted both faults before accepting commands"
# The coordinators still holding leases find their faults gone.
for p in "${T_PIDS[@]}"; do :; done

# --- --recover alone ---
apply_both 2
kill -KILL "$AGENT_PID_1"; wait "$AGENT_PID_1" 2>/dev/null
"$AGENT" --recover --state-dir "$T_TMP/state1" >"$T_TMP/recover.log" 2>&1 || fail "--recover exit $?: $(cat $T_TMP/recover.log)"
[ "$(proc_state $victim)" != T ] || fail "--recover did not resume"
ls "$T_TMP/mnt"/.faultline-ballast-* 2>/dev/null && fail "--recover left ballast"
pass "--recover reverted leftovers and exited 0"

# --- SIGTERM reverts everything, exit 0 ---
t_bg "${T_ID}-h1" agent1b "$AGENT" --foreground --listen "tcp://10.231.1.2:7070" --state-dir "$T_TMP/state1"
AGENT_PID_1=$T_LAST_PID
t_wait_for 10 t_fl agents || fail "agent did not come back"
apply_both 3
kill -TERM "$AGENT_PID_1"
wait "$AGENT_PID_1"; rc=$?
[ $rc -eq 0 ] || fail "SIGTERM exit code $rc"
[ "$(proc_state $victim)" != T ] || fail "SIGTERM left the process paused"
ls "$T_TMP/mnt"/.faultline-ballast-* 2>/dev/null && fail "SIGTERM left ballast"
ls "$T_TMP/state1/faults/"*.json 2>/dev/null && fail "SIGTERM left journal entries"
pass "SIGTERM reverted both faults and exited 0"
