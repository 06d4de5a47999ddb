#pragma once
/// @file data_parallel.hpp
/// @brief tcq::distribution over MPI: rank r calibrates on its contiguous
/// whole chunks of samples; partial sums are reduced over the fixed chunk
/// tree at rank 0 and broadcast, so every rank continues with the same bits
/// as a single process (docs/distributed.md).

#include <string>
#include <utility>
#include <vector>

#include "tcq/mpi/codec.hpp"
#include "tcq/mpi/communicator.hpp"
#include "tcq/mpi/reduce.hpp"
#include "tcq/pipeline/distribution.hpp"

namespace tcq::mpi {

/// Data-parallel split of `total` samples in chunks of `chunk` over the ranks of `comm`.
class data_parallel final : public distribution {
public:
    /// Requires at least one chunk per rank (a rank without samples has no model input).
    data_parallel(communicator& comm, index_t total, index_t chunk) : comm_(comm), plan_{total, chunk} {
        plan_.validate();
        require(plan_.chunks() >= comm.size(), "data_parallel: ", plan_.chunks(), " chunks of ", chunk, " samples for ",
                comm.size(), " ranks; use fewer ranks or a smaller chunk");
        range_ = rank_samples(plan_, comm.rank(), comm.size());
    }

    /// This rank's samples [first, end).
    [[nodiscard]] std::pair<index_t, index_t> samples() const noexcept { return range_; }
    [[nodiscard]] index_t total_samples() const override { return plan_.samples; }
    [[nodiscard]] index_t first_sample() const override { return range_.first; }

    [[nodiscard]] grad_accumulator combine(index_t chunks, std::vector<tree_node<grad_accumulator>> nodes,
                                           const std::string& name) override {
        const grad_codec codec{name};
        return all_reduce<grad_accumulator>(chunks, nodes, codec, detail::cat("gradient sums of '", name, "'"));
    }
    [[nodiscard]] hessian_accumulator<float> combine(index_t chunks,
                                                     std::vector<tree_node<hessian_accumulator<float>>> nodes) override {
        return all_reduce<hessian_accumulator<float>>(chunks, nodes, hessian_codec<float>{}, "Hessian");
    }
    [[nodiscard]] hessian_accumulator<double> combine(
        index_t chunks, std::vector<tree_node<hessian_accumulator<double>>> nodes) override {
        return all_reduce<hessian_accumulator<double>>(chunks, nodes, hessian_codec<double>{}, "Hessian");
    }

private:
    // Tree root at rank 0, then broadcast: every rank gets the same bits.
    template <class P, class Codec>
    P all_reduce(index_t chunks, const std::vector<tree_node<P>>& nodes, const Codec& codec, const std::string& what) {
        auto root = reduce_tree<P>(comm_, 0, chunks, std::span<const tree_node<P>>(nodes), codec, what + " reduction");
        std::vector<std::uint8_t> bytes;
        if (root) {
            byte_writer w;
            codec.put(w, *root);
            bytes = std::move(w.out);
        }
        comm_.bcast_bytes(bytes, 0, what + " broadcast");
        if (root) return std::move(*root);
        byte_reader r{bytes, 0, what + " broadcast"};
        P out = codec.get(r);
        r.done();
        return out;
    }

    communicator& comm_;
    chunk_plan plan_;
    std::pair<index_t, index_t> range_;
};

}  // namespace tcq::mpi
