#!/usr/bin/env bash
# mem_stress.sh: memory-stress time to hold 1 GiB and the resident memory
# beyond the requested bytes, against `stress-ng --vm 1 --vm-bytes 1G
# --vm-keep` (and the same with --vm-populate), in the same run.
#
#   sudo FL_BUILD_DIR=build/h-b5 bench/mem_stress.sh
#
# faultline: APPLY memory-stress bytes=1G timed by bench/res_apply
#   (fl_conn_call round trip). The agent acknowledges only after its worker
#   has mapped, mlocked and populated the memory and verify() read >= 98 %
#   of it in the group's memory usage, so the ack time is the time to hold.
#   0.5 s after the ack: the worker's VmRSS/VmLck, the agent's VmRSS, and
#   the agent's growth since before the apply.
# stress-ng: time from exec until one of its processes has VmRSS >= 1 GiB
#   (polled every ~2 ms with shell builtins, no forks), then 0.5 s later the
#   VmRSS of all its processes (parent + workers).
# "beyond" = what the tool holds resident minus 1 GiB (1048576 kB).
# RUNS (5) runs of each, interleaved. Everything started here is stopped on
# exit, failure and signals.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${FL_BUILD_DIR:-$src/build/dev}
runs=${RUNS:-5}
[ "$(id -u)" -eq 0 ] || { echo "needs root" >&2; exit 77; }
[ "$runs" -ge 1 ] && [ "$runs" -le 20 ] || { echo "RUNS 1..20" >&2; exit 2; }
command -v stress-ng >/dev/null || { echo "stress-ng not installed" >&2; exit 77; }
# shellcheck source=../tests/host/cg_lib.sh
. "$src/tests/host/cg_lib.sh"
trap - EXIT
cg_detect
[ -n "$CG_MEM" ] || { echo "no memory cgroup controller" >&2; exit 77; }

tmp=$(mktemp -d); chmod 700 "$tmp"
state=$(mktemp -d /dev/shm/fl-membench-state.XXXXXX); chmod 700 "$state"
agent=""; cur=""
descendants() { # PID -> every descendant, from /proc/*/task/*/children
  local p c t
  for t in /proc/"$1"/task/*/children; do
    [ -r "$t" ] || continue
    read -r -a c <"$t" 2>/dev/null || true
    for p in "${c[@]}"; do echo "$p"; descendants "$p"; done
  done
}
stop() {
  local p=$1 d
  d=$(descendants "$p")
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 1 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true
  for p in $d; do kill -KILL "$p" 2>/dev/null || true; done
}
cleanup() {
  set +e
  [ -n "$cur" ] && stop "$cur"
  [ -n "$agent" ] && stop "$agent"
  rm -rf "$tmp" "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cc -O2 -std=gnu11 -D_GNU_SOURCE -I"$src/common" "$src/bench/res_apply.c" \
  "$build/common/libflcommon.a" -lmsgpackc -lnng -lmbedtls -lmbedx509 -lmbedcrypto \
  -o "$tmp/res_apply"
port=$((18000 + $$ % 1000))
"$build/agent/faultline-agent" --foreground --listen "tcp://127.0.0.1:$port" \
  --state-dir "$state" >"$tmp/agent.log" 2>&1 &
agent=$!
want=1048576 # kB

# status_kb PID FIELD -> V (kB, 0 when gone), builtins only.
status_kb() {
  local k v rest
  V=0
  while read -r k v rest; do
    if [ "$k" = "$2:" ]; then V=$v; return 0; fi
  done <"/proc/$1/status" 2>/dev/null || true
}
now_us() { local t=$EPOCHREALTIME; echo $(( ${t/./} )); }

run_faultline() {
  local r=$1 id="" a0 w
  sleep 0.3; status_kb "$agent" VmRSS; a0=$V
  : >"$tmp/ra.out"
  "$tmp/res_apply" --url "tcp://127.0.0.1:$port" --kind memory-stress --hold-ms 1500 \
    --duration-ms 60000 bytes=1G >"$tmp/ra.out" 2>"$tmp/ra.err" &
  cur=$!
  for _ in $(seq 1 6000); do
    read -r _ id <"$tmp/ra.out" 2>/dev/null || true
    [ -n "$id" ] && break; sleep 0.005
  done
  [ -n "$id" ] || { cat "$tmp/ra.err" >&2; tail "$tmp/agent.log" >&2; echo "memory-stress not applied" >&2; exit 1; }
  sleep 0.5
  read -r w <"$CG_MEM/faultline/$id/cgroup.procs"
  status_kb "$w" VmRSS; local wr=$V; status_kb "$w" VmLck; local wl=$V
  status_kb "$agent" VmRSS; local ar=$V
  wait "$cur" || { cat "$tmp/ra.err" >&2; exit 1; }
  cur=""
  local ms; ms=$(awk -F'apply_us=' '/^run=/{split($2, a, " "); printf "%.1f", a[1] / 1000}' "$tmp/ra.out")
  echo "faultline $r hold_ms=$ms worker_rss=$wr worker_lck=$wl agent_rss=$ar agent_growth=$((ar - a0)) total_beyond=$((wr + ar - want)) worker_beyond=$((wr - want))"
}

run_stressng() {
  local r=$1 variant=$2 t0 sp held="" p tot mx
  local args=(--vm 1 --vm-bytes 1G --vm-keep --timeout 60s)
  [ "$variant" = populate ] && args+=(--vm-populate)
  t0=$(now_us)
  stress-ng "${args[@]}" >/dev/null 2>&1 &
  sp=$!; cur=$sp
  local end=$(( t0 + 20000000 ))
  while [ "$(now_us)" -lt $end ]; do
    for p in $(descendants "$sp"); do
      status_kb "$p" VmRSS
      if [ "$V" -ge $want ]; then held=$(now_us); break 2; fi
    done
    sleep 0.002
  done
  [ -n "$held" ] || { stop "$sp"; cur=""; echo "stress-ng-$variant $r never reached 1 GiB in 20 s"; return 0; }
  sleep 0.5
  tot=0; mx=0
  for p in $sp $(descendants "$sp"); do status_kb "$p" VmRSS; tot=$((tot + V)); [ "$V" -gt $mx ] && mx=$V; done
  stop "$sp"; cur=""
  echo "stress-ng-$variant $r hold_ms=$(( (held - t0) / 1000 )) worker_rss=$mx total=$tot total_beyond=$((tot - want)) worker_beyond=$((mx - want))"
}

echo "# $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, cgroup $CG_MODE, $(stress-ng --version | head -1), loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
res=$tmp/res.txt; : >"$res"
for r in $(seq 1 "$runs"); do
  run_faultline "$r" | tee -a "$res" | sed 's/^/# run /'
  run_stressng "$r" plain | tee -a "$res" | sed 's/^/# run /'
  run_stressng "$r" populate | tee -a "$res" | sed 's/^/# run /'
done
awk '
  function med(list,   m, s, i, j, x) {
    m = split(list, s, " ")
    for (i = 2; i <= m; i++) { x = s[i]; for (j = i - 1; j >= 1 && s[j] + 0 > x + 0; j--) s[j + 1] = s[j]; s[j + 1] = x }
    return m % 2 ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2 }
  $3 ~ /^hold_ms=/ { t = $1; n[t]++
    for (i = 3; i <= NF; i++) { split($i, kv, "="); L[t, kv[1]] = L[t, kv[1]] " " kv[2] } }
  END {
    print "| tool | runs | time to hold 1 GiB (median, min-max) | worker RSS beyond 1 GiB | whole tool beyond 1 GiB |"
    print "|---|---|---|---|---|"
    split("faultline stress-ng-plain stress-ng-populate", o, " ")
    for (k = 1; k <= 3; k++) { t = o[k]; if (!n[t]) continue
      m = split(L[t, "hold_ms"], h, " "); lo = h[1]; hi = h[1]
      for (i = 1; i <= m; i++) { if (h[i] + 0 < lo + 0) lo = h[i]; if (h[i] + 0 > hi + 0) hi = h[i] }
      printf "| %s | %d | %.0f ms (%.0f-%.0f) | %.0f kB | %.0f kB |\n", t, n[t], med(L[t, "hold_ms"]), lo, hi,
        med(L[t, "worker_beyond"]), med(L[t, "total_beyond"]) }
    if (n["faultline"]) printf "faultline agent: VmRSS %.0f kB while holding, growth over the apply %.0f kB; worker VmLck %.0f kB (medians)\n",
      med(L["faultline", "agent_rss"]), med(L["faultline", "agent_growth"]), med(L["faultline", "worker_lck"]) }' "$res"
