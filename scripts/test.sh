#!/usr/bin/env bash
# Installs what is missing, builds and runs the whole test suite the way CI
# does (.ci/run calls this). Usage:
#   scripts/test.sh [build-prefix]          (default: build-test)
#   STAGES="gcc" scripts/test.sh            (any of: gcc asan fuzz clang)
#   FUZZ_SECONDS=60 JOBS=2 scripts/test.sh
#
# Stages (default "gcc asan fuzz"; build dirs <prefix>, <prefix>-asan, <prefix>-clang):
#   gcc    g++ Release, -Wall -Wextra -Werror (TCQ_WERROR), tests, benchmarks,
#          examples, the CUDA compile check when nvcc exists, and the header
#          self-containment check (TCQ_HEADER_CHECK); full ctest: unit tests,
#          docs (quickstart, Doxygen), packaging (vcpkg port, Conan recipe,
#          consumers).
#   asan   clang++ -O1 -gline-tables-only (file:line in reports; full -g costs
#          about 12 % more compile time), ASan+UBSan (TCQ_SANITIZE; UBSan without its
#          object-size check, which ASan subsumes), -Werror, tests and the
#          libFuzzer targets (TCQ_FUZZ); ctest without the compiler-independent
#          "integration" tests. This is also the clang build: one build gives
#          clang's warnings and the sanitizers, which keeps CI within budget.
#   fuzz   every fuzz target the asan stage built, FUZZ_SECONDS (20) each, JOBS at once,
#          seeded from tests/fuzz/corpus_<name>/ (never written to).
#   clang  optional: clang++ Release, -Werror, tests only (optimized clang code).
# The last line is "N passed, N failed, N skipped", summed over every ctest run, fuzz
# run and failed build; the exit status is non-zero if anything failed.
set -uo pipefail

B=${1:-build-test}
JOBS=${JOBS:-2}
STAGES=${STAGES:-gcc asan fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
CTEST_TIMEOUT=${CTEST_TIMEOUT:-900}   # per test, unless the test sets its own
COMMON=(-DTCQ_BUILD_TESTS=ON)
passed=0
failed=0
skipped=0
LAST_COUNTS=""

log() { printf '\n==== %s [%s]\n' "$*" "$(date +%T)"; }

# configure_build <dir> <name> <cmake args...>: non-zero if configuring
# failed; a failed build counts one failure and still returns 0 (so ctest
# runs what did build and reports the rest as "Not Run").
configure_build() {
  local dir=$1 name=$2
  shift 2
  mkdir -p "$dir"
  if ! cmake -S . -B "$dir" "${COMMON[@]}" "$@" >"$dir/ci-configure.log" 2>&1; then
    cat "$dir/ci-configure.log"
    echo "FAILED: configure ($name)"
    failed=$((failed + 1))
    return 1
  fi
  local keep=(-k)
  [[ -f $dir/build.ninja ]] && keep=(-k 0)
  if ! cmake --build "$dir" -j"$JOBS" -- "${keep[@]}" >"$dir/ci-build.log" 2>&1; then
    grep -E -A5 'error|Error' "$dir/ci-build.log" | head -150
    echo "FAILED: build ($name), full log: $dir/ci-build.log"
    failed=$((failed + 1))
    return 0
  fi
  echo "built $name ($(grep -c 'warning:' "$dir/ci-build.log") warning lines; log $dir/ci-build.log)"
}

# run_ctest <dir> [ctest args...]: adds the run's counts to the totals.
run_ctest() {
  local dir=$1
  shift
  local out="$dir/ci-ctest.log" line p=0 f=0 k=0
  ctest --test-dir "$dir" --output-on-failure -j"$JOBS" --timeout "$CTEST_TIMEOUT" "$@" 2>&1 | tee "$out"
  line=$(grep -E '[0-9]+ tests? failed out of [0-9]+' "$out" | tail -1)
  if [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    f=${BASH_REMATCH[1]}
    # Skipped tests (SKIP_RETURN_CODE, e.g. CUDA tests without a device) are
    # neither passed nor failed.
    k=$(grep -cE '^[[:space:]]*[0-9]+ - .*\(Skipped\)$' "$out" || true)
    p=$((BASH_REMATCH[2] - f - k))
  elif ! grep -q 'No tests were found' "$out"; then
    f=1  # ctest itself failed
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + k))
  LAST_COUNTS="$p passed, $f failed, $k skipped"
}

stage_gcc() {
  configure_build "$B" gcc -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ \
    -DTCQ_BUILD_BENCHMARKS=ON -DTCQ_BUILD_EXAMPLES=ON -DTCQ_WERROR=ON -DTCQ_HEADER_CHECK=ON || return
  run_ctest "$B"
}

stage_asan() {
  local fuzz=()
  [[ -f tests/fuzz/CMakeLists.txt ]] && fuzz=(-DTCQ_FUZZ=ON)
  configure_build "$B-asan" "clang asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DCMAKE_CXX_COMPILER=clang++ -DTCQ_WERROR=ON \
    -DTCQ_SANITIZE=ON -DTCQ_BUILD_BENCHMARKS=OFF -DTCQ_BUILD_EXAMPLES=OFF -DTCQ_ENABLE_CUDA=OFF \
    "${fuzz[@]}" || return
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest "$B-asan" -LE integration
}

stage_clang() {
  configure_build "$B-clang" clang -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
    -DTCQ_WERROR=ON -DTCQ_BUILD_BENCHMARKS=OFF -DTCQ_BUILD_EXAMPLES=OFF -DTCQ_ENABLE_CUDA=OFF || return
  run_ctest "$B-clang" -LE integration
}

# fuzz_one <exe> <work dir>: one libFuzzer run; writes its exit status (0: it
# found nothing) to <work dir>/rc.
fuzz_one() {
  local exe=$1 work=$2 name seeds
  name=$(basename "$exe")
  seeds=tests/fuzz/corpus_${name#fuzz_}
  local args=("-max_total_time=$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
              "-artifact_prefix=$work/" "$work/corpus")
  [[ -d $seeds ]] && args+=("$seeds")
  "$exe" "${args[@]}" >"$work/log" 2>&1
  echo $? >"$work/rc"
}

stage_fuzz() {
  local exe name work n=0 p=0 f=0 targets=() runs=()
  shopt -s nullglob
  targets=("$B"-asan/tests/fuzz/fuzz_*)
  shopt -u nullglob
  # Each fuzzer is single-threaded: JOBS of them run at once.
  for exe in "${targets[@]}"; do
    [[ -f $exe && -x $exe ]] || continue
    work=$B-asan/fuzz-work/$(basename "$exe")
    rm -rf "$work"
    mkdir -p "$work/corpus"
    while (($(jobs -rp | wc -l) >= JOBS)); do wait -n || true; done
    fuzz_one "$exe" "$work" &
    runs+=("$exe")
  done
  wait
  for exe in "${runs[@]}"; do
    name=$(basename "$exe")
    work=$B-asan/fuzz-work/$name
    n=$((n + 1))
    if [[ $(cat "$work/rc" 2>/dev/null) == 0 ]]; then
      p=$((p + 1))
      echo "fuzz $name: OK ($(awk '/^stat::number_of_executed_units/ { print $2 }' "$work/log") runs in ${FUZZ_SECONDS}s)"
    else
      f=$((f + 1))
      tail -60 "$work/log"
      echo "fuzz $name: FAILED (crash input and log in $work/)"
    fi
  done
  ((n == 0)) && echo "fuzz: no fuzz targets built (tests/fuzz/fuzz_*.cpp, by the asan stage); skipped"
  passed=$((passed + p))
  failed=$((failed + f))
  LAST_COUNTS="$p passed, $f failed"
}

main() {
  cd "$(dirname "$0")/.." || exit 1
  bash scripts/install-deps.sh docs || exit 1
  if command -v ccache >/dev/null 2>&1; then
    COMMON+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  local s wall user sys status before_f t_all=$SECONDS summary=()
  for s in $STAGES; do
    if ! declare -F "stage_$s" >/dev/null; then
      echo "unknown stage '$s' (known: gcc asan fuzz clang)"
      failed=$((failed + 1))
      continue
    fi
    log "stage $s"
    before_f=$failed
    LAST_COUNTS=""
    # Wall time, and CPU time of the stage's processes: CPU/2 is what the
    # stage takes on an idle 2-core machine; wall grows when it is shared.
    TIMEFORMAT='%R %U %S'
    mkdir -p "$B"
    { time "stage_$s" 2>&3; } 3>&2 2>"$B/ci-stage.time"
    read -r wall user sys <"$B/ci-stage.time"
    status=ok
    ((failed > before_f)) && status=FAILED
    summary+=("$(printf '%-6s wall %5.0fs  cpu %5.0fs  %-7s %s' "$s" "$wall" \
      "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" "$status" "$LAST_COUNTS")")
  done
  log "summary: $((SECONDS - t_all))s wall, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  printf '%s\n' "${summary[@]}"
  echo "$passed passed, $failed failed, $skipped skipped"
  ((failed == 0))
}

# Everything runs from main, so the whole file is parsed before anything runs
# and editing the script during a run cannot change what runs.
main "$@"
