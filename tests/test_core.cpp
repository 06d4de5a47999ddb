#include <doctest/doctest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "tcq/reference/half.hpp"
#include "tcq/tcq.hpp"

TEST_CASE("matrix_view: shape, strides, blocks, const conversion") {
    std::vector<float> buf(5 * 9);
    for (std::size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<float>(i);
    auto v = tcq::make_view(buf.data(), 5, 7, 9);
    CHECK(v(2, 3) == 21.f);
    CHECK(!v.contiguous());
    auto b = v.block(1, 2, 3, 4);
    CHECK(b(0, 0) == 11.f);
    CHECK(b.stride() == 9);
    tcq::matrix_view<const float> c = b;
    CHECK(c(2, 3) == 32.f);
    CHECK_THROWS_AS((void)v.block(3, 0, 3, 1), tcq::error);
    CHECK_THROWS_AS((void)tcq::make_view<float>(nullptr, 2, 2), tcq::error);
    CHECK_THROWS_AS((void)tcq::make_view(buf.data(), -1, 2), tcq::error);
}

TEST_CASE("Eigen adapter: row-major matrices, maps and blocks without copies") {
    tcq::RowMatrixXf m(4, 6);
    m.setRandom();
    auto v = tcq::as_view(m);
    CHECK(v.data() == m.data());
    CHECK(v(3, 5) == m(3, 5));
    auto blk = m.block(1, 2, 2, 3);
    auto bv = tcq::as_view(blk);
    CHECK(bv.data() == &m(1, 2));
    CHECK(bv.stride() == 6);
    CHECK(bv(1, 2) == m(2, 4));
    Eigen::Map<tcq::RowMatrixXf> map(m.data(), 3, 8);
    CHECK(tcq::as_view(map)(2, 7) == m.data()[23]);
    const tcq::RowMatrixXf& cm = m;
    tcq::matrix_view<const float> cv = tcq::as_view(cm);
    CHECK(cv(0, 1) == m(0, 1));
    auto e = tcq::as_eigen(v);
    CHECK(e(2, 2) == m(2, 2));
}

namespace engine {
struct tensor {  // a made-up engine tensor: NCHW-ish with explicit strides
    float* ptr;
    long shape[2];
    long strides[2];
};
}  // namespace engine

template <>
struct tcq::tensor_adapter<engine::tensor> {
    static tcq::matrix_view<float> view(const engine::tensor& t) {
        tcq::require(t.strides[1] == 1, "engine::tensor: inner stride must be 1");
        return {t.ptr, t.shape[0], t.shape[1], t.strides[0]};
    }
};

TEST_CASE("custom tensor joins through tensor_adapter without a copy") {
    std::vector<float> buf(3 * 10, 1.f);
    engine::tensor t{buf.data(), {3, 8}, {10, 1}};
    auto v = tcq::as_view(t);
    CHECK(v.data() == buf.data());
    CHECK(v.stride() == 10);
    v(2, 7) = 5.f;
    CHECK(buf[27] == 5.f);
}

TEST_CASE("fp16: vectorized converters equal scalar twin on every fp16 value and random floats") {
    std::vector<std::uint16_t> all(65536);
    for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i);
    std::vector<float> f(all.size()), fr(all.size());
    tcq::from_half(all, f);
    tcq::reference::from_half(all, fr);
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (std::isnan(fr[i])) { CHECK(std::isnan(f[i])); continue; }
        REQUIRE(std::memcmp(&f[i], &fr[i], 4) == 0);
    }
    // round trip of every non-NaN half is exact
    std::vector<std::uint16_t> back(all.size()), backr(all.size());
    tcq::to_half(f, back);
    tcq::reference::to_half(f, backr);
    for (std::size_t i = 0; i < all.size(); ++i)
        if (!std::isnan(f[i])) { REQUIRE(back[i] == all[i]); REQUIRE(backr[i] == all[i]); }
    // random floats across the whole range, incl. subnormal results and overflow; odd length
    std::mt19937 g(11);
    std::vector<float> r(100003);
    for (auto& x : r) {
        std::uint32_t u = g();
        std::memcpy(&x, &u, 4);
        if (std::isnan(x)) x = 1.f;
    }
    std::vector<std::uint16_t> h(r.size()), hr(r.size());
    tcq::to_half(r, h);
    tcq::reference::to_half(r, hr);
    CHECK(h == hr);
}

TEST_CASE("fp16 / bf16 known answers: ties to even") {
    CHECK(tcq::float_to_half(1.f) == 0x3c00);
    CHECK(tcq::float_to_half(65504.f) == 0x7bff);
    CHECK(tcq::float_to_half(65520.f) == 0x7c00);            // halfway to 65536 → even → Inf
    CHECK(tcq::float_to_half(1.f + 0x1p-11f) == 0x3c00);      // tie → even (down)
    CHECK(tcq::float_to_half(1.f + 3 * 0x1p-11f) == 0x3c02);  // tie → even (up)
    CHECK(tcq::float_to_half(0x1p-24f) == 0x0001);            // smallest subnormal
    CHECK(tcq::float_to_half(0x1p-25f) == 0x0000);            // tie → even (0)
    CHECK(tcq::float_to_half(-0.f) == 0x8000);
    CHECK(tcq::float_to_bf16(1.f + 0x1p-8f) == 0x3f80);       // tie → even
    CHECK(tcq::float_to_bf16(1.f + 3 * 0x1p-8f) == 0x3f82);
    CHECK(tcq::bf16_to_float(0x3f80) == 1.f);
    CHECK(std::isnan(tcq::bf16_to_float(tcq::float_to_bf16(std::nanf("")))));
    std::vector<float> in{1.f, 2.5f, -3.25f};
    std::vector<std::uint16_t> b(3), br(3);
    tcq::to_bf16(in, b);
    tcq::reference::to_bf16(in, br);
    CHECK(b == br);
    std::vector<float> out(3);
    tcq::from_bf16(b, out);
    CHECK(out == in);
    CHECK_THROWS_AS(tcq::to_half(in, std::span<std::uint16_t>(b.data(), 2)), tcq::error);
}

TEST_CASE("parallel_for / parallel_reduce: fixed chunks, identical results for any threads") {
    std::vector<float> x(100001);
    std::mt19937 g(1);
    std::normal_distribution<float> d;
    for (auto& v : x) v = d(g);
    auto sum = [&](const tcq::exec_policy& p) {
        return tcq::parallel_reduce(p, static_cast<tcq::index_t>(x.size()), 4096, 0.f,
            [&](tcq::index_t b, tcq::index_t e) { float s = 0; for (auto i = b; i < e; ++i) s += x[i]; return s; },
            [](float a, float b) { return a + b; });
    };
    const float s1 = sum(tcq::seq()), s2 = sum(tcq::par(2)), s7 = sum(tcq::par(7));
    CHECK(s1 == s2);
    CHECK(s1 == s7);
    tcq::exec_policy user;
    std::atomic<int> calls{0};
    user.executor = [&](tcq::index_t n, const std::function<void(tcq::index_t)>& task) {
        for (tcq::index_t i = n - 1; i >= 0; --i) { ++calls; task(i); }  // reverse order on purpose
    };
    CHECK(sum(user) == s1);
    CHECK(calls.load() == 25);
    CHECK_THROWS_AS(tcq::parallel_for(tcq::par(2), 10, 1, [](tcq::index_t b, tcq::index_t) {
        if (b == 3) tcq::fail("boom");
    }), tcq::error);
    CHECK_THROWS_AS(tcq::parallel_for(tcq::seq(), 10, 0, [](tcq::index_t, tcq::index_t) {}), tcq::error);
}

TEST_CASE("aligned_vector: 64-byte aligned buffers for every size and after growth") {
    for (std::size_t n : {1u, 3u, 17u, 1000u, 4097u}) {
        tcq::aligned_vector<float> v(n, 1.5f);
        CHECK(reinterpret_cast<std::uintptr_t>(v.data()) % 64 == 0);
        v.resize(3 * n + 5, 2.f);
        CHECK(reinterpret_cast<std::uintptr_t>(v.data()) % 64 == 0);
        CHECK(v[0] == 1.5f);
        CHECK(v.back() == 2.f);
    }
    tcq::aligned_vector<std::uint8_t> b(7);
    CHECK(reinterpret_cast<std::uintptr_t>(b.data()) % 64 == 0);
}

TEST_CASE("thread pool: back-to-back jobs with and without polling workers") {
    // Every chunk must run exactly once per job, whether the workers are
    // still polling from the previous job (spin_us > 0) or blocked (0), and
    // an exception must surface from a job that follows polled ones.
    for (int spin : {0, 50, 2000}) {
        CAPTURE(spin);
        tcq::exec_policy p = tcq::par(2);
        p.spin_us = spin;
        std::vector<std::atomic<int>> hits(97);
        for (int job = 0; job < 300; ++job)
            tcq::parallel_for(p, 97, 1, [&](tcq::index_t b, tcq::index_t) { hits[static_cast<std::size_t>(b)]++; });
        bool all = true;
        for (auto& h : hits) all = all && h.load() == 300;
        CHECK(all);
        CHECK_THROWS_AS(tcq::parallel_for(p, 10, 1, [](tcq::index_t b, tcq::index_t) {
            if (b == 7) tcq::fail("boom");
        }), tcq::error);
    }
}
