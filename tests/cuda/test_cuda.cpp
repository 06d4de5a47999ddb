// Launches every CUDA kernel of tcq (fake-quant, dequantize, GEMV/GEMM with
// kept weights) on seeded odd-sized inputs and compares with the CPU code.
// Label `cuda`; without a device the whole executable reports SKIP (exit 77).
// Run on a GPU machine with scripts/cuda-check.sh.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_runner.hpp"
#include "pack_fixtures.hpp"
#include "skip.hpp"
#include "tcq/pack/gemv_batch_int8.hpp"

namespace {

using tcq::index_t;

void require_device() {
    std::string why;
    if (!tcq::cuda_runner::device_available(why)) tcq_test::skip(("no usable CUDA device: " + why).c_str());
}

tcq::cuda_runner::host_packed host_of(const tcq::packed_view& v) {
    const auto& i = v.info();
    const auto& p = v.parts();
    tcq::cuda_runner::host_packed h;
    h.codes = p.codes;
    h.scales = p.scales;
    h.zeros = p.zeros;
    h.g_idx = p.g_idx;
    h.values = p.kept.values;
    h.low_cols = p.kept.low_cols;
    h.bitmap = p.kept.bitmap;
    h.skips = p.kept.skips;
    h.rows = i.rows;
    h.cols = i.cols;
    h.groups = i.groups();
    h.group_size = i.group_size;
    h.bits = i.bits;
    h.act_order = i.act_order;
    h.bf16 = i.kept_format == tcq::value_format::bf16;
    return h;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

const pack_fixtures::case_spec cases[] = {
    {37, 203, 2, 0, false, 0.0035, 1},  {53, 331, 3, 64, false, 0.01, 2}, {29, 129, 4, 128, false, 0.02, 3},
    {61, 197, 8, 0, false, 0.0035, 4},  {31, 150, 3, 50, false, 0.01, 5}, {41, 257, 4, 64, true, 0.01, 6},
    {19, 64, 2, 32, false, 0.0, 7},
};

}  // namespace

TEST_CASE("cuda: fake_quantize equals the CPU kernel bit for bit") {
    require_device();
    for (const auto& cs : cases) {
        std::vector<float> W = pack_fixtures::randn(static_cast<std::size_t>(cs.rows * cs.cols), cs.seed);
        tcq::grid_spec spec;
        spec.bits = cs.bits;
        spec.group_size = cs.group_size;
        const auto Wv = tcq::make_view<const float>(W.data(), cs.rows, cs.cols);
        const tcq::grid g = tcq::fit_grid(Wv, spec);
        std::vector<float> cpu(W.size()), gpu(W.size());
        tcq::fake_quantize(Wv, g, tcq::make_view(cpu.data(), cs.rows, cs.cols));
        const index_t group_cols = cs.group_size ? cs.group_size : cs.cols;
        tcq::cuda_runner::fake_quantize(W.data(), cs.rows, cs.cols, g.params, g.groups(), group_cols, spec.maxq(),
                                        gpu.data());
        for (std::size_t i = 0; i < W.size(); ++i)
            REQUIRE_MESSAGE(same_bits(cpu[i], gpu[i]), cs.rows, "x", cs.cols, " b=", cs.bits, " element ", i, ": cpu ",
                            cpu[i], " gpu ", gpu[i]);
    }
}

TEST_CASE("cuda: dequantize equals the CPU kernel bit for bit") {
    require_device();
    for (const auto& cs : cases) {
        for (const auto fmt : {tcq::value_format::fp16, tcq::value_format::bf16}) {
            const tcq::packed_matrix P = tcq::pack(pack_fixtures::make_quantized(cs), {fmt, true});
            const auto V = P.view();
            std::vector<float> cpu(static_cast<std::size_t>(V.rows() * V.cols())), gpu(cpu.size());
            tcq::dequantize(V, tcq::make_view(cpu.data(), V.rows(), V.cols()));
            tcq::cuda_runner::dequantize(host_of(V), gpu.data());
            for (std::size_t i = 0; i < cpu.size(); ++i)
                REQUIRE_MESSAGE(same_bits(cpu[i], gpu[i]), V.rows(), "x", V.cols(), " b=", V.bits(), " element ", i);
        }
    }
}

// The device sums in its own fixed order (pack.cuh): deterministic, within
// the recursive-summation bound of that order against the exact product,
// (cols/32 + 5 + kept_r + 1)·2⁻²⁴·Σ_c |Ŵ_rc x_c|, and vector i of a GEMM is
// the GEMV of vector i bit for bit.
TEST_CASE("cuda: gemv/gemv_batch within the stated bound; gemv_batch rows equal gemv") {
    require_device();
    for (const auto& cs : cases) {
        const tcq::quantized_matrix q = pack_fixtures::make_quantized(cs);
        const tcq::packed_matrix P = tcq::pack(q);
        const auto V = P.view();
        const auto h = host_of(V);
        std::vector<float> dense(static_cast<std::size_t>(V.rows() * V.cols()));
        tcq::dequantize(V, tcq::make_view(dense.data(), V.rows(), V.cols()));
        for (int n : {1, 2, 3, 5, 8}) {
            const std::vector<float> X = pack_fixtures::randn(static_cast<std::size_t>(n * V.cols()), cs.seed + 99, 1.f);
            std::vector<float> Y(static_cast<std::size_t>(n * V.rows()));
            tcq::cuda_runner::gemv_batch(h, X.data(), n, Y.data());
            for (int i = 0; i < n; ++i) {
                std::vector<float> y1(static_cast<std::size_t>(V.rows()));
                tcq::cuda_runner::gemv_batch(h, X.data() + i * V.cols(), 1, y1.data());
                for (index_t r = 0; r < V.rows(); ++r) {
                    double exact = 0, mag = 0;
                    index_t kept = 0;
                    for (index_t c = 0; c < V.cols(); ++c) {
                        const double t = static_cast<double>(dense[static_cast<std::size_t>(r * V.cols() + c)]) *
                                         X[static_cast<std::size_t>(i * V.cols() + c)];
                        exact += t;
                        mag += std::abs(t);
                        kept += q.kept.size() && q.kept.test(r, c);
                    }
                    const float got = Y[static_cast<std::size_t>(i * V.rows() + r)];
                    const double bound = (static_cast<double>(V.cols()) / 32 + 6 + static_cast<double>(kept)) *
                                         0x1p-24 * mag;
                    REQUIRE_MESSAGE(std::abs(got - exact) <= bound, "b=", cs.bits, " n=", n, " vector ", i, " row ", r,
                                    ": ", got, " vs exact ", exact, " (bound ", bound, ")");
                    REQUIRE(same_bits(got, y1[static_cast<std::size_t>(r)]));
                }
            }
        }
    }
}

TEST_CASE("cuda: gemv_batch rejects a batch outside 1..8") {
    require_device();
    const tcq::packed_matrix P = tcq::pack(pack_fixtures::make_quantized(cases[0]));
    std::vector<float> X(static_cast<std::size_t>(9 * P.view().cols())), Y(static_cast<std::size_t>(9 * P.view().rows()));
    CHECK_THROWS_AS(tcq::cuda_runner::gemv_batch(host_of(P.view()), X.data(), 9, Y.data()), tcq::error);
}

// Same element math and the CPU lane order (cuda/pack.cuh), built with
// --fmad=false: the int8 GEMV is the CPU one bit for bit.
TEST_CASE("cuda: gemv_int8 equals the CPU kernel bit for bit") {
    require_device();
    for (const auto& cs : cases) {
        const tcq::packed_matrix P = tcq::pack(pack_fixtures::make_quantized(cs), {});
        const auto V = P.view();
        if (!tcq::int8_supported(V.info())) continue;
        const auto x = pack_fixtures::randn(static_cast<std::size_t>(V.cols()), cs.seed + 9, 1.f);
        std::vector<float> cpu(static_cast<std::size_t>(V.rows())), gpu(cpu.size());
        tcq::gemv_int8(V, x, cpu);
        tcq::cuda_runner::gemv_int8(host_of(V), x.data(), gpu.data());
        for (std::size_t r = 0; r < cpu.size(); ++r)
            REQUIRE_MESSAGE(same_bits(cpu[r], gpu[r]), V.rows(), "x", V.cols(), " b=", V.bits(), " row ", r);
    }
}

