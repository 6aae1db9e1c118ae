#!/usr/bin/env bash
# disk_fill_bench.sh: disk-fill of BYTES (default 10 GiB) on a fresh ext4
# on a sparse loop file (12 GiB), against `fallocate -l` and `dd` in the
# same run. Per round, interleaved on the same filesystem:
#   faultline  APPLY disk-fill path=MNT bytes=BYTES -> ack, timed by
#              bench/res_apply (fl_conn_call round trip), then REVERT -> ack
#   fallocate  `fallocate -l BYTES FILE` (fork+exec+exit), then `rm FILE`
#   syscall    fallocate(2) / unlink(2) alone, in-process (the floor)
# Residual = (free before - free after apply - BYTES) / BYTES, free from
# statvfs (f_bfree). dd (bs=1M, conv=fdatasync) runs last, capped at
# DD_CAP seconds with SIGINT (dd then prints how far it got): its rate.
#
#   sudo FL_BUILD_DIR=build/h-b5 bench/disk_fill_bench.sh
#
# Knobs: RUNS (5), BYTES (10737418240), DD_CAP (15 s), DD_RUNS (1),
# IMG_PARENT (/var/tmp: the backing file's filesystem). Everything it makes
# (agent, loop device, mount, files) is removed on exit, failure and
# signals included.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FL_BUILD_DIR:-$root/build/dev}
runs=${RUNS:-5}
bytes=${BYTES:-10737418240}
dd_cap=${DD_CAP:-15}
dd_runs=${DD_RUNS:-1}
[ "$(id -u)" -eq 0 ] || { echo "needs root (loop devices, mount)" >&2; exit 77; }
for t in losetup mkfs.ext4 fallocate dd timeout cc; do
  command -v "$t" >/dev/null || { echo "$t not installed" >&2; exit 77; }
done
[ "$runs" -ge 1 ] && [ "$runs" -le 50 ] || { echo "RUNS 1..50" >&2; exit 2; }

tmp=$(mktemp -d "${IMG_PARENT:-/var/tmp}/fl-diskbench.XXXXXX"); chmod 700 "$tmp"
state=$(mktemp -d /dev/shm/fl-diskbench-state.XXXXXX); chmod 700 "$state"
loop=""; agent=""; mnt="$tmp/mnt"
cleanup() {
  set +e
  if [ -n "$agent" ]; then
    kill -TERM "$agent" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$agent" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$agent" 2>/dev/null; wait "$agent" 2>/dev/null
  fi
  if mountpoint -q "$mnt" 2>/dev/null; then
    for _ in $(seq 1 20); do umount "$mnt" 2>/dev/null && break; sleep 0.2; done
    mountpoint -q "$mnt" && umount -l "$mnt"
  fi
  [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
  rm -rf "$tmp" "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The timing client, built against this build's transport library.
cc -O2 -std=gnu11 -D_GNU_SOURCE -I"$root/common" "$root/bench/res_apply.c" \
  "$build/common/libflcommon.a" -lmsgpackc -lnng -lmbedtls -lmbedx509 -lmbedcrypto \
  -o "$tmp/res_apply"

truncate -s 12G "$tmp/img"
# Inode tables and journal written now, so no lazy-init thread writes
# behind the measurements.
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$tmp/img"
loop=$(losetup -f --show "$tmp/img")
mkdir "$mnt"; mount -t ext4 "$loop" "$mnt"
mkdir "$mnt/fill"; chmod 700 "$mnt/fill"
echo "# $(uname -r), $(nproc) CPUs, loadavg $(cut -d' ' -f1-3 /proc/loadavg); $loop on $tmp/img; \
fs $(df -B1 --output=size "$mnt" | tail -1) bytes, free $(( $(stat -f -c '%f*%S' "$mnt") )) (f_bfree)"

port=$((19000 + $$ % 1000))
"$build/agent/faultline-agent" --foreground --listen "tcp://127.0.0.1:$port" \
  --state-dir "$state" >"$tmp/agent.log" 2>&1 &
agent=$!

freeb() { echo $(( $(stat -f -c '%f*%S' "$1") )); }
us_since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 1e6 }'; }
res=$tmp/results.txt; : >"$res"
for r in $(seq 1 "$runs"); do
  # faultline
  out=$("$tmp/res_apply" --url "tcp://127.0.0.1:$port" --kind disk-fill --statfs "$mnt/fill" \
    path="$mnt/fill" bytes="$bytes" | grep '^run=')
  echo "faultline $out" >>"$res"
  sync -f "$mnt"; sleep 0.5
  # fallocate(1)
  f0=$(freeb "$mnt/fill"); t0=$EPOCHREALTIME
  fallocate -l "$bytes" "$mnt/fill/fa.img"
  t1=$EPOCHREALTIME; f1=$(freeb "$mnt/fill"); t2=$EPOCHREALTIME
  rm -f "$mnt/fill/fa.img"
  t3=$EPOCHREALTIME; f2=$(freeb "$mnt/fill")
  echo "fallocate run=$r apply_us=$(us_since "$t0" "$t1") revert_us=$(us_since "$t2" "$t3") \
free_before=$f0 free_applied=$f1 free_reverted=$f2" >>"$res"
  sync -f "$mnt"; sleep 0.5
  # the syscalls alone
  echo "syscall $("$tmp/res_apply" --raw-fallocate "$mnt/fill/raw.img" --bytes "$bytes")" >>"$res"
  sync -f "$mnt"; sleep 0.5
done

awk -v want="$bytes" '
  { tool = $1; for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    n[tool]++; a[tool, n[tool]] = v["apply_us"]; rv[tool, n[tool]] = v["revert_us"]
    e = (v["free_before"] - v["free_applied"] - want) / want * 100
    er[tool, n[tool]] = e; back[tool, n[tool]] = v["free_before"] - v["free_reverted"]
    printf "# %-9s run %d: apply %9.1f us  revert %9.1f us  residual %+.4f %%  not given back %d bytes\n",
      tool, n[tool], v["apply_us"], v["revert_us"], e, back[tool, n[tool]] }
  function med(arr, t, k,   m, i, j, x, s) {
    m = n[t]; for (i = 1; i <= m; i++) s[i] = arr[t, i]
    for (i = 2; i <= m; i++) { x = s[i]; for (j = i - 1; j >= 1 && s[j] > x; j--) s[j + 1] = s[j]; s[j + 1] = x }
    return k == "max" ? s[m] : (m % 2 ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2) }
  END {
    print "| tool | runs | apply p50 | apply max | residual p50 | revert p50 | revert max |"
    print "|---|---|---|---|---|---|---|"
    split("faultline fallocate syscall", order, " ")
    for (k = 1; k <= 3; k++) { t = order[k]; if (!n[t]) continue
      printf "| %s | %d | %.2f ms | %.2f ms | %+.4f %% | %.2f ms | %.2f ms |\n", t, n[t],
        med(a, t, "p50") / 1000, med(a, t, "max") / 1000, med(er, t, "p50"),
        med(rv, t, "p50") / 1000, med(rv, t, "max") / 1000 } }' "$res"

# dd: capped; SIGINT makes GNU dd print how far it got and exit.
for r in $(seq 1 "$dd_runs"); do
  f0=$(freeb "$mnt/fill"); t0=$EPOCHREALTIME
  rc=0; timeout -s INT "$dd_cap" dd if=/dev/zero of="$mnt/fill/dd.img" bs=1M \
    count=$((bytes / 1048576)) conv=fdatasync 2>"$tmp/dd.log" || rc=$?
  t1=$EPOCHREALTIME; f1=$(freeb "$mnt/fill")
  copied=$(awk '/bytes/ && /copied/ {print $1}' "$tmp/dd.log" | tail -1)
  t2=$EPOCHREALTIME; rm -f "$mnt/fill/dd.img"; t3=$EPOCHREALTIME
  awk -v c="${copied:-0}" -v s="$(us_since "$t0" "$t1")" -v rc="$rc" -v want="$bytes" \
    -v drop=$((f0 - f1)) -v rm="$(us_since "$t2" "$t3")" -v cap="$dd_cap" 'BEGIN {
    printf "dd run %d: %s after %.2f s (exit %d%s): %.0f MiB written, %.0f MiB/s; free dropped %.0f MiB; ", '"$r"', (rc ? "stopped" : "done"), s / 1e6, rc, (rc ? ", capped at " cap " s" : ""), c / 1048576, c / 1048576 / (s / 1e6), drop / 1048576
    printf "10 GiB at that rate: %.0f s; rm %.1f ms\n", want / (c / (s / 1e6)), rm / 1000 }'
  sync -f "$mnt"
done
echo "# agent log: $(grep -c 'fault applied' "$tmp/agent.log") applies, $(grep -c 'fault reverted' "$tmp/agent.log") reverts, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
