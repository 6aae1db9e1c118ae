#!/usr/bin/env bash
# cgroup-scoped network fault: net-loss with cgroup= hits the traffic of a
# process in that cgroup and not its neighbour's, sending from the same host
# to the same destination. First through the cgroup2 hierarchy (the unified
# mount on a hybrid host like this one, the root on a v2 host; nft `socket
# cgroupv2`), then through a cgroup v1 net_cls hierarchy the test mounts
# (nft `meta cgroup` on the classid the fault gives the cgroup, restored to
# 0 on revert).
. "$(dirname "$0")/lib.sh"
t_setup
NT=$FL_BUILD_DIR/tests/fl-nettool
CG2=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
[ -n "$CG2" ] || skip "no cgroup2 hierarchy mounted on this host"
case "$CG2" in /sys/fs/cgroup|/sys/fs/cgroup/*) ;; *) skip "cgroup2 at $CG2, outside /sys/fs/cgroup" ;; esac
command -v nsenter >/dev/null || skip "nsenter (util-linux) missing"
t_hosts 1
t_inventory 1
CGNAME="fl-net-$$"
mkdir "$CG2/$CGNAME" || fail "cannot create $CG2/$CGNAME"
NCLS=""
cleanup_cg() { rmdir "$CG2/$CGNAME" 2>/dev/null; [ -z "$NCLS" ] || rmdir "$NCLS/$CGNAME" 2>/dev/null; }
trap 'rc=$?; cleanup_cg; (exit $rc); t_cleanup' EXIT
# `ip netns exec` remounts /sys, hiding the cgroup mounts; nsenter --net
# changes only the network namespace, as a systemd-run agent would see it.
mkdir -p "$T_TMP/state1"; chmod 700 "$T_TMP/state1"
t_bg - agent1 nsenter --net=/run/netns/"${T_ID}-h1" "$AGENT" --foreground \
  --listen tcp://10.231.1.2:7070 --state-dir "$T_TMP/state1"
t_wait_for 10 t_listening "${T_ID}-h1" 7070 || fail "agent did not start: $(cat $T_TMP/agent1.log)"

out=$(t_fl inject h1 net-loss percent=50 cgroup=does-not-exist-$$ --duration 2s 2>&1); rc=$?
[ $rc -eq 2 ] || fail "missing cgroup should be refused (exit 2), got $rc: $out"
pass "unknown cgroup refused: $(echo "$out" | head -1)"

t_bg "$OPS" loss "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 net-loss percent=50 \
  cgroup="$CGNAME" protocol=udp --duration 60s
t_wait_for 5 grep -q applied "$T_TMP/loss.log" || fail "not applied: $(cat $T_TMP/loss.log)"
ip netns exec "${T_ID}-h1" nft list table inet faultline | grep -q "socket cgroupv2" || fail "no cgroupv2 match in the rule"

sink() { ip netns exec "$OPS" "$NT" udp-sink 10.231.1.1 "$1" 6 >"$T_TMP/sink$1.out"; }
# member_vs_neighbour PROCS_FILE LABEL: the member moves itself into the
# cgroup (PROCS_FILE) and sends; the neighbour sends from the same host to
# the same destination, outside it. 50 % loss must hit only the member.
member_vs_neighbour() {
  sink 9400 & local s1=$!
  sink 9401 & local s2=$!
  sleep 0.3
  bash -c "echo \$\$ > $1 && exec ip netns exec ${T_ID}-h1 $NT udp-send 10.231.1.1 9400 4000 2000" >/dev/null
  ip netns exec "${T_ID}-h1" "$NT" udp-send 10.231.1.1 9401 4000 2000 >/dev/null
  wait $s1 $s2
  member=$(awk '{print $2}' "$T_TMP/sink9400.out")
  neighbour=$(awk '{print $2}' "$T_TMP/sink9401.out")
  log "$2: in cgroup $member of 4000; neighbour $neighbour of 4000"
  [ "$member" -ge 1700 ] && [ "$member" -le 2300 ] || fail "$2: member received $member of 4000 under 50 % loss"
  [ "$neighbour" -eq 4000 ] || fail "$2: neighbour lost packets: $neighbour of 4000"
}
member_vs_neighbour "$CG2/$CGNAME/cgroup.procs" "cgroup v2"
pass "cgroup-scoped loss (v2): member $member/4000, neighbour $neighbour/4000"
t_fl abort >/dev/null
t_wait_for 5 bash -c "! ip netns exec ${T_ID}-h1 nft list table inet faultline >/dev/null 2>&1" || fail "table left"
pass "reverted, nothing left"

# --- cgroup v1: net_cls classid ------------------------------------------------
NCLS=$(awk '$3 == "cgroup" && $4 ~ /(^|,)net_cls(,|$)/ { print $2; exit }' /proc/self/mounts)
if [ -z "$NCLS" ]; then
  NCLS=$T_TMP/netcls; mkdir -p "$NCLS"
  mount -t cgroup -o net_cls fl-netcls "$NCLS" || skip "cannot mount a net_cls hierarchy (v1) here"
  T_MOUNTS+=("$NCLS")
fi
mkdir "$NCLS/$CGNAME" || fail "cannot create $NCLS/$CGNAME"
# Only in net_cls (the v2 group is gone), so the agent must take the v1 path.
rmdir "$CG2/$CGNAME"
[ "$(cat "$NCLS/$CGNAME/net_cls.classid")" = 0 ] || fail "fresh net_cls group has a classid"
t_bg "$OPS" loss1 "$FAULTLINE" -i "$T_TMP/inventory.yaml" inject h1 net-loss percent=50 \
  cgroup="$CGNAME" protocol=udp --duration 60s
t_wait_for 5 grep -q applied "$T_TMP/loss1.log" || fail "v1: not applied: $(cat $T_TMP/loss1.log)"
ip netns exec "${T_ID}-h1" nft list table inet faultline | grep -q "meta cgroup" || fail "v1: no meta cgroup match in the rule"
cls=$(cat "$NCLS/$CGNAME/net_cls.classid")
[ "$cls" != 0 ] || fail "v1: no classid given to the cgroup"
member_vs_neighbour "$NCLS/$CGNAME/cgroup.procs" "cgroup v1 net_cls"
pass "cgroup-scoped loss (v1 net_cls, classid $(printf 0x%08x "$cls")): member $member/4000, neighbour $neighbour/4000"
t_fl abort >/dev/null
t_wait_for 5 bash -c "! ip netns exec ${T_ID}-h1 nft list table inet faultline >/dev/null 2>&1" || fail "v1: table left"
[ "$(cat "$NCLS/$CGNAME/net_cls.classid")" = 0 ] || fail "v1: classid not restored: $(cat "$NCLS/$CGNAME/net_cls.classid")"
pass "v1 reverted: no table, net_cls.classid back to 0"
