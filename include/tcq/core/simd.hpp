#pragma once
/// @file simd.hpp
/// @brief The xsimd architecture tcq kernels compile for.
///
/// `xsimd::default_arch` is the best instruction set the compiler targets
/// (-march=native gives AVX-512 on Zen 5); without flags it is SSE2 on x86-64,
/// the portable fallback. Every SIMD kernel has a scalar twin in tcq/reference.

#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "tcq/core/lane_ops.hpp"

namespace tcq {
/// A register of floats as a lane type of the element math (core/lane_ops.hpp).
template <class A>
struct lane_ops<xsimd::batch<float, A>> {
    using value = xsimd::batch<float, A>;        ///< the lane type
    using bits = xsimd::batch<std::int32_t, A>;  ///< integer lanes of the same width
    using mask = xsimd::batch_bool<float, A>;    ///< result of a comparison

    /// Round half to even (vroundps / vrndscaleps in the default mode).
    static TCQ_FORCEINLINE value round(value x) { return xsimd::nearbyint(x); }
    /// Lane-wise smaller value.
    static TCQ_FORCEINLINE value min(value a, value b) { return xsimd::min(a, b); }
    /// Lane-wise larger value.
    static TCQ_FORCEINLINE value max(value a, value b) { return xsimd::max(a, b); }
    /// Lane-wise |x|.
    static TCQ_FORCEINLINE value abs(value x) { return xsimd::abs(x); }
    /// Lane-wise m ? a : b.
    static TCQ_FORCEINLINE value select(mask m, value a, value b) { return xsimd::select(m, a, b); }
    /// IEEE bit patterns.
    static TCQ_FORCEINLINE bits to_bits(value x) { return xsimd::bitwise_cast<bits>(x); }
    /// Floats of bit patterns.
    static TCQ_FORCEINLINE value from_bits(bits b) { return xsimd::bitwise_cast<value>(b); }
    /// Integer → float conversion.
    static TCQ_FORCEINLINE value to_float(bits b) { return xsimd::to_float(b); }
    /// Float → integer conversion of integral values.
    static TCQ_FORCEINLINE bits to_int(value x) { return xsimd::to_int(x); }
};
}  // namespace tcq

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
struct avx512bw : avx2 {};         ///< AVX-512 F/BW/DQ/VL (Skylake-X and later)
struct avx512vnni : avx512bw {};   ///< AVX-512 F/BW/DQ/VL/VBMI + VNNI (Zen 4/5, Ice Lake and later)

#if defined(__AVX2__) && defined(__FMA__) && defined(__BMI2__)
/// 1 when the avx2 overloads are compiled in.
#define TCQ_ISA_AVX2 1
#else
/// 0: no avx2 overloads in this build.
#define TCQ_ISA_AVX2 0
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__) && TCQ_ISA_AVX2
/// 1 when the avx512bw overloads are compiled in.
#define TCQ_ISA_AVX512BW 1
#else
/// 0: no avx512bw overloads in this build.
#define TCQ_ISA_AVX512BW 0
#endif
#if defined(__AVX512VBMI__) && defined(__AVX512VNNI__) && TCQ_ISA_AVX512BW
/// 1 when the avx512vnni overloads are compiled in.
#define TCQ_ISA_AVX512VNNI 1
#else
/// 0: no avx512vnni overloads in this build.
#define TCQ_ISA_AVX512VNNI 0
#endif

/// An instruction-set tag: what the `arch` argument of a kernel accepts.
template <class T>
concept tag = std::is_base_of_v<portable, T>;

#if TCQ_ISA_AVX512VNNI
using best = avx512vnni;  ///< The best tag this build compiles.
#elif TCQ_ISA_AVX512BW
using best = avx512bw;  ///< The best tag this build compiles.
#elif TCQ_ISA_AVX2
using best = avx2;  ///< The best tag this build compiles.
#else
using best = portable;  ///< The best tag this build compiles.
#endif
}  // namespace isa
}  // namespace tcq::simd
