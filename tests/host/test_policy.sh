#!/usr/bin/env bash
# Agent-side policy, one refusal per rule: allowed fault kinds, max
# duration, max concurrent faults, protected processes, protected ports and
# CIDRs, allowed paths for disk faults (also through "..", a symlink, and
# for io-stress). Each refusal is FL_ST_REFUSED with a reason naming the
# rule (faultline exits 2), is audited, and applies nothing.
. "$(dirname "$0")/lib.sh"
t_setup
t_hosts 1
t_inventory 1
command -v nsenter >/dev/null || skip "nsenter (util-linux) not installed"

mkdir -p "$T_TMP/allowed" "$T_TMP/other"
mount -t tmpfs -o size=16M tmpfs "$T_TMP/allowed" || skip "cannot mount tmpfs here"
T_MOUNTS+=("$T_TMP/allowed")
ln -s "$T_TMP/other" "$T_TMP/allowed/escape"
PROT="flprot$$"
cat >"$T_TMP/agent.yaml" <<EOF
policy:
  allowed-faults: [process-pause, disk-fill, io-stress, net-loss, net-port-block, net-partition]
  max-duration: 10s
  max-concurrent-faults: 1
  protected-processes: [$PROT]
  protected-ports: [22, 9999]
  protected-cidrs: [10.231.1.1/32]
  allowed-paths: [$T_TMP/allowed]
EOF
# nsenter rather than `ip netns exec`, which would hide /sys/fs/cgroup (io-stress).
mkdir -p "$T_TMP/state1"; chmod 700 "$T_TMP/state1"
# shellcheck disable=SC2046
t_bg - agent1 nsenter --net="/var/run/netns/${T_ID}-h1" "$AGENT" --foreground $(t_agent_args 1) \
  --state-dir "$T_TMP/state1" --config "$T_TMP/agent.yaml" --log-level debug
AGENT_PID_1=$T_LAST_PID
t_wait_for 10 t_listening "${T_ID}-h1" 7070 || fail "agent did not come up"

t_victim "flpv$$"; victim=$T_LAST_PID
t_victim "$PROT"; protected=$T_LAST_PID

none_active() { t_fl status 2>&1 | grep -q "^0 active"; }
# refused REASON-REGEX INJECT-ARGS...: exit 2, the reason, nothing applied.
refused() {
  local re=$1; shift
  local out rc
  out=$(t_fl inject h1 "$@" 2>&1); rc=$?
  [ $rc -eq 2 ] || fail "[$*] expected exit 2, got $rc: $out"
  echo "$out" | grep -q "refused: policy: .*$re" || fail "[$*] expected a policy refusal /$re/: $out"
  none_active || fail "[$*] applied something: $(t_fl status 2>&1)"
  echo "ok - [$*] -> $(echo "$out" | grep -o 'policy: .*' | head -1)"
}

refused "fault kind process-kill is not allowed here" process-kill pid=$victim --duration 1s
out=$(t_fl agents); echo "$out" | grep -q "process-kill(unavailable: not allowed by this agent's policy)" \
  || fail "HELLO should list process-kill as not allowed: $out"
refused "duration 20s exceeds max-duration 10s" process-pause pid=$victim --duration 20s
refused "process name \"$PROT\" is protected" process-pause name=$PROT --duration 2s
refused "port=9999 is protected" net-port-block port=9999 --duration 2s
refused "port=7070 is protected" net-port-block port=7070 --duration 2s
refused "dst=10.231.1.1 lies inside protected-cidrs" net-loss percent=50 dst=10.231.1.1 --duration 2s
refused "peers=10.231.1.1/32 lies inside protected-cidrs" net-partition peers=10.231.1.1/32 --duration 2s
refused "outside allowed-paths" disk-fill path="$T_TMP/other" bytes=1M --duration 2s
refused "outside allowed-paths" disk-fill path="$T_TMP/allowed/../other" bytes=1M --duration 2s
refused "outside allowed-paths" disk-fill path="$T_TMP/allowed/escape" bytes=1M --duration 2s
out=$(t_fl agents)
if echo "$out" | grep -q "io-stress(unavailable"; then
  log "io-stress unavailable here; its allowed-paths check is covered by disk-fill's"
else
  refused "outside allowed-paths" io-stress path="$T_TMP/other" bytes=1M --duration 2s
fi
[ "$(proc_state $protected)" != T ] || fail "protected process was paused"
grep -q 'AUDIT who="insecure:10.231.1.1:[0-9]*" action=apply kind=process-kill .*result=refused' \
  "$T_TMP/agent1.log" || fail "policy refusal not audited"
pass "every refusal audited with its reason"

# Inside the allowed path it works; then max-concurrent-faults=1 holds.
t_bg "$OPS" fill "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 disk-fill \
  path="$T_TMP/allowed" bytes=2M --duration 8s
t_wait_for 5 bash -c "ls '$T_TMP/allowed'/.faultline-ballast-* >/dev/null 2>&1" \
  || fail "disk-fill inside allowed-paths did not apply: $(cat "$T_TMP/fill.log")"
pass "disk-fill inside allowed-paths applied"
out=$(t_fl inject h1 process-pause pid=$victim --duration 2s 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "max-concurrent-faults is 1" || fail "second fault: $rc $out"
[ "$(proc_state $victim)" != T ] || fail "victim paused beyond max-concurrent-faults"
pass "max-concurrent-faults=1: second fault refused"
t_fl abort >/dev/null || fail "abort failed"
t_wait_for 5 none_active || fail "abort left faults"
ls "$T_TMP/allowed"/.faultline-ballast-* 2>/dev/null && fail "ballast left after abort"
pass "policy: every rule refuses, nothing applied, allowed work still works"

# Least privilege: the sandboxed agent (no CAP_SYS_PTRACE, no CAP_SETUID)
# still pauses and resumes another user's process: pidfds need CAP_KILL only.
if command -v setpriv >/dev/null; then
  t_bg - nobody-victim setpriv --reuid=65534 --regid=65534 --clear-groups sleep 600
  other=$T_LAST_PID
  t_wait_for 3 bash -c "[ \"\$(stat -c %u /proc/$other)\" = 65534 ]" || fail "victim did not become uid 65534"
  t_bg "$OPS" pause-other "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 process-pause \
    pid=$other --duration 2s
  t_wait_for 5 bash -c "[ \"\$(awk '{print \$3}' /proc/$other/stat)\" = T ]" \
    || fail "uid 65534 process not paused: $(cat "$T_TMP/pause-other.log")"
  t_wait_for 5 bash -c "[ \"\$(awk '{print \$3}' /proc/$other/stat)\" != T ]" || fail "not resumed"
  grep -q "sandbox: capabilities reduced" "$T_TMP/agent1.log" || fail "agent ran without its sandbox"
  pass "sandboxed agent paused and resumed a uid-65534 process (no CAP_SYS_PTRACE needed)"
else
  log "setpriv missing: other-user pause not checked"
fi
