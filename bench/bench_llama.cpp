// Forward and per-sample-gradient FLOP rate of the Llama-family engine on the
// SmolLM2-135M shape (576 wide, 30 layers, 9/3 heads, 1536 SwiGLU, vocab
// 49152, tied) with 512-token sequences, as a fraction of this machine's GEMM
// peak measured in-process: `threads` threads each running Eigen's
// single-threaded GEMM Y = X Wᵀ of the model's dominant shape (1024 × 576 ·
// 576 × 1536). Arg = threads. Not for CI: one iteration takes seconds.
// BM_Fixture_*: the same paths (plus staged capture and KV-cached decode) on
// the fixture's llama2.c shape (dim 192, hidden 512, 6 layers, 6/3 heads,
// vocab 259, 256-token windows), with raw Eigen GEMMs of its dominant shapes.
#include <benchmark/benchmark.h>

#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "llama/backward.hpp"
#include "llama/decode.hpp"
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

/// The timed loop of the gradient benchmarks: every per-sample gradient of
/// `n` sequences of `T` tokens, on st.range(0) threads.
void time_gradients(benchmark::State& st, const llama::model& m, const std::vector<std::int32_t>& toks, index_t n,
                    index_t T) {
    const auto view = tcq::make_view(toks.data(), n, T);
    for (auto _ : st) {
        float sink = 0;
        (void)llama::per_sample_gradients(m, view, tcq::par(static_cast<int>(st.range(0))),
                                          [&](index_t, index_t, llama::linear_kind, tcq::matrix_view<const float> g) {
                                              sink += g(0, 0);
                                          });
        benchmark::DoNotOptimize(sink);
    }
}

void BM_PerSampleGradients(benchmark::State& st) {
    const auto& m = bench_model();
    time_gradients(st, m, bench_tokens(4, m.cfg().vocab_size), 4, seq_len);
    set_counters(st, 4, sequence_flops(m.cfg(), seq_len).gradient);
}
BENCHMARK(BM_PerSampleGradients)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

// ---- The fixture's shape -------------------------------------------------

constexpr index_t fixture_len = 256;

llama::config fixture_shape() {
    llama::config c;
    c.dim = 192;
    c.hidden_dim = 512;
    c.n_layers = 6;
    c.n_heads = 6;
    c.n_kv_heads = 3;
    c.head_dim = 32;
    c.vocab_size = 259;
    c.max_seq = fixture_len;
    c.tied = true;
    c.rope = llama::rope_pairs::interleaved;
    c.norm_eps = 1e-5f;
    return c;
}

const llama::model& fixture_model() {
    static const llama::model m = llama::random_model(fixture_shape(), 1, 0.05f);
    return m;
}

/// `n` windows of byte tokens (ids 3..258), as the fixture's evaluation sees.
std::vector<std::int32_t> fixture_tokens(index_t n) {
    std::mt19937 g(3);
    std::vector<std::int32_t> t(static_cast<std::size_t>(n * fixture_len));
    for (auto& x : t) x = static_cast<std::int32_t>(3 + g() % 256);
    return t;
}

/// Like set_counters, without the (SmolLM2-shaped) peak: the Raw_ GEMMs below are the baseline.
void set_fixture_counters(benchmark::State& st, index_t seqs, double flop_per_seq) {
    const double it = static_cast<double>(st.iterations());
    st.counters["tokens/s"] = benchmark::Counter(it * seqs * fixture_len, benchmark::Counter::kIsRate);
    st.counters["GFLOP/s"] = benchmark::Counter(it * seqs * flop_per_seq / 1e9, benchmark::Counter::kIsRate);
}

void BM_Fixture_Forward(benchmark::State& st) {
    const auto& m = fixture_model();
    const auto toks = fixture_tokens(8);
    const auto view = tcq::make_view(toks.data(), 8, fixture_len);
    for (auto _ : st) benchmark::DoNotOptimize(llama::sequence_losses(m, view, tcq::par(static_cast<int>(st.range(0)))));
    set_fixture_counters(st, 8, sequence_flops(m.cfg(), fixture_len).forward);
}
BENCHMARK(BM_Fixture_Forward)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Fixture_StagedForwardCapture(benchmark::State& st) {
    const auto& m = fixture_model();
    const auto toks = fixture_tokens(8);
    const auto view = tcq::make_view(toks.data(), 8, fixture_len);
    for (auto _ : st) {
        auto h = llama::embed(m, view);
        float sink = 0;
        for (index_t l = 0; l < m.cfg().n_layers; ++l)
            llama::block_forward(m, l, h, tcq::par(static_cast<int>(st.range(0))),
                                 [&](llama::linear_kind, index_t, tcq::matrix_view<const float> X) { sink += X(0, 0); });
        benchmark::DoNotOptimize(sink);
    }
    // No classifier: the blocks only.
    const auto& c = m.cfg();
    set_fixture_counters(st, 8, sequence_flops(c, fixture_len).forward - 2.0 * fixture_len * c.vocab_size * c.dim);
}
BENCHMARK(BM_Fixture_StagedForwardCapture)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Fixture_PerSampleGradients(benchmark::State& st) {
    const auto& m = fixture_model();
    time_gradients(st, m, fixture_tokens(4), 4, fixture_len);
    set_fixture_counters(st, 4, sequence_flops(m.cfg(), fixture_len).gradient);
}
BENCHMARK(BM_Fixture_PerSampleGradients)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Fixture_DecodeStep(benchmark::State& st) {
    const auto& m = fixture_model();
    llama::decoder dec(m);
    std::int32_t t = 40;
    for (auto _ : st) {
        if (dec.position() == dec.capacity()) dec.reset();
        t = llama::argmax(dec.step(t));
    }
    st.counters["tokens/s"] = benchmark::Counter(static_cast<double>(st.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Fixture_DecodeStep)->Unit(benchmark::kMicrosecond);

// Baselines: the fixture's dominant GEMMs, one thread, 512 rows (a chunk of
// two sequences): Y = X Wᵀ (forward) and dW = dYᵀ X (backward, one sequence).
void BM_Raw_EigenGemmForward(benchmark::State& st) {
    const index_t out = st.range(0), in = st.range(1);
    const RowMatrixXf X = RowMatrixXf::Random(512, in), W = RowMatrixXf::Random(out, in);
    RowMatrixXf Y(512, out);
    for (auto _ : st) {
        Y.noalias() = X * W.transpose();
        benchmark::DoNotOptimize(Y.data());
    }
    st.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(st.iterations()) * 2.0 * 512 * out * in / 1e9,
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Raw_EigenGemmForward)->Args({512, 192})->Args({192, 512})->Args({192, 192});

void BM_Raw_EigenGemmWeightGrad(benchmark::State& st) {
    const index_t out = st.range(0), in = st.range(1);
    const RowMatrixXf X = RowMatrixXf::Random(fixture_len, in), dY = RowMatrixXf::Random(fixture_len, out);
    RowMatrixXf dW(out, in);
    for (auto _ : st) {
        dW.noalias() = dY.transpose() * X;
        benchmark::DoNotOptimize(dW.data());
    }
    st.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(st.iterations()) * 2.0 * fixture_len * out * in / 1e9,
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Raw_EigenGemmWeightGrad)->Args({512, 192})->Args({192, 512})->Args({192, 192});

}  // namespace
