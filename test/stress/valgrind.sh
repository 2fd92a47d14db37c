#!/usr/bin/env bash
# Runs test/stress/stress.ts under valgrind's memcheck, on the Linux backend
# and on the emulated macOS backend, and fails on any memory error or any
# definitely lost block. Node runs with --jitless: V8 then generates no
# machine code at run time, which valgrind would otherwise have to
# retranslate, and the run takes about a minute per backend.
#
# Usage: test/stress/valgrind.sh [ROUNDS]   (after npm run build:emulated)
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
rounds="${1:-3}"
cd "$root"

for backend in linux emulated; do
  echo "valgrind.sh: $rounds rounds of the stress script on the $backend backend"
  if [ "$backend" = emulated ]; then export NW_MPTCP_BACKEND=emulated; else unset NW_MPTCP_BACKEND; fi
  valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
    --errors-for-leak-kinds=definite --num-callers=40 \
    --suppressions=test/stress/valgrind.supp \
    node --jitless --expose-gc dist/test/stress/stress.js "$rounds"
done
