#!/usr/bin/env bash
# Regenerates the ten-seed tables of docs/results.md (arith calibration, 128
# windows, true-sequential GPTQ, 0.35 % 16-bit weights), printing markdown:
#   1. the paper's four methods at 2 and 3 bits, paired against GPTQ;
#   2. the options beyond the paper at 2 bits (answer-span loss, iterative
#      selection, budget per matrix), paired against GPTQ and TaCQ.
# Usage: scripts/results.sh [build-dir]   (needs the tcq tool: --target tcq_cli)
# About 15 + 22 min on 2 idle cores.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
CLI="$B/tools/tcq"
F=examples/fixture
common=(--model $F/model/model.bin --calib $F/data/arith.calib.txt --samples 128 --seeds 0-9 --ratio 0.0035
        --task arith=$F/data/arith.valid.txt --task gsm8k=$F/data/gsm8k.valid.txt
        --task shakespeare=$F/data/shakespeare.valid.txt --threads 2 --quiet)
echo "### The paper's methods, 10 seeds"
echo
"$CLI" compare "${common[@]}" --methods rtn,gptq,spqr,tacq --bits 2,3 --baseline gptq
echo
echo "### Beyond the paper at 2 bits, 10 seeds"
echo
"$CLI" compare "${common[@]}" --answer-after = --bits 2 --baseline gptq,tacq \
  --methods gptq,tacq,tacq:answer,tacq@matrix,tacq+2,tacq:answer+2
