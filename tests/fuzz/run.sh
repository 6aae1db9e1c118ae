#!/usr/bin/env bash
# Fuzz every decoder that takes outside input for a bounded time: the wire
# decoder, the experiment parser, the inventory parser (tests/fuzz/*.c).
#
#   ./tests/fuzz/run.sh                  # 60 s per fuzzer (CI)
#   ./tests/fuzz/run.sh --seconds 600    # longer, by hand
#   ... --build-dir DIR                  # default build/fuzz
#
# Configures a clang build with -DFL_FUZZ=ON (libFuzzer + ASan + UBSan
# coverage instrumentation), builds the fuzz-* binaries and runs
# `ctest -L fuzz`. Any crash, leak, timeout or out-of-memory fails; the
# input that did it is left in <build>/fuzz-artifacts/ — add it to
# tests/fuzz/regressions/<target>/ so every lane replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/../.."

secs=${FL_FUZZ_SECONDS:-60}
build=build/fuzz
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) secs=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--build-dir DIR]" >&2; exit 2 ;;
  esac
done
command -v clang >/dev/null || { echo "run.sh: clang not installed (scripts/deps.sh)" >&2; exit 2; }

CC=clang cmake -S . -B "$build" -DFL_FUZZ=ON -DFL_FUZZ_SECONDS="$secs" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz-wire fuzz-experiment fuzz-inventory
ctest --test-dir "$build" -L fuzz --output-on-failure
