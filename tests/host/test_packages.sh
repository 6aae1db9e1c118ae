#!/usr/bin/env bash
# The .deb and .rpm packages, built by CPack from this build dir, end to end:
#   - both .debs and both .rpms are made (cpack reuses the build: seconds);
#     names carry the binaries' own version;
#   - lintian: no error on either .deb (warnings are printed; overrides are
#     shipped in packaging/lintian/ with their reasons);
#   - rpm -qpl / -qpR / -qpc: files, Fedora dependencies, %config, the 0700
#     state directory, the unit in /usr/lib/systemd/system, a %changelog;
#   - the .debs install with dpkg into a throw-away root (--root with
#     --force-script-chrootless, so the maintainer scripts really run, under
#     DPKG_ROOT, and nothing on this machine changes). Dependencies are
#     checked for real: the root's status database holds this machine's
#     entries for exactly the packages the .debs depend on;
#   - the installed binaries, with the shipped agent.yaml and inventory.yaml
#     unchanged, run in a network namespace: agents, one process-pause round
#     trip, every shipped experiment validates;
#   - systemd-analyze verify and an offline security score for the unit;
#   - reinstall (upgrade path) keeps a locally edited conffile;
#   - remove: prerm reverts a fault left by a SIGKILLed agent; purge
#     deletes state and config and leaves nothing behind.
# Missing tools are a skip here and a failure in CI (scripts/deps.sh
# installs them).
. "$(dirname "$0")/lib.sh"

missing=()
for t in cpack dpkg dpkg-deb dpkg-shlibdeps rpmbuild rpm lintian systemd-analyze apt-get gzip; do
  command -v "$t" >/dev/null || missing+=("$t")
done
if [ ${#missing[@]} -gt 0 ]; then
  msg="packaging tools missing: ${missing[*]} (packages dpkg-dev rpm lintian systemd; run scripts/deps.sh)"
  [ -n "${CI:-}" ] && { echo "FAIL: $msg (CI is set: this test must run)"; exit 1; }
  skip "$msg"
fi
t_setup
[ -f "$FL_BUILD_DIR/CPackConfig.cmake" ] || fail "no CPackConfig.cmake in $FL_BUILD_DIR (re-run cmake)"

ver=$("$FAULTLINE" --version | awk '{print $2}')
[ -n "$ver" ] || fail "cannot read the version of $FAULTLINE"
rel=$(sed -n 's/^set(CPACK_DEBIAN_PACKAGE_RELEASE "\(.*\)")$/\1/p' "$FL_BUILD_DIR/CPackConfig.cmake")
[ -n "$rel" ] || rel=1
arch=$(dpkg --print-architecture)
rarch=$(uname -m)
PK=$T_TMP/packages
t0=$(now_ms)
cpack -G "DEB;RPM" --config "$FL_BUILD_DIR/CPackConfig.cmake" -B "$PK" >"$T_TMP/cpack.log" 2>&1 ||
  { cat "$T_TMP/cpack.log"; fail "cpack failed"; }
grep -i 'CMake Warning\|CMake Error' "$T_TMP/cpack.log" && fail "cpack warned (see above)"
AGENT_DEB=$PK/faultline-agent_${ver}-${rel}_${arch}.deb
COORD_DEB=$PK/faultline_${ver}-${rel}_${arch}.deb
AGENT_RPM=$PK/faultline-agent-${ver}-${rel}.${rarch}.rpm
COORD_RPM=$PK/faultline-${ver}-${rel}.${rarch}.rpm
for f in "$AGENT_DEB" "$COORD_DEB" "$AGENT_RPM" "$COORD_RPM"; do
  [ -f "$f" ] || { ls -l "$PK"; fail "cpack did not make $(basename "$f")"; }
done
pass "cpack: 2 .deb + 2 .rpm for version $ver-$rel in $(( $(now_ms) - t0 )) ms"

# ---- .deb contents and metadata ------------------------------------------
contents() { dpkg-deb -c "$1" | awk '{print $1, $6}'; }
has() { # has LISTING MODE PATH
  grep -qx -- "$2 ./${3#/}" <<<"$1" || fail "$4: no $3 with mode $2"
}
a=$(contents "$AGENT_DEB"); c=$(contents "$COORD_DEB")
has "$a" -rwxr-xr-x /usr/sbin/faultline-agent agent.deb
has "$a" -rw-r--r-- /etc/faultline/agent.yaml agent.deb
has "$a" -rw-r--r-- /lib/systemd/system/faultline-agent.service agent.deb
has "$a" -rw-r--r-- /usr/share/man/man8/faultline-agent.8.gz agent.deb
has "$a" -rw-r--r-- /usr/share/doc/faultline-agent/copyright agent.deb
has "$a" -rw-r--r-- /usr/share/doc/faultline-agent/changelog.Debian.gz agent.deb
has "$c" -rwxr-xr-x /usr/bin/faultline coordinator.deb
has "$c" -rw-r--r-- /etc/faultline/inventory.yaml coordinator.deb
has "$c" -rw-r--r-- /etc/cron.d/faultline coordinator.deb
has "$c" -rw-r--r-- /usr/share/man/man1/faultline.1.gz coordinator.deb
has "$c" -rw-r--r-- /usr/share/man/man5/faultline-experiment.5.gz coordinator.deb
has "$c" -rw-r--r-- /usr/share/faultline/experiments/primary-failover-drill.yaml coordinator.deb
grep -q 'faultline-agent\|/usr/sbin' <<<"$c" && fail "coordinator.deb holds agent files"
grep -q '/usr/bin/faultline$' <<<"$a" && fail "agent.deb holds the coordinator"
n_exp=$(find "$FL_SOURCE_DIR/experiments" -type f | wc -l)
n_pkg=$(grep -c '^-.* ./usr/share/faultline/experiments/' <<<"$c")
[ "$n_exp" -eq "$n_pkg" ] || fail "experiments: $n_pkg packaged, $n_exp in the tree"
[ "$(dpkg-deb --ctrl-tarfile "$AGENT_DEB" | tar -xO ./conffiles)" = /etc/faultline/agent.yaml ] ||
  fail "agent.deb: conffiles is not exactly /etc/faultline/agent.yaml"
[ "$(dpkg-deb --ctrl-tarfile "$COORD_DEB" | tar -xO ./conffiles | sort | paste -sd' ')" = \
  "/etc/cron.d/faultline /etc/faultline/inventory.yaml" ] || fail "coordinator.deb: wrong conffiles"
for p in libnftables1 libnl-3-200 libnl-route-3-200 libnl-nf-3-200 libnng1 libmsgpackc2 \
         libseccomp2 libyaml-0-2 libjansson4 libc6; do
  dpkg-deb -f "$AGENT_DEB" Depends | grep -qw "$p" || fail "agent.deb does not depend on $p"
  dpkg-deb -f "$COORD_DEB" Depends | grep -qw "$p" || fail "coordinator.deb does not depend on $p"
done
dpkg-deb -f "$COORD_DEB" Depends | grep -qw libcurl4 || fail "coordinator.deb does not depend on libcurl4"
dpkg-deb -f "$AGENT_DEB" Depends | grep -qw libcurl4 && fail "agent.deb depends on libcurl4"
[ "$(dpkg-deb -f "$AGENT_DEB" Version)" = "$ver-$rel" ] || fail "agent.deb version"
zcat <(dpkg-deb --fsys-tarfile "$AGENT_DEB" | tar -xO ./usr/share/doc/faultline-agent/changelog.Debian.gz) |
  head -1 | grep -q "^faultline ($ver-$rel) " || fail "changelog.Debian does not start with $ver-$rel"
pass "deb contents, conffiles, dependencies (dpkg-shlibdeps), changelog"

# ---- lintian -------------------------------------------------------------
lintian --fail-on error --tag-display-limit 0 "$AGENT_DEB" "$COORD_DEB" >"$T_TMP/lintian.log" 2>&1
rc=$?
grep -v 'running with root privileges' "$T_TMP/lintian.log" | sed 's/^/# lintian: /'
[ $rc -eq 0 ] || fail "lintian reported errors (exit $rc)"
pass "lintian: no errors"

# ---- .rpm -----------------------------------------------------------------
rq() { rpm -qp "$@" 2>/dev/null; }
al=$(rq -lv "$AGENT_RPM" | awk '{print $1, $9}'); cl=$(rq -lv "$COORD_RPM" | awk '{print $1, $9}')
rhas() { grep -qx -- "$2 $3" <<<"$1" || fail "$4: no $3 with mode $2"; }
rhas "$al" -rwxr-xr-x /usr/sbin/faultline-agent agent.rpm
rhas "$al" -rw-r--r-- /etc/faultline/agent.yaml agent.rpm
rhas "$al" -rw-r--r-- /usr/lib/systemd/system/faultline-agent.service agent.rpm
rhas "$al" drwx------ /var/lib/faultline agent.rpm
rhas "$al" -rw-r--r-- /usr/share/man/man8/faultline-agent.8.gz agent.rpm
rhas "$cl" -rwxr-xr-x /usr/bin/faultline coordinator.rpm
rhas "$cl" -rw-r--r-- /etc/cron.d/faultline coordinator.rpm
rhas "$cl" -rw-r--r-- /usr/share/man/man1/faultline.1.gz coordinator.rpm
rhas "$cl" -rw-r--r-- /usr/share/faultline/experiments/primary-failover-drill.yaml coordinator.rpm
grep -q ' /lib/\| /usr/share/lintian\|changelog.Debian' <<<"$al$cl" && fail "Debian-only paths in an rpm"
# Directories the distribution owns must not be claimed.
for d in /etc /usr /usr/sbin /usr/bin /usr/share/man /usr/lib/systemd /var/lib /etc/cron.d; do
  printf '%s\n%s\n' "$al" "$cl" | grep -qx "d[^ ]* $d" && fail "an rpm claims the system directory $d"
done
[ "$(rq -c "$AGENT_RPM")" = /etc/faultline/agent.yaml ] || fail "agent.rpm: %config list"
[ "$(rq -c "$COORD_RPM" | sort | paste -sd' ')" = "/etc/cron.d/faultline /etc/faultline/inventory.yaml" ] ||
  fail "coordinator.rpm: %config list"
rq --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$AGENT_RPM" | grep -qx 'cn /etc/faultline/agent.yaml' ||
  fail "agent.rpm: agent.yaml is not %config(noreplace)"
ar=$(rq -R "$AGENT_RPM"); cr=$(rq -R "$COORD_RPM")
for p in libnl3 nftables nng '(msgpack-c or msgpack)' libseccomp libyaml jansson glibc; do
  grep -qxF "$p" <<<"$ar" || fail "agent.rpm does not require $p"
  grep -qxF "$p" <<<"$cr" || fail "coordinator.rpm does not require $p"
done
grep -qx libcurl <<<"$cr" || fail "coordinator.rpm does not require libcurl"
grep -q '\.so' <<<"$ar$cr" && fail "an rpm requires Debian sonames (AUTOREQ should be off)"
rq --changelog "$AGENT_RPM" | grep -q -- "- $ver-$rel\$" || fail "agent.rpm: no %changelog entry for $ver-$rel"
rq --scripts "$AGENT_RPM" | grep -q 'faultline-agent --recover' || fail "agent.rpm: %preun does not recover"
pass "rpm files, %config, %dir 0700, Fedora requirements, %changelog, scriptlets"

# ---- install into a throw-away root ---------------------------------------
R=$T_TMP/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers"
: >"$R/var/lib/dpkg/available"
# Register this machine's dependency packages (only them) in the root, so
# dpkg checks the Depends fields against what is really installed here.
deps=$( { dpkg-deb -f "$AGENT_DEB" Depends; dpkg-deb -f "$COORD_DEB" Depends; } | tr ',' '\n' |
  sed 's/(.*)//; s/|.*//; s/ //g' | awk 'NF' | sort -u)
# shellcheck disable=SC2086
dpkg-query -s $deps >"$R/var/lib/dpkg/status" 2>"$T_TMP/dpkg-query.log" ||
  { cat "$T_TMP/dpkg-query.log"; fail "a dependency is not installed on this machine"; }
for p in $deps; do : >"$R/var/lib/dpkg/info/$p.list"; : >"$R/var/lib/dpkg/info/$p:$arch.list"; done
dpkgr() { dpkg --root="$R" --force-script-chrootless --force-not-root "$@"; }
dpkgr -i "$AGENT_DEB" "$COORD_DEB" >"$T_TMP/dpkg-install.log" 2>&1 ||
  { cat "$T_TMP/dpkg-install.log"; fail "dpkg -i into the throw-away root failed"; }
[ "$(stat -c '%a %U' "$R/var/lib/faultline")" = "700 root" ] ||
  fail "postinst did not make /var/lib/faultline 0700 root"
[ "$(dpkg-query --admindir="$R/var/lib/dpkg" -W -f '${Status}' faultline-agent)" = "install ok installed" ] ||
  fail "faultline-agent not configured"
pass "dpkg -i (chrootless, dependencies checked): postinst made /var/lib/faultline 0700"

# ---- the installed binaries, the shipped configs ---------------------------
IAGENT=$R/usr/sbin/faultline-agent
IFL=$R/usr/bin/faultline
[ "$("$IFL" --version | awk '{print $2}')" = "$ver" ] || fail "installed faultline --version"
t_hosts 1
H1="${T_ID}-h1"
# Exactly the shipped agent.yaml (listen on loopback) and inventory.yaml
# (the local agent on loopback); only the state dir lives in the root.
# It runs within the unit's CapabilityBoundingSet and with no_new_privs, as
# systemd would start it, so a capability the agent needs but the unit does
# not grant fails here.
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$R/lib/systemd/system/faultline-agent.service")
[ -n "$caps" ] || fail "unit has no CapabilityBoundingSet"
bset=-all$(for c in $caps; do c=${c#CAP_}; printf ',+%s' "${c,,}"; done)
command -v setpriv >/dev/null || fail "setpriv (util-linux) not installed"
t_bg "$H1" iagent setpriv --bounding-set "$bset" --no-new-privs \
  "$IAGENT" --foreground --config "$R/etc/faultline/agent.yaml" --state-dir "$R/var/lib/faultline"
IAGENT_PID=$T_LAST_PID
t_wait_for 10 t_listening "$H1" 7070 || fail "installed agent did not listen on 127.0.0.1:7070"
ifl() { ip netns exec "$H1" "$IFL" -i "$R/etc/faultline/inventory.yaml" "$@"; }
ifl agents >"$T_TMP/agents.out" 2>&1 || { cat "$T_TMP/agents.out"; fail "faultline agents"; }
grep -q "^local .* ok  *$ver " "$T_TMP/agents.out" || { cat "$T_TMP/agents.out"; fail "agents: local not ok"; }
paused() { [ "$(proc_state "$1")" = T ]; }
running() { ! paused "$1"; }
t_victim fl-pkgvictim; victim=$T_LAST_PID
ifl inject local process-pause pid=$victim --duration 2s >"$T_TMP/inject.out" 2>&1 &
inj=$!
t_wait_for 5 paused "$victim" || fail "installed agent did not pause the victim"
wait $inj || { cat "$T_TMP/inject.out"; fail "inject exited non-zero"; }
t_wait_for 3 running "$victim" || fail "victim still paused after the fault"
grep -q 'sandbox: .*installed' "$T_TMP/iagent.log" || fail "agent sandbox not installed within the unit's bounding set"
pass "installed agent (unit's bounding set: $caps) + coordinator, shipped configs: agents ok, process-pause round trip"

for f in "$R"/usr/share/faultline/experiments/*.yaml; do
  case "$f" in *inventory.yaml) continue ;; esac
  "$IFL" validate "$f" >"$T_TMP/validate.out" 2>&1 ||
    { cat "$T_TMP/validate.out"; fail "shipped $(basename "$f") does not validate"; }
done
pass "every shipped experiment validates"

if command -v man >/dev/null; then
  for m in man1/faultline.1.gz man5/faultline-experiment.5.gz man8/faultline-agent.8.gz; do
    out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$R/usr/share/man/$m" 2>&1 >/dev/null)
    [ -z "$out" ] || fail "man $m: $out"
  done
  pass "man pages render without groff warnings"
fi

# ---- the unit ---------------------------------------------------------------
U=$T_TMP/unit/faultline-agent.service
mkdir -p "$T_TMP/unit"
sed "s|/usr/sbin/faultline-agent|$IAGENT|g" "$R/lib/systemd/system/faultline-agent.service" >"$U"
MANPATH=$R/usr/share/man systemd-analyze verify "$U" >"$T_TMP/verify.log" 2>&1 ||
  { cat "$T_TMP/verify.log"; fail "systemd-analyze verify"; }
[ -s "$T_TMP/verify.log" ] && { cat "$T_TMP/verify.log"; fail "systemd-analyze verify printed warnings"; }
score=$(systemd-analyze security --offline=yes "$U" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
systemd-analyze security --offline=yes --threshold=40 "$U" >/dev/null 2>&1 ||
  fail "unit exposure $score is above 4.0 (systemd-analyze security --offline)"
for k in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=read-only Restart=on-failure \
         SystemCallArchitectures=native 'RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6' \
         "ExecStopPost=$IAGENT --recover --config /etc/faultline/agent.yaml"; do
  grep -qxF "$k" "$U" || fail "unit: no $k"
done
pass "unit: systemd-analyze verify clean, offline exposure $score (<= 4.0), hardening keys present"

# ---- upgrade keeps a local conffile change --------------------------------
echo "# local change $T_ID" >>"$R/etc/faultline/agent.yaml"
dpkgr -i "$AGENT_DEB" >"$T_TMP/dpkg-reinstall.log" 2>&1 ||
  { cat "$T_TMP/dpkg-reinstall.log"; fail "reinstall failed"; }
grep -q "local change $T_ID" "$R/etc/faultline/agent.yaml" || fail "reinstall dropped the local agent.yaml change"
pass "reinstall (prerm upgrade / postinst configure OLD) keeps the edited conffile"

# ---- remove reverts what a dead agent left; purge leaves nothing ------------
ifl inject local process-pause pid=$victim --duration 60s >"$T_TMP/inject2.out" 2>&1 &
inj=$!
t_wait_for 5 paused "$victim" || fail "second pause not applied"
kill -KILL "$IAGENT_PID"; kill -KILL $inj
wait "$IAGENT_PID" $inj 2>/dev/null
[ "$(proc_state $victim)" = T ] || fail "victim resumed although the agent was SIGKILLed"
dpkgr -r faultline-agent faultline >"$T_TMP/dpkg-remove.log" 2>&1 ||
  { cat "$T_TMP/dpkg-remove.log"; fail "dpkg -r failed"; }
[ "$(proc_state $victim)" != T ] || { cat "$T_TMP/dpkg-remove.log"; fail "prerm did not revert the leftover pause"; }
[ -e "$IAGENT" ] || [ -e "$IFL" ] && fail "binaries left after remove"
[ -f "$R/etc/faultline/agent.yaml" ] || fail "remove deleted the conffile (only purge may)"
[ -d "$R/var/lib/faultline" ] || fail "remove deleted the state dir (only purge may)"
pass "dpkg -r: prerm reverted the SIGKILLed agent's fault; config and state kept"
dpkgr -P faultline-agent faultline >"$T_TMP/dpkg-purge.log" 2>&1 ||
  { cat "$T_TMP/dpkg-purge.log"; fail "dpkg -P failed"; }
left=$(cd "$R" && find . -mindepth 1 ! -path './var/lib/dpkg*' ! -path ./var ! -path ./var/lib)
[ -z "$left" ] || fail "purge left: $left"
pass "dpkg -P: state, config and every file gone"
