#!/usr/bin/env bash
# disk-fill on a small loop-mounted ext4: reaches the requested level (±1
# point) and the revert gives the space back.
. "$(dirname "$0")/lib.sh"
t_setup
command -v mkfs.ext4 >/dev/null || skip "mkfs.ext4 (e2fsprogs) not installed"
truncate -s 128M "$T_TMP/disk.img"
mkfs.ext4 -q -F -m 0 "$T_TMP/disk.img" || fail "mkfs"
mkdir "$T_TMP/mnt"
mount -o loop "$T_TMP/disk.img" "$T_TMP/mnt" || skip "cannot loop-mount here"
T_MOUNTS+=("$T_TMP/mnt")
t_hosts 1
t_inventory 1
t_agent 1

used_pct() { df --output=pcent "$T_TMP/mnt" | tail -1 | tr -dc 0-9; }
used_bytes() { df -B1 --output=used "$T_TMP/mnt" | tail -1 | tr -dc 0-9; }
before=$(used_bytes)
before_pct=$(used_pct)
log "before: $before bytes used ($before_pct%)"

t_bg "$OPS" inject "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 disk-fill path="$T_TMP/mnt" percent=80 --duration 4s
inj=$T_LAST_PID
t_wait_for 5 bash -c "ls $T_TMP/mnt/.faultline-ballast-* " || fail "no ballast file"
sleep 0.3
pct=$(stat -f -c '%b %f' "$T_TMP/mnt" | awk '{printf "%.2f", 100.0 * ($1 - $2) / $1}')
log "during: ${pct}% used"
awk -v p="$pct" 'BEGIN { d = p - 80; exit !(d <= 1 && d >= -1) }' || fail "fill level ${pct}% not within 80±1"
pass "filled to ${pct}% (target 80%)"

wait $inj || fail "inject exited non-zero: $(cat $T_TMP/inject.log)"
ls "$T_TMP/mnt"/.faultline-ballast-* 2>/dev/null && fail "ballast left behind"
after=$(used_bytes)
log "after: $after bytes used"
[ $(( after - before )) -le 65536 ] && [ $(( before - after )) -le 65536 ] || fail "space not restored: before $before after $after"
pass "revert restored free space"

# bytes= form, reverted on Ctrl-C of the coordinator.
t_bg "$OPS" inject2 "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 disk-fill path="$T_TMP/mnt" bytes=32M --duration 60s
inj=$T_LAST_PID
t_wait_for 5 grep -q "applied" "$T_TMP/inject2.log" || fail "bytes= fill not applied: $(cat $T_TMP/inject2.log)"
f=$(ls "$T_TMP/mnt"/.faultline-ballast-*)
[ "$(stat -c %s "$f")" -eq $((32*1024*1024)) ] || fail "ballast size $(stat -c %s "$f")"
kill -INT $inj; wait $inj
grep -q "reverted" "$T_TMP/inject2.log" || fail "Ctrl-C did not revert: $(cat $T_TMP/inject2.log)"
ls "$T_TMP/mnt"/.faultline-ballast-* 2>/dev/null && fail "ballast left after Ctrl-C"
pass "bytes=32M exact, reverted on Ctrl-C"

# Bad input: relative path, above 100%, missing size.
for bad in "path=relative percent=50" "path=$T_TMP/mnt percent=150" "path=$T_TMP/mnt"; do
  out=$(t_fl inject h1 disk-fill $bad --duration 1s 2>&1); rc=$?
  [ $rc -eq 2 ] || fail "'$bad' should exit 2, got $rc: $out"
  log "refused '$bad': $out"
done
pass "bad disk-fill parameters refused"
