// GPTQ solver: blocked + SIMD vs the plain column-by-column twin, objective
// vs RTN, kept weights, act-order, dead columns, escalation, bad input,
// determinism, in-place API.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "error_message.hpp"
#include "gptq_test_util.hpp"
#include "tcq/gptq/solver.hpp"
#include "tcq/reference/gptq.hpp"

using tcq::index_t;
using gptq_test::randn;
using test_util::message_of;

namespace {
constexpr index_t kRows = 37, kCols = 91;

struct problem {
    std::vector<float> w;
    tcq::hessian_accumulator<float> h;
    tcq::matrix_view<const float> W() const { return {w.data(), kRows, kCols}; }
};

problem make_problem(unsigned seed, index_t rows = kRows, index_t cols = kCols) {
    problem p{randn(static_cast<std::size_t>(rows * cols), seed, 0.05f), gptq_test::hessian_of<float>(cols, 3, 83, seed + 1)};
    // A few large weights, as in real layers.
    for (std::size_t i = 5; i < p.w.size(); i += 97) p.w[i] *= 12.f;
    return p;
}

tcq::mask random_mask(index_t rows, index_t cols, unsigned seed, double ratio) {
    tcq::mask m(rows, cols);
    std::mt19937 g(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (index_t f = 0; f < rows * cols; ++f)
        if (u(g) < ratio) m.set(f);
    return m;
}

tcq::gptq_options opts(int bits, index_t group = 0, bool act = false, index_t block = 128) {
    tcq::gptq_options o;
    o.grid.bits = bits;
    o.grid.group_size = group;
    o.act_order = act;
    o.block_size = block;
    return o;
}

// Blocked result vs twin: identical codes, g_idx and kept; values, grids and
// losses within 1e-5 relative to the matrix scale.
void check_matches_twin(const tcq::gptq_result& a, const tcq::gptq_result& b, float scale) {
    REQUIRE(a.q.codes.size() == b.q.codes.size());
    index_t code_mismatch = 0;
    for (std::size_t i = 0; i < a.q.codes.size(); ++i) code_mismatch += a.q.codes[i] != b.q.codes[i];
    CHECK(code_mismatch == 0);
    float worst = 0.f;
    for (std::size_t i = 0; i < a.q.values.size(); ++i) worst = std::max(worst, std::fabs(a.q.values[i] - b.q.values[i]));
    CHECK(worst <= 1e-5f * scale);
    REQUIRE(a.q.grid.params.size() == b.q.grid.params.size());
    for (std::size_t i = 0; i < a.q.grid.params.size(); ++i) {
        CHECK(a.q.grid.params[i].zero == b.q.grid.params[i].zero);
        CHECK(a.q.grid.params[i].scale == doctest::Approx(b.q.grid.params[i].scale).epsilon(1e-5));
    }
    CHECK(a.q.g_idx == b.q.g_idx);
    CHECK(a.q.kept == b.q.kept);
    CHECK(a.report.perm == b.report.perm);
    CHECK(a.report.hinv.dead_columns == b.report.hinv.dead_columns);
    CHECK(a.report.hinv.retries == b.report.hinv.retries);
    CHECK(a.report.total_loss == doctest::Approx(b.report.total_loss).epsilon(1e-4));
    REQUIRE(a.report.losses.size() == b.report.losses.size());
    const float lmax = gptq_test::max_abs(b.report.losses);
    for (std::size_t i = 0; i < a.report.losses.size(); ++i) REQUIRE(std::fabs(a.report.losses[i] - b.report.losses[i]) <= 1e-4f * lmax);
    for (std::size_t i = 0; i < a.report.u_diag.size(); ++i)
        CHECK(a.report.u_diag[i] == doctest::Approx(b.report.u_diag[i]).epsilon(1e-6));
}

// values == dequant(codes) on the reported grid, except at kept weights.
void check_consistent(const tcq::quantized_matrix& q) {
    std::vector<float> d(q.codes.size());
    tcq::dequantize_codes(q, d);  // what the pipeline's cached contrast gives back for values
    for (index_t r = 0; r < q.rows(); ++r)
        for (index_t c = 0; c < q.cols(); ++c) {
            const auto f = static_cast<std::size_t>(r * q.cols() + c);
            if (q.kept.size() > 0 && q.kept.test(r, c)) {
                REQUIRE(q.codes[f] == 0);
                continue;
            }
            const auto p = q.grid.at(r, q.group_of(c));
            REQUIRE(q.values[f] == tcq::dequant_code(static_cast<float>(q.codes[f]), p.scale, p.zero));
            REQUIRE(std::bit_cast<std::uint32_t>(d[f]) == std::bit_cast<std::uint32_t>(q.values[f]));
        }
}
}  // namespace

TEST_CASE("blocked SIMD GPTQ matches the column-by-column twin") {
    const problem p = make_problem(21);
    const float scale = gptq_test::max_abs(p.w);
    struct cfg {
        const char* what;
        tcq::gptq_options o;
        double mask_ratio;
    };
    std::vector<cfg> cfgs;
    cfgs.push_back({"per-row 3-bit", opts(3), 0.0});
    cfgs.push_back({"per-row 2-bit, block 16", opts(2, 0, false, 16), 0.0});
    cfgs.push_back({"per-row 4-bit sym, block 7, mask", opts(4, 0, false, 7), 0.03});
    cfgs.back().o.grid.symmetric = true;
    cfgs.push_back({"g16 block 32", opts(3, 16, false, 32), 0.0});
    cfgs.push_back({"g32 block 16 (groups span blocks)", opts(3, 32, false, 16), 0.02});
    cfgs.push_back({"g24 block 32, fresh", opts(3, 24, false, 32), 0.02});
    cfgs.back().o.group_fit_mode = tcq::group_fit::fresh;
    cfgs.push_back({"g16 block 40, fresh, act-order", opts(4, 16, true, 40), 0.0});
    cfgs.back().o.group_fit_mode = tcq::group_fit::fresh;
    cfgs.push_back({"act-order per-row, mask", opts(3, 0, true), 0.05});
    cfgs.push_back({"act-order g16 block 32", opts(3, 16, true, 32), 0.01});
    cfgs.push_back({"static g32 act-order", opts(3, 32, true, 32), 0.02});
    cfgs.back().o.static_groups = true;
    cfgs.push_back({"min-max grid, fp16 scales", opts(3, 16, false, 32), 0.0});
    cfgs.back().o.grid.mse.enabled = false;
    cfgs.back().o.grid.fp16_scale = true;
    for (auto& c : cfgs) {
        INFO(c.what);
        c.o.hinv.precision = tcq::factor_precision::fp64;  // same U as the fp64 twin
        const tcq::mask m = c.mask_ratio > 0 ? random_mask(kRows, kCols, 5, c.mask_ratio) : tcq::mask{};
        const auto a = tcq::gptq_quantize(p.W(), p.h.view(), c.o, m, tcq::par(2));
        const auto b = tcq::reference::gptq_quantize(p.W(), p.h.view(), c.o, m);
        check_matches_twin(a, b, scale);
        check_consistent(a.q);
    }
}

TEST_CASE("fp32 factor (default) stays close to the fp64 twin; methods agree") {
    const problem p = make_problem(22);
    const auto o = opts(3, 16);
    const auto b = tcq::reference::gptq_quantize(p.W(), p.h.view(), o);
    for (auto method : {tcq::hinv_method::reversed, tcq::hinv_method::torch}) {
        auto oo = o;
        oo.hinv.method = method;
        const auto a = tcq::gptq_quantize(p.W(), p.h.view(), oo);
        index_t mismatch = 0;
        for (std::size_t i = 0; i < a.q.codes.size(); ++i) mismatch += a.q.codes[i] != b.q.codes[i];
        CHECK(mismatch <= static_cast<index_t>(a.q.codes.size() / 200));  // fp32 U: rare boundary flips
        CHECK(a.report.total_loss == doctest::Approx(b.report.total_loss).epsilon(2e-2));
    }
}

TEST_CASE("GPTQ objective tr((W−Q)H(W−Q)ᵀ) is below RTN's on the same grid") {
    for (unsigned seed : {31u, 32u}) {
        const problem p = make_problem(seed);
        for (int bits : {2, 3, 4})
            for (bool act : {false, true}) {
                const auto o = opts(bits, 0, act);
                const auto g = tcq::gptq_quantize(p.W(), p.h.view(), o);
                const auto r = tcq::rtn_quantize(p.W(), o.grid);
                CHECK(g.q.grid.params == r.grid.params);  // per-row grid: fitted on the same W
                const double og = gptq_test::objective(p.W(), g.q.values, p.h.view());
                const double orr = gptq_test::objective(p.W(), r.values, p.h.view());
                INFO("bits ", bits, " act ", act, " gptq ", og, " rtn ", orr);
                CHECK(og < 0.7 * orr);
            }
    }
}

TEST_CASE("kept weights: zero error, ignored by the grid, still updated") {
    problem p = make_problem(41);
    tcq::mask m(kRows, kCols);
    // Huge kept outliers: the grid must not see them.
    for (index_t r = 0; r < kRows; r += 3) {
        const index_t c = (r * 7) % (kCols - 1) + 1;
        m.set(r, c);
        p.w[static_cast<std::size_t>(r * kCols + c)] = 50.f;
    }
    m.set(index_t{2}, index_t{0});  // in the first column: nothing updates it
    for (bool act : {false, true}) {
        INFO("act-order ", act);
        const auto o = opts(3, 0, act);
        const auto a = tcq::gptq_quantize(p.W(), p.h.view(), o, m);
        for (index_t r = 0; r < kRows; ++r) {
            std::vector<float> row(p.w.begin() + r * kCols, p.w.begin() + (r + 1) * kCols);
            double sum = 0.0;
            int n = 0;
            for (index_t c = 0; c < kCols; ++c)
                if (!m.test(r, c)) sum += row[static_cast<std::size_t>(c)], ++n;
            for (index_t c = 0; c < kCols; ++c)
                if (m.test(r, c)) row[static_cast<std::size_t>(c)] = static_cast<float>(sum / n);
            CHECK(a.q.grid.at(r, 0) == tcq::fit_segment(row, o.grid));
        }
        index_t moved = 0;
        for (index_t f : m.indices()) {
            CHECK(a.report.losses[static_cast<std::size_t>(f)] == 0.f);
            CHECK(a.q.codes[static_cast<std::size_t>(f)] == 0);
            const float before = p.w[static_cast<std::size_t>(f)], after = a.q.values[static_cast<std::size_t>(f)];
            CHECK(std::fabs(after - before) < 0.5f);  // near its original value…
            moved += after != before;                 // …but updated by earlier columns' errors
        }
        if (!act) CHECK(a.q.values[2 * kCols + 0] == p.w[2 * kCols + 0]);
        CHECK(moved >= m.count() - 2);
        check_consistent(a.q);
        // Keeping weights lowers the objective.
        const auto none = tcq::gptq_quantize(p.W(), p.h.view(), o);
        CHECK(gptq_test::objective(p.W(), a.q.values, p.h.view()) <
              gptq_test::objective(p.W(), none.q.values, p.h.view()));
    }
    SUBCASE("a fully kept row gets the all-zero grid and keeps exact zero error") {
        tcq::mask full(kRows, kCols);
        for (index_t c = 0; c < kCols; ++c) full.set(4, c);
        const auto a = tcq::gptq_quantize(p.W(), p.h.view(), opts(3), full);
        const std::vector<float> zeros(kCols, 0.f);
        CHECK(a.q.grid.at(4, 0) == tcq::fit_segment(zeros, opts(3).grid));
        for (index_t c = 0; c < kCols; ++c) CHECK(a.report.losses[static_cast<std::size_t>(4 * kCols + c)] == 0.f);
    }
}

TEST_CASE("act-order round trip: equals plain GPTQ on the permuted problem, restored to original order") {
    const problem p = make_problem(51);
    for (index_t group : {index_t{0}, index_t{16}}) {
        INFO("group ", group);
        auto o = opts(3, group, true, 32);
        o.grid.mse.enabled = false;  // min-max is order-independent, so the comparison is exact
        const tcq::mask m = random_mask(kRows, kCols, 9, 0.03);
        const auto a = tcq::gptq_quantize(p.W(), p.h.view(), o, m);
        const auto& perm = a.report.perm;
        REQUIRE(perm.size() == static_cast<std::size_t>(kCols));
        for (index_t k = 1; k < kCols; ++k)
            CHECK(p.h.view()(perm[k - 1], perm[k - 1]) >= p.h.view()(perm[k], perm[k]));
        // Permute W, H and the mask by hand, solve without act-order, undo.
        std::vector<float> wp(p.w.size()), hp(static_cast<std::size_t>(kCols * kCols));
        tcq::mask mp(kRows, kCols);
        for (index_t r = 0; r < kRows; ++r)
            for (index_t k = 0; k < kCols; ++k) {
                wp[static_cast<std::size_t>(r * kCols + k)] = p.w[static_cast<std::size_t>(r * kCols + perm[k])];
                mp.set(r, k, m.test(r, perm[k]));
            }
        for (index_t i = 0; i < kCols; ++i)
            for (index_t j = 0; j < kCols; ++j) hp[static_cast<std::size_t>(i * kCols + j)] = p.h.view()(perm[i], perm[j]);
        auto o2 = o;
        o2.act_order = false;
        const auto b = tcq::gptq_quantize(tcq::make_view(static_cast<const float*>(wp.data()), kRows, kCols),
                                          tcq::make_view(static_cast<const float*>(hp.data()), kCols, kCols), o2, mp);
        for (index_t r = 0; r < kRows; ++r)
            for (index_t k = 0; k < kCols; ++k) {
                const auto fa = static_cast<std::size_t>(r * kCols + perm[k]), fb = static_cast<std::size_t>(r * kCols + k);
                REQUIRE(a.q.values[fa] == b.q.values[fb]);
                REQUIRE(a.q.codes[fa] == b.q.codes[fb]);
                REQUIRE(a.report.losses[fa] == b.report.losses[fb]);
            }
        CHECK(a.q.grid.params == b.q.grid.params);
        if (group > 0) {
            REQUIRE(a.q.g_idx.size() == static_cast<std::size_t>(kCols));
            for (index_t k = 0; k < kCols; ++k) CHECK(a.q.g_idx[static_cast<std::size_t>(perm[k])] == k / group);
        } else {
            CHECK(a.q.g_idx.empty());
        }
        check_consistent(a.q);
    }
}

TEST_CASE("dead columns: reported, zeroed, quantized to 0; the rest still beats RTN") {
    const index_t cols = 53, rows = 29;
    auto w = randn(static_cast<std::size_t>(rows * cols), 61, 0.05f);
    tcq::hessian_accumulator<float> h(cols);
    for (unsigned s = 0; s < 3; ++s) {
        auto x = gptq_test::correlated_x(71, cols, 62 + s);
        for (index_t t = 0; t < 71; ++t)
            for (index_t c : {3, 17, 52}) x[static_cast<std::size_t>(t * cols + c)] = 0.f;
        h.add(tcq::make_view(static_cast<const float*>(x.data()), 71, cols));
    }
    const auto W = tcq::make_view(static_cast<const float*>(w.data()), rows, cols);
    for (bool act : {false, true}) {
        auto o = opts(3, 0, act);
        o.hinv.precision = tcq::factor_precision::fp64;
        const auto a = tcq::gptq_quantize(W, h.view(), o);
        CHECK(a.report.hinv.dead_columns == std::vector<index_t>{3, 17, 52});
        for (index_t r = 0; r < rows; ++r)
            for (index_t c : {3, 17, 52}) CHECK(a.q.values[static_cast<std::size_t>(r * cols + c)] == 0.f);
        const auto b = tcq::reference::gptq_quantize(W, h.view(), o);
        check_matches_twin(a, b, gptq_test::max_abs(w));
        const auto rtn = tcq::rtn_quantize(W, o.grid);
        CHECK(gptq_test::objective(W, a.q.values, h.view()) < gptq_test::objective(W, rtn.values, h.view()));
    }
}

TEST_CASE("escalation on a singular H is reported; an indefinite H past the bound throws") {
    const problem p = make_problem(71);
    // Rank-1 integer H: exactly singular, so undamped Cholesky fails.
    std::vector<float> H(static_cast<std::size_t>(kCols * kCols));
    for (index_t i = 0; i < kCols; ++i)
        for (index_t j = 0; j < kCols; ++j) H[static_cast<std::size_t>(i * kCols + j)] = static_cast<float>(((i % 5) + 1) * ((j % 5) + 1));
    const auto Hv = tcq::make_view(static_cast<const float*>(H.data()), kCols, kCols);
    auto o = opts(3);
    o.hinv.damping.relative = 0.0;
    const auto a = tcq::gptq_quantize(p.W(), Hv, o);
    CHECK(a.report.hinv.retries == 1);
    CHECK(a.report.hinv.relative_damping == doctest::Approx(0.01));
    CHECK(a.report.hinv.absolute_damping > 0.0);
    CHECK(std::isfinite(a.report.total_loss));
    std::vector<float> ind(static_cast<std::size_t>(kCols * kCols), 0.f);
    for (index_t i = 0; i < kCols; ++i) ind[static_cast<std::size_t>(i * kCols + i)] = 1.f;
    ind[1] = ind[kCols] = 5.f;  // eigenvalue −4 = −4·mean(diag): needs relative damping > 4
    o.hinv.damping.relative = 0.01;
    o.hinv.damping.max_retries = 2;  // 0.01, 0.1, 1
    o.name = "layers.2.mlp.w1";
    const std::string msg = message_of([&] {
        (void)tcq::gptq_quantize(p.W(), tcq::make_view(static_cast<const float*>(ind.data()), kCols, kCols), o);
    });
    CHECK(msg.find("layers.2.mlp.w1") != std::string::npos);
    CHECK(msg.find("not positive definite") != std::string::npos);
    o.hinv.damping.max_retries = 3;  // … 10: succeeds
    CHECK(tcq::gptq_quantize(p.W(), tcq::make_view(static_cast<const float*>(ind.data()), kCols, kCols), o).report.hinv.retries == 3);
}

TEST_CASE("bad input throws a tcq::error naming the matrix") {
    const problem p = make_problem(81);
    auto o = opts(3);
    o.name = "wq";
    auto throws_naming = [&](auto&& f) {
        const std::string m = message_of(f);
        INFO(m);
        CHECK(m.find("wq") != std::string::npos);
    };
    std::vector<float> w = p.w;
    w[100] = std::nanf("");
    throws_naming([&] { (void)tcq::gptq_quantize(tcq::make_view(static_cast<const float*>(w.data()), kRows, kCols), p.h.view(), o); });
    w = p.w;
    w[kCols * kRows - 1] = std::numeric_limits<float>::infinity();
    throws_naming([&] { (void)tcq::gptq_quantize(tcq::make_view(static_cast<const float*>(w.data()), kRows, kCols), p.h.view(), o); });
    std::vector<float> H(p.h.view().data(), p.h.view().data() + kCols * kCols);
    H[5 * kCols + 9] = std::nanf("");
    throws_naming([&] { (void)tcq::gptq_quantize(p.W(), tcq::make_view(static_cast<const float*>(H.data()), kCols, kCols), o); });
    H[5 * kCols + 9] = 0.f;
    H[6 * kCols + 6] = std::nanf("");
    throws_naming([&] { (void)tcq::gptq_quantize(p.W(), tcq::make_view(static_cast<const float*>(H.data()), kCols, kCols), o); });
    throws_naming([&] {
        (void)tcq::gptq_quantize(p.W(), tcq::make_view(static_cast<const float*>(H.data()), kCols - 1, kCols - 1, kCols), o);
    });
    for (int bits : {0, 9}) {
        auto b = o;
        b.grid.bits = bits;
        throws_naming([&] { (void)tcq::gptq_quantize(p.W(), p.h.view(), b); });
    }
    auto g = o;
    g.grid.group_size = -1;
    throws_naming([&] { (void)tcq::gptq_quantize(p.W(), p.h.view(), g); });
    g = o;
    g.static_groups = true;
    throws_naming([&] { (void)tcq::gptq_quantize(p.W(), p.h.view(), g); });
    g = o;
    g.block_size = 0;
    throws_naming([&] { (void)tcq::gptq_quantize(p.W(), p.h.view(), g); });
    throws_naming([&] { (void)tcq::gptq_quantize(p.W(), p.h.view(), o, tcq::mask(kRows, kCols + 1)); });
    throws_naming([&] { (void)tcq::gptq_quantize(p.W(), p.h.view(), o, tcq::mask(kCols, kRows)); });
    throws_naming([&] { (void)tcq::gptq_quantize(std::vector<float>(10), kRows, kCols, p.h.view(), o); });
    // The reference twin validates too.
    CHECK_THROWS_AS((void)tcq::reference::gptq_quantize(p.W(), p.h.view(), g), tcq::error);
}

TEST_CASE("identical for any thread count; in-place API reuses W; losses optional") {
    const index_t rows = 530, cols = 150;  // several row chunks and GEMM tiles, partial last block
    problem p = make_problem(91, rows, cols);
    const auto W = tcq::make_view(static_cast<const float*>(p.w.data()), rows, cols);
    auto o = opts(3, 32, true, 64);
    o.grid.mse.enabled = false;  // fits are per row; keeps the sanitizer build fast
    const tcq::mask m = random_mask(rows, cols, 3, 0.01);
    const auto a = tcq::gptq_quantize(W, p.h.view(), o, m, tcq::seq());
    const auto b = tcq::gptq_quantize(W, p.h.view(), o, m, tcq::par(2));
    const auto c = tcq::gptq_quantize(W, p.h.view(), o, m, tcq::par(3));
    CHECK(a.q.values == b.q.values);
    CHECK(a.q.values == c.q.values);
    CHECK(a.q.codes == b.q.codes);
    CHECK(a.report.losses == c.report.losses);
    CHECK(a.q.grid.params == c.q.grid.params);
    CHECK(a.report.total_loss == b.report.total_loss);

    std::vector<float> owned = p.w;
    const float* storage = owned.data();
    auto o2 = o;
    o2.keep_losses = false;
    const auto d = tcq::gptq_quantize(std::move(owned), rows, cols, p.h.view(), o2, m, tcq::par(2));
    CHECK(d.q.values.data() == storage);
    CHECK(d.q.values == a.q.values);
    CHECK(d.report.losses.empty());
    CHECK(d.report.total_loss == a.report.total_loss);
    const auto e = tcq::gptq_quantize(W, p.h, o, m);  // straight from the accumulator
    CHECK(e.q.values == a.q.values);
}

TEST_CASE("degenerate shapes") {
    for (auto [rows, cols] : {std::pair<index_t, index_t>{1, 5}, {3, 1}, {0, 4}}) {
        auto w = randn(static_cast<std::size_t>(rows * cols), 5);
        auto h = gptq_test::hessian_of<float>(cols, 2, 9, 4);
        const auto W = tcq::make_view(static_cast<const float*>(w.data()), rows, cols);
        const auto a = tcq::gptq_quantize(W, h.view(), opts(3));
        CHECK(a.q.values.size() == static_cast<std::size_t>(rows * cols));
        const auto b = tcq::reference::gptq_quantize(W, h.view(), opts(3));
        CHECK(a.q.codes == b.q.codes);
    }
}

TEST_CASE("dequantize_codes: the values of every weight not kept, bit for bit; size checked") {
    const problem p = make_problem(33);
    auto o = opts(3, 16, true, 32);
    const tcq::mask m = random_mask(kRows, kCols, 9, 0.02);
    const auto a = tcq::gptq_quantize(p.W(), p.h.view(), o, m, tcq::par(2));
    std::vector<float> d(a.q.codes.size());
    tcq::dequantize_codes(a.q, d);
    index_t same = 0, kept = 0;
    for (std::size_t f = 0; f < d.size(); ++f) {
        if (m.test(static_cast<index_t>(f))) {
            ++kept;
            continue;
        }
        same += std::bit_cast<std::uint32_t>(d[f]) == std::bit_cast<std::uint32_t>(a.q.values[f]);
    }
    CHECK(kept > 0);
    CHECK(same == static_cast<index_t>(d.size()) - kept);
    std::vector<float> short_out(d.size() - 1);
    CHECK_THROWS_WITH_AS(tcq::dequantize_codes(a.q, short_out), doctest::Contains("dequantize_codes"), tcq::error);
}
