#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds and runs exactly the CUDA checks,
# the `cuda` ctest label (every kernel launched on seeded odd-sized inputs and
# compared with the CPU code) and the CUDA GEMV benchmark.
#   scripts/cuda-check.sh [build-dir]      (default: build-cuda)
#   CUDA_ARCHS="86;90" scripts/cuda-check.sh
# Without a device the tests report SKIP and the benchmark an error per row;
# the script then exits 1, because nothing was checked.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build-cuda}
bash scripts/install-deps.sh
command -v nvcc >/dev/null || { echo "cuda-check: nvcc not found (install the CUDA toolkit)" >&2; exit 2; }
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DTCQ_BUILD_TESTS=ON -DTCQ_BUILD_BENCHMARKS=ON \
  -DTCQ_BUILD_EXAMPLES=OFF -DTCQ_BUILD_TOOLS=OFF -DTCQ_ENABLE_CUDA=ON \
  -DTCQ_CUDA_ARCHITECTURES="${CUDA_ARCHS:-native}"
cmake --build "$B" -j"$(nproc)" --target test_cuda bench_cuda_gemv
ctest --test-dir "$B" -L cuda --output-on-failure | tee "$B/cuda-ctest.log"
"$B/cmake/cuda_check/bench_cuda_gemv"
if grep -q '(Skipped)' "$B/cuda-ctest.log"; then
  echo "cuda-check: the cuda tests were skipped (no usable device): nothing was checked" >&2
  exit 1
fi
