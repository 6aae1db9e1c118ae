#!/usr/bin/busybox sh
# shellcheck shell=dash
# /init of the VM lane's initramfs (PID 1 in the guest). Never run on a host.
#
# Kernel command line (set by run-vm.sh):
#   fl.case=PATH        test script to run with bash (absolute guest path)
#   fl.modules=a,b      modules to modprobe first; a failure fails the run
#   fl.timeout=SECS     the case is killed after this long (rc 124)
# /etc/fl-vm.env (baked in) and /etc/fl-run.env (appended per run) are sourced.
# Always ends with a line "FL-VM-RESULT rc=N" on the console, then powers off.
BB=/usr/bin/busybox
export PATH=/usr/sbin:/usr/bin HOME=/root LC_ALL=C TERM=dumb

$BB mount -t devtmpfs -o mode=0755 dev /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1

rc=1
finish() {
  echo "FL-VM-RESULT rc=$rc"
  $BB sync
  $BB poweroff -f
  $BB sleep 5
}
trap finish EXIT

$BB mount -t proc proc /proc
$BB mount -t sysfs sys /sys
$BB mkdir -p /dev/pts /dev/shm /sys/fs/cgroup
$BB mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
$BB mount -t tmpfs -o mode=1777 tmpfs /dev/shm
# No tmpfs over /tmp: the initramfs root is already RAM, and a checkout
# that lives under /tmp (CI clones, scratch trees) is packed at its host
# path, which a fresh mount would hide.
$BB mkdir -p /tmp && $BB chmod 1777 /tmp
$BB mount -t tmpfs -o mode=0755 tmpfs /run
$BB mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
$BB ln -sf /proc/self/fd /dev/fd
$BB ln -sf /proc/self/fd/0 /dev/stdin
$BB ln -sf /proc/self/fd/1 /dev/stdout
$BB ln -sf /proc/self/fd/2 /dev/stderr
for c in cpu io memory pids; do
  echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || echo "fl-vm: cannot enable cgroup controller $c"
done
$BB hostname fl-vm
/usr/sbin/ip link set lo up

fl_case=""; fl_modules=""; fl_timeout=600
for w in $($BB cat /proc/cmdline); do
  case "$w" in
    fl.case=*) fl_case=${w#fl.case=} ;;
    fl.modules=*) fl_modules=${w#fl.modules=} ;;
    fl.timeout=*) fl_timeout=${w#fl.timeout=} ;;
  esac
done
set -a
. /etc/fl-vm.env
[ -f /etc/fl-run.env ] && . /etc/fl-run.env
set +a
export FL_VM=1

for m in $(echo "$fl_modules" | $BB tr ',' ' '); do
  /usr/sbin/modprobe "$m" || { echo "fl-vm: modprobe $m failed"; rc=1; exit; }
done

if [ -z "$fl_case" ] || [ ! -f "$fl_case" ]; then
  echo "fl-vm: no test case '$fl_case' in the initramfs"
  rc=1; exit
fi
echo "fl-vm: kernel $($BB uname -r), up $($BB cut -d' ' -f1 /proc/uptime) s; running $fl_case"
cd "$FL_SOURCE_DIR" || cd /
/usr/bin/timeout -k 5 "$fl_timeout" /usr/bin/bash "$fl_case" </dev/null
rc=$?
[ $rc -eq 124 ] && echo "fl-vm: $fl_case timed out after $fl_timeout s"
echo "fl-vm: case done, up $($BB cut -d' ' -f1 /proc/uptime) s"
exit
