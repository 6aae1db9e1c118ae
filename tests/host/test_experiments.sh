#!/usr/bin/env bash
# Game days from experiments/ end to end, on the fleet of
# experiments/gameday-inventory.yaml built out of namespaces:
#   dependency-stall.yaml     process-pause in a parallel group, guardrails
#                             with window statistics and an SLO rule: held, exit 0
#   disk-fill-guardrail.yaml  background pause + disk-fill past the headroom
#                             guardrail: aborted, exit 3, everything reverted
# (primary-failover-drill.yaml runs in test_drill.sh.)
. "$(dirname "$0")/lib.sh"
t_setup
command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 (e2fsprogs) not installed"
EXP=$FL_SOURCE_DIR/experiments
DATA=/run/fl-gameday/db-data
mountpoint -q $DATA && umount -l $DATA
# The volume exists before the agents start: `ip netns exec` gives each
# agent a mount namespace of its own, which does not see later mounts.
truncate -s 64M "$T_TMP/db-data.img"
mkfs.ext4 -q -F -m 0 "$T_TMP/db-data.img"
mkdir -p $DATA
mount -o loop "$T_TMP/db-data.img" $DATA || fail "cannot loop-mount the test volume"
T_MOUNTS+=($DATA)
t_hosts 4
t_agent 2   # web-2
t_agent 3   # db-1
# The storefront under a name of its own: other tests pause fl-demo-httpd by name.
cp "$HTTPD" "$T_TMP/flgd-web"
t_bg "${T_ID}-h1" httpd "$T_TMP/flgd-web" 10.231.1.2 8080
t_victim fl-recs; recs=$T_LAST_PID
t_victim fl-batch; batch=$T_LAST_PID
t_wait_for 10 t_listening "${T_ID}-h1" 8080 || fail "storefront did not start"
fl_run() { ip netns exec "$OPS" "$FAULTLINE" run --lock "$T_TMP/lock" "$@"; }

fl_run "$EXP/dependency-stall.yaml" --journal "$T_TMP/stall.json" --report-dir "$T_TMP/reports" \
  >"$T_TMP/stall.log" 2>&1
rc=$?
cat "$T_TMP/stall.log"
[ $rc -eq 0 ] || fail "dependency-stall exit $rc, expected 0"
[ "$(proc_state $recs)" != T ] || fail "fl-recs still paused"
n=$(grep -c '"type": "fault-apply"' "$T_TMP/stall.json")
[ "$n" -eq 2 ] || fail "expected 2 faults, got $n"
grep -q '"name": "storefront-burn"' "$T_TMP/stall.json" || fail "guardrail stats missing"
ls "$T_TMP/reports"/dependency-stall-*.html >/dev/null || fail "--report-dir wrote no HTML"
pass "dependency-stall held (exit 0), guardrails sampled, reports written"

fl_run "$EXP/disk-fill-guardrail.yaml" --journal "$T_TMP/disk.json" --report-dir "$T_TMP/reports" \
  --keep 1 >"$T_TMP/disk.log" 2>&1
rc=$?
cat "$T_TMP/disk.log"
[ $rc -eq 3 ] || fail "disk-fill-guardrail exit $rc, expected 3"
grep -q '"guardrail": "disk-headroom"' "$T_TMP/disk.json" || fail "no breach of disk-headroom"
[ "$(proc_state $batch)" != T ] || fail "fl-batch still paused after the abort"
use=$(df --output=pcent $DATA | tail -1 | tr -dc 0-9)
[ "$use" -lt 50 ] || fail "volume still ${use}% full after the abort"
[ "$(ls "$T_TMP/reports"/*.json | wc -l)" -eq 2 ] || fail "--keep 1 should leave one report per experiment: $(ls "$T_TMP/reports")"
pass "disk-fill-guardrail aborted at the headroom guardrail (exit 3); disk freed, batch job resumed; --keep pruned"
umount $DATA && rmdir $DATA /run/fl-gameday 2>/dev/null
T_MOUNTS=()
