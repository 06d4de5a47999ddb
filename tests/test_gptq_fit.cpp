// Batched (SIMD across rows) grid fit vs the per-segment kernel and its scalar twin.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gptq_test_util.hpp"
#include "tcq/quant/batched_fit.hpp"
#include "tcq/quant/masked_fit.hpp"
#include "tcq/reference/gptq.hpp"
#include "tcq/reference/quant.hpp"

using tcq::index_t;

namespace {
constexpr index_t W = static_cast<index_t>(tcq::simd::width);

// Segments of assorted shapes: normal, heavy-tailed, all-positive, zero, constant.
std::vector<float> segment(index_t n, unsigned seed) {
    auto x = gptq_test::randn(static_cast<std::size_t>(n), seed, 0.05f);
    switch (seed % 5) {
        case 1:
            for (std::size_t i = 0; i < x.size(); i += 7) x[i] *= 20.f;
            break;
        case 2:
            for (auto& v : x) v = std::fabs(v) + 0.01f;
            break;
        case 3:
            if (seed % 10 == 3) std::fill(x.begin(), x.end(), 0.f);
            break;
        case 4:
            if (seed % 10 == 4) std::fill(x.begin(), x.end(), -0.3f);
            break;
        default: break;
    }
    return x;
}
}  // namespace

TEST_CASE("fit_segments_transposed equals fit_segment and its scalar twin bit for bit") {
    unsigned seed = 1;
    for (int bits : {1, 2, 3, 4, 8})
        for (bool sym : {false, true})
            for (float norm : {2.4f, 2.f})
                for (index_t n : {1, 7, 16, 17, 33, 128, 129, 301}) {
                    if (norm == 2.f && bits != 3) continue;
                    tcq::grid_spec s;
                    s.bits = bits;
                    s.symmetric = sym;
                    s.mse.norm = norm;
                    s.fp16_scale = (n % 2) == 1;
                    s.mse.enabled = !(bits == 8 && n == 7);
                    std::vector<std::vector<float>> segs;
                    std::vector<float> xt(static_cast<std::size_t>(n * W));
                    for (index_t l = 0; l < W; ++l) {
                        segs.push_back(segment(n, seed++));
                        for (index_t k = 0; k < n; ++k) xt[static_cast<std::size_t>(k * W + l)] = segs.back()[static_cast<std::size_t>(k)];
                    }
                    tcq::grid_param out[tcq::simd::width];
                    tcq::fit_segments_transposed(xt.data(), n, s, out);
                    for (index_t l = 0; l < W; ++l) {
                        INFO("bits ", bits, " sym ", sym, " norm ", norm, " n ", n, " lane ", l);
                        const auto ref = tcq::reference::fit_segment(segs[static_cast<std::size_t>(l)], s);
                        REQUIRE(out[l] == ref);
                        REQUIRE(out[l] == tcq::fit_segment(segs[static_cast<std::size_t>(l)], s));
                    }
                }
}

TEST_CASE("fit_rows_batched with kept entries equals the masked twin; partial batches") {
    const index_t rows = 2 * W + 3, n = 45;
    auto w = gptq_test::randn(static_cast<std::size_t>(rows * n), 17, 0.05f);
    std::mt19937 g(5);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    std::vector<char> kept(w.size());
    for (auto& k : kept) k = u(g) < 0.08f;
    for (index_t k = 0; k < n; ++k) kept[static_cast<std::size_t>(4 * n + k)] = 1;  // a fully kept row
    for (std::size_t i = 0; i < w.size(); ++i)
        if (kept[i]) w[i] = 30.f;  // would dominate the grid if not ignored
    tcq::grid_spec s;
    s.bits = 3;
    std::vector<tcq::grid_param> got(static_cast<std::size_t>(rows));
    std::vector<float> scratch;
    tcq::fit_rows_batched(
        1, rows, n, [&](index_t r, index_t k) { return w[static_cast<std::size_t>(r * n + k)]; },
        [&](index_t r, index_t k) { return kept[static_cast<std::size_t>(r * n + k)] != 0; }, true, s,
        [&](index_t r, tcq::grid_param p) { got[static_cast<std::size_t>(r)] = p; }, scratch);
    for (index_t r = 1; r < rows; ++r) {
        const auto ref = tcq::reference::fit_segment_masked(
            std::span<const float>(w.data() + r * n, static_cast<std::size_t>(n)),
            [&](std::size_t k) { return kept[static_cast<std::size_t>(r * n) + k] != 0; }, s);
        CHECK(got[static_cast<std::size_t>(r)] == ref);
    }
    CHECK(got[0] == tcq::grid_param{});  // row 0 was outside [1, rows)
}

TEST_CASE("fit_grid_masked (batched) equals the scalar twin; unusable ranges throw") {
    const index_t rows = 37, cols = 91;
    auto w = gptq_test::randn(static_cast<std::size_t>(rows * cols), 23, 0.05f);
    const auto Wv = tcq::make_view(static_cast<const float*>(w.data()), rows, cols);
    tcq::mask m(rows, cols);
    for (index_t f = 3; f < rows * cols; f += 41) m.set(f);
    for (index_t group : {index_t{0}, index_t{16}, index_t{40}}) {
        tcq::grid_spec s;
        s.bits = 3;
        s.group_size = group;
        for (const tcq::mask* k : std::initializer_list<const tcq::mask*>{&m, nullptr}) {
            const tcq::mask empty;
            const auto a = tcq::fit_grid_masked(Wv, s, k ? *k : empty, tcq::par(2));
            const auto b = tcq::reference::fit_grid_masked(Wv, s, k ? *k : empty);
            CHECK(a.params == b.params);
        }
    }
    std::vector<float> huge(static_cast<std::size_t>(2 * cols), 0.f);
    huge[5] = 3e38f;
    huge[6] = -3e38f;  // range overflows: the scale is infinite
    tcq::grid_spec s;
    CHECK_THROWS_AS((void)tcq::fit_grid_masked(tcq::make_view(static_cast<const float*>(huge.data()), 2, cols), s, {}),
                    tcq::error);
}
