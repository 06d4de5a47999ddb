#!/usr/bin/env bash
# Regenerates the tables of docs/results.md: for each conditioning task, every
# method at 2, 3 and 4 bits (+0.35% 16-bit weights), evaluated on all tasks.
# Usage: scripts/results.sh [build-dir]  (prints markdown to stdout)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
CLI="$B/tools/tcq"
F=examples/fixture
for task in arith gsm8k shakespeare; do
  echo "### Calibrated on \`$task\`"
  echo
  echo '```'
  echo "tcq compare --model $F/model/model.bin --calib $F/data/$task.calib.txt --samples 128 --seed 0 \\"
  echo "  --methods rtn,gptq,spqr,tacq --bits 2,3,4 --ratio 0.0035 --task arith=... --task gsm8k=... --task shakespeare=..."
  echo '```'
  echo
  "$CLI" compare --model $F/model/model.bin --calib $F/data/$task.calib.txt --samples 128 --seed 0 \
    --methods rtn,gptq,spqr,tacq --bits 2,3,4 --ratio 0.0035 \
    --task arith=$F/data/arith.valid.txt --task gsm8k=$F/data/gsm8k.valid.txt \
    --task shakespeare=$F/data/shakespeare.valid.txt --threads 2 2>/dev/null
  echo
done
