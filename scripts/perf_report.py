#!/usr/bin/env python3
"""Turns Google Benchmark JSON (from bench/bench_*.cpp) into docs/performance.md.

    # run every benchmark of a Release build, then write the report
    scripts/perf_report.py --run build/bench --json-dir out/bench -o docs/performance.md
    # or report on JSON you already have (one file per bench executable)
    scripts/perf_report.py out/bench/bench_*.json -o docs/performance.md

Each kernel's throughput is shown as a fraction of its baselines and of the
machine's limits.

Throughput: the first rate counter of the first kind a benchmark reports, in
the order of KINDS below: FLOP/s ("FLOP/s", "GFLOP/s"), bytes/s ("bytes/s",
SetBytesProcessed's "bytes_per_second", "GB/s", "read_GB/s"), then items/s
("elements/s", "items_per_second", "tokens/s"). A G-prefixed counter below
1e6 is taken as already in G-units (1e9 otherwise it is raw). Without any,
1 / real time ("runs/s").

Pairing rule (baselines live in the same bench file as their kernels):
  1. BASELINES below, if it names the kernel family, gives its baselines
     (an empty list: none on purpose).
  2. Otherwise its baselines are the `BM_Raw_*` / `BM_Eigen_*` families of the
     file whose name after the prefix starts the kernel's name after `BM_`
     (BM_Raw_gemv for BM_gemv_q3); if none does, all of them.
  3. Independently, `BM_X_scalar_twin` (or `_scalar`, `_ref`) is X's scalar
     twin: column "vs scalar twin" is the speedup over it.
  A baseline instance is matched on thread count, then on the most equal
  remaining arguments (by position). A ratio uses the first counter kind both
  report, else inverse real time; pairs in SPEED_RATIO always compare times.

Threads: a `threads:N` name component (->Threads(N) or ArgNames({..., "threads"}),
preferred), else THREADS_FIXED / THREADS_ARG below, else the last positional
argument if it lies in [1, number of CPUs], else 1.

Machine limits (2-core Zen 5 VM the project benchmarks on; override with
--read-bw1/--read-bw2/--gflops2): read bandwidth 25 GB/s on 1 thread, 60 GB/s
on 2; fp32 GEMM 260 GFLOP/s on 2 threads (130 on 1). bytes/s is compared with
the read bandwidth, FLOP/s with the GEMM peak; items/s has no limit.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys

# Explicit baselines: (bench file, kernel family) -> list of baseline families.
BASELINES = {
    ("bench_quant", "BM_fit_mse"): [],  # compute-bound (80 candidates): scalar twin only
}
# (bench, kernel family, baseline family) compared by speed (time of the same
# work), not by rate: the rates count different bytes (packed vs fp32 weights).
SPEED_RATIO = {
    ("bench_pack", "BM_PackedGemv", "BM_Raw_EigenGemv"),
}
# Families that always run on a fixed number of threads.
THREADS_FIXED = {
    ("bench_quant", "BM_fit_minmax"): 2,
}
# Families whose positional argument i (not the last) is the thread count.
THREADS_ARG = {
    ("bench_quant", "BM_fake_quantize"): 0,
    ("bench_quant", "BM_fit_mse"): 0,
}
# Counter kinds in priority order: (kind, machine limit, [(counter, G-prefixed)]).
KINDS = (
    ("FLOP/s", "GEMM peak", (("FLOP/s", False), ("GFLOP/s", True))),
    ("B/s", "read BW", (("bytes/s", False), ("bytes_per_second", False), ("GB/s", True), ("read_GB/s", True))),
    ("items/s", None, (("elements/s", False), ("items_per_second", False), ("tokens/s", False))),
)
TWIN_SUFFIXES = ("_scalar_twin", "_scalar", "_ref")
BASELINE_PREFIXES = ("BM_Raw_", "BM_Eigen_")
MODIFIERS = re.compile(r"^(real_time|process_time|manual_time|min_time:.*|min_warmup_time:.*|"
                       r"iterations:.*|repeats:.*)$")
UNIT_NS = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}


class Run:
    def __init__(self, bench, rec, ncpu):
        self.bench = bench
        self.name = rec.get("run_name", rec["name"])
        self.real_time_ns = rec["real_time"] * UNIT_NS[rec.get("time_unit", "ns")]
        self.rates = {}  # kind -> (counter name, value in base units)
        for kind, _, names in KINDS:
            for counter, giga in names:
                if counter in rec and kind not in self.rates:
                    v = float(rec[counter])
                    self.rates[kind] = (counter, v * 1e9 if giga and v < 1e6 else v)
        parts = self.name.split("/")
        self.family = parts[0]
        self.args, self.named_threads = [], None
        for p in parts[1:]:
            if MODIFIERS.match(p):
                continue
            if p.startswith("threads:"):
                self.named_threads = int(p.split(":")[1])
            else:
                self.args.append(p.split(":")[-1])
        self.threads, self.match_args = self._threads(rec, ncpu)
        self.label = "/".join([self.family] + self.args)

    def _threads(self, rec, ncpu):
        """Thread count, and the arguments other than the thread count."""
        key = (self.bench, self.family)
        if self.named_threads is not None:
            return self.named_threads, self.args
        if key in THREADS_FIXED:
            return THREADS_FIXED[key], self.args
        i = THREADS_ARG.get(key)
        if i is None and self.args and self.args[-1].isdigit() and 1 <= int(self.args[-1]) <= ncpu:
            i = len(self.args) - 1
        if i is not None and i < len(self.args):
            return int(self.args[i]), self.args[:i] + self.args[i + 1:]
        return int(rec.get("threads", 1)), self.args

    def throughput(self):
        for kind, _, _ in KINDS:
            if kind in self.rates:
                return kind, self.rates[kind][1]
        return "runs/s", 1e9 / self.real_time_ns


def load(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    ctx = data.get("context", {})
    bench = os.path.basename(ctx.get("executable", "")) or os.path.splitext(os.path.basename(path))[0]
    ncpu = int(ctx.get("num_cpus", 2))
    recs = data.get("benchmarks", [])
    # Prefer the median aggregate of repeated runs; else the (first) iteration run.
    medians = {r.get("run_name") for r in recs if r.get("aggregate_name") == "median"}
    runs, seen = [], set()
    for r in recs:
        rn = r.get("run_name", r["name"])
        if r.get("run_type") == "aggregate" and r.get("aggregate_name") != "median":
            continue
        if rn in medians and r.get("aggregate_name") != "median":
            continue
        if rn in seen or r.get("error_occurred"):
            continue
        seen.add(rn)
        runs.append(Run(bench, r, ncpu))
    return bench, ctx, runs


def is_twin(family):
    return family.endswith(TWIN_SUFFIXES)


def is_baseline(family):
    return family.startswith(BASELINE_PREFIXES)


def twin_of(family, families):
    return next((family + s for s in TWIN_SUFFIXES if family + s in families), None)


def baselines_of(bench, family, families):
    if (bench, family) in BASELINES:
        return BASELINES[(bench, family)]
    bases = [f for f in families if is_baseline(f)]
    stem = family[3:] if family.startswith("BM_") else family
    named = [b for b in bases if stem.startswith(next(b[len(p):] for p in BASELINE_PREFIXES if b.startswith(p)))]
    return named or bases


def match(run, candidates):
    """The baseline instance for `run`: same threads, then most equal args."""
    if not candidates:
        return None
    same = [c for c in candidates if c.threads == run.threads] or candidates
    return max(same, key=lambda c: sum(a == b for a, b in zip(c.match_args, run.match_args)))


def ratio(run, base):
    for kind, _, _ in KINDS:
        if kind in run.rates and kind in base.rates and base.rates[kind][1] > 0:
            return run.rates[kind][1] / base.rates[kind][1]
    return base.real_time_ns / run.real_time_ns


def machine_fraction(run, limits):
    for kind, what, _ in KINDS:
        if kind in run.rates and what:
            v = run.rates[kind][1]
            t = max(1, min(run.threads, 2))
            peak = limits["gflops2"] * 1e9 * t / 2 if kind == "FLOP/s" else \
                (limits["read_bw1"] if t == 1 else limits["read_bw2"]) * 1e9
            f = v / peak
            return ("<1%% %s" % what) if f < 0.01 else ("%.0f%% %s" % (100 * f, what))
    return ""


def human(v, unit):
    for s, f in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= f:
            return "%.3g %s%s" % (v / f, s, unit)
    return "%.3g %s" % (v, unit)


def fmt_time(ns):
    for u, f in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= f:
            return "%.3g %s" % (ns / f, u)
    return "%.3g ns" % ns


def report(files, limits):
    out, missing = [], []
    out.append("# Performance\n")
    out.append("Generated by `scripts/perf_report.py` from Google Benchmark JSON; do not edit by hand.")
    out.append("Regenerate on an idle machine from a Release build:\n")
    out.append("```sh\nscripts/perf_report.py --run build/bench --json-dir out/bench -o docs/performance.md\n```\n")
    out.append("- **of baselines**: kernel throughput / that of each `BM_Raw_*` or Eigen baseline of "
               "the same file, same threads (a memory-bound kernel at 1.0 runs as fast as only reading "
               "its bytes).")
    out.append("- **vs scalar twin**: speedup over the scalar reference implementation.")
    out.append("- **of machine limit**: bytes/s / read bandwidth (%g GB/s on 1 thread, %g GB/s on 2), "
               "FLOP/s / fp32 GEMM peak (%g GFLOP/s on 2 threads, half on 1). A kernel's bytes/s "
               "counts the bytes its benchmark says it moves." % (limits["read_bw1"], limits["read_bw2"],
                                                                 limits["gflops2"]))
    out.append("- Pairing rules, counters and limits: see the docstring of `scripts/perf_report.py`.\n")
    for path in files:
        bench, ctx, runs = load(path)
        families = {r.family for r in runs}
        by_family = {}
        for r in runs:
            by_family.setdefault(r.family, []).append(r)
        out.append("## %s\n" % bench)
        load_avg = ctx.get("load_avg", [])
        out.append("%s, %s CPUs at %s MHz, load average %s (Google Benchmark library build: %s).\n" % (
            ctx.get("date", "?"), ctx.get("num_cpus", "?"), ctx.get("mhz_per_cpu", "?"),
            ", ".join("%.2f" % x for x in load_avg) or "?", ctx.get("library_build_type", "?")))
        if load_avg and ctx.get("num_cpus") and load_avg[0] > 0.5 * ctx["num_cpus"]:
            out.append("> Measured on a busy machine (load average %.2f): treat as indicative.\n" % load_avg[0])
        out.append("| Benchmark | threads | time | throughput | of baselines | vs scalar twin | of machine limit |")
        out.append("|---|---:|---:|---:|---|---:|---:|")
        for r in runs:
            kind, value = r.throughput()
            cells, twin_txt = [], ""
            if is_baseline(r.family) or is_twin(r.family):
                cells.append("*(baseline)*" if is_baseline(r.family) else "*(scalar twin)*")
            else:
                for bfam in baselines_of(bench, r.family, families):
                    b = match(r, by_family.get(bfam, []))
                    if b is not None and (bench, r.family, bfam) in SPEED_RATIO:
                        cells.append("%.2f× the speed of `%s`" % (b.real_time_ns / r.real_time_ns, b.label))
                    elif b is not None:
                        cells.append("%.2f of `%s`" % (ratio(r, b), b.label))
                t = match(r, by_family.get(twin_of(r.family, families), []))
                if t is not None:
                    twin_txt = "%.1f×" % ratio(r, t)
                if not cells and t is None and (bench, r.family) not in BASELINES:
                    missing.append("%s: %s" % (bench, r.label))
            out.append("| `%s` | %d | %s | %s | %s | %s | %s |" % (
                r.label, r.threads, fmt_time(r.real_time_ns), human(value, kind), "<br>".join(cells),
                twin_txt, machine_fraction(r, limits)))
        out.append("")
    if missing:
        out.append("Kernels without a baseline (add a `BM_Raw_*`/Eigen baseline or a scalar twin, "
                   "or list them in `BASELINES`): " + ", ".join("`%s`" % m for m in missing) + "\n")
    return "\n".join(out), missing


def run_benches(bench_dir, json_dir, extra):
    os.makedirs(json_dir, exist_ok=True)
    files = []
    for exe in sorted(glob.glob(os.path.join(bench_dir, "bench_*"))):
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            continue
        out = os.path.join(json_dir, os.path.basename(exe) + ".json")
        print("perf_report: running", exe, file=sys.stderr, flush=True)
        subprocess.run([exe, "--benchmark_out=" + out, "--benchmark_out_format=json"] + extra, check=True,
                       stdout=subprocess.DEVNULL)
        files.append(out)
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json", nargs="*", help="Google Benchmark JSON files")
    ap.add_argument("-o", "--output", default="docs/performance.md")
    ap.add_argument("--run", metavar="BENCH_DIR", help="first run every bench_* executable in BENCH_DIR")
    ap.add_argument("--json-dir", default="out/bench", help="where --run writes its JSON")
    ap.add_argument("--benchmark-arg", action="append", default=[], help="extra argument for --run")
    ap.add_argument("--check", action="store_true", help="fail if a kernel has no baseline")
    ap.add_argument("--read-bw1", type=float, default=25.0, help="GB/s, 1 thread")
    ap.add_argument("--read-bw2", type=float, default=60.0, help="GB/s, 2 threads")
    ap.add_argument("--gflops2", type=float, default=260.0, help="fp32 GEMM GFLOP/s, 2 threads")
    a = ap.parse_args()
    files = list(a.json)
    if a.run:
        files += run_benches(a.run, a.json_dir, a.benchmark_arg)
    if not files:
        ap.error("no JSON input (give files or --run)")
    text, missing = report(files, {"read_bw1": a.read_bw1, "read_bw2": a.read_bw2, "gflops2": a.gflops2})
    os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
    with open(a.output, "w", encoding="utf-8") as f:
        f.write(text)
    print("perf_report: wrote %s" % a.output, file=sys.stderr)
    for m in missing:
        print("perf_report: no baseline for %s" % m, file=sys.stderr)
    if a.check and missing:
        sys.exit(1)


if __name__ == "__main__":
    main()
