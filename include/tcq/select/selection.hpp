#pragma once
/// @file selection.hpp
/// @brief The result of a top-k selection: one mask per matrix plus thresholds.

#include <optional>
#include <vector>

#include "tcq/core/mask.hpp"
#include "tcq/select/budget.hpp"
#include "tcq/select/order.hpp"

namespace tcq {

/// Weights chosen to stay in 16-bit.
struct selection {
    select_scope scope = select_scope::global;  ///< scope the selection was made in
    /// One mask per matrix, in input order; a set bit keeps the weight in 16-bit.
    std::vector<mask> masks;
    /// Last selected weight per scope unit: global → 1 entry; per_matrix → one
    /// per matrix; per_row → one per row, matrix by matrix, rows in order.
    std::vector<threshold> thresholds;
    index_t selected = 0;  ///< weights selected, Σ k
    index_t scored = 0;    ///< weights scored, N
    /// Exact packed storage (core/storage_cost.hpp) of the selection, for bits_per_weight budgets.
    std::optional<storage_cost> bits;

    /// Selected weights of each matrix.
    [[nodiscard]] std::vector<index_t> kept_per_matrix() const {
        std::vector<index_t> k;
        k.reserve(masks.size());
        for (const auto& m : masks) k.push_back(m.count());
        return k;
    }
};

}  // namespace tcq
