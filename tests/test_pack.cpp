// Packed matrix: block layouts, pack/unpack/dequantize round trips, exact bit
// accounting, fused GEMV/GEMM against dequantize-then-multiply and against
// their scalar twins, and rejection of bad input.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "pack_fixtures.hpp"
#include "tcq/reference/pack.hpp"

using pack_fixtures::case_spec;
using pack_fixtures::fbits;
using pack_fixtures::make_quantized;
using tcq::index_t;

namespace {

// Every (bits, group size, act-order) combination on odd shapes.
std::vector<case_spec> round_trip_cases() {
    std::vector<case_spec> out;
    unsigned seed = 11;
    for (int bits : {2, 3, 4, 8})
        for (index_t gs : {index_t{0}, index_t{16}, index_t{32}, index_t{128}, index_t{50}})
            for (auto [rows, cols] : {std::pair<index_t, index_t>{37, 203}, {5, 1000}, {66, 64}, {3, 1}}) {
                out.push_back({rows, cols, bits, gs, false, 0.02, seed++});
                if (gs == 32 || gs == 50) out.push_back({rows, cols, bits, gs, true, 0.02, seed++});
            }
    return out;
}

std::string name_of(const case_spec& c) {
    return std::to_string(c.rows) + "x" + std::to_string(c.cols) + " b" + std::to_string(c.bits) + " g" +
           std::to_string(c.group_size) + (c.act_order ? " act" : "");
}

}  // namespace

TEST_CASE("block layouts: put/get round trip and documented byte positions") {
    std::mt19937 g(5);
    for (int bits : {2, 3, 4, 8}) {
        std::uint8_t blk[64] = {};
        unsigned codes[64];
        for (int i = 0; i < 64; ++i) {
            codes[i] = g() & ((1u << bits) - 1u);
            tcq::block_put_code(blk, bits, i, codes[i]);
        }
        for (int i = 0; i < 64; ++i) CHECK(tcq::block_code(blk, bits, i) == codes[i]);
    }
    // Spot checks of docs/format.md: code i = 16k + j at stream bit 4b·j + b·k.
    std::uint8_t b[64] = {};
    tcq::block_put_code(b, 4, 16 * 2 + 5, 0xA);  // u16 5, bits 8..11 → byte 11 low nibble
    CHECK(b[11] == 0x0A);
    std::memset(b, 0, 64);
    tcq::block_put_code(b, 2, 16 * 3 + 5, 2);  // byte 5 bits 6..7
    CHECK(b[5] == (2u << 6));
    std::memset(b, 0, 64);
    tcq::block_put_code(b, 3, 16 * 2 + 9, 5);  // stream bit 12·9 + 6 = 114 → byte 14 bit 2
    CHECK(b[14] == (5u << 2));
    std::memset(b, 0, 64);
    tcq::block_put_code(b, 3, 16 * 3 + 2, 7);  // stream bit 24 + 9 = 33 → byte 4 bits 1..3
    CHECK(b[4] == (7u << 1));
    std::memset(b, 0, 64);
    tcq::block_put_code(b, 3, 16 * 1 + 0, 7);  // stream bit 3 → bits 3..5 of byte 0
    tcq::block_put_code(b, 3, 16 * 2 + 0, 7);  // stream bit 6 → spans bytes 0 and 1
    CHECK(b[0] == 0xF8);
    CHECK(b[1] == 0x01);
    std::memset(b, 0, 64);
    tcq::block_put_code(b, 8, 16 * 3 + 7, 200);  // byte 4·7 + 3
    CHECK(b[31] == 200);
}

TEST_CASE("SIMD block decoder equals block_code for every width and every compiled ISA overload") {
    std::mt19937 g(17);
    namespace isa = tcq::simd::isa;
    const auto check = [&]<class Arch>(Arch arch) {
        for (int rep = 0; rep < 50; ++rep) {
            std::uint8_t blk[64];
            for (auto& x : blk) x = static_cast<std::uint8_t>(g());
            tcq::detail::dispatch_bits(rep % 4 == 0 ? 2 : rep % 4 == 1 ? 3 : rep % 4 == 2 ? 4 : 8, [&]<int Bits>() {
                tcq::detail::lanes16 q[4];
                if (rep % 2)
                    tcq::detail::decode_block<Bits>(arch, blk, q, rep % 3 == 0);  // blk has room for the wide 3-bit read
                else
                    tcq::detail::decode_block<Bits>(blk, q);
                for (int k = 0; k < 4; ++k) {
                    alignas(64) float f[16];
                    tcq::detail::l16_store(q[k], f);
                    for (int l = 0; l < 16; ++l)
                        CHECK(f[l] == tcq::reference::code_magic<Bits>(tcq::block_code(blk, Bits, 16 * k + l)));
                }
            });
        }
    };
    check(isa::portable{});
    check(isa::avx2{});
    check(isa::avx512bw{});  // falls back to the next overload down where not compiled in
    check(isa::avx512vnni{});
}

TEST_CASE("pack → dequantize / unpack round trips bit for bit") {
    for (const auto& cs : round_trip_cases()) {
        CAPTURE(name_of(cs));
        for (auto fmt : {tcq::value_format::fp16, tcq::value_format::bf16}) {
            if (fmt == tcq::value_format::bf16 && cs.seed % 3) continue;
            const auto q = make_quantized(cs);
            const auto P = tcq::pack(q, {fmt});
            const auto V = P.view();
            std::vector<float> deq(q.values.size()), ref(q.values.size());
            tcq::dequantize(V, tcq::make_view(deq.data(), cs.rows, cs.cols));
            tcq::reference::dequantize(V, tcq::make_view(ref.data(), cs.rows, cs.cols));
            const auto dense = pack_fixtures::reference_dense(q, fmt);
            bool ok = true, twin = true;
            for (std::size_t i = 0; i < deq.size(); ++i) {
                ok &= fbits(deq[i]) == fbits(static_cast<float>(dense[i]));
                twin &= fbits(deq[i]) == fbits(ref[i]);
            }
            CHECK(ok);
            CHECK(twin);
            // Every ISA overload set gives the same bits.
            const auto same_as_deq = [&](auto arch) {
                std::vector<float> d(deq.size());
                tcq::dequantize(V, tcq::make_view(d.data(), cs.rows, cs.cols), arch);
                return d == deq;
            };
            CHECK(same_as_deq(tcq::simd::isa::portable{}));
            CHECK(same_as_deq(tcq::simd::isa::avx2{}));
            CHECK(same_as_deq(tcq::simd::isa::avx512bw{}));
            const auto u = tcq::unpack(V);
            CHECK(u.codes == q.codes);
            CHECK(u.kept.indices() == q.kept.indices());
            CHECK(u.g_idx == q.g_idx);
            CHECK(u.grid.params == q.grid.params);
            bool vals = true;
            for (std::size_t i = 0; i < deq.size(); ++i) vals &= fbits(u.values[i]) == fbits(deq[i]);
            CHECK(vals);
            // A copy re-validated from its parts is the same matrix.
            const auto V2 = tcq::packed_view::make(V.info(), V.parts());
            CHECK(V2.info().kept == q.kept.count());
        }
    }
}

TEST_CASE("dequantize equals tcq::fake_quantize on non-kept weights") {
    for (int bits : {2, 3, 4, 8})
        for (index_t gs : {index_t{0}, index_t{32}, index_t{100}}) {
            std::vector<float> W;
            const case_spec cs{29, 333, bits, gs, false, 0.01, static_cast<unsigned>(bits * 100 + gs)};
            const auto q = make_quantized(cs, true, &W);
            std::vector<float> fq(W.size()), deq(W.size());
            tcq::fake_quantize(tcq::make_view(static_cast<const float*>(W.data()), cs.rows, cs.cols), q.grid,
                               tcq::make_view(fq.data(), cs.rows, cs.cols));
            const auto P = tcq::pack(q);
            tcq::dequantize(P.view(), tcq::make_view(deq.data(), cs.rows, cs.cols), tcq::par(2));
            bool ok = true;
            for (std::size_t i = 0; i < W.size(); ++i)
                if (!q.kept.test(static_cast<index_t>(i))) ok &= fbits(fq[i]) == fbits(deq[i]);
            CHECK(ok);
        }
}

TEST_CASE("bits per weight: exact cost model vs stored bytes") {
    for (const auto& cs : round_trip_cases()) {
        CAPTURE(name_of(cs));
        const auto q = make_quantized(cs);
        const auto P = tcq::pack(q);
        const auto c = P.view().bits_used();
        const auto s = P.view().bits_stored();
        const auto k = static_cast<std::uint64_t>(q.kept.count());
        const auto groups = static_cast<std::uint64_t>(q.grid.groups());
        const auto R = static_cast<std::uint64_t>(cs.rows), C = static_cast<std::uint64_t>(cs.cols);
        CHECK(c.codes == R * ((C + 63) / 64 * 64) * static_cast<std::uint64_t>(cs.bits));
        CHECK(c.stats == R * groups * 24);
        CHECK(c.g_idx == (cs.act_order ? C * 16 : 0));
        CHECK(c.kept == (k ? k * 25 + R * ((C + 255) / 256) + (R + 63) / 64 * 64 : 0));
        CHECK(s.codes == c.codes);
        CHECK(s.stats == c.stats);
        CHECK(s.g_idx == c.g_idx);
        CHECK(s.kept >= c.kept);
        CHECK(s.kept - c.kept < 64);  // only the bitmap's word padding
        CHECK(c.total() == c.codes + c.stats + c.kept + c.g_idx);
        CHECK(c.per_weight() == doctest::Approx(static_cast<double>(c.total()) / static_cast<double>(R * C)));
    }
    // The marginal cost of one more kept weight is exactly 25 bits (< SpQR's 32).
    case_spec cs{64, 512, 3, 128, false, 0.0, 3};
    auto q = make_quantized(cs);
    q.kept = tcq::mask(64, 512);
    q.kept.set(index_t{7}, index_t{300});
    q.codes[7 * 512 + 300] = 0;
    const auto b1 = tcq::pack(q).bits_used().kept;
    q.kept.set(index_t{9}, index_t{3});
    q.codes[9 * 512 + 3] = 0;
    const auto b2 = tcq::pack(q).bits_used().kept;
    CHECK(b2 - b1 == 25);
}

TEST_CASE("kept bitmap: dense rows, long runs, skip entries across 64-row chunks") {
    for (double density : {0.0, 0.0035, 0.3, 0.97}) {
        const case_spec cs{130, 700, 4, 64, false, density, 99};
        const auto q = make_quantized(cs, false);
        const auto P = tcq::pack(q);
        const auto u = tcq::unpack(P.view());
        CHECK(u.kept.indices() == q.kept.indices());
        std::vector<float> a(q.values.size()), b(q.values.size());
        tcq::dequantize(P.view(), tcq::make_view(a.data(), 130, 700), tcq::seq());
        tcq::dequantize(P.view(), tcq::make_view(b.data(), 130, 700), tcq::par(2));
        CHECK(a == b);
    }
}

#if TCQ_KEPT_AVX512
TEST_CASE("chunk decoder of kept weights equals the plain bitmap walk") {
    // 1 bucket per row (cols ≤ 256) up to many; empty rows, rows over 64 kept
    // (spanning bitmap words), partial last chunks, bf16 values.
    for (auto shape : {std::pair<index_t, index_t>{70, 200}, {130, 700}, {64, 3000}, {3, 9000}})
        for (double density : {0.0, 0.004, 0.05, 0.6})
            for (auto fmt : {tcq::value_format::fp16, tcq::value_format::bf16}) {
                const index_t rows = shape.first, cols = shape.second;  // clang 14 lambdas cannot capture bindings
                CAPTURE(rows);
                CAPTURE(cols);
                CAPTURE(density);
                const auto q = make_quantized({rows, cols, 3, 64, false, density, 17}, false);
                const auto P = tcq::pack(q, {fmt});
                const auto V = P.view();
                const auto& a = V.parts().kept;
                const bool bf16 = fmt == tcq::value_format::bf16;
                const index_t B = tcq::kept_buckets(cols) * tcq::cost::col_bucket;
                std::vector<std::int32_t> key(a.values.size() + 64);
                std::vector<float> val(key.size());
                tcq::kept_cursor cur(a, cols, 0);
                bool ok = true;
                for (index_t c0 = 0; c0 < rows; c0 += 64) {
                    const std::size_t n = tcq::decode_kept_chunk(a, c0, bf16, key.data(), val.data());
                    std::size_t i = 0;
                    for (index_t r = c0; r < std::min(rows, c0 + 64); ++r)
                        cur.next_row([&](index_t, index_t c, std::uint16_t bits) {
                            ok &= i < n && key[i] >= (r - c0) * B && key[i] < (r - c0 + 1) * B &&
                                  key[i] - (r - c0) * B == c && fbits(val[i]) == fbits(tcq::decode_value(bits, fmt));
                            ++i;
                        });
                    ok &= i == n && key[n] == 0x7fffffff && val[n] == 0.f;
                }
                CHECK(ok);
            }
}
#endif

namespace {
// Checks gemv_batch (n vectors) against double dequantize-then-multiply with the
// tolerance of pack/gemv_batch.hpp, against the scalar twin, against gemv, and seq vs par.
void check_products(const case_spec& cs, index_t n, tcq::value_format fmt = tcq::value_format::fp16) {
    const auto q = make_quantized(cs);
    const auto P = tcq::pack(q, {fmt});
    const auto V = P.view();
    const auto dense = pack_fixtures::reference_dense(q, fmt);
    const auto X = pack_fixtures::randn(static_cast<std::size_t>(n * cs.cols), cs.seed + 1000, 1.f);
    std::vector<float> Y(static_cast<std::size_t>(n * cs.rows)), Y2(Y.size()), Yref(Y.size());
    const auto Xv = tcq::make_view(X.data(), n, cs.cols);
    tcq::gemv_batch(V, Xv, tcq::make_view(Y.data(), n, cs.rows));
    tcq::gemv_batch(V, Xv, tcq::make_view(Y2.data(), n, cs.rows), tcq::par(2));
    tcq::reference::gemv_batch(V, Xv, tcq::make_view(Yref.data(), n, cs.rows));
    CHECK(Y == Y2);
    // Each ISA overload set (those not compiled in fall back) gives the same bits.
    const auto same_as_Y = [&](auto arch) {
        std::vector<float> Ya(Y.size());
        tcq::gemv_batch(V, Xv, tcq::make_view(Ya.data(), n, cs.rows), arch);
        return std::memcmp(Ya.data(), Y.data(), Y.size() * sizeof(float)) == 0;
    };
    CHECK(same_as_Y(tcq::simd::isa::portable{}));
    CHECK(same_as_Y(tcq::simd::isa::avx2{}));
    CHECK(same_as_Y(tcq::simd::isa::avx512bw{}));
    bool tol_ok = true, twin_ok = true, gemv_ok = true;
    const auto G = q.grid.groups();
    std::vector<float> y1(static_cast<std::size_t>(cs.rows));
    for (index_t i = 0; i < n; ++i) {
        tcq::gemv(V, std::span<const float>(X.data() + i * cs.cols, static_cast<std::size_t>(cs.cols)), y1);
        for (index_t r = 0; r < cs.rows; ++r) {
            double exact = 0, M = 0;
            for (index_t c = 0; c < cs.cols; ++c) {
                const auto e = static_cast<std::size_t>(r * cs.cols + c);
                const double x = X[static_cast<std::size_t>(i * cs.cols + c)];
                exact += dense[e] * x;
                const auto p = q.grid.at(r, q.group_of(c));
                const bool kept = q.kept.size() && q.kept.test(r, c);
                const double two_b1 = std::ldexp(1.0, cs.bits + 1);
                M += (kept ? std::abs(dense[e]) + p.scale * (two_b1 + 2.0 * p.zero)
                           : p.scale * (two_b1 + q.codes[e] + p.zero)) * std::abs(x);
            }
            const auto o = static_cast<std::size_t>(i * cs.rows + r);
            const double tol = (static_cast<double>(cs.cols) / 16 + 64) * std::ldexp(1.0, -24) * M;
            if (std::abs(Y[o] - exact) > tol) {
                tol_ok = false;
                MESSAGE("row ", r, " vec ", i, ": ", Y[o], " vs ", exact, " tol ", tol);
            }
#if defined(__FMA__) || defined(__AVX512F__)
            twin_ok &= fbits(Y[o]) == fbits(Yref[o]);
#else
            twin_ok &= std::abs(Y[o] - Yref[o]) <= tol;
#endif
            gemv_ok &= fbits(Y[o]) == fbits(y1[static_cast<std::size_t>(r)]);
        }
    }
    (void)G;
    CHECK(tol_ok);
    CHECK(twin_ok);
    CHECK(gemv_ok);
}
}  // namespace

TEST_CASE("fused GEMV/GEMM equal dequantize-then-multiply within the stated tolerance") {
    for (const auto& cs : round_trip_cases()) {
        CAPTURE(name_of(cs));
        check_products(cs, 1);
        if (cs.seed % 4 == 0) check_products(cs, 3);
    }
    // Dense kept weights: rows whose bitmap spans several 64-bit windows and
    // windows with more than 16 weights (batch rotation paths of the decoder).
    for (double d : {0.05, 0.3, 0.9}) {
        CAPTURE(d);
        check_products({70, 700, 4, 64, false, d, 31}, 1);
        check_products({40, 2000, 3, 0, false, d, 32}, 2);
        check_products({9, 333, 2, 48, true, d, 33}, 3);
        check_products({66, 300, 3, 128, false, d, 34}, 1, tcq::value_format::bf16);
        check_products({10, 300, 4, 32, false, d, 35}, 5, tcq::value_format::bf16);
    }
    for (index_t n : {2, 4, 5, 8}) {
        CAPTURE(n);
        check_products({67, 450, 3, 128, false, 0.0035, 7}, n);
        check_products({67, 450, 4, 32, true, 0.0035, 8}, n);
        check_products({67, 450, 2, 0, false, 0.0035, 9}, n);
    }
}

TEST_CASE("pack rejects unpackable input with a clear error") {
    const case_spec cs{9, 70, 3, 32, false, 0.05, 4};
    auto expect_error = [](const tcq::quantized_matrix& q, const std::string& needle, tcq::pack_options o = {}) {
        try {
            (void)tcq::pack(q, o);
            FAIL("pack accepted bad input, expected: " << needle);
        } catch (const tcq::error& e) {
            CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
        }
    };
    {
        auto q = make_quantized(cs);
        q.grid.at(2, 1).scale = 0.0123456789f;
        expect_error(q, "fp16_scale");
    }
    {
        auto q = make_quantized(cs);
        q.grid.at(0, 0).zero = 2.5f;
        expect_error(q, "is not an integer");
    }
    {
        auto q = make_quantized(cs);
        q.grid.at(0, 0).zero = 8.f;
        expect_error(q, "is not an integer in [0, 7]");
    }
    {
        auto q = make_quantized(cs);
        q.grid.spec.bits = 5;
        expect_error(q, "unsupported bit width 5");
    }
    {
        auto q = make_quantized(cs);
        const auto i = q.kept.test(0, 1) ? 2 : 1;
        q.codes[static_cast<std::size_t>(i)] = 9;
        expect_error(q, "exceeds maxq");
    }
    {
        auto q = make_quantized(cs);
        const auto i = q.kept.test(0, 1) ? 2 : 1;
        q.values[static_cast<std::size_t>(i)] += 1.f;
        expect_error(q, "differs from its dequantized code");
    }
    {
        auto q = make_quantized(cs);
        const auto idx = q.kept.indices();
        REQUIRE(!idx.empty());
        q.values[static_cast<std::size_t>(idx[0])] = 1e6f;
        expect_error(q, "store kept weights as bf16");
        CHECK_NOTHROW((void)tcq::pack(q, {tcq::value_format::bf16}));
    }
    {
        auto q = make_quantized({9, 70, 3, 32, true, 0.05, 4});
        q.g_idx[5] = 3;  // 3 groups: 0..2
        expect_error(q, "g_idx[5] = 3");
    }
    {
        auto q = make_quantized(cs);
        q.kept = tcq::mask(9, 71);
        expect_error(q, "mask is 9x71");
    }
    {
        auto q = make_quantized(cs);
        q.values.pop_back();
        expect_error(q, "values, expected 630");
    }
}

TEST_CASE("packed_view::make rejects inconsistent arrays") {
    const auto q = make_quantized({70, 300, 4, 64, false, 0.02, 21});
    const auto P = tcq::pack(q);
    const auto V = P.view();
    auto expect_error = [&](const tcq::packed_info& info, const tcq::packed_parts& parts, const std::string& needle) {
        try {
            (void)tcq::packed_view::make(info, parts, "M");
            FAIL("accepted, expected: " << needle);
        } catch (const tcq::error& e) {
            CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
        }
    };
    const auto& p = V.parts();
    {
        auto s = std::vector<std::uint16_t>(p.scales.begin(), p.scales.end());
        s[3] = 0x7c00;  // +inf
        auto pp = p;
        pp.scales = s;
        expect_error(V.info(), pp, "not a finite positive value");
    }
    {
        auto z = std::vector<std::uint8_t>(p.zeros.begin(), p.zeros.end());
        z[4] = 16;
        auto pp = p;
        pp.zeros = z;
        expect_error(V.info(), pp, "exceeds maxq 15");
    }
    {
        auto c = std::vector<std::uint8_t>(p.codes.begin(), p.codes.end());
        c[static_cast<std::size_t>(V.info().row_bytes() - 1)] = 0xff;  // padding of row 0 (cols 300..319)
        auto pp = p;
        pp.codes = c;
        expect_error(V.info(), pp, "padding code of row 0");
    }
    {
        auto lc = std::vector<std::uint8_t>(p.kept.low_cols.begin(), p.kept.low_cols.end());
        std::swap(lc[0], lc[1]);
        auto pp = p;
        pp.kept.low_cols = lc;
        CHECK_THROWS_AS((void)tcq::packed_view::make(V.info(), pp), tcq::error);
    }
    {
        auto bm = std::vector<std::uint64_t>(p.kept.bitmap.begin(), p.kept.bitmap.end());
        bm[0] ^= 0x10;
        auto pp = p;
        pp.kept.bitmap = bm;
        CHECK_THROWS_AS((void)tcq::packed_view::make(V.info(), pp), tcq::error);
    }
    {
        auto sk = std::vector<std::uint32_t>(p.kept.skips.begin(), p.kept.skips.end());
        sk[2] += 1;
        auto pp = p;
        pp.kept.skips = sk;
        expect_error(V.info(), pp, "skip entry 1");
    }
    {
        auto pp = p;
        pp.codes = pp.codes.first(pp.codes.size() - 1);
        expect_error(V.info(), pp, "code array has");
    }
    {
        auto info = V.info();
        info.kept += 1;
        expect_error(info, p, "kept");
    }
}

TEST_CASE("kernels reject mismatched shapes") {
    const auto P = tcq::pack(make_quantized({7, 50, 2, 0, false, 0.0, 1}));
    std::vector<float> x(49), y(7), out(7 * 50);
    CHECK_THROWS_AS(tcq::gemv(P.view(), x, y), tcq::error);
    x.resize(50);
    y.resize(8);
    CHECK_THROWS_AS(tcq::gemv(P.view(), x, y), tcq::error);
    CHECK_THROWS_AS(tcq::dequantize(P.view(), tcq::make_view(out.data(), 7, 49)), tcq::error);
    CHECK_THROWS_AS(tcq::gemv(tcq::packed_view{}, x, y), tcq::error);
}
