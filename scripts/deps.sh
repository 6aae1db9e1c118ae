#!/usr/bin/env bash
# Install everything faultline needs to build, test and run its demo, from
# Debian's archive. Safe to run again.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang clang-format
  libnl-3-dev libnl-route-3-dev libnl-nf-3-dev libnftables-dev libnftnl-dev libmnl-dev
  libnng-dev libmsgpack-dev libseccomp-dev libyaml-dev libjansson-dev
  libcurl4-openssl-dev libcmocka-dev libmbedtls-dev
  iproute2 e2fsprogs util-linux procps curl
  stress-ng
  python3 prometheus chromium
  qemu-system-x86 busybox-static cpio kmod nftables iputils-ping
  lintian rpm systemd man-db
)

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: run as root (sudo) to install packages" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
