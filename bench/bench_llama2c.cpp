// Throughput of the llama2c reference engine on the fixture's shapes (dim 192,
// hidden 512, 6 layers, 6/3 heads, vocab 259, 256-token windows), with raw
// Eigen GEMMs of the dominant shapes as the baseline. Arg = threads.
#include <benchmark/benchmark.h>

#include <random>

#include "l2c.hpp"

namespace {

using l2c::index_t;

l2c::config fixture_shape() {
    l2c::config c;
    c.dim = 192;
    c.hidden_dim = 512;
    c.n_layers = 6;
    c.n_heads = 6;
    c.n_kv_heads = 3;
    c.vocab_size = 259;
    c.seq_len = 256;
    return c;
}

const l2c::model& bench_model() {
    static const l2c::model m = l2c::random_model(fixture_shape(), 1, 0.05f);
    return m;
}

l2c::token_batch bench_tokens(index_t n) {
    std::mt19937 g(3);
    l2c::token_batch b(n, 256);
    for (auto& t : b.tokens) t = static_cast<std::int32_t>(3 + g() % 256);
    return b;
}

/// Useful FLOPs of one sequence: linear layers, classifier and the causal
/// triangle of attention (the tiles compute a little more).
struct flops {
    double forward = 0, backward = 0;
};
flops sequence_flops(const l2c::model& m, index_t T) {
    const auto& c = m.cfg();
    const double lin = 2.0 * T * static_cast<double>(m.n_linear_weights());
    const double cls = 2.0 * T * c.vocab_size * c.dim;
    const double att = 2.0 * 2.0 * c.head_size() * (T * (T + 1) / 2.0) * c.n_heads * c.n_layers;
    return {lin + cls + att, 2 * lin + cls + 2 * att};  // backward: dX and dW of every GEMM
}

void set_counters(benchmark::State& st, index_t seqs, double flop_per_seq) {
    const double it = static_cast<double>(st.iterations());
    st.counters["tokens/s"] = benchmark::Counter(it * seqs * 256, benchmark::Counter::kIsRate);
    st.counters["GFLOP/s"] = benchmark::Counter(it * seqs * flop_per_seq / 1e9, benchmark::Counter::kIsRate);
}

void BM_Forward(benchmark::State& st) {
    const auto& m = bench_model();
    const auto toks = bench_tokens(8);
    for (auto _ : st) benchmark::DoNotOptimize(l2c::sequence_losses(m, toks.view(), tcq::par(static_cast<int>(st.range(0)))));
    set_counters(st, 8, sequence_flops(m, 256).forward);
}
BENCHMARK(BM_Forward)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_StagedForwardCapture(benchmark::State& st) {
    const auto& m = bench_model();
    const auto toks = bench_tokens(8);
    for (auto _ : st) {
        auto h = l2c::embed(m, toks.view());
        float sink = 0;
        for (index_t l = 0; l < m.cfg().n_layers; ++l)
            l2c::block_forward(m, l, h, tcq::par(static_cast<int>(st.range(0))),
                               [&](l2c::linear_kind, index_t, tcq::matrix_view<const float> X) { sink += X(0, 0); });
        benchmark::DoNotOptimize(sink);
    }
    set_counters(st, 8, sequence_flops(m, 256).forward);
}
BENCHMARK(BM_StagedForwardCapture)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_PerSampleGradients(benchmark::State& st) {
    const auto& m = bench_model();
    const auto toks = bench_tokens(4);
    for (auto _ : st) {
        float sink = 0;
        l2c::per_sample_gradients(m, toks.view(), tcq::par(static_cast<int>(st.range(0))),
                                  [&](index_t, index_t, l2c::linear_kind, tcq::matrix_view<const float> g) { sink += g(0, 0); });
        benchmark::DoNotOptimize(sink);
    }
    const auto f = sequence_flops(m, 256);
    set_counters(st, 4, f.forward + f.backward);
}
BENCHMARK(BM_PerSampleGradients)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_DecodeStep(benchmark::State& st) {
    const auto& m = bench_model();
    l2c::decoder dec(m);
    std::int32_t t = 40;
    for (auto _ : st) {
        if (dec.position() == dec.capacity()) dec.reset();
        t = l2c::argmax(dec.step(t));
    }
    st.counters["tokens/s"] = benchmark::Counter(static_cast<double>(st.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeStep)->Unit(benchmark::kMicrosecond);

// Baselines: the engine's dominant GEMMs, single-threaded, 512 rows (a chunk
// of two sequences): Y = X Wᵀ (forward) and dW = dYᵀ X (backward).
void BM_Raw_EigenGemmForward(benchmark::State& st) {
    const index_t out = st.range(0), in = st.range(1);
    const l2c::RowMatrixXf X = l2c::RowMatrixXf::Random(512, in), W = l2c::RowMatrixXf::Random(out, in);
    l2c::RowMatrixXf Y(512, out);
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
    const l2c::RowMatrixXf X = l2c::RowMatrixXf::Random(256, in), dY = l2c::RowMatrixXf::Random(256, out);
    l2c::RowMatrixXf dW(out, in);
    for (auto _ : st) {
        dW.noalias() = dY.transpose() * X;
        benchmark::DoNotOptimize(dW.data());
    }
    st.counters["GFLOP/s"] = benchmark::Counter(static_cast<double>(st.iterations()) * 2.0 * 256 * out * in / 1e9,
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Raw_EigenGemmWeightGrad)->Args({512, 192})->Args({192, 512})->Args({192, 192});

}  // namespace
