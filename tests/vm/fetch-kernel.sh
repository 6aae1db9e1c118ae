#!/usr/bin/env bash
# Fetch Debian's stock kernel for the VM lane into a cache and print the
# directory holding it:
#
#   tests/vm/fetch-kernel.sh [--cache DIR]      # default: $FL_VM_CACHE or build/vm-cache
#
# The package is the one linux-image-amd64 depends on (apt-cache depends; the
# apt lists must be current: scripts/deps.sh runs apt-get update). It is
# downloaded with `apt-get download`, unpacked with `dpkg -x`, and reduced to
# what the lane uses:
#
#   DIR/<kver>/vmlinuz            the kernel
#   DIR/<kver>/config             its build config (what is =y, what is =m)
#   DIR/<kver>/lib/modules/<kver> modules of kernel/{net,lib,crypto,arch,block,mm,virt},
#                                 fs/{configfs,ext4,jbd2,mbcache,overlayfs,fuse,9p,
#                                 netfs,fscache}, drivers/{block,virtio,char/hw_random}
#                                 and the top-level drivers/net/*.ko (veth, ifb,
#                                 dummy, macvlan, ...), with depmod run on that set
#                                 (~65 MB; the .deb itself is not kept).
#   DIR/<kver>/.complete          written last; its presence means "reuse me"
#
# Reuse: when DIR/<kver>/.complete exists nothing is downloaded. When apt
# cannot resolve the package (no lists, offline) the newest complete cached
# kernel is used. Concurrent callers serialise on DIR/.lock.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
cache=${FL_VM_CACHE:-$src/build/vm-cache}
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) cache=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "fetch-kernel: unknown argument: $1" >&2; exit 2 ;;
  esac
done

die() { echo "fetch-kernel: $*" >&2; exit 1; }
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

newest_cached() {
  local d best=""
  for d in "$cache"/*/.complete; do
    [ -e "$d" ] || continue
    best=$(dirname "$d")
  done
  [ -n "$best" ] && echo "$best"
}

pkg=""
if command -v apt-cache >/dev/null; then
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/ {print $2; exit}') || true
fi
if [ -z "$pkg" ]; then
  if d=$(newest_cached); then
    echo "fetch-kernel: apt cannot resolve linux-image-amd64; using cached $(basename "$d")" >&2
    echo "$d"; exit 0
  fi
  die "cannot resolve linux-image-amd64 with apt-cache (run apt-get update; scripts/deps.sh does)"
fi
kver=${pkg#linux-image-}
out=$cache/$kver
if [ -e "$out/.complete" ]; then echo "$out"; exit 0; fi

exec 9>"$cache/.lock"
flock -w 600 9 || die "timed out waiting for $cache/.lock"
if [ -e "$out/.complete" ]; then echo "$out"; exit 0; fi

command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "needs apt-get and dpkg"
command -v depmod >/dev/null || die "needs depmod (apt-get install kmod)"
tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "fetch-kernel: downloading $pkg" >&2
(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) ||
  die "apt-get download $pkg failed (is Debian's archive reachable? did apt-get update run?)"
deb=$(ls "$tmp"/*.deb)
dpkg -x "$deb" "$tmp/x"
rm -f "$deb"

[ -f "$tmp/x/boot/vmlinuz-$kver" ] || die "no boot/vmlinuz-$kver in $pkg"
rm -rf "$out"
mkdir -p "$out/lib/modules/$kver/kernel"
cp "$tmp/x/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$tmp/x/boot/config-$kver" "$out/config"
m=$tmp/x/lib/modules/$kver
for f in modules.order modules.builtin modules.builtin.modinfo; do
  [ -f "$m/$f" ] && cp "$m/$f" "$out/lib/modules/$kver/"
done
keep=(net lib crypto arch block mm virt
  fs/configfs fs/ext4 fs/jbd2 fs/mbcache.ko fs/overlayfs fs/fuse fs/9p fs/netfs fs/fscache
  drivers/block drivers/virtio drivers/char/hw_random)
for k in "${keep[@]}"; do
  [ -e "$m/kernel/$k" ] || continue
  mkdir -p "$out/lib/modules/$kver/kernel/$(dirname "$k")"
  cp -a "$m/kernel/$k" "$out/lib/modules/$kver/kernel/$k"
done
mkdir -p "$out/lib/modules/$kver/kernel/drivers/net"
cp "$m"/kernel/drivers/net/*.ko "$out/lib/modules/$kver/kernel/drivers/net/"
# Debian 6.1 ships uncompressed modules; decompress if a later one does not.
find "$out/lib/modules" -name '*.ko.xz' -exec xz -d {} + 2>/dev/null || true
find "$out/lib/modules" -name '*.ko.zst' -exec zstd -q --rm -d {} + 2>/dev/null || true
depmod -b "$out" "$kver"
touch "$out/.complete"
echo "fetch-kernel: $kver ready in $out ($(du -sh "$out" | cut -f1))" >&2
echo "$out"
