#pragma once
/// @file tcq_file.hpp
/// @brief Writing a pipeline result as a tcq file, and running a model from
/// one: the packed linear layers replace the checkpoint's fp32 ones.

#include <filesystem>
#include <string>
#include <vector>

#include "model.hpp"
#include "tcq/io/tcq_file.hpp"
#include "tcq/pack/dequantize.hpp"
#include "tcq/pack/packed_matrix.hpp"
#include "tcq/pipeline/pipeline.hpp"

namespace l2c {

/// Packs every layer of `r` and writes one tcq file; returns the exact bits per weight stored.
inline double save_tcq(const tcq::pipeline_result& r, tcq::file_metadata meta, const std::filesystem::path& path,
                       const tcq::exec_policy& pol) {
    std::vector<tcq::packed_matrix> packed;
    packed.reserve(r.layers.size());
    for (const auto& q : r.layers) packed.push_back(tcq::pack(q, {}, pol));
    meta.method = std::string(tcq::to_string(r.method));
    meta.bits = r.grid.bits;
    meta.budget = r.bits.ratio(static_cast<std::uint64_t>(r.kept));
    tcq::file_writer w(meta);
    tcq::storage_cost total;
    for (std::size_t i = 0; i < packed.size(); ++i) {
        w.add(r.names[i], packed[i].view());
        total += packed[i].bits_used();
    }
    w.write(path);
    return total.per_weight();
}

/// Replaces every linear weight of `m` by its dequantized counterpart from
/// `f`. The file must hold exactly the model's linear layers, by name and shape.
inline void apply_tcq(model& m, const tcq::packed_file& f, const tcq::exec_policy& pol) {
    const index_t expected = m.cfg().n_layers * static_cast<index_t>(all_linear_kinds.size());
    tcq::require(f.size() == expected, "tcq file holds ", f.size(), " matrices, the model has ", expected,
                 " linear layers");
    for (index_t l = 0; l < m.cfg().n_layers; ++l)
        for (auto k : all_linear_kinds) {
            const auto name = linear_name(l, k);
            const auto& p = f.find(name);
            auto w = m.linear(l, k);
            tcq::require(p.info().rows == w.rows() && p.info().cols == w.cols(), "tcq file: matrix '", name, "' is ",
                         p.info().rows, "x", p.info().cols, ", the model's is ", w.rows(), "x", w.cols());
            tcq::dequantize(p, w, pol);
        }
}

}  // namespace l2c
