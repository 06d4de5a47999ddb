#pragma once
/// @file grid.hpp
/// @brief Quantization grid specification and fitted grid parameters.

#include <cmath>
#include <vector>

#include "tcq/core/error.hpp"

namespace tcq {

/// MSE scale search of GPTQ's quantizer (docs/algorithms.md §2.2).
struct mse_options {
    bool enabled = true;      ///< false: plain min-max grid
    float norm = 2.4f;        ///< error exponent p in Σ|q(x) − x|^p
    int grid = 100;           ///< shrink steps: p = 1 − i/grid
    float max_shrink = 0.8f;  ///< candidates i = 0 … floor(max_shrink·grid) − 1
};

/// What grid to fit: bits, symmetry, grouping, scale search.
struct grid_spec {
    int bits = 4;               ///< 1 … 8
    bool symmetric = false;     ///< zero fixed at (maxq+1)/2
    index_t group_size = 0;     ///< 0: one grid per row; else groups of this many columns
    mse_options mse{};          ///< MSE scale search (on by default)
    /// Round each fitted scale to fp16 (RNE) before use, so a packed file
    /// (fp16 statistics) dequantizes to exactly the fake-quantized values.
    bool fp16_scale = false;

    /// Largest code, 2^bits − 1, as float (the element math works in float).
    [[nodiscard]] float maxq() const { return static_cast<float>((1 << bits) - 1); }
    /// Number of groups per row for `cols` columns (a last partial group counts).
    [[nodiscard]] index_t groups(index_t cols) const {
        if (group_size == 0) return cols > 0 ? 1 : 0;
        return (cols + group_size - 1) / group_size;
    }
    /// Columns per group for `cols` columns.
    [[nodiscard]] index_t group_cols(index_t cols) const { return group_size == 0 ? cols : group_size; }

    /// Throws tcq::error naming `what` if the spec is unsupported.
    void validate(std::string_view what = "grid_spec") const {
        require(bits >= 1 && bits <= 8, what, ": unsupported bit width ", bits, " (supported: 1-8)");
        require(group_size >= 0, what, ": group size ", group_size, " is negative");
        if (mse.enabled) {
            require(mse.grid > 0, what, ": MSE grid ", mse.grid, " must be positive");
            require(mse.max_shrink > 0.f && mse.max_shrink <= 1.f, what, ": MSE max_shrink ",
                    mse.max_shrink, " must lie in (0, 1]");
            require(std::isfinite(mse.norm) && mse.norm > 0.f, what, ": MSE norm ", mse.norm,
                    " must be positive and finite");
        }
    }
};

/// A (scale, zero) pair of lane type T: a float, or a SIMD register holding
/// one pair per lane (the batched fit); q(x) = scale·(clamp(round(x/scale)+zero, 0, maxq) − zero).
template <class T>
struct basic_grid_param {
    T scale = T(1.f);  ///< step between codes
    T zero = T(0.f);   ///< code of the value 0 (an integer, stored as float)
    /// Bitwise-equal scale and zero.
    friend bool operator==(const basic_grid_param&, const basic_grid_param&) = default;
};

/// One fitted (scale, zero) pair.
using grid_param = basic_grid_param<float>;

/// Fitted grid of a rows × cols matrix: one grid_param per (row, group), row-major.
struct grid {
    grid_spec spec{};                ///< the spec it was fitted with
    index_t rows = 0;                ///< rows of the matrix
    index_t cols = 0;                ///< columns of the matrix
    std::vector<grid_param> params;  ///< size rows × groups()

    grid() = default;
    /// Default-initialized parameters for a rows × cols matrix under `s`.
    grid(const grid_spec& s, index_t r, index_t c)
        : spec(s), rows(r), cols(c), params(static_cast<std::size_t>(r * s.groups(c))) {}

    /// Groups per row.
    [[nodiscard]] index_t groups() const { return spec.groups(cols); }
    /// Group of column `col`.
    [[nodiscard]] index_t group_of(index_t col) const {
        return spec.group_size == 0 ? 0 : col / spec.group_size;
    }
    /// Parameters of row r, group g; not bounds-checked.
    [[nodiscard]] grid_param& at(index_t r, index_t g) {
        return params[static_cast<std::size_t>(r * groups() + g)];
    }
    /// Parameters of row r, group g; not bounds-checked.
    [[nodiscard]] const grid_param& at(index_t r, index_t g) const {
        return params[static_cast<std::size_t>(r * groups() + g)];
    }
};

}  // namespace tcq
