#pragma once
/// @file cost.hpp
/// @brief Exact storage cost of the packed format, in bits. The one place that
/// both the bit-budget solver (select/) and the packer (pack/) use.
///
/// Layout summary (full spec in docs/format.md):
///   codes    : each row packed in blocks of 64 weights, b bits each; a last
///              partial block is padded to 64.
///   stats    : per (row, group) an fp16 scale and a u8 zero (24 bits).
///   outliers : per kept weight a 16-bit value and the low 8 bits of its
///              column (24 bits); per row a unary bitmap of the high column
///              bits (one 1 per outlier, one 0 per 256-column bucket); per 64
///              rows a skip entry of two u32 offsets (64 bits).
///   g_idx    : under act-order only, a u16 group index per column.

#include <cstdint>

#include "tcq/core/error.hpp"

namespace tcq::cost {

inline constexpr index_t code_block = 64;        ///< weights per code block
inline constexpr int stat_bits_per_group = 24;   ///< fp16 scale + u8 zero
inline constexpr int outlier_value_bits = 16;    ///< fp16 or bf16
inline constexpr int outlier_low_col_bits = 8;   ///< column mod 256
inline constexpr index_t col_bucket = 256;       ///< columns per high-bits bucket
inline constexpr index_t skip_rows = 64;         ///< rows per skip entry
inline constexpr int skip_entry_bits = 64;       ///< two u32 offsets

/// Bits of the codes of a rows × cols matrix at `bits` per weight.
inline std::uint64_t code_bits(index_t rows, index_t cols, int bits) {
    const index_t padded = (cols + code_block - 1) / code_block * code_block;
    return static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(padded) * static_cast<std::uint64_t>(bits);
}

/// Bits of the grid statistics: rows × groups × 24.
inline std::uint64_t stat_bits(index_t rows, index_t groups) {
    return static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(groups) * stat_bits_per_group;
}

/// Bits per kept weight that grow with their number: value + low column + one bitmap 1.
inline constexpr int outlier_marginal_bits = outlier_value_bits + outlier_low_col_bits + 1;

/// Bits of the outlier section that do not depend on k: bitmap 0s and skip entries.
inline std::uint64_t outlier_fixed_bits(index_t rows, index_t cols) {
    const index_t buckets = (cols + col_bucket - 1) / col_bucket;
    const index_t skips = (rows + skip_rows - 1) / skip_rows;
    return static_cast<std::uint64_t>(rows * buckets) + static_cast<std::uint64_t>(skips) * skip_entry_bits;
}

/// Bits of k kept weights in a rows × cols matrix (exact; k = 0 costs nothing).
inline std::uint64_t outlier_bits(index_t k, index_t rows, index_t cols) {
    if (k == 0) return 0;
    return static_cast<std::uint64_t>(k) * outlier_marginal_bits + outlier_fixed_bits(rows, cols);
}

/// Bits of the act-order group index: u16 per column when present.
inline std::uint64_t g_idx_bits(index_t cols, bool act_order) {
    return act_order ? static_cast<std::uint64_t>(cols) * 16u : 0u;
}

}  // namespace tcq::cost
