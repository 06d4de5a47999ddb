#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "tcq/reference/quant.hpp"
#include "tcq/tcq.hpp"
#include "test_util.hpp"

namespace {
using test_util::randn;
tcq::grid_spec spec_of(int bits, bool sym = false, tcq::index_t g = 0, bool mse = true) {
    tcq::grid_spec s;
    s.bits = bits;
    s.symmetric = sym;
    s.group_size = g;
    s.mse.enabled = mse;
    return s;
}
}  // namespace

TEST_CASE("fit_segment SIMD equals scalar twin bit for bit on odd sizes") {
    for (int bits : {1, 2, 3, 4, 8})
        for (bool sym : {false, true})
            for (float norm : {2.4f, 2.f, 3.f})
                for (std::size_t n : {1u, 7u, 15u, 16u, 17u, 33u, 129u, 1001u, 2053u}) {
                    auto x = randn(n, static_cast<unsigned>(n * 10 + bits), 0.05f);
                    auto s = spec_of(bits, sym);
                    s.mse.norm = norm;
                    const auto a = tcq::fit_segment(x, s);
                    const auto b = tcq::reference::fit_segment(x, s);
                    CHECK(a.scale == b.scale);
                    CHECK(a.zero == b.zero);
                }
}

TEST_CASE("pow_norm: SIMD and float instantiations agree bit for bit with the scalar twin, and are accurate") {
    std::mt19937 g(7);
    std::uniform_real_distribution<float> u(-30.f, 10.f);
    alignas(64) float in[tcq::simd::width], out[tcq::simd::width];
    for (int it = 0; it < 2000; ++it) {
        for (auto& v : in) v = (it % 7 == 0) ? 0.f : std::exp2(u(g)) * ((it & 1) ? -1.f : 1.f);
        tcq::pow_norm(tcq::simd::fbatch::load_aligned(in), 2.4f).store_aligned(out);
        for (std::size_t k = 0; k < tcq::simd::width; ++k) {
            const float ref = tcq::reference::pow_norm(in[k], 2.4f);
            REQUIRE(out[k] == ref);
            REQUIRE(tcq::pow_norm(in[k], 2.4f) == ref);
            const double exact = std::pow(std::fabs(static_cast<double>(in[k])), 2.4);
            INFO("x = ", in[k]);
            CHECK(std::fabs(ref - exact) <= 1e-5 * exact);
        }
    }
    CHECK(tcq::pow_norm(0.f, 2.4f) == 0.f);
    CHECK(tcq::pow_norm(-3.f, 2.f) == 9.f);
    // The edges the lane selects replace early returns for: subnormal, under-
    // and overflow of the result, infinity; each lane type as the twin.
    const float edges[] = {1e-45f, -3e-39f, 1e-20f, 1e-18f, 1e16f, -1e17f, 3e38f, INFINITY, -INFINITY, 1.f, -0.f};
    for (const float p : {2.4f, 3.f, 0.5f})
        for (const float x : edges) {
            INFO("x = ", x, ", p = ", p);
            const float ref = tcq::reference::pow_norm(x, p);
            CHECK(tcq::pow_norm(x, p) == ref);
            tcq::pow_norm(tcq::simd::fbatch(x), p).store_aligned(out);
            CHECK(out[tcq::simd::width - 1] == ref);
        }
    CHECK(tcq::reference::pow_norm(1e-20f, 2.4f) == 0.f);   // 1e-48 underflows
    CHECK(tcq::reference::pow_norm(1e17f, 2.4f) == INFINITY);  // 1e40.8 overflows
}

TEST_CASE("known answers: ties to even, zero row, constant row, symmetric, partial group") {
    SUBCASE("round half to even in quant_code") {
        // x/scale = 2.5 → 2, 3.5 → 4, -0.5 → -0 (+zero)
        CHECK(tcq::quant_code(2.5f, 1.f, 0.f, 15.f) == 2.f);
        CHECK(tcq::quant_code(3.5f, 1.f, 0.f, 15.f) == 4.f);
        CHECK(tcq::quant_code(-0.5f, 1.f, 3.f, 15.f) == 3.f);
        CHECK(tcq::quant_code(-1.5f, 1.f, 3.f, 15.f) == 1.f);
        CHECK(tcq::quant_code(100.f, 1.f, 3.f, 15.f) == 15.f);  // clamped
        CHECK(tcq::quant_code(-100.f, 1.f, 3.f, 15.f) == 0.f);
    }
    SUBCASE("all-zero row uses [-1, 1]") {
        std::vector<float> x(9, 0.f);
        const auto p = tcq::fit_segment(x, spec_of(3, false, 0, false));
        CHECK(p.scale == doctest::Approx(2.f / 7.f));
        CHECK(p.zero == 3.f);  // 1 / fl(2/7) = 3.4999998 in float → 3, as torch computes
        CHECK(tcq::fake_quant(0.f, p.scale, p.zero, 7.f) == 0.f);
    }
    SUBCASE("constant positive row: range widened to include 0") {
        std::vector<float> x(5, 0.7f);
        const auto p = tcq::fit_segment(x, spec_of(2, false, 0, false));
        CHECK(p.scale == 0.7f / 3.f);
        CHECK(p.zero == 0.f);
        CHECK(tcq::fake_quant(0.7f, p.scale, p.zero, 3.f) == doctest::Approx(0.7f));
    }
    SUBCASE("symmetric grid: zero = (maxq+1)/2, range mirrored") {
        std::vector<float> x{-0.2f, 0.5f, 0.1f};
        const auto p = tcq::fit_segment(x, spec_of(4, true, 0, false));
        CHECK(p.zero == 8.f);
        CHECK(p.scale == (0.5f - (-0.5f)) / 15.f);
    }
    SUBCASE("partial last group gets its own grid") {
        std::vector<float> w{1.f, -1.f, 2.f, -2.f, 0.5f, 4.f, 0.f};  // 1 x 7, groups of 3
        const auto g = tcq::fit_grid(tcq::make_view(w.data(), 1, 7), spec_of(2, false, 3, false));
        REQUIRE(g.groups() == 3);
        CHECK(g.at(0, 1).scale == 6.f / 3.f);  // group {-2, 0.5, 4}
        CHECK(g.at(0, 1).zero == 1.f);
        CHECK(g.at(0, 2).scale == 2.f / 3.f);  // group {0}: all zero → [-1, 1]
        CHECK(g.at(0, 0).scale == 3.f / 3.f);  // group {1, -1, 2}
    }
}

TEST_CASE("MSE search error <= min-max error on every row; values lie on the grid") {
    const tcq::index_t R = 23, C = 301;
    auto w = randn(R * C, 99, 0.02f);
    for (int bits : {2, 3, 4})
        for (tcq::index_t gs : {0, 32, 100}) {
            auto Wv = tcq::make_view<const float>(w.data(), R, C);
            auto smse = spec_of(bits, false, gs, true), smm = spec_of(bits, false, gs, false);
            const auto gm = tcq::fit_grid(Wv, smse), g0 = tcq::fit_grid(Wv, smm);
            std::vector<float> qm(w.size()), q0(w.size());
            tcq::fake_quantize(Wv, gm, tcq::make_view(qm.data(), R, C));
            tcq::fake_quantize(Wv, g0, tcq::make_view(q0.data(), R, C));
            const tcq::index_t gc = smse.group_cols(C);
            for (tcq::index_t r = 0; r < R; ++r)
                for (tcq::index_t g = 0; g < gm.groups(); ++g) {
                    double em = 0, e0 = 0;
                    for (tcq::index_t c = g * gc; c < std::min(C, (g + 1) * gc); ++c) {
                        em += std::pow(std::fabs(qm[r * C + c] - w[r * C + c]), 2.4);
                        e0 += std::pow(std::fabs(q0[r * C + c] - w[r * C + c]), 2.4);
                        // on the grid: (q/scale + zero) is an integer code in [0, maxq]
                        const auto p = gm.at(r, g);
                        const float code = tcq::quant_code(w[r * C + c], p.scale, p.zero, smse.maxq());
                        CHECK(qm[r * C + c] == tcq::dequant_code(code, p.scale, p.zero));
                        CHECK(code >= 0.f);
                        CHECK(code <= smse.maxq());
                        CHECK(code == std::nearbyint(code));
                    }
                    CHECK(em <= e0 * (1 + 1e-5));
                }
        }
}

TEST_CASE("fake_quantize / quantize / dequantize: SIMD equals scalar twin, odd sizes, strides") {
    for (auto [R, C, gs] : {std::tuple{1, 1, 0}, {3, 17, 0}, {5, 33, 16}, {7, 129, 32}, {11, 1000, 128}}) {
        const tcq::index_t ld = C + 3;  // strided rows
        auto w = randn(static_cast<std::size_t>(R * ld), static_cast<unsigned>(R * C), 0.1f);
        auto Wv = tcq::make_view<const float>(w.data(), R, C, ld);
        for (int bits : {2, 3, 4, 8}) {
            auto s = spec_of(bits, bits == 3, gs);
            const auto g = tcq::fit_grid(Wv, s, tcq::par(2));
            const auto gref = tcq::reference::fit_grid(Wv, s);
            REQUIRE(g.params == gref.params);
            std::vector<float> a(R * C), b(R * C), d(R * C);
            std::vector<std::uint8_t> ca(R * C), cb(R * C);
            tcq::fake_quantize(Wv, g, tcq::make_view(a.data(), R, C), tcq::par(2));
            tcq::reference::fake_quantize(Wv, g, tcq::make_view(b.data(), R, C));
            CHECK(a == b);
            tcq::quantize(Wv, g, tcq::make_view(ca.data(), R, C));
            tcq::reference::quantize(Wv, g, tcq::make_view(cb.data(), R, C));
            CHECK(ca == cb);
            tcq::dequantize(tcq::make_view<const std::uint8_t>(ca.data(), R, C), g, tcq::make_view(d.data(), R, C));
            CHECK(d == a);
            // in place
            std::vector<float> ip(w);
            tcq::fake_quantize(tcq::make_view(ip.data(), R, C, ld), g);
            for (tcq::index_t r = 0; r < R; ++r)
                for (tcq::index_t c = 0; c < C; ++c) CHECK(ip[r * ld + c] == a[r * C + c]);
        }
    }
}

TEST_CASE("fp16_scale rounds scales to fp16 and fake-quant uses them") {
    auto w = randn(3 * 50, 5, 0.03f);
    auto s = spec_of(3);
    s.fp16_scale = true;
    const auto g = tcq::fit_grid(tcq::make_view<const float>(w.data(), 3, 50), s);
    for (const auto& p : g.params) CHECK(tcq::round_to_half(p.scale) == p.scale);
}

TEST_CASE("grid results are identical for any thread count") {
    auto w = randn(67 * 211, 3, 0.05f);
    auto Wv = tcq::make_view<const float>(w.data(), 67, 211);
    const auto g1 = tcq::fit_grid(Wv, spec_of(3, false, 64), tcq::seq());
    const auto g2 = tcq::fit_grid(Wv, spec_of(3, false, 64), tcq::par(2));
    const auto g5 = tcq::fit_grid(Wv, spec_of(3, false, 64), tcq::par(5));
    CHECK(g1.params == g2.params);
    CHECK(g1.params == g5.params);
}

TEST_CASE("bad input throws tcq::error naming the problem") {
    std::vector<float> w(12, 0.5f);
    auto Wv = tcq::make_view<const float>(w.data(), 3, 4);
    CHECK_THROWS_WITH_AS(tcq::fit_grid(Wv, spec_of(0)), doctest::Contains("unsupported bit width 0"), tcq::error);
    CHECK_THROWS_WITH_AS(tcq::fit_grid(Wv, spec_of(9)), doctest::Contains("unsupported bit width 9"), tcq::error);
    CHECK_THROWS_WITH_AS(tcq::fit_grid(Wv, spec_of(3, false, -2)), doctest::Contains("group size"), tcq::error);
    w[5] = std::nanf("");
    CHECK_THROWS_WITH_AS(tcq::fit_grid(Wv, spec_of(3)), doctest::Contains("non-finite value nan at (1, 1)"), tcq::error);
    w[5] = INFINITY;
    CHECK_THROWS_WITH_AS(tcq::fit_grid(Wv, spec_of(3)), doctest::Contains("fit_grid: W"), tcq::error);
    w[5] = 0.5f;
    const auto g = tcq::fit_grid(Wv, spec_of(3));
    std::vector<float> out(10);
    CHECK_THROWS_WITH_AS(tcq::fake_quantize(Wv, g, tcq::make_view(out.data(), 2, 5)), doctest::Contains("shape mismatch"), tcq::error);
    CHECK_THROWS_WITH_AS(tcq::fake_quantize(tcq::make_view<const float>(w.data(), 4, 3), g, tcq::make_view(out.data(), 4, 3)),
                         doctest::Contains("grid is for 3x4"), tcq::error);
    std::vector<float> wn(w), outn(12);
    wn[7] = -INFINITY;
    CHECK_THROWS_WITH_AS(tcq::fake_quantize(tcq::make_view<const float>(wn.data(), 3, 4), g, tcq::make_view(outn.data(), 3, 4), tcq::par(2)),
                         doctest::Contains("fake_quantize: W: non-finite value -inf at (1, 3)"), tcq::error);
    auto bad = spec_of(3);
    bad.mse.max_shrink = 1.5f;
    CHECK_THROWS_AS(tcq::fit_grid(Wv, bad), tcq::error);
    std::vector<std::uint8_t> codes(12, 9);
    std::vector<float> deq(12);
    CHECK_THROWS_WITH_AS(tcq::dequantize(tcq::make_view<const std::uint8_t>(codes.data(), 3, 4), g, tcq::make_view(deq.data(), 3, 4)),
                         doctest::Contains("exceeds maxq 7"), tcq::error);
    CHECK_THROWS_AS((void)tcq::make_view(w.data(), 3, 4, 2), tcq::error);  // stride < cols
}
