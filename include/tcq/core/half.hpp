#pragma once
/// @file half.hpp
/// @brief fp16 / bf16 storage types and round-to-nearest-even conversions.
///
/// The element functions are TCQ_HOST_DEVICE and bit-exact (IEEE RNE, NaN kept
/// quiet). The span converters use F16C / AVX-512 when compiled for it; their
/// scalar twins live in tcq/reference/half.hpp and tests compare the two.

#include <cstdint>
#include <cstring>
#include <span>

#include "tcq/core/config.hpp"
#include "tcq/core/error.hpp"

#if defined(__F16C__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace tcq {

/// Raw IEEE binary16 bits.
struct half_bits { std::uint16_t bits; /**< sign, 5 exponent, 10 mantissa bits */ };
/// Raw bfloat16 bits.
struct bf16_bits { std::uint16_t bits; /**< the high 16 bits of a float */ };

namespace detail {
TCQ_HOST_DEVICE TCQ_FORCEINLINE std::uint32_t f32_bits(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
TCQ_HOST_DEVICE TCQ_FORCEINLINE float f32_from_bits(std::uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
}  // namespace detail

/// float → fp16, round to nearest even; overflow → Inf, NaN → quiet NaN.
TCQ_HOST_DEVICE inline std::uint16_t float_to_half(float f) {
    const std::uint32_t x = detail::f32_bits(f);
    const std::uint32_t sign = (x >> 16) & 0x8000u;
    const std::uint32_t absx = x & 0x7fffffffu;
    if (absx > 0x7f800000u)  // NaN: keep top payload bits, force quiet
        return static_cast<std::uint16_t>(sign | 0x7e00u | ((absx >> 13) & 0x3ffu));
    if (absx >= 0x477ff000u)  // rounds to >= 65520 → Inf
        return static_cast<std::uint16_t>(sign | 0x7c00u);
    if (absx < 0x38800000u) {  // result is subnormal or zero: fixed-point RNE
        if (absx < 0x33000000u) return static_cast<std::uint16_t>(sign);  // < 2^-25 → 0
        const std::uint32_t e = absx >> 23;                 // 102..112
        const std::uint32_t m = (absx & 0x7fffffu) | 0x800000u;
        const std::uint32_t shift = 126u - e;               // 14..24
        std::uint32_t h = m >> shift;
        const std::uint32_t rem = m & ((1u << shift) - 1u);
        const std::uint32_t halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (h & 1u))) ++h;
        return static_cast<std::uint16_t>(sign | h);
    }
    // normal: rebias exponent, RNE on the 13 dropped bits (carry may bump the exponent)
    std::uint32_t h = ((absx - 0x38000000u) >> 13);
    const std::uint32_t rem = absx & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
    return static_cast<std::uint16_t>(sign | h);
}

/// fp16 → float (exact).
TCQ_HOST_DEVICE inline float half_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t e = (h >> 10) & 0x1fu;
    std::uint32_t m = h & 0x3ffu;
    if (e == 0x1fu) return detail::f32_from_bits(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        if (m == 0) return detail::f32_from_bits(sign);
        // subnormal: value = m * 2^-24, exact in float
        const float v = static_cast<float>(m) * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return detail::f32_from_bits(sign | ((e + 112u) << 23) | (m << 13));
}

/// float → bf16, round to nearest even; NaN → quiet NaN.
TCQ_HOST_DEVICE inline std::uint16_t float_to_bf16(float f) {
    const std::uint32_t x = detail::f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
    const std::uint32_t lsb = (x >> 16) & 1u;
    return static_cast<std::uint16_t>((x + 0x7fffu + lsb) >> 16);
}

/// bf16 → float (exact).
TCQ_HOST_DEVICE inline float bf16_to_float(std::uint16_t b) {
    return detail::f32_from_bits(static_cast<std::uint32_t>(b) << 16);
}

/// Rounds through fp16 and back: the value a 16-bit weight will have.
TCQ_HOST_DEVICE inline float round_to_half(float f) { return half_to_float(float_to_half(f)); }
/// Rounds through bf16 and back.
TCQ_HOST_DEVICE inline float round_to_bf16(float f) { return bf16_to_float(float_to_bf16(f)); }

namespace detail {
inline void require_same_size(std::size_t a, std::size_t b, const char* what) {
    require(a == b, what, ": size mismatch, input ", a, " vs output ", b);
}
}  // namespace detail

/// Converts floats to fp16 bits (RNE). F16C path when available.
inline void to_half(std::span<const float> in, std::span<std::uint16_t> out) {
    detail::require_same_size(in.size(), out.size(), "to_half");
    std::size_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= in.size(); i += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.data() + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(in.data() + i), _MM_FROUND_TO_NEAREST_INT));
#elif defined(__F16C__)
    for (; i + 8 <= in.size(); i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out.data() + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(in.data() + i), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; i < in.size(); ++i) out[i] = float_to_half(in[i]);
}

/// Converts fp16 bits to floats (exact). F16C path when available.
inline void from_half(std::span<const std::uint16_t> in, std::span<float> out) {
    detail::require_same_size(in.size(), out.size(), "from_half");
    std::size_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= in.size(); i += 16)
        _mm512_storeu_ps(out.data() + i, _mm512_cvtph_ps(_mm256_loadu_si256(
                                             reinterpret_cast<const __m256i*>(in.data() + i))));
#elif defined(__F16C__)
    for (; i + 8 <= in.size(); i += 8)
        _mm256_storeu_ps(out.data() + i,
                         _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in.data() + i))));
#endif
    for (; i < in.size(); ++i) out[i] = half_to_float(in[i]);
}

/// Converts floats to bf16 bits (RNE).
inline void to_bf16(std::span<const float> in, std::span<std::uint16_t> out) {
    detail::require_same_size(in.size(), out.size(), "to_bf16");
    for (std::size_t i = 0; i < in.size(); ++i) out[i] = float_to_bf16(in[i]);  // auto-vectorizes
}

/// Converts bf16 bits to floats (exact).
inline void from_bf16(std::span<const std::uint16_t> in, std::span<float> out) {
    detail::require_same_size(in.size(), out.size(), "from_bf16");
    for (std::size_t i = 0; i < in.size(); ++i) out[i] = bf16_to_float(in[i]);
}

}  // namespace tcq
