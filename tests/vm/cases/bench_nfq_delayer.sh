#!/usr/bin/env bash
# vm-modules: nft_queue,nfnetlink_queue
#
# BENCH, not a test (ctest registers only tests/vm/cases/test_*.sh): the
# NFQUEUE-delayer bench in the VM lane (Debian's stock kernel under TCG,
# native nft `queue`). The body is shared with the host lane's
# bench/nfq_delayer.sh; see tests/host/nfq_delayer_bench.sh.
#
#   cmake --build BUILD        # everything: the initramfs packs the test tools too
#   tests/vm/run-vm.sh --build-dir BUILD --timeout 900 tests/vm/cases/bench_nfq_delayer.sh
. "$(dirname "$0")/../lib-vm.sh"
# TCG emulates every instruction: a smaller flood keeps the run in minutes.
FL_BENCH_FLOOD_N=${FL_BENCH_FLOOD_N:-50000}
. "$FL_SOURCE_DIR/tests/host/nfq_delayer_bench.sh"
