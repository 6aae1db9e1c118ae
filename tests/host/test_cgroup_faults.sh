#!/usr/bin/env bash
# Resource faults through cgroups, through the real agent and `faultline
# inject`, measured from the kernel's own accounting:
#   cpu-stress 50 % of one core over 10 s within ±3 points (cpuacct / cpu.stat);
#   memory-stress holds the requested bytes (worker RSS within 2 %);
#   cpu-throttle slows a busy loop in a test cgroup, restored exactly;
#   memory-squeeze restored exactly; process-pause freezes a whole cgroup;
#   process-kill cgroup= interval= keeps killing a respawning process;
#   io-stress workers and files on a loop ext4, all removed on revert;
#   protected targets refused.
# Runs on v1 (this host) and v2 (the VM lane sources it too).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cg_lib.sh"
t_setup
cg_detect
[ "$CG_MODE" != none ] || skip "no cgroup filesystem mounted"
[ -n "$CG_CPU" ] && [ -n "$CG_MEM" ] || skip "cpu or memory controller missing ($CG_MODE)"
log "cgroup $CG_MODE: cpu=$CG_CPU acct=$CG_ACCT memory=$CG_MEM freezer=$CG_FRZ io=$CG_IO"
t_hosts 1
t_inventory 1
cg_agent 1
W=fltest$$
cg_make "$W"

owned_left() { ls -d "$CG_CPU"/faultline/f-* "$CG_MEM"/faultline/f-* "$CG_ACCT"/faultline/f-* 2>/dev/null; }

# --- cpu-stress: 50 % of one core, measured over 10 s --------------------
cg_inject cpu cpu-stress cores=1 load=50 -- 15s
dir="$CG_ACCT/faultline/$FAULT_ID"
[ -d "$dir" ] || fail "no worker cgroup $dir"
[ "$(cg_procs "$CG_CPU/faultline/$FAULT_ID" | wc -l)" -eq 1 ] || fail "expected 1 worker"
log "quota: $(cg_quota "$CG_CPU/faultline/$FAULT_ID")"
sleep 1
rate=$(cg_rate "$dir" 10)
log "cpu-stress cores=1 load=50: $(fmt_pct "$rate") % of one core over 10 s"
[ "$rate" -ge 4700 ] && [ "$rate" -le 5300 ] || fail "cpu-stress held $(fmt_pct "$rate") %, want 50±3"
workers=$(cg_procs "$CG_CPU/faultline/$FAULT_ID")
wait "$INJECT_PID" || fail "inject exited non-zero: $(cat "$T_TMP/cpu.log")"
[ -z "$(owned_left)" ] || fail "worker cgroups left: $(owned_left)"
for p in $workers; do alive "$p" && fail "worker $p survived the revert"; done
pass "cpu-stress held $(fmt_pct "$rate") % of one core (50±3); workers and cgroup gone after"

# --- memory-stress: RSS within 2 % ---------------------------------------
cg_inject mem memory-stress bytes=512M -- 8s
mdir="$CG_MEM/faultline/$FAULT_ID"
wpid=$(cg_procs "$mdir" | head -1)
[ -n "$wpid" ] || fail "no memory worker in $mdir"
rss=$(awk '/^VmRSS/{print $2}' "/proc/$wpid/status")
want=$((512 * 1024))
log "memory-stress bytes=512M: worker $wpid VmRSS ${rss} kB (want $want kB), VmLck $(awk '/^VmLck/{print $2}' /proc/$wpid/status) kB"
diff=$(( rss > want ? rss - want : want - rss ))
# An ASan build's worker carries shadow memory and allocator pages of its
# own on top of the held bytes; the 2 % bound is for the real build.
tol=2
grep -aq "libasan\.so" "$AGENT" && tol=4
[ $(( diff * 100 )) -le $(( want * tol )) ] || fail "RSS $rss kB not within $tol % of $want kB"
[ "$(awk '{print $1}' /proc/$wpid/oom_score_adj)" = 1000 ] || fail "worker oom_score_adj not 1000"
wait "$INJECT_PID" || fail "inject exited non-zero: $(cat "$T_TMP/mem.log")"
alive "$wpid" && fail "memory worker survived the revert"
[ -z "$(owned_left)" ] || fail "worker cgroups left: $(owned_left)"
pass "memory-stress held $rss kB for 512 MiB (within $tol %); gone after revert"

# Too much memory is refused before anything starts.
out=$(t_fl inject h1 memory-stress percent=99 --duration 5s 2>&1) && fail "percent=99 accepted: $out"
echo "$out" | grep -q "refused" || fail "percent=99: unexpected answer: $out"
pass "memory-stress percent=99 refused: $(echo "$out" | tail -1)"

# --- cpu-throttle on a busy loop, exact restore --------------------------
if [ "$CG_MODE" = v1 ]; then
  echo 100000 >"$CG_CPU/$W/cpu.cfs_period_us"; echo 150000 >"$CG_CPU/$W/cpu.cfs_quota_us"
else
  echo "150000 100000" >"$CG_CPU/$W/cpu.max"
fi
before_q=$(cg_quota "$CG_CPU/$W")
cg_busy 1
cg_enter "$W" "$BUSY_PID" || fail "cannot move the busy loop into $W"
sleep 0.5
r0=$(cg_rate "$CG_ACCT/$W" 2)
cg_inject thr cpu-throttle cgroup=/$W percent=20 -- 6s
during_q=$(cg_quota "$CG_CPU/$W")
sleep 0.3
r1=$(cg_rate "$CG_ACCT/$W" 3)
log "busy loop: $(fmt_pct "$r0") % before, $(fmt_pct "$r1") % throttled to 20 % (quota '$before_q' -> '$during_q')"
[ "$r1" -le 2400 ] && [ "$r1" -ge 1600 ] || fail "throttled rate $(fmt_pct "$r1") % not near 20 %"
[ "$r0" -ge $(( r1 * 3 )) ] || fail "not measurably slower: $r0 vs $r1"
wait "$INJECT_PID" || fail "inject exited non-zero"
after_q=$(cg_quota "$CG_CPU/$W")
[ "$after_q" = "$before_q" ] || fail "quota not restored: '$before_q' -> '$after_q'"
pass "cpu-throttle slowed the loop $(fmt_pct "$r0") % -> $(fmt_pct "$r1") %; quota restored exactly ('$after_q')"

# --- memory-squeeze, exact restore ----------------------------------------
sf=memory.soft_limit_in_bytes; [ "$CG_MODE" = v2 ] && sf=memory.high
before=$(cat "$CG_MEM/$W/$sf")
cg_inject sq memory-squeeze cgroup=/$W bytes=64M -- 2s
during=$(cat "$CG_MEM/$W/$sf")
[ "$during" = $((64 << 20)) ] || fail "$sf is $during during the squeeze"
wait "$INJECT_PID" || fail "inject exited non-zero"
after=$(cat "$CG_MEM/$W/$sf")
[ "$after" = "$before" ] || fail "$sf not restored: $before -> $after"
pass "memory-squeeze set $sf=$during, restored exactly ($after)"

# --- process-pause of a whole cgroup: the freezer ------------------------
frozen() {
  if [ "$CG_MODE" = v1 ]; then [ "$(cat "$CG_FRZ/$W/freezer.state")" = FROZEN ]
  else grep -q "^frozen 1" "$CG_FRZ/$W/cgroup.events"; fi
}
cg_inject pause process-pause cgroup=/$W -- 3s
grep -q "backend freezer\|backend cgroup.freeze" "$T_TMP/pause.log" || fail "pause did not use the freezer: $(cat "$T_TMP/pause.log")"
frozen || fail "cgroup not frozen"
r2=$(cg_rate "$CG_ACCT/$W" 1)
[ "$r2" -le 100 ] || fail "frozen loop still ran $(fmt_pct "$r2") %"
wait "$INJECT_PID" || fail "inject exited non-zero"
frozen && fail "cgroup still frozen after revert"
r3=$(cg_rate "$CG_ACCT/$W" 1)
[ "$r3" -ge 1000 ] || fail "loop did not resume ($(fmt_pct "$r3") %)"
pass "process-pause cgroup=/$W froze it ($(fmt_pct "$r2") % CPU) and thawed it"
kill -KILL "$BUSY_PID"; wait "$BUSY_PID" 2>/dev/null

# --- process-kill cgroup= interval=: a chaos monkey ----------------------
# A supervisor outside the cgroup keeps one sleeper inside it.
t_bg - supervisor bash -c "for i in \$(seq 1 100); do sleep 60 & p=\$!; for d in $(cg_dirs "$W" | tr '\n' ' '); do echo \$p > \$d/cgroup.procs; done; echo spawned; wait \$p; done"
SUP_PID=$T_LAST_PID
sleep 0.5
cg_inject kill process-kill cgroup=/$W interval=300ms -- 2s
wait "$INJECT_PID" || fail "inject exited non-zero"
spawned=$(grep -c spawned "$T_TMP/supervisor.log")
log "supervisor respawned its sleeper $((spawned - 1)) times in 2 s"
[ "$spawned" -ge 5 ] || fail "only $spawned spawns: interval kills not repeating"
grep -q "fault tick id=$FAULT_ID kind=process-kill SIGKILL" "$T_TMP/agent1.log" || fail "no tick logged"
kill -TERM "$SUP_PID"; wait "$SUP_PID" 2>/dev/null
pass "process-kill cgroup=/$W interval=300ms killed $((spawned - 1)) respawns in 2 s"

# --- protected targets ----------------------------------------------------
agent_mem=$(awk -F: '$2=="memory" || ($1=="0" && $2=="") {print $3; exit}' "/proc/$AGENT_PID_1/cgroup")
for bad in "cpu-throttle cgroup=/ percent=10" "memory-squeeze cgroup=$agent_mem bytes=64M" \
           "process-pause pid=1" "process-kill pid=$AGENT_PID_1" "cpu-throttle cgroup=/faultline percent=5"; do
  out=$(t_fl inject h1 $bad --duration 2s 2>&1) && fail "'$bad' accepted"
  echo "$out" | grep -qiE "refused|protected|no such cgroup" || fail "'$bad': unexpected answer: $out"
  log "refused '$bad': $(echo "$out" | tail -1)"
done
pass "protected targets refused (root cgroup, the agent's own cgroup, PID 1, the agent)"

# --- HELLO reports the cgroup mode -----------------------------------------
grep -q "cgroup \(v1\|v2\|hybrid\)" "$T_TMP/agent1.log" || fail "agent did not log its cgroup mode"
pass "agent reports: $(grep -o 'cgroup \(v1\|v2\|hybrid\).*' "$T_TMP/agent1.log" | head -1)"
