// Bad-input suite: every public entry point against wrong shapes and strides,
// NaN / Inf / denormals, unsupported bits and group sizes, empty inputs.
// Harness and conventions: tests/bad_input.hpp. One table per area; to cover
// a new entry point, add a `bad::table <area>_rows()` and a TEST_CASE that
// runs it (see the TODO tables at the end).
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "bad_input.hpp"
#include "tcq/tcq.hpp"

namespace {

using tcq::index_t;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kDenorm = 1e-40f;  // subnormal float
constexpr float kDenormMin = std::numeric_limits<float>::denorm_min();

/// A small finite matrix, values in (-1, 1).
std::vector<float> sample(index_t rows, index_t cols) {
    std::vector<float> w(static_cast<std::size_t>(rows * cols));
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.7f * static_cast<float>(i) + 0.3f);
    return w;
}

tcq::grid_spec spec(int bits = 4, index_t group = 0) {
    tcq::grid_spec s;
    s.bits = bits;
    s.group_size = group;
    return s;
}

/// fit_grid on a rows × cols copy of `w` with spec `s`.
tcq::grid fit(const std::vector<float>& w, index_t rows, index_t cols, const tcq::grid_spec& s) {
    return tcq::fit_grid(tcq::make_view<const float>(w.data(), rows, cols), s);
}

/// Everything the fitted grid promises on finite input: positive finite
/// scales, integer zeros in [0, maxq], and outputs that are finite.
void check_defined(const std::vector<float>& w, index_t rows, index_t cols, const tcq::grid_spec& s) {
    const auto g = fit(w, rows, cols, s);
    REQUIRE(static_cast<index_t>(g.params.size()) == rows * s.groups(cols));
    for (const auto& p : g.params) {
        CHECK(std::isfinite(p.scale));
        CHECK(p.scale > 0.f);
        CHECK(p.zero == std::nearbyint(p.zero));
        CHECK(p.zero >= 0.f);
        CHECK(p.zero <= s.maxq());
    }
    bad::guarded<float> out(rows, cols);
    tcq::fake_quantize(tcq::make_view<const float>(w.data(), rows, cols), g, out.view());
    CHECK(out.intact());
    for (index_t r = 0; r < rows; ++r)
        for (index_t c = 0; c < cols; ++c) CHECK(std::isfinite(out.at(r, c)));
}

// ---------------------------------------------------------------- views --
bad::table view_rows() {
    static float buf[64] = {};
    return {
        bad::error("make_view", "matrix_view", "negative extent -1x2", [] { (void)tcq::make_view(buf, -1, 2); }),
        bad::error("make_view", "matrix_view", "negative extent 2x-3", [] { (void)tcq::make_view(buf, 2, -3); }),
        bad::error("matrix_view(p, r, c, stride)", "matrix_view", "row stride 3 is smaller than cols 4",
                   [] { (void)tcq::matrix_view<float>(buf, 2, 4, 3); }),
        bad::error("matrix_view(p, r, c, stride)", "matrix_view", "row stride -8 is smaller than cols 4",
                   [] { (void)tcq::matrix_view<float>(buf, 2, 4, -8); }),
        bad::error("make_view", "matrix_view", "null data for a 2x4 matrix",
                   [] { (void)tcq::make_view<float>(nullptr, 2, 4); }),
        bad::error("matrix_view::block", "matrix_view::block", "outside 2x4",
                   [] { (void)tcq::make_view(buf, 2, 4).block(1, 1, 2, 1); }),
        bad::error("matrix_view::block", "matrix_view::block", "outside 2x4",
                   [] { (void)tcq::make_view(buf, 2, 4).block(-1, 0, 1, 1); }),
        bad::error("matrix_view::block", "matrix_view::block", "outside 2x4",
                   [] { (void)tcq::make_view(buf, 2, 4).block(0, 0, 1, -1); }),
        bad::error("as_view (Eigen)", "Eigen adapter", "inner stride 2 is not 1", [] {
            Eigen::Map<tcq::RowMatrixXf, 0, Eigen::Stride<Eigen::Dynamic, 2>> m(buf, 3, 4, {8, 2});
            (void)tcq::as_view(m);
        }),
        bad::ok("make_view", "null data, empty shapes 0x0, 0x5, 5x0", [] {
            for (auto [r, c] : {std::pair<index_t, index_t>{0, 0}, {0, 5}, {5, 0}}) {
                const auto v = tcq::make_view<float>(nullptr, r, c);
                CHECK(v.empty());
                CHECK(v.size() == 0);
            }
        }),
        bad::ok("matrix_view(p, r, c, stride)", "one row: any stride is legal", [] {
            const tcq::matrix_view<float> v(buf, 1, 8, 0);
            CHECK(v.contiguous());
        }),
        bad::ok("matrix_view::block", "empty block at the far corner", [] {
            CHECK(tcq::make_view(buf, 2, 4).block(2, 4, 0, 0).empty());
        }),
    };
}

// ------------------------------------------------------------- fit_grid --
bad::table fit_rows() {
    auto bad_spec = [](auto edit) {
        return [edit] {
            auto s = spec();
            edit(s);
            (void)fit(sample(2, 8), 2, 8, s);
        };
    };
    auto with_value = [](index_t at, float v) {
        return [at, v] {
            auto w = sample(3, 5);
            w[static_cast<std::size_t>(at)] = v;
            (void)fit(w, 3, 5, spec());
        };
    };
    return {
        bad::error("fit_grid", "fit_grid", "unsupported bit width 0", bad_spec([](auto& s) { s.bits = 0; })),
        bad::error("fit_grid", "fit_grid", "unsupported bit width 9", bad_spec([](auto& s) { s.bits = 9; })),
        bad::error("fit_grid", "fit_grid", "unsupported bit width -3", bad_spec([](auto& s) { s.bits = -3; })),
        bad::error("fit_grid", "fit_grid", "unsupported bit width 32", bad_spec([](auto& s) { s.bits = 32; })),
        bad::error("fit_grid", "fit_grid", "group size -1 is negative", bad_spec([](auto& s) { s.group_size = -1; })),
        bad::error("fit_grid", "fit_grid", "MSE grid 0 must be positive", bad_spec([](auto& s) { s.mse.grid = 0; })),
        bad::error("fit_grid", "fit_grid", "MSE max_shrink 0 must lie in (0, 1]",
                   bad_spec([](auto& s) { s.mse.max_shrink = 0.f; })),
        bad::error("fit_grid", "fit_grid", "MSE max_shrink 1.5 must lie in (0, 1]",
                   bad_spec([](auto& s) { s.mse.max_shrink = 1.5f; })),
        bad::error("fit_grid", "fit_grid", "MSE norm nan must be positive and finite",
                   bad_spec([](auto& s) { s.mse.norm = kNaN; })),
        bad::error("fit_grid", "fit_grid", "MSE norm -1 must be positive and finite",
                   bad_spec([](auto& s) { s.mse.norm = -1.f; })),
        bad::error("fit_grid", "fit_grid: W", "non-finite value nan at (1, 0)", with_value(5, kNaN)),
        bad::error("fit_grid", "fit_grid: W", "non-finite value inf at (2, 4)", with_value(14, kInf)),
        bad::error("fit_grid", "fit_grid: W", "non-finite value -inf at (0, 0)", with_value(0, -kInf)),
        bad::ok("fit_grid", "NaN in the stride gap is never read", [] {
            bad::guarded<float> w(3, 5, 0.25f);
            w.at(1, 5) = kNaN;  // the gap after row 1
            const auto g = tcq::fit_grid(tcq::matrix_view<const float>(w.view()), spec());
            CHECK(g.params.size() == 3);
        }),
        bad::ok("fit_grid", "empty 0x0, 0x5, 5x0", [] {
            for (auto [r, c] : {std::pair<index_t, index_t>{0, 0}, {0, 5}, {5, 0}}) {
                const auto g = tcq::fit_grid(tcq::make_view<const float>(nullptr, r, c), spec(3, 4));
                CHECK(g.params.empty());
                CHECK(g.rows == r);
                CHECK(g.cols == c);
            }
        }),
        bad::ok("fit_grid", "group size larger than cols: one partial group", [] {
            check_defined(sample(2, 5), 2, 5, spec(3, 128));
            CHECK(spec(3, 128).groups(5) == 1);
        }),
        bad::ok("fit_grid", "group size not dividing cols: last group partial", [] {
            check_defined(sample(3, 10), 3, 10, spec(2, 4));
            CHECK(spec(2, 4).groups(10) == 3);
        }),
        bad::ok("fit_grid", "every bit width 1..8 on odd sizes", [] {
            for (int b = 1; b <= 8; ++b) check_defined(sample(3, 17), 3, 17, spec(b, 0));
        }),
        bad::ok("fit_grid", "denormal weights among normal ones", [] {
            auto w = sample(2, 9);
            w[1] = kDenorm;
            w[10] = -kDenormMin;
            check_defined(w, 2, 9, spec(3));
        }),
        bad::ok("fit_grid", "a row of denormals (1e-40)", [] {
            check_defined({kDenorm, -kDenorm, 0.f, 3 * kDenorm}, 1, 4, spec(4));
        }),
        bad::ok("fit_grid", "a row of the smallest denormal", [] {
            check_defined({kDenormMin, 0.f, kDenormMin, 0.f}, 1, 4, spec(4));
        }),
        bad::error("fit_grid", "fit_grid: W", "scale", [] {
            (void)fit({3e38f, -3e38f, 0.f, 1.f}, 1, 4, spec());
        }),
        bad::error("fit_grid (fp16_scale)", "fit_grid", "not representable in fp16", [] {
            auto s = spec();
            s.fp16_scale = true;
            (void)fit({1e9f, -1e9f, 0.f, 1.f}, 1, 4, s);
        }),
    };
}

// ---------------------------------------------- fake_quantize / quantize --
struct fitted {  // a 2 x 6 matrix and its 4-bit per-row grid
    std::vector<float> w = sample(2, 6);
    tcq::grid g = fit(w, 2, 6, spec());
    [[nodiscard]] tcq::matrix_view<const float> W() const { return {w.data(), 2, 6}; }
};

bad::table fake_quant_rows() {
    return {
        bad::error("fake_quantize", "fake_quantize", "grid is for 2x6, matrix is 3x4", [] {
            fitted f;
            bad::guarded<float> out(3, 4);
            tcq::fake_quantize(tcq::make_view<const float>(f.w.data(), 3, 4), f.g, out.view());
        }),
        bad::error("fake_quantize", "fake_quantize", "grid holds 1 parameters, expected 2", [] {
            fitted f;
            f.g.params.pop_back();
            bad::guarded<float> out(2, 6);
            tcq::fake_quantize(f.W(), f.g, out.view());
        }),
        bad::error("fake_quantize", "fake_quantize", "unsupported bit width 12", [] {
            fitted f;
            f.g.spec.bits = 12;
            bad::guarded<float> out(2, 6);
            tcq::fake_quantize(f.W(), f.g, out.view());
        }),
        bad::error("fake_quantize", "fake_quantize: out", "shape mismatch, expected 2x6, got 2x5", [] {
            fitted f;
            bad::guarded<float> out(2, 5);
            tcq::fake_quantize(f.W(), f.g, out.view());
        }),
        bad::error("fake_quantize", "fake_quantize: W", "non-finite value nan at (1, 2)", [] {
            fitted f;
            f.w[8] = kNaN;
            bad::guarded<float> out(2, 6);
            try {
                tcq::fake_quantize(f.W(), f.g, out.view());
            } catch (...) {
                CHECK(out.intact());
                throw;
            }
        }),
        bad::error("fake_quantize", "fake_quantize: W", "non-finite value -inf at (0, 5)", [] {
            fitted f;
            f.w[5] = -kInf;
            tcq::fake_quantize(tcq::make_view(f.w.data(), 2, 6), f.g);  // in place
        }),
        bad::error("fake_quantize", "fake_quantize", "scale", [] {
            fitted f;
            f.g.params[1].scale = 0.f;
            bad::guarded<float> out(2, 6);
            tcq::fake_quantize(f.W(), f.g, out.view());
        }),
        bad::error("quantize", "quantize", "scale", [] {
            fitted f;
            f.g.params[0].scale = kNaN;
            bad::guarded<std::uint8_t> codes(2, 6);
            tcq::quantize(f.W(), f.g, codes.view());
        }),
        bad::ok("fake_quantize", "strided output: the row gaps stay untouched", [] {
            fitted f;
            bad::guarded<float> out(2, 6);
            tcq::fake_quantize(f.W(), f.g, out.view());
            CHECK(out.intact());
        }),
        bad::ok("fake_quantize", "denormal inputs map to finite grid values", [] {
            fitted f;
            f.w[3] = kDenorm;
            f.w[7] = -kDenormMin;
            bad::guarded<float> out(2, 6);
            tcq::fake_quantize(f.W(), f.g, out.view());
            CHECK(out.intact());
            CHECK(std::isfinite(out.at(0, 3)));
            CHECK(out.at(1, 1) == tcq::fake_quant(-kDenormMin, f.g.at(1, 0).scale, f.g.at(1, 0).zero, 15.f));
        }),
        bad::ok("fake_quantize / quantize / dequantize", "empty 0x0, 0x5, 5x0", [] {
            for (auto [r, c] : {std::pair<index_t, index_t>{0, 0}, {0, 5}, {5, 0}}) {
                const auto W = tcq::make_view<const float>(nullptr, r, c);
                const auto g = tcq::fit_grid(W, spec());
                tcq::fake_quantize(W, g, tcq::make_view<float>(nullptr, r, c));
                tcq::quantize(W, g, tcq::make_view<std::uint8_t>(nullptr, r, c));
                tcq::dequantize(tcq::make_view<const std::uint8_t>(nullptr, r, c), g, tcq::make_view<float>(nullptr, r, c));
            }
        }),
        bad::error("quantize", "quantize: codes", "shape mismatch, expected 2x6, got 6x2", [] {
            fitted f;
            bad::guarded<std::uint8_t> codes(6, 2);
            tcq::quantize(f.W(), f.g, codes.view());
        }),
        bad::error("quantize", "quantize: W", "non-finite value nan at (0, 0)", [] {
            fitted f;
            f.w[0] = kNaN;
            bad::guarded<std::uint8_t> codes(2, 6);
            try {
                tcq::quantize(f.W(), f.g, codes.view());
            } catch (...) {
                CHECK(codes.intact());
                throw;
            }
        }),
        bad::error("quantize", "quantize", "grid is for 2x6, matrix is 1x6", [] {
            fitted f;
            bad::guarded<std::uint8_t> codes(1, 6);
            tcq::quantize(tcq::make_view<const float>(f.w.data(), 1, 6), f.g, codes.view());
        }),
        bad::error("dequantize", "dequantize", "code 16 at (1, 0) exceeds maxq 15", [] {
            fitted f;
            bad::guarded<std::uint8_t> codes(2, 6, 3);
            codes.at(1, 0) = 16;
            bad::guarded<float> out(2, 6);
            try {
                tcq::dequantize(codes.view(), f.g, out.view());
            } catch (...) {
                CHECK(out.intact());
                throw;
            }
        }),
        bad::error("dequantize", "dequantize: out", "shape mismatch, expected 2x6, got 2x7", [] {
            fitted f;
            bad::guarded<std::uint8_t> codes(2, 6);
            bad::guarded<float> out(2, 7);
            tcq::dequantize(codes.view(), f.g, out.view());
        }),
        bad::ok("quantize + dequantize", "round trip equals fake_quantize, gaps untouched", [] {
            fitted f;
            bad::guarded<std::uint8_t> codes(2, 6);
            bad::guarded<float> back(2, 6), fq(2, 6);
            tcq::quantize(f.W(), f.g, codes.view());
            tcq::dequantize(codes.view(), f.g, back.view());
            tcq::fake_quantize(f.W(), f.g, fq.view());
            CHECK(codes.intact());
            CHECK(back.intact());
            for (index_t r = 0; r < 2; ++r)
                for (index_t c = 0; c < 6; ++c) CHECK(back.at(r, c) == fq.at(r, c));
        }),
    };
}

// ------------------------------------------------------ fp16 / bf16 ------
bad::table half_rows() {
    return {
        bad::error("to_half", "to_half", "size mismatch, input 3 vs output 2", [] {
            std::vector<float> in(3);
            std::vector<std::uint16_t> out(2);
            tcq::to_half(in, out);
        }),
        bad::error("from_half", "from_half", "size mismatch, input 2 vs output 3", [] {
            std::vector<std::uint16_t> in(2);
            std::vector<float> out(3);
            tcq::from_half(in, out);
        }),
        bad::error("to_bf16", "to_bf16", "size mismatch, input 17 vs output 16", [] {
            std::vector<float> in(17);
            std::vector<std::uint16_t> out(16);
            tcq::to_bf16(in, out);
        }),
        bad::error("from_bf16", "from_bf16", "size mismatch, input 0 vs output 1", [] {
            std::vector<std::uint16_t> in;
            std::vector<float> out(1);
            tcq::from_bf16(in, out);
        }),
        bad::ok("to_half / from_half / to_bf16 / from_bf16", "empty spans", [] {
            tcq::to_half({}, {});
            tcq::from_half({}, {});
            tcq::to_bf16({}, {});
            tcq::from_bf16({}, {});
        }),
        bad::ok("to_half / to_bf16", "NaN stays NaN, ±Inf stays ±Inf, overflow → Inf (SIMD and tail)", [] {
            std::vector<float> in(19, 1.f);
            in[0] = kNaN, in[1] = kInf, in[2] = -kInf, in[3] = 1e6f, in[17] = kNaN, in[18] = -1e6f;
            std::vector<std::uint16_t> h(in.size()), b(in.size());
            tcq::to_half(in, h);
            tcq::to_bf16(in, b);
            for (std::size_t i : {0u, 17u}) {
                CHECK((h[i] & 0x7c00u) == 0x7c00u);
                CHECK((h[i] & 0x03ffu) != 0u);
                CHECK(std::isnan(tcq::bf16_to_float(b[i])));
            }
            CHECK(h[1] == 0x7c00u);
            CHECK(h[2] == 0xfc00u);
            CHECK(h[3] == 0x7c00u);
            CHECK(h[18] == 0xfc00u);
            CHECK(tcq::bf16_to_float(b[1]) == kInf);
        }),
        bad::ok("to_half / from_half", "denormal floats round to fp16 subnormals or ±0; fp16 subnormals exact", [] {
            std::vector<float> in{kDenorm, -kDenormMin, 0x1p-24f, 0x1p-25f, 3 * 0x1p-25f, -0.f, 6e-5f, 1.f};
            std::vector<std::uint16_t> h(in.size());
            tcq::to_half(in, h);
            CHECK(h[0] == 0x0000u);
            CHECK(h[1] == 0x8000u);
            CHECK(h[2] == 0x0001u);
            CHECK(h[3] == 0x0000u);  // tie → even
            CHECK(h[4] == 0x0002u);  // tie → even
            CHECK(h[5] == 0x8000u);
            std::vector<float> back(h.size());
            tcq::from_half(h, back);
            CHECK(back[2] == 0x1p-24f);
            CHECK(back[6] == tcq::half_to_float(tcq::float_to_half(6e-5f)));
        }),
    };
}

// ------------------------------------------------------- parallel_for ----
bad::table parallel_rows() {
    auto body = [](index_t, index_t) {};
    return {
        bad::error("parallel_for", "parallel_for", "grain must be positive, got 0",
                   [body] { tcq::parallel_for(tcq::seq(), 10, 0, body); }),
        bad::error("parallel_for", "parallel_for", "grain must be positive, got -3",
                   [body] { tcq::parallel_for(tcq::par(2), 10, -3, body); }),
        bad::error("parallel_reduce", "parallel_reduce", "grain must be positive, got 0", [] {
            (void)tcq::parallel_reduce(tcq::seq(), 10, 0, 0, [](index_t, index_t) { return 1; },
                                       [](int a, int b) { return a + b; });
        }),
        bad::ok("parallel_for", "n = 0 and n < 0: the body never runs", [] {
            int calls = 0;
            for (index_t n : {0, -1, -100})
                for (const auto& pol : {tcq::seq(), tcq::par(2)})
                    tcq::parallel_for(pol, n, 4, [&](index_t, index_t) { ++calls; });
            CHECK(calls == 0);
        }),
        bad::ok("parallel_reduce", "n = 0 and n < 0: returns init", [] {
            for (index_t n : {0, -1, -100})
                CHECK(tcq::parallel_reduce(tcq::par(2), n, 8, 7, [](index_t, index_t) { return 1; },
                                           [](int a, int b) { return a + b; }) == 7);
        }),
        bad::ok("parallel_reduce", "T = bool (std::vector<bool> would race and not compile)", [] {
            const bool all = tcq::parallel_reduce(tcq::par(2), 1000, 7, true,
                                                  [](index_t b, index_t) { return b != 350; },
                                                  [](bool a, bool b) { return a && b; });
            CHECK(!all);
        }),
        bad::ok("parallel_for", "grain larger than n: one chunk", [] {
            int calls = 0;
            tcq::parallel_for(tcq::par(2), 5, 1000, [&](index_t b, index_t e) {
                ++calls;
                CHECK(b == 0);
                CHECK(e == 5);
            });
            CHECK(calls == 1);
        }),
        bad::error("run_tasks (user executor)", "boom", "task 3", [] {
            tcq::exec_policy p;
            p.executor = [](index_t n, const std::function<void(index_t)>& task) {
                for (index_t i = 0; i < n; ++i) task(i);
            };
            tcq::parallel_for(p, 8, 1, [](index_t b, index_t) {
                if (b == 3) tcq::fail("boom in task ", b);
            });
        }),
    };
}

// --------------------------------------------------------------- mask ----
bad::table mask_rows() {
    return {
        bad::error("mask(rows, cols)", "mask", "negative shape -1x3", [] { tcq::mask m(-1, 3); }),
        bad::error("mask(rows, cols)", "mask", "negative shape 4x-2", [] { tcq::mask m(4, -2); }),
        bad::ok("mask(rows, cols)", "empty 0x0 and 0x5 masks", [] {
            for (auto [r, c] : {std::pair<index_t, index_t>{0, 0}, {0, 5}}) {
                const tcq::mask m(r, c);
                CHECK(m.count() == 0);
                CHECK(m.indices().empty());
                CHECK(m.words().empty());
            }
        }),
        bad::ok("mask(rows, cols)", "tail bits beyond rows·cols stay clear", [] {
            tcq::mask m(3, 7);  // 21 bits in one word
            m.set(20);
            CHECK(m.count() == 1);
            CHECK(m.words().size() == 1);
            CHECK(m.words()[0] == (std::uint64_t{1} << 20));
        }),
    };
}

// --------------------------------------------------------------- gptq ----
struct gptq_case {  // a 4 x 8 weight, a diagonally dominant 8 x 8 Hessian
    std::vector<float> w = sample(4, 8);
    std::vector<float> h = [] {
        std::vector<float> h(64, 0.05f);
        for (index_t i = 0; i < 8; ++i) h[static_cast<std::size_t>(i * 9)] = 1.f + 0.25f * static_cast<float>(i);
        return h;
    }();
    tcq::gptq_options opt = [] {
        tcq::gptq_options o;
        o.name = "wq";
        return o;
    }();
    [[nodiscard]] tcq::matrix_view<const float> W() const { return {w.data(), 4, 8}; }
    [[nodiscard]] tcq::matrix_view<const float> H(index_t n = 8) const { return {h.data(), n, n}; }
    [[nodiscard]] tcq::gptq_result run(const tcq::mask& kept = {}) const {
        return tcq::gptq_quantize(W(), H(), opt, kept);
    }
};

bad::table gptq_rows() {
    return {
        bad::error("gptq_quantize", "wq: W", "non-finite value nan at (1, 2)", [] {
            gptq_case g;
            g.w[10] = kNaN;
            (void)g.run();
        }),
        bad::error("gptq_quantize", "wq: Hessian", "must be finite and non-negative", [] {
            gptq_case g;
            g.h[3 * 9] = kInf;  // diagonal
            (void)g.run();
        }),
        bad::error("gptq_quantize", "wq: Hessian", "non-finite value inf at (0, 1)", [] {
            gptq_case g;
            g.h[1] = kInf;  // off the diagonal
            (void)g.run();
        }),
        bad::error("gptq_quantize", "wq: Hessian", "is 7x7, expected 8x8", [] {
            gptq_case g;
            (void)tcq::gptq_quantize(g.W(), g.H(7), g.opt);
        }),
        bad::error("gptq_quantize", "wq", "unsupported bit width 9", [] {
            gptq_case g;
            g.opt.grid.bits = 9;
            (void)g.run();
        }),
        bad::error("gptq_quantize", "wq", "group size -4 is negative", [] {
            gptq_case g;
            g.opt.grid.group_size = -4;
            (void)g.run();
        }),
        bad::error("gptq_quantize", "wq", "mask is 3x8, matrix is 4x8", [] {
            gptq_case g;
            (void)g.run(tcq::mask(3, 8));
        }),
        bad::error("gptq_quantize", "wq: Hessian diagonal H(5, 5)", "must be finite and non-negative", [] {
            gptq_case g;
            g.h[5 * 9] = -1.f;
            (void)g.run();
        }),
        bad::error("gptq_quantize", "wq: Hessian", "not positive definite", [] {
            gptq_case g;  // eigenvalue ≈ −1000 ≪ −(max damping 100 · mean diag)
            g.h[1] = g.h[8] = 1000.f;
            (void)g.run();
        }),
        bad::ok("gptq_quantize", "dead column (H_ii = 0) and an empty mask", [] {
            gptq_case g;
            for (index_t k = 0; k < 8; ++k) g.h[static_cast<std::size_t>(2 * 8 + k)] = g.h[static_cast<std::size_t>(k * 8 + 2)] = 0.f;
            const auto r = g.run();
            CHECK(r.report.hinv.dead_columns == std::vector<index_t>{2});
            for (float v : r.q.values) CHECK(std::isfinite(v));
        }),
        bad::error("hessian_accumulator::add", "hessian_accumulator::add", "X has 5 columns, the layer has 8", [] {
            tcq::hessian_accumulator<> acc(8);
            const auto x = sample(3, 5);
            acc.add(tcq::make_view<const float>(x.data(), 3, 5));
        }),
        bad::error("hessian_accumulator::add", "hessian_accumulator::add: X", "non-finite value nan at (2, 7)", [] {
            tcq::hessian_accumulator<double> acc(8);
            auto x = sample(3, 8);
            x[23] = kNaN;
            acc.add(tcq::make_view<const float>(x.data(), 3, 8));
        }),
        bad::error("rtn_quantize", "rtn_quantize", "mask is 4x7, matrix is 4x8", [] {
            const auto w = sample(4, 8);
            (void)tcq::rtn_quantize(tcq::make_view<const float>(w.data(), 4, 8), spec(), tcq::mask(4, 7));
        }),
    };
}

// ----------------------------------------------------------- saliency ----
struct score_case {  // a 3 x 8 weight, its contrast and gradient sums
    std::vector<float> w = sample(3, 8), q = sample(3, 8), a = sample(3, 8), u = std::vector<float>(8, 0.5f);
    score_case() {
        for (auto& v : q) v = std::nearbyint(v * 4.f) / 4.f;
        for (auto& v : a) v = std::fabs(v);
    }
    [[nodiscard]] tcq::score_inputs in() const {
        tcq::score_inputs i;
        i.W = {w.data(), 3, 8};
        i.Q = {q.data(), 3, 8};
        i.grad_abs = {a.data(), 3, 8};
        i.u_diag = u;
        return i;
    }
};

bad::table saliency_rows() {
    return {
        bad::error("compute_scores", "compute_scores(tacq): Q", "shape mismatch, expected 3x8, got 3x7", [] {
            score_case s;
            auto in = s.in();
            in.Q = {s.q.data(), 3, 7};
            bad::guarded<float> out(3, 8);
            tcq::compute_scores(tcq::score_method::tacq, in, out.view());
        }),
        bad::error("compute_scores", "compute_scores(tacq): W", "shape mismatch, expected 3x8, got 8x3", [] {
            score_case s;
            auto in = s.in();
            in.W = {s.w.data(), 8, 3};
            bad::guarded<float> out(3, 8);
            tcq::compute_scores(tcq::score_method::tacq, in, out.view());
        }),
        bad::error("compute_scores", "compute_scores(tacq): grad_abs", "not finite (nan) at (2, 5)", [] {
            score_case s;
            s.a[21] = kNaN;
            bad::guarded<float> out(3, 8);
            try {
                tcq::compute_scores(tcq::score_method::tacq, s.in(), out.view());
            } catch (...) {
                CHECK(out.intact());
                throw;
            }
        }),
        bad::error("compute_scores", "compute_scores(spqr): u_diag", "has 7 entries, expected one per column (8)", [] {
            score_case s;
            auto in = s.in();
            in.u_diag = std::span<const float>(s.u).first(7);
            bad::guarded<float> out(3, 8);
            tcq::compute_scores(tcq::score_method::spqr, in, out.view());
        }),
        bad::error("compute_scores", "compute_scores(spqr): u_diag", "entry 4 is 0, must be finite and > 0", [] {
            score_case s;
            s.u[4] = 0.f;
            bad::guarded<float> out(3, 8);
            tcq::compute_scores(tcq::score_method::spqr, s.in(), out.view());
        }),
        bad::ok("compute_scores", "strided output: the row gaps stay untouched, scores finite and >= 0", [] {
            score_case s;
            bad::guarded<float> out(3, 8);
            tcq::compute_scores(tcq::score_method::tacq, s.in(), out.view());
            CHECK(out.intact());
            for (index_t r = 0; r < 3; ++r)
                for (index_t c = 0; c < 8; ++c) CHECK((std::isfinite(out.at(r, c)) && out.at(r, c) >= 0.f));
        }),
        bad::error("grad_accumulator::add", "grad_accumulator: gradient of sample 0",
                   "shape mismatch, expected 3x8, got 3x9", [] {
                       tcq::grad_accumulator acc(3, 8);
                       const auto g = sample(3, 9);
                       acc.add(tcq::make_view<const float>(g.data(), 3, 9));
                   }),
        bad::error("grad_accumulator::add", "grad_accumulator", "non-finite gradient inf at (1, 6)", [] {
            tcq::grad_accumulator acc(3, 8, tcq::grad_stats::all);
            auto g = sample(3, 8);
            g[14] = kInf;
            acc.add(tcq::make_view<const float>(g.data(), 3, 8));
        }),
        bad::error("grad_accumulator::add", "grad_accumulator", "unusable after a failed add()", [] {
            tcq::grad_accumulator acc(3, 8);
            auto g = sample(3, 8);
            g[0] = -kInf;
            try {
                acc.add(tcq::make_view<const float>(g.data(), 3, 8));
            } catch (const tcq::error&) {
            }
            (void)acc.abs_sum();
        }),
    };
}

// ------------------------------------------------------------- select ----
bad::table select_rows() {
    return {
        bad::error("select_topk", "select: scores of 'scores'", "score nan at (1, 3) is NaN", [] {
            auto s = sample(2, 8);
            for (auto& v : s) v = std::fabs(v);
            s[11] = kNaN;
            (void)tcq::select_topk(tcq::make_view<const float>(s.data(), 2, 8), tcq::budget::of_ratio(0.25));
        }),
        bad::error("budget::of_ratio", "budget", "ratio 1.5 outside [0, 1]",
                   [] { (void)tcq::budget::of_ratio(1.5); }),
        bad::error("budget::of_ratio", "budget", "ratio nan outside [0, 1]",
                   [] { (void)tcq::budget::of_ratio(std::numeric_limits<double>::quiet_NaN()); }),
        bad::error("select_topk", "resolve_budget", "count 17 exceeds the 16 scored weights", [] {
            const auto s = std::vector<float>(16, 1.f);
            (void)tcq::select_topk(tcq::make_view<const float>(s.data(), 2, 8), tcq::budget::of_count(17));
        }),
        bad::error("select_topk", "resolve_budget", "count 9 exceeds the 8 weights of each row of matrix 'scores'", [] {
            const auto s = std::vector<float>(16, 1.f);
            (void)tcq::select_topk(tcq::make_view<const float>(s.data(), 2, 8), tcq::budget::of_count(9),
                                   tcq::select_scope::per_row);
        }),
        bad::error("select_topk", "resolve_budget", "target 2 bits/weight is below the base cost of 4.375", [] {
            const auto s = std::vector<float>(64 * 64, 1.f);
            (void)tcq::select_topk(tcq::make_view<const float>(s.data(), 64, 64),
                                   tcq::budget::of_bits_per_weight(2.0, spec(4, 128)));
        }),
        bad::ok("select_topk", "empty list of matrices: nothing selected", [] {
            for (const auto& b : {tcq::budget::of_ratio(0.5), tcq::budget::of_count(0)}) {
                const auto sel = tcq::select_topk(std::span<const tcq::scored_matrix>{}, b);
                CHECK(sel.masks.empty());
                CHECK(sel.selected == 0);
                CHECK(sel.scored == 0);
            }
        }),
    };
}

// --------------------------------------------------------------- pack ----
/// RTN of a 4 x 70 matrix (a partial 64-weight block) with fp16 scales.
tcq::quantized_matrix packable(int bits = 4) {
    static const auto w = sample(4, 70);
    auto s = spec(bits, 32);
    s.fp16_scale = true;
    return tcq::rtn_quantize(tcq::make_view<const float>(w.data(), 4, 70), s);
}

std::vector<std::byte> packed_file_bytes() {
    const auto m = tcq::pack(packable());
    tcq::file_metadata meta;
    meta.method = "rtn";
    meta.bits = 4;
    tcq::file_writer fw(meta);
    fw.add("layers.0.wq", m.view());
    return fw.to_bytes();
}

bad::table pack_rows() {
    return {
        bad::error("pack", "pack", "unsupported bit width 5", [] { (void)tcq::pack(packable(5)); }),
        bad::error("pack", "pack", "scale 0.1 of (row 2, group 1) is not a positive fp16 value", [] {
            auto q = packable();
            q.grid.at(2, 1).scale = 0.1f;
            (void)tcq::pack(q);
        }),
        bad::error("packed_file::parse", "tcq file <memory>", "not a tcq file (bad magic)", [] {
            std::vector<std::byte> junk(256);
            for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<std::byte>(i * 37 + 11);
            (void)tcq::packed_file::parse(junk);
        }),
        bad::error("packed_file::parse", "tcq file <memory>", "cannot hold the 64-byte header", [] {
            const auto b = packed_file_bytes();
            (void)tcq::packed_file::parse(std::span<const std::byte>(b).first(40));
        }),
        bad::error("packed_file::parse", "tcq file <memory>", "(truncated)", [] {
            const auto b = packed_file_bytes();
            (void)tcq::packed_file::parse(std::span<const std::byte>(b).first(b.size() - 64));
        }),
        bad::ok("packed_file::parse", "every truncation and every byte flip is a tcq::error", [] {
            const auto b = packed_file_bytes();
            REQUIRE(tcq::packed_file::parse(b).size() == 1);
            std::vector<std::uint8_t> u(b.size());
            std::memcpy(u.data(), b.data(), b.size());
            auto parse = [](const std::vector<std::uint8_t>& v) {
                return tcq::packed_file::parse(std::as_bytes(std::span<const std::uint8_t>(v)));
            };
            bad::each_truncation(u, 7, [&](const auto& v) { CHECK_THROWS_AS((void)parse(v), tcq::error); });
            bad::each_byte_flip(u, 3, 0x10, [&](const auto& v) { CHECK_THROWS_AS((void)parse(v), tcq::error); });
        }),
        bad::error("gemv", "gemv", "x has 69 elements, the matrix has 70 columns", [] {
            const auto m = tcq::pack(packable());
            std::vector<float> x(69, 1.f), y(4);
            tcq::gemv(m.view(), x, y);
        }),
        bad::error("gemv", "gemv", "y has 5 elements, the matrix has 4 rows", [] {
            const auto m = tcq::pack(packable());
            std::vector<float> x(70, 1.f), y(5, -7.f);
            try {
                tcq::gemv(m.view(), x, y);
            } catch (...) {
                for (float v : y) CHECK(v == -7.f);
                throw;
            }
        }),
    };
}

}  // namespace

TEST_CASE("bad input: matrix views and adapters") { bad::run(view_rows()); }
TEST_CASE("bad input: fit_grid") { bad::run(fit_rows()); }
TEST_CASE("bad input: fake_quantize, quantize, dequantize") { bad::run(fake_quant_rows()); }
TEST_CASE("bad input: fp16 / bf16 converters") { bad::run(half_rows()); }
TEST_CASE("bad input: parallel_for / parallel_reduce") { bad::run(parallel_rows()); }
TEST_CASE("bad input: mask") { bad::run(mask_rows()); }
TEST_CASE("bad input: gptq_quantize, hessian_accumulator, rtn_quantize") { bad::run(gptq_rows()); }
TEST_CASE("bad input: compute_scores, grad_accumulator") { bad::run(saliency_rows()); }
TEST_CASE("bad input: select_topk, budget") { bad::run(select_rows()); }
TEST_CASE("bad input: pack, packed_file::parse, gemv") { bad::run(pack_rows()); }
