#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
B=${BUILD_DIR:-build}
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DTCQ_BUILD_TESTS=OFF -DTCQ_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$B" -j2 --target example_quantize_matrix >/dev/null
"$B"/examples/example_quantize_matrix 4096 4096
