#pragma once
/// @file masked_fit.hpp
/// @brief Grid fitting that ignores weights kept in 16-bit (docs/algorithms.md §2.3).
///
/// Rule: before fitting a row (or group), every kept entry is replaced by the
/// mean of the segment's entries that are not kept (mean summed in double, in
/// index order, rounded to float); then tcq::fit_segment runs as usual, so the
/// segment length, and hence the MSE criterion's scale, is unchanged. If every
/// entry of a segment is kept, none is quantized and the grid is defined as
/// the one of an all-zero segment (range [−1, 1]). Scalar twin:
/// reference::fit_segment_masked.

#include <span>
#include <vector>

#include "tcq/core/mask.hpp"
#include "tcq/core/matrix_view.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/core/simd.hpp"
#include "tcq/quant/batched_fit.hpp"
#include "tcq/quant/fit.hpp"

namespace tcq {

/// Fits one segment x with the kept-entry rule; `kept(i)` tells whether x[i]
/// is kept. `scratch` is reused storage (resized as needed).
template <class Kept>
[[nodiscard]] grid_param fit_segment_masked(std::span<const float> x, Kept&& kept, const grid_spec& spec,
                                            std::vector<float>& scratch) {
    double sum = 0.0;
    std::size_t nk = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        if (kept(i))
            ++nk;
        else
            sum += static_cast<double>(x[i]);
    }
    if (nk == 0) return fit_segment(x, spec);
    const float fill = nk == x.size() ? 0.f : static_cast<float>(sum / static_cast<double>(x.size() - nk));
    scratch.resize(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) scratch[i] = kept(i) ? fill : x[i];
    return fit_segment(std::span<const float>(scratch.data(), x.size()), spec);
}

/// fit_grid with the kept-entry rule (an empty mask gives exactly fit_grid),
/// computed by the row-batched kernel of batched_fit.hpp (bit-identical).
[[nodiscard]] inline grid fit_grid_masked(matrix_view<const float> W, const grid_spec& spec, const mask& kept,
                                          const exec_policy& pol = seq()) {
    spec.validate("fit_grid_masked");
    require_mask_shape(kept, W.rows(), W.cols(), "fit_grid_masked");
    require_finite(W, "fit_grid_masked: W");
    grid out(spec, W.rows(), W.cols());
    const index_t gc = spec.group_cols(W.cols()), ng = spec.groups(W.cols());
    const bool any = !kept.empty();
    parallel_for(pol, W.rows(), 4 * static_cast<index_t>(simd::width), [&](index_t r0, index_t r1) {
        std::vector<float> scratch;
        for (index_t g = 0; g < ng; ++g) {
            const index_t c0 = g * gc, n = std::min(gc, W.cols() - c0);
            fit_rows_batched(
                r0, r1, n, [&](index_t r, index_t k) { return W(r, c0 + k); },
                [&](index_t r, index_t k) { return kept.test(r, c0 + k); }, any, spec,
                [&](index_t r, grid_param p) { out.at(r, g) = p; }, scratch);
        }
    });
    return out;
}

}  // namespace tcq
