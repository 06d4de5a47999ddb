#pragma once
/// @file storage_cost.hpp
/// @brief Exact storage cost of the packed format, in bits: the formulas and
/// the one result type, `storage_cost`, that the bit-budget solver (select/),
/// the packer (pack/), the tcq file writer and the tools all use.
///
/// Layout summary (full spec in docs/format.md):
///   codes    : each row packed in blocks of 64 weights, b bits each; a last
///              partial block is padded to 64.
///   stats    : per (row, group) an fp16 scale and a u8 zero (24 bits).
///   kept     : per kept weight a 16-bit value and the low 8 bits of its
///              column (24 bits); per row a unary bitmap of the high column
///              bits (one 1 per kept weight, one 0 per 256-column bucket); per 64
///              rows a skip entry of two u32 offsets (64 bits).
///   g_idx    : under act-order only, a u16 group index per column.

#include <cstdint>

#include "tcq/core/error.hpp"

namespace tcq::cost {

inline constexpr index_t code_block = 64;        ///< weights per code block
inline constexpr int stat_bits_per_group = 24;   ///< fp16 scale + u8 zero
inline constexpr int kept_value_bits = 16;    ///< fp16 or bf16
inline constexpr int kept_low_col_bits = 8;   ///< column mod 256
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
inline constexpr int kept_marginal_bits = kept_value_bits + kept_low_col_bits + 1;

/// Bits of the kept section that do not depend on k: bitmap 0s and skip entries.
inline std::uint64_t kept_fixed_bits(index_t rows, index_t cols) {
    const index_t buckets = (cols + col_bucket - 1) / col_bucket;
    const index_t skips = (rows + skip_rows - 1) / skip_rows;
    return static_cast<std::uint64_t>(rows * buckets) + static_cast<std::uint64_t>(skips) * skip_entry_bits;
}

/// Bits of k kept weights in a rows × cols matrix (exact; k = 0 costs nothing).
inline std::uint64_t kept_bits(index_t k, index_t rows, index_t cols) {
    if (k == 0) return 0;
    return static_cast<std::uint64_t>(k) * kept_marginal_bits + kept_fixed_bits(rows, cols);
}

/// Bits of the act-order group index: u16 per column when present.
inline std::uint64_t g_idx_bits(index_t cols, bool act_order) {
    return act_order ? static_cast<std::uint64_t>(cols) * 16u : 0u;
}

}  // namespace tcq::cost

namespace tcq {

/// Bits of one or more packed matrices, by kind. Costs of several matrices add
/// with `+`; the average over all their weights is per_weight().
struct storage_cost {
    std::uint64_t codes = 0;     ///< b-bit codes (padded to 64-weight blocks)
    std::uint64_t stats = 0;     ///< fp16 scales + u8 zeros
    std::uint64_t kept = 0;  ///< kept weights: values, low columns, bitmap, skip entries
    std::uint64_t g_idx = 0;     ///< act-order group indices
    std::uint64_t weights = 0;   ///< weights covered (rows × cols summed)

    /// Everything but the kept weights: codes + statistics + g_idx.
    [[nodiscard]] std::uint64_t base() const { return codes + stats + g_idx; }
    /// Sum of all kinds.
    [[nodiscard]] std::uint64_t total() const { return base() + kept; }
    /// Average bits per weight (0 when there are no weights).
    [[nodiscard]] double per_weight() const { return ratio(total()); }
    /// Per-weight share of a count: one kind of bits (e.g. `c.stats`), or kept weights.
    [[nodiscard]] double ratio(std::uint64_t bits) const {
        return weights ? static_cast<double>(bits) / static_cast<double>(weights) : 0.0;
    }
    /// Adds another cost, kind by kind.
    storage_cost& operator+=(const storage_cost& o) {
        codes += o.codes;
        stats += o.stats;
        kept += o.kept;
        g_idx += o.g_idx;
        weights += o.weights;
        return *this;
    }
    /// Sum of two costs.
    [[nodiscard]] friend storage_cost operator+(storage_cost a, const storage_cost& b) { return a += b; }
    /// Equal kind by kind.
    friend bool operator==(const storage_cost&, const storage_cost&) = default;
};

/// Exact cost of a rows × cols matrix at `bits` per code with `groups`
/// scale/zero pairs per row, `kept` 16-bit weights, and g_idx under act-order.
inline storage_cost matrix_cost(index_t rows, index_t cols, int bits, index_t groups, index_t kept, bool act_order) {
    storage_cost c;
    c.codes = cost::code_bits(rows, cols, bits);
    c.stats = cost::stat_bits(rows, groups);
    c.kept = cost::kept_bits(kept, rows, cols);
    c.g_idx = cost::g_idx_bits(cols, act_order);
    c.weights = static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols);
    return c;
}

}  // namespace tcq
