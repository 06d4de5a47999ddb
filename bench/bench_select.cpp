// Global exact top-k over ~100M scores in 24 matrices (4096x1024 each,
// 100.7M scores, 403 MB), k = 0.35%, against a read-bandwidth baseline
// (BM_Raw_read: a SIMD max over the same bytes). Each pass of the selection
// reads every score once; compare bytes_per_second of BM_pass1 / BM_pass2
// with BM_Raw_read at the same thread count, within one run; the full
// selections report per-pass bandwidth = 2 × bytes / time.
//   build-select/bench/bench_select --benchmark_min_time=0.5

#include <benchmark/benchmark.h>

#include <vector>

#include "tcq/saliency/scores.hpp"
#include "tcq/select/topk.hpp"

namespace {
constexpr int M = 24;
constexpr tcq::index_t R = 4096, C = 1024, per = R * C, N = per * M;
constexpr double ratio = 0.0035;

struct scores {
    std::vector<float> data;
    std::vector<tcq::scored_matrix> mats;
    std::vector<tcq::matrix_shape> shapes;
    scores() : data(static_cast<std::size_t>(N)) {
        // Heavy-tailed, saliency-like: u^4 of a hashed uniform (24 random bits).
        tcq::parallel_for(tcq::par(2), N, 1 << 20, [&](tcq::index_t b, tcq::index_t e) {
            for (tcq::index_t i = b; i < e; ++i) {
                const float u = tcq::score_math::random_score(42, static_cast<std::uint64_t>(i));
                data[static_cast<std::size_t>(i)] = (u * u) * (u * u);
            }
        });
        for (int m = 0; m < M; ++m) {
            std::string name = "blk";
            name += std::to_string(m);
            mats.push_back({name, tcq::make_view(static_cast<const float*>(data.data()) + m * per, R, C)});
            shapes.push_back({name, R, C});
        }
    }
};

scores& data() {
    static scores s;
    return s;
}

constexpr auto bytes = static_cast<int64_t>(N) * static_cast<int64_t>(sizeof(float));

void BM_Raw_read(benchmark::State& st) {
    auto& s = data();
    const auto pol = tcq::par(static_cast<int>(st.range(0)));
    for (auto _ : st) {
        const float mx = tcq::parallel_reduce(
            pol, N, 1 << 20, 0.f,
            [&](tcq::index_t b, tcq::index_t e) {
                using fb = tcq::simd::fbatch;
                fb a(0.f), c(0.f);
                tcq::index_t i = b;
                for (; i + 2 * static_cast<tcq::index_t>(fb::size) <= e; i += 2 * fb::size) {
                    a = xsimd::max(a, fb::load_unaligned(s.data.data() + i));
                    c = xsimd::max(c, fb::load_unaligned(s.data.data() + i + fb::size));
                }
                float r = xsimd::hadd(xsimd::max(a, c));  // a checksum, not a max; only keeps the loads alive
                for (; i < e; ++i) r += s.data[static_cast<std::size_t>(i)];
                return r;
            },
            [](float x, float y) { return x + y; });
        benchmark::DoNotOptimize(mx);
    }
    st.SetBytesProcessed(st.iterations() * bytes);
}
BENCHMARK(BM_Raw_read)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

tcq::index_t k_of() { return tcq::resolve_budget(tcq::budget::of_ratio(ratio), tcq::select_scope::global, data().shapes)[0]; }

void BM_pass1_histogram(benchmark::State& st) {
    auto& s = data();
    const auto pol = tcq::par(static_cast<int>(st.range(0)));
    const auto k = k_of();
    tcq::boundary_cut cut;
    for (auto _ : st) {
        tcq::score_histogram h(k);
        for (const auto& m : s.mats) h.add(m.scores, "scores", pol);
        cut = h.cut();
    }
    st.SetBytesProcessed(st.iterations() * bytes);
    st.counters["k"] = static_cast<double>(k);
    st.counters["in_bucket"] = static_cast<double>(cut.in_bucket);
}
BENCHMARK(BM_pass1_histogram)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_pass2_mark(benchmark::State& st) {
    auto& s = data();
    const auto pol = tcq::par(static_cast<int>(st.range(0)));
    tcq::score_histogram h(k_of());
    for (const auto& m : s.mats) h.add(m.scores, "scores", pol);
    const auto cut = h.cut();
    std::vector<tcq::mask> masks(M, tcq::mask(R, C));
    for (auto _ : st) {
        tcq::boundary_candidates c(cut);
        for (int m = 0; m < M; ++m) tcq::mark_above(cut, m, s.mats[m].scores, masks[m], c, "scores", pol);
        benchmark::DoNotOptimize(c.resolve());
    }
    st.SetBytesProcessed(st.iterations() * bytes);
}
BENCHMARK(BM_pass2_mark)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_select_in_memory(benchmark::State& st) {
    auto& s = data();
    const auto pol = tcq::par(static_cast<int>(st.range(0)));
    const auto b = tcq::budget::of_ratio(ratio);
    tcq::index_t sel = 0;
    for (auto _ : st) sel = tcq::select_topk(s.mats, b, tcq::select_scope::global, pol).selected;
    st.SetBytesProcessed(st.iterations() * 2 * bytes);  // two passes
    st.counters["selected"] = static_cast<double>(sel);
}
BENCHMARK(BM_select_in_memory)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_select_streaming(benchmark::State& st) {
    auto& s = data();
    const auto pol = tcq::par(static_cast<int>(st.range(0)));
    const auto b = tcq::budget::of_ratio(ratio);
    int calls = 0;
    const tcq::score_provider provide = [&](tcq::index_t m, int) {
        ++calls;
        return s.mats[static_cast<std::size_t>(m)].scores;
    };
    for (auto _ : st) {
        calls = 0;
        benchmark::DoNotOptimize(tcq::select_streaming(s.shapes, provide, b, tcq::select_scope::global, pol));
    }
    st.SetBytesProcessed(st.iterations() * 2 * bytes);
    st.counters["passes"] = static_cast<double>(calls) / M;
}
BENCHMARK(BM_select_streaming)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_select_per_matrix(benchmark::State& st) {
    auto& s = data();
    const auto pol = tcq::par(static_cast<int>(st.range(0)));
    for (auto _ : st)
        benchmark::DoNotOptimize(tcq::select_topk(s.mats, tcq::budget::of_ratio(ratio), tcq::select_scope::per_matrix, pol));
    st.SetBytesProcessed(st.iterations() * 2 * bytes);
}
BENCHMARK(BM_select_per_matrix)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_select_per_row(benchmark::State& st) {
    // One pass; nth_element per row.
    auto& s = data();
    const auto pol = tcq::par(static_cast<int>(st.range(0)));
    for (auto _ : st)
        benchmark::DoNotOptimize(tcq::select_topk(s.mats, tcq::budget::of_ratio(ratio), tcq::select_scope::per_row, pol));
    st.SetBytesProcessed(st.iterations() * bytes);
}
BENCHMARK(BM_select_per_row)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
