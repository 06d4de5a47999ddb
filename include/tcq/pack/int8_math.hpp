#pragma once
/// @file int8_math.hpp
/// @brief Element math of the int8-activation products (pack/gemv_batch_int8.hpp),
/// shared by the SIMD kernels, their scalar twin (reference::gemv_int8) and
/// the CUDA kernel. docs/algorithms.md §7 ("int8-activation product") has the
/// derivation and the error bound.
///
///  * Activations: per x-block j of 64·kx columns (kx = int8_xblock_codes:
///    2 code blocks when every group holds whole pairs of them, else 1),
///    sx_j = amax_j / 127 and xq_c = clamp(round_even(x_c / sx_j), −127, 127)
///    (0 when amax_j = 0; sx_j = NaN and xq = 0 when the x-block holds a NaN
///    or ±Inf, so y is NaN).
///  * Slots: a block's 64 codes are decoded to 64 bytes in a width-specific
///    order that costs the fewest instructions (int8_slot_code); x is stored
///    in the same order, and int32 lane l (0..15) of a block dot is the exact
///    sum of slots 4l … 4l+3 (`vpdpbusd`), summed over the kx code blocks of
///    x-block j into D_j[l]. Integer sums are exact, so only the float steps
///    below fix the result.
///  * Epilogue per row and vector, lanes l: w_j = fl(s_{g(j)}·sx_j);
///    Y_{j%2}[l] = fma(float(D_j[l]), w_j, Y_{j%2}[l]) for j = 0, 1, …;
///    dense = fold(Y_0 + Y_1) − fold(C), C[g%16] = fma(s_g·z_g, XZ_g,
///    C[g%16]) over g, XZ_g = the in-order chain fma(float(Σ xq over x-block
///    j), sx_j, XZ_g) over the x-blocks j of group g (starting at 0).

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

/// Code blocks per x-block for a group size: 2 when groups hold whole pairs
/// of 64-column blocks (or the row is one group), else 1. Twice the columns
/// per scale halves the float work per code; the error stays ~2⁻⁹ relative.
TCQ_HOST_DEVICE constexpr int int8_xblock_codes(index_t group_size) {
    return group_size % 128 == 0 ? 2 : 1;
}

/// Scale product of an x-block: w_j = s_g·sx_j, rounded once.
TCQ_HOST_DEVICE TCQ_FORCEINLINE float int8_scale_product(float s, float sx) { return s * sx; }

/// One x-block's step of the row sum: fma(float(D), w, Y). float(D) is exact
/// (|D| ≤ 2·64·255·127 < 2^24).
template <class V>
TCQ_HOST_DEVICE TCQ_FORCEINLINE V int8_xblock_step(V d, V w, V y) {
    using std::fma;  // float; SIMD lanes find their fma by ADL
    return fma(d, w, y);
}

/// One x-block's step of a group's activation sum XZ_g: fma(float(Σ xq), sx, XZ).
template <class V>
TCQ_HOST_DEVICE TCQ_FORCEINLINE V int8_block_step(V d, V sx, V t) {
    using std::fma;
    return fma(d, sx, t);
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
