#!/usr/bin/env bash
# cpu_precision.sh: CPU load precision of cpu-stress against stress-ng
# --cpu-load, at 10/25/50/75/90 % of one core, idle and with a competing
# load, measured from cgroup accounting (cpuacct.usage on v1, cpu.stat on
# v2) over 1 s windows.
#
#   sudo FL_BUILD_DIR=build/h-b5 bench/cpu_precision.sh
#
# One cell = one tool at one level for WINDOWS (8) consecutive 1 s windows
# counted from the moment the tool is launched:
#   faultline  APPLY cpu-stress cores=1 load=P (bench/res_apply: no CLI
#              start-up in the way), its workers in the agent's own group
#              <cpuacct>/faultline/<id>, which starts at 0 when created
#   stress-ng  `stress-ng --cpu 1 --cpu-load P`, exec'd from a shell that
#              first entered a fresh cpuacct group of ours, so its parent
#              and worker are accounted from their first instruction
# settle = end of the first window within 2 points (1 s, 2 s, ...);
# mean / max |error| over windows 3..WINDOWS (after the 2 s settle
# allowance), in points of one core. Cells are repeated REPS (3) times,
# interleaved (rep 1 of every level, then rep 2, ...), and the table shows
# the median of each figure over the repetitions; every run is printed as
# a "# run" line too.
# Competing load (COMPETE=loop, the default): one bounded busy loop per
# CPU, outside every measured group; COMPETE=stress-ng uses
# `stress-ng --cpu $(nproc)` instead.
#
# Needs root, a cgroup cpu(acct) controller and stress-ng. Knobs: LEVELS,
# REPS, WINDOWS, COMPETE, PHASES ("no yes"). Everything started here is
# stopped, and every group made here removed, on exit/failure/signal.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${FL_BUILD_DIR:-$src/build/dev}
windows=${WINDOWS:-8}
reps=${REPS:-3}
levels=${LEVELS:-"10 25 50 75 90"}
phases=${PHASES:-"no yes"}
compete=${COMPETE:-loop}
[ "$(id -u)" -eq 0 ] || { echo "needs root" >&2; exit 77; }
[ "$windows" -ge 3 ] && [ "$windows" -le 60 ] || { echo "WINDOWS 3..60" >&2; exit 2; }
[ "$reps" -ge 1 ] && [ "$reps" -le 20 ] || { echo "REPS 1..20" >&2; exit 2; }
command -v stress-ng >/dev/null || { echo "stress-ng not installed" >&2; exit 77; }
# cg_detect and cg_usage_ns only; lib.sh's fixture and traps are not needed.
# shellcheck source=../tests/host/cg_lib.sh
. "$src/tests/host/cg_lib.sh"
trap - EXIT
cg_detect
[ "$CG_MODE" != none ] || { echo "no cgroups" >&2; exit 77; }

tmp=$(mktemp -d); chmod 700 "$tmp"
state=$(mktemp -d /dev/shm/fl-cpubench-state.XXXXXX); chmod 700 "$state"
mygrp="$CG_ACCT/flbench-cpu-$$"
agent=""; cur=""; comp_pids=()
# stop PID: TERM, bounded wait, KILL (only processes this script started).
stop() {
  local p=$1
  kill -TERM "$p" 2>/dev/null || return 0
  for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true
}
# Empty our group: everything in it descends from a stress-ng we started.
empty_group() {
  local p left
  for _ in $(seq 1 30); do
    [ -d "$mygrp" ] || return 0
    left=0  # (cgroupfs files have size 0: read them, do not test -s)
    while read -r p; do kill -KILL "$p" 2>/dev/null || true; left=1; done <"$mygrp/cgroup.procs"
    [ $left = 1 ] || return 0
    sleep 0.1
  done
}
cleanup() {
  local rc=$?
  set +e
  [ $rc -eq 0 ] || [ ! -f "$tmp/agent.log" ] || { echo "--- agent log (exit $rc):"; tail -n 20 "$tmp/agent.log"; } >&2
  for p in "${comp_pids[@]}" $cur; do stop "$p"; done
  empty_group
  [ -n "$agent" ] && stop "$agent"
  [ -d "$mygrp" ] && rmdir "$mygrp"
  rm -rf "$tmp" "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cc -O2 -std=gnu11 -D_GNU_SOURCE -I"$src/common" "$src/bench/res_apply.c" \
  "$build/common/libflcommon.a" -lmsgpackc -lnng -lmbedtls -lmbedx509 -lmbedcrypto \
  -o "$tmp/res_apply"
port=$((17000 + $$ % 1000))
"$build/agent/faultline-agent" --foreground --listen "tcp://127.0.0.1:$port" \
  --state-dir "$state" >"$tmp/agent.log" 2>&1 &
agent=$!
mkdir "$mygrp"

now_us() { local t=$EPOCHREALTIME; echo $(( ${t/./} )); }
# usage DIR -> U (ns), without forking on v1.
usage() {
  if [ "$CG_MODE" = v1 ]; then read -r U 2>/dev/null <"$1/cpuacct.usage"
  else U=$(cg_usage_ns "$1" 2>/dev/null); fi
}
# sample DIR T0_US U0: WINDOWS windows of 1 s from T0 -> SERIES (hundredths
# of a percent of one CPU per window).
sample() {
  local dir=$1 pt=$2 pu=$3 k tgt d t
  SERIES=""
  for k in $(seq 1 "$windows"); do
    tgt=$(( $2 + k * 1000000 ))
    t=$(now_us); d=$(( tgt - t ))
    if [ $d -gt 0 ]; then sleep "$(( d / 1000000 )).$(printf %06d $(( d % 1000000 )))"; fi
    usage "$dir" || return 1
    t=$(now_us)
    SERIES+="$(( (U - pu) * 10 / (t - pt) )) "   # ns / us / 1000 * 10000
    pt=$t; pu=$U
  done
}
# stats TARGET SERIES -> "settle_s mean_err max_err"
stats() {
  echo "$2" | awk -v t="$1" '{
    settle = 0
    for (i = 1; i <= NF; i++) { e = $i / 100 - t; if (e < 0) e = -e; if (!settle && e <= 2) settle = i }
    s = 0; w = 0; c = 0
    for (i = 3; i <= NF; i++) { e = $i / 100 - t; if (e < 0) e = -e; s += e; if (e > w) w = e; c++ }
    printf "%s %.2f %.2f", (settle ? settle : "never"), s / c, w }'
}

run_faultline() {
  local l=$1 t0 id=""
  : >"$tmp/ra.out"
  t0=$(now_us)
  "$tmp/res_apply" --url "tcp://127.0.0.1:$port" --kind cpu-stress --hold-ms $(( windows * 1000 + 300 )) \
    --duration-ms 60000 cores=1 load="$l" >"$tmp/ra.out" 2>"$tmp/ra.err" &
  local rp=$!; cur=$rp
  for _ in $(seq 1 500); do
    read -r _ id <"$tmp/ra.out" 2>/dev/null || true
    [ -n "$id" ] && break; sleep 0.005
  done
  [ -n "$id" ] || { cat "$tmp/ra.err" "$tmp/agent.log" >&2; echo "cpu-stress not applied" >&2; exit 1; }
  local dir="$CG_ACCT/faultline/$id"
  [ "$CG_MODE" = v1 ] || dir="$CG_V2/faultline/$id"
  if ! sample "$dir" "$t0" 0; then
    # Seen once on the shared machine: the group vanished mid-cell.
    echo "# lost: $dir vanished; agent says: $(grep -- "$id" "$tmp/agent.log" | tail -n 2 | tr '\n' ' ')" >&2
    stop "$rp"; cur=""; return 1
  fi
  wait "$rp" || { cat "$tmp/ra.err" >&2; exit 1; }
  cur=""
  APPLY_MS=$(awk -F'apply_us=' '/^run=/{split($2, a, " "); printf "%.1f", a[1] / 1000}' "$tmp/ra.out")
}
run_stressng() {
  local l=$1 t0 u0 sp
  usage "$mygrp"; u0=$U
  t0=$(now_us)
  bash -c 'echo $$ >"$1/cgroup.procs" && exec stress-ng --cpu 1 --cpu-load "$2" --timeout 60s' \
    _ "$mygrp" "$l" >/dev/null 2>&1 &
  sp=$!; cur=$sp
  sample "$mygrp" "$t0" "$u0"
  stop "$sp"; empty_group
  cur=""
}

raw=$tmp/runs.txt; : >"$raw"
echo "# $(uname -r), $(nproc) CPUs, cgroup $CG_MODE, $(stress-ng --version | head -1), windows=$windows reps=$reps compete=$compete"
for comp in $phases; do
  comp_pids=()
  if [ "$comp" = yes ]; then
    if [ "$compete" = stress-ng ]; then
      stress-ng --cpu "$(nproc)" --timeout 1800s >/dev/null 2>&1 & comp_pids+=($!)
    else
      for _ in $(seq 1 "$(nproc)"); do
        bash -c 'SECONDS=0; while [ $SECONDS -lt 1800 ]; do :; done' & comp_pids+=($!)
      done
    fi
    sleep 1
  fi
  for rep in $(seq 1 "$reps"); do
    for l in $levels; do
      la=$(cut -d' ' -f1 /proc/loadavg)
      run_faultline "$l" || run_faultline "$l" || { echo "faultline $l: lost twice" >&2; exit 1; }
      echo "faultline $l $comp $rep $(stats "$l" "$SERIES") $la apply=${APPLY_MS}ms | $SERIES" | tee -a "$raw" | sed 's/^/# run /'
      run_stressng "$l"
      echo "stress-ng $l $comp $rep $(stats "$l" "$SERIES") $la | $SERIES" | tee -a "$raw" | sed 's/^/# run /'
    done
  done
  for p in "${comp_pids[@]}"; do stop "$p"; done
  comp_pids=()
done

# Medians over the repetitions, per tool, level and phase.
awk '
  function med(list,   m, s, i, j, x) {
    m = split(list, s, " ")
    for (i = 2; i <= m; i++) { x = s[i]; for (j = i - 1; j >= 1 && s[j] + 0 > x + 0; j--) s[j + 1] = s[j]; s[j + 1] = x }
    return m % 2 ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2 }
  { k = $2 SUBSEP $3; tool = $1
    st[tool, k] = st[tool, k] " " ($5 == "never" ? 99 : $5)
    me[tool, k] = me[tool, k] " " $6; mx[tool, k] = mx[tool, k] " " $7
    if (!(k in seen)) { seen[k] = 1; keys[++nk] = k } }
  function fs(v) { return v >= 99 ? "never" : sprintf("%g s", v) }
  END {
    print "| load | competing | faultline settle | faultline mean err | faultline max err | stress-ng settle | stress-ng mean err | stress-ng max err |"
    print "|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= nk; i++) { split(keys[i], kk, SUBSEP); k = keys[i]
      printf "| %s %% | %s | %s | %.2f | %.2f | %s | %.2f | %.2f |\n", kk[1], kk[2],
        fs(med(st["faultline", k])), med(me["faultline", k]), med(mx["faultline", k]),
        fs(med(st["stress-ng", k])), med(me["stress-ng", k]), med(mx["stress-ng", k]) } }' "$raw"
