#!/usr/bin/env bash
# Safety core 1 and 5: the agent's own timer reverts at the duration even
# while the coordinator lives; revert is idempotent and an unknown id is a
# clean error; abort reverts everything everywhere.
. "$(dirname "$0")/lib.sh"
t_setup
t_hosts 2
t_inventory 2
t_agent 1
t_agent 2

t_victim "flt$$"; victim=$T_LAST_PID
t_bg "$OPS" inject "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 process-pause pid=$victim --duration 2s
start=$(now_ms)
t_wait_for 3 bash -c "[ \"\$(awk '{print \$3}' /proc/$victim/stat)\" = T ]" || fail "not paused"
t_wait_for 5 bash -c "[ \"\$(awk '{print \$3}' /proc/$victim/stat)\" != T ]" || fail "not resumed at the deadline"
took=$(( $(now_ms) - start ))
log "resumed after ${took} ms (duration 2000 ms)"
[ $took -ge 1800 ] && [ $took -le 3000 ] || fail "revert at ${took} ms, expected ~2000"
grep -q "why=duration-elapsed" "$T_TMP/agent1.log" || fail "not reverted by the agent's timer"
pass "agent reverted at its own deadline"

# Unknown id: clean error, agent keeps serving.
out=$(ip netns exec "$OPS" "$WIRE_SEND" tcp://10.231.1.2:7070 map v=u:1 t=s:revert seq=u:7 id=s:f-doesnotexist)
echo "$out" | grep -q "status=not-found" || fail "unknown id: $out"
pass "revert of an unknown id: $out"

# Abort: faults on two agents, one broadcast reverts both.
t_victim "flu$$"; v2=$T_LAST_PID
t_bg "$OPS" inj-a "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject all process-pause pid=$v2 --duration 60s
t_wait_for 5 bash -c "[ \"\$(awk '{print \$3}' /proc/$v2/stat)\" = T ]" || fail "not paused for abort"
# Both agents paused the same pid (hosts share the pid namespace); both must list a fault.
status_count() { t_fl status | grep -q "^$1 active"; }
t_wait_for 5 status_count 2 || fail "expected 2 active faults: $(t_fl status)"
out=$(t_fl abort) || fail "abort failed: $out"
echo "$out"
echo "$out" | grep -q "2 fault(s) reverted on 2 agent" || fail "abort summary: $out"
[ "$(proc_state $v2)" != T ] || fail "still paused after abort"
out=$(t_fl status); echo "$out" | grep -q "^0 active" || fail "left after abort: $out"
pass "abort reverted every fault on every agent"
# Second abort: idempotent, nothing to do.
out=$(t_fl abort) || fail "second abort: $out"
echo "$out" | grep -q "0 fault(s) reverted" || fail "second abort: $out"
pass "abort is idempotent"
