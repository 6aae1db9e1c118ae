#!/usr/bin/env bash
# nfq_delayer.sh: the NFQUEUE delayer (net-delay backend=nfqueue) measured
# in the host lane: added-delay error at 10 ms and 10 kpps, added latency
# at delay ~0, packets/s through one queue (64-byte UDP floods). On this
# machine's kernel nf_tables has no native `queue`; the agent then uses the
# xtables NFQUEUE target through nft_compat. Two namespaces joined by veth,
# made and removed by the host test fixture (tests/host/lib.sh).
#
#   sudo bench/nfq_delayer.sh [BUILD_DIR]      (default build/dev; Release for figures)
#
# The body, shared with the VM lane's tests/vm/cases/bench_nfq_delayer.sh,
# is tests/host/nfq_delayer_bench.sh (sizes: FL_BENCH_N, FL_BENCH_LOW_N,
# FL_BENCH_FLOOD_N, FL_BENCH_PPS).
src=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; exit 77; }
if [ $# -ge 1 ]; then FL_BUILD_DIR=$(cd "$1" && pwd); export FL_BUILD_DIR; fi
. "$src/tests/host/lib.sh"
. "$src/tests/host/nfq_delayer_bench.sh"
