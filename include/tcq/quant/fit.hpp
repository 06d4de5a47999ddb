#pragma once
/// @file fit.hpp
/// @brief Grid fitting: min-max and GPTQ's MSE scale search (docs/algorithms.md §2.2), SIMD.
///
/// Scalar twin: tcq/reference/quant.hpp. The MSE error of a candidate is summed
/// in the canonical 16-lane order (core/simd.hpp), so both pick the same grid.

#include <algorithm>
#include <limits>
#include <span>

#include "tcq/core/matrix_view.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/core/simd.hpp"
#include "tcq/quant/element.hpp"
#include "tcq/quant/grid.hpp"

namespace tcq {

namespace detail {

/// Min and max of x, each widened to include 0.
inline void range_with_zero(std::span<const float> x, float& xmin, float& xmax) {
    using fb = simd::fbatch;
    fb lo(0.f), hi(0.f);
    std::size_t i = 0;
    for (; i + fb::size <= x.size(); i += fb::size) {
        const fb v = fb::load_unaligned(x.data() + i);
        lo = xsimd::min(lo, v);
        hi = xsimd::max(hi, v);
    }
    alignas(64) float l[fb::size], h[fb::size];
    lo.store_aligned(l);
    hi.store_aligned(h);
    xmin = *std::min_element(l, l + fb::size);
    xmax = *std::max_element(h, h + fb::size);
    for (; i < x.size(); ++i) {
        xmin = std::min(xmin, x[i]);
        xmax = std::max(xmax, x[i]);
    }
}

/// |q(v) − v|^p, the MSE criterion's term. A function, not a lambda: GCC
/// left the lambda out of line in the hot loop (about 18% slower).
template <class T>
TCQ_FORCEINLINE T mse_term(T v, T s, T z, T mq, float p) {
    return pow_norm(fake_quant(v, s, z, mq) - v, p);
}

/// Σ |q(x) − x|^p in canonical lane order; stops early (returning +inf) once
/// the partial sum reaches `bound`: partial sums of non-negative terms only
/// grow under rounding, so such a candidate could never win `err < best`.
inline float mse_error(std::span<const float> x, grid_param g, float maxq, float p, float bound) {
    using fb = simd::fbatch;
    constexpr std::size_t W = fb::size;
    constexpr std::size_t K = simd::sum_lanes / W;  // registers per 16 lanes
    fb acc[K];
    for (auto& a : acc) a = fb(0.f);
    const fb s(g.scale), z(g.zero), mq(maxq);
    const std::size_t n = x.size();
    std::size_t i = 0;
    alignas(64) float lanes[simd::sum_lanes];
    constexpr std::size_t check_every = 1024;
    while (i + simd::sum_lanes <= n) {
        const std::size_t stop = std::min(n - n % simd::sum_lanes, i + check_every);
        for (; i < stop; i += simd::sum_lanes)
            for (std::size_t k = 0; k < K; ++k) acc[k] = acc[k] + mse_term(fb::load_unaligned(x.data() + i + k * W), s, z, mq, p);
        if (i < n) {
            for (std::size_t k = 0; k < K; ++k) acc[k].store_aligned(lanes + k * W);
            if (simd::fold_lanes(lanes) >= bound) return std::numeric_limits<float>::infinity();
        }
    }
    if (i < n) {  // tail: pad with 0, whose error is exactly 0 on any grid containing 0
        alignas(64) float tail[simd::sum_lanes] = {};
        std::copy(x.data() + i, x.data() + n, tail);
        for (std::size_t k = 0; k < K; ++k) acc[k] = acc[k] + mse_term(fb::load_aligned(tail + k * W), s, z, mq, p);
    }
    for (std::size_t k = 0; k < K; ++k) acc[k].store_aligned(lanes + k * W);
    return simd::fold_lanes(lanes);
}

inline void require_usable_scale(const grid_param& g, std::span<const float> x) {
    require(std::isfinite(g.scale) && g.scale > 0.f, "fit_segment: range [", x.empty() ? 0.f : *std::min_element(x.begin(), x.end()),
            ", ", x.empty() ? 0.f : *std::max_element(x.begin(), x.end()),
            "] gives scale ", g.scale, ", which cannot be quantized");
}

}  // namespace detail

/// Number of MSE candidates: floor(max_shrink · grid).
inline int mse_candidates(const mse_options& o) {
    return static_cast<int>(static_cast<double>(o.max_shrink) * o.grid);
}

/// Fits one (scale, zero) to the values x: min-max, then the MSE search if
/// enabled. x must be finite (checked by the matrix-level entry points).
inline grid_param fit_segment(std::span<const float> x, const grid_spec& spec) {
    const float maxq = spec.maxq();
    float xmin, xmax;
    detail::range_with_zero(x, xmin, xmax);
    adjust_range(xmin, xmax, spec.symmetric);
    grid_param best = base_grid(xmin, xmax, maxq, spec.symmetric);
    detail::require_usable_scale(best, x);
    if (!spec.mse.enabled) return finish_scale(best, spec);
    float best_err = std::numeric_limits<float>::infinity();
    const int n = mse_candidates(spec.mse);
    for (int i = 0; i < n; ++i) {
        const float p = shrink_factor(i, spec.mse.grid);
        grid_param c = grid_from_range(p * xmin, p * xmax, maxq, spec.symmetric);
        if (spec.symmetric) c.zero = best.zero;  // the reference keeps the base zero
        const float err = detail::mse_error(x, c, maxq, spec.mse.norm, best_err);
        if (err < best_err) {
            best_err = err;
            best = c;
        }
    }
    return finish_scale(best, spec);
}

namespace detail {
/// Calls f(row, group, col0, ncols) for every (row, group) segment, rows in parallel.
template <class F>
void for_each_segment(index_t rows, index_t cols, const grid_spec& spec, const exec_policy& pol, F&& f) {
    const index_t gc = spec.group_cols(cols), ng = spec.groups(cols);
    parallel_for(pol, rows, 16, [&](index_t r0, index_t r1) {
        for (index_t r = r0; r < r1; ++r)
            for (index_t g = 0; g < ng; ++g) f(r, g, g * gc, std::min(gc, cols - g * gc));
    });
}
}  // namespace detail

/// Fits a grid per row (or per row-group) of W. Throws on NaN/Inf or a bad spec.
inline grid fit_grid(matrix_view<const float> W, const grid_spec& spec, const exec_policy& pol = seq()) {
    spec.validate("fit_grid");
    require_finite(W, "fit_grid: W");
    grid out(spec, W.rows(), W.cols());
    detail::for_each_segment(W.rows(), W.cols(), spec, pol, [&](index_t r, index_t g, index_t c0, index_t n) {
        try {
            out.at(r, g) = fit_segment({W.row(r) + c0, static_cast<std::size_t>(n)}, spec);
        } catch (const error& e) {
            fail("fit_grid: W, row ", r, ", group ", g, ": ", e.what());
        }
    });
    return out;
}

}  // namespace tcq
