#pragma once
/// @file result_file.hpp
/// @brief A pipeline result as a tcq file: every layer packed (16-bit weights
/// in the result's kept format) under its layer name.

#include <filesystem>
#include <string>
#include <vector>

#include "tcq/core/storage_cost.hpp"
#include "tcq/io/tcq_file_writer.hpp"
#include "tcq/pack/packed_matrix.hpp"
#include "tcq/pipeline/pipeline.hpp"

namespace tcq {

/// Packs the layers of `r`, fills the method/bits/budget fields of `meta`
/// and writes the file atomically; returns the exact storage written.
inline storage_cost write_result(const pipeline_result& r, file_metadata meta, const std::filesystem::path& path,
                                 const exec_policy& pol = seq()) {
    std::vector<packed_matrix> packed;
    packed.reserve(r.layers.size());
    for (const auto& q : r.layers) packed.push_back(pack(q, {r.kept_format}, pol));
    meta.method = std::string(to_string(r.method));
    meta.bits = r.grid.bits;
    meta.budget = r.bits().ratio(static_cast<std::uint64_t>(r.kept()));
    file_writer w(meta);
    storage_cost total;
    for (std::size_t i = 0; i < packed.size(); ++i) {
        w.add(r.names[i], packed[i].view());
        total += packed[i].bits_used();
    }
    w.write(path);
    return total;
}

}  // namespace tcq
