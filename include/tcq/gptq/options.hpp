#pragma once
/// @file options.hpp
/// @brief What a GPTQ solve does: grid, blocking, act-order, groups, factor.

#include <string>

#include "tcq/gptq/inverse_hessian.hpp"
#include "tcq/quant/grid.hpp"

namespace tcq {

/// When a dynamic group's grid is fitted (docs/algorithms.md §2.3). Both fit at the
/// group's first column; they differ in which values of the group they see.
enum class group_fit {
    /// W as it stood at the start of the current lazy block (the in-block
    /// updates of earlier columns not yet applied), exactly as the reference
    /// fits `W[:, i:i+g]` while its in-block updates live in a copy `W1`.
    /// Identical to `fresh` when group_size == block_size.
    block_start,
    /// W with every update from the columns before the group applied, i.e.
    /// what unblocked, column-by-column GPTQ would see.
    fresh,
};

/// Options of gptq_quantize. Defaults follow the reference (percdamp 0.01,
/// blocksize 128, no act-order) and docs/algorithms.md §1 (asymmetric MSE grid).
struct gptq_options {
    /// Bits, symmetry, group size (0 = one grid per row), MSE search, fp16 scales.
    grid_spec grid{};
    /// Columns per lazy block.
    index_t block_size = 128;
    /// Quantize columns in order of decreasing diag(H) (stable for ties);
    /// outputs are returned in the original order with g_idx.
    bool act_order = false;
    /// Fit all group grids up front from W (after the dead-column fix), in the
    /// original column order; needs group_size > 0.
    bool static_groups = false;
    /// Dynamic groups only: which values a group's grid is fitted on.
    group_fit group_fit_mode = group_fit::block_start;
    /// Damping, escalation, precision and algorithm of U = chol_upper(H⁻¹).
    hinv_options hinv{};
    /// Keep the rows × cols per-element losses in the report (else only the total).
    bool keep_losses = true;
    /// Names the matrix in error messages, e.g. "layers.3.attention.wq".
    std::string name = "W";

    /// Throws tcq::error naming the matrix on an unusable combination.
    void validate() const {
        grid.validate(name);
        require(block_size >= 1, name, ": block size ", block_size, " must be positive");
        require(!static_groups || grid.group_size > 0, name, ": static groups need a group size > 0");
        hinv.damping.validate(name);
    }
};

}  // namespace tcq
