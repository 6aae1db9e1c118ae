#!/usr/bin/env bash
# Run one VM-lane test case in Debian's stock kernel under qemu (TCG).
#
#   tests/vm/run-vm.sh [--build-dir DIR] [--modules m1,m2] [--mem MB] [--smp N]
#                      [--timeout SECS] [--env NAME=VALUE]... [--keep-initrd] CASE.sh
#
#   --build-dir  cmake build dir whose binaries go in (default $FL_BUILD_DIR, else build/dev)
#   --modules    modprobe'd before the case, added to the case's "# vm-modules:" header
#   --mem        guest RAM in MB (default 1024)      --smp  guest CPUs (default 2)
#   --timeout    hard limit for boot + case + poweroff (default 240); the case
#                itself is stopped 30 s earlier so its output still arrives
#   --env        exported in the guest (repeatable); ASAN_/UBSAN_/LSAN_OPTIONS
#                and FL_TEST_* variables of this environment are passed too
#
# CASE.sh must live under tests/host, tests/vm or experiments of this source
# tree (they are in the initramfs at their host paths). The console streams
# to stdout and to DIR/vm/logs/<case>.log. Exit status: the case's (77 =
# skip), 1 when no "FL-VM-RESULT rc=N" line arrived (crash, timeout).
# Without qemu this exits 77 (skip) unless $CI is set, where it is a failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${FL_BUILD_DIR:-$src/build/dev}
extra_modules=""; mem=1024; smp=2; timeout_s=240; keep=0
envs=()
usage() { sed -n '2,20p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --modules) extra_modules=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --keep-initrd) keep=1; shift ;;
    -h|--help) usage ;;
    -*) echo "run-vm: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || usage
case_arg=$1

# A missing tool is a skip on a workstation, a failure in CI.
unavailable() {
  if [ -n "${CI:-}" ]; then echo "run-vm: FAIL: $* (CI is set: the VM lane must run)" >&2; exit 1; fi
  echo "SKIP: $* (run scripts/deps.sh)"; exit 77
}
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
qemu=${FL_VM_QEMU:-$(type -P qemu-system-x86_64)} || true
[ -n "$qemu" ] && [ -x "$qemu" ] || unavailable "qemu-system-x86_64 ${FL_VM_QEMU:+($FL_VM_QEMU) }not installed (package qemu-system-x86)"
for t in cpio busybox depmod apt-get dpkg; do
  type -P "$t" >/dev/null || unavailable "$t not installed (packages cpio busybox-static kmod)"
done

[ -f "$case_arg" ] || { echo "run-vm: no such case: $case_arg" >&2; exit 2; }
case_path=$(cd "$(dirname "$case_arg")" && pwd)/$(basename "$case_arg")
case "$case_path" in
  "$src"/tests/host/*|"$src"/tests/vm/*|"$src"/experiments/*) ;;
  *) echo "run-vm: $case_path is outside tests/host, tests/vm and experiments of $src" >&2; exit 2 ;;
esac
[ -d "$build" ] || { echo "run-vm: build dir $build does not exist" >&2; exit 2; }
build=$(cd "$build" && pwd)
name=$(basename "$case_path" .sh)

# Modules: the case's header ("# vm-modules: a,b" in its first 30 lines) + --modules.
modules=$( { sed -n '1,30{s/^# *vm-modules: *//p}' "$case_path"; echo "$extra_modules"; } |
  tr ', ' '\n\n' | awk 'NF && !seen[$0]++' | paste -sd, -)

kdir=$("$here/fetch-kernel.sh") || { echo "run-vm: cannot fetch the kernel" >&2; exit 1; }
initramfs=$("$here/mkinitramfs.sh" --build-dir "$build" --kernel-dir "$kdir") ||
  { echo "run-vm: cannot build the initramfs" >&2; exit 1; }

logdir=$build/vm/logs
mkdir -p "$logdir"
log=$logdir/$name.log
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fl-vm.XXXXXX")
qpid=""
cleanup() {
  local rc=$?
  set +e
  if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
    kill -TERM "$qpid" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qpid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$qpid" 2>/dev/null
  fi
  [ "$keep" = 1 ] && echo "run-vm: kept $tmp" >&2 || rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Per-run environment, appended to the initramfs as a second cpio archive.
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
mkdir -p "$tmp/run/etc"
{
  for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS $(compgen -v FL_TEST_ || true); do
    [ -n "${!v+x}" ] && echo "$v=$(q "${!v}")"
  done
  for e in ${envs[@]+"${envs[@]}"}; do
    case "$e" in [A-Za-z_]*=*) echo "${e%%=*}=$(q "${e#*=}")" ;; *) echo "run-vm: bad --env $e" >&2; exit 2 ;; esac
  done
  echo "FL_VM_CASE=$(q "$case_path")"
  echo "FL_VM_MODULES=$(q "$modules")"
} >"$tmp/run/etc/fl-run.env"
(cd "$tmp/run" && find . -mindepth 1 | cpio -o -H newc --quiet -R 0:0 | gzip -n) >"$tmp/run.cpio.gz"
cat "$initramfs" "$tmp/run.cpio.gz" >"$tmp/initrd"

guest_timeout=$(( timeout_s > 60 ? timeout_s - 30 : timeout_s / 2 ))
append="console=ttyS0 panic=-1 quiet mitigations=off fl.case=$case_path fl.timeout=$guest_timeout"
[ -n "$modules" ] && append="$append fl.modules=$modules"

echo "run-vm: $name: kernel $(basename "$kdir"), modules ${modules:-none}, timeout ${timeout_s}s, log $log"
: >"$log"
start=$(date +%s%N)
"$qemu" -accel tcg,thread=multi -nodefaults -no-user-config -display none -monitor none \
  -no-reboot -m "$mem" -smp "$smp" \
  -kernel "$kdir/vmlinuz" -initrd "$tmp/initrd" -append "$append" \
  -serial "file:$log" </dev/null >"$tmp/qemu.out" 2>&1 &
qpid=$!
# Stream the console while qemu runs; stop it at the deadline.
tail -n +1 -s 0.2 -f --pid="$qpid" "$log" | sed -u 's/\r$//' &
tailpid=$!
timed_out=0
deadline=$(( $(date +%s) + timeout_s ))
while kill -0 "$qpid" 2>/dev/null; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    timed_out=1
    echo "run-vm: $name: timeout after ${timeout_s}s, killing qemu" >&2
    kill -TERM "$qpid" 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qpid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$qpid" 2>/dev/null || true
    break
  fi
  sleep 0.2
done
qrc=0; wait "$qpid" || qrc=$?
qpid=""
wait "$tailpid" 2>/dev/null || true
took=$(( ($(date +%s%N) - start) / 1000000 ))
sed -i 's/\r$//' "$log"
if [ -s "$tmp/qemu.out" ]; then { echo "--- qemu said:"; cat "$tmp/qemu.out"; } | tee -a "$log"; fi

result=$(grep -a '^FL-VM-RESULT rc=' "$log" | tail -n 1 | sed 's/^FL-VM-RESULT rc=//; s/[^0-9].*//') || true
if [ -z "$result" ]; then
  if [ $timed_out = 1 ]; then
    echo "run-vm: FAIL: $name: no result within ${timeout_s}s (guest hung?); console log: $log"
  else
    echo "run-vm: FAIL: $name: qemu exited ($qrc) without an FL-VM-RESULT line (guest crash or panic?); console log: $log"
  fi
  exit 1
fi
echo "run-vm: $name: rc=$result in $(( took / 1000 )).$(( took % 1000 / 100 )) s (boot to poweroff)"
exit "$result"
