#!/usr/bin/env bash
# vm-modules: loop,ext4
#
# The cgroup faults on cgroup v2 (Debian's stock kernel, cgroup2 on
# /sys/fs/cgroup with cpu io memory pids): cpu-stress held by cpu.max,
# memory-stress in a memory.max-limited group, cpu-throttle and
# memory-squeeze (memory.high) restored exactly, process-pause through
# cgroup.freeze, io-throttle (io.max) measured with direct writes on a loop
# disk, and crash safety (SIGKILL the agent, restart: workers gone, limits
# restored, groups removed). TCG timing is noisy: magnitudes, not precision.
. "$(dirname "$0")/../lib-vm.sh"
. "$FL_SOURCE_DIR/tests/host/cg_lib.sh"
t_setup
cg_detect
[ "$CG_MODE" = v2 ] || fail "expected cgroup v2 in the VM, found $CG_MODE"
grep -qw cpu "$CG_V2/cgroup.subtree_control" || fail "cpu controller not enabled at the root"
t_hosts 1
t_inventory 1
cg_agent 1
grep -q "cgroup v2: v2 /sys/fs/cgroup (cpu,memory,io,pids)" "$T_TMP/agent1.log" ||
  log "agent's cgroup line: $(grep -o 'cgroup v.*' "$T_TMP/agent1.log" | head -1)"
W=flvm$$
cg_make "$W"
owned_left() { ls -d "$CG_V2"/faultline/f-* 2>/dev/null; }

# --- cpu-stress -------------------------------------------------------------
cg_inject cpu cpu-stress cores=1 load=50 -- 8s
g="$CG_V2/faultline/$FAULT_ID"
[ "$(cat "$g/cpu.max")" = "50000 100000" ] || fail "cpu.max is '$(cat "$g/cpu.max")'"
sleep 1
rate=$(cg_rate "$g" 4)
log "cpu-stress 50 %: $(fmt_pct "$rate") % over 4 s (cpu.stat)"
[ "$rate" -ge 3500 ] && [ "$rate" -le 6500 ] || fail "cpu-stress held $(fmt_pct "$rate") %"
wait "$INJECT_PID" || fail "inject failed"
[ -z "$(owned_left)" ] || fail "groups left: $(owned_left)"
pass "cpu-stress on v2: cpu.max 50000 100000, $(fmt_pct "$rate") % measured; group removed"

# --- memory-stress ------------------------------------------------------------
cg_inject mem memory-stress bytes=128M -- 4s
g="$CG_V2/faultline/$FAULT_ID"
wpid=$(cg_procs "$g" | head -1)
rss=$(awk '/^VmRSS/{print $2}' "/proc/$wpid/status"); want=$((128 * 1024))
log "memory-stress 128M: VmRSS $rss kB, memory.current $(cat "$g/memory.current"), memory.max $(cat "$g/memory.max")"
# CI runs this lane with the ASan build, whose worker also carries shadow
# memory for what it touches (1/8) and allocator pages: a looser bound
# there; the 2-5 % precision is asserted with the plain build (host lane).
tol=5
grep -aq "libasan\.so" "$AGENT" && tol=25
[ $(( (rss > want ? rss - want : want - rss) * 100 )) -le $(( want * tol )) ] || fail "RSS $rss kB vs $want kB (tolerance $tol %)"
wait "$INJECT_PID" || fail "inject failed"
alive "$wpid" && fail "memory worker survived"
pass "memory-stress on v2 held $rss kB of 128 MiB"

# --- cpu-throttle, memory-squeeze, pause on a test group ------------------------
echo "300000 100000" >"$CG_V2/$W/cpu.max"
q0=$(cat "$CG_V2/$W/cpu.max"); h0=$(cat "$CG_V2/$W/memory.high")
cg_busy 1
cg_enter "$W" "$BUSY_PID" || fail "cannot enter $W"
sleep 0.5
r0=$(cg_rate "$CG_V2/$W" 2)
cg_inject thr cpu-throttle cgroup=/$W percent=20 -- 5s
[ "$(cat "$CG_V2/$W/cpu.max")" = "20000 100000" ] || fail "cpu.max during: $(cat "$CG_V2/$W/cpu.max")"
r1=$(cg_rate "$CG_V2/$W" 2)
log "busy loop $(fmt_pct "$r0") % -> $(fmt_pct "$r1") % under cpu-throttle 20 %"
[ "$r1" -le 3500 ] && [ "$r0" -ge $(( r1 * 2 )) ] || fail "not throttled: $r0 -> $r1"
wait "$INJECT_PID" || fail "inject failed"
[ "$(cat "$CG_V2/$W/cpu.max")" = "$q0" ] || fail "cpu.max not restored: $(cat "$CG_V2/$W/cpu.max")"
pass "cpu-throttle on v2: $(fmt_pct "$r0") % -> $(fmt_pct "$r1") %, cpu.max restored ($q0)"

cg_inject sq memory-squeeze cgroup=/$W bytes=64M -- 2s
[ "$(cat "$CG_V2/$W/memory.high")" = $((64 << 20)) ] || fail "memory.high during: $(cat "$CG_V2/$W/memory.high")"
wait "$INJECT_PID" || fail "inject failed"
[ "$(cat "$CG_V2/$W/memory.high")" = "$h0" ] || fail "memory.high not restored"
pass "memory-squeeze on v2: memory.high 64M, restored ($h0)"

cg_inject pause process-pause cgroup=/$W -- 3s
grep -q "backend cgroup.freeze" "$T_TMP/pause.log" || fail "not the v2 freezer: $(cat "$T_TMP/pause.log")"
grep -q "^frozen 1" "$CG_V2/$W/cgroup.events" || fail "not frozen"
wait "$INJECT_PID" || fail "inject failed"
grep -q "^frozen 0" "$CG_V2/$W/cgroup.events" || fail "still frozen"
pass "process-pause cgroup=/$W used cgroup.freeze and thawed"

# --- crash safety ------------------------------------------------------------
cg_inject c1 cpu-stress cores=1 load=20 -- 60s
cg_inject c2 cpu-throttle cgroup=/$W percent=10 -- 60s
cg_inject c3 memory-squeeze cgroup=/$W bytes=32M -- 60s
workers=$(cg_procs "$CG_V2/faultline/$(grep -o 'applied f-[0-9a-f]*' "$T_TMP/c1.log" | cut -d' ' -f2)")
kill -KILL "$AGENT_PID_1"; wait "$AGENT_PID_1" 2>/dev/null
sleep 0.5
for p in $workers; do alive "$p" && fail "worker $p outlived the agent"; done
mv "$T_TMP/agent1.log" "$T_TMP/agent1-first.log"
cg_agent 1
[ "$(cat "$CG_V2/$W/cpu.max")" = "$q0" ] || fail "crash: cpu.max not restored"
[ "$(cat "$CG_V2/$W/memory.high")" = "$h0" ] || fail "crash: memory.high not restored"
[ -z "$(owned_left)" ] || fail "crash: groups left: $(owned_left)"
[ -d "$CG_V2/faultline" ] && fail "crash: faultline parent left"
pass "SIGKILL + restart on v2: workers died, cpu.max/memory.high restored, groups removed"
kill -KILL "$BUSY_PID"; wait "$BUSY_PID" 2>/dev/null

# --- io-throttle with direct writes on a loop disk -------------------------------
truncate -s 64M "$T_TMP/disk.img"
mkfs.ext4 -q -F "$T_TMP/disk.img" || fail "mkfs"
mkdir "$T_TMP/mnt"
mount -o loop "$T_TMP/disk.img" "$T_TMP/mnt" || fail "loop mount"
T_MOUNTS+=("$T_TMP/mnt")
dev=$(stat -c '%d' "$T_TMP/mnt"); devno="$((dev >> 8)):$((dev & 255))"
write_secs() {  # write 6 MiB O_DIRECT from inside $W, print elapsed ms
  local t0 t1
  t0=$(now_ms)
  bash -c "echo \$\$ > $CG_V2/$W/cgroup.procs; exec dd if=/dev/zero of=$T_TMP/mnt/f bs=1M count=6 oflag=direct status=none" || fail "dd"
  t1=$(now_ms); echo $(( t1 - t0 ))
}
free_ms=$(write_secs)
cg_inject iot io-throttle cgroup=/$W path="$T_TMP/mnt" wbps=1M -- 30s
grep -q "^$devno .*wbps=1048576" "$CG_V2/$W/io.max" || fail "io.max: $(cat "$CG_V2/$W/io.max")"
thr_ms=$(write_secs)
log "6 MiB direct writes on $devno: ${free_ms} ms free, ${thr_ms} ms at wbps=1M"
[ "$thr_ms" -ge 3500 ] || fail "io-throttle did not slow the writes (${thr_ms} ms)"
kill -INT "$INJECT_PID"; wait "$INJECT_PID"
grep -q "^$devno " "$CG_V2/$W/io.max" && fail "io.max not restored: $(cat "$CG_V2/$W/io.max")"
pass "io-throttle wbps=1M: 6 MiB took ${thr_ms} ms (free: ${free_ms} ms); io.max restored"
