#pragma once
/// @file order.hpp
/// @brief The selection order of scored weights and the threshold it induces.
///
/// Weights are ranked by score, highest first; ties go to the lower matrix
/// index, then the lower flat index r·cols + c (docs/algorithms.md §1 step 4). The order is
/// total, so "the top k" is one well-defined set, whatever the algorithm.

#include <bit>
#include <cstdint>
#include <limits>

#include "tcq/core/config.hpp"

namespace tcq {

/// Order-preserving 31-bit key of a score s ≥ 0 (finite): its IEEE bits with
/// the sign cleared, so −0 and +0 share key 0 and a > b ⇔ key(a) > key(b).
[[nodiscard]] inline std::uint32_t score_key(float s) noexcept {
    return std::bit_cast<std::uint32_t>(s) & 0x7fffffffu;
}
/// The (non-negative) score of a key.
[[nodiscard]] inline float key_score(std::uint32_t key) noexcept { return std::bit_cast<float>(key); }

/// One weight's place in the selection order.
struct ranked_weight {
    std::uint32_t key = 0;     ///< score_key of its score
    std::uint32_t matrix = 0;  ///< matrix index
    std::int64_t flat = 0;     ///< r·cols + c
};

/// True if `a` is selected before `b`: higher key, then lower matrix, then lower flat.
[[nodiscard]] constexpr bool precedes(const ranked_weight& a, const ranked_weight& b) noexcept {
    if (a.key != b.key) return a.key > b.key;
    if (a.matrix != b.matrix) return a.matrix < b.matrix;
    return a.flat < b.flat;
}

/// The last weight selected in one scope (global, a matrix, or a row): a
/// weight (s, m, f) of the scope is selected iff it does not come after it.
struct threshold {
    index_t k = 0;  ///< weights selected in the scope; 0: none (the fields below are then unset)
    float score = std::numeric_limits<float>::infinity();  ///< score of the last selected weight
    index_t matrix = -1;  ///< its matrix index
    index_t flat = -1;    ///< its flat index

    /// True if the weight (score s, matrix m, flat f) of this scope is selected.
    [[nodiscard]] bool admits(float s, index_t m, index_t f) const noexcept {
        if (k == 0) return false;
        const ranked_weight w{score_key(s), static_cast<std::uint32_t>(m), f};
        const ranked_weight t{score_key(score), static_cast<std::uint32_t>(matrix), flat};
        return !precedes(t, w);
    }
    /// Field-wise equality.
    friend bool operator==(const threshold&, const threshold&) = default;
};

}  // namespace tcq
