#pragma once
/// @file reduce.hpp
/// @brief Deterministic reductions of chunked accumulators over ranks:
/// bit-identical to one process for any rank count (docs/algorithms.md,
/// "Chunked accumulation"; docs/distributed.md).
///
/// Rank r owns chunks rank_chunks(plan, r) (whole, contiguous, in rank
/// order) and reduces them locally to the maximal tree nodes of its range
/// (chunked_sum::finish). The root gathers every rank's nodes, which tile
/// [0, chunks) in rank order, and finishes the same fixed tree
/// (reduce_nodes). The owner-sharded variant does this once per layer to the
/// layer's owner, so after it each rank keeps only the layers it owns.

#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tcq/core/chunk_tree.hpp"
#include "tcq/mpi/codec.hpp"
#include "tcq/mpi/communicator.hpp"

namespace tcq::mpi {

/// Chunks [begin, end) of `plan` owned by `rank` of `ranks`.
[[nodiscard]] inline std::pair<index_t, index_t> rank_chunks(const chunk_plan& plan, int rank, int ranks) {
    plan.validate();
    return part_range(plan.chunks(), ranks, rank);
}
/// Samples [begin, end) owned by `rank` of `ranks` (whole chunks).
[[nodiscard]] inline std::pair<index_t, index_t> rank_samples(const chunk_plan& plan, int rank, int ranks) {
    const auto [c0, c1] = rank_chunks(plan, rank, ranks);
    return {plan.first_sample(c0), plan.first_sample(c1)};
}

/// Gathers every rank's tree nodes at `root` and returns the tree's root
/// there (nullopt elsewhere). `chunks` is the plan's chunk count (≥ 1).
template <class P, class Codec, class Combine = merge_combine>
[[nodiscard]] std::optional<P> reduce_tree(communicator& comm, int root, index_t chunks,
                                           std::span<const tree_node<P>> mine, const Codec& codec, std::string_view what,
                                           Combine combine = {}) {
    const auto bytes = encode_nodes<P>(mine, codec);
    auto all = comm.gather_bytes(bytes, root, what);
    if (comm.rank() != root) return std::nullopt;
    tree_reducer<P, Combine> t(chunks, std::move(combine));
    for (int r = 0; r < comm.size(); ++r) {
        auto nodes = decode_nodes<P>(all[static_cast<std::size_t>(r)], codec, detail::cat(what, " from rank ", r));
        all[static_cast<std::size_t>(r)] = {};
        for (auto& n : nodes) t.push(n.lo, n.hi, std::move(n.value));
    }
    return std::move(t.root());
}

/// The Hessian of all samples at `root` (nullopt elsewhere), from each
/// rank's nodes of its own chunks.
template <class T>
[[nodiscard]] std::optional<hessian_accumulator<T>> reduce_hessian(
    communicator& comm, int root, index_t chunks, std::span<const tree_node<hessian_accumulator<T>>> mine,
    std::string_view what = "Hessian reduction") {
    return reduce_tree<hessian_accumulator<T>>(comm, root, chunks, mine, hessian_codec<T>{}, what);
}

/// Gradient sums of all samples at `root` (nullopt elsewhere).
[[nodiscard]] inline std::optional<grad_accumulator> reduce_grads(communicator& comm, int root, index_t chunks,
                                                                  std::span<const tree_node<grad_accumulator>> mine,
                                                                  std::string name = "grad_accumulator") {
    const grad_codec codec{name};
    return reduce_tree<grad_accumulator>(comm, root, chunks, mine, codec, detail::cat("gradient reduction of '", name, "'"));
}

/// Reduce-scatter by owner: per_layer[L] holds this rank's nodes of layer L;
/// layer L is reduced to rank owner[L]. Returns, per layer, the total at its
/// owner and nullopt elsewhere. Each layer's local nodes are freed once sent,
/// so after the call a rank holds only its owned layers.
template <class P, class Codec>
[[nodiscard]] std::vector<std::optional<P>> reduce_scatter_tree(communicator& comm, std::span<const int> owner,
                                                                index_t chunks,
                                                                std::vector<std::vector<tree_node<P>>>& per_layer,
                                                                const Codec& codec, std::string_view what) {
    require(owner.size() == per_layer.size(), "reduce_scatter: ", owner.size(), " owners for ", per_layer.size(),
            " layers");
    std::vector<std::optional<P>> out(owner.size());
    for (std::size_t L = 0; L < owner.size(); ++L) {
        require(owner[L] >= 0 && owner[L] < comm.size(), "reduce_scatter: layer ", L, " has owner ", owner[L],
                " outside [0, ", comm.size(), ")");
        out[L] = reduce_tree<P>(comm, owner[L], chunks, std::span<const tree_node<P>>(per_layer[L]), codec,
                                detail::cat(what, " of layer ", L));
        per_layer[L] = {};
    }
    return out;
}

}  // namespace tcq::mpi
