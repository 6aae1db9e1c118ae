#!/usr/bin/env bash
# vm-modules: sch_netem
#
# The agent as the package installs it, on Debian's stock kernel: the
# files go to the packaged layout (/usr/sbin, /etc/faultline/agent.yaml,
# /lib/systemd/system) exactly as packaging/CMakeLists.txt installs them,
# the package's own postinst makes the state directory, the agent starts
# with the unit's ExecStartPre and ExecStart command lines and the shipped
# agent.yaml, the coordinator uses the shipped inventory.yaml, and one
# net-delay fault (netem) runs end to end: RTT up, then back, qdisc
# restored. Then the package's prerm (remove) and postrm (purge) run:
# nothing of the agent is left. The initramfs holds no dpkg, so this
# installs the payload by hand; tests/host/test_packages.sh installs the
# real .deb with dpkg (into a throw-away root) on the host.
. "$(dirname "$0")/../lib-vm.sh"
t_setup
P=$FL_SOURCE_DIR/packaging
NT=$FL_BUILD_DIR/tests/fl-nettool
[ -f "$P/faultline-agent.service" ] || fail "packaging/ is not in the initramfs"

# ---- install: the agent package's payload and postinst -------------------
# inst MODE SRC DST (the guest has no install(1))
inst() { mkdir -p "$(dirname "$3")" && cp "$2" "$3" && chmod "$1" "$3" || fail "cannot install $3"; }
inst 0755 "$AGENT" /usr/sbin/faultline-agent
inst 0755 "$FAULTLINE" /usr/bin/faultline
inst 0644 "$P/agent.yaml" /etc/faultline/agent.yaml
inst 0644 "$P/inventory.yaml" /etc/faultline/inventory.yaml
inst 0644 "$P/faultline-agent.service" /lib/systemd/system/faultline-agent.service
sh "$P/deb/postinst" configure "" || fail "postinst failed"
[ "$(stat -c '%a %U' /var/lib/faultline)" = "700 root" ] || fail "postinst did not make /var/lib/faultline 0700"
pass "packaged layout installed; postinst made /var/lib/faultline 0700"

unit=/lib/systemd/system/faultline-agent.service
pre=$(sed -n 's/^ExecStartPre=//p' "$unit"); start=$(sed -n 's/^ExecStart=//p' "$unit")
post=$(sed -n 's/^ExecStopPost=//p' "$unit")
[ -n "$pre" ] && [ -n "$start" ] && [ -n "$post" ] || fail "unit lacks ExecStartPre/ExecStart/ExecStopPost"

# ---- the agent in host 1, started the way the unit starts it ----------------
t_hosts 1
H1="${T_ID}-h1"
in_h1() { ip netns exec "$H1" "$@"; }
# shellcheck disable=SC2086
in_h1 $pre || fail "ExecStartPre ($pre) failed"
# shellcheck disable=SC2086
t_bg "$H1" agent $start
AGENT_PID=$T_LAST_PID
t_wait_for 15 t_listening "$H1" 7070 || fail "packaged agent did not listen on the shipped address"
fl() { in_h1 /usr/bin/faultline "$@"; }   # default inventory: /etc/faultline/inventory.yaml
out=$(fl agents) || fail "agents: $out"
echo "$out" | grep -q '^local .* ok ' || fail "agents: $out"
echo "$out" | grep -q 'net-delay(unavailable' && fail "netem not available: $out"
pass "agent up with the unit's command lines and the shipped configs"

# ---- one network fault end to end ---------------------------------------------
t_bg "$OPS" echo "$NT" udp-echo 10.231.1.1 9500 120
sleep 0.5
rtt() { in_h1 "$NT" rtt 10.231.1.1 9500 "$1" | awk '{print $3}'; }
QBEFORE=$(in_h1 tc qdisc show dev eth0)
base=$(rtt 10)
t_bg "$H1" inject /usr/bin/faultline inject local net-delay interface=eth0 delay=200ms --duration 8s
t_wait_for 20 grep -q applied "$T_TMP/inject.log" || fail "net-delay not applied: $(cat "$T_TMP/inject.log")"
grep -q netem "$T_TMP/inject.log" || fail "backend is not netem: $(cat "$T_TMP/inject.log")"
during=$(rtt 5)
log "RTT baseline ${base} ms, during the fault ${during} ms"
awk -v d="$during" -v b="$base" 'BEGIN { exit !(d >= b + 150) }' || fail "RTT ${during} ms, expected >= ${base} + 150 ms"
wait "$T_LAST_PID" || fail "inject exited non-zero: $(cat "$T_TMP/inject.log")"
after=$(rtt 10)
awk -v a="$after" -v b="$base" 'BEGIN { exit !(a < b + 100) }' || fail "RTT ${after} ms after the revert"
[ "$(in_h1 tc qdisc show dev eth0)" = "$QBEFORE" ] || fail "qdisc not restored: $(in_h1 tc qdisc show dev eth0)"
pass "net-delay via the packaged agent: RTT ${base} -> ${during} -> ${after} ms, qdisc restored"

# ---- stop as systemd would, then remove and purge ----------------------------
kill -TERM "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
# shellcheck disable=SC2086
in_h1 $post || fail "ExecStopPost ($post) failed"
sh "$P/deb/prerm" remove || fail "prerm failed"
rm -f /usr/sbin/faultline-agent /lib/systemd/system/faultline-agent.service   # dpkg's part
sh "$P/deb/postrm" remove || fail "postrm remove failed"
[ -d /var/lib/faultline ] || fail "postrm remove deleted the state dir"
sh "$P/deb/postrm" purge || fail "postrm purge failed"
[ -e /var/lib/faultline ] && fail "postrm purge left /var/lib/faultline"
pass "ExecStopPost, prerm remove, postrm remove/purge ran cleanly; state removed on purge"
