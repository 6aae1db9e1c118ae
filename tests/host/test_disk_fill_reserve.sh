#!/usr/bin/env bash
# disk-fill reserve= and inodes= on a loop-mounted ext4: reserve= leaves
# that many bytes free (within one 4 KiB block per MiB of slack), inodes=
# brings inode usage to the percentage (new files then fail with ENOSPC),
# and revert gives everything back.
. "$(dirname "$0")/lib.sh"
t_setup
command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 (e2fsprogs) not installed"
truncate -s 128M "$T_TMP/disk.img"
mkfs.ext4 -q -F -m 0 -N 4096 "$T_TMP/disk.img" || fail "mkfs"
mkdir "$T_TMP/mnt"
mount -o loop "$T_TMP/disk.img" "$T_TMP/mnt" || skip "cannot loop-mount here"
T_MOUNTS+=("$T_TMP/mnt")
t_hosts 1
t_inventory 1
t_agent 1

free_b() { stat -f -c '%f %S' "$T_TMP/mnt" | awk '{print $1 * $2}'; }
inodes_used_pct() { stat -f -c '%c %d' "$T_TMP/mnt" | awk '{printf "%.2f", 100.0 * ($1 - $2) / $1}'; }
before_free=$(free_b); before_in=$(inodes_used_pct)

# --- reserve=: leave exactly 10 MiB free -------------------------------
t_bg "$OPS" res "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 disk-fill path="$T_TMP/mnt" reserve=10M --duration 3s
inj=$T_LAST_PID
t_wait_for 5 grep -q applied "$T_TMP/res.log" || fail "reserve= not applied: $(cat "$T_TMP/res.log")"
left=$(free_b); want=$((10 << 20))
log "reserve=10M: $left bytes free (want $want)"
d=$(( left > want ? left - want : want - left ))
[ "$d" -le $((256 << 10)) ] || fail "free $left, want $want ± 256 KiB"
wait $inj || fail "inject failed"
[ "$(free_b)" -ge $(( before_free - (1 << 20) )) ] || fail "space not given back: $(free_b) < $before_free"
pass "reserve=10M left $left bytes free; restored"

# --- inodes=: 90 % of the inodes --------------------------------------
t_bg "$OPS" ino "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 disk-fill path="$T_TMP/mnt" inodes=90 --duration 3s
inj=$T_LAST_PID
t_wait_for 10 grep -q applied "$T_TMP/ino.log" || fail "inodes= not applied: $(cat "$T_TMP/ino.log")"
pct=$(inodes_used_pct)
log "inodes=90: ${pct}% of inodes used (before ${before_in}%)"
awk -v p="$pct" 'BEGIN { exit !(p >= 89.9 && p <= 91) }' || fail "inode use ${pct}% not at 90"
wait $inj || fail "inject failed"
ls -d "$T_TMP/mnt"/.faultline-ballast-* 2>/dev/null && fail "inode ballast left"
[ "$(inodes_used_pct)" = "$before_in" ] || fail "inodes not restored: $(inodes_used_pct) vs $before_in"
pass "inodes=90 reached ${pct}%; restored to ${before_in}%"

# --- inodes=100 with reserve=: both, then new files fail -----------------
t_bg "$OPS" both "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 disk-fill path="$T_TMP/mnt" inodes=100 reserve=20M --duration 3s
inj=$T_LAST_PID
t_wait_for 10 grep -q applied "$T_TMP/both.log" || fail "inodes=100 reserve=20M not applied: $(cat "$T_TMP/both.log")"
touch "$T_TMP/mnt/one-more" 2>"$T_TMP/touch.err" && fail "a new file was still possible"
grep -q "No space left" "$T_TMP/touch.err" || fail "unexpected error: $(cat "$T_TMP/touch.err")"
wait $inj || fail "inject failed"
touch "$T_TMP/mnt/one-more" || fail "cannot create files after revert"
rm -f "$T_TMP/mnt/one-more"
pass "inodes=100 + reserve=20M: new files fail with ENOSPC; fine after revert"

out=$(t_fl inject h1 disk-fill path="$T_TMP/mnt" reserve=1T --duration 1s 2>&1) && fail "reserve=1T accepted"
log "refused reserve=1T: $out"
pass "reserve above the free space refused"
