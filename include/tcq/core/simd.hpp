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

/// Instruction-set tags of kernels written per ISA, in the xsimd style: a
/// kernel overloads on the tags it implements, and a tag converts to its
/// base, so a call with a tag whose overload is not compiled in falls back to
/// the next one down (ultimately `portable`).
namespace isa {
struct portable {};                ///< plain C++ (and tcq::simd batches)
struct avx2 : portable {};         ///< AVX2 + FMA + BMI2
struct avx512vnni : avx2 {};       ///< AVX-512 F/BW/DQ/VL/VBMI + VNNI (Zen 4/5, Ice Lake and later)

#if defined(__AVX2__) && defined(__FMA__) && defined(__BMI2__)
/// 1 when the avx2 overloads are compiled in.
#define TCQ_ISA_AVX2 1
#else
/// 0: no avx2 overloads in this build.
#define TCQ_ISA_AVX2 0
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__) && \
    defined(__AVX512VBMI__) && defined(__AVX512VNNI__) && TCQ_ISA_AVX2
/// 1 when the avx512vnni overloads are compiled in.
#define TCQ_ISA_AVX512VNNI 1
#else
/// 0: no avx512vnni overloads in this build.
#define TCQ_ISA_AVX512VNNI 0
#endif

#if TCQ_ISA_AVX512VNNI
using best = avx512vnni;  ///< The best tag this build compiles.
#elif TCQ_ISA_AVX2
using best = avx2;  ///< The best tag this build compiles.
#else
using best = portable;  ///< The best tag this build compiles.
#endif
}  // namespace isa
}  // namespace tcq::simd
