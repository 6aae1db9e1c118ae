#!/usr/bin/env bash
# Install dependencies, build, and run the whole test suite with ctest.
#
#   sudo ./scripts/test.sh            # dev preset (-Werror)
#   sudo ./scripts/test.sh --asan     # ASan + UBSan build of the same suite
#   ... --no-deps                     # skip apt (packages already there)
#   ... --no-vm                       # skip the VM lane (qemu, stock kernel);
#                                     # CI runs it once, in the --asan pass
#
# Host-lane tests need root (network namespaces, loop devices); as a normal
# user they exit with CTest's skip code and say why.
set -euo pipefail
cd "$(dirname "$0")/.."

preset=dev
deps=1
ctest_args=()
for arg in "$@"; do
  case "$arg" in
    --asan) preset=asan ;;
    --release) preset=release ;;
    --no-deps) deps=0 ;;
    --no-vm) ctest_args+=(-LE vm) ;;
    *) echo "usage: $0 [--asan|--release] [--no-deps] [--no-vm]" >&2; exit 2 ;;
  esac
done

if [ "$deps" = 1 ]; then
  ./scripts/deps.sh
fi

cmake --preset "$preset"
cmake --build --preset "$preset" -j"$(nproc)"
if [ "$preset" = asan ]; then
  # Leak checking on; abort on the first error so ctest sees a failure.
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
ctest --preset "$preset" -j1 --timeout 600 "${ctest_args[@]}"
