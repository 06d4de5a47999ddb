#!/usr/bin/env bash
# Whole-model benchmark of the size ladder (issue 13 targets): writes a
# random-init checkpoint of SHAPE in true HF layout, draws SAMPLES windows of
# SEQ tokens from seeded random ids (the ladder has no tokenizer.json; ids
# stand in for text), and times `tcq quantize` (TaCQ, 3 bits + 0.35 %) with
# THREADS threads. Prints the tool's per-phase times, the wall time and the
# peak RSS (GNU time). Not run in CI.
#   bench/ladder_quantize.sh [BUILD_DIR] [SHAPE] [SAMPLES] [SEQ] [THREADS]
#   e.g. bench/ladder_quantize.sh build smollm2-135m 32 512 2
set -euo pipefail
B=${1:-build}
SHAPE=${2:-smollm2-135m}
SAMPLES=${3:-32}
SEQ=${4:-512}
THREADS=${5:-2}
TCQ="$B/tools/tcq"
W=$(mktemp -d "${TMPDIR:-/tmp}/tcq-ladder.XXXXXX")
trap 'rm -rf "$W"' EXIT
"$TCQ" convert --random "$SHAPE" --to-hf "$W/model" --quiet
vocab=$(grep -o '"vocab_size": *[0-9]*' "$W/model/config.json" | grep -o '[0-9]*$')
# 8 documents of SAMPLES*SEQ/4 ids each (seeded), one --calib-ids file.
awk -v v="$vocab" -v n=$((SAMPLES * SEQ / 4 + SEQ)) 'BEGIN { srand(1); for (d = 0; d < 8; ++d) {
  s = ""; for (i = 0; i < n; ++i) s = s (i ? " " : "") int(rand() * v); print s } }' > "$W/calib.ids"
echo "shape $SHAPE, $SAMPLES x $SEQ tokens, $THREADS threads, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -v "$TCQ" quantize --model "$W/model" --calib-ids "$W/calib.ids" --samples "$SAMPLES" \
  --seq-len "$SEQ" --method tacq --bits 3 --ratio 0.0035 --threads "$THREADS" -o "$W/out.tcq" --quiet \
  2> "$W/time.txt" | grep -E "bits/weight|^time:"
grep -E "Elapsed \(wall|Maximum resident" "$W/time.txt"
