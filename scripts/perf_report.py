#!/usr/bin/env python3
"""Turns Google Benchmark JSON (from bench/bench_*.cpp) into docs/performance.md.

    # run every benchmark of a Release build, then write the report
    scripts/perf_report.py --run build/bench --json-dir out/bench -o docs/performance.md
    # or report on JSON you already have (one file per bench executable)
    scripts/perf_report.py out/bench/bench_*.json -o docs/performance.md

Each kernel's throughput is shown as a fraction of its baseline and of the
machine's limits.

Throughput: the first rate counter present among FLOP/s, bytes/s, elements/s
(set with benchmark::Counter(..., kIsIterationInvariantRate)); without one,
1 / real time.

Pairing rule (baselines live in the same bench file as their kernels):
  1. BASELINES below, if it names the kernel family, wins.
  2. Otherwise `BM_X_scalar_twin` (or `_scalar`, `_ref`) is X's scalar twin:
     column "vs scalar twin" shows the speedup over it.
  3. Otherwise the kernel's baseline is a `BM_Raw_*` or `BM_Eigen_*` family
     of the same file: the one whose name after the prefix starts the
     kernel's name after `BM_` (BM_Raw_gemv for BM_gemv_q3), else the only
     one, else the first. Column "of baseline" is kernel / baseline.
  Instances are matched on thread count, then on the most equal arguments.
  Ratios use the first counter both report (FLOP/s, bytes/s, elements/s),
  else inverse real time.

Threads: a `threads:N` name component (->Threads(N) or ArgNames({"threads"}))
or THREADS_FIXED, or the positional argument listed in THREADS_ARG; else 1.

Machine limits (2-core Zen 5 VM the project benchmarks on; override with
--read-bw1/--read-bw2/--gflops2): read bandwidth 25 GB/s on 1 thread, 60 GB/s
on 2; fp32 GEMM 260 GFLOP/s on 2 threads (130 on 1). bytes/s is compared with
the read bandwidth, FLOP/s with the GEMM peak; elements/s has no limit.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys

# Explicit pairings: (bench file, kernel family) -> baseline family. A value
# of None marks a family as having no baseline on purpose (still listed).
BASELINES = {
    ("bench_quant", "BM_fit_minmax"): "BM_Raw_memcpy",  # reads W once: fraction of copy speed
    ("bench_quant", "BM_fit_mse"): None,  # compute-bound (80 candidates): scalar twin only
}
# Families that always run on a fixed number of threads.
THREADS_FIXED = {
    ("bench_quant", "BM_fit_minmax"): 2,
}
# Families whose positional argument i is the thread count.
THREADS_ARG = {
    ("bench_quant", "BM_Raw_memcpy"): 0,
    ("bench_quant", "BM_fake_quantize"): 0,
    ("bench_quant", "BM_fit_mse"): 0,
}
COUNTERS = ("FLOP/s", "bytes/s", "elements/s")
TWIN_SUFFIXES = ("_scalar_twin", "_scalar", "_ref")
BASELINE_PREFIXES = ("BM_Raw_", "BM_Eigen_", "BM_memcpy")
MODIFIERS = re.compile(r"^(real_time|process_time|manual_time|min_time:.*|min_warmup_time:.*|"
                       r"iterations:.*|repeats:.*)$")


class Run:
    def __init__(self, bench, rec):
        self.bench = bench
        self.name = rec["run_name"] if "run_name" in rec else rec["name"]
        self.real_time_ns = rec["real_time"] * {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}[rec.get("time_unit", "ns")]
        self.counters = {k: float(rec[k]) for k in COUNTERS if k in rec}
        parts = self.name.split("/")
        self.family = parts[0]
        self.args, self.threads = [], None
        for p in parts[1:]:
            if MODIFIERS.match(p):
                continue
            if p.startswith("threads:"):
                self.threads = int(p.split(":")[1])
            else:
                self.args.append(p.split(":")[-1])
        if self.threads is None:
            self.threads = THREADS_FIXED.get((bench, self.family))
        if self.threads is None:
            i = THREADS_ARG.get((bench, self.family))
            if i is not None and i < len(self.args):
                self.threads = int(self.args[i])
            else:
                self.threads = int(rec.get("threads", 1))
        self.label = "/".join([self.family] + self.args)

    def metric(self):
        for k in COUNTERS:
            if k in self.counters:
                return k, self.counters[k]
        return "1/time", 1e9 / self.real_time_ns


def load(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    ctx = data.get("context", {})
    bench = os.path.basename(ctx.get("executable", "")) or os.path.splitext(os.path.basename(path))[0]
    recs = data.get("benchmarks", [])
    # Prefer the median aggregate of repeated runs; else the (first) iteration run.
    medians = {r["run_name"] for r in recs if r.get("aggregate_name") == "median"}
    runs, seen = [], set()
    for r in recs:
        rn = r.get("run_name", r["name"])
        if rn in medians and r.get("aggregate_name") != "median":
            continue
        if r.get("run_type") == "aggregate" and r.get("aggregate_name") != "median":
            continue
        if rn in seen or r.get("error_occurred"):
            continue
        seen.add(rn)
        runs.append(Run(bench, r))
    return bench, ctx, runs


def is_twin(family):
    return family.endswith(TWIN_SUFFIXES)


def is_baseline(family):
    return family.startswith(BASELINE_PREFIXES)


def twin_of(family, families):
    for s in TWIN_SUFFIXES:
        if family + s in families:
            return family + s
    return None


def baseline_of(bench, family, families):
    if (bench, family) in BASELINES:
        return BASELINES[(bench, family)]
    bases = [f for f in families if is_baseline(f)]
    stem = family[3:] if family.startswith("BM_") else family
    for b in bases:
        rest = next(b[len(p):] for p in BASELINE_PREFIXES if b.startswith(p))
        if rest and stem.startswith(rest):
            return b
    return bases[0] if bases else None


def match(run, candidates):
    """The baseline instance for `run`: same threads, then most equal args."""
    if not candidates:
        return None
    same = [c for c in candidates if c.threads == run.threads] or candidates
    return max(same, key=lambda c: sum(a == b for a, b in zip(c.args, run.args)))


def ratio(run, base):
    for k in COUNTERS:
        if k in run.counters and k in base.counters and base.counters[k] > 0:
            return run.counters[k] / base.counters[k]
    return base.real_time_ns / run.real_time_ns


def machine_fraction(run, limits):
    if "FLOP/s" in run.counters:
        return run.counters["FLOP/s"] / (limits["gflops2"] * 1e9 * min(run.threads, 2) / 2), "GEMM peak"
    if "bytes/s" in run.counters:
        bw = limits["read_bw1"] if run.threads <= 1 else limits["read_bw2"]
        return run.counters["bytes/s"] / (bw * 1e9), "read BW"
    return None, ""


UNITS = {"FLOP/s": "FLOP/s", "bytes/s": "B/s", "elements/s": "elem/s", "1/time": "runs/s"}


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
    out.append("Regenerate on an idle machine with a Release build:\n")
    out.append("```sh\nscripts/perf_report.py --run build/bench --json-dir out/bench -o docs/performance.md\n```\n")
    out.append("- **of baseline**: kernel throughput / its `BM_Raw_*` (memcpy-like) or Eigen baseline "
               "in the same file, same threads; 1.0 = as fast as only moving the bytes.")
    out.append("- **vs scalar twin**: speedup over the scalar reference implementation.")
    out.append("- **of machine limit**: `bytes/s` / read bandwidth (%g GB/s on 1 thread, %g GB/s on 2), "
               "`FLOP/s` / fp32 GEMM peak (%g GFLOP/s on 2 threads, half on 1). `bytes/s` counts every "
               "byte a kernel reads or writes."
               % (limits["read_bw1"], limits["read_bw2"], limits["gflops2"]))
    out.append("- Pairing rules and machine limits: see the docstring of `scripts/perf_report.py`.\n")
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
        out.append("| Benchmark | threads | time | throughput | baseline | of baseline | vs scalar twin | of machine limit |")
        out.append("|---|---:|---:|---:|---|---:|---:|---:|")
        for r in runs:
            name, value = r.metric()
            base_txt, base_ratio, twin_ratio = "", "", ""
            role = "baseline" if is_baseline(r.family) else ("scalar twin" if is_twin(r.family) else "")
            if not role:
                bfam = baseline_of(bench, r.family, families)
                b = match(r, by_family.get(bfam, [])) if bfam else None
                if b is not None:
                    base_txt, base_ratio = "`%s`" % b.label, "%.2f" % ratio(r, b)
                tfam = twin_of(r.family, families)
                t = match(r, by_family.get(tfam, [])) if tfam else None
                if t is not None:
                    twin_ratio = "%.1f×" % ratio(r, t)
                if b is None and t is None and not ((bench, r.family) in BASELINES):
                    missing.append("%s: %s" % (bench, r.label))
            else:
                base_txt = "*(%s)*" % role
            frac, what = machine_fraction(r, limits)
            frac_txt = "" if frac is None else ("<1%% %s" % what if frac < 0.01 else "%.0f%% %s" % (100 * frac, what))
            out.append("| `%s` | %d | %s | %s | %s | %s | %s | %s |" % (
                r.label, r.threads, fmt_time(r.real_time_ns), human(value, UNITS[name]),
                base_txt, base_ratio, twin_ratio, frac_txt))
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
