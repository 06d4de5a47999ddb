#pragma once
/// @file layer.hpp
/// @brief The per-layer steps of TaCQ (docs/algorithms.md §1) on one weight
/// matrix and its Hessian, with no model_adapter. They exist only here: the
/// pipeline runs them inside its sequential passes (H from the captured
/// inputs), `tcq tacq` on per-layer files (H given):
///  - step 2, contrast_layer: Q(W) at the base grid, no 16-bit weights (GPTQ or RTN);
///  - step 3, compute_scores (saliency/scores.hpp), then one select_topk
///    (select/topk.hpp) over all layers;
///  - step 4, final_layer: GPTQ keeping the selected weights, their values
///    rounded to the stored 16-bit format.

#include <cmath>
#include <string_view>
#include <utility>
#include <vector>

#include "tcq/core/error.hpp"
#include "tcq/core/mask.hpp"
#include "tcq/core/matrix_view.hpp"
#include "tcq/core/value_format.hpp"
#include "tcq/gptq/options.hpp"
#include "tcq/gptq/report.hpp"
#include "tcq/gptq/solver.hpp"
#include "tcq/quant/quantized.hpp"
#include "tcq/quant/rtn.hpp"

namespace tcq {

/// What the per-layer steps read; pipeline_options extends it.
struct layer_options {
    /// Base grid and GPTQ settings (bits, group, MSE search, damping, act-order…);
    /// gptq.name names the layer in errors.
    gptq_options gptq{};
    /// Storage type of the 16-bit weights; final_layer rounds their values to it.
    value_format kept_format = value_format::fp16;
    /// Contrast Q(W) from RTN instead of GPTQ (cheaper, docs/algorithms.md §1 step 2).
    bool rtn_contrast = false;
};

/// Rounds the kept values of `q` to their stored 16-bit type `f` (what pack
/// stores), so what follows sees the stored model. After the solve: GPTQ
/// compensates no rounding of kept weights (as the reference). Throws
/// tcq::error naming `name` if a kept value is not finite in `f`.
inline void round_kept(quantized_matrix& q, value_format f, std::string_view name) {
    if (!q.has_kept()) return;
    for (const auto i : q.kept.indices()) {
        auto& v = q.values[static_cast<std::size_t>(i)];
        const float r = decode_value(encode_value(v, f), f);
        require(std::isfinite(r), name, ": kept weight ", v, " at (", i / q.cols(), ", ", i % q.cols(),
                ") is not finite in ", to_string(f),
                f == value_format::fp16 ? "; keep 16-bit weights as bf16" : "");
        v = r;
    }
}

/// Step 2 of one layer, the contrast Q(W): GPTQ of W with Hessian H at the
/// base grid and no 16-bit weights, or RTN if opt.rtn_contrast (H is then not
/// read and the report is empty). Its values are the Q of the scores, its
/// report's u_diag SpQR's U_jj.
template <class HT>
[[nodiscard]] gptq_result contrast_layer(matrix_view<const float> W, matrix_view<HT> H, const layer_options& opt,
                                         const exec_policy& pol = seq()) {
    if (opt.rtn_contrast) return {rtn_quantize(W, opt.gptq.grid, {}, pol), {}};
    return gptq_quantize(W, H, opt.gptq, {}, pol);
}

/// Step 4 of one layer: GPTQ of W with Hessian H keeping the weights set in
/// `kept` (empty mask: none) in 16-bit, their final values rounded to
/// opt.kept_format.
template <class HT>
[[nodiscard]] gptq_result final_layer(matrix_view<const float> W, matrix_view<HT> H, const mask& kept,
                                      const layer_options& opt, const exec_policy& pol = seq()) {
    gptq_result r = gptq_quantize(W, H, opt.gptq, kept, pol);
    round_kept(r.q, opt.kept_format, opt.gptq.name);
    return r;
}

/// As above, taking the rows × cols weights W by value: GPTQ works in their
/// buffer (one weight-sized copy less).
template <class HT>
[[nodiscard]] gptq_result final_layer(std::vector<float>&& W, index_t rows, index_t cols, matrix_view<HT> H,
                                      const mask& kept, const layer_options& opt, const exec_policy& pol = seq()) {
    gptq_result r = gptq_quantize(std::move(W), rows, cols, H, opt.gptq, kept, pol);
    round_kept(r.q, opt.kept_format, opt.gptq.name);
    return r;
}

}  // namespace tcq
