#pragma once
/// @file rtn.hpp
/// @brief Round-to-nearest quantization as a quantized_matrix: the baseline
/// beside GPTQ, with the same output type and the same kept-weight rule.
///
/// The grid is fitted with the kept-entry rule of masked_fit.hpp; kept
/// weights keep their original value and get code 0. Scalar twin:
/// reference::rtn_quantize.

#include <cstdint>

#include "tcq/core/matrix_view.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/quant/fake_quant.hpp"
#include "tcq/quant/masked_fit.hpp"
#include "tcq/quant/quantized.hpp"

namespace tcq {

/// RTN-quantizes W on a grid fitted per row/group, keeping the weights set in
/// `kept` (empty mask: none) at their original values. W is not modified.
[[nodiscard]] inline quantized_matrix rtn_quantize(matrix_view<const float> W, const grid_spec& spec,
                                                   const mask& kept = {}, const exec_policy& pol = seq()) {
    spec.validate("rtn_quantize");
    require_mask_shape(kept, W.rows(), W.cols(), "rtn_quantize");
    quantized_matrix q;
    q.grid = fit_grid_masked(W, spec, kept, pol);
    q.kept = kept;
    q.codes.resize(static_cast<std::size_t>(W.size()));
    q.values.resize(static_cast<std::size_t>(W.size()));
    if (W.empty()) return q;
    quantize(W, q.grid, matrix_view<std::uint8_t>(q.codes.data(), W.rows(), W.cols()), pol);
    fake_quantize(W, q.grid, matrix_view<float>(q.values.data(), W.rows(), W.cols()), pol);
    if (!kept.empty())
        for (index_t f : kept.indices()) {
            q.codes[static_cast<std::size_t>(f)] = 0;
            q.values[static_cast<std::size_t>(f)] = W(f / W.cols(), f % W.cols());
        }
    return q;
}

}  // namespace tcq
