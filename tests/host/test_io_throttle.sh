#!/usr/bin/env bash
# io-throttle on the disk backing path= (a loop-mounted ext4 the test makes),
# for a test cgroup: v1 blkio.throttle.* here, v2 io.max where the lane has
# it. Direct writes (dd oflag=direct, so the page cache cannot hide the
# limit) from inside the group slow to roughly wbps=; a limit set before
# the fault on another knob (rbps) is kept while it runs, and all four
# values for the device come back exactly on revert (Ctrl-C of the
# coordinator) — including "no rule" for the knob that had none. Bad
# parameters are refused. Crash safety (SIGKILL + restart) is in
# test_cgroup_crash.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cg_lib.sh"
t_setup
cg_detect
[ "$CG_MODE" != none ] || skip "no cgroup filesystem mounted"
[ -n "$CG_IO" ] || skip "no blkio (v1) / io (v2) controller"
command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 (e2fsprogs) not installed"
command -v mountpoint >/dev/null || skip "mountpoint (util-linux) not installed"
truncate -s 64M "$T_TMP/disk.img"
mkfs.ext4 -q -F -m 0 "$T_TMP/disk.img" || fail "mkfs"
mkdir "$T_TMP/mnt"
mount -o loop "$T_TMP/disk.img" "$T_TMP/mnt" || skip "cannot loop-mount here"
T_MOUNTS+=("$T_TMP/mnt")
devno=$(mountpoint -d "$T_TMP/mnt")
t_hosts 1
t_inventory 1
cg_agent 1
W=fliot$$
cg_make "$W"
G=$CG_IO/$W
log "cgroup $CG_MODE, group $G, loop disk $devno"

# A limit of our own on another knob: io-throttle must leave it while it
# runs and restore it exactly (not to "none").
if [ "$CG_MODE" = v1 ]; then echo "$devno 33554432" >"$G/blkio.throttle.read_bps_device"
else echo "$devno rbps=33554432" >"$G/io.max"; fi
before=$(cg_io_limits "$G")

MIB=4
# write_ms: MIB MiB of O_DIRECT writes from inside $W; prints elapsed ms.
write_ms() {
  local t0 t1
  t0=$(date +%s%N)
  bash -c "for d in $(cg_dirs "$W" | tr '\n' ' '); do echo \$\$ >\$d/cgroup.procs || exit 1; done
    exec dd if=/dev/zero of=$T_TMP/mnt/f bs=256k count=$((MIB * 4)) oflag=direct conv=notrunc status=none" ||
    fail "dd from inside $W failed"
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}
write_ms >/dev/null # allocate the file's blocks: later runs overwrite in place
free_ms=$(write_ms)

cg_inject iot io-throttle cgroup=/$W path="$T_TMP/mnt" wbps=1M -- 60s
during=$(cg_io_limits "$G")
log "limits during: $(echo "$during" | tr '\n' ';')"
if [ "$CG_MODE" = v1 ]; then
  grep -q "^write_bps: $devno 1048576 $" <<<"$during" || fail "write_bps not set: $during"
  grep -q "^read_bps: $devno 33554432 $" <<<"$during" || fail "our read_bps lost: $during"
else
  grep -q "^$devno rbps=33554432 wbps=1048576 " <<<"$during" || fail "io.max: $during"
fi
thr_ms=$(write_ms)
rate=$(( MIB * 1048576 * 1000 / thr_ms ))
log "$MIB MiB direct writes on $devno: ${free_ms} ms free, ${thr_ms} ms at wbps=1M ($rate B/s)"
# Roughly the limit: within 25 % of 1 MiB/s (the throttle lets a slice of
# ~100 ms through at first), and far slower than unthrottled.
[ "$rate" -ge 786432 ] && [ "$rate" -le 1310720 ] || fail "throttled rate $rate B/s not near 1048576"
[ "$thr_ms" -ge $(( free_ms * 3 )) ] || fail "not measurably slower: $free_ms ms -> $thr_ms ms"
pass "io-throttle wbps=1M: $MIB MiB in $thr_ms ms ($rate B/s; unthrottled $free_ms ms)"

kill -INT "$INJECT_PID"; wait "$INJECT_PID"
grep -q reverted "$T_TMP/iot.log" || fail "Ctrl-C did not revert: $(cat "$T_TMP/iot.log")"
after=$(cg_io_limits "$G")
[ "$after" = "$before" ] || fail "limits not restored exactly: before '$before' after '$after'"
again_ms=$(write_ms)
[ "$again_ms" -lt $(( thr_ms / 2 )) ] || fail "writes still slow after revert: $again_ms ms"
pass "revert restored every limit exactly ($(echo "$after" | tr '\n' ';')); writes back to $again_ms ms"

for bad in "cgroup=/$W path=$T_TMP/mnt" "cgroup=/$W path=relative wbps=1M" \
           "cgroup=/$W path=$T_TMP/mnt wbps=0" "cgroup=/$W path=$T_TMP/mnt wbps=fast" \
           "path=$T_TMP/mnt wbps=1M" "cgroup=/ path=$T_TMP/mnt wbps=1M" \
           "cgroup=/nonexistent$$ path=$T_TMP/mnt wbps=1M" "cgroup=/$W path=/proc/self wbps=1M"; do
  out=$(t_fl inject h1 io-throttle $bad --duration 1s 2>&1); rc=$?
  [ $rc -eq 2 ] || fail "'$bad' should exit 2, got $rc: $out"
  log "refused '$bad': $(echo "$out" | tail -1)"
done
[ "$(cg_io_limits "$G")" = "$before" ] || fail "a refused fault changed the limits"
pass "bad io-throttle parameters refused, limits untouched"
