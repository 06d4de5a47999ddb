// GPTQ benchmarks: whole solve (3-bit, per-row and g=128) on 4096×4096 and the
// Llama MLP shapes, Hessian add of 2048 tokens, U factorization, the lazy
// block updates alone, and the Eigen GEMM 4096³ baseline they are compared to.
//
// The large shapes take tens of seconds; run a subset, e.g.
//   bench_gptq --benchmark_filter='4096/4096'
// Threads: argument `threads` of each benchmark (tcq::par(threads)); the
// Eigen baseline uses Eigen::setNbThreads(threads).
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "tcq/gptq/hessian.hpp"
#include "tcq/gptq/inverse_hessian.hpp"
#include "tcq/gptq/solver.hpp"
#include "tcq/quant/fit.hpp"
#include "tcq/quant/masked_fit.hpp"

namespace {
using tcq::index_t;

std::vector<float> randn(std::size_t n, unsigned seed, float sd) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.f, sd);
    std::vector<float> v(n);
    for (auto& x : v) x = d(g);
    return v;
}

// 2048 tokens of activations with a low-rank correlated part and uneven scales.
std::vector<float> activations(index_t tokens, index_t cols, unsigned seed) {
    auto x = randn(static_cast<std::size_t>(tokens * cols), seed, 1.f);
    const index_t rank = 8;
    auto f = randn(static_cast<std::size_t>(tokens * rank), seed + 1, 1.f);
    auto m = randn(static_cast<std::size_t>(rank * cols), seed + 2, 1.f);
    for (index_t t = 0; t < tokens; ++t)
        for (index_t c = 0; c < cols; ++c) {
            float v = x[static_cast<std::size_t>(t * cols + c)];
            for (index_t k = 0; k < rank; ++k) v += f[static_cast<std::size_t>(t * rank + k)] * m[static_cast<std::size_t>(k * cols + c)];
            x[static_cast<std::size_t>(t * cols + c)] = v * (1.f + static_cast<float>(c % 17) / 4.f);
        }
    return x;
}

// H of one 2048-token sample, cached per width (only one alive at a time).
const tcq::hessian_accumulator<float>& hessian(index_t cols) {
    static std::unique_ptr<tcq::hessian_accumulator<float>> h;
    if (!h || h->cols() != cols) {
        h.reset();
        auto x = activations(2048, cols, 7);
        h = std::make_unique<tcq::hessian_accumulator<float>>(cols);
        h->add(tcq::make_view(static_cast<const float*>(x.data()), 2048, cols), tcq::par(0));
    }
    return *h;
}

// 3-bit settings from args rows, cols, group size, threads.
struct solve_case {
    index_t rows, cols;
    tcq::gptq_options o;
    tcq::exec_policy pol;
};
solve_case solve_case_of(const benchmark::State& st) {
    solve_case c{st.range(0), st.range(1), {}, tcq::par(static_cast<int>(st.range(3)))};
    c.o.grid.bits = 3;
    c.o.grid.group_size = st.range(2);
    return c;
}

// The weights every solve and fit benchmark quantizes.
std::vector<float> weights(index_t rows, index_t cols) { return randn(static_cast<std::size_t>(rows * cols), 3, 0.02f); }

// Flops of all lazy block updates of a rows × cols solve with blocks of `block`.
double update_flops(index_t rows, index_t cols, index_t block) {
    double flops = 0.0;
    for (index_t i1 = 0; i1 < cols; i1 += block)
        flops += 2.0 * static_cast<double>(rows) * static_cast<double>(block) *
                 static_cast<double>(std::max<index_t>(cols - i1 - block, 0));
    return flops;
}

// ArgNames rows, cols, group, threads; milliseconds, real time.
void solve_args(benchmark::internal::Benchmark* b) {
    b->ArgNames({"rows", "cols", "group", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

void BM_GptqSolve3bit(benchmark::State& st) {
    const auto [rows, cols, o, pol] = solve_case_of(st);
    const auto& H = hessian(cols);
    const auto w = weights(rows, cols);
    tcq::gptq_report rep;
    for (auto _ : st) {
        auto r = tcq::gptq_quantize(tcq::make_view(w.data(), rows, cols), H.view(), o, {}, pol);
        benchmark::DoNotOptimize(r.q.values.data());
        rep = std::move(r.report);
    }
    st.counters["fit_s"] = rep.seconds_fit;
    st.counters["factor_s"] = rep.seconds_factor;
    st.counters["sweep_s"] = rep.seconds_sweep;
    st.counters["update_s"] = rep.seconds_update;
    const double flops = update_flops(rows, cols, o.block_size);
    st.counters["update_GFLOP/s"] = rep.seconds_update > 0 ? flops / rep.seconds_update / 1e9 : 0.0;
}
BENCHMARK(BM_GptqSolve3bit)
    ->Apply(solve_args)
    ->Args({4096, 4096, 0, 2})
    ->Args({4096, 4096, 128, 2})
    ->Args({11008, 4096, 0, 2})
    ->Args({11008, 4096, 128, 2})
    ->Args({4096, 11008, 0, 2})
    ->Args({4096, 11008, 128, 2})
    ->Iterations(1);

// The rvalue overload: W's storage becomes the output (memory target).
void BM_GptqSolve3bitInPlace(benchmark::State& st) {
    const auto [rows, cols, o, pol] = solve_case_of(st);
    const auto& H = hessian(cols);
    for (auto _ : st) {
        st.PauseTiming();
        auto w = weights(rows, cols);
        st.ResumeTiming();
        auto r = tcq::gptq_quantize(std::move(w), rows, cols, H.view(), o, {}, pol);
        benchmark::DoNotOptimize(r.q.values.data());
    }
}
BENCHMARK(BM_GptqSolve3bitInPlace)
    ->Apply(solve_args)
    ->Args({4096, 4096, 0, 2})
    ->Args({11008, 4096, 0, 2})
    ->Args({4096, 11008, 0, 2})
    ->Iterations(1);

// args: cols, tokens, threads
void BM_HessianAdd(benchmark::State& st) {
    const index_t cols = st.range(0), tokens = st.range(1);
    const auto x = activations(tokens, cols, 11);
    tcq::hessian_accumulator<float> h(cols);
    const auto pol = tcq::par(static_cast<int>(st.range(2)));
    for (auto _ : st) h.add(tcq::make_view(x.data(), tokens, cols), pol);
    // Lower triangle (plus diagonal tiles) of XᵀX: ≈ cols²·tokens flops.
    st.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(cols) * cols * tokens,
                                                benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
}
BENCHMARK(BM_HessianAdd)
    ->ArgNames({"cols", "tokens", "threads"})
    ->Args({4096, 2048, 2})
    ->Args({11008, 2048, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// args: cols, method (0 reversed, 1 torch), precision (0 fp32, 1 fp64), threads
void BM_InverseHessian(benchmark::State& st) {
    const index_t cols = st.range(0);
    const auto& H = hessian(cols);
    tcq::hinv_options o;
    o.method = st.range(1) ? tcq::hinv_method::torch : tcq::hinv_method::reversed;
    o.precision = st.range(2) ? tcq::factor_precision::fp64 : tcq::factor_precision::fp32;
    const auto pol = tcq::par(static_cast<int>(st.range(3)));
    for (auto _ : st) {
        auto f = tcq::factor_inverse_hessian(H.view(), {}, o, "H", pol);
        benchmark::DoNotOptimize(f.u.data());
    }
}
BENCHMARK(BM_InverseHessian)
    ->ArgNames({"cols", "torch", "fp64", "threads"})
    ->Args({4096, 0, 0, 2})
    ->Args({4096, 1, 0, 2})
    ->Args({4096, 0, 1, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// All lazy block updates of a rows × cols solve (block 128), alone:
// Σ_blocks rows·128·(cols − i2)·2 flops. args: rows, cols, threads
void BM_LazyBlockUpdates(benchmark::State& st) {
    const index_t rows = st.range(0), cols = st.range(1), B = 128;
    auto w = randn(static_cast<std::size_t>(rows * cols), 1, 1.f);
    const auto e = randn(static_cast<std::size_t>(rows * B), 2, 1e-3f);
    const auto u = randn(static_cast<std::size_t>(cols * cols), 3, 1e-3f);
    const auto pol = tcq::par(static_cast<int>(st.range(2)));
    const double flops = update_flops(rows, cols, B);
    for (auto _ : st)
        for (index_t i1 = 0; i1 < cols; i1 += B)
            tcq::detail::lazy_block_update(w.data(), e.data(), u.data(), rows, cols, B, i1, std::min(i1 + B, cols), pol);
    st.counters["GFLOP/s"] =
        benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_LazyBlockUpdates)
    ->ArgNames({"rows", "cols", "threads"})
    ->Args({4096, 4096, 2})
    ->Args({11008, 4096, 2})
    ->Args({4096, 11008, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// MSE grid fit alone (the reference spends 83 of its 91 s here). args: rows, cols, group, threads
void BM_FitGrid3bit(benchmark::State& st) {
    const auto [rows, cols, o, pol] = solve_case_of(st);
    const auto w = weights(rows, cols);
    for (auto _ : st) benchmark::DoNotOptimize(tcq::fit_grid(tcq::make_view(w.data(), rows, cols), o.grid, pol).params.data());
}
// The same fit through GPTQ's row-batched kernel (bit-identical results).
void BM_FitGridBatched3bit(benchmark::State& st) {
    const auto [rows, cols, o, pol] = solve_case_of(st);
    const auto w = weights(rows, cols);
    for (auto _ : st)
        benchmark::DoNotOptimize(tcq::fit_grid_masked(tcq::make_view(w.data(), rows, cols), o.grid, {}, pol).params.data());
}
BENCHMARK(BM_FitGridBatched3bit)->Apply(solve_args)->Args({4096, 4096, 0, 2})->Args({4096, 4096, 128, 2});
BENCHMARK(BM_FitGrid3bit)->Apply(solve_args)->Args({4096, 4096, 0, 2})->Args({4096, 4096, 128, 2});

// Baseline: one Eigen GEMM 4096³ with Eigen's own threads. arg: threads
void BM_Raw_EigenGemm4096(benchmark::State& st) {
    const index_t n = 4096;
    Eigen::setNbThreads(static_cast<int>(st.range(0)));
    const Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n);
    Eigen::MatrixXf c(n, n);
    for (auto _ : st) {
        c.noalias() = a * b;
        benchmark::DoNotOptimize(c.data());
    }
    Eigen::setNbThreads(0);
    st.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Raw_EigenGemm4096)->ArgNames({"threads"})->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
