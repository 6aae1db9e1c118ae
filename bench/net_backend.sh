#!/bin/bash
# net_backend.sh: run bench/net_backend (the agent's net-loss and
# net-bandwidth backends timed in-process, prepare+apply+verify and
# revert, side by side with exec'ing tc/nft) inside two network namespaces
# this script creates and removes, joined by a veth pair; the host's own
# interfaces are never touched.
#
#   sudo bench/net_backend.sh [BUILD_DIR] [COUNT] [NET_BACKEND_OPTION...]
#
# e.g. `... build/bench 1000 --only fl-bw` (one scenario, caches warm);
# FL_BENCH_WARM_KEYS=1: see bench/netns_pair.sh.
# BUILD_DIR defaults to build/bench (it must hold bench/net_backend);
# COUNT defaults to 1000. Needs root, iproute2, tc, nft.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/bench}
count=${2:-1000}
bench=$build/bench/net_backend
[ "$(id -u)" -eq 0 ] || { echo "net_backend.sh: needs root (namespaces)" >&2; exit 2; }
[ -x "$bench" ] || { echo "net_backend.sh: build $bench first" >&2; exit 2; }
case "$count" in ''|*[!0-9]*) echo "net_backend.sh: COUNT must be a number" >&2; exit 2 ;; esac

. "$root/bench/netns_pair.sh"
netns_pair flnk
echo "== $(command -v tc): $(tc -V 2>&1 | head -1); $(command -v nft): $(nft --version)"
echo "== net_backend; loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"
run_bench "$bench" --netns "$ns_a" --ifname nb0 --dst 10.233.1.2 --count "$count" "${@:3}"
echo "== loadavg after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine inflates the tails)"
