// int8-activation products (pack/gemv_batch_int8.hpp): bit-identical to the scalar
// twin on every instruction-set path and thread count, within the stated
// error bound of dequantize-then-multiply in fp64, and rejecting bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "error_message.hpp"
#include "pack_fixtures.hpp"
#include "tcq/pack/gemv_batch_int8.hpp"
#include "tcq/reference/pack.hpp"

using pack_fixtures::case_spec;
using pack_fixtures::fbits;
using pack_fixtures::make_quantized;
using tcq::index_t;

namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (fbits(a[i]) != fbits(b[i])) return false;
    return true;
}

// Inputs whose block maxima differ by orders of magnitude, with an all-zero block.
std::vector<float> activations(index_t n, index_t cols, unsigned seed) {
    auto X = pack_fixtures::randn(static_cast<std::size_t>(n * cols), seed, 1.f);
    for (index_t v = 0; v < n; ++v)
        for (index_t c = 0; c < cols; ++c) {
            float& x = X[static_cast<std::size_t>(v * cols + c)];
            x *= std::ldexp(1.f, static_cast<int>((c / 64 + v) % 7) - 3);
            if (cols > 128 && c / 64 == 1) x = 0.f;
        }
    return X;
}

template <class Arch>
std::vector<float> run(const tcq::packed_view& V, const std::vector<float>& X, index_t n, int threads, Arch arch) {
    std::vector<float> Y(static_cast<std::size_t>(n * V.rows()));
    tcq::gemv_batch_int8(V, tcq::make_view(X.data(), n, V.cols()), tcq::make_view(Y.data(), n, V.rows()), arch,
                         tcq::par(threads));
    return Y;
}

void check_case(const case_spec& cs, index_t n, tcq::value_format fmt = tcq::value_format::fp16) {
    CAPTURE(cs.rows);
    CAPTURE(cs.cols);
    CAPTURE(cs.bits);
    CAPTURE(cs.group_size);
    CAPTURE(n);
    const auto q = make_quantized(cs);
    const auto P = tcq::pack(q, {fmt});
    const auto V = P.view();
    const auto X = activations(n, cs.cols, cs.seed + 77);
    const auto Xv = tcq::make_view(X.data(), n, cs.cols);
    std::vector<float> Yref(static_cast<std::size_t>(n * cs.rows));
    tcq::reference::gemv_batch_int8(V, Xv, tcq::make_view(Yref.data(), n, cs.rows));

    const auto Y = run(V, X, n, 1, tcq::simd::isa::best{});
#if defined(__FMA__) || defined(__AVX512F__)
    CHECK(same_bits(Y, Yref));  // without FMA, xsimd's fma rounds twice (the error bound below still holds)
#endif
    CHECK(same_bits(run(V, X, n, 2, tcq::simd::isa::best{}), Y));
    CHECK(same_bits(run(V, X, n, 1, tcq::simd::isa::avx2{}), Y));
    CHECK(same_bits(run(V, X, n, 2, tcq::simd::isa::portable{}), Y));
    CHECK(same_bits(run(V, X, n, 1, tcq::simd::isa::avx512bw{}), Y));
    {  // the activation quantizer's overloads agree field by field
        const auto Ab = tcq::quantize_activations(V.info(), Xv);
        const auto Ap = tcq::quantize_activations(V.info(), Xv, tcq::simd::isa::portable{});
        CHECK(Ab.xq == Ap.xq);
        CHECK(same_bits(std::vector<float>(Ab.sx.begin(), Ab.sx.end()), std::vector<float>(Ap.sx.begin(), Ap.sx.end())));
        CHECK(same_bits(std::vector<float>(Ab.xz.begin(), Ab.xz.end()), std::vector<float>(Ap.xz.begin(), Ap.xz.end())));
    }
    // Pre-quantized activations give the same result; row i = gemv of vector i.
    std::vector<float> Ya(Y.size()), y1(static_cast<std::size_t>(cs.rows));
    tcq::gemv_batch_int8(V, tcq::quantize_activations(V.info(), Xv), tcq::make_view(Ya.data(), n, cs.rows));
    CHECK(same_bits(Ya, Y));
    tcq::gemv_int8(V, std::span<const float>(X.data() + (n - 1) * cs.cols, static_cast<std::size_t>(cs.cols)), y1);
    CHECK(same_bits(y1, std::vector<float>(Y.end() - cs.rows, Y.end())));

    // Error bound of pack/gemv_batch_int8.hpp against fp64 dequantize-then-multiply.
    const auto A = tcq::quantize_activations(V.info(), Xv);
    const auto dense = pack_fixtures::reference_dense(q, fmt);
    const index_t nb = V.info().blocks_per_row(), G = V.info().groups();
    bool ok = true, tight = true, xq_ok = true;
    for (index_t v = 0; v < n; ++v) {
        std::vector<double> xqv(static_cast<std::size_t>(cs.cols)), sxv(static_cast<std::size_t>(cs.cols));
        for (index_t b = 0; b < nb; ++b)
            for (int p = 0; p < 64; ++p) {
                const index_t c = 64 * b + tcq::int8_slot_code(cs.bits, p);
                if (c >= cs.cols) continue;
                const double s = A.sx[static_cast<std::size_t>(v * A.xblocks + b / A.kx)];
                xqv[static_cast<std::size_t>(c)] = A.xq[static_cast<std::size_t>(v * A.padded + 64 * b + p)];
                sxv[static_cast<std::size_t>(c)] = s;
                const double x = X[static_cast<std::size_t>(v * cs.cols + c)];
                xq_ok &= std::abs(x - s * xqv[static_cast<std::size_t>(c)]) <= (0.5 + std::ldexp(1.0, -16)) * s;
            }
        for (index_t r = 0; r < cs.rows; ++r) {
            double exact = 0, absum = 0, xterm = 0, M = 0;
            index_t kept = 0;
            for (index_t c = 0; c < cs.cols; ++c) {
                const auto e = static_cast<std::size_t>(r * cs.cols + c);
                const double x = X[static_cast<std::size_t>(v * cs.cols + c)];
                const bool k = q.kept.size() && q.kept.test(r, c);
                exact += dense[e] * x;
                absum += std::abs(dense[e] * x);
                const index_t g = V.group_of(c);
                const double s = V.scale(r, g), z = V.zero_code(r, g);
                const double code = tcq::row_code(V.row_codes(r), cs.bits, c);
                const double sx = sxv[static_cast<std::size_t>(c)], ax = std::abs(xqv[static_cast<std::size_t>(c)]);
                M += s * (code + z) * sx * ax + (k ? std::abs(dense[e] * x) : 0.0);
                if (k) ++kept;
                else xterm += (0.5 + std::ldexp(1.0, -16)) * sx * std::abs(dense[e]);
            }
            const double bound = xterm + static_cast<double>(nb + G + kept + 16) * std::ldexp(1.0, -24) * M;
            const double y = Y[static_cast<std::size_t>(v * cs.rows + r)];
            if (!(std::abs(y - exact) <= bound)) {
                ok = false;
                MESSAGE("row ", r, " vec ", v, ": ", y, " vs ", exact, " bound ", bound);
            }
            tight &= bound <= 0.05 * absum + 1e-30;  // the bound says something: a few 2^-9 of Σ|Ŵx|
        }
    }
    CHECK(xq_ok);
    CHECK(ok);
    CHECK(tight);
}

}  // namespace

TEST_CASE("int8 slot orders are permutations of the 64 codes of a block") {
    for (int bits : {2, 3, 4, 8}) {
        std::vector<int> seen(64, 0);
        for (int p = 0; p < 64; ++p) ++seen[static_cast<std::size_t>(tcq::int8_slot_code(bits, p))];
        CHECK(seen == std::vector<int>(64, 1));
    }
}

TEST_CASE("int8 GEMV/GEMM: every ISA path equals the scalar twin bit for bit, within the error bound") {
    unsigned seed = 101;
    for (int bits : {2, 3, 4, 8})
        for (index_t gs : {index_t{0}, index_t{64}, index_t{128}, index_t{192}})
            for (auto [rows, cols] : {std::pair<index_t, index_t>{37, 203}, {67, 450}, {3, 1}, {5, 1000}}) {
                check_case({rows, cols, bits, gs, false, 0.02, seed++}, 1);
                if (seed % 3 == 0) check_case({rows, cols, bits, gs, false, 0.02, seed++}, 3);
            }
    for (index_t n : {2, 3, 5, 8}) {
        check_case({67, 450, 3, 128, false, 0.0035, 7}, n);
        check_case({29, 333, 8, 64, false, 0.01, 8}, n);
        check_case({11, 1600, 2, 0, false, 0.0035, 9}, n);
        check_case({13, 777, 4, 256, false, 0.0035, 10}, n);
    }
    // Dense kept weights and bf16 values.
    for (double d : {0.05, 0.4}) {
        check_case({66, 300, 3, 128, false, d, 34}, 2, tcq::value_format::bf16);
        check_case({40, 2000, 4, 0, false, d, 35}, 1);
    }
}

TEST_CASE("int8 products: non-finite activations give NaN, bad input a clear error") {
    const auto q = make_quantized({9, 150, 3, 64, false, 0.02, 5});
    const auto P = tcq::pack(q, {});
    const auto V = P.view();
    std::vector<float> x(150, 0.25f), y(9);
    x[70] = std::numeric_limits<float>::infinity();
    tcq::gemv_int8(V, x, y);
    std::vector<float> yr(9);
    tcq::reference::gemv_int8(V, x, yr);
    for (index_t r = 0; r < 9; ++r) {
        CHECK(std::isnan(y[static_cast<std::size_t>(r)]));
        CHECK(std::isnan(yr[static_cast<std::size_t>(r)]));
    }
    x[70] = 0.f;
    using test_util::message_of;
    std::vector<float> xs(149);
    CHECK(message_of([&] { tcq::gemv_int8(V, xs, y); }).find("x has 149 elements") != std::string::npos);
    std::vector<float> ys(8);
    CHECK(message_of([&] { tcq::gemv_int8(V, x, ys); }).find("y has 8 elements") != std::string::npos);
    // Layouts without whole-block groups.
    for (auto cs : {case_spec{9, 150, 3, 32, false, 0.02, 6}, case_spec{9, 150, 3, 64, true, 0.02, 6}}) {
        const auto Pq = tcq::pack(make_quantized(cs), {});
        CHECK(!tcq::int8_supported(Pq.info()));
        CHECK(message_of([&] { tcq::gemv_int8(Pq.view(), x, y); }).find("unsupported layout") != std::string::npos);
    }
    // Activations quantized for another layout.
    const auto P4 = tcq::pack(make_quantized({9, 150, 4, 64, false, 0.02, 7}), {});
    const auto A4 = tcq::quantize_activations(P4.info(), tcq::make_view(x.data(), 1, 150));
    CHECK(message_of([&] { tcq::gemv_batch_int8(V, A4, tcq::make_view(y.data(), 1, 9)); }).find("quantized for 4-bit") !=
          std::string::npos);
}
