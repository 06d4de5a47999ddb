// Saliency kernels on a 4096x4096 matrix against a memcpy baseline.
// Bandwidth = bytes read + bytes written per second, for the kernels and for
// memcpy alike (memcpy of B bytes touches 2B). Compare bytes_per_second of a
// kernel with BM_Raw_memcpy at the same thread count, within one run.
//   build-select/bench/bench_saliency --benchmark_min_time=0.5

#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "tcq/saliency/accumulator.hpp"
#include "tcq/saliency/scores.hpp"

namespace {
constexpr tcq::index_t R = 4096, C = 4096, N = R * C;

struct inputs {
    std::vector<float> W, Q, A, G2, U, H, out;
    inputs() : W(N), Q(N), A(N), G2(N), U(C), H(C), out(N) {
        std::mt19937 g(1);
        std::normal_distribution<float> nd(0.f, 0.02f);
        std::uniform_real_distribution<float> ud(0.f, 1.f);
        for (tcq::index_t i = 0; i < N; ++i) {
            W[i] = nd(g);
            Q[i] = std::nearbyint(W[i] * 50.f) / 50.f;
            A[i] = ud(g);
            G2[i] = A[i] * A[i];
        }
        for (tcq::index_t j = 0; j < C; ++j) {
            U[j] = 0.1f + ud(g);
            H[j] = 4.f * ud(g);
        }
    }
    tcq::score_inputs view() const {
        tcq::score_inputs in;
        in.W = tcq::make_view(W.data(), R, C);
        in.Q = tcq::make_view(Q.data(), R, C);
        in.grad_abs = tcq::make_view(A.data(), R, C);
        in.grad_sq = tcq::make_view(G2.data(), R, C);
        in.u_diag = U;
        in.h_diag = H;
        in.seed = 3;
        return in;
    }
};

inputs& data() {
    static inputs d;
    return d;
}

/// Matrices a method reads.
int matrices_read(tcq::score_method m) {
    const auto n = tcq::needs(m);
    return int(n.W) + int(n.Q) + int(n.grad_abs) + int(n.grad_sq);
}

void BM_Raw_memcpy(benchmark::State& st) {
    // Copies two 4096x4096 fp32 matrices (128 MiB read + 128 MiB written, the
    // bytes tacq touches); the kernels are compared by rate.
    const int threads = static_cast<int>(st.range(0));
    const std::size_t bytes = 2 * static_cast<std::size_t>(N) * sizeof(float);
    std::vector<char> src(bytes, 1), dst(bytes, 0);
    const auto pol = tcq::par(threads);
    const tcq::index_t chunk = 1 << 22;
    for (auto _ : st) {
        tcq::parallel_for(pol, static_cast<tcq::index_t>(bytes), chunk, [&](tcq::index_t b, tcq::index_t e) {
            std::memcpy(dst.data() + b, src.data() + b, static_cast<std::size_t>(e - b));
        });
        benchmark::DoNotOptimize(dst.data());
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * 2 * static_cast<int64_t>(bytes));
}
BENCHMARK(BM_Raw_memcpy)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_score(benchmark::State& st) {
    const auto m = tcq::all_score_methods[st.range(0)];
    const int threads = static_cast<int>(st.range(1));
    auto& d = data();
    const auto in = d.view();
    const auto out = tcq::make_view(d.out.data(), R, C);
    const auto pol = tcq::par(threads);
    for (auto _ : st) {
        tcq::compute_scores(m, in, out, pol);
        benchmark::ClobberMemory();
    }
    st.SetLabel(std::string(tcq::to_string(m)));
    st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * (matrices_read(m) + 1) * N *
                         static_cast<int64_t>(sizeof(float)));
}
BENCHMARK(BM_score)->ArgsProduct({{0, 1, 2, 3, 4, 5, 6}, {1, 2}})->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_accumulate_abs(benchmark::State& st) {
    // acc += |g|: reads g and acc, writes acc.
    const int threads = static_cast<int>(st.range(0));
    auto& d = data();
    const auto pol = tcq::par(threads);
    std::vector<float> acc(N, 0.f);
    for (auto _ : st) {
        tcq::accumulate_abs(tcq::make_view(acc.data(), R, C), tcq::make_view(d.W.data(), R, C), pol);
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * 3 * N * static_cast<int64_t>(sizeof(float)));
}
BENCHMARK(BM_accumulate_abs)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_accumulator_all(benchmark::State& st) {
    // Σ|g|, Σg, Σg² fused: reads g + 3 sums, writes 3 sums.
    const int threads = static_cast<int>(st.range(0));
    auto& d = data();
    const auto pol = tcq::par(threads);
    tcq::grad_accumulator acc(R, C, tcq::grad_stats::all);
    for (auto _ : st) {
        acc.add(tcq::make_view(d.W.data(), R, C), pol);
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * 7 * N * static_cast<int64_t>(sizeof(float)));
}
BENCHMARK(BM_accumulator_all)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
