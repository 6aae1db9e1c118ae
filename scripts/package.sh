#!/usr/bin/env bash
# Build the release (hardened) binaries and the four packages:
#
#   ./scripts/package.sh            # -> build/packages/*.deb, *.rpm
#   ./scripts/package.sh --no-build # package the current build/release as is
#
#   faultline-agent_<v>-<r>_amd64.deb   faultline_<v>-<r>_amd64.deb
#   faultline-agent-<v>-<r>.x86_64.rpm  faultline-<v>-<r>.x86_64.rpm
#
# Needs dpkg-dev (dpkg-shlibdeps) and rpm (rpmbuild); scripts/deps.sh
# installs them. Runs lintian on the .debs when it is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    *) echo "usage: $0 [--no-build]" >&2; exit 2 ;;
  esac
done
for t in cpack dpkg-shlibdeps rpmbuild; do
  command -v "$t" >/dev/null || { echo "package.sh: $t not found (run scripts/deps.sh)" >&2; exit 1; }
done

if [ "$build" = 1 ]; then
  cmake --preset release
  cmake --build --preset release -j"$(nproc)"
fi
out=build/packages
rm -rf "$out"
mkdir -p "$out"
cpack -G "DEB;RPM" --config build/release/CPackConfig.cmake -B "$out"
rm -rf "$out/_CPack_Packages"
if command -v lintian >/dev/null; then
  lintian --fail-on error,warning "$out"/*.deb
fi
ls -l "$out"
