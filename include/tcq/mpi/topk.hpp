#pragma once
/// @file topk.hpp
/// @brief Exact top-k over matrices spread across ranks: masks and the bit
/// budget identical to one select_topk over all of them.
///
/// Every rank scores only the matrices it owns (global matrix indices). For
/// the global scope: (1) each rank's pass-1 score_histogram is allgathered and
/// merged (exact counts, so every rank derives the same boundary cut);
/// (2) each rank runs pass 2 on its matrices; the boundary candidates are
/// allgathered and merged, and every rank resolves the same exact threshold
/// (ties by matrix index, then flat index); (3) each rank applies it to its
/// own masks. Per-matrix and per-row scopes need no communication beyond the
/// counts. The budget is resolved from all shapes on every rank alike.

#include <span>
#include <string>
#include <vector>

#include "tcq/mpi/communicator.hpp"
#include "tcq/select/streaming.hpp"

namespace tcq::mpi {

/// A selection made across ranks: masks of this rank's matrices (others are
/// 0 × 0), and the global counts and storage.
struct distributed_selection {
    selection sel;  ///< masks (owned only), thresholds, global selected/scored/bits
    /// Thresholds cover: global scope, the one global threshold; per_matrix /
    /// per_row, only this rank's matrices (others keep default entries).
    std::vector<bool> owned;  ///< owned[m]: matrix m is scored on this rank
};

/// Exact selection (see file doc). `shapes` lists every matrix of the model on
/// every rank; `owned_scores(m)` returns the scores of owned matrix m (both
/// passes read the same view). Wrap it in run_phase: a rank with an invalid
/// score throws there and every rank then fails with its message.
inline distributed_selection select_distributed(communicator& comm, std::span<const matrix_shape> shapes,
                                                std::span<const int> owner,
                                                const std::function<matrix_view<const float>(index_t)>& owned_scores,
                                                const budget& b, select_scope scope = select_scope::global,
                                                const exec_policy& pol = seq()) {
    require(owner.size() == shapes.size(), "select_distributed: ", owner.size(), " owners for ", shapes.size(),
            " matrices");
    const std::vector<index_t> ks = resolve_budget(b, scope, shapes);
    distributed_selection out;
    selection& sel = out.sel;
    sel.scope = scope;
    const auto M = static_cast<index_t>(shapes.size());
    std::vector<index_t> mine;
    std::vector<matrix_view<const float>> views;
    std::vector<std::string> names;
    for (index_t m = 0; m < M; ++m) {
        const auto& s = shapes[static_cast<std::size_t>(m)];
        sel.scored += s.size();
        const bool own = owner[static_cast<std::size_t>(m)] == comm.rank();
        out.owned.push_back(own);
        sel.masks.emplace_back(own ? s.rows : 0, own ? s.cols : 0);
        if (!own) continue;
        mine.push_back(m);
        const matrix_view<const float> v = owned_scores(m);
        require_shape(v, s.rows, s.cols, detail::cat("select_distributed: scores of '", s.name, "' (matrix ", m, ")"));
        views.push_back(v);
        names.push_back(detail::cat("select: scores of '", s.name, "'"));
    }
    const auto at = [](auto i) { return static_cast<std::size_t>(i); };
    if (scope == select_scope::global) {
        score_histogram h(ks[0]);
        for (std::size_t i = 0; i < views.size(); ++i) h.add(views[i], names[i], pol);
        const auto hs = comm.allgather_bytes(h.serialize(), "score histogram allgather");
        score_histogram all = score_histogram::deserialize(hs[0]);
        for (std::size_t r = 1; r < hs.size(); ++r) all.merge(score_histogram::deserialize(hs[r]));
        const boundary_cut cut = all.cut();
        threshold t;
        if (cut.k > 0) {
            boundary_candidates c(cut);
            for (std::size_t i = 0; i < views.size(); ++i)
                mark_above(cut, mine[i], views[i], sel.masks[at(mine[i])], c, names[i], pol);
            const auto cs = comm.allgather_bytes(c.serialize(), "boundary candidate allgather");
            boundary_candidates merged(cut);
            for (const auto& bytes : cs) merged.merge(boundary_candidates::deserialize(bytes));
            t = merged.resolve();
            c.apply(t, sel.masks);
        }
        sel.thresholds = {t};
    } else {
        for (std::size_t i = 0; i < views.size(); ++i) {
            const index_t m = mine[i];
            if (scope == select_scope::per_matrix) {
                sel.thresholds.resize(at(M));
                sel.thresholds[at(m)] = tcq::detail::select_matrix(views[i], ks[at(m)], m, sel.masks[at(m)], names[i], pol);
            } else {
                // Row thresholds are laid out matrix by matrix; only owned rows are filled.
                index_t first = 0;
                for (index_t j = 0; j < m; ++j) first += shapes[at(j)].rows;
                index_t rows = 0;
                for (const auto& s : shapes) rows += s.rows;
                sel.thresholds.resize(at(rows));
                select_rows(views[i], ks[at(m)], m, sel.masks[at(m)],
                            std::span<threshold>(sel.thresholds).subspan(at(first), at(shapes[at(m)].rows)), names[i],
                            pol);
            }
        }
    }
    std::vector<std::int64_t> kept(at(M), 0);
    for (index_t m : mine) kept[at(m)] = sel.masks[at(m)].count();
    comm.allreduce_sum(std::span<std::int64_t>(kept), "kept-count allreduce");
    for (auto k : kept) sel.selected += k;
    if (b.type() == budget::kind::bits_per_weight) {
        const std::vector<index_t> kk(kept.begin(), kept.end());
        sel.bits = storage_bits(shapes, kk, b.format(), b.act_order());
    }
    return out;
}

/// Broadcasts every matrix's mask from its owner, so every rank holds the full selection.
inline void share_masks(communicator& comm, std::span<const int> owner, std::span<const matrix_shape> shapes,
                        std::vector<mask>& masks) {
    require(masks.size() == shapes.size() && owner.size() == shapes.size(), "share_masks: sizes differ");
    for (std::size_t m = 0; m < masks.size(); ++m) {
        if (owner[m] != comm.rank()) masks[m] = mask(shapes[m].rows, shapes[m].cols);
        comm.bcast(std::span<std::uint64_t>(masks[m].words()), owner[m], "mask broadcast");
    }
}

}  // namespace tcq::mpi
