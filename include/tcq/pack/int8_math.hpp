#pragma once
/// @file int8_math.hpp
/// @brief Element math of the int8-activation products (pack/gemm_int8.hpp),
/// shared by the SIMD kernels, their scalar twin (reference::gemv_int8) and
/// the CUDA kernel. docs/algorithms.md ("int8-activation product") has the
/// derivation and the error bound.
///
///  * Activations: per 64-column block b, sx_b = amax_b / 127 and
///    xq_c = clamp(round_even(x_c / sx_b), −127, 127) (0 when amax_b = 0;
///    sx_b = NaN and xq = 0 when the block holds a NaN or ±Inf, so y is NaN).
///  * Slots: a block's 64 codes are decoded to 64 bytes in a width-specific
///    order that costs the fewest instructions (int8_slot_code); x is stored
///    in the same order, and int32 lane l (0..15) of a block dot is the exact
///    sum of slots 4l … 4l+3 (`vpdpbusd`). Integer sums are exact, so only
///    the float steps below fix the result.
///  * Epilogue per row and vector, lanes l: T = fma(float(D_b[l]), sx_b, T)
///    over the blocks b of group g (T starts at 0); Y_{g%2}[l] = fma(s_g, T,
///    Y_{g%2}[l]); dense = fold(Y_0 + Y_1) − fold(C), C[g%16] = fma(s_g·z_g,
///    XZ_g, C[g%16]), XZ_g = the in-order fma chain Σ_{b∈g} sx_b·Σ_c xq_c.

#include <cmath>
#include <cstdint>

#include "tcq/core/config.hpp"
#include "tcq/quant/element.hpp"

namespace tcq {

/// Largest |xq| of a quantized activation.
inline constexpr int int8_qmax = 127;

/// Code index (0..63, column within the block) decoded into byte slot p
/// (0..63) at `bits` bits: the order each width's decoder produces.
///   b = 2: identity (4 shifted copies of the 16 lane bytes).
///   b = 3: slot 8m + t holds bits [3t, 3t+3) of 24-bit word m: lane 2m + t/4, chunk t%4.
///   b = 4: low nibbles of the 32 bytes, then high nibbles.
///   b = 8: the stored byte order (byte 4j + k = code 16k + j).
TCQ_HOST_DEVICE constexpr int int8_slot_code(int bits, int p) {
    switch (bits) {
        case 2: return p;
        case 3: return 16 * ((p % 8) % 4) + 2 * (p / 8) + (p % 8) / 4;
        case 4: return 16 * (2 * (p % 2) + p / 32) + (p % 32) / 2;
        default: return 16 * (p % 4) + p / 4;
    }
}

/// Activation scale of a block from its largest |x|: amax / 127.
TCQ_HOST_DEVICE TCQ_FORCEINLINE float int8_scale(float amax) { return amax / static_cast<float>(int8_qmax); }

/// int8 code of x at block scale sx > 0: clamp(round_even(x / sx), −127, 127).
TCQ_HOST_DEVICE TCQ_FORCEINLINE std::int8_t int8_quantize(float x, float sx) {
    const float q = fminf(fmaxf(round_even(x / sx), -static_cast<float>(int8_qmax)), static_cast<float>(int8_qmax));
    return static_cast<std::int8_t>(q);
}

/// One block's step of the group sum: fma(float(d), sx, t). float(d) is exact
/// (|d| ≤ 4·255·127 per lane, |Σ| ≤ 64·255·127 < 2^24).
template <class V>
TCQ_HOST_DEVICE TCQ_FORCEINLINE V int8_block_step(V d, V sx, V t) {
    using std::fma;  // float; SIMD lanes find their fma by ADL
    return fma(d, sx, t);
}

/// One group's step of the row sum: fma(s_g, T, Y).
template <class V>
TCQ_HOST_DEVICE TCQ_FORCEINLINE V int8_group_step(V s, V t, V y) {
    using std::fma;
    return fma(s, t, y);
}

/// One group's step of the zero-point correction: fma(w_g, XZ_g, C).
template <class V>
TCQ_HOST_DEVICE TCQ_FORCEINLINE V int8_zero_step(V w, V xz, V c) {
    using std::fma;
    return fma(w, xz, c);
}

/// Zero-point weight of a group: s·z, exact in fp32 (11-bit × 8-bit mantissas).
TCQ_HOST_DEVICE TCQ_FORCEINLINE float int8_zero_weight(float s, float z) { return s * z; }

}  // namespace tcq
