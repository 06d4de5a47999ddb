#pragma once
/// @file decode.hpp
/// @brief SIMD decoding of 64-weight code blocks into 16-lane float chunks,
/// the building block of the packed kernels (dequantize, GEMV, GEMM).
///
/// Chunk k of a block holds codes 16k … 16k+15 (pack/blocks.hpp). A chunk is a
/// `lanes16`: the 16 canonical lanes of tcq::simd (element i → lane i % 16) as
/// 16 / width registers, so every kernel sums in the same order on any width.
/// Codes come out as exact "magic" floats 1 + q·2^-b: with
/// AVX-512 that is one widening per block and a shift + ternary-logic op per
/// chunk (3-bit uses a VBMI byte permute), no int→float conversion, so the
/// GEMV spends one FMA per 16 weights. Elsewhere a portable byte loop feeds
/// xsimd. The ISA paths are overloads on simd::isa tags (or, for one-register
/// helpers, on the xsimd register's arch) beside a portable one. Scalar twin:
/// reference::code_magic of block_code() (pack/blocks.hpp).

#include <cstdint>
#include <cstring>
#include <utility>

#include "tcq/core/simd.hpp"
#include "tcq/pack/blocks.hpp"
#include "tcq/quant/element.hpp"

#if TCQ_ISA_AVX512BW
#include <immintrin.h>
#endif

namespace tcq::detail {

/// The 16 canonical lanes as registers of the build's SIMD width.
struct lanes16 {
    static constexpr std::size_t regs = simd::sum_lanes / simd::width;
    simd::fbatch r[regs];
};

TCQ_FORCEINLINE lanes16 l16_set(float v) {
    lanes16 o;
    for (auto& x : o.r) x = simd::fbatch(v);
    return o;
}
TCQ_FORCEINLINE lanes16 l16_load(const float* p) {
    lanes16 o;
    for (std::size_t i = 0; i < lanes16::regs; ++i) o.r[i] = simd::fbatch::load_unaligned(p + i * simd::width);
    return o;
}
TCQ_FORCEINLINE void l16_store(const lanes16& a, float* p) {
    for (std::size_t i = 0; i < lanes16::regs; ++i) a.r[i].store_unaligned(p + i * simd::width);
}
/// a·b + c of one register with one rounding. xsimd 8.1 has no AVX-512 fma
/// kernel (it falls back to a·b + c, two roundings), hence the overload.
template <class A>
TCQ_FORCEINLINE xsimd::batch<float, A> fma_reg(xsimd::batch<float, A> a, xsimd::batch<float, A> b,
                                               xsimd::batch<float, A> c, xsimd::kernel::requires_arch<xsimd::generic>) {
    return xsimd::fma(a, b, c);
}
#if TCQ_ISA_AVX512BW
template <class A>
TCQ_FORCEINLINE xsimd::batch<float, A> fma_reg(xsimd::batch<float, A> a, xsimd::batch<float, A> b,
                                               xsimd::batch<float, A> c, xsimd::kernel::requires_arch<xsimd::avx512f>) {
    return xsimd::batch<float, A>(_mm512_fmadd_ps(a, b, c));
}
#endif
/// a·b + c with one rounding (std::fma in the scalar twins).
TCQ_FORCEINLINE lanes16 l16_fma(const lanes16& a, const lanes16& b, const lanes16& c) {
    lanes16 o;
    for (std::size_t i = 0; i < lanes16::regs; ++i) o.r[i] = fma_reg(a.r[i], b.r[i], c.r[i], simd::arch{});
    return o;
}
TCQ_FORCEINLINE lanes16 l16_add(const lanes16& a, const lanes16& b) {
    lanes16 o;
    for (std::size_t i = 0; i < lanes16::regs; ++i) o.r[i] = a.r[i] + b.r[i];
    return o;
}
/// Dequantized values s·(q − z) of codes q (quant/element.hpp's dequant_code).
TCQ_FORCEINLINE lanes16 l16_dequant(const lanes16& q, const lanes16& s, const lanes16& z) {
    lanes16 o;
    for (std::size_t i = 0; i < lanes16::regs; ++i) o.r[i] = dequant_code(q.r[i], s.r[i], z.r[i]);
    return o;
}
/// Gathers base[idx[l]] for the 16 lanes.
TCQ_FORCEINLINE lanes16 l16_gather(const float* base, const std::int32_t* idx) {
    lanes16 o;
    for (std::size_t i = 0; i < lanes16::regs; ++i)
        o.r[i] = simd::fbatch::gather(base, simd::ibatch::load_unaligned(idx + i * simd::width));
    return o;
}
/// Canonical fold of the 16 lanes (simd::fold_lanes): (l[i] + l[i+8]), +4, +2, +1.
TCQ_FORCEINLINE float l16_fold(const lanes16& a, xsimd::kernel::requires_arch<xsimd::generic>) {
    alignas(64) float l[simd::sum_lanes];
    for (std::size_t i = 0; i < lanes16::regs; ++i) a.r[i].store_aligned(l + i * simd::width);
    return simd::fold_lanes(l);
}
#if TCQ_ISA_AVX512BW
/// The same fold in registers: one 16-lane register, halves added in order.
TCQ_FORCEINLINE float l16_fold(const lanes16& a, xsimd::kernel::requires_arch<xsimd::avx512dq>) {
    static_assert(simd::width == 16);
    const __m512 v = a.r[0];
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    const __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    const __m128 d = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(d, _mm_shuffle_ps(d, d, 1)));
}
#endif
/// Canonical fold of the 16 lanes, for the build's register type.
TCQ_FORCEINLINE float l16_fold(const lanes16& a) { return l16_fold(a, simd::arch{}); }

/// Decodes the 64 codes of the `Bits`-bit block at `p` as magic floats
/// (1 + q·2^-Bits, exact; bits 0x3F800000 | q << (23 − Bits)), chunk k into
/// q[k]. Exact on every path. `wide_ok` promises
/// that the 8 bytes after a 3-bit block are readable (true for all but the
/// last block of a code array): a plain 32-byte load then replaces a masked
/// load, which is far slower when the line comes from DRAM. Overloaded per
/// simd::isa tag; this is the portable one: a byte loop feeding xsimd.
template <int Bits>
TCQ_FORCEINLINE void decode_block(simd::isa::portable, const std::uint8_t* p, lanes16 (&q)[4], bool /*wide_ok*/) {
    static_assert(packed_bits_supported(Bits), "packed widths are 2, 3, 4, 8");
    alignas(64) std::int32_t t[64];
    for (int i = 0; i < 64; ++i) t[i] = static_cast<std::int32_t>(block_code(p, Bits, i));
    const simd::fbatch scale(1.f / static_cast<float>(1u << Bits)), one(1.f);
    for (int k = 0; k < 4; ++k)
        for (std::size_t i = 0; i < lanes16::regs; ++i)
            q[k].r[i] = one + xsimd::to_float(simd::ibatch::load_aligned(t + 16 * k + i * simd::width)) * scale;
}

#if TCQ_ISA_AVX512BW
namespace avx512 {
/// Float bits (v << L) & M | 1.0f, or with a right shift for negative L.
template <int L, int Bits>
TCQ_FORCEINLINE __m512 magic(__m512i v) {
    const __m512i m = _mm512_set1_epi32(static_cast<int>(((1u << Bits) - 1u) << (23 - Bits)));
    const __m512i one = _mm512_set1_epi32(0x3F800000);
    __m512i t;
    if constexpr (L >= 0)
        t = _mm512_slli_epi32(v, L);
    else
        t = _mm512_srli_epi32(v, -L);
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(t, m, one, 0xEA));  // (t & m) | one
}

/// A 2-, 4- or 8-bit block widened to 16 lanes of 32 bits: lane j holds the
/// fields of lane j of chunks 0..3 at bits 0, Bits, 2·Bits, 3·Bits.
template <int Bits>
TCQ_FORCEINLINE __m512i widen(const std::uint8_t* p) {
    if constexpr (Bits == 2)
        return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    else if constexpr (Bits == 4)
        return _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    else
        return _mm512_loadu_si512(p);
}

/// Chunk k of a widened block as magic floats: field k·Bits moved to the top of the code slot.
template <int Bits, int... K>
TCQ_FORCEINLINE void magic_chunks(__m512i v, lanes16 (&q)[4], std::integer_sequence<int, K...>) {
    ((q[K].r[0] = simd::fbatch(magic<23 - Bits - K * Bits, Bits>(v))), ...);
}
}  // namespace avx512

/// AVX-512BW: one widening load per block, a shift + ternary-logic op per
/// chunk. 3-bit blocks need VBMI (the avx512vnni overload); here they take
/// the portable path.
template <int Bits>
TCQ_FORCEINLINE void decode_block(simd::isa::avx512bw, const std::uint8_t* p, lanes16 (&q)[4], bool wide_ok) {
    static_assert(simd::width == 16 && packed_bits_supported(Bits));
    if constexpr (Bits == 3)
        decode_block<Bits>(simd::isa::portable{}, p, q, wide_ok);
    else
        avx512::magic_chunks<Bits>(avx512::widen<Bits>(p), q, std::make_integer_sequence<int, 4>{});
}
#endif

#if TCQ_ISA_AVX512VNNI
/// AVX-512 with VBMI: 3-bit blocks by one byte permute; the other widths as avx512bw.
template <int Bits>
TCQ_FORCEINLINE void decode_block(simd::isa::avx512vnni, const std::uint8_t* p, lanes16 (&q)[4], bool wide_ok) {
    if constexpr (Bits != 3) {
        decode_block<Bits>(simd::isa::avx512bw{}, p, q, wide_ok);
    } else {  // lanes 2p, 2p+1 start at bits 0 and 4 of bytes (3p, 3p+1) and (3p+1, 3p+2)
        const __m512i raw = wide_ok ? _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))
                                    : _mm512_maskz_loadu_epi8(0xFFFFFFull, p);  // 24 bytes, no over-read
        const __m512i idx = _mm512_set_epi8(
            0, 0, 23, 22, 0, 0, 22, 21, 0, 0, 20, 19, 0, 0, 19, 18, 0, 0, 17, 16, 0, 0, 16, 15, 0, 0, 14, 13,
            0, 0, 13, 12, 0, 0, 11, 10, 0, 0, 10, 9, 0, 0, 8, 7, 0, 0, 7, 6, 0, 0, 5, 4, 0, 0, 4, 3, 0, 0, 2, 1,
            0, 0, 1, 0);
        const __m512i v = _mm512_permutexvar_epi8(idx, raw);
        const __m512i m = _mm512_set1_epi32(0x7 << 20);
        const __m512i one = _mm512_set1_epi32(0x3F800000);
        for (int k = 0; k < 4; ++k) {
            const __m512i sh = _mm512_set_epi32(16 - 3 * k, 20 - 3 * k, 16 - 3 * k, 20 - 3 * k, 16 - 3 * k,
                                                20 - 3 * k, 16 - 3 * k, 20 - 3 * k, 16 - 3 * k, 20 - 3 * k,
                                                16 - 3 * k, 20 - 3 * k, 16 - 3 * k, 20 - 3 * k, 16 - 3 * k,
                                                20 - 3 * k);
            q[k].r[0] = simd::fbatch(
                _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_sllv_epi32(v, sh), m, one, 0xEA)));
        }
    }
}
#endif

/// decode_block with the best overload of this build.
template <int Bits>
TCQ_FORCEINLINE void decode_block(const std::uint8_t* p, lanes16 (&q)[4], bool wide_ok = false) {
    decode_block<Bits>(simd::isa::best{}, p, q, wide_ok);
}

/// How far ahead of the block being decoded the kernels prefetch codes. The
/// hardware prefetchers alone left the 2-thread GEMV 10–25% slower (Zen 5,
/// b = 3): decode is fast enough that DRAM latency shows. 8 KB beat 2 and
/// 4 KB on every benchmarked shape, by most on 8192² (3 KB rows).
inline constexpr index_t code_prefetch_bytes = 8192;

/// Prefetches the code bytes `Ahead` bytes past `p` (a hint: never faults).
template <index_t Ahead = code_prefetch_bytes>
TCQ_FORCEINLINE void prefetch_codes(const std::uint8_t* p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p + Ahead);
#else
    (void)p;
#endif
}

/// Codes as floats from magic floats: (m − 1)·2^Bits, exact.
template <int Bits>
TCQ_FORCEINLINE lanes16 magic_to_code(const lanes16& m) {
    return l16_fma(m, l16_set(static_cast<float>(1u << Bits)), l16_set(-static_cast<float>(1u << Bits)));
}

/// Calls f.template operator()<Bits>() for the runtime bit width (2, 3, 4, 8).
template <class F>
TCQ_FORCEINLINE decltype(auto) dispatch_bits(int bits, F&& f) {
    switch (bits) {
        case 2: return f.template operator()<2>();
        case 3: return f.template operator()<3>();
        case 4: return f.template operator()<4>();
        default: return f.template operator()<8>();
    }
}

}  // namespace tcq::detail
