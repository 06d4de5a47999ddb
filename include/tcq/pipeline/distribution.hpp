#pragma once
/// @file distribution.hpp
/// @brief How one pipeline run is split over processes, seen from the
/// pipeline (MPI-free; tcq/mpi/data_parallel.hpp implements it over MPI).
///
/// This process's model_adapter holds the contiguous samples
/// [first_sample(), first_sample() + samples()) of total_samples(); they are
/// whole chunks of the run's chunk plan (docs/algorithms.md, "Chunked
/// accumulation"). The pipeline accumulates their partial sums as tree nodes
/// and hands them to combine(), which returns the sum over all processes, the
/// same on every process and bit-identical to one process holding every sample.

#include <string>
#include <vector>

#include "tcq/core/chunk_tree.hpp"
#include "tcq/gptq/hessian.hpp"
#include "tcq/saliency/accumulator.hpp"

namespace tcq {

/// A pipeline run's split over processes (see file doc).
class distribution {
public:
    virtual ~distribution() = default;
    /// Samples over all processes.
    [[nodiscard]] virtual index_t total_samples() const = 0;
    /// Global index of this process's first sample.
    [[nodiscard]] virtual index_t first_sample() const = 0;
    /// Σ|g|, Σg² of one layer over all processes, from this process's nodes.
    [[nodiscard]] virtual grad_accumulator combine(index_t chunks, std::vector<tree_node<grad_accumulator>> nodes,
                                                   const std::string& name) = 0;
    /// One Hessian over all processes (fp32 accumulation).
    [[nodiscard]] virtual hessian_accumulator<float> combine(index_t chunks,
                                                             std::vector<tree_node<hessian_accumulator<float>>> nodes) = 0;
    /// One Hessian over all processes (fp64 accumulation).
    [[nodiscard]] virtual hessian_accumulator<double> combine(
        index_t chunks, std::vector<tree_node<hessian_accumulator<double>>> nodes) = 0;
};

}  // namespace tcq
