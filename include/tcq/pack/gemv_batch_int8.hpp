#pragma once
/// @file gemv_batch_int8.hpp
/// @brief Fast products Y = X Ŵᵀ on a packed matrix with int8 activations:
/// codes are decoded straight to u8 and dotted with int8 x into exact int32
/// (AVX-512 VNNI `vpdpbusd`; an AVX2 and a portable path give the same
/// integers), then group scales are applied once per block and group and the
/// kept 16-bit weights once per row (against fp32 x). The decode-speed path
/// for inference; pack/gemv_batch.hpp is the fp32-exact one (docs/format.md,
/// "Which product").
///
/// Arithmetic: pack/int8_math.hpp (element math and the fixed epilogue
/// order); scalar twin: reference::gemv_int8. Every ISA tag gives the same
/// bits (integer sums are exact and the float steps are shared), as do 1
/// and 2 threads; row i of a GEMM equals the GEMV of vector i.
///
/// Error against the exact Σ_c Ŵ_rc x_c (docs/algorithms.md §7 derives it):
///   |y_r − Σ_c Ŵ_rc x_c| ≤ Σ_b (0.5 + 2⁻¹⁶)·sx_b·Σ_{c∈b} |Ŵ⁰_rc|
///                          + (nb + G + k_r + 16)·2⁻²⁴·M_r,
///   M_r = Σ_c s_{r,g(c)}·(q_rc + z_{r,g(c)})·sx_{b(c)}·|xq_c| + Σ_kept |v_rc·x_c|,
/// Ŵ⁰ = the dequantized non-kept weights (0 at kept positions), nb blocks,
/// G groups and k_r kept weights in the row. The first term (int8 rounding
/// of x) dominates: relative to Σ|Ŵx| it is about 2⁻⁹ per block.
///
/// Needs regular grouping: no act-order, group size 0 or a multiple of 64
/// (int8_supported); other layouts throw (use tcq::gemv_batch).

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "tcq/core/aligned.hpp"
#include "tcq/core/matrix_view.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/core/simd.hpp"
#include "tcq/pack/decode.hpp"
#include "tcq/pack/gemv_batch.hpp"
#include "tcq/pack/int8_math.hpp"
#include "tcq/pack/packed_matrix.hpp"

#if TCQ_ISA_AVX2
#include <immintrin.h>
#endif

namespace tcq {

/// True when the int8 products support the layout: no act-order and group
/// size 0 or a multiple of 64 (every code block lies in one group).
inline bool int8_supported(const packed_info& i) {
    return !i.act_order && (i.group_size == 0 || i.group_size % block_weights == 0);
}

/// Activations quantized for the int8 products of one packed layout (bit
/// width, shape and group size): quantize once, multiply by every matrix of
/// that layout (e.g. q, k and v of a transformer block).
struct int8_activations {
    index_t n = 0;         ///< vectors
    index_t cols = 0;      ///< columns of each vector
    index_t padded = 0;    ///< cols rounded up to 64
    index_t blocks = 0;    ///< 64-column code blocks
    int kx = 1;            ///< code blocks per x-block (int8_xblock_codes)
    index_t xblocks = 0;   ///< x-blocks, ceil(blocks / kx)
    index_t groups = 0;    ///< groups of the layout
    index_t groups16 = 0;  ///< groups rounded up to 16
    index_t group_blocks = 0;  ///< code blocks per group
    int bits = 0;          ///< code width whose slot order xq uses
    aligned_vector<std::int8_t> xq;  ///< n × padded, each code block in int8_slot_code order
    aligned_vector<float> sx;        ///< n × xblocks scales
    aligned_vector<float> xz;        ///< n × groups16: XZ_g (pack/int8_math.hpp), zero padded
    aligned_vector<float> xf;        ///< n × padded: fp32 x, zero padded (for the kept weights)
};

namespace detail {
/// int8_slot_code as byte tables, indexed by bit width.
struct int8_slot_table {
    alignas(64) std::int8_t idx[64];
};
inline constexpr auto int8_slot_tables = [] {
    std::array<int8_slot_table, 9> t{};
    for (int b = 0; b <= 8; ++b)
        for (int p = 0; p < 64; ++p) t[static_cast<std::size_t>(b)].idx[p] = static_cast<std::int8_t>(int8_slot_code(b, p));
    return t;
}();

/// max |x| over x[0, len) into amax (which arrives 0), and whether all are finite. Portable overload.
inline void int8_range(simd::isa::portable, const float* x, index_t len, float& amax, bool& finite) {
    for (index_t i = 0; i < len; ++i) {
        amax = std::max(amax, std::fabs(x[i]));
        finite = finite && std::isfinite(x[i]);
    }
}

/// The int8 codes of one 64-column block in slot order into q; returns their sum. Portable overload.
inline std::int32_t int8_block_codes(simd::isa::portable, const float* x, float sx, int bits, std::int8_t* q) {
    std::int32_t sum = 0;
    for (int p = 0; p < 64; ++p) {
        q[p] = int8_quantize(x[int8_slot_code(bits, p)], sx);
        sum += q[p];
    }
    return sum;
}

#if TCQ_ISA_AVX512VNNI
/// int8_range, 16 lanes per step (len a multiple of 16).
inline void int8_range(simd::isa::avx512vnni, const float* x, index_t len, float& amax, bool& finite) {
    __m512 m = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (index_t i = 0; i < len; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        m = _mm512_max_ps(m, _mm512_abs_ps(v));
        bad |= _mm512_fpclass_ps_mask(v, 0x99);  // NaN, ±Inf
    }
    amax = _mm512_reduce_max_ps(m);
    finite = bad == 0;
}

/// int8_block_codes with the same correctly rounded ops, and one VBMI permute into slot order.
inline std::int32_t int8_block_codes(simd::isa::avx512vnni, const float* x, float sx, int bits, std::int8_t* q) {
    alignas(64) std::int8_t t[64];
    __m512i s32 = _mm512_setzero_si512();
    const __m512 vs = _mm512_set1_ps(sx), lim = _mm512_set1_ps(static_cast<float>(int8_qmax));
    for (int k = 0; k < 4; ++k) {
        const __m512 r = _mm512_roundscale_ps(_mm512_div_ps(_mm512_loadu_ps(x + 16 * k), vs),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512i c = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(r, _mm512_sub_ps(_mm512_setzero_ps(), lim)), lim));
        s32 = _mm512_add_epi32(s32, c);
        _mm_store_si128(reinterpret_cast<__m128i*>(t + 16 * k), _mm512_cvtepi32_epi8(c));
    }
    _mm512_storeu_si512(q, _mm512_permutexvar_epi8(_mm512_load_si512(int8_slot_tables[bits].idx), _mm512_load_si512(t)));
    return _mm512_reduce_add_epi32(s32);
}
#endif

/// Quantizes one x-block of `len` (a multiple of 64) columns: scale, codes in
/// slot order into q (which arrives zeroed), Σ codes. Every ISA overload of
/// its two steps does the same correctly rounded ops.
template <class Arch>
std::int32_t int8_quantize_xblock(Arch arch, const float* x, index_t len, int bits, float& sx, std::int8_t* q) {
    float amax = 0.f;
    bool finite = true;
    int8_range(arch, x, len, amax, finite);
    sx = finite ? int8_scale(amax) : std::numeric_limits<float>::quiet_NaN();
    if (!finite || amax == 0.f) return 0;
    std::int32_t sum = 0;
    for (index_t b = 0; b < len; b += 64) sum += int8_block_codes(arch, x + b, sx, bits, q + b);
    return sum;
}
}  // namespace detail

/// Quantizes the rows of X (n × info.cols) per x-block (pack/int8_math.hpp).
/// Throws tcq::error on an unsupported layout or a column mismatch. An
/// x-block holding NaN or ±Inf gets sx = NaN (its products are NaN). `arch`
/// picks the instruction set (default: the best compiled in); every choice
/// gives the same bits.
template <simd::isa::tag Arch = simd::isa::best>
int8_activations quantize_activations(const packed_info& info, matrix_view<const float> X, Arch arch = {}) {
    require(int8_supported(info), "int8 product: unsupported layout (act-order or group size ", info.group_size,
            " not a multiple of 64); use tcq::gemv_batch");
    require(packed_bits_supported(info.bits), "int8 product: unsupported bit width ", info.bits);
    require(X.cols() == info.cols, "int8 product: X has ", X.cols(), " columns, the matrix has ", info.cols);
    require(X.rows() >= 1, "int8 product: X has no rows");
    int8_activations a;
    a.n = X.rows();
    a.cols = info.cols;
    a.blocks = info.blocks_per_row();
    a.padded = a.blocks * block_weights;
    a.kx = int8_xblock_codes(info.group_size);
    a.xblocks = (a.blocks + a.kx - 1) / a.kx;
    a.groups = info.groups();
    a.groups16 = (a.groups + 15) / 16 * 16;
    a.group_blocks = info.group_size ? info.group_size / block_weights : a.blocks;
    a.bits = info.bits;
    a.xq.assign(static_cast<std::size_t>(a.n * a.padded), 0);
    a.sx.assign(static_cast<std::size_t>(a.n * a.xblocks), 0.f);
    a.xz.assign(static_cast<std::size_t>(a.n * a.groups16), 0.f);
    a.xf.assign(static_cast<std::size_t>(a.n * a.padded), 0.f);
    const index_t xcols = a.kx * block_weights;
    for (index_t v = 0; v < a.n; ++v) {
        float* xf = a.xf.data() + v * a.padded;
        std::copy(X.row(v), X.row(v) + a.cols, xf);
        for (index_t j = 0; j < a.xblocks; ++j) {
            const index_t c0 = j * xcols, len = std::min(xcols, a.padded - c0);
            float& sx = a.sx[static_cast<std::size_t>(v * a.xblocks + j)];
            const std::int32_t sum = detail::int8_quantize_xblock(arch, xf + c0, len, a.bits, sx, a.xq.data() + v * a.padded + c0);
            float& xz = a.xz[static_cast<std::size_t>(v * a.groups16 + j * a.kx / a.group_blocks)];
            xz = int8_block_step(static_cast<float>(sum), sx, xz);
        }
    }
    return a;
}

namespace detail {

/// The 16 canonical int32 lanes of a block dot as registers of the build's width.
struct ilanes16 {
    static constexpr std::size_t regs = simd::sum_lanes / simd::width;
    simd::ibatch r[regs];
};

TCQ_FORCEINLINE ilanes16 il16_load(const std::int32_t* p) {
    ilanes16 o;
    for (std::size_t i = 0; i < ilanes16::regs; ++i) o.r[i] = simd::ibatch::load_unaligned(p + i * simd::width);
    return o;
}
/// Exact: |lane| < 2^24.
TCQ_FORCEINLINE lanes16 il16_to_float(const ilanes16& d) {
    lanes16 o;
    for (std::size_t i = 0; i < lanes16::regs; ++i) o.r[i] = xsimd::to_float(d.r[i]);
    return o;
}
/// a·b + c per lane, one rounding: what int8_math.hpp's steps call on SIMD lanes (found by ADL).
TCQ_FORCEINLINE lanes16 fma(const lanes16& a, const lanes16& b, const lanes16& c) { return l16_fma(a, b, c); }

#if TCQ_ISA_AVX2
template <class B = simd::ibatch>  // B dependent: only the branch of the build's width is instantiated
TCQ_FORCEINLINE ilanes16 il16_from256(__m256i lo, __m256i hi) {
    ilanes16 o;
    if constexpr (B::size == 8) {
        o.r[0] = B(lo);
        o.r[1] = B(hi);
    } else {
        alignas(64) std::int32_t t[16];
        _mm256_store_si256(reinterpret_cast<__m256i*>(t), lo);
        _mm256_store_si256(reinterpret_cast<__m256i*>(t + 8), hi);
        o = il16_load(t);
    }
    return o;
}
#endif

// ---- block dots: D[v] lane l += Σ_{p=4l}^{4l+3} code(slot p)·xq[v][slot p] ----

/// Portable: codes via block_code in slot order, plain integer sums.
template <int Bits, int NV>
TCQ_FORCEINLINE void int8_block_dots(simd::isa::portable, const std::uint8_t* p, bool, const std::int8_t* const* xq,
                                     ilanes16 (&D)[NV]) {
    std::int32_t c[64];
    for (int s = 0; s < 64; ++s) c[s] = static_cast<std::int32_t>(block_code(p, Bits, int8_slot_code(Bits, s)));
    for (int v = 0; v < NV; ++v) {
        std::int32_t d[16] = {};
        for (int s = 0; s < 64; ++s) d[s / 4] += c[s] * xq[v][s];
        const ilanes16 t = il16_load(d);
        for (std::size_t i = 0; i < ilanes16::regs; ++i) D[v].r[i] = D[v].r[i] + t.r[i];
    }
}

#if TCQ_ISA_AVX2
/// Slots 0..31 and 32..63 as bytes (AVX2 + BMI2).
template <int Bits>
TCQ_FORCEINLINE void int8_decode_avx2(const std::uint8_t* p, bool wide_ok, __m256i& lo, __m256i& hi) {
    if constexpr (Bits == 2) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i m = _mm_set1_epi8(3);
        lo = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 2), m), _mm_and_si128(v, m));
        hi = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 6), m), _mm_and_si128(_mm_srli_epi16(v, 4), m));
    } else if constexpr (Bits == 3) {
        alignas(32) std::uint64_t s[8];
        for (int m = 0; m < 8; ++m) {
            std::uint32_t w = 0;
            std::memcpy(&w, p + 3 * m, (wide_ok || m < 7) ? 4 : 3);
            s[m] = _pdep_u64(w & 0xFFFFFFu, 0x0707070707070707ull);  // byte t = bits [3t, 3t+3)
        }
        lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(s));
        hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(s + 4));
    } else if constexpr (Bits == 4) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
        const __m256i m = _mm256_set1_epi8(0x0F);
        lo = _mm256_and_si256(v, m);
        hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
    } else {
        lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
        hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    }
}

/// Lane sums of 4 u8·s8 products. maddubs saturates above 2^15, so 8-bit
/// codes go in as two nibbles (each ≤ 15: |pair| ≤ 3810).
template <int Bits>
TCQ_FORCEINLINE __m256i int8_dot_avx2(__m256i c, __m256i x) {
    const __m256i one = _mm256_set1_epi16(1);
    if constexpr (Bits < 8) {
        return _mm256_madd_epi16(_mm256_maddubs_epi16(c, x), one);
    } else {
        const __m256i m = _mm256_set1_epi8(0x0F);
        const __m256i l = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_and_si256(c, m), x), one);
        const __m256i h = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(c, 4), m), x),
                                            _mm256_set1_epi16(16));
        return _mm256_add_epi32(l, h);
    }
}

template <int Bits, int NV>
TCQ_FORCEINLINE void int8_block_dots(simd::isa::avx2, const std::uint8_t* p, bool wide_ok,
                                     const std::int8_t* const* xq, ilanes16 (&D)[NV]) {
    __m256i lo, hi;
    int8_decode_avx2<Bits>(p, wide_ok, lo, hi);
    for (int v = 0; v < NV; ++v) {
        const __m256i xl = _mm256_load_si256(reinterpret_cast<const __m256i*>(xq[v]));
        const __m256i xh = _mm256_load_si256(reinterpret_cast<const __m256i*>(xq[v] + 32));
        const ilanes16 t = il16_from256(int8_dot_avx2<Bits>(lo, xl), int8_dot_avx2<Bits>(hi, xh));
        for (std::size_t i = 0; i < ilanes16::regs; ++i) D[v].r[i] = D[v].r[i] + t.r[i];
    }
}
#endif

#if TCQ_ISA_AVX512VNNI
/// The 64 slots as bytes: b = 2 and 4 one broadcast load + shift + and;
/// b = 3 a byte permute + multishift + and; b = 8 the load.
template <int Bits>
TCQ_FORCEINLINE __m512i int8_decode_avx512(const std::uint8_t* p, bool wide_ok) {
    if constexpr (Bits == 2) {
        const __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        const __m512i sh = _mm512_set_epi32(0x60006, 0x60006, 0x60006, 0x60006, 0x40004, 0x40004, 0x40004, 0x40004,
                                            0x20002, 0x20002, 0x20002, 0x20002, 0, 0, 0, 0);
        return _mm512_and_si512(_mm512_srlv_epi16(v, sh), _mm512_set1_epi8(3));
    } else if constexpr (Bits == 3) {
        const __m512i raw = wide_ok ? _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))
                                    : _mm512_maskz_loadu_epi8(0xFFFFFFull, p);  // 24 bytes, no over-read
        // qword m ← bytes 3m, 3m+1, 3m+2 (word m); byte t of it ← bits [3t, 3t+3)
        const __m512i idx = _mm512_set_epi8(23, 23, 23, 23, 23, 23, 22, 21, 20, 20, 20, 20, 20, 20, 19, 18, 17, 17, 17,
                                            17, 17, 17, 16, 15, 14, 14, 14, 14, 14, 14, 13, 12, 11, 11, 11, 11, 11, 11,
                                            10, 9, 8, 8, 8, 8, 8, 8, 7, 6, 5, 5, 5, 5, 5, 5, 4, 3, 2, 2, 2, 2, 2, 2, 1, 0);
        const __m512i sel = _mm512_set1_epi64(0x15120F0C09060300ll);  // 0, 3, 6, …, 21
        return _mm512_and_si512(_mm512_multishift_epi64_epi8(sel, _mm512_permutexvar_epi8(idx, raw)),
                                _mm512_set1_epi8(7));
    } else if constexpr (Bits == 4) {
        const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
        const __m512i sh = _mm512_set_epi64(0x4000400040004, 0x4000400040004, 0x4000400040004, 0x4000400040004, 0, 0,
                                            0, 0);
        return _mm512_and_si512(_mm512_srlv_epi16(v, sh), _mm512_set1_epi8(0x0F));
    } else {
        return _mm512_loadu_si512(p);
    }
}

template <int Bits, int NV>
TCQ_FORCEINLINE void int8_block_dots(simd::isa::avx512vnni, const std::uint8_t* p, bool wide_ok,
                                     const std::int8_t* const* xq, ilanes16 (&D)[NV]) {
    const __m512i c = int8_decode_avx512<Bits>(p, wide_ok);
    for (int v = 0; v < NV; ++v) {
        if constexpr (simd::width == 16) {
            D[v].r[0] = simd::ibatch(_mm512_dpbusd_epi32(D[v].r[0], c, _mm512_load_si512(xq[v])));
        } else {
            alignas(64) std::int32_t t[16];
            _mm512_store_si512(t, _mm512_dpbusd_epi32(_mm512_setzero_si512(), c, _mm512_load_si512(xq[v])));
            const ilanes16 u = il16_load(t);
            for (std::size_t i = 0; i < ilanes16::regs; ++i) D[v].r[i] = D[v].r[i] + u.r[i];
        }
    }
}
#endif

/// Code prefetch distance of the int8 kernels, shorter than the fp32
/// kernels' code_prefetch_bytes: DRAM-streamed on 1 thread, 8 KB left b = 4
/// at 4096² ~30 % slower than 1.5–3 KB, and 2 KB was best or tied for b = 2, 3.
inline constexpr index_t int8_prefetch_bytes = 2048;

/// Integer lane sums D[v] of K code blocks from p (x-block pointers xb[v]).
/// Wide: every block of the row may be read 32 bytes wide (not the array's last row).
template <int Bits, int NV, int K, bool Wide, class Arch>
TCQ_FORCEINLINE void int8_xblock_dots(Arch arch, const std::uint8_t* p, const std::uint8_t* end,
                                      const std::int8_t* const (&xb)[NV], ilanes16 (&D)[NV]) {
    constexpr index_t bb = block_bytes(Bits);
    for (auto& d : D)
        for (auto& r : d.r) r = simd::ibatch(0);
    for (int k = 0; k < K; ++k) {
        const std::uint8_t* q = p + k * bb;
        if (k == 0 || bb * K > 64) prefetch_codes<int8_prefetch_bytes>(q);  // one per line
        const std::int8_t* x[NV];
        for (int v = 0; v < NV; ++v) x[v] = xb[v] + k * block_weights;
        int8_block_dots<Bits, NV>(arch, q, Wide || end - q >= 32, x, D);
    }
}

/// x-block j (K code blocks) of a row into the chain Yc.
template <int Bits, int NV, int K, int KX, bool Wide, class Arch>
TCQ_FORCEINLINE void int8_xblock(Arch arch, const std::uint8_t* codes, const std::uint8_t* end, index_t j,
                                 const std::int8_t* const (&xv)[NV], const float* const (&wv)[NV],
                                 lanes16 (&Yc)[NV]) {
    const std::int8_t* xb[NV];
    for (int v = 0; v < NV; ++v) xb[v] = xv[v] + j * KX * block_weights;
    ilanes16 D[NV];
    int8_xblock_dots<Bits, NV, K, Wide>(arch, codes + j * KX * block_bytes(Bits), end, xb, D);
    for (int v = 0; v < NV; ++v) Yc[v] = int8_xblock_step(il16_to_float(D[v]), l16_set(wv[v][j]), Yc[v]);
}

/// Dense part of one row for NV vectors: the epilogue of pack/int8_math.hpp,
/// x-blocks alternating between the chains Y0 and Y1. KX code blocks per
/// x-block (a last partial one when nb is odd); w[v][j] = int8_scale_product(s_g(j), sx_vj).
template <int Bits, int NV, int KX, bool Wide, class Arch>
TCQ_FORCEINLINE void int8_row(Arch arch, const std::uint8_t* codes, const std::uint8_t* end, index_t nb,
                              const std::int8_t* const* xq, const float* const* w, float* y) {
    const std::int8_t* xv[NV];
    const float* wv[NV];
    for (int v = 0; v < NV; ++v) {
        xv[v] = xq[v];
        wv[v] = w[v];
    }
    lanes16 Y0[NV], Y1[NV];
    for (int v = 0; v < NV; ++v) Y0[v] = Y1[v] = l16_set(0.f);
    const index_t full = nb / KX;
    index_t j = 0;
    for (; j + 2 <= full; j += 2) {
        int8_xblock<Bits, NV, KX, KX, Wide>(arch, codes, end, j, xv, wv, Y0);
        int8_xblock<Bits, NV, KX, KX, Wide>(arch, codes, end, j + 1, xv, wv, Y1);
    }
    const bool partial = KX > 1 && nb % KX != 0;  // one code block left (KX = 2)
    if (j < full) {
        int8_xblock<Bits, NV, KX, KX, Wide>(arch, codes, end, j, xv, wv, Y0);
        if (partial) int8_xblock<Bits, NV, 1, KX, Wide>(arch, codes, end, j + 1, xv, wv, Y1);
    } else if (partial) {
        int8_xblock<Bits, NV, 1, KX, Wide>(arch, codes, end, j, xv, wv, Y0);
    }
    for (int v = 0; v < NV; ++v) y[v] = l16_fold(l16_add(Y0[v], Y1[v]));
}

/// fold(C), C[g % 16] = int8_zero_step(w_g, XZ_g, C[g % 16]) over groups16 (zero padded).
TCQ_FORCEINLINE float int8_correction(const float* w, const float* xz, index_t groups16) {
    lanes16 c = l16_set(0.f);
    for (index_t g = 0; g < groups16; g += 16) c = int8_zero_step(l16_load(w + g), l16_load(xz + g), c);
    return l16_fold(c);
}

/// A row's zero weights s·z (groups16, zero padded) and scale products
/// w[v][j] = int8_scale_product(s_g(j), sx_vj) of each vector; exact conversions.
struct int8_row_stats {
    aligned_vector<float> sf, zw, w;
    index_t xblocks16 = 0;
    index_t xpg = 1;  ///< x-blocks per group, divided once (a per-row idiv showed in profiles)
    int8_row_stats(index_t groups16, index_t xblocks, index_t n)
        : sf(static_cast<std::size_t>(groups16), 0.f), zw(sf.size(), 0.f),
          w(static_cast<std::size_t>(n * ((xblocks + 15) / 16 * 16)), 0.f), xblocks16((xblocks + 15) / 16 * 16) {}
    [[nodiscard]] const float* scales(index_t v) const { return w.data() + v * xblocks16; }
    template <class Arch>
    void load(Arch arch, const packed_view& W, const int8_activations& A, index_t r, index_t v0, index_t v1) {
        const index_t G = A.groups;
        const auto st = static_cast<std::size_t>(r * G);
        const std::uint16_t* sr = W.parts().scales.data() + st;
        const std::uint8_t* zr = W.parts().zeros.data() + st;
        const index_t g0 = stats16(arch, sr, zr, G, [&](index_t g1, simd::fbatch s, simd::fbatch z) {
            s.store_aligned(sf.data() + g1);
            (s * z).store_aligned(zw.data() + g1);  // int8_zero_weight, exact
        });
        index_t g = g0;
        for (; g < G; ++g) {
            const auto i = static_cast<std::size_t>(g);
            sf[i] = half_to_float_fast(sr[g]);
            zw[i] = int8_zero_weight(sf[i], static_cast<float>(zr[g]));
        }
        const index_t nx = A.xblocks;
        const auto W16 = static_cast<index_t>(simd::width);
        for (index_t v = v0; v < v1; ++v) {
            const float* sx = A.sx.data() + v * nx;
            float* o = w.data() + v * xblocks16;
            index_t j = 0;
            if (xpg == 1)  // one x-block per group: a register of products per step (correctly rounded either way)
                for (; j + W16 <= nx; j += W16)
                    (simd::fbatch::load_unaligned(sf.data() + j) * simd::fbatch::load_unaligned(sx + j)).store_unaligned(o + j);
            if (j == nx) continue;  // no tail: skip the division
            for (index_t g = j / xpg, k = j % xpg; j < nx; ++j) {
                o[j] = int8_scale_product(sf[static_cast<std::size_t>(g)], sx[j]);
                if (++k == xpg) {
                    ++g;
                    k = 0;
                }
            }
        }
    }
};

template <int Bits, class Arch>
void int8_rows(Arch arch, const packed_view& W, const int8_activations& A, index_t r0, index_t r1,
               matrix_view<float> Y) {
    const packed_info& info = W.info();
    const index_t n = A.n, nb = A.blocks;
    int8_row_stats rs(A.groups16, A.xblocks, n);
    rs.xpg = A.groups == 1 ? A.xblocks : A.group_blocks / A.kx;
    const std::uint8_t* end = W.parts().codes.data() + W.parts().codes.size();
    std::vector<const std::int8_t*> xq(static_cast<std::size_t>(n));
    std::vector<const float*> w(static_cast<std::size_t>(n)), xf(static_cast<std::size_t>(n));
    for (index_t v = 0; v < n; ++v) {
        xq[static_cast<std::size_t>(v)] = A.xq.data() + v * A.padded;
        w[static_cast<std::size_t>(v)] = rs.scales(v);
        xf[static_cast<std::size_t>(v)] = A.xf.data() + v * A.padded;
    }
    kept_cursor cur(W.parts().kept, info.cols, r0);
    std::vector<float> yd(static_cast<std::size_t>((r1 - r0) * n));
    cur.prefetch_rows(r0, r1);
    // Pass 1: dense part and zero-point correction (pass 2: kept weights, as in
    // gemv_batch.hpp). Tiles of up to 4 vectors outside the row loop, so the kernel
    // variant is picked once per task and inlined (a per-row dispatch and
    // call showed in the row profile).
    // Rows below `last` may read their blocks 32 bytes wide (not the array's last bytes).
    index_t last = r1;
    while (last > r0 && end - (W.row_codes(last - 1) + (nb - 1) * block_bytes(Bits)) < 32) --last;
    for (index_t v0 = 0; v0 < n; v0 += 4) {
        const auto tile = [&]<int NV, int KX>() {
            for (index_t r = r0; r < r1; ++r) {
                rs.load(arch, W, A, r, v0, v0 + NV);
                const std::uint8_t* codes = W.row_codes(r);
                float* yr = yd.data() + (r - r0) * n + v0;
                if (r < last)
                    int8_row<Bits, NV, KX, true>(arch, codes, end, nb, xq.data() + v0, w.data() + v0, yr);
                else
                    int8_row<Bits, NV, KX, false>(arch, codes, end, nb, xq.data() + v0, w.data() + v0, yr);
                for (int v = 0; v < NV; ++v)
                    yr[v] = yr[v] - int8_correction(rs.zw.data(), A.xz.data() + (v0 + v) * A.groups16, A.groups16);
            }
        };
        const auto nv = [&]<int KX>() {
            switch (std::min<index_t>(4, n - v0)) {
                case 1: tile.template operator()<1, KX>(); break;
                case 2: tile.template operator()<2, KX>(); break;
                case 3: tile.template operator()<3, KX>(); break;
                default: tile.template operator()<4, KX>(); break;
            }
        };
        if (A.kx == 2)
            nv.template operator()<2>();
        else
            nv.template operator()<1>();
    }
    kept_pass(arch, W, cur, r0, r1, xf.data(), n, yd.data(), Y);
}

}  // namespace detail

/// Y = X·Ŵᵀ with pre-quantized activations A (quantize_activations of W's
/// layout): Y is A.n × rows. `arch` picks the instruction set; every choice
/// gives the same bits. The policy is last, as everywhere.
template <simd::isa::tag Arch>
void gemv_batch_int8(const packed_view& W, const int8_activations& A, matrix_view<float> Y, Arch arch,
                     const exec_policy& pol = seq()) {
    require(!W.empty(), "gemv_batch_int8: empty packed matrix");
    require(int8_supported(W.info()), "gemv_batch_int8: unsupported layout (act-order or group size ", W.info().group_size,
            " not a multiple of 64); use tcq::gemv_batch");
    require(A.bits == W.bits() && A.cols == W.cols() && A.groups == W.info().groups() &&
                A.kx == int8_xblock_codes(W.info().group_size) &&
                A.group_blocks == (W.info().group_size ? W.info().group_size / block_weights : A.blocks),
            "gemv_batch_int8: activations were quantized for ", A.bits, "-bit ", A.cols, "-column codes, the matrix is ",
            W.bits(), "-bit with ", W.cols(), " columns (or another group size)");
    require_shape(Y, A.n, W.rows(), "gemv_batch_int8: Y");
    detail::dispatch_bits(W.bits(), [&]<int Bits>() {
        parallel_for(pol, W.rows(), detail::product_grain(W.rows(), pol),
                     [&](index_t r0, index_t r1) { detail::int8_rows<Bits>(arch, W, A, r0, r1, Y); });
    });
}

/// gemv_batch_int8 with the best instruction set compiled in.
inline void gemv_batch_int8(const packed_view& W, const int8_activations& A, matrix_view<float> Y,
                            const exec_policy& pol = seq()) {
    gemv_batch_int8(W, A, Y, simd::isa::best{}, pol);
}

/// Y = X·Ŵᵀ with int8 activations (X: n × cols, Y: n × rows); quantizes X first.
template <simd::isa::tag Arch>
void gemv_batch_int8(const packed_view& W, matrix_view<const float> X, matrix_view<float> Y, Arch arch,
                     const exec_policy& pol = seq()) {
    require(!W.empty(), "gemv_batch_int8: empty packed matrix");
    gemv_batch_int8(W, quantize_activations(W.info(), X, arch), Y, arch, pol);
}

/// gemv_batch_int8 of fp32 X with the best instruction set compiled in.
inline void gemv_batch_int8(const packed_view& W, matrix_view<const float> X, matrix_view<float> Y,
                            const exec_policy& pol = seq()) {
    gemv_batch_int8(W, X, Y, simd::isa::best{}, pol);
}

/// y = Ŵx with int8 activations (x: cols, y: rows).
template <simd::isa::tag Arch>
void gemv_int8(const packed_view& W, std::span<const float> x, std::span<float> y, Arch arch,
               const exec_policy& pol = seq()) {
    require(static_cast<index_t>(x.size()) == W.cols(), "gemv_int8: x has ", x.size(),
            " elements, the matrix has ", W.cols(), " columns");
    require(static_cast<index_t>(y.size()) == W.rows(), "gemv_int8: y has ", y.size(), " elements, the matrix has ",
            W.rows(), " rows");
    gemv_batch_int8(W, matrix_view<const float>(x.data(), 1, W.cols()), matrix_view<float>(y.data(), 1, W.rows()), arch,
                    pol);
}

/// gemv_int8 with the best instruction set compiled in.
inline void gemv_int8(const packed_view& W, std::span<const float> x, std::span<float> y,
                      const exec_policy& pol = seq()) {
    gemv_int8(W, x, y, simd::isa::best{}, pol);
}

}  // namespace tcq
