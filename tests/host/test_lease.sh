#!/usr/bin/env bash
# Safety core 2: SIGKILL the coordinator during a 60 s fault; the agent
# reverts the lease's fault on its own within the lease timeout (5 s).
T_TLS=1 # agents on tls+tcp:// with a per-test PKI (lib.sh)
. "$(dirname "$0")/lib.sh"
t_setup
t_hosts 1
t_inventory 1
t_agent 1

t_victim "fll$$"; victim=$T_LAST_PID
t_bg "$OPS" inject "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 process-pause pid=$victim --duration 60s
coord=$T_LAST_PID
t_wait_for 5 bash -c "[ \"\$(awk '{print \$3}' /proc/$victim/stat)\" = T ]" || fail "victim not paused: $(cat $T_TMP/inject.log)"
pass "paused pid $victim under a 60 s fault"

# Hold it a few renewal periods so we know renewals work (no lapse at 5 s).
sleep 6
[ "$(proc_state $victim)" = T ] || fail "fault lapsed although the coordinator was alive and renewing"
pass "lease renewed while the coordinator lives"

kill -KILL $coord
killed_at=$(now_ms)
t_wait_for 10 bash -c "[ \"\$(awk '{print \$3}' /proc/$victim/stat)\" != T ]" || fail "fault never reverted after coordinator death"
elapsed=$(( $(now_ms) - killed_at ))
log "reverted ${elapsed} ms after SIGKILL of the coordinator"
# Bound: lease timeout 5000 ms + agent tick (200 ms) + polling slack.
[ $elapsed -le 5500 ] || fail "revert took ${elapsed} ms, bound is 5500 ms"
grep -q "lease lapsed" "$T_TMP/agent1.log" || fail "agent did not log the lapse"
pass "agent reverted within the lease bound (${elapsed} ms <= 5500 ms)"
out=$(t_fl status) || fail "status: $out"
echo "$out" | grep -q "^0 active fault" || fail "faults left: $out"
pass "nothing left active"
