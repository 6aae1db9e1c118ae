#!/bin/bash
# run_all.sh: build faultline (Release) and its benchmarks, run every
# benchmark, print the figures. Needs root (the agent insists on a root-owned
# state dir) and about 4 minutes with the defaults.
#
#   sudo bench/run_all.sh
#
# Environment: FL_BENCH_BUILD (build dir, default build/bench), IDLE_SECS
# (per idle phase, default 60), COUNT (applies, default 1000), ROUNDS (abort
# rounds, default 100), CLI_RUNS (CLI aborts per fleet size, default 5),
# NET=1 (also the network-fault benches, ~8 min).
# See docs/BENCHMARKS.md for what each figure means.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${FL_BENCH_BUILD:-$root/build/bench}
idle_secs=${IDLE_SECS:-60}
count=${COUNT:-1000}
rounds=${ROUNDS:-100}
cli_runs=${CLI_RUNS:-5}

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
if grep -q '^add_subdirectory(bench)' "$root/CMakeLists.txt"; then
	cmake --build "$build" -j"$(nproc)" --target faultline-agent faultline \
		apply_latency abort_fanout lease_client proc_sample wakeup_floor >/dev/null
else
	# bench/ not wired into the top-level build yet: build the product with
	# CMake and the bench programs by hand, with the project's warnings.
	cmake --build "$build" -j"$(nproc)" --target faultline-agent faultline >/dev/null
	mkdir -p "$build/bench"
	cf=(-O3 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wmissing-prototypes
	    -Wpointer-arith -Wwrite-strings -Wformat=2 -Wstrict-prototypes
	    -Wno-unused-parameter -I"$root/common" -I"$root/bench")
	libs=("$build/common/libflcommon.a" $(pkg-config --libs msgpack) -lnng -lpthread)
	for p in apply_latency abort_fanout lease_client; do
		gcc "${cf[@]}" -o "$build/bench/$p" "$root/bench/$p.c" "$root/bench/bench_common.c" "${libs[@]}"
	done
	for p in proc_sample wakeup_floor; do
		gcc "${cf[@]}" -o "$build/bench/$p" "$root/bench/$p.c"
	done
fi

agent=$build/agent/faultline-agent
cli=$build/coordinator/faultline
b=$build/bench

echo "== machine: $(nproc) cores, $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "== 2. apply -> ack latency, state dir on tmpfs"
"$b/apply_latency" --agent "$agent" --count "$count" --state-parent /dev/shm
echo
echo "== 2. apply -> ack latency, state dir on disk"
"$b/apply_latency" --agent "$agent" --count "$count" --state-parent /var/tmp
echo
for n in 20 64; do
	echo "== 3. abort fan-out, $n agents"
	"$b/abort_fanout" --agent "$agent" --agents "$n" --rounds "$rounds" --cli "$cli" --cli-runs "$cli_runs"
	echo
done
echo "== 1. agent idle RSS and CPU (${idle_secs}s per phase)"
"$root/bench/agent_idle.sh" "$build" "$idle_secs" /var/tmp
echo
echo "== 1. context: CPU of a bare timer wakeup on this machine"
"$b/wakeup_floor" 5 10
"$b/wakeup_floor" 1 10
# Network faults (opt-in, ~8 min more: NET=1): apply/revert of net-loss and
# net-bandwidth vs exec'ing tc/nft, in namespaces the scripts create; and the
# loss accuracy of net-loss. The NFQUEUE-delayer figures need the VM lane:
# tests/vm/run-vm.sh --build-dir "$build" --timeout 900 tests/vm/cases/bench_nfq_delayer.sh
if [ "${NET:-0}" = 1 ]; then
	cmake --build "$build" -j"$(nproc)" --target net_apply fl-nettool fl-bench-owd >/dev/null
	echo
	echo "== network faults: apply+verify / revert vs tc/nft exec"
	"$root/bench/net_apply.sh" "$build" "$count"
	echo
	echo "== network faults: net-loss accuracy"
	"$root/bench/net_loss_accuracy.sh" "$build"
fi
