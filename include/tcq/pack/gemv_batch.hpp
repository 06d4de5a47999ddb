#pragma once
/// @file gemv_batch.hpp
/// @brief Fused dequant products Y = X Ŵᵀ on a packed matrix: codes, scales and
/// the sparse 16-bit weights in one pass, for small batches (1–8 vectors).
///
/// Canonical arithmetic (scalar twin: reference::gemv; identical bit for bit
/// when the target has FMA). x is zero-padded to whole 64-column blocks;
/// lanes are the 16 canonical lanes of tcq::simd; slot k ∈ 0..3 is the chunk
/// of a block; m = 1 + q·2^-b is the exact "magic" float of a code (decode.hpp).
///
///  * Regular grouping (no act-order, group size 0 or a multiple of 64): per
///    group g, T[k % 2][l] = fma(m, x, T[k % 2][l]) over the group's blocks and
///    their chunks k in order; Y[l] = fma(S_g, T0 + T1, Y[l]) with S_g = s_g·2^b
///    (two chains hide the FMA latency at one add per group). Then
///    y = fold(Y) − c with c = fold over lanes g % 16 of fma(w_g, XS_g, ·),
///    w_g = s_g·(2^b + z_g), XS_g = fold of the in-order lane sums of x over
///    the group (groups padded to a multiple of 16 with w = XS = 0). This is
///    Σ s(q − z)x rewritten so each 16 weights cost one FMA.
///  * Otherwise (act-order, other group sizes): per chunk, w = s_c·(q − z_c)
///    (exactly the dequantized weight; padding columns take the group of the
///    last column), acc[k][l] = fma(w, x, acc[k][l]); y = fold((acc0 + acc1) +
///    (acc2 + acc3)).
///  * Kept weights of the row, j = 0, 1, … in column order: o[j % 16] =
///    fma(v_j, x_c, o[j % 16]); y = y + fold_lanes(o).
///
/// Tolerance against the exact Σ_c Ŵ_rc x_c (Ŵ = dequantize(W)):
///   |y_r − Σ_c Ŵ_rc x_c| ≤ (cols/16 + 64)·2⁻²⁴·M_r,
///   M_r = Σ_c (s_{r,g(c)}·(2^(b+1) + q_rc + z_{r,g(c)}) + |v_rc|)·|x_c|
/// (v = kept weight, 0 elsewhere; q = z at kept positions). It is the standard
/// recursive-summation bound over at most 2·cols/64 + groups + 16 + kept
/// terms per lane, with the magnitudes of the rewritten regular form. Rows
/// are independent (each is computed alone by one task), so results are
/// identical for any thread count; row i of a GEMM equals the GEMV of
/// vector i bit for bit.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "tcq/core/aligned.hpp"
#include "tcq/core/matrix_view.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/pack/decode.hpp"
#include "tcq/pack/packed_matrix.hpp"

namespace tcq {

namespace detail {

/// True when the regular (group-sum) formula applies.
inline bool regular_groups(const packed_info& i) {
    return !i.act_order && (i.group_size == 0 || i.group_size % block_weights == 0);
}

/// Per-call inputs of the product kernels.
struct product_plan {
    index_t n = 0;         ///< vectors
    index_t padded = 0;    ///< cols rounded up to 64
    index_t groups = 0;
    index_t groups16 = 0;  ///< groups rounded up to 16
    bool regular = false;
    bool chunk_groups = false;      ///< general path with one group per 16-column chunk (broadcast)
    aligned_vector<float> xp;       ///< n × padded, zero padded (rows start 64-byte aligned)
    aligned_vector<float> xs;       ///< regular: n × groups16 group sums of x, zero padded
    std::vector<std::int32_t> gcol; ///< general: group of every padded column
};

inline product_plan make_plan(const packed_view& W, matrix_view<const float> X) {
    const packed_info& info = W.info();
    product_plan p;
    p.n = X.rows();
    p.padded = info.blocks_per_row() * block_weights;
    p.groups = info.groups();
    p.groups16 = (p.groups + 15) / 16 * 16;
    p.regular = regular_groups(info);
    p.chunk_groups = !info.act_order && info.group_size % 16 == 0;
    p.xp.assign(static_cast<std::size_t>(p.n * p.padded), 0.f);
    for (index_t v = 0; v < p.n; ++v) std::copy(X.row(v), X.row(v) + info.cols, p.xp.data() + v * p.padded);
    if (p.regular) {
        const index_t gcols = info.group_size ? info.group_size : p.padded;
        p.xs.assign(static_cast<std::size_t>(p.n * p.groups16), 0.f);
        for (index_t v = 0; v < p.n; ++v)
            for (index_t g = 0; g < p.groups; ++g) {
                alignas(64) float l[16] = {};
                const float* x = p.xp.data() + v * p.padded;
                for (index_t c = g * gcols; c < std::min(p.padded, (g + 1) * gcols); c += 16)
                    for (int i = 0; i < 16; ++i) l[i] = l[i] + x[c + i];
                p.xs[static_cast<std::size_t>(v * p.groups16 + g)] = simd::fold_lanes(l);
            }
    } else {
        p.gcol.resize(static_cast<std::size_t>(p.padded));
        for (index_t c = 0; c < p.padded; ++c)
            p.gcol[static_cast<std::size_t>(c)] = static_cast<std::int32_t>(W.group_of(std::min(c, info.cols - 1)));
    }
    return p;
}

/// Dense part Σ_g S_g·Σ m·x of one row for NV vectors (regular grouping).
/// BPG > 0 fixes the blocks per group at compile time (groups of 64 or 128;
/// requires nb % BPG == 0): the group loop unrolls, which matters when a
/// flush comes every one or two blocks.
template <int Bits, int NV, int BPG = 0, class Arch>
TCQ_FORCEINLINE void row_regular(Arch arch, const std::uint8_t* codes, const std::uint8_t* end, index_t nb,
                                 index_t bpg_rt, const float* S, const float* const* x, float* y) {
    constexpr index_t bb = block_bytes(Bits);
    const index_t bpg = BPG > 0 ? BPG : bpg_rt;
    lanes16 Y[NV];
    for (auto& a : Y) a = l16_set(0.f);
    for (index_t g = 0, b0 = 0; b0 < nb; ++g, b0 += bpg) {
        const index_t b1 = BPG > 0 ? b0 + BPG : std::min(nb, b0 + bpg);
        lanes16 T[NV][2];  // chunks 0, 2 and 1, 3: two chains hide the FMA latency, one add per flush
        for (auto& tv : T)
            for (auto& t : tv) t = l16_set(0.f);
        for (index_t b = b0; b < b1; ++b) {
            prefetch_codes(codes + b * bb);
            lanes16 q[4];
            decode_block<Bits>(arch, codes + b * bb, q, end - (codes + b * bb) >= 32);
            for (int v = 0; v < NV; ++v)
                for (int k = 0; k < 4; ++k)
                    T[v][k & 1] = l16_fma(q[k], l16_load(x[v] + b * block_weights + 16 * k), T[v][k & 1]);
        }
        const lanes16 Sg = l16_set(S[g]);
        for (int v = 0; v < NV; ++v)
            Y[v] = l16_fma(Sg, l16_add(T[v][0], T[v][1]), Y[v]);
    }
    for (int v = 0; v < NV; ++v) y[v] = l16_fold(Y[v]);
}

/// Dense part of one row for NV vectors, general grouping; sf/zf: the row's scales and zeros as floats.
template <int Bits, int NV, class Arch>
TCQ_FORCEINLINE void row_general(Arch arch, const std::uint8_t* codes, const std::uint8_t* end, index_t nb,
                                 const product_plan& p, const float* sf, const float* zf, const float* const* x,
                                 float* y) {
    constexpr index_t bb = block_bytes(Bits);
    lanes16 acc[NV][4];
    for (auto& av : acc)
        for (auto& a : av) a = l16_set(0.f);
    for (index_t b = 0; b < nb; ++b) {
        prefetch_codes(codes + b * bb);
        lanes16 m[4];
        decode_block<Bits>(arch, codes + b * bb, m, end - (codes + b * bb) >= 32);
        for (int k = 0; k < 4; ++k) {
            const index_t c = b * block_weights + 16 * k;
            lanes16 s, z;
            if (p.chunk_groups) {
                const index_t g = p.gcol[static_cast<std::size_t>(c)];
                s = l16_set(sf[g]);
                z = l16_set(zf[g]);
            } else {
                s = l16_gather(sf, p.gcol.data() + c);
                z = l16_gather(zf, p.gcol.data() + c);
            }
            const lanes16 w = l16_dequant(magic_to_code<Bits>(m[k]), s, z);
            for (int v = 0; v < NV; ++v) acc[v][k] = l16_fma(w, l16_load(x[v] + c), acc[v][k]);
        }
    }
    for (int v = 0; v < NV; ++v) y[v] = l16_fold(l16_add(l16_add(acc[v][0], acc[v][1]), l16_add(acc[v][2], acc[v][3])));
}

/// Σ_g w_g·XS_g over lanes g % 16 (groups16 entries, zero padded), folded.
TCQ_FORCEINLINE float group_correction(const float* w, const float* xs, index_t groups16) {
    lanes16 c = l16_set(0.f);
    for (index_t g = 0; g < groups16; g += 16) c = l16_fma(l16_load(w + g), l16_load(xs + g), c);
    return l16_fold(c);
}

#if defined(__F16C__)
/// fp16 bits → float by F16C (exact, as half_to_float).
TCQ_FORCEINLINE float half_to_float_fast(std::uint16_t h) { return _cvtsh_ss(h); }
#else
/// fp16 bits → float (no F16C in this build).
TCQ_FORCEINLINE float half_to_float_fast(std::uint16_t h) { return half_to_float(h); }
#endif

/// Statistics of a row 16 groups per step: calls f(g, s, z) with the scales
/// (fp16 → float) and zeros (u8 → float) of groups g … g+15 as registers and
/// returns the groups done. The portable overload does none: its callers
/// convert every group in their scalar loop, with the same exact results.
template <class F>
TCQ_FORCEINLINE index_t stats16(simd::isa::portable, const std::uint16_t*, const std::uint8_t*, index_t, F&&) {
    return 0;
}
#if TCQ_ISA_AVX512BW
/// AVX-512 overload of stats16: vcvtph2ps and a widening byte convert.
template <class F>
TCQ_FORCEINLINE index_t stats16(simd::isa::avx512bw, const std::uint16_t* sr, const std::uint8_t* zr, index_t G,
                                F&& f) {
    index_t g = 0;
    for (; g + 16 <= G; g += 16)
        f(g, simd::fbatch(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sr + g)))),
          simd::fbatch(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(zr + g))))));
    return g;
}
#endif

/// Row statistics as floats: scales, zeros, S = s·2^b and w = s·(2^b + z) (groups16 each, zero padded).
struct row_stats {
    std::vector<float> sf, zf, S, w;
    explicit row_stats(index_t groups16)
        : sf(static_cast<std::size_t>(groups16), 0.f), zf(sf.size(), 0.f), S(sf.size(), 0.f), w(sf.size(), 0.f) {}
    template <class Arch>
    void load(Arch arch, const packed_view& W, index_t r, index_t G, bool regular, float two_b) {
        const auto st = static_cast<std::size_t>(r * G);
        const std::uint16_t* sr = W.parts().scales.data() + st;
        const std::uint8_t* zr = W.parts().zeros.data() + st;
        index_t g = 0;
        if (regular) {  // 16 groups per step; the same correctly rounded ops as the scalar tail
            const simd::fbatch tb(two_b);
            g = stats16(arch, sr, zr, G, [&](index_t g0, simd::fbatch s, simd::fbatch z) {
                (s * tb).store_unaligned(S.data() + g0);
                (s * (tb + z)).store_unaligned(w.data() + g0);
            });
        }
        for (; g < G; ++g) {
            const auto i = static_cast<std::size_t>(g);
            sf[i] = half_to_float_fast(sr[g]);
            zf[i] = static_cast<float>(zr[g]);
            if (regular) {
                S[i] = sf[i] * two_b;
                w[i] = sf[i] * (two_b + zf[i]);
            }
        }
    }
};

/// Σ of a row's kept weights against n vectors in the canonical order:
/// o[j % 16] = fma(v_j, x_c, o[j % 16]), then fold_lanes(o). Portable: one
/// loop step per kept weight.
struct row_kept {
    std::vector<float> acc;
    explicit row_kept(index_t n) : acc(static_cast<std::size_t>(16 * n)) {}
    void run(kept_cursor& cur, bool bf16, const float* const* x, index_t n, float* out) {
        std::fill(acc.begin(), acc.end(), 0.f);
        const value_format f = bf16 ? value_format::bf16 : value_format::fp16;
        cur.next_row([&](index_t j, index_t c, std::uint16_t bits) {
            const float t = decode_value(bits, f);
            for (index_t v = 0; v < n; ++v) {
                float& a = acc[static_cast<std::size_t>(16 * v + j % 16)];
                a = std::fma(t, x[v][c], a);
            }
        });
        for (index_t v = 0; v < n; ++v) out[v] = simd::fold_lanes(acc.data() + 16 * v);
    }
};

/// Y(v, r) = yd[(r − r0)·n + v] + the kept weights of each row r in [r0, r1), walked row by row.
template <class RowKept>
void kept_rows(RowKept& ro, kept_cursor& cur, bool bf16, index_t r0, index_t r1, const float* const* x,
               index_t n, const float* yd, matrix_view<float> Y) {
    std::vector<float> os(static_cast<std::size_t>(n));
    for (index_t r = r0; r < r1; ++r) {
        const float* yr = yd + (r - r0) * n;
        ro.run(cur, bf16, x, n, os.data());
        for (index_t v = 0; v < n; ++v) Y(v, r) = yr[v] + os[static_cast<std::size_t>(v)];
    }
}

/// Pass 2 of the products, rows [r0, r1) (r0 a multiple of 64): Y(v, r) =
/// yd[(r − r0)·n + v] + the kept weights of row r against fp32 x[v].
/// Portable overload: the row walk.
inline void kept_pass(simd::isa::portable, const packed_view& W, kept_cursor& cur, index_t r0, index_t r1,
                      const float* const* x, index_t n, const float* yd, matrix_view<float> Y) {
    row_kept ro(n);
    kept_rows(ro, cur, W.info().kept_format == value_format::bf16, r0, r1, x, n, yd, Y);
}

#if TCQ_KEPT_AVX512
/// row_kept with AVX-512: the row's kept weights 16 at a time, already in
/// their canonical lanes (kept_cursor::next_row_batches).
struct row_kept_avx512 {
    explicit row_kept_avx512(index_t) {}
    /// Up to four vectors per walk of the row; the accumulators stay in
    /// registers (a masked store + reload per row would stall forwarding).
    template <int NV>
    static void tile(kept_cursor& cur, bool bf16, const float* const* x, float* out) {
        lanes16 acc[NV];
        for (auto& a : acc) a = l16_set(0.f);
        cur.next_row_batches(bf16, [&](__mmask16 m, __m512i col, __m512 val) {
            for (int v = 0; v < NV; ++v) {
                const __m512 xg = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, col, x[v], 4);
                acc[v].r[0] = simd::fbatch(_mm512_mask3_fmadd_ps(val, xg, acc[v].r[0], m));
            }
        });
        for (int v = 0; v < NV; ++v) out[v] = l16_fold(acc[v]);
    }
    void run(kept_cursor& cur, bool bf16, const float* const* x, index_t n, float* out) {
        for (index_t v0 = 0; v0 < n; v0 += 4) {
            const bool last = v0 + 4 >= n;
            kept_cursor c = last ? kept_cursor() : cur;  // earlier tiles walk a copy of the row
            kept_cursor& w = last ? cur : c;
            switch (std::min<index_t>(4, n - v0)) {
                case 1: tile<1>(w, bf16, x + v0, out + v0); break;
                case 2: tile<2>(w, bf16, x + v0, out + v0); break;
                case 3: tile<3>(w, bf16, x + v0, out + v0); break;
                default: tile<4>(w, bf16, x + v0, out + v0); break;
            }
        }
    }
};

/// Rows [c0, c1) of a chunk decoded by decode_kept_chunk (entries from
/// row c0 on), vectors x[0..NV): Y(v0 + v, r) = yd[(r − c0)·n + v0 + v] + the
/// row's kept weights in row_kept' order (lane j % 16, fma, fold).
template <int NV>
TCQ_FORCEINLINE void kept_tile(const std::int32_t* key, const float* val, std::int32_t B, index_t c0, index_t c1,
                               const float* const* x, const float* yd, index_t n, index_t v0, matrix_view<float> Y) {
    std::size_t i = 0;
    for (index_t r = c0; r < c1; ++r) {
        const auto t = static_cast<std::int32_t>(r - c0);
        const __m512i lo = _mm512_set1_epi32(t * B), hi = _mm512_set1_epi32(t * B + B);
        __m512 acc[NV];
        for (auto& a : acc) a = _mm512_setzero_ps();
        for (;;) {  // 16 entries per step; keys ascend, so the mask is a prefix
            const __m512i kv = _mm512_loadu_si512(key + i);
            const __mmask16 m = _mm512_cmplt_epi32_mask(kv, hi);
            if (!m) break;
            const __m512i col = _mm512_sub_epi32(kv, lo);
            const __m512 vv = _mm512_loadu_ps(val + i);
            for (int v = 0; v < NV; ++v)
                acc[v] = _mm512_mask3_fmadd_ps(vv, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, col, x[v], 4),
                                               acc[v], m);
            const auto cnt = static_cast<unsigned>(std::popcount(static_cast<unsigned>(m)));
            i += cnt;
            if (cnt < 16) break;
        }
        for (int v = 0; v < NV; ++v) {
            lanes16 l;
            l.r[0] = simd::fbatch(acc[v]);
            Y(v0 + v, r) = yd[t * n + v0 + v] + l16_fold(l);
        }
    }
}

/// kept_pass with AVX-512 (F/BW/VBMI2): each 64-row chunk's bitmap is decoded
/// in one sweep (decode_kept_chunk), which costs about half the per-row
/// walk; same sums. Matrices too wide for its 31-bit keys walk rows in batches.
inline void kept_pass(simd::isa::avx512vnni, const packed_view& W, kept_cursor& cur, index_t r0, index_t r1,
                      const float* const* x, index_t n, const float* yd, matrix_view<float> Y) {
    const packed_info& info = W.info();
    const bool bf16 = info.kept_format == value_format::bf16;
    if (info.cols > kept_chunk_max_cols) {
        row_kept_avx512 ro(n);
        kept_rows(ro, cur, bf16, r0, r1, x, n, yd, Y);
        return;
    }
    const kept_arrays& a = W.parts().kept;
    std::size_t most = 0;  // largest chunk
    for (index_t c0 = r0; c0 < r1 && !a.values.empty(); c0 += cost::skip_rows) {
        const auto s = static_cast<std::size_t>(c0 / cost::skip_rows) * 2;
        most = std::max<std::size_t>(most, (s + 2 < a.skips.size() ? a.skips[s + 2] : a.values.size()) - a.skips[s]);
    }
    aligned_vector<std::int32_t> key(most + 32);
    aligned_vector<float> val(most + 32);
    const auto B = static_cast<std::int32_t>(kept_buckets(info.cols) * cost::col_bucket);
    for (index_t c0 = r0; c0 < r1; c0 += cost::skip_rows) {
        const index_t c1 = std::min(r1, c0 + cost::skip_rows);
        decode_kept_chunk(a, c0, bf16, key.data(), val.data());
        const float* yc = yd + (c0 - r0) * n;
        for (index_t v0 = 0; v0 < n; v0 += 4) switch (std::min<index_t>(4, n - v0)) {
                case 1: kept_tile<1>(key.data(), val.data(), B, c0, c1, x + v0, yc, n, v0, Y); break;
                case 2: kept_tile<2>(key.data(), val.data(), B, c0, c1, x + v0, yc, n, v0, Y); break;
                case 3: kept_tile<3>(key.data(), val.data(), B, c0, c1, x + v0, yc, n, v0, Y); break;
                default: kept_tile<4>(key.data(), val.data(), B, c0, c1, x + v0, yc, n, v0, Y); break;
            }
    }
}
#endif

/// Rows per task: about four tasks per thread, in whole 64-row kept-weight
/// chunks. Long contiguous runs keep each thread's code stream sequential
/// (measured ~5% over 64-row tasks on 2 threads); four per thread still
/// balance a late-waking worker. Rows are independent, so the results do
/// not depend on the split.
inline index_t product_grain(index_t rows, const exec_policy& pol) {
    const index_t per = rows / (4 * static_cast<index_t>(pol.resolved_threads()));  // resolved_threads() ≥ 1
    return std::max<index_t>(cost::skip_rows, per / cost::skip_rows * cost::skip_rows);
}

template <int Bits, class Arch>
void product_rows(Arch arch, const packed_view& W, const product_plan& p, index_t r0, index_t r1, matrix_view<float> Y) {
    const packed_info& info = W.info();
    const index_t n = p.n, nb = info.blocks_per_row(), G = p.groups;
    const index_t bpg = info.group_size ? info.group_size / block_weights : nb;
    constexpr float two_b = static_cast<float>(1u << Bits);
    row_stats rs(p.groups16);
    const std::uint8_t* end = W.parts().codes.data() + W.parts().codes.size();
    std::vector<const float*> x(static_cast<std::size_t>(n));
    for (index_t v = 0; v < n; ++v) x[static_cast<std::size_t>(v)] = p.xp.data() + v * p.padded;
    kept_cursor cur(W.parts().kept, info.cols, r0);
    std::vector<float> yd(static_cast<std::size_t>((r1 - r0) * n));
    // Pass 1: dense part and group correction of every row of the chunk.
    cur.prefetch_rows(r0, r1);
    for (index_t r = r0; r < r1; ++r) {
        rs.load(arch, W, r, G, p.regular, two_b);
        const std::uint8_t* codes = W.row_codes(r);
        float* yr = yd.data() + (r - r0) * n;
        for (index_t v0 = 0; v0 < n; v0 += 4) {
            const auto tile = [&]<int NV>() {
                if (p.regular && bpg == 2 && nb % 2 == 0)
                    row_regular<Bits, NV, 2>(arch, codes, end, nb, bpg, rs.S.data(), x.data() + v0, yr + v0);
                else if (p.regular && bpg == 1)
                    row_regular<Bits, NV, 1>(arch, codes, end, nb, bpg, rs.S.data(), x.data() + v0, yr + v0);
                else if (p.regular)
                    row_regular<Bits, NV>(arch, codes, end, nb, bpg, rs.S.data(), x.data() + v0, yr + v0);
                else
                    row_general<Bits, NV>(arch, codes, end, nb, p, rs.sf.data(), rs.zf.data(), x.data() + v0, yr + v0);
            };
            switch (std::min<index_t>(4, n - v0)) {
                case 1: tile.template operator()<1>(); break;
                case 2: tile.template operator()<2>(); break;
                case 3: tile.template operator()<3>(); break;
                default: tile.template operator()<4>(); break;
            }
        }
        if (p.regular)
            for (index_t v = 0; v < n; ++v)
                yr[v] = yr[v] - group_correction(rs.w.data(), p.xs.data() + v * p.groups16, p.groups16);
    }
    // Pass 2: kept weights. A separate pass keeps the bitmap walk's branch
    // misses from discarding dense work (and its loads) in flight.
    kept_pass(arch, W, cur, r0, r1, x.data(), n, yd.data(), Y);
}

}  // namespace detail

/// Y = X·Ŵᵀ: X is n × cols (one input vector per row), Y is n × rows. Row i of
/// Y equals gemv(W, row i of X) bit for bit. Fastest for n ≤ 8 (vectors are
/// tiled by 4, each tile re-decodes the codes); larger batches are correct but
/// dequantize + a dense GEMM wins there. Non-finite x propagates to y.
/// `arch` picks the instruction set; every choice gives the same bits.
template <simd::isa::tag Arch>
void gemv_batch(const packed_view& W, matrix_view<const float> X, matrix_view<float> Y, Arch arch,
                const exec_policy& pol = seq()) {
    require(!W.empty(), "gemv_batch: empty packed matrix");
    require(X.cols() == W.cols(), "gemv_batch: X has ", X.cols(), " columns, the matrix has ", W.cols());
    require(X.rows() >= 1, "gemv_batch: X has no rows");
    require_shape(Y, X.rows(), W.rows(), "gemv_batch: Y");
    const detail::product_plan p = detail::make_plan(W, X);
    detail::dispatch_bits(W.bits(), [&]<int Bits>() {
        parallel_for(pol, W.rows(), detail::product_grain(W.rows(), pol),
                     [&](index_t r0, index_t r1) { detail::product_rows<Bits>(arch, W, p, r0, r1, Y); });
    });
}

/// gemv_batch with the best instruction set compiled in.
inline void gemv_batch(const packed_view& W, matrix_view<const float> X, matrix_view<float> Y,
                       const exec_policy& pol = seq()) {
    gemv_batch(W, X, Y, simd::isa::best{}, pol);
}

}  // namespace tcq
