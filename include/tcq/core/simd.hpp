#pragma once
/// @file simd.hpp
/// @brief The xsimd architecture tcq kernels compile for.
///
/// `xsimd::default_arch` is the best instruction set the compiler targets
/// (-march=native gives AVX-512 on Zen 5); without flags it is SSE2 on x86-64,
/// the portable fallback. Every SIMD kernel has a scalar twin in tcq/reference.

#include <xsimd/xsimd.hpp>

namespace tcq::simd {
using arch = xsimd::default_arch;                 ///< Instruction set of every SIMD kernel.
using fbatch = xsimd::batch<float, arch>;          ///< Register of floats.
using ibatch = xsimd::batch<std::int32_t, arch>;   ///< Register of int32.
using ubatch = xsimd::batch<std::uint32_t, arch>;  ///< Register of uint32.
/// Floats per register.
inline constexpr std::size_t width = fbatch::size;
/// Canonical accumulator lanes of deterministic sums: element i goes to lane
/// i % 16 whatever the register width, then lanes fold in a fixed tree.
inline constexpr std::size_t sum_lanes = 16;
static_assert(sum_lanes % width == 0, "register width must divide the canonical lane count");

/// Fixed tree fold of 16 lanes: (l[i] + l[i+8]), then +4, +2, +1.
inline float fold_lanes(float* l) {
    for (std::size_t h = sum_lanes / 2; h >= 1; h /= 2)
        for (std::size_t i = 0; i < h; ++i) l[i] = l[i] + l[i + h];
    return l[0];
}
}  // namespace tcq::simd
