#!/usr/bin/env bash
# Output modes of `faultline run`: on a terminal a live status line
# (elapsed, phase, step, time left, active faults) redrawn in place; piped,
# plain timestamped lines with no terminal control codes; --quiet, only the
# verdict.
. "$(dirname "$0")/lib.sh"
t_setup
command -v script >/dev/null || skip "script (util-linux) is needed to give the run a terminal"
t_hosts 1
t_inventory 1
t_agent 1
t_victim "flp$$"
cat >"$T_TMP/x.yaml" <<YAML
version: 1
title: progress line
inventory: inventory.yaml
targets:
  h: {names: [h1]}
steady-state:
  probes:
    - name: true
      command: {argv: [/bin/true]}
method:
  - fault: {target: h, kind: process-pause, duration: 3s, params: {name: flp$$}}
  - wait: 2s
YAML

# A pseudo-terminal: script(1) runs the command on a pty and copies what it
# draws to our stdout.
ip netns exec "$OPS" script -qefc "$FAULTLINE -i $T_TMP/inventory.yaml run $T_TMP/x.yaml" /dev/null \
  >"$T_TMP/tty.out" 2>&1 || fail "run on a tty failed: $(cat $T_TMP/tty.out)"
grep -q $'\r\033\\[K' "$T_TMP/tty.out" || fail "no in-place redraw on a terminal"
grep -a -q "faults active: 1" "$T_TMP/tty.out" || fail "status line never showed the active fault"
grep -a -q "left" "$T_TMP/tty.out" || fail "status line never showed the time left"
pass "terminal: live status line with the active fault and time left"

t_fl run "$T_TMP/x.yaml" >"$T_TMP/pipe.out" 2>&1 || fail "piped run failed"
! grep -q $'\033' "$T_TMP/pipe.out" || fail "terminal control codes in piped output"
grep -Eq '^\[[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}\] ' "$T_TMP/pipe.out" || fail "piped lines are not timestamped"
pass "piped: plain timestamped lines, $(wc -l <"$T_TMP/pipe.out") of them"

t_fl -q run "$T_TMP/x.yaml" >"$T_TMP/quiet.out" 2>&1 || fail "quiet run failed"
[ "$(wc -l <"$T_TMP/quiet.out")" -le 1 ] || fail "--quiet printed more than the verdict: $(cat $T_TMP/quiet.out)"
pass "--quiet: $(cat "$T_TMP/quiet.out")"
