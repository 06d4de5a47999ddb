#pragma once
/// @file ownership.hpp
/// @brief Which rank solves which layer: deterministic greedy bin-packing on
/// the GPTQ cost, and the broadcast of each owner's result.
///
/// Cost of a rows × cols layer: rows·cols² (the error propagation) + cols³
/// (the Cholesky inverse). Layers go largest cost first (ties: lower index)
/// to the least-loaded rank (ties: lower rank). The plan depends only on the
/// shapes and the rank count, so every rank computes the same one locally.

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "tcq/core/error.hpp"
#include "tcq/mpi/communicator.hpp"
#include "tcq/select/budget.hpp"

namespace tcq::mpi {

/// GPTQ cost model of one layer, rows·cols² + cols³.
[[nodiscard]] inline double solve_cost(index_t rows, index_t cols) {
    const auto r = static_cast<double>(rows), c = static_cast<double>(cols);
    return r * c * c + c * c * c;
}

/// Owner rank of every layer (see file doc); ranks ≥ 1.
[[nodiscard]] inline std::vector<int> assign_owners(std::span<const matrix_shape> shapes, int ranks) {
    require(ranks >= 1, "assign_owners: ", ranks, " ranks");
    std::vector<std::size_t> order(shapes.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::vector<double> cost(shapes.size());
    for (std::size_t i = 0; i < shapes.size(); ++i) cost[i] = solve_cost(shapes[i].rows, shapes[i].cols);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return cost[a] > cost[b]; });
    std::vector<double> load(static_cast<std::size_t>(ranks), 0.0);
    std::vector<int> owner(shapes.size(), 0);
    for (std::size_t i : order) {
        const auto r = static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
        owner[i] = static_cast<int>(r);
        load[r] += cost[i];
    }
    return owner;
}

/// Layers of `rank`, ascending.
[[nodiscard]] inline std::vector<std::size_t> owned_by(std::span<const int> owner, int rank) {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < owner.size(); ++i)
        if (owner[i] == rank) out.push_back(i);
    return out;
}

/// Broadcasts item i from rank owner[i] to every rank, for every i in order:
/// afterwards every rank holds every item (bytes, encoded by the caller).
inline void share_from_owners(communicator& comm, std::span<const int> owner,
                              std::vector<std::vector<std::uint8_t>>& items, std::string_view what) {
    require(items.size() == owner.size(), "share_from_owners: ", items.size(), " items for ", owner.size(), " owners");
    for (std::size_t i = 0; i < items.size(); ++i) comm.bcast_bytes(items[i], owner[i], detail::cat(what, " ", i));
}

}  // namespace tcq::mpi
