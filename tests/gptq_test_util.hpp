#pragma once
// Shared fixtures of the GPTQ tests: seeded weights and correlated activations.

#include <cmath>
#include <random>
#include <vector>

#include "tcq/gptq/hessian.hpp"
#include "tcq/gptq/solver.hpp"
#include "tcq/quant/rtn.hpp"
#include "test_util.hpp"

namespace gptq_test {

using test_util::randn;

/// tokens × cols activations with strong, uneven column correlations:
/// x_t = z_t·M with M = I + low-rank mixing, and per-column scales over two decades.
inline std::vector<float> correlated_x(tcq::index_t tokens, tcq::index_t cols, unsigned seed) {
    auto z = randn(static_cast<std::size_t>(tokens * cols), seed);
    const tcq::index_t rank = 4;
    auto f = randn(static_cast<std::size_t>(tokens * rank), seed + 1);
    auto mix = randn(static_cast<std::size_t>(rank * cols), seed + 2);
    std::vector<float> x(z.size());
    for (tcq::index_t t = 0; t < tokens; ++t)
        for (tcq::index_t c = 0; c < cols; ++c) {
            float v = 0.3f * z[static_cast<std::size_t>(t * cols + c)];
            for (tcq::index_t k = 0; k < rank; ++k)
                v += f[static_cast<std::size_t>(t * rank + k)] * mix[static_cast<std::size_t>(k * cols + c)];
            const float scale = std::pow(10.f, static_cast<float>((c * 7) % 13) / 6.f - 1.f);
            x[static_cast<std::size_t>(t * cols + c)] = v * scale;
        }
    return x;
}

/// Hessian of `samples` samples of `tokens` correlated tokens each.
template <class T = float>
inline tcq::hessian_accumulator<T> hessian_of(tcq::index_t cols, tcq::index_t samples, tcq::index_t tokens,
                                              unsigned seed) {
    tcq::hessian_accumulator<T> h(cols);
    for (tcq::index_t s = 0; s < samples; ++s) {
        auto x = correlated_x(tokens, cols, seed + 10 * static_cast<unsigned>(s));
        h.add(tcq::make_view(static_cast<const float*>(x.data()), tokens, cols));
    }
    return h;
}

/// tr((W − Q) H (W − Q)ᵀ) in double.
template <class T>
inline double objective(tcq::matrix_view<const float> W, const std::vector<float>& Q, tcq::matrix_view<const T> H) {
    const tcq::index_t rows = W.rows(), cols = W.cols();
    double tot = 0.0;
    std::vector<double> d(static_cast<std::size_t>(cols));
    for (tcq::index_t r = 0; r < rows; ++r) {
        for (tcq::index_t c = 0; c < cols; ++c)
            d[static_cast<std::size_t>(c)] = static_cast<double>(W(r, c)) - Q[static_cast<std::size_t>(r * cols + c)];
        for (tcq::index_t i = 0; i < cols; ++i) {
            double acc = 0.0;
            for (tcq::index_t j = 0; j < cols; ++j) acc += static_cast<double>(H(i, j)) * d[static_cast<std::size_t>(j)];
            tot += d[static_cast<std::size_t>(i)] * acc;
        }
    }
    return tot;
}

inline float max_abs(const std::vector<float>& v) {
    float m = 0.f;
    for (float x : v) m = std::max(m, std::fabs(x));
    return m;
}

}  // namespace gptq_test
