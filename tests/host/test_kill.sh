#!/usr/bin/env bash
# process-kill through `faultline inject`: the named process dies, a process
# whose name only starts the same is untouched; protected pids are refused.
T_TLS=1 # agents on tls+tcp:// with a per-test PKI (lib.sh)
. "$(dirname "$0")/lib.sh"
t_setup
t_hosts 1
t_inventory 1
t_agent 1

name="flk$$"
t_victim "$name";  victim=$T_LAST_PID
t_victim "${name}x"; bystander=$T_LAST_PID
alive $victim && alive $bystander || fail "victims did not start"

out=$(t_fl inject h1 process-kill name="$name" signal=KILL --duration 1s 2>&1) || fail "inject failed: $out"
echo "$out"
echo "$out" | grep -q "applied f-" || fail "no fault id printed"
t_wait_for 3 bash -c "! [ -e /proc/$victim ] || [ \"\$(awk '{print \$3}' /proc/$victim/stat)\" = Z ]" || fail "victim $victim still alive"
alive $bystander || fail "bystander ${name}x was killed"
pass "kill by exact name hit only $name"

# cmdline regex selector with count
t_victim "flc$$"; v2=$T_LAST_PID
out=$(t_fl inject h1 process-kill "cmdline=/flc$$ 600\$" count=1 --duration 1s 2>&1) || fail "cmdline kill: $out"
t_wait_for 3 bash -c "! [ -e /proc/$v2 ] || [ \"\$(awk '{print \$3}' /proc/$v2/stat)\" = Z ]" || fail "cmdline victim alive"
pass "kill by cmdline regex"

# Refusals: PID 1, the agent itself; nothing matched; bad signal.
out=$(t_fl inject h1 process-kill pid=1 --duration 1s 2>&1); rc=$?
[ $rc -eq 2 ] || fail "pid=1 should exit 2, got $rc: $out"
echo "$out" | grep -qi "protected" || fail "pid=1 refusal does not say why: $out"
pass "pid 1 refused: $out"
out=$(t_fl inject h1 process-kill pid="$AGENT_PID_1" --duration 1s 2>&1); rc=$?
[ $rc -eq 2 ] && alive "$AGENT_PID_1" || fail "agent self-kill not refused ($rc): $out"
pass "agent itself refused"
out=$(t_fl inject h1 process-kill name=nom$$ --duration 1s 2>&1); rc=$?
[ $rc -eq 2 ] || fail "no match should exit 2, got $rc: $out"
pass "no match: $out"
out=$(t_fl inject h1 process-kill name=x signal=SIGNOPE --duration 1s 2>&1); rc=$?
[ $rc -eq 2 ] || fail "bad signal should exit 2, got $rc"
pass "bad signal refused before reaching the agent: $out"
alive $bystander || fail "bystander died"
