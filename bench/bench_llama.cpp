// Forward and per-sample-gradient FLOP rate of the Llama-family engine on the
// SmolLM2-135M shape (576 wide, 30 layers, 9/3 heads, 1536 SwiGLU, vocab
// 49152, tied) with 512-token sequences, as a fraction of this machine's GEMM
// peak measured in-process: `threads` threads each running Eigen's
// single-threaded GEMM Y = X Wᵀ of the model's dominant shape (1024 × 576 ·
// 576 × 1536). Arg = threads. Not for CI: one iteration takes seconds.
#include <benchmark/benchmark.h>

#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "llama/backward.hpp"
#include "llama/ladder.hpp"

namespace {

using llama::index_t;
using llama::RowMatrixXf;

constexpr index_t seq_len = 512;

const llama::model& bench_model() {
    static const llama::model m = llama::random_model(llama::ladder_config("smollm2-135m"), 1, 0.02f);
    return m;
}

std::vector<std::int32_t> bench_tokens(index_t n, index_t vocab) {
    std::mt19937 g(3);
    std::vector<std::int32_t> t(static_cast<std::size_t>(n * seq_len));
    for (auto& x : t) x = static_cast<std::int32_t>(g() % static_cast<unsigned>(vocab));
    return t;
}

/// Useful FLOPs of one sequence: linear layers, classifier, causal attention.
struct flops {
    double forward = 0, gradient = 0;
};
flops sequence_flops(const llama::config& c, index_t T) {
    double lin = 0;
    for (auto k : llama::all_linear_kinds) {
        const auto [r, cc] = llama::linear_shape(c, k);
        lin += static_cast<double>(r) * static_cast<double>(cc);
    }
    lin *= 2.0 * T * c.n_layers;
    const double cls = 2.0 * T * c.vocab_size * c.dim;
    const double att = 2.0 * 2.0 * c.head_dim * (T * (T + 1) / 2.0) * c.n_heads * c.n_layers;
    const double fwd = lin + cls + att;
    // Gradient: forward, the recomputed forward of every block, and the backward
    // (dX and dW of every GEMM; no dX for the first block's input projections).
    return {fwd, fwd + (lin + att) + (2 * lin + cls + 2 * att)};
}

/// GEMM GFLOP/s of `threads` threads each running Y = X Wᵀ (1024 × 576 · 576 × 1536), for ~0.3 s.
double gemm_peak(int threads) {
    static std::vector<double> cache(64, 0.0);
    if (cache[static_cast<std::size_t>(threads)] > 0) return cache[static_cast<std::size_t>(threads)];
    const index_t M = 1024, K = 576, N = 1536;
    std::vector<std::thread> pool;
    std::vector<double> rate(static_cast<std::size_t>(threads));
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            const RowMatrixXf X = RowMatrixXf::Random(M, K), W = RowMatrixXf::Random(N, K);
            RowMatrixXf Y(M, N);
            Y.noalias() = X * W.transpose();  // warm-up
            const auto t0 = std::chrono::steady_clock::now();
            int reps = 0;
            double s = 0;
            do {
                Y.noalias() = X * W.transpose();
                ++reps;
                s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            } while (s < 0.3);
            benchmark::DoNotOptimize(Y.data());
            rate[static_cast<std::size_t>(t)] = reps * 2.0 * M * K * N / s / 1e9;
        });
    for (auto& p : pool) p.join();
    double sum = 0;
    for (double r : rate) sum += r;
    return cache[static_cast<std::size_t>(threads)] = sum;
}

void set_counters(benchmark::State& st, index_t seqs, double flop_per_seq) {
    const double it = static_cast<double>(st.iterations());
    st.counters["tokens/s"] = benchmark::Counter(it * seqs * seq_len, benchmark::Counter::kIsRate);
    st.counters["GFLOP/s"] = benchmark::Counter(it * seqs * flop_per_seq / 1e9, benchmark::Counter::kIsRate);
    const double peak = gemm_peak(static_cast<int>(st.range(0)));
    st.counters["peak_GFLOP/s"] = peak;
    // Fraction of the in-process GEMM peak: GFLOP/s is a rate, so compute it from the timings.
    st.counters["of_peak"] = benchmark::Counter(it * seqs * flop_per_seq / 1e9 / peak, benchmark::Counter::kIsRate);
}

void BM_Forward(benchmark::State& st) {
    const auto& m = bench_model();
    const auto toks = bench_tokens(4, m.cfg().vocab_size);
    const auto view = tcq::make_view(toks.data(), 4, seq_len);
    for (auto _ : st) benchmark::DoNotOptimize(llama::sequence_losses(m, view, tcq::par(static_cast<int>(st.range(0)))));
    set_counters(st, 4, sequence_flops(m.cfg(), seq_len).forward);
}
BENCHMARK(BM_Forward)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

void BM_PerSampleGradients(benchmark::State& st) {
    const auto& m = bench_model();
    const auto toks = bench_tokens(4, m.cfg().vocab_size);
    const auto view = tcq::make_view(toks.data(), 4, seq_len);
    for (auto _ : st) {
        float sink = 0;
        (void)llama::per_sample_gradients(m, view, tcq::par(static_cast<int>(st.range(0))),
                                          [&](index_t, index_t, llama::linear_kind, tcq::matrix_view<const float> g) {
                                              sink += g(0, 0);
                                          });
        benchmark::DoNotOptimize(sink);
    }
    set_counters(st, 4, sequence_flops(m.cfg(), seq_len).gradient);
}
BENCHMARK(BM_PerSampleGradients)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace
