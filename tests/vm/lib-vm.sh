# shellcheck shell=bash
# Fixture for VM-lane cases: source it first thing in a case,
#
#   . "$(dirname "$0")/../lib-vm.sh"
#
# In the guest it sources tests/host/lib.sh (t_setup, t_hosts, t_agent,
# t_fl, t_victim, t_wait_for, skip/fail/pass/log ...; FL_BUILD_DIR and
# FL_SOURCE_DIR already point at the binaries and sources inside the guest)
# and adds the vm_* helpers below. On a host (FL_VM unset) it re-runs the
# case in a VM through tests/vm/run-vm.sh and exits with its status, so
# `bash tests/vm/cases/test_x.sh` works by hand too.
#
# Guest environment: FL_VM=1, FL_VM_KVER (kernel release), FL_VM_CASE,
# FL_VM_MODULES (what was modprobe'd), FL_BUILD_DIR, FL_SOURCE_DIR, plus
# ASAN_/UBSAN_/LSAN_OPTIONS and FL_TEST_* passed from the host.

if [ -z "${FL_VM:-}" ]; then
  _vm_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  exec bash "$_vm_here/run-vm.sh" ${FL_BUILD_DIR:+--build-dir "$FL_BUILD_DIR"} "$0"
fi

. "$FL_SOURCE_DIR/tests/host/lib.sh"

VM_CGROUPS=()

# `ip netns exec` gives the command a fresh /sys (for the namespace's own
# /sys/class/net) and so hides the cgroup2 mount at /sys/fs/cgroup. In this
# shell (and so in t_bg, t_agent, t_fl, t_listening) `ip netns exec NS CMD`
# mounts cgroup2 there again, in that command's private mount namespace,
# before exec'ing CMD: agents in test namespaces see cgroup v2 as they would
# on a real host. Other `ip` uses pass through unchanged.
# A script, not a shell function: `ip netns exec ... &` must start the
# command itself (every step execs), so $! is the command's pid and a
# test's `kill -KILL` hits the agent, not a subshell in front of it.
_vm_real_ip=$(command -v ip)
mkdir -p /run/fl-vm-bin
cat >/run/fl-vm-bin/ip <<EOS
#!/usr/bin/bash
if [ "\${1:-}" = netns ] && [ "\${2:-}" = exec ] && [ \$# -ge 4 ]; then
  ns=\$3; shift 3
  exec $_vm_real_ip netns exec "\$ns" /usr/bin/bash -c 'mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null; exec "\$@"' fl-netns "\$@"
fi
exec $_vm_real_ip "\$@"
EOS
chmod +x /run/fl-vm-bin/ip
PATH=/run/fl-vm-bin:$PATH

# Cgroups made with vm_cgroup are emptied (cgroup.kill) and removed after
# lib.sh's own cleanup has stopped the test's processes.
_vm_rc() { return "$1"; }
vm_cleanup() {
  local rc=$? cg i
  set +e
  for (( i = ${#VM_CGROUPS[@]} - 1; i >= 0; i-- )); do
    cg=${VM_CGROUPS[$i]}
    [ -d "$cg" ] || continue
    echo 1 >"$cg/cgroup.kill" 2>/dev/null
    for _ in $(seq 1 50); do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
  done
  _vm_rc "$rc"
  t_cleanup
}
trap vm_cleanup EXIT

# vm_module NAME...: modprobe each (fails the case if one cannot load).
vm_module() {
  local m
  for m in "$@"; do modprobe "$m" || fail "modprobe $m"; done
}

# vm_config CONFIG_X: prints y, m or nothing: how the guest kernel was built.
vm_config() {
  sed -n "s/^$1=//p" /etc/fl-vm-kernel.config 2>/dev/null
}

# vm_cgroup NAME: create /sys/fs/cgroup/<T_ID>-NAME (cpu io memory pids
# controllers available in it) and set VM_CG to its path; it is emptied and
# removed at exit. Call it directly, not in $(...) (the list is kept here).
vm_cgroup() {
  VM_CG=/sys/fs/cgroup/${T_ID}-$1
  mkdir "$VM_CG" || fail "cannot create cgroup $VM_CG"
  VM_CGROUPS+=("$VM_CG")
}
