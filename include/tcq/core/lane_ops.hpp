#pragma once
/// @file lane_ops.hpp
/// @brief The handful of per-lane operations the element math is written in,
/// for one float (host and CUDA device).
///
/// quant/element.hpp writes each formula once as a template over a lane type
/// T and calls `lane_ops<T>::op`. This header gives T = float; core/simd.hpp
/// gives T = an xsimd register. Every operation is exact or correctly
/// rounded, so all instantiations agree bit for bit on finite inputs.

#include <cmath>
#include <cstdint>

#include "tcq/core/config.hpp"
#include "tcq/core/half.hpp"

namespace tcq {

/// Operations of one lane type; specialized for float here and for xsimd
/// batches in core/simd.hpp. An unspecialized use does not compile.
template <class T>
struct lane_ops;

/// One float: the scalar kernels, the tails of SIMD loops and CUDA threads.
template <>
struct lane_ops<float> {
    using value = float;         ///< the lane type
    using bits = std::int32_t;   ///< integer lanes of the same width
    using mask = bool;           ///< result of a comparison

    /// Round half to even in the default rounding mode (torch.round).
    TCQ_HOST_DEVICE static TCQ_FORCEINLINE float round(float x) {
#if defined(__CUDA_ARCH__)
        return rintf(x);
#else
        return std::nearbyint(x);
#endif
    }
    /// Smaller of two (finite) values.
    TCQ_HOST_DEVICE static TCQ_FORCEINLINE float min(float a, float b) { return fminf(a, b); }
    /// Larger of two (finite) values.
    TCQ_HOST_DEVICE static TCQ_FORCEINLINE float max(float a, float b) { return fmaxf(a, b); }
    /// |x|.
    TCQ_HOST_DEVICE static TCQ_FORCEINLINE float abs(float x) { return fabsf(x); }
    /// m ? a : b.
    TCQ_HOST_DEVICE static TCQ_FORCEINLINE float select(bool m, float a, float b) { return m ? a : b; }
    /// IEEE bit pattern of x.
    TCQ_HOST_DEVICE static TCQ_FORCEINLINE std::int32_t to_bits(float x) {
        return static_cast<std::int32_t>(detail::f32_bits(x));
    }
    /// Float of a bit pattern.
    TCQ_HOST_DEVICE static TCQ_FORCEINLINE float from_bits(std::int32_t b) {
        return detail::f32_from_bits(static_cast<std::uint32_t>(b));
    }
    /// Integer → float conversion.
    TCQ_HOST_DEVICE static TCQ_FORCEINLINE float to_float(std::int32_t b) { return static_cast<float>(b); }
    /// Float → integer conversion of an integral value.
    TCQ_HOST_DEVICE static TCQ_FORCEINLINE std::int32_t to_int(float x) { return static_cast<std::int32_t>(x); }
};

}  // namespace tcq
