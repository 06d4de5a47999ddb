#pragma once
/// @file element.hpp
/// @brief Element math of the grid, written once for every lane type.
///
/// Each formula is a template over a lane type T: `float` (scalar code, loop
/// tails, CUDA threads; core/lane_ops.hpp) or an xsimd register
/// (core/simd.hpp). Every SIMD kernel, the CPU scalar paths and the CUDA
/// kernels call these; the independent scalar twins live in reference/.
///
/// Rounding is IEEE round-half-to-even (`torch.round`); x/scale is a true
/// division, as in the reference. Every operation is correctly rounded, so all
/// instantiations agree bit for bit as long as the compiler does not fuse
/// a·b+c (tcq builds with -ffp-contract=off and nvcc --fmad=false; see
/// docs/algorithms.md).

#include <cmath>
#include <cstdint>

#include "tcq/core/config.hpp"
#include "tcq/core/half.hpp"
#include "tcq/core/lane_ops.hpp"
#include "tcq/quant/grid.hpp"

namespace tcq {

/// round-half-to-even of a float.
TCQ_HOST_DEVICE TCQ_FORCEINLINE float round_even(float x) { return lane_ops<float>::round(x); }

/// Integer code (as float) of x: clamp(round(x/scale) + zero, 0, maxq).
template <class T>
TCQ_HOST_DEVICE TCQ_FORCEINLINE T quant_code(T x, T scale, T zero, T maxq) {
    using L = lane_ops<T>;
    return L::min(L::max(L::round(x / scale) + zero, T(0.f)), maxq);
}

/// Value of a code: scale·(q − zero).
template <class T>
TCQ_HOST_DEVICE TCQ_FORCEINLINE T dequant_code(T q, T scale, T zero) {
    return scale * (q - zero);
}

/// Fake-quantization of one element.
template <class T>
TCQ_HOST_DEVICE TCQ_FORCEINLINE T fake_quant(T x, T scale, T zero, T maxq) {
    return dequant_code(quant_code(x, scale, zero, maxq), scale, zero);
}

/// Widens nothing, but applies the reference's range fix-ups in order:
/// symmetric mirroring, then (0, 0) → (−1, +1). Input already includes 0.
template <class T>
TCQ_HOST_DEVICE TCQ_FORCEINLINE void adjust_range(T& xmin, T& xmax, bool sym) {
    using L = lane_ops<T>;
    if (sym) {
        xmax = L::max(L::abs(xmin), xmax);
        xmin = L::select(xmin < T(0.f), -xmax, xmin);
    }
    const auto both0 = (xmin == T(0.f)) && (xmax == T(0.f));
    xmin = L::select(both0, T(-1.f), xmin);
    xmax = L::select(both0, T(1.f), xmax);
}

/// Grid of an adjusted range: scale = (xmax − xmin)/maxq, zero = round(−xmin/scale)
/// (symmetric: (maxq+1)/2). docs/algorithms.md §2.2.
template <class T>
TCQ_HOST_DEVICE TCQ_FORCEINLINE basic_grid_param<T> grid_from_range(T xmin, T xmax, T maxq, bool sym) {
    basic_grid_param<T> g;
    g.scale = (xmax - xmin) / maxq;
    g.zero = sym ? (maxq + T(1.f)) / T(2.f) : lane_ops<T>::round(-xmin / g.scale);
    return g;
}

/// The min-max grid of an adjusted range. A range so small that its scale
/// underflows to 0 (all |x| below ~maxq·1.4e-45) gets the grid of an
/// all-zero row, [−1, +1]: every value then quantizes to 0, within 1e-44.
template <class T>
TCQ_HOST_DEVICE TCQ_FORCEINLINE basic_grid_param<T> base_grid(T& xmin, T& xmax, T maxq, bool sym) {
    using L = lane_ops<T>;
    const auto under = grid_from_range(xmin, xmax, maxq, sym).scale == T(0.f);
    xmin = L::select(under, T(-1.f), xmin);
    xmax = L::select(under, T(1.f), xmax);
    return grid_from_range(xmin, xmax, maxq, sym);
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

/// MSE-candidate grid i: the range shrunk by p = 1 − i/grid (p rounded to
/// float, as torch does for a Python scalar times a float tensor).
TCQ_HOST_DEVICE inline float shrink_factor(int i, int grid) {
    return static_cast<float>(1.0 - static_cast<double>(i) / static_cast<double>(grid));
}

/// |d|^p for the MSE criterion: 2^(p·log2|d|) with fixed polynomials, so
/// every lane type gives the same bits (libm's powf would not). Relative
/// accuracy ~1e-6; 0 and subnormal d give 0, inf stays inf. Scalar twin:
/// reference::pow_norm.
template <class T>
TCQ_HOST_DEVICE TCQ_FORCEINLINE T pow_norm(T d, float p) {
    using L = lane_ops<T>;
    using I = typename L::bits;
    d = L::abs(d);
    if (p == 2.f) return d * d;
    const I b = L::to_bits(d);
    const auto tiny = d < T(0x1p-126f);  // zero or subnormal
    const auto inf = d >= T(INFINITY);
    T e = L::to_float((b >> 23) - I(127));
    T m = L::from_bits((b & I(0x007fffff)) | I(0x3f800000));  // [1, 2)
    const auto big = m > T(1.41421356f);
    m = L::select(big, m * T(0.5f), m);
    e = L::select(big, e + T(1.f), e);
    const T t = (m - T(1.f)) / (m + T(1.f));
    const T t2 = t * t;
    T s(0.11111111f);         // 1/9
    s = s * t2 + T(0.14285715f);  // 1/7
    s = s * t2 + T(0.2f);         // 1/5
    s = s * t2 + T(0.33333334f);  // 1/3
    s = s * t2 + T(1.f);
    const T lg = e + (t * s) * T(2.8853900817779268f);  // 2/ln 2
    T y = T(p) * lg;
    const auto over = y > T(127.f);
    const auto under = y < T(-126.f);
    y = L::min(L::max(y, T(-126.f)), T(127.f));  // keeps the exponent math in range
    const T n = L::round(y);
    const T f = (y - n) * T(0.69314718f);  // ln 2, f in [-0.347, 0.347]
    T r(1.9841270e-4f);                    // 1/5040
    r = r * f + T(1.3888889e-3f);          // 1/720
    r = r * f + T(8.3333338e-3f);          // 1/120
    r = r * f + T(4.1666668e-2f);          // 1/24
    r = r * f + T(0.16666667f);            // 1/6
    r = r * f + T(0.5f);
    r = r * f + T(1.f);
    r = r * f + T(1.f);
    T res = r * L::from_bits((L::to_int(n) + I(127)) << 23);
    res = L::select(over, T(INFINITY), res);
    res = L::select(under || tiny, T(0.f), res);
    return L::select(inf, d, res);
}

}  // namespace tcq
