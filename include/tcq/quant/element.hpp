#pragma once
/// @file element.hpp
/// @brief Element math of the grid, shared by scalar, SIMD and CUDA code.
///
/// Rounding is IEEE round-half-to-even (`torch.round`), via nearbyint/rint in
/// the default rounding mode; x/scale is a true division, as in the reference.
/// Every operation here is correctly rounded, so scalar, SIMD and CUDA agree
/// bit for bit as long as the compiler does not fuse a·b+c (tcq builds with
/// -ffp-contract=off and nvcc --fmad=false; see docs/algorithms.md).

#include <cmath>
#include <cstdint>

#include "tcq/core/config.hpp"
#include "tcq/core/half.hpp"
#include "tcq/quant/grid.hpp"

namespace tcq {

/// round-half-to-even of a float.
TCQ_HOST_DEVICE TCQ_FORCEINLINE float round_even(float x) {
#if defined(__CUDA_ARCH__)
    return rintf(x);
#else
    return std::nearbyint(x);
#endif
}

/// Integer code (as float) of x: clamp(round(x/scale) + zero, 0, maxq).
TCQ_HOST_DEVICE TCQ_FORCEINLINE float quant_code(float x, float scale, float zero, float maxq) {
    const float q = round_even(x / scale) + zero;
    return fminf(fmaxf(q, 0.f), maxq);
}

/// Value of a code: scale·(q − zero).
TCQ_HOST_DEVICE TCQ_FORCEINLINE float dequant_code(float q, float scale, float zero) {
    return scale * (q - zero);
}

/// Fake-quantization of one element.
TCQ_HOST_DEVICE TCQ_FORCEINLINE float fake_quant(float x, float scale, float zero, float maxq) {
    return dequant_code(quant_code(x, scale, zero, maxq), scale, zero);
}

/// Widens nothing, but applies the reference's range fix-ups in order:
/// symmetric mirroring, then (0, 0) → (−1, +1). Input already includes 0.
TCQ_HOST_DEVICE inline void adjust_range(float& xmin, float& xmax, bool sym) {
    if (sym) {
        xmax = fmaxf(fabsf(xmin), xmax);
        if (xmin < 0.f) xmin = -xmax;
    }
    if (xmin == 0.f && xmax == 0.f) {
        xmin = -1.f;
        xmax = 1.f;
    }
}

/// Grid of an adjusted range: scale = (xmax − xmin)/maxq, zero = round(−xmin/scale)
/// (symmetric: (maxq+1)/2). docs/algorithms.md §2.2.
TCQ_HOST_DEVICE inline grid_param grid_from_range(float xmin, float xmax, float maxq, bool sym) {
    grid_param g;
    g.scale = (xmax - xmin) / maxq;
    g.zero = sym ? (maxq + 1.f) / 2.f : round_even(-xmin / g.scale);
    return g;
}

/// Applies grid_spec::fp16_scale to a fitted pair; throws if the scale does
/// not survive fp16 (underflow to 0 or overflow).
inline grid_param finish_scale(grid_param g, const grid_spec& spec) {
    if (!spec.fp16_scale) return g;
    const float s = round_to_half(g.scale);
    require(s > 0.f && std::isfinite(s), "grid: scale ", g.scale, " is not representable in fp16");
    g.scale = s;
    return g;
}

/// The min-max grid of an adjusted range. A range so small that its scale
/// underflows to 0 (all |x| below ~maxq·1.4e-45) gets the grid of an
/// all-zero row, [−1, +1]: every value then quantizes to 0, within 1e-44.
inline grid_param base_grid(float& xmin, float& xmax, float maxq, bool sym) {
    grid_param g = grid_from_range(xmin, xmax, maxq, sym);
    if (g.scale == 0.f) {
        xmin = -1.f;
        xmax = 1.f;
        g = grid_from_range(xmin, xmax, maxq, sym);
    }
    return g;
}

/// MSE-candidate grid i: the range shrunk by p = 1 − i/grid (p rounded to
/// float, as torch does for a Python scalar times a float tensor).
TCQ_HOST_DEVICE inline float shrink_factor(int i, int grid) {
    return static_cast<float>(1.0 - static_cast<double>(i) / static_cast<double>(grid));
}

/// |d|^p for the MSE criterion: 2^(p·log2|d|) with fixed polynomials, written
/// op for op like the SIMD twin in quant/fit.hpp so both agree bit for bit.
/// Relative accuracy ~1e-6; 0 and subnormal d give 0.
TCQ_HOST_DEVICE inline float pow_norm(float d, float p) {
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

}  // namespace tcq
