#pragma once
/// @file fake_quant.hpp
/// @brief Quantize to codes, dequantize, and fake-quantize whole matrices (SIMD).
///
/// Scalar twins: tcq/reference/quant.hpp. Element math: quant/element.hpp.

#include <atomic>
#include <cstdint>

#include "tcq/core/matrix_view.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/core/simd.hpp"
#include "tcq/quant/element.hpp"
#include "tcq/quant/fit.hpp"
#include "tcq/quant/grid.hpp"

namespace tcq {

namespace detail {
/// Throws unless every grid parameter is usable: scale finite and > 0, zero
/// finite within [0, maxq].
inline void require_grid_values(const grid& g, std::string_view what) {
    const float maxq = g.spec.maxq();
    for (std::size_t i = 0; i < g.params.size(); ++i) {
        const auto& p = g.params[i];
        if (!(std::isfinite(p.scale) && p.scale > 0.f && std::isfinite(p.zero) && p.zero >= 0.f && p.zero <= maxq)) {
            const index_t gs = g.groups() ? g.groups() : 1;
            fail(what, ": grid parameter of row ", static_cast<index_t>(i) / gs, ", group ", static_cast<index_t>(i) % gs,
                 " is unusable (scale ", p.scale, ", zero ", p.zero, "; need a finite scale > 0 and a zero in [0, ",
                 maxq, "])");
        }
    }
}

inline void require_grid_shape(const grid& g, index_t rows, index_t cols, std::string_view what) {
    g.spec.validate(what);
    require(g.rows == rows && g.cols == cols, what, ": grid is for ", g.rows, "x", g.cols,
            ", matrix is ", rows, "x", cols);
    require(static_cast<index_t>(g.params.size()) == rows * g.groups(), what, ": grid holds ",
            g.params.size(), " parameters, expected ", rows * g.groups());
    require_grid_values(g, what);
}

/// Throws naming the first non-finite input of a segment, at (r, c0 + i).
[[noreturn]] inline void fail_non_finite(const float* in, index_t n, index_t r, index_t c0, std::string_view what) {
    for (index_t i = 0; i < n; ++i) require_finite(static_cast<double>(in[i]), what, r, c0 + i);
    fail(what, ": non-finite value in row ", r);  // unreachable
}

/// Applies `op(batch) -> batch` / `op_scalar(float) -> float` to the segment
/// of row r starting at column c0. Each register is checked for NaN/Inf
/// before anything is written (x − x is NaN exactly for non-finite x), so a
/// bad input throws with its position even when out aliases in.
template <class Op, class OpS>
TCQ_FORCEINLINE void map_segment(const float* in, float* out, index_t n, index_t r, index_t c0, std::string_view what,
                                 Op&& op, OpS&& op_scalar) {
    using fb = simd::fbatch;
    index_t i = 0;
    for (; i + static_cast<index_t>(fb::size) <= n; i += fb::size) {
        const fb v = fb::load_unaligned(in + i);
        const fb d = v - v;
        if (xsimd::any(d != d)) fail_non_finite(in + i, fb::size, r, c0 + i, what);
        op(v).store_unaligned(out + i);
    }
    for (; i < n; ++i) {
        if (!std::isfinite(in[i])) fail_non_finite(in + i, 1, r, c0 + i, what);
        out[i] = op_scalar(in[i]);
    }
}
}  // namespace detail

/// out = q(W) on the fitted grid. `out` may be W itself (in place).
inline void fake_quantize(matrix_view<const float> W, const grid& g, matrix_view<float> out,
                          const exec_policy& pol = seq()) {
    detail::require_grid_shape(g, W.rows(), W.cols(), "fake_quantize");
    require_shape(out, W.rows(), W.cols(), "fake_quantize: out");
    const float maxq = g.spec.maxq();
    detail::for_each_segment(W.rows(), W.cols(), g.spec, pol, [&](index_t r, index_t gi, index_t c0, index_t n) {
        const grid_param p = g.at(r, gi);
        const simd::fbatch s(p.scale), z(p.zero), mq(maxq);
        detail::map_segment(W.row(r) + c0, out.row(r) + c0, n, r, c0, "fake_quantize: W",
            [&](simd::fbatch v) { return fake_quant(v, s, z, mq); },
            [&](float v) { return fake_quant(v, p.scale, p.zero, maxq); });
    });
}

/// In-place fake-quantization.
inline void fake_quantize(matrix_view<float> W, const grid& g, const exec_policy& pol = seq()) {
    fake_quantize(matrix_view<const float>(W), g, W, pol);
}

/// Integer codes (0 … 2^bits − 1) of W on the grid.
inline void quantize(matrix_view<const float> W, const grid& g, matrix_view<std::uint8_t> codes,
                     const exec_policy& pol = seq()) {
    detail::require_grid_shape(g, W.rows(), W.cols(), "quantize");
    require_shape(codes, W.rows(), W.cols(), "quantize: codes");
    require_finite(W, "quantize: W");
    const float maxq = g.spec.maxq();
    using fb = simd::fbatch;
    detail::for_each_segment(W.rows(), W.cols(), g.spec, pol, [&](index_t r, index_t gi, index_t c0, index_t n) {
        const grid_param p = g.at(r, gi);
        const fb s(p.scale), z(p.zero), mq(maxq);
        const float* in = W.row(r) + c0;
        std::uint8_t* out = codes.row(r) + c0;
        alignas(64) std::int32_t tmp[fb::size];
        index_t i = 0;
        for (; i + static_cast<index_t>(fb::size) <= n; i += fb::size) {
            const fb q = quant_code(fb::load_unaligned(in + i), s, z, mq);
            xsimd::to_int(q).store_aligned(tmp);
            for (std::size_t k = 0; k < fb::size; ++k) out[i + k] = static_cast<std::uint8_t>(tmp[k]);
        }
        for (; i < n; ++i) out[i] = static_cast<std::uint8_t>(quant_code(in[i], p.scale, p.zero, maxq));
    });
}

/// Values of codes on the grid: scale·(q − zero). Codes above maxq are an error.
inline void dequantize(matrix_view<const std::uint8_t> codes, const grid& g, matrix_view<float> out,
                       const exec_policy& pol = seq()) {
    detail::require_grid_shape(g, codes.rows(), codes.cols(), "dequantize");
    require_shape(out, codes.rows(), codes.cols(), "dequantize: out");
    const int maxq = (1 << g.spec.bits) - 1;
    for (index_t r = 0; r < codes.rows(); ++r)
        for (index_t c = 0; c < codes.cols(); ++c)
            require(codes(r, c) <= maxq, "dequantize: code ", int(codes(r, c)), " at (", r, ", ", c,
                    ") exceeds maxq ", maxq);
    detail::for_each_segment(codes.rows(), codes.cols(), g.spec, pol, [&](index_t r, index_t gi, index_t c0, index_t n) {
        const grid_param p = g.at(r, gi);
        const std::uint8_t* in = codes.row(r) + c0;
        float* o = out.row(r) + c0;
        for (index_t i = 0; i < n; ++i) o[i] = dequant_code(static_cast<float>(in[i]), p.scale, p.zero);  // vectorizes
    });
}

}  // namespace tcq
