#pragma once
/// @file reference/quant.hpp
/// @brief Scalar twins of quant/fit.hpp and quant/fake_quant.hpp. Plain loops,
/// the canonical 16-lane summation order, no early exit: the definition the
/// SIMD kernels are tested against.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>

#include "tcq/core/matrix_view.hpp"
#include "tcq/quant/element.hpp"
#include "tcq/quant/grid.hpp"

namespace tcq::reference {

/// Scalar twin of tcq::pow_norm (quant/element.hpp): the same polynomials op
/// for op, with early returns instead of lane selects.
inline float pow_norm(float d, float p) {
    d = fabsf(d);
    if (p == 2.f) return d * d;
    std::uint32_t bits = detail::f32_bits(d);
    if (bits < 0x00800000u) return 0.f;  // zero or subnormal
    if (bits >= 0x7f800000u) return d;   // inf stays inf
    float e = static_cast<float>(static_cast<std::int32_t>(bits >> 23) - 127);
    float m = detail::f32_from_bits((bits & 0x007fffffu) | 0x3f800000u);  // [1, 2)
    if (m > 1.41421356f) {
        m = m * 0.5f;
        e = e + 1.f;
    }
    const float t = (m - 1.f) / (m + 1.f);
    const float t2 = t * t;
    float s = 0.11111111f;                   // 1/9
    s = s * t2 + 0.14285715f;                // 1/7
    s = s * t2 + 0.2f;                       // 1/5
    s = s * t2 + 0.33333334f;                // 1/3
    s = s * t2 + 1.f;
    const float lg = e + (t * s) * 2.8853900817779268f;  // 2/ln 2
    const float y = p * lg;
    if (y > 127.f) return INFINITY;
    if (y < -126.f) return 0.f;
    const float n = round_even(y);
    const float f = (y - n) * 0.69314718f;   // ln 2, f in [-0.347, 0.347]
    float r = 1.9841270e-4f;                 // 1/5040
    r = r * f + 1.3888889e-3f;               // 1/720
    r = r * f + 8.3333338e-3f;               // 1/120
    r = r * f + 4.1666668e-2f;               // 1/24
    r = r * f + 0.16666667f;                 // 1/6
    r = r * f + 0.5f;
    r = r * f + 1.f;
    r = r * f + 1.f;
    const std::int32_t ni = static_cast<std::int32_t>(n);
    return r * detail::f32_from_bits(static_cast<std::uint32_t>(ni + 127) << 23);
}

/// Σ |q(x) − x|^p, element i into lane i % 16, lanes folded (l[i]+l[i+8]), +4, +2, +1.
inline float mse_error(std::span<const float> x, grid_param g, float maxq, float p) {
    float lanes[16] = {};
    for (std::size_t i = 0; i < x.size(); ++i)
        lanes[i % 16] = lanes[i % 16] + pow_norm(fake_quant(x[i], g.scale, g.zero, maxq) - x[i], p);
    for (std::size_t h = 8; h >= 1; h /= 2)
        for (std::size_t i = 0; i < h; ++i) lanes[i] = lanes[i] + lanes[i + h];
    return lanes[0];
}

/// GPTQ's Quantizer.find_params for one row/group (docs/algorithms.md §2.2).
inline grid_param fit_segment(std::span<const float> x, const grid_spec& spec) {
    const float maxq = spec.maxq();
    float xmin = 0.f, xmax = 0.f;
    for (float v : x) {
        xmin = std::min(xmin, v);
        xmax = std::max(xmax, v);
    }
    adjust_range(xmin, xmax, spec.symmetric);
    grid_param best = base_grid(xmin, xmax, maxq, spec.symmetric);
    require(std::isfinite(best.scale) && best.scale > 0.f, "reference::fit_segment: unusable scale ", best.scale);
    if (!spec.mse.enabled) return finish_scale(best, spec);
    float best_err = std::numeric_limits<float>::infinity();
    const int n = static_cast<int>(static_cast<double>(spec.mse.max_shrink) * spec.mse.grid);
    for (int i = 0; i < n; ++i) {
        const float p = shrink_factor(i, spec.mse.grid);
        grid_param c = grid_from_range(p * xmin, p * xmax, maxq, spec.symmetric);
        if (spec.symmetric) c.zero = best.zero;
        const float err = mse_error(x, c, maxq, spec.mse.norm);
        if (err < best_err) {
            best_err = err;
            best = c;
        }
    }
    return finish_scale(best, spec);
}

/// Per row / row-group fit of a matrix.
inline grid fit_grid(matrix_view<const float> W, const grid_spec& spec) {
    spec.validate("reference::fit_grid");
    require_finite(W, "reference::fit_grid: W");
    grid out(spec, W.rows(), W.cols());
    const index_t gc = spec.group_cols(W.cols());
    for (index_t r = 0; r < W.rows(); ++r)
        for (index_t g = 0; g < out.groups(); ++g) {
            const index_t c0 = g * gc, n = std::min(gc, W.cols() - c0);
            out.at(r, g) = reference::fit_segment({W.row(r) + c0, static_cast<std::size_t>(n)}, spec);
        }
    return out;
}

/// out(r, c) = q(W(r, c)).
inline void fake_quantize(matrix_view<const float> W, const grid& g, matrix_view<float> out) {
    const float maxq = g.spec.maxq();
    for (index_t r = 0; r < W.rows(); ++r)
        for (index_t c = 0; c < W.cols(); ++c) {
            const grid_param p = g.at(r, g.group_of(c));
            out(r, c) = fake_quant(W(r, c), p.scale, p.zero, maxq);
        }
}

/// codes(r, c) = clamp(round(W/scale) + zero, 0, maxq).
inline void quantize(matrix_view<const float> W, const grid& g, matrix_view<std::uint8_t> codes) {
    const float maxq = g.spec.maxq();
    for (index_t r = 0; r < W.rows(); ++r)
        for (index_t c = 0; c < W.cols(); ++c) {
            const grid_param p = g.at(r, g.group_of(c));
            codes(r, c) = static_cast<std::uint8_t>(quant_code(W(r, c), p.scale, p.zero, maxq));
        }
}

}  // namespace tcq::reference
