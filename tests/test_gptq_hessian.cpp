// Hessian accumulation and U = chol_upper(H⁻¹): optimized vs scalar twins,
// weighting, merge, escalation, determinism, bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "error_message.hpp"
#include "gptq_test_util.hpp"
#include "tcq/gptq/hessian.hpp"
#include "tcq/gptq/inverse_hessian.hpp"
#include "tcq/reference/gptq.hpp"

using tcq::index_t;
using gptq_test::correlated_x;
using gptq_test::randn;
using test_util::message_of;

namespace {
template <class T>
double max_rel_diff(const std::vector<T>& a, std::span<const T> b) {
    double m = 0.0, scale = 0.0;
    for (auto v : b) scale = std::max(scale, std::fabs(static_cast<double>(v)));
    for (std::size_t i = 0; i < a.size(); ++i)
        m = std::max(m, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])) / scale);
    return m;
}
template <class T>
std::span<const T> span_of(tcq::matrix_view<const T> v) {
    return {v.data(), static_cast<std::size_t>(v.size())};
}
}  // namespace

TEST_CASE_TEMPLATE("hessian add matches the scalar twin and is exactly symmetric", T, float, double) {
    const index_t cols = 37, tokens = 23;
    tcq::hessian_accumulator<T> h(cols);
    std::vector<T> ref(static_cast<std::size_t>(cols * cols), T(0));
    index_t n = 0;
    for (unsigned s = 0; s < 3; ++s) {
        auto x = correlated_x(tokens + s, cols, 100 + s);
        const auto X = tcq::make_view(static_cast<const float*>(x.data()), tokens + s, cols);
        h.add(X);
        tcq::reference::hessian_add(ref, cols, n, X);
    }
    CHECK(h.samples() == 3);
    CHECK(n == 3);
    CHECK(max_rel_diff(ref, span_of(h.view())) < (sizeof(T) == 4 ? 2e-6 : 1e-14));
    for (index_t i = 0; i < cols; ++i)
        for (index_t j = 0; j < i; ++j) REQUIRE(h.view()(i, j) == h.view()(j, i));
}

TEST_CASE("hessian weighting: H = (2/n) Σ_s X_sᵀX_s; add_batch counts samples; merge") {
    const index_t cols = 19, tokens = 11;
    std::vector<std::vector<float>> xs;
    for (unsigned s = 0; s < 5; ++s) xs.push_back(correlated_x(tokens, cols, 300 + s));
    auto view = [&](std::size_t s) { return tcq::make_view(static_cast<const float*>(xs[s].data()), tokens, cols); };
    std::vector<double> exact(static_cast<std::size_t>(cols * cols), 0.0);
    for (std::size_t s = 0; s < 5; ++s)
        for (index_t i = 0; i < cols; ++i)
            for (index_t j = 0; j < cols; ++j)
                for (index_t t = 0; t < tokens; ++t)
                    exact[static_cast<std::size_t>(i * cols + j)] += 2.0 / 5.0 * view(s)(t, i) * view(s)(t, j);
    tcq::hessian_accumulator<double> seq_h(cols);
    for (std::size_t s = 0; s < 5; ++s) seq_h.add(view(s));
    CHECK(max_rel_diff(exact, span_of(seq_h.view())) < 1e-13);

    SUBCASE("add_batch of stacked samples weighs by samples, not tokens") {
        std::vector<float> stacked;
        for (std::size_t s = 0; s < 2; ++s) stacked.insert(stacked.end(), xs[s].begin(), xs[s].end());
        tcq::hessian_accumulator<double> b(cols);
        b.add_batch(tcq::make_view(static_cast<const float*>(stacked.data()), 2 * tokens, cols), 2);
        for (std::size_t s = 2; s < 5; ++s) b.add(view(s));
        CHECK(b.samples() == 5);
        CHECK(max_rel_diff(exact, span_of(b.view())) < 1e-13);
    }
    SUBCASE("merge of shards equals one accumulation") {
        tcq::hessian_accumulator<double> a(cols), b(cols), empty(cols);
        for (std::size_t s = 0; s < 2; ++s) a.add(view(s));
        for (std::size_t s = 2; s < 5; ++s) b.add(view(s));
        a.merge(b);
        a.merge(empty);
        CHECK(a.samples() == 5);
        CHECK(max_rel_diff(exact, span_of(a.view())) < 1e-13);
        empty.merge(a);
        CHECK(empty.samples() == 5);
        CHECK(max_rel_diff(exact, span_of(empty.view())) < 1e-13);
    }
}

TEST_CASE("hessian: identical for any thread count (several tiles)") {
    const index_t cols = 601, tokens = 37;
    auto x = correlated_x(tokens, cols, 7);
    const auto X = tcq::make_view(static_cast<const float*>(x.data()), tokens, cols);
    tcq::hessian_accumulator<float> a(cols), b(cols);
    a.add(X, tcq::seq());
    a.add(X, tcq::seq());
    b.add(X, tcq::par(2));
    b.add(X, tcq::par(2));
    CHECK(std::equal(a.view().data(), a.view().data() + cols * cols, b.view().data()));
    // Spot-check against plain sums on a few entries.
    for (index_t i : {0, 511, 512, 600})
        for (index_t j : {0, 3, 513, 600}) {
            double e = 0.0;
            for (index_t t = 0; t < tokens; ++t) e += 2.0 * X(t, i) * X(t, j);  // 2/n·2 samples of XᵀX
            CHECK(a.view()(i, j) == doctest::Approx(e).epsilon(1e-5));
        }
}

TEST_CASE("hessian: bad input throws") {
    tcq::hessian_accumulator<float> h(5);
    std::vector<float> x(3 * 5, 1.f);
    CHECK_THROWS_AS(h.add(tcq::make_view(static_cast<const float*>(x.data()), 3, 4, 5)), tcq::error);
    CHECK_THROWS_AS(h.add_batch(tcq::make_view(static_cast<const float*>(x.data()), 3, 5), 0), tcq::error);
    CHECK_THROWS_AS(h.add(tcq::make_view(static_cast<const float*>(x.data()), 0, 5)), tcq::error);
    x[7] = std::nanf("");
    CHECK(message_of([&] { h.add(tcq::make_view(static_cast<const float*>(x.data()), 3, 5)); }).find("non-finite") !=
          std::string::npos);
    CHECK(h.samples() == 0);
    tcq::hessian_accumulator<float> other(6);
    CHECK_THROWS_AS(h.merge(other), tcq::error);
    CHECK_THROWS_AS(tcq::hessian_accumulator<float>(-1), tcq::error);
}

namespace {
// UᵀU (H + λI) ≈ I, checked in double on the permuted H.
template <class T>
double inverse_residual(const tcq::inverse_hessian& f, tcq::matrix_view<const T> H, const std::vector<index_t>& perm) {
    const index_t n = f.cols;
    auto p = [&](index_t i) { return perm.empty() ? i : perm[static_cast<std::size_t>(i)]; };
    auto hp = [&](index_t i, index_t j) {
        double v = H(p(i), p(j));
        if (i == j) v = (v == 0.0 ? 1.0 : v) + f.absolute_damping;
        return v;
    };
    std::vector<double> hinv(static_cast<std::size_t>(n * n), 0.0);
    for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < n; ++j)
            for (index_t k = 0; k <= std::min(i, j); ++k)
                hinv[static_cast<std::size_t>(i * n + j)] +=
                    static_cast<double>(f.u[static_cast<std::size_t>(k * n + i)]) * f.u[static_cast<std::size_t>(k * n + j)];
    double worst = 0.0;
    for (index_t i = 0; i < n; ++i)
        for (index_t j = 0; j < n; ++j) {
            double v = 0.0;
            for (index_t k = 0; k < n; ++k) v += hinv[static_cast<std::size_t>(i * n + k)] * hp(k, j);
            worst = std::max(worst, std::fabs(v - (i == j ? 1.0 : 0.0)));
        }
    return worst;
}
}  // namespace

TEST_CASE("inverse Hessian: every precision and method matches the fp64 twin") {
    const index_t cols = 91;
    auto h = gptq_test::hessian_of<float>(cols, 4, 61, 11);
    // One dead column.
    std::vector<float> H(h.view().data(), h.view().data() + cols * cols);
    for (index_t k = 0; k < cols; ++k) H[static_cast<std::size_t>(k * cols + 40)] = H[static_cast<std::size_t>(40 * cols + k)] = 0.f;
    const auto Hv = tcq::make_view(static_cast<const float*>(H.data()), cols, cols);
    std::vector<index_t> perm(static_cast<std::size_t>(cols));
    std::iota(perm.begin(), perm.end(), index_t{0});
    std::mt19937 g(3);
    std::shuffle(perm.begin(), perm.end(), g);
    for (bool permuted : {false, true}) {
        const std::vector<index_t> p = permuted ? perm : std::vector<index_t>{};
        const auto ref = tcq::reference::factor_inverse_hessian(Hv, p, tcq::damping_options{});
        CHECK(ref.dead_columns == std::vector<index_t>{40});
        CHECK(inverse_residual(ref, Hv, p) < 1e-4);
        for (auto prec : {tcq::factor_precision::fp32, tcq::factor_precision::fp64})
            for (auto method : {tcq::hinv_method::reversed, tcq::hinv_method::torch}) {
                tcq::hinv_options o;
                o.precision = prec;
                o.method = method;
                const auto f = tcq::factor_inverse_hessian(Hv, p, o);
                INFO("permuted ", permuted, " fp64 ", prec == tcq::factor_precision::fp64, " torch ",
                     method == tcq::hinv_method::torch);
                CHECK(f.retries == 0);
                CHECK(f.relative_damping == 0.01);
                CHECK(f.dead_columns == ref.dead_columns);
                CHECK(f.absolute_damping == doctest::Approx(ref.absolute_damping).epsilon(1e-6));
                for (index_t i = 0; i < cols; ++i)
                    for (index_t j = 0; j < i; ++j) REQUIRE(f.u[static_cast<std::size_t>(i * cols + j)] == 0.f);
                const double tol = prec == tcq::factor_precision::fp64 ? 1e-6 : 2e-3;
                CHECK(max_rel_diff(f.u, std::span<const float>(ref.u)) < tol);
            }
    }
}

TEST_CASE("inverse Hessian: blocked paths (several panels, partial last) match the twin; thread-independent") {
    const index_t cols = 301;
    auto h = gptq_test::hessian_of<double>(cols, 2, 700, 5);
    const auto ref = tcq::reference::factor_inverse_hessian(h.view(), {}, tcq::damping_options{});
    for (auto method : {tcq::hinv_method::reversed, tcq::hinv_method::torch}) {
        tcq::hinv_options o;
        o.precision = tcq::factor_precision::fp64;
        o.method = method;
        const auto a = tcq::factor_inverse_hessian(h.view(), {}, o, "H", tcq::seq());
        const auto b = tcq::factor_inverse_hessian(h.view(), {}, o, "H", tcq::par(2));
        CHECK(a.u == b.u);
        CHECK(max_rel_diff(a.u, std::span<const float>(ref.u)) < 1e-6);
        o.precision = tcq::factor_precision::fp32;
        const auto c = tcq::factor_inverse_hessian(h.view(), {}, o, "H", tcq::seq());
        const auto d = tcq::factor_inverse_hessian(h.view(), {}, o, "H", tcq::par(2));
        CHECK(c.u == d.u);
        CHECK(max_rel_diff(c.u, std::span<const float>(ref.u)) < 1e-2);
    }
}

TEST_CASE("inverse Hessian: fp32 identical for 1, 2 and 3 threads at a size Eigen would thread itself") {
    const index_t cols = 613;
    auto h = gptq_test::hessian_of<double>(cols, 2, 700, 5);
    for (auto method : {tcq::hinv_method::reversed, tcq::hinv_method::torch}) {
        tcq::hinv_options o;
        o.method = method;
        const auto a = tcq::factor_inverse_hessian(h.view(), {}, o, "H", tcq::seq());
        const auto b = tcq::factor_inverse_hessian(h.view(), {}, o, "H", tcq::par(2));
        const auto c = tcq::factor_inverse_hessian(h.view(), {}, o, "H", tcq::par(3));
        CHECK(a.u == b.u);
        CHECK(a.u == c.u);
    }
}

TEST_CASE("inverse Hessian: escalation on a singular and an indefinite H, reported; bounded") {
    SUBCASE("singular PSD H with no damping: one retry at the floor") {
        const index_t n = 9;
        std::vector<float> H(static_cast<std::size_t>(n * n));
        for (index_t i = 0; i < n; ++i)
            for (index_t j = 0; j < n; ++j) H[static_cast<std::size_t>(i * n + j)] = static_cast<float>((i + 1) * (j + 1));
        const auto Hv = tcq::make_view(static_cast<const float*>(H.data()), n, n);
        tcq::hinv_options o;
        o.damping.relative = 0.0;
        for (auto method : {tcq::hinv_method::reversed, tcq::hinv_method::torch}) {
            o.method = method;
            const auto f = tcq::factor_inverse_hessian(Hv, {}, o);
            CHECK(f.retries == 1);
            CHECK(f.relative_damping == doctest::Approx(1e-2));
            CHECK(f.absolute_damping > 0.0);
        }
        const auto r = tcq::reference::factor_inverse_hessian(Hv, {}, o.damping);
        CHECK(r.retries == 1);
    }
    SUBCASE("indefinite H: escalates to 10× mean diag, or throws naming the matrix") {
        const index_t n = 6;  // blocks [[1, 3], [3, 1]]: eigenvalues 4 and −2
        std::vector<double> H(static_cast<std::size_t>(n * n), 0.0);
        for (index_t b = 0; b < n; b += 2) {
            H[static_cast<std::size_t>(b * n + b)] = H[static_cast<std::size_t>((b + 1) * n + b + 1)] = 1.0;
            H[static_cast<std::size_t>(b * n + b + 1)] = H[static_cast<std::size_t>((b + 1) * n + b)] = 3.0;
        }
        const auto Hv = tcq::make_view(static_cast<const double*>(H.data()), n, n);
        tcq::hinv_options o;
        const auto f = tcq::factor_inverse_hessian(Hv, {}, o);
        CHECK(f.retries == 3);  // 0.01, 0.1, 1 fail; 10 succeeds
        CHECK(f.relative_damping == doctest::Approx(10.0));
        CHECK(tcq::reference::factor_inverse_hessian(Hv, {}, o.damping).retries == 3);
        o.damping.max_retries = 2;
        const std::string msg = message_of([&] { (void)tcq::factor_inverse_hessian(Hv, {}, o, "blk.7.wq", tcq::seq()); });
        CHECK(msg.find("blk.7.wq") != std::string::npos);
        CHECK(msg.find("3 attempts") != std::string::npos);
    }
}

TEST_CASE("inverse Hessian: bad input throws") {
    std::vector<float> H{2.f, 0.f, 0.f, 2.f};
    const auto Hv = tcq::make_view(static_cast<const float*>(H.data()), 2, 2);
    tcq::hinv_options o;
    CHECK_THROWS_AS((void)tcq::factor_inverse_hessian(tcq::make_view(static_cast<const float*>(H.data()), 1, 2), {}, o),
                    tcq::error);
    std::vector<index_t> bad{0, 0};
    CHECK_THROWS_AS((void)tcq::factor_inverse_hessian(Hv, bad, o), tcq::error);
    std::vector<index_t> short_perm{0};
    CHECK_THROWS_AS((void)tcq::factor_inverse_hessian(Hv, short_perm, o), tcq::error);
    auto o2 = o;
    o2.damping.relative = -1.0;
    CHECK_THROWS_AS((void)tcq::factor_inverse_hessian(Hv, {}, o2), tcq::error);
    o2 = o;
    o2.damping.growth = 1.0;
    CHECK_THROWS_AS((void)tcq::factor_inverse_hessian(Hv, {}, o2), tcq::error);
    auto Hn = H;
    Hn[1] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS((void)tcq::factor_inverse_hessian(tcq::make_view(static_cast<const float*>(Hn.data()), 2, 2), {}, o),
                    tcq::error);
    Hn = H;
    Hn[3] = -1.f;
    CHECK(message_of([&] {
              (void)tcq::factor_inverse_hessian(tcq::make_view(static_cast<const float*>(Hn.data()), 2, 2), {}, o);
          }).find("negative") != std::string::npos);
}
