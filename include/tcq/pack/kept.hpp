#pragma once
/// @file kept.hpp
/// @brief The sparse 16-bit weights of a packed matrix: values, column
/// encoding, row cursor, builder and validator.
///
/// Encoding (cost.hpp, docs/format.md): the k kept weights are listed in
/// row-major order. Each has a 16-bit value and the low 8 bits of its column.
/// The high column bits are a unary bitmap, row after row: for each 256-column
/// bucket of the row, one 1 per kept weight in that bucket, then one 0. A row
/// therefore spans (its kept count + buckets) bits. Every 64 rows a skip entry
/// of two u32 gives the index of the row's first kept weight and the bit
/// offset of its bitmap, so row chunks are decoded independently.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "tcq/core/error.hpp"
#include "tcq/core/half.hpp"
#include "tcq/core/storage_cost.hpp"
#include "tcq/core/value_format.hpp"
#include "tcq/pack/blocks.hpp"

#if defined(__BMI2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VBMI2__) && defined(__BMI2__)
/// 1 when the AVX-512 batch decoder of kept weights is compiled in.
#define TCQ_KEPT_AVX512 1
#else
/// 0: no AVX-512 batch decoder of kept weights in this build (scalar path only).
#define TCQ_KEPT_AVX512 0
#endif

namespace tcq {

/// Number of 256-column buckets of a row of `cols` columns.
TCQ_HOST_DEVICE inline index_t kept_buckets(index_t cols) {
    return (cols + cost::col_bucket - 1) / cost::col_bucket;
}
/// Number of skip entries (one per 64 rows).
TCQ_HOST_DEVICE inline index_t kept_skips(index_t rows) {
    return (rows + cost::skip_rows - 1) / cost::skip_rows;
}

/// Non-owning view of the kept arrays; all empty when there are none.
struct kept_arrays {
    std::span<const std::uint16_t> values;   ///< k 16-bit values, row-major order
    std::span<const std::uint8_t> low_cols;  ///< k low column bytes
    std::span<const std::uint64_t> bitmap;   ///< ceil((k + rows·buckets)/64) words
    std::span<const std::uint32_t> skips;    ///< 2 per 64 rows: (first index, bit offset)
};

/// Walks one row of the unary bitmap bit by bit (the plain definition, shared
/// with CUDA): from kept-weight index k and bit offset pos, calls
/// f(col, value_bits) per kept weight and leaves k, pos at the next row.
/// Trusts its input (validated arrays only).
template <class F>
TCQ_HOST_DEVICE inline void walk_kept_row(const std::uint64_t* bitmap, const std::uint8_t* low_cols,
                                             const std::uint16_t* values, index_t buckets, std::uint64_t& k,
                                             std::uint64_t& pos, F&& f) {
    for (index_t b = 0; b < buckets; ++b)
        while (stream_bit(bitmap, pos++)) {
            f(b * cost::col_bucket + low_cols[k], values[k]);
            ++k;
        }
}

#if TCQ_KEPT_AVX512
namespace detail {
/// Bytes 16q..16q+15 of v, q < 4 (the extract takes an immediate).
TCQ_FORCEINLINE __m128i quarter(__m512i v, unsigned q) {
    switch (q) {
        case 0: return _mm512_castsi512_si128(v);
        case 1: return _mm512_extracti32x4_epi32(v, 1);
        case 2: return _mm512_extracti32x4_epi32(v, 2);
        default: return _mm512_extracti32x4_epi32(v, 3);
    }
}
}  // namespace detail
#endif

/// Walks the kept weights row by row, starting at a row that is a multiple of 64.
/// Trusts its input: only use it on validated arrays (packed_view guarantees that).
class kept_cursor {
public:
    /// An empty cursor (walks nothing).
    kept_cursor() = default;
    /// Cursor at row `row0` (a multiple of 64) of a matrix with `cols` columns.
    kept_cursor(const kept_arrays& a, index_t cols, index_t row0)
        : a_(a), buckets_(kept_buckets(cols)) {
        if (a.values.empty()) return;
        const auto s = static_cast<std::size_t>(row0 / cost::skip_rows) * 2;
        k_ = a.skips[s];
        pos_ = a.skips[s + 1];
    }

    /// Calls f(j, col, value_bits) for every kept weight of the current row in
    /// ascending column order (j = 0, 1, … within the row), then moves to the
    /// next row. Branch-light: one step per 64 bitmap bits plus one per weight.
    template <class F>
    TCQ_FORCEINLINE void next_row(F&& f) {
        if (a_.values.empty()) return;
        const std::uint64_t start = pos_;
        std::uint64_t zeros_left = static_cast<std::uint64_t>(buckets_);
        std::uint64_t j = 0;  // kept weights seen in this row
        for (;;) {
            const std::uint64_t w = read64(pos_);
            const auto nz = static_cast<std::uint64_t>(std::popcount(~w));
            const bool last = nz >= zeros_left;  // the row ends in this window, at its last zero
            const std::uint64_t used = last ? static_cast<std::uint64_t>(nth_zero(w, zeros_left)) + 1 : 64;
            std::uint64_t ones = used == 64 ? w : (w & ((std::uint64_t{1} << used) - 1));
            for (; ones; ones &= ones - 1, ++j, ++k_) {
                const std::uint64_t bucket = pos_ - start + static_cast<std::uint64_t>(std::countr_zero(ones)) - j;
                f(static_cast<index_t>(j), static_cast<index_t>(bucket) * cost::col_bucket + a_.low_cols[k_],
                  a_.values[k_]);
            }
            pos_ += used;
            if (last) return;
            zeros_left -= nz;
        }
    }

    /// Prefetches the arrays of rows [row0, row1) (row0 a multiple of 64):
    /// they advance a few bytes per row, too slowly for the hardware
    /// prefetchers, so each new line would otherwise be a stall in the walk.
    void prefetch_rows(index_t row0, index_t row1) const {
#if defined(__GNUC__) || defined(__clang__)
        if (a_.values.empty()) return;
        const auto s0 = static_cast<std::size_t>(row0 / cost::skip_rows) * 2;
        const auto s1 = static_cast<std::size_t>((row1 + cost::skip_rows - 1) / cost::skip_rows) * 2;
        const std::size_t k0 = a_.skips[s0], k1 = s1 < a_.skips.size() ? a_.skips[s1] : a_.values.size();
        const std::size_t b0 = a_.skips[s0 + 1] / 64,
                          b1 = s1 < a_.skips.size() ? a_.skips[s1 + 1] / 64 + 1 : a_.bitmap.size();
        for (std::size_t i = k0; i < k1; i += 32) __builtin_prefetch(a_.values.data() + i);
        for (std::size_t i = k0; i < k1; i += 64) __builtin_prefetch(a_.low_cols.data() + i);
        for (std::size_t i = b0; i < std::min(b1, a_.bitmap.size()); i += 8) __builtin_prefetch(a_.bitmap.data() + i);
#else
        (void)row0;
        (void)row1;
#endif
    }

#if TCQ_KEPT_AVX512
    /// next_row in batches of up to 16 kept weights, already placed in their
    /// canonical lanes j % 16: calls g(mask, cols, values) with the lane mask,
    /// the int32 columns and the float values. One compress per 64 bitmap bits
    /// instead of one loop step per weight.
    template <class G>
    TCQ_FORCEINLINE void next_row_batches(bool bf16, G&& g) {
        if (a_.values.empty()) return;
        const std::uint64_t start = pos_;
        std::uint64_t zeros_left = static_cast<std::uint64_t>(buckets_);
        std::uint64_t j = 0;
        const __m512i iota8 = _mm512_set_epi8(63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46,
                                              45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28,
                                              27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10,
                                              9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        const __m512i iota32 = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        for (;;) {
            const std::uint64_t w = read64(pos_);
            const auto nz = static_cast<std::uint64_t>(std::popcount(~w));
            const bool last = nz >= zeros_left;
            const std::uint64_t used = last ? static_cast<std::uint64_t>(nth_zero(w, zeros_left)) + 1 : 64;
            const std::uint64_t ones = used == 64 ? w : (w & ((std::uint64_t{1} << used) - 1));
            const auto cnt = static_cast<std::uint64_t>(std::popcount(ones));
            if (cnt) {
                const __m512i pos8 = _mm512_maskz_compress_epi8(ones, iota8);  // bit positions of the ones
                for (std::uint64_t h = 0; h < cnt; h += 16) {
                    const auto nl = static_cast<unsigned>(std::min<std::uint64_t>(16, cnt - h));
                    const __m128i p8 = detail::quarter(pos8, static_cast<unsigned>(h / 16));
                    const std::uint64_t j0 = j + h;
                    // bucket of the one at window bit p with row index j0 + l: (pos − start + p) − (j0 + l)
                    const __m512i bucket = _mm512_sub_epi32(
                        _mm512_add_epi32(_mm512_cvtepu8_epi32(p8), _mm512_set1_epi32(static_cast<int>(pos_ - start - j0))),
                        iota32);
                    const __mmask16 m = static_cast<__mmask16>((1u << nl) - 1u);
                    const bool full = k_ + 16 <= a_.values.size();
                    const __m128i lc = full ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(a_.low_cols.data() + k_))
                                            : _mm_maskz_loadu_epi8(m, a_.low_cols.data() + k_);
                    const __m256i vb = full ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a_.values.data() + k_))
                                            : _mm256_maskz_loadu_epi16(m, a_.values.data() + k_);
                    __m512i col = _mm512_add_epi32(_mm512_slli_epi32(bucket, 8), _mm512_cvtepu8_epi32(lc));
                    __m512 val = bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(vb), 16))
                                      : _mm512_cvtph_ps(vb);
                    __mmask16 mr = m;
                    const auto r = static_cast<unsigned>(j0 % 16);
                    if (r) {  // lane l holds weight j0 + l; move it to lane (j0 + l) % 16
                        const __m512i idx = _mm512_and_si512(_mm512_sub_epi32(iota32, _mm512_set1_epi32(static_cast<int>(r))),
                                                             _mm512_set1_epi32(15));
                        col = _mm512_permutexvar_epi32(idx, col);
                        val = _mm512_permutexvar_ps(idx, val);
                        mr = static_cast<__mmask16>(((static_cast<unsigned>(m) << r) | (static_cast<unsigned>(m) >> (16 - r))) & 0xffffu);
                    }
                    g(mr, col, val);
                    k_ += nl;
                }
                j += cnt;
            }
            pos_ += used;
            if (last) return;
            zeros_left -= nz;
        }
    }
#endif

private:
#if defined(__BMI2__)
    /// Bit index of the n-th (1-based) zero of w; n ≤ number of zeros (one pdep).
    static int nth_zero(std::uint64_t w, std::uint64_t n) {
        return std::countr_zero(_pdep_u64(std::uint64_t{1} << (n - 1), ~w));
    }
#else
    /// Bit index of the n-th (1-based) zero of w; n ≤ number of zeros.
    static int nth_zero(std::uint64_t w, std::uint64_t n) {
        std::uint64_t z = ~w;
        for (std::uint64_t i = 1; i < n; ++i) z &= z - 1;
        return std::countr_zero(z);
    }
#endif
    [[nodiscard]] std::uint64_t read64(std::uint64_t pos) const {
        const std::size_t i = static_cast<std::size_t>(pos >> 6);
        const unsigned sh = static_cast<unsigned>(pos & 63);
        std::uint64_t w = a_.bitmap[i] >> sh;
        if (sh != 0 && i + 1 < a_.bitmap.size()) w |= a_.bitmap[i + 1] << (64 - sh);
        return w;
    }

    kept_arrays a_;
    index_t buckets_ = 0;
    std::size_t k_ = 0;
    std::uint64_t pos_ = 0;
};

#if TCQ_KEPT_AVX512
/// Widest matrix decode_kept_chunk handles: its keys (< 64·buckets·256)
/// must stay below 2^31.
inline constexpr index_t kept_chunk_max_cols = index_t{1} << 24;

/// Decodes the kept weights of the 64-row chunk that starts at row0 (a
/// multiple of 64) in one sweep over its bitmap, 64 bits per step, with no
/// per-row walk. Entry i: key[i] = (zeros of the chunk's bitmap before it)·256
/// + its low column byte, val[i] its value as float. Row row0 + t owns the
/// entries with t·B ≤ key < (t+1)·B, B = 256·buckets, and its column is
/// key − t·B. Writes 16 sentinels (key INT32_MAX, value 0) after the last
/// entry; key and val need room for count + 32 entries. Returns the count.
/// Trusts its input (validated arrays; cols ≤ kept_chunk_max_cols).
inline std::size_t decode_kept_chunk(const kept_arrays& a, index_t row0, bool bf16, std::int32_t* key,
                                        float* val) {
    const __m512i sentinel = _mm512_set1_epi32(0x7fffffff);
    if (a.values.empty()) {
        _mm512_storeu_si512(key, sentinel);
        _mm512_storeu_ps(val, _mm512_setzero_ps());
        return 0;
    }
    const std::size_t s = static_cast<std::size_t>(row0 / cost::skip_rows) * 2, k = a.values.size();
    const std::uint64_t nbits = static_cast<std::uint64_t>(a.bitmap.size()) * 64;  // padding bits are 0
    const std::size_t k0 = a.skips[s];
    const std::uint64_t p0 = a.skips[s + 1];
    const std::uint64_t p1 = s + 2 < a.skips.size() ? a.skips[s + 3] : nbits;
    const __m512i iota8 = _mm512_set_epi8(63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45,
                                          44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26,
                                          25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6,
                                          5, 4, 3, 2, 1, 0);
    const __m512i iota32 = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const std::uint64_t* bm = a.bitmap.data();
    const std::size_t words = a.bitmap.size();
    std::size_t i = 0;  // entries decoded
    for (std::uint64_t q = 0; q < p1 - p0; q += 64) {
        const std::uint64_t pos = p0 + q;
        const std::size_t wi = static_cast<std::size_t>(pos >> 6);
        const unsigned sh = static_cast<unsigned>(pos & 63);
        std::uint64_t w = bm[wi] >> sh;
        if (sh != 0 && wi + 1 < words) w |= bm[wi + 1] << (64 - sh);
        if (p1 - pos < 64) w = _bzhi_u64(w, static_cast<unsigned>(p1 - pos));  // the next chunk's bits
        const auto c = static_cast<unsigned>(std::popcount(w));
        if (!c) continue;
        const __m512i pos8 = _mm512_maskz_compress_epi8(w, iota8);  // window bits of the ones
        for (unsigned h = 0; h < c; h += 16) {
            const __m128i p8 = detail::quarter(pos8, h / 16);
            const std::size_t e = i + h, g = k0 + e;  // entry, global kept index
            // zeros before the one at window bit p with entry e + l: q + p − (e + l)
            const __m512i zb = _mm512_sub_epi32(
                _mm512_add_epi32(_mm512_cvtepu8_epi32(p8), _mm512_set1_epi32(static_cast<int>(q - e))), iota32);
            const bool full = g + 16 <= k;
            const __mmask16 m = full ? __mmask16(0xffff) : static_cast<__mmask16>(_bzhi_u32(0xffffu, static_cast<unsigned>(k - g)));
            const __m128i lc = full ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.low_cols.data() + g))
                                    : _mm_maskz_loadu_epi8(m, a.low_cols.data() + g);
            const __m256i vb = full ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.values.data() + g))
                                    : _mm256_maskz_loadu_epi16(m, a.values.data() + g);
            _mm512_storeu_si512(key + e, _mm512_add_epi32(_mm512_slli_epi32(zb, 8), _mm512_cvtepu8_epi32(lc)));
            _mm512_storeu_ps(val + e, bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(vb), 16))
                                           : _mm512_cvtph_ps(vb));
        }
        i += c;
    }
    _mm512_storeu_si512(key + i, sentinel);
    _mm512_storeu_ps(val + i, _mm512_setzero_ps());
    return i;
}
#endif

/// Owning kept arrays, as built by build_kept.
struct kept_storage {
    std::vector<std::uint16_t> values;   ///< k 16-bit values (fp16/bf16 bits), row-major order
    std::vector<std::uint8_t> low_cols;  ///< k low column bytes (column mod 256)
    std::vector<std::uint64_t> bitmap;   ///< unary bucket bitmap, ceil((k + rows·buckets)/64) words
    std::vector<std::uint32_t> skips;    ///< 2 per 64 rows: (first index, bit offset)
    /// Non-owning view of the arrays.
    [[nodiscard]] kept_arrays view() const { return {values, low_cols, bitmap, skips}; }
};

/// Total bitmap bits of k kept weights in a rows × cols matrix (0 when k = 0).
inline std::uint64_t kept_bitmap_bits(index_t k, index_t rows, index_t cols) {
    if (k == 0) return 0;
    return static_cast<std::uint64_t>(k) + static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(kept_buckets(cols));
}

/// Encodes kept weights given as sorted, distinct row-major flat indices
/// (r·cols + c) and their 16-bit values. Throws if offsets exceed 32 bits.
inline kept_storage build_kept(index_t rows, index_t cols, std::span<const index_t> flat,
                                      std::span<const std::uint16_t> values) {
    require(flat.size() == values.size(), "build_kept: ", flat.size(), " positions but ", values.size(),
            " values");
    kept_storage s;
    const index_t k = static_cast<index_t>(flat.size());
    if (k == 0) return s;
    const std::uint64_t nbits = kept_bitmap_bits(k, rows, cols);
    require(nbits < (std::uint64_t{1} << 32), "build_kept: bitmap of ", nbits,
            " bits exceeds the 32-bit offsets of the format (", rows, "x", cols, ", ", k, " kept)");
    s.values.assign(values.begin(), values.end());
    s.low_cols.resize(static_cast<std::size_t>(k));
    s.bitmap.assign(static_cast<std::size_t>((nbits + 63) / 64), 0);
    s.skips.resize(static_cast<std::size_t>(kept_skips(rows)) * 2);
    const index_t buckets = kept_buckets(cols);
    std::uint64_t pos = 0;
    std::size_t i = 0;
    for (index_t r = 0; r < rows; ++r) {
        if (r % cost::skip_rows == 0) {
            s.skips[static_cast<std::size_t>(r / cost::skip_rows) * 2] = static_cast<std::uint32_t>(i);
            s.skips[static_cast<std::size_t>(r / cost::skip_rows) * 2 + 1] = static_cast<std::uint32_t>(pos);
        }
        for (index_t b = 0; b < buckets; ++b) {
            const index_t end = r * cols + std::min(cols, (b + 1) * cost::col_bucket);
            for (; i < flat.size() && flat[i] < end; ++i) {
                require(flat[i] >= r * cols + b * cost::col_bucket && (i == 0 || flat[i] > flat[i - 1]),
                        "build_kept: positions are not sorted and distinct at entry ", i);
                s.low_cols[i] = static_cast<std::uint8_t>((flat[i] - r * cols) % cost::col_bucket);
                s.bitmap[pos >> 6] |= std::uint64_t{1} << (pos & 63);
                ++pos;
            }
            ++pos;  // the bucket's terminating 0
        }
    }
    require(i == flat.size(), "build_kept: position ", i < flat.size() ? flat[i] : 0,
            " lies outside the ", rows, "x", cols, " matrix");
    return s;
}

/// Checks every size, index bound and the bitmap of kept arrays for k kept
/// weights in a rows × cols matrix; values must be finite. Throws naming `what`.
inline void validate_kept(const kept_arrays& a, index_t rows, index_t cols, index_t k, value_format fmt,
                              std::string_view what) {
    if (k == 0) {
        require(a.values.empty() && a.low_cols.empty() && a.bitmap.empty() && a.skips.empty(), what,
                ": kept arrays present but the kept count is 0");
        return;
    }
    const std::uint64_t nbits = kept_bitmap_bits(k, rows, cols);
    require(nbits < (std::uint64_t{1} << 32), what, ": kept bitmap of ", nbits, " bits exceeds 32-bit offsets");
    const auto uk = static_cast<std::size_t>(k);
    require(a.values.size() == uk, what, ": ", a.values.size(), " kept values, expected ", k);
    require(a.low_cols.size() == uk, what, ": ", a.low_cols.size(), " kept columns, expected ", k);
    require(a.bitmap.size() == (nbits + 63) / 64, what, ": kept bitmap has ", a.bitmap.size(),
            " words, expected ", (nbits + 63) / 64);
    require(a.skips.size() == static_cast<std::size_t>(kept_skips(rows)) * 2, what, ": ", a.skips.size(),
            " kept skip words, expected ", kept_skips(rows) * 2);
    for (std::size_t i = 0; i < uk; ++i)
        require(std::isfinite(decode_value(a.values[i], fmt)), what, ": kept value ", i, " (bits 0x",
                std::hex, a.values[i], std::dec, ") is not finite");
    const index_t buckets = kept_buckets(cols);
    std::uint64_t pos = 0;
    std::size_t i = 0;
    for (index_t r = 0; r < rows; ++r) {
        if (r % cost::skip_rows == 0) {
            const auto s = static_cast<std::size_t>(r / cost::skip_rows) * 2;
            require(a.skips[s] == i && a.skips[s + 1] == pos, what, ": kept skip entry ", s / 2, " is (",
                    a.skips[s], ", ", a.skips[s + 1], "), the bitmap gives (", i, ", ", pos, ")");
        }
        index_t prev = -1;
        for (index_t b = 0; b < buckets; ++b) {
            for (;;) {
                require(pos < nbits, what, ": kept bitmap ends inside row ", r);
                const unsigned bit = stream_bit(a.bitmap.data(), pos++);
                if (!bit) break;
                require(i < uk, what, ": kept bitmap marks more than ", k, " kept weights (row ", r, ")");
                const index_t c = b * cost::col_bucket + a.low_cols[i];
                require(c < cols, what, ": kept weight ", i, " in row ", r, " has column ", c, " >= cols ", cols);
                require(c > prev, what, ": kept weight ", i, " in row ", r, " has column ", c,
                        ", not above the previous ", prev);
                prev = c;
                ++i;
            }
        }
    }
    require(i == uk && pos == nbits, what, ": kept bitmap holds ", i, " kept weights in ", pos,
            " bits, expected ", k, " in ", nbits);
    if (nbits % 64)
        require((a.bitmap.back() >> (nbits % 64)) == 0, what, ": kept bitmap padding bits are not zero");
}

}  // namespace tcq
