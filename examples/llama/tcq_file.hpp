#pragma once
/// @file tcq_file.hpp
/// @brief Running the engine from a tcq file: its packed linear layers,
/// dequantized, replace the checkpoint's.

#include "model.hpp"
#include "tcq/io/tcq_file.hpp"
#include "tcq/pack/dequantize.hpp"

namespace llama {

/// Replaces every linear weight of `m` by its dequantized counterpart in `f`
/// (matched by HF module name). The file must hold exactly the model's
/// linear layers, by name and shape; `what` names the file in errors.
inline void apply_tcq(model& m, const tcq::packed_file& f, std::string_view what,
                      const tcq::exec_policy& pol = tcq::seq()) {
    const index_t expected = m.cfg().n_layers * static_cast<index_t>(all_linear_kinds.size());
    tcq::require(f.size() == expected, what, ": holds ", f.size(), " matrices, the model has ", expected,
                 " linear layers");
    // q/k rows of a llama2.c file are in interleaved-pair order, an HF
    // checkpoint's in rotate-half order: a file of the other layout would load
    // without a shape error and compute garbage.
    const char* mine = m.cfg().rope == rope_pairs::interleaved ? "interleaved" : "half";
    if (const auto r = f.metadata().find("rope_pairs"))
        tcq::require(*r == mine, what, ": made from a model with ", *r, " RoPE pairs; this one has ", mine,
                     " (quantize the same checkpoint format you evaluate)");
    for (index_t l = 0; l < m.cfg().n_layers; ++l)
        for (auto k : all_linear_kinds) {
            const auto name = linear_name(l, k);
            const auto& p = f.find(name);
            auto w = m.linear(l, k);
            tcq::require(p.info().rows == w.rows() && p.info().cols == w.cols(), what, ": matrix '", name, "' is ",
                         p.info().rows, "x", p.info().cols, ", the model's is ", w.rows(), "x", w.cols());
            tcq::dequantize(p, w, pol);
        }
}

}  // namespace llama
