#!/usr/bin/env bash
# Installs what is missing, builds everything, and runs the test suite.
# Usage: scripts/test.sh [build-dir]   (default: build-test)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
B=${1:-build-test}
JOBS=${JOBS:-2}
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DTCQ_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$B" -j"$JOBS"
ctest --test-dir "$B" --output-on-failure -j"$JOBS"
