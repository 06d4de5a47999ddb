// Grid fitting and fake-quantization on a 4096 x 4096 fp32 matrix, beside a
// memcpy baseline of the same bytes and the scalar twins.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "tcq/reference/quant.hpp"
#include "tcq/tcq.hpp"

namespace {
constexpr tcq::index_t N = 4096;

const std::vector<float>& weights() {
    static const std::vector<float> w = [] {
        std::vector<float> v(static_cast<std::size_t>(N * N));
        std::mt19937 g(1);
        std::normal_distribution<float> d(0.f, 0.02f);
        for (auto& x : v) x = d(g);
        return v;
    }();
    return w;
}

tcq::grid_spec spec(tcq::index_t group, bool mse) {
    tcq::grid_spec s;
    s.bits = 3;
    s.group_size = group;
    s.mse.enabled = mse;
    return s;
}

void set_counters(benchmark::State& st, double bytes_per_iter) {
    st.counters["bytes/s"] = benchmark::Counter(bytes_per_iter, benchmark::Counter::kIsIterationInvariantRate);
    st.counters["elements/s"] = benchmark::Counter(double(N) * N, benchmark::Counter::kIsIterationInvariantRate);
}

// Baseline: the bytes a fake-quantize moves (read W, write out), via memcpy, split like the kernel.
void BM_Raw_memcpy(benchmark::State& st) {
    const auto& w = weights();
    std::vector<float> out(w.size());
    const auto pol = tcq::par(static_cast<int>(st.range(0)));
    for (auto _ : st) {
        tcq::parallel_for(pol, N, 16, [&](tcq::index_t r0, tcq::index_t r1) {
            std::memcpy(out.data() + r0 * N, w.data() + r0 * N, static_cast<std::size_t>((r1 - r0) * N) * 4);
        });
        benchmark::ClobberMemory();
    }
    set_counters(st, 2.0 * N * N * 4);
}
BENCHMARK(BM_Raw_memcpy)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_fake_quantize(benchmark::State& st) {
    const auto& w = weights();
    std::vector<float> out(w.size());
    const auto W = tcq::make_view<const float>(w.data(), N, N);
    const auto g = tcq::fit_grid(W, spec(st.range(1), false), tcq::par());
    const auto pol = tcq::par(static_cast<int>(st.range(0)));
    for (auto _ : st) {
        tcq::fake_quantize(W, g, tcq::make_view(out.data(), N, N), pol);
        benchmark::ClobberMemory();
    }
    set_counters(st, 2.0 * N * N * 4);
}
BENCHMARK(BM_fake_quantize)->Args({1, 0})->Args({2, 0})->Args({2, 128})->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_fake_quantize_scalar_twin(benchmark::State& st) {
    const auto& w = weights();
    std::vector<float> out(w.size());
    const auto W = tcq::make_view<const float>(w.data(), N, N);
    const auto g = tcq::fit_grid(W, spec(0, false), tcq::par());
    for (auto _ : st) {
        tcq::reference::fake_quantize(W, g, tcq::make_view(out.data(), N, N));
        benchmark::ClobberMemory();
    }
    set_counters(st, 2.0 * N * N * 4);
}
BENCHMARK(BM_fake_quantize_scalar_twin)->UseRealTime()->Unit(benchmark::kMillisecond);

// MSE fit (80 candidates, norm 2.4), per row and g = 128; args: threads, group.
void BM_fit_mse(benchmark::State& st) {
    const auto W = tcq::make_view<const float>(weights().data(), N, N);
    const auto pol = tcq::par(static_cast<int>(st.range(0)));
    for (auto _ : st) benchmark::DoNotOptimize(tcq::fit_grid(W, spec(st.range(1), true), pol));
    set_counters(st, double(N) * N * 4);
}
BENCHMARK(BM_fit_mse)->Args({1, 0})->Args({2, 0})->Args({2, 128})->UseRealTime()->Unit(benchmark::kMillisecond);

// Scalar twin of the MSE fit on 256 rows (scaled to the whole matrix in elements/s).
void BM_fit_mse_scalar_twin(benchmark::State& st) {
    const auto W = tcq::make_view<const float>(weights().data(), 256, N);
    for (auto _ : st) benchmark::DoNotOptimize(tcq::reference::fit_grid(W, spec(0, true)));
    st.counters["elements/s"] = benchmark::Counter(256.0 * N, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_fit_mse_scalar_twin)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_fit_minmax(benchmark::State& st) {
    const auto W = tcq::make_view<const float>(weights().data(), N, N);
    for (auto _ : st) benchmark::DoNotOptimize(tcq::fit_grid(W, spec(0, false), tcq::par(2)));
    set_counters(st, double(N) * N * 4);
}
BENCHMARK(BM_fit_minmax)->UseRealTime()->Unit(benchmark::kMillisecond);
}  // namespace
