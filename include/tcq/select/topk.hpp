#pragma once
/// @file topk.hpp
/// @brief Exact in-memory top-k selection: global, per matrix or per row.
///
/// Runs the same exact two-pass engine as select_streaming (histogram over
/// the score bits, then boundary resolution), but each pass runs over all
/// matrices at once (one parallel run per pass); both give bit-identical masks; ties go to the lower matrix index, then the
/// lower flat index. Scalar twin (full sort): tcq/reference/select.hpp.

#include <span>
#include <string>
#include <vector>

#include "tcq/select/streaming.hpp"

namespace tcq {

/// A named matrix of scores (finite, ≥ 0).
struct scored_matrix {
    std::string name;                 ///< for error messages
    matrix_view<const float> scores;  ///< finite, ≥ 0
};

/// Exact top-k selection over `mats` under budget `b` in `scope`.
/// Throws tcq::error on invalid scores (naming matrix and position), an
/// impossible budget, or too many matrices (> 2^32 − 1).
inline selection select_topk(std::span<const scored_matrix> mats, const budget& b,
                             select_scope scope = select_scope::global, const exec_policy& pol = seq()) {
    std::vector<matrix_shape> shapes;
    std::vector<matrix_view<const float>> views;
    shapes.reserve(mats.size());
    for (const auto& m : mats) {
        shapes.push_back({m.name, m.scores.rows(), m.scores.cols()});
        views.push_back(m.scores);
    }
    return detail::select_impl(
        shapes, [&](index_t m, int) { return mats[static_cast<std::size_t>(m)].scores; }, b, scope, views, pol);
}

/// Exact top-k of a single matrix (global and per_matrix coincide).
inline selection select_topk(matrix_view<const float> scores, const budget& b, select_scope scope = select_scope::global,
                             const exec_policy& pol = seq()) {
    const scored_matrix m{"scores", scores};
    return select_topk(std::span<const scored_matrix>(&m, 1), b, scope, pol);
}

}  // namespace tcq
