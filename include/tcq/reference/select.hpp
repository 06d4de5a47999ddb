#pragma once
/// @file reference/select.hpp
/// @brief Scalar twin of select/topk.hpp: the top k by a full sort of every
/// (score, matrix, flat) in the selection order. O(N log N) time and memory;
/// the definition the histogram engine is tested against.

#include <algorithm>
#include <span>
#include <vector>

#include "tcq/core/matrix_view.hpp"
#include "tcq/select/budget.hpp"
#include "tcq/select/order.hpp"
#include "tcq/select/selection.hpp"

namespace tcq::reference {

namespace detail {
/// Top k of `ws` by full sort; sets mask bits and returns the threshold.
inline threshold take_top(std::vector<ranked_weight>& ws, index_t k, std::span<mask> masks) {
    require(k >= 0 && k <= static_cast<index_t>(ws.size()), "reference::select: k ", k, " outside [0, ", ws.size(), "]");
    std::sort(ws.begin(), ws.end(), precedes);
    threshold t;
    for (index_t i = 0; i < k; ++i) {
        const auto& w = ws[static_cast<std::size_t>(i)];
        masks[w.matrix].set(w.flat);
        t = {k, key_score(w.key), static_cast<index_t>(w.matrix), w.flat};
    }
    return t;
}
}  // namespace detail

/// Brute-force selection with the same budgets, scopes and results as
/// tcq::select_topk (scores are validated: finite, ≥ 0).
inline selection select_topk(std::span<const matrix_view<const float>> mats, const budget& b,
                             select_scope scope = select_scope::global) {
    std::vector<matrix_shape> shapes;
    for (std::size_t m = 0; m < mats.size(); ++m) shapes.push_back({std::to_string(m), mats[m].rows(), mats[m].cols()});
    const auto ks = resolve_budget(b, scope, shapes);
    selection out;
    out.scope = scope;
    for (const auto& v : mats) {
        out.masks.emplace_back(v.rows(), v.cols());
        out.scored += v.size();
    }
    auto collect = [&](std::size_t m, index_t r0, index_t r1) {
        std::vector<ranked_weight> ws;
        const auto& v = mats[m];
        for (index_t r = r0; r < r1; ++r)
            for (index_t c = 0; c < v.cols(); ++c) {
                const float s = v(r, c);
                require(s >= 0.f && std::isfinite(s), "reference::select_topk: invalid score ", s, " at (", r, ", ", c,
                        ") of matrix ", m);
                ws.push_back({score_key(s), static_cast<std::uint32_t>(m), r * v.cols() + c});
            }
        return ws;
    };
    if (scope == select_scope::global) {
        std::vector<ranked_weight> all;
        for (std::size_t m = 0; m < mats.size(); ++m) {
            auto ws = collect(m, 0, mats[m].rows());
            all.insert(all.end(), ws.begin(), ws.end());
        }
        out.thresholds.push_back(detail::take_top(all, ks[0], out.masks));
    } else {
        for (std::size_t m = 0; m < mats.size(); ++m) {
            if (scope == select_scope::per_matrix) {
                auto ws = collect(m, 0, mats[m].rows());
                out.thresholds.push_back(detail::take_top(ws, ks[m], out.masks));
            } else {
                for (index_t r = 0; r < mats[m].rows(); ++r) {
                    auto ws = collect(m, r, r + 1);
                    out.thresholds.push_back(detail::take_top(ws, ks[m], out.masks));
                }
            }
        }
    }
    for (const auto& mk : out.masks) out.selected += mk.count();
    if (b.type() == budget::kind::bits_per_weight)
        out.bits = storage_bits(shapes, out.kept_per_matrix(), b.format(), b.act_order());
    return out;
}

}  // namespace tcq::reference
