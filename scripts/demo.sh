#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main demo: TaCQ against RTN,
# GPTQ and SpQR-style selection at 2 and 3 bits (+ 0.35% 16-bit weights) on the
# bundled fixture model, calibrated on `arith` with three calibration draws
# (seeds 0-2), evaluated on all three tasks: mean ± sd per metric, then each
# method's paired difference from GPTQ (95 % t-interval, wins/3).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
B=${BUILD_DIR:-build}
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DTCQ_BUILD_TESTS=OFF -DTCQ_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$B" -j2 --target tcq_cli >/dev/null
F=examples/fixture
exec "$B"/tools/tcq compare --model $F/model/model.bin \
  --calib $F/data/arith.calib.txt --samples 128 --seeds 0-2 \
  --methods rtn,gptq,spqr,tacq --bits 2,3 --ratio 0.0035 --baseline gptq \
  --task arith=$F/data/arith.valid.txt --task gsm8k=$F/data/gsm8k.valid.txt \
  --task shakespeare=$F/data/shakespeare.valid.txt "$@"
