#pragma once
/// @file report.hpp
/// @brief What a GPTQ solve reports beside the quantized matrix.

#include <vector>

#include "tcq/core/config.hpp"
#include "tcq/gptq/inverse_hessian.hpp"
#include "tcq/quant/quantized.hpp"

namespace tcq {

/// Diagnostics of one GPTQ solve. Per-column data is in the original column order.
struct gptq_report {
    /// How H⁻¹ was factored: damping, retries, dead columns (zeroed weights).
    hinv_summary hinv;
    /// act-order: perm[k] = original column quantized k-th; empty without act-order.
    std::vector<index_t> perm;
    /// rows × cols losses (w − q)²/U_jj²/2, row-major; 0 at kept weights.
    /// Empty if gptq_options::keep_losses is false.
    std::vector<float> losses;
    /// Σ of the per-element losses (summed in double, row by row).
    double total_loss = 0.0;
    /// U_jj of column j (U = chol_upper(H⁻¹)); SpQR's saliency divides by it.
    std::vector<float> u_diag;
    /// Wall-clock seconds: grid fits done up front, factorization, column sweep
    /// (incl. lazy block updates and in-sweep group fits), the lazy block
    /// updates alone (GEMMs, rows·Σ 2·B·(cols − block end) flops), whole call.
    double seconds_fit = 0.0, seconds_factor = 0.0, seconds_sweep = 0.0, seconds_update = 0.0,
           seconds_total = 0.0;
    /// @var seconds_factor
    /// Wall-clock seconds of the U = chol_upper(H⁻¹) factorization (incl. damping retries).

    /// @var seconds_sweep
    /// Wall-clock seconds of the column sweep, incl. lazy block updates and in-sweep group fits.

    /// @var seconds_update
    /// Wall-clock seconds of the lazy block updates alone (part of seconds_sweep).

    /// @var seconds_total
    /// Wall-clock seconds of the whole solve call.
};

/// The quantized matrix and its report.
struct gptq_result {
    quantized_matrix q;   ///< the quantized matrix: codes, grids and final values
    gptq_report report;   ///< diagnostics of the solve
};

}  // namespace tcq
