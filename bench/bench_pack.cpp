// Fused dequant GEMV on packed matrices vs a read-bandwidth baseline over the
// same bytes and an fp32 Eigen GEMV, on LLM shapes (rows × cols): the
// fp32-exact kernel (tcq::gemv, BM_PackedGemv), the int8-activation kernel
// (tcq::gemv_int8 / gemv_batch_int8, BM_PackedGemvInt8) and a layer stack (all 7
// linears of 4 Llama-7B blocks in sequence, BM_LayerStack).
//
// Every benchmark rotates over enough copies of its data to exceed 256 MB, so
// each call streams from DRAM as in real inference (the 32 MB L3 would
// otherwise hold the smaller matrices). Counters:
//   GB/s       bytes of the packed matrix (codes + stats + kept) per second
//              of the fastest call (the reported time is the mean)
//   bw_frac    GB/s ÷ the read bandwidth measured in-process over the same
//              bytes, layout and thread count (BM_Raw_ReadBandwidth's kernel)
//   x_eigen    speed-up over the fp32 Eigen GEMV measured in-process
//   bits/w     exact bits per weight (core/storage_cost.hpp)
//   x_fp32k    (int8) speed-up over the fp32-exact tcq::gemv, same run
//   x_batch1   (int8, n > 1) time ÷ the batch-1 time of the same kernel, same run
//   x_fp32     (stack) speed-up over the fp32 Eigen stack, same run
// Compare ratios within one run: the machine is shared and noisy.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "packed_fixture.hpp"
#include "tcq/core/eigen.hpp"
#include "tcq/pack/gemv_batch_int8.hpp"
#include "tcq/pack/gemv.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace {

using tcq::index_t;
constexpr std::size_t rotation_bytes = std::size_t{256} << 20;
constexpr double density = 0.0035;
constexpr index_t group_size = 128;

std::size_t copies_for(std::size_t bytes) { return std::max<std::size_t>(1, (rotation_bytes + bytes - 1) / bytes); }

tcq::packed_matrix make_packed(index_t rows, index_t cols, int bits, unsigned seed) {
    return bench_fixture::make_packed(rows, cols, bits, seed, density, group_size);
}

std::uint64_t packed_bytes(const tcq::packed_info& i) {
    return i.code_bytes() + i.scale_bytes() + i.zero_bytes() + i.g_idx_bytes() + i.value_bytes() +
           i.low_col_bytes() + i.bitmap_bytes() + i.skip_bytes();
}

// Sum of all floats of a buffer: the read-bandwidth kernel.
float read_sum(const float* p, std::size_t n) {
#if defined(__AVX512F__)
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    std::size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + i + 48));
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
#else
    float s = 0.f;
    std::size_t i = 0;
#endif
    for (; i < n; ++i) s += p[i];
    return s;
}

struct read_set {
    std::vector<std::vector<float>> bufs;
    float run(std::size_t i, const tcq::exec_policy& pol) const {
        const auto& b = bufs[i % bufs.size()];
        const auto n = static_cast<index_t>(b.size());
        std::vector<float> part(64, 0.f);
        tcq::parallel_for(pol, 64, 1, [&](index_t c0, index_t) {
            const index_t lo = n * c0 / 64, hi = n * (c0 + 1) / 64;
            part[static_cast<std::size_t>(c0)] = read_sum(b.data() + lo, static_cast<std::size_t>(hi - lo));
        });
        float s = 0.f;
        for (float v : part) s += v;
        return s;
    }
};

read_set make_read_set(std::uint64_t bytes) {
    read_set s;
    const std::size_t c = copies_for(bytes);
    for (std::size_t i = 0; i < c; ++i) s.bufs.emplace_back(static_cast<std::size_t>(bytes / 4), 1.f);
    return s;
}

template <class F>
double best_seconds(F&& f, int reps = 20) {
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        f(r);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

struct eigen_set {
    std::vector<tcq::RowMatrixXf> W;
    Eigen::VectorXf x, y;
    void run(std::size_t i, const tcq::exec_policy& pol) {
        const auto& M = W[i % W.size()];
        tcq::parallel_for(pol, M.rows(), (M.rows() + 1) / 2, [&](index_t r0, index_t r1) {
            y.segment(r0, r1 - r0).noalias() = M.middleRows(r0, r1 - r0) * x;
        });
    }
};

eigen_set& eigen_for(index_t rows, index_t cols) {
    static std::map<std::pair<index_t, index_t>, std::unique_ptr<eigen_set>> cache;
    const auto key = std::make_pair(rows, cols);
    if (!cache.count(key)) {
        cache.clear();  // keep one shape resident at a time
        auto e = std::make_unique<eigen_set>();
        const std::size_t c = copies_for(static_cast<std::size_t>(rows * cols) * 4);
        for (std::size_t i = 0; i < c; ++i) e->W.push_back(tcq::RowMatrixXf::Random(rows, cols));
        e->x = Eigen::VectorXf::Random(cols);
        e->y = Eigen::VectorXf::Zero(rows);
        cache[key] = std::move(e);
    }
    return *cache[key];
}

struct gemv_set {
    std::vector<tcq::packed_matrix> mats;
    std::vector<float> x, y;
};

gemv_set& gemv_for(index_t rows, index_t cols, int bits) {
    static std::map<std::tuple<index_t, index_t, int>, std::unique_ptr<gemv_set>> cache;
    const auto key = std::make_tuple(rows, cols, bits);
    if (!cache.count(key)) {
        cache.clear();
        auto s = std::make_unique<gemv_set>();
        s->mats.push_back(make_packed(rows, cols, bits, 42));
        const std::size_t c = copies_for(packed_bytes(s->mats[0].info()));
        for (std::size_t i = 1; i < c; ++i) s->mats.emplace_back(s->mats[0].view());
        s->x.resize(static_cast<std::size_t>(cols));
        std::mt19937 g(1);
        std::normal_distribution<float> nd;
        for (auto& v : s->x) v = nd(g);
        s->y.resize(static_cast<std::size_t>(rows));
        cache[key] = std::move(s);
    }
    return *cache[key];
}

// Args: rows, cols, bits, threads.
void BM_PackedGemv(benchmark::State& state) {
    const index_t rows = state.range(0), cols = state.range(1);
    const int bits = static_cast<int>(state.range(2)), threads = static_cast<int>(state.range(3));
    const auto pol = tcq::par(threads);
    auto& s = gemv_for(rows, cols, bits);
    const auto bytes = packed_bytes(s.mats[0].info());
    // In-process baselines over the same bytes / shape and thread count.
    const read_set rd = make_read_set(bytes);
    const double t_read = best_seconds([&](int r) { benchmark::DoNotOptimize(rd.run(static_cast<std::size_t>(r), pol)); });
    auto& e = eigen_for(rows, cols);
    const double t_eigen = best_seconds([&](int r) { e.run(static_cast<std::size_t>(r), pol); }, 10);
    std::size_t i = 0;
    for (int w = 0; w < 3; ++w) tcq::gemv(s.mats[i++ % s.mats.size()].view(), s.x, s.y, pol);  // warm-up
    double best = 1e30;
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        tcq::gemv(s.mats[i++ % s.mats.size()].view(), s.x, s.y, pol);
        benchmark::DoNotOptimize(s.y.data());
        benchmark::ClobberMemory();
        const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        state.SetIterationTime(t);
        best = std::min(best, t);
    }
    // Counters use the fastest call and the fastest baseline runs: on a shared
    // machine the minimum is the least disturbed measurement of each.
    state.counters["GB/s"] = static_cast<double>(bytes) / best / 1e9;
    state.counters["read_GB/s"] = static_cast<double>(bytes) / t_read / 1e9;
    state.counters["bw_frac"] = t_read / best;
    state.counters["x_eigen"] = t_eigen / best;
    state.counters["bits/w"] = s.mats[0].bits_used().per_weight();
}

// Read bandwidth over the bytes of the packed 3-bit matrix of each shape. Args: rows, cols, threads.
void BM_Raw_ReadBandwidth(benchmark::State& state) {
    const index_t rows = state.range(0), cols = state.range(1);
    const auto pol = tcq::par(static_cast<int>(state.range(2)));
    tcq::packed_info info;
    info.rows = rows;
    info.cols = cols;
    info.bits = 3;
    info.group_size = group_size;
    info.kept = static_cast<index_t>(density * static_cast<double>(rows * cols));
    const auto bytes = packed_bytes(info);
    const read_set rd = make_read_set(bytes);
    std::size_t i = 0;
    for (auto _ : state) benchmark::DoNotOptimize(rd.run(i++, pol));
    state.counters["GB/s"] = benchmark::Counter(static_cast<double>(bytes) / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// fp32 Eigen GEMV. Args: rows, cols, threads.
void BM_Raw_EigenGemv(benchmark::State& state) {
    const index_t rows = state.range(0), cols = state.range(1);
    const auto pol = tcq::par(static_cast<int>(state.range(2)));
    auto& e = eigen_for(rows, cols);
    std::size_t i = 0;
    for (auto _ : state) {
        e.run(i++, pol);
        benchmark::DoNotOptimize(e.y.data());
    }
    state.counters["GB/s"] = benchmark::Counter(static_cast<double>(rows * cols) * 4 / 1e9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

// Times f(i) for every iteration (i counts calls, for rotation); returns the fastest call.
template <class F>
double timed_loop(benchmark::State& state, F&& f) {
    for (int w = 0; w < 3; ++w) f(static_cast<std::size_t>(w));  // warm-up
    std::size_t i = 3;
    double best = 1e30;
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        f(i++);
        benchmark::ClobberMemory();
        const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        state.SetIterationTime(t);
        best = std::min(best, t);
    }
    return best;
}

// int8-activation product. Args: rows, cols, bits, threads, vectors.
void BM_PackedGemvInt8(benchmark::State& state) {
    const index_t rows = state.range(0), cols = state.range(1), n = state.range(4);
    const int bits = static_cast<int>(state.range(2)), threads = static_cast<int>(state.range(3));
    const auto pol = tcq::par(threads);
    auto& s = gemv_for(rows, cols, bits);
    const auto bytes = packed_bytes(s.mats[0].info());
    std::vector<float> X(static_cast<std::size_t>(n * cols)), Y(static_cast<std::size_t>(n * rows));
    for (index_t v = 0; v < n; ++v) std::copy(s.x.begin(), s.x.end(), X.begin() + v * cols);
    const auto Xv = tcq::make_view(static_cast<const float*>(X.data()), n, cols);
    const auto Yv = tcq::make_view(Y.data(), n, rows);
    const read_set rd = make_read_set(bytes);
    const double t_read = best_seconds([&](int r) { benchmark::DoNotOptimize(rd.run(static_cast<std::size_t>(r), pol)); });
    std::size_t j = 0;
    const double t_fp32k = best_seconds([&](int) { tcq::gemv(s.mats[j++ % s.mats.size()].view(), s.x, s.y, pol); });
    const double t_b1 = n == 1 ? 0.0 : best_seconds([&](int) {
        tcq::gemv_int8(s.mats[j++ % s.mats.size()].view(), s.x, s.y, pol);
    });
    const double best = timed_loop(state, [&](std::size_t i) {
        tcq::gemv_batch_int8(s.mats[i % s.mats.size()].view(), Xv, Yv, pol);
        benchmark::DoNotOptimize(Y.data());
    });
    state.counters["GB/s"] = static_cast<double>(bytes) / best / 1e9;
    state.counters["read_GB/s"] = static_cast<double>(bytes) / t_read / 1e9;
    state.counters["bw_frac"] = t_read / best;
    state.counters["x_fp32k"] = t_fp32k / best * static_cast<double>(n);  // per vector
    if (n > 1) state.counters["x_batch1"] = best / t_b1;
    state.counters["bits/w"] = s.mats[0].bits_used().per_weight();
}

// The 7 linears of a Llama-7B block (rows × cols): q, k, v, o, gate, up, down.
const std::vector<std::pair<index_t, index_t>> llama_block = {{4096, 4096},  {4096, 4096},  {4096, 4096}, {4096, 4096},
                                                              {11008, 4096}, {11008, 4096}, {4096, 11008}};
constexpr int stack_blocks = 4;

struct stack_set {
    std::vector<tcq::packed_matrix> mats;  // stack_blocks × 7, in call order
    std::vector<std::vector<float>> x, y;  // per linear of a block
    std::uint64_t bytes = 0;
};

stack_set& stack_for(int bits) {
    static std::map<int, std::unique_ptr<stack_set>> cache;
    if (!cache.count(bits)) {
        cache.clear();
        auto s = std::make_unique<stack_set>();
        std::map<std::pair<index_t, index_t>, tcq::packed_matrix> proto;
        for (auto [r, c] : llama_block)
            if (!proto.count({r, c})) proto.emplace(std::make_pair(r, c), make_packed(r, c, bits, 7));
        for (int b = 0; b < stack_blocks; ++b)
            for (auto [r, c] : llama_block) {
                s->mats.emplace_back(proto.at({r, c}).view());  // distinct copies: every call streams from DRAM
                s->bytes += packed_bytes(s->mats.back().info());
            }
        std::mt19937 g(3);
        std::normal_distribution<float> nd;
        for (auto [r, c] : llama_block) {
            s->x.emplace_back(static_cast<std::size_t>(c));
            for (auto& v : s->x.back()) v = nd(g);
            s->y.emplace_back(static_cast<std::size_t>(r));
        }
        cache[bits] = std::move(s);
    }
    return *cache[bits];
}

// One Llama-7B block's linears in fp32 (809 MB; the stack streams it stack_blocks
// times: the same DRAM traffic as distinct blocks without 3.2 GB of copies).
struct eigen_stack {
    std::vector<tcq::RowMatrixXf> W;
    std::vector<Eigen::VectorXf> x, y;
    std::uint64_t bytes = 0;
    void run(const tcq::exec_policy& pol) {
        for (int b = 0; b < stack_blocks; ++b)
            for (std::size_t m = 0; m < W.size(); ++m) {
                const auto& M = W[m];
                auto& ym = y[m];
                const auto& xm = x[m];
                tcq::parallel_for(pol, M.rows(), (M.rows() + 1) / 2, [&](index_t r0, index_t r1) {
                    ym.segment(r0, r1 - r0).noalias() = M.middleRows(r0, r1 - r0) * xm;
                });
            }
    }
};

eigen_stack& eigen_stack_instance() {
    static std::unique_ptr<eigen_stack> e;
    if (!e) {
        e = std::make_unique<eigen_stack>();
        for (auto [r, c] : llama_block) {
            e->W.push_back(tcq::RowMatrixXf::Random(r, c));
            e->x.push_back(Eigen::VectorXf::Random(c));
            e->y.push_back(Eigen::VectorXf::Zero(r));
            e->bytes += static_cast<std::uint64_t>(r * c) * 4 * stack_blocks;
        }
    }
    return *e;
}

// Per-token time of the layer stack. Args: bits, threads, kernel (0 int8, 1 fp32-exact).
void BM_LayerStack(benchmark::State& state) {
    const int bits = static_cast<int>(state.range(0)), threads = static_cast<int>(state.range(1));
    const bool int8 = state.range(2) == 0;
    const auto pol = tcq::par(threads);
    auto& s = stack_for(bits);
    const read_set rd = make_read_set(s.bytes);
    const double t_read = best_seconds([&](int r) { benchmark::DoNotOptimize(rd.run(static_cast<std::size_t>(r), pol)); }, 10);
    auto& e = eigen_stack_instance();
    const double t_fp32 = best_seconds([&](int) { e.run(pol); }, 3);
    const double best = timed_loop(state, [&](std::size_t) {
        for (std::size_t m = 0; m < s.mats.size(); ++m) {
            const std::size_t l = m % llama_block.size();
            if (int8)
                tcq::gemv_int8(s.mats[m].view(), s.x[l], s.y[l], pol);
            else
                tcq::gemv(s.mats[m].view(), s.x[l], s.y[l], pol);
        }
        benchmark::DoNotOptimize(s.y.data());
    });
    state.counters["GB/s"] = static_cast<double>(s.bytes) / best / 1e9;
    state.counters["read_GB/s"] = static_cast<double>(s.bytes) / t_read / 1e9;
    state.counters["bw_frac"] = t_read / best;
    state.counters["x_fp32"] = t_fp32 / best;
    state.counters["fp32_ms"] = t_fp32 * 1e3;
    state.counters["MB"] = static_cast<double>(s.bytes) / 1e6;
}

const std::vector<std::pair<index_t, index_t>> shapes = {{4096, 4096}, {11008, 4096}, {8192, 8192}};

void gemv_args(benchmark::internal::Benchmark* b) {
    for (auto [r, c] : shapes)
        for (int bits : {2, 3, 4})
            for (int t : {1, 2}) b->Args({r, c, bits, t});
}
void int8_args(benchmark::internal::Benchmark* b) {
    for (auto [r, c] : {std::pair<index_t, index_t>{4096, 4096}, {11008, 4096}})
        for (int bits : {2, 3, 4})
            for (int t : {1, 2}) b->Args({r, c, bits, t, 1});
    for (int t : {1, 2}) b->Args({4096, 4096, 3, t, 4});
    b->Args({4096, 4096, 3, 1, 8});
    b->Args({4096, 4096, 8, 1, 1});
}
void stack_args(benchmark::internal::Benchmark* b) {
    for (int bits : {2, 3, 4})
        for (int t : {1, 2}) b->Args({bits, t, 0});
    for (int t : {1, 2}) b->Args({3, t, 1});
}
void shape_args(benchmark::internal::Benchmark* b) {
    for (auto [r, c] : shapes)
        for (int t : {1, 2}) b->Args({r, c, t});
}

}  // namespace

BENCHMARK(BM_PackedGemv)->Apply(gemv_args)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PackedGemvInt8)->Apply(int8_args)->ArgNames({"rows", "cols", "bits", "threads", "n"})->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_LayerStack)->Apply(stack_args)->ArgNames({"bits", "threads", "fp32k"})->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Raw_ReadBandwidth)->Apply(shape_args)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Raw_EigenGemv)->Apply(shape_args)->UseRealTime()->Unit(benchmark::kMicrosecond);
