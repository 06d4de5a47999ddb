#pragma once
/// @file reference/saliency.hpp
/// @brief Scalar twins of saliency/accumulator.hpp and saliency/scores.hpp:
/// plain loops, one element at a time, the definition the SIMD kernels are
/// tested against bit for bit.

#include <cfloat>
#include <cmath>

#include "tcq/core/matrix_view.hpp"
#include "tcq/saliency/scores.hpp"

namespace tcq::reference {

/// acc += |g| (no validation beyond shapes).
inline void accumulate_abs(matrix_view<float> acc, matrix_view<const float> g) {
    require_shape(acc, g.rows(), g.cols(), "reference::accumulate_abs: acc");
    for (index_t r = 0; r < g.rows(); ++r)
        for (index_t c = 0; c < g.cols(); ++c) acc(r, c) = acc(r, c) + std::fabs(g(r, c));
}

/// acc += g.
inline void accumulate(matrix_view<float> acc, matrix_view<const float> g) {
    require_shape(acc, g.rows(), g.cols(), "reference::accumulate: acc");
    for (index_t r = 0; r < g.rows(); ++r)
        for (index_t c = 0; c < g.cols(); ++c) acc(r, c) = acc(r, c) + g(r, c);
}

/// acc += g·g.
inline void accumulate_sq(matrix_view<float> acc, matrix_view<const float> g) {
    require_shape(acc, g.rows(), g.cols(), "reference::accumulate_sq: acc");
    for (index_t r = 0; r < g.rows(); ++r)
        for (index_t c = 0; c < g.cols(); ++c) acc(r, c) = acc(r, c) + g(r, c) * g(r, c);
}

/// Score of one element, in the operation order documented in scores.hpp.
/// `x` is A (tacq, grad_delta) or G2 (fisher); `col` is U_jj (spqr) or
/// sqrt(H_jj) (wanda).
inline float score(score_method m, float w, float q, float x, float col) {
    switch (m) {
        case score_method::tacq: return (x * std::fabs(w - q)) * std::fabs(w);
        case score_method::grad_delta: return x * std::fabs(w - q);
        case score_method::fisher: {
            const float d = w - q;
            return x * (d * d);
        }
        case score_method::spqr: {
            const float t = (w - q) / col;
            return t * t;
        }
        case score_method::magnitude: return std::fabs(w);
        case score_method::wanda: return std::fabs(w) * col;
        case score_method::random: break;
    }
    fail("reference::score: method ", to_string(m), " has no element formula");
}

/// Scalar compute_scores: same inputs, validation and errors.
inline void compute_scores(score_method m, const score_inputs& in, matrix_view<float> out) {
    detail::check_score_inputs(m, in, out, "reference::compute_scores");
    const score_needs nd = needs(m);
    for (index_t r = 0; r < out.rows(); ++r)
        for (index_t c = 0; c < out.cols(); ++c) {
            float s;
            if (m == score_method::random) {
                s = score_math::random_score(in.seed, static_cast<std::uint64_t>(r * out.cols() + c));
            } else {
                const float x = nd.grad_abs ? in.grad_abs(r, c) : nd.grad_sq ? in.grad_sq(r, c) : 0.f;
                const float col = nd.u_diag ? in.u_diag[static_cast<std::size_t>(c)]
                                  : nd.h_diag ? std::sqrt(in.h_diag[static_cast<std::size_t>(c)])
                                              : 1.f;
                s = score(m, nd.W ? in.W(r, c) : 0.f, nd.Q ? in.Q(r, c) : 0.f, x, col);
            }
            if (!(s >= 0.f && s <= FLT_MAX)) detail::score_fail(m, in, r, c, s, "reference::compute_scores");
            out(r, c) = s;
        }
}

}  // namespace tcq::reference
