#!/usr/bin/env bash
# process-kill of a whole cgroup: a 100-process tree (a shell and 99
# sleepers) in a test cgroup, `process-kill cgroup=/W signal=KILL` without
# count=/percent= — the whole group. When the agent acknowledges, every one
# of the 100 is gone and the group is empty: on v1 (this host) through
# pidfds, verify() polling each; on v2 (the VM lane runs this script,
# tests/vm/cases/test_vm_kill_cgroup.sh) through one write to cgroup.kill,
# verify() waiting for cgroup.events "populated 0". A group holding a
# protected process (policy protected-processes) is refused and nothing in
# it dies, for kill and for pause; count= picks among the others; bad
# selectors are refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cg_lib.sh"
t_setup
cg_detect
[ "$CG_MODE" != none ] || skip "no cgroup filesystem mounted"
PROT="flkp$$"
cat >"$T_TMP/agent.yaml" <<EOC
policy:
  protected-processes: [$PROT]
EOC
t_hosts 1
t_inventory 1
cg_agent 1 --config "$T_TMP/agent.yaml"
W=flkill$$
cg_make "$W"
D=$(cg_dirs "$W" | head -1)
log "cgroup $CG_MODE; the tree lives in: $(cg_dirs "$W" | tr '\n' ' ')"

# tree LOG: a shell that joins $W in every hierarchy and forks 99 sleepers.
tree() {
  t_bg - "$1" bash -c "for d in $(cg_dirs "$W" | tr '\n' ' '); do echo \$\$ >\$d/cgroup.procs || exit 1; done
    for i in \$(seq 1 99); do sleep 600 & done; echo ready; wait"
  t_wait_for 10 grep -q ready "$T_TMP/$1.log" || fail "tree $1 did not start: $(cat "$T_TMP/$1.log")"
}
count() { cg_procs "$D" | wc -l; }

# --- the whole tree, SIGKILL --------------------------------------------------
tree tree1
[ "$(count)" -eq 100 ] || fail "expected 100 processes in $D, found $(count)"
pids=$(cg_procs "$D")
cg_inject kill1 process-kill cgroup=/$W signal=KILL -- 2s
# The ack comes after verify(): nothing may be left by now, without waiting.
left=$(for p in $pids; do alive "$p" && echo "$p"; done)
[ -z "$left" ] || fail "$(echo "$left" | wc -w) of 100 still alive after the ack: $(echo $left | head -c 200)"
for d in $(cg_dirs "$W"); do
  [ -z "$(cg_procs "$d")" ] || fail "$d not empty after the ack: $(cg_procs "$d" | head -5 | tr '\n' ' ')"
done
backend=$(grep -o '(backend [a-z.]*)' "$T_TMP/kill1.log" | tr -d '()' | cut -d' ' -f2)
want=pidfd
[ "$CG_MODE" = v2 ] && want=cgroup.kill
[ "$backend" = "$want" ] || fail "backend '$backend', want $want: $(cat "$T_TMP/kill1.log")"
wait "$INJECT_PID" || fail "inject exited non-zero: $(cat "$T_TMP/kill1.log")"
pass "process-kill cgroup=/$W: all 100 gone and the group empty at the ack (backend $backend)"

# --- a protected process in the group: refused, nothing killed -------------------
t_victim "$PROT"; prot=$T_LAST_PID
cg_enter "$W" "$prot" || fail "cannot move $PROT into $W"
tree tree2
[ "$(count)" -eq 101 ] || fail "expected 101 processes, found $(count)"
for args in "process-kill cgroup=/$W signal=KILL" "process-kill cgroup=/$W signal=TERM" \
            "process-pause cgroup=/$W"; do
  out=$(t_fl inject h1 $args --duration 1s 2>&1); rc=$?
  [ $rc -eq 2 ] || fail "'$args' with $PROT inside: exit $rc, want 2: $out"
  echo "$out" | grep -q "protected" || fail "'$args': refusal does not say why: $out"
  log "refused '$args': $(echo "$out" | tail -1)"
done
[ "$(count)" -eq 101 ] && alive "$prot" || fail "a refused fault killed something ($(count) left)"
pass "a group holding protected $PROT is refused (kill KILL/TERM, pause); all 101 alive"

# count= picks among the others and never the protected one.
out=$(t_fl inject h1 process-kill cgroup=/$W count=5 signal=KILL --duration 1s 2>&1) || fail "count=5: $out"
t_wait_for 3 test "$(count)" -eq 96 || fail "count=5 left $(count) of 101"
alive "$prot" || fail "the protected process died"
pass "count=5 killed 5 of the group, $PROT untouched"

# --- bad selectors -------------------------------------------------------------
for bad in "cgroup=/" "cgroup=relative" "cgroup=/a/../b" "cgroup=/nonexistent$$" \
           "cgroup=/$W count=0" "cgroup=/$W count=1 percent=5" "cgroup=/$W pid=5" \
           "cgroup=/$W signal=STOP" "cgroup=/$W bogus=1"; do
  out=$(t_fl inject h1 process-kill $bad --duration 1s 2>&1); rc=$?
  [ $rc -eq 2 ] || fail "'$bad' should exit 2, got $rc: $out"
  log "refused '$bad': $(echo "$out" | tail -1)"
done
[ "$(count)" -eq 96 ] && alive "$prot" || fail "a refused fault killed something"
pass "bad selectors refused, nothing touched"
