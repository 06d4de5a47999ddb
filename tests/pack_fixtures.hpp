#pragma once
// Seeded inputs for the packed-format tests: quantized matrices built with
// tcq::fit_grid (fp16 scales) + the element math, and a random kept mask.

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "tcq/io/tcq_file.hpp"
#include "tcq/pack/dequantize.hpp"
#include "tcq/pack/gemv.hpp"
#include "tcq/quant/fake_quant.hpp"
#include "tcq/quant/fit.hpp"
#include "test_util.hpp"

namespace pack_fixtures {

/// The bits of a float (bit-exact comparisons that also tell NaNs and ±0 apart).
inline std::uint32_t fbits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

struct case_spec {
    tcq::index_t rows = 37;
    tcq::index_t cols = 203;
    int bits = 3;
    tcq::index_t group_size = 0;
    bool act_order = false;
    double density = 0.0035;  // fraction of kept weights
    unsigned seed = 1;
};

inline std::vector<float> randn(std::size_t n, unsigned seed, float sd = 0.02f) {
    return test_util::randn(n, seed, sd);
}

/// Quantized matrix of a random W: grid fitted with fp16 scales (min-max for
/// speed unless `mse`), codes and values from the element
/// math, a random mask whose kept values are the original weights (some large).
inline tcq::quantized_matrix make_quantized(const case_spec& cs, bool mse = false, std::vector<float>* W_out = nullptr) {
    using tcq::index_t;
    const auto n = static_cast<std::size_t>(cs.rows * cs.cols);
    std::vector<float> W = randn(n, cs.seed);
    if (W_out) *W_out = W;
    tcq::grid_spec spec;
    spec.bits = cs.bits;
    spec.group_size = cs.group_size;
    spec.fp16_scale = true;
    spec.mse.enabled = mse;
    tcq::quantized_matrix q;
    q.grid = tcq::fit_grid(tcq::make_view(static_cast<const float*>(W.data()), cs.rows, cs.cols), spec);
    std::mt19937 g(cs.seed * 7919u + 3u);
    if (cs.act_order) {
        q.g_idx.resize(static_cast<std::size_t>(cs.cols));
        std::uniform_int_distribution<int> gd(0, static_cast<int>(q.grid.groups()) - 1);
        for (auto& x : q.g_idx) x = gd(g);
    }
    q.codes.resize(n);
    q.values.resize(n);
    const float maxq = spec.maxq();
    for (index_t r = 0; r < cs.rows; ++r)
        for (index_t c = 0; c < cs.cols; ++c) {
            const auto p = q.grid.at(r, q.group_of(c));
            const auto i = static_cast<std::size_t>(r * cs.cols + c);
            const float code = tcq::quant_code(W[i], p.scale, p.zero, maxq);
            q.codes[i] = static_cast<std::uint8_t>(code);
            q.values[i] = tcq::dequant_code(code, p.scale, p.zero);
        }
    if (cs.density > 0) {
        q.kept = tcq::mask(cs.rows, cs.cols);
        std::bernoulli_distribution keep(cs.density);
        std::normal_distribution<float> big(0.f, 0.5f);
        for (std::size_t i = 0; i < n; ++i)
            if (keep(g)) {
                q.kept.set(static_cast<index_t>(i));
                q.codes[i] = 0;
                q.values[i] = (i % 3 == 0) ? big(g) : W[i];
            }
    }
    return q;
}

/// Ŵ as doubles: dequantized codes, kept positions at their 16-bit value.
inline std::vector<double> reference_dense(const tcq::quantized_matrix& q, tcq::value_format f) {
    std::vector<double> out(q.values.size());
    for (std::size_t i = 0; i < out.size(); ++i) {
        const bool kept = q.kept.size() && q.kept.test(static_cast<tcq::index_t>(i));
        out[i] = kept ? tcq::decode_value(tcq::encode_value(q.values[i], f), f) : q.values[i];
    }
    return out;
}

}  // namespace pack_fixtures
