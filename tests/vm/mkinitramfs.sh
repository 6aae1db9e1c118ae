#!/usr/bin/env bash
# Build the VM lane's initramfs and print its path:
#
#   tests/vm/mkinitramfs.sh --build-dir DIR [--kernel-dir KDIR] [--out FILE] [--force]
#
# KDIR is what fetch-kernel.sh prints (fetched when not given). FILE defaults
# to DIR/vm/initramfs.cpio.gz. Rebuilt only when an input changed (a
# fingerprint of every file that goes in, by path, size and mtime, is kept
# next to FILE); otherwise this takes well under a second.
#
# Contents (paths inside the guest):
#   /init                      tests/vm/init.sh (mounts, cgroup v2, modules, runs the case)
#   /usr/bin, /usr/sbin        real host tools (bash, dash as /bin/sh, coreutils, grep,
#                              sed, mawk, iproute2, nft, ping, kmod, mke2fs, util-linux,
#                              procps, curl) with their shared libraries; busybox applets
#                              fill in every other name
#   /lib/modules/<kver>        net/sched, netfilter (+ipv4/ipv6), veth ifb dummy macvlan
#                              overlay, loop, ext4, every module a case names in a
#                              "# vm-modules:" header, and their dependencies (depmod'ed)
#   $FL_SOURCE_DIR/tests/{host,vm}, experiments, packaging   at their host paths
#   $FL_BUILD_DIR/{agent,coordinator,tests}/...  built binaries at their host paths
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
build=""; kdir=""; out=""; force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=$2; shift 2 ;;
    --kernel-dir) kdir=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "mkinitramfs: unknown argument: $1" >&2; exit 2 ;;
  esac
done
die() { echo "mkinitramfs: $*" >&2; exit 1; }
[ -n "$build" ] || die "--build-dir is required"
build=$(cd "$build" && pwd)
[ -n "$kdir" ] || kdir=$("$here/fetch-kernel.sh")
kdir=$(cd "$kdir" && pwd)
kver=$(basename "$kdir")
[ -f "$kdir/vmlinuz" ] && [ -d "$kdir/lib/modules/$kver" ] || die "no kernel in $kdir"
out=${out:-$build/vm/initramfs.cpio.gz}
mkdir -p "$(dirname "$out")"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ---- what goes in ---------------------------------------------------------
# Host tools, by command name. All required: scripts/deps.sh installs them.
TOOLS=(bash dash
  cat cp mv rm mkdir rmdir ln ls chmod chown touch truncate mktemp basename dirname
  head tail tr wc sort uniq cut env id date sleep timeout stat seq dd df du sync
  nproc tee printf realpath readlink yes true false test nohup md5sum sha256sum od
  tac expr comm paste split
  grep sed mawk find xargs
  ps pgrep pkill kill free sysctl
  mount umount losetup nsenter unshare setsid flock taskset mountpoint chrt ionice prlimit
  ip tc ss bridge nft ping curl kmod mke2fs)
# Directories of modules always included (relative to lib/modules/<kver>).
MODULE_DIRS=(kernel/net/sched kernel/net/netfilter kernel/net/ipv4/netfilter
  kernel/net/ipv6/netfilter)
MODULES=(veth ifb dummy macvlan loop ext4 overlay)
# Project binaries (relative to the build dir); also every executable
# tests/test_* (unit tests) and tests/fl-* (test tools) that is built.
BUILT=(agent/faultline-agent coordinator/faultline tests/fl-demo-httpd tests/fl-wire-send)

# Modules named by any case's "# vm-modules: a,b" header.
case_modules() {
  local f
  for f in "$here"/cases/test_*.sh; do
    [ -f "$f" ] || continue
    sed -n '1,30{s/^# *vm-modules: *//p}' "$f" | tr ', ' '\n\n'
  done | awk 'NF' | sort -u
}

# Resolve tools.
declare -A tool_path=()
for t in "${TOOLS[@]}"; do
  p=$(type -P "$t" 2>/dev/null) || die "host tool '$t' not found (run scripts/deps.sh)"
  case "$p" in /*) ;; *) die "'$t' is not a file ($p)" ;; esac
  tool_path[$t]=$p
done
for b in "${BUILT[@]}"; do
  [ -x "$build/$b" ] || die "$build/$b not built (cmake --build $build)"
done
built_files=("${BUILT[@]/#/$build/}")
for f in "$build"/tests/test_* "$build"/tests/fl-*; do
  case " ${built_files[*]} " in *" $f "*) continue ;; esac
  [ -f "$f" ] && [ -x "$f" ] && built_files+=("$f")
done
busybox=$(command -v busybox) || die "busybox not found (apt-get install busybox-static)"
file "$busybox" 2>/dev/null | grep -q 'statically linked' ||
  ldd "$busybox" 2>&1 | grep -q 'not a dynamic' || die "$busybox is not static (install busybox-static)"

# Shared libraries of every ELF file (paths as ldd prints them) + libgcc_s,
# which glibc dlopens for pthread_cancel/exit.
elfs=("${tool_path[@]}" "${built_files[@]}")
mapfile -t libs < <(
  for e in "${elfs[@]}"; do ldd "$e" 2>/dev/null || true; done |
    awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i}' | sort -u
  l=/usr/lib/x86_64-linux-gnu/libgcc_s.so.1; if [ -e "$l" ]; then echo "$l"; fi)
for l in "${libs[@]}"; do [ -e "$l" ] || die "library $l (from ldd) missing"; done

# Modules: closure of the wanted set over depmod's data, via the host's kmod.
mdir=$kdir/lib/modules/$kver
mapfile -t mod_names < <(
  for d in "${MODULE_DIRS[@]}"; do find "$mdir/$d" -name '*.ko' 2>/dev/null; done |
    sed 's|.*/||; s|\.ko$||'
  printf '%s\n' "${MODULES[@]}"
  case_modules)
mapfile -t mod_files < <(
  modprobe -d "$kdir" -S "$kver" -a --show-depends "${mod_names[@]}" 2>/tmp/.fl-vm-mod.$$ |
    awk '$1 == "insmod" {print $2}' | sort -u)
if [ -s /tmp/.fl-vm-mod.$$ ]; then
  cat /tmp/.fl-vm-mod.$$ >&2; rm -f /tmp/.fl-vm-mod.$$
  die "some modules are not in the cached kernel (see above; a case's '# vm-modules:' header?)"
fi
rm -f /tmp/.fl-vm-mod.$$

src_files=()
for d in tests/host tests/vm experiments packaging; do
  [ -d "$src/$d" ] || continue
  while IFS= read -r f; do src_files+=("$f"); done < <(find "$src/$d" -type f ! -name '*.log' \
    ! -path "$src/tests/vm/run-vm.sh" ! -path "$src/tests/vm/fetch-kernel.sh" \
    ! -path "$src/tests/vm/mkinitramfs.sh" ! -path "$src/tests/vm/README.md" | sort)
done
etc_files=(/etc/mke2fs.conf /etc/protocols /etc/services /etc/ethertypes)
extra_dirs=(/etc/iproute2 /usr/lib/x86_64-linux-gnu/tc)

# ---- up to date? ----------------------------------------------------------
fingerprint() {
  {
    echo "kernel $kdir"; echo "busybox $busybox"
    for t in "${!tool_path[@]}"; do echo "tool $t ${tool_path[$t]}"; done | sort
    stat -L -c '%n %s %Y' "$here/mkinitramfs.sh" "$here/init.sh" "$busybox" "$kdir/vmlinuz" "$kdir/config" "$mdir/modules.dep" \
      "${tool_path[@]}" "${built_files[@]}" "${libs[@]}" "${src_files[@]}" "${mod_files[@]}" \
      "${etc_files[@]}" 2>/dev/null
  } | sha256sum | cut -d' ' -f1
}
exec 8>"$out.lock"
flock -w 300 8 || die "timed out waiting for $out.lock"
fp=$(fingerprint)
if [ "$force" = 0 ] && [ -f "$out" ] && [ "$(cat "$out.fingerprint" 2>/dev/null)" = "$fp" ]; then
  echo "$out"; exit 0
fi

# ---- stage ----------------------------------------------------------------
t0=$(date +%s%N)
stage=$(mktemp -d "$(dirname "$out")/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cd "$stage"
mkdir -p usr/bin usr/sbin usr/lib usr/lib64 etc root proc sys dev run tmp mnt var
ln -s usr/bin bin; ln -s usr/sbin sbin; ln -s usr/lib lib; ln -s usr/lib64 lib64
ln -s ../run var/run
chmod 1777 tmp

# put SRC [DST]: copy following symlinks to DST (default: same path) in stage.
put() {
  local s=$1 d=${2:-$1}
  case "$d" in /bin/*|/sbin/*|/lib/*|/lib64/*) d=/usr$d ;; esac
  mkdir -p "$stage$(dirname "$d")"
  cp -L --preserve=mode "$s" "$stage$d"
}

for t in "${!tool_path[@]}"; do
  p=${tool_path[$t]}
  case "$t" in
    mawk) put "$p" /usr/bin/mawk; ln -sf mawk usr/bin/awk ;;
    dash) put "$p" /usr/bin/dash; ln -sf dash usr/bin/sh ;;
    kmod) put "$p" /usr/bin/kmod
          for a in modprobe insmod rmmod lsmod modinfo depmod; do ln -sf ../bin/kmod usr/sbin/$a; done ;;
    mke2fs) put "$p" /usr/sbin/mke2fs
          for a in mkfs.ext4 mkfs.ext3 mkfs.ext2; do ln -sf mke2fs usr/sbin/$a; done ;;
    *) put "$p" ;;
  esac
done
for l in "${libs[@]}"; do put "$l"; done
for f in "${built_files[@]}" "${src_files[@]}"; do put "$f"; done
for f in "${etc_files[@]}"; do [ -f "$f" ] && put "$f"; done
for d in "${extra_dirs[@]}"; do
  [ -d "$d" ] || continue
  mkdir -p "$stage$d"; cp -rL "$d/." "$stage$d/"
done

# busybox and its applets for every name no real tool took.
put "$busybox" /usr/bin/busybox
while IFS= read -r a; do
  n=${a##*/}
  [ -e "usr/bin/$n" ] || [ -L "usr/bin/$n" ] || [ -e "usr/sbin/$n" ] || [ -L "usr/sbin/$n" ] || ln -s busybox "usr/bin/$n"
done < <("$busybox" --list-full)
ln -sf ../bin/busybox usr/sbin/busybox

# Modules (+ depmod data for this subset).
for f in "${mod_files[@]}"; do put "$f" "/lib/modules/$kver/${f#"$mdir"/}"; done
for f in modules.order modules.builtin modules.builtin.modinfo; do
  [ -f "$mdir/$f" ] && put "$mdir/$f" "/lib/modules/$kver/$f"
done
depmod -b "$stage" "$kver"

cat >etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >etc/group <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
printf '127.0.0.1 localhost fl-vm\n::1 localhost ip6-localhost\n' >etc/hosts
printf 'passwd: files\ngroup: files\nhosts: files\n' >etc/nsswitch.conf
echo fl-vm >etc/hostname
: >etc/fstab
ln -s ../proc/self/mounts etc/mtab
cp "$here/init.sh" init; chmod 755 init
cp "$kdir/config" etc/fl-vm-kernel.config
cat >etc/fl-vm.env <<EOF
FL_VM_KVER='$kver'
FL_SOURCE_DIR='$src'
FL_BUILD_DIR='$build'
EOF
mknod -m 600 dev/console c 5 1 2>/dev/null || true
mknod -m 666 dev/null c 1 3 2>/dev/null || true

tmp_out=$(mktemp "$(dirname "$out")/.initramfs.XXXXXX")
find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -1 -n >"$tmp_out"
chmod 644 "$tmp_out"
mv -f "$tmp_out" "$out"
echo "$fp" >"$out.fingerprint"
t1=$(date +%s%N)
echo "mkinitramfs: $out: $(du -sh "$stage" | cut -f1) staged, $(du -h "$out" | cut -f1) packed," \
  "${#mod_files[@]} modules, $(( (t1 - t0) / 1000000 )) ms" >&2
echo "$out"
