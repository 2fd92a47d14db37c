#!/usr/bin/env bash
# Builds both addons with AddressSanitizer and UndefinedBehaviorSanitizer
# (clang, -Dnw_mptcp_sanitize=1 in binding.gyp) in a copy of the working
# tree, so that build/ keeps the normal build. Then runs the mocha suite there
# on the Linux backend and on the emulated macOS backend.
#
# Node itself is not instrumented, so the ASan runtime is preloaded into it
# (LD_PRELOAD) and every process the tests start inherits it. Leak detection
# is off: LeakSanitizer would report every allocation of the uninstrumented
# Node that lives until exit. Leaks of the addon are checked by
# test/stress/valgrind.sh, by the emulation's leak check and by the leak test
# of npm run test:reliability. Any ASan or UBSan report ends the process
# with an error.
#
# Usage: test/sanitizers/asan.sh [MOCHA_ARGS...]
#   NW_MPTCP_ASAN_DIR  where to build and keep the build (default: a
#                      temporary directory, removed at the end)
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
if [ -n "${NW_MPTCP_ASAN_DIR:-}" ]; then
  work="$NW_MPTCP_ASAN_DIR"
  mkdir -p "$work"
else
  # The temporary directory is removed when the script exits.
  work="$(mktemp -d -t nw-mptcp-asan.XXXXXX)"
  trap 'rm -rf "$work"' EXIT
fi

runtime="$(clang -print-file-name="libclang_rt.asan-$(uname -m).so")"
if [ ! -f "$runtime" ]; then
  echo "asan.sh: the ASan runtime $runtime is missing (Debian: libclang-rt-dev)" >&2
  exit 1
fi

echo "asan.sh: building in $work"
tar -C "$root" --exclude=./node_modules --exclude=./build --exclude=./dist --exclude=./.git \
  -cf - . | tar -C "$work" -xf -
ln -sfn "$root/node_modules" "$work/node_modules"
cd "$work"
CC=clang CXX=clang++ npx node-gyp rebuild -- -Dnw_mptcp_emulated=1 -Dnw_mptcp_sanitize=1 \
  >build.log 2>&1 || { tail -50 build.log >&2; exit 1; }
npx tsc -p tsconfig.json

# alloc_dealloc_mismatch is off because Node's own code and V8 free some
# blocks with a different function than the one that allocated them.
export ASAN_OPTIONS="detect_leaks=0:alloc_dealloc_mismatch=0:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

for backend in linux emulated; do
  echo "asan.sh: the mocha suite on the $backend backend"
  if [ "$backend" = emulated ]; then export NW_MPTCP_BACKEND=emulated; else unset NW_MPTCP_BACKEND; fi
  LD_PRELOAD="$runtime" npx mocha "$@"
done
