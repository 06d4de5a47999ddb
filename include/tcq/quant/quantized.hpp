#pragma once
/// @file quantized.hpp
/// @brief The quantized matrix that GPTQ and RTN produce and packing consumes.

#include <cstdint>
#include <span>
#include <vector>

#include "tcq/core/error.hpp"
#include "tcq/core/mask.hpp"
#include "tcq/core/matrix_view.hpp"
#include "tcq/quant/element.hpp"
#include "tcq/quant/grid.hpp"

namespace tcq {

/// A rows × cols matrix quantized on a grid, in the original column order,
/// with an optional set of weights kept at full precision.
/// The shape lives in `grid` alone (rows()/cols() read it): a grid is always
/// fitted for the whole matrix, so a second copy could only disagree with it.
struct quantized_matrix {
    /// One (scale, zero) per (row, group), for the whole rows × cols matrix.
    /// Group of column c: g_idx[c] if g_idx is non-empty (act-order), else grid.group_of(c).
    tcq::grid grid;
    /// Group of each column under act-order; empty otherwise.
    std::vector<std::int32_t> g_idx;
    /// rows × cols codes, row-major; 0 at kept (masked) positions.
    std::vector<std::uint8_t> codes;
    /// rows × cols final values: dequantized codes, or the kept fp32 value
    /// where `kept` is set (the error-updated value from GPTQ).
    std::vector<float> values;
    /// Weights kept at 16-bit; empty mask (0 × 0) means none.
    tcq::mask kept;

    /// Rows of the matrix (the grid's).
    [[nodiscard]] index_t rows() const noexcept { return grid.rows; }
    /// Columns of the matrix (the grid's).
    [[nodiscard]] index_t cols() const noexcept { return grid.cols; }
    /// True if the matrix has a kept mask, i.e. not the empty 0 × 0 one (it may still select no weight).
    [[nodiscard]] bool has_kept() const noexcept { return !kept.empty(); }
    /// Group of column c (act-order aware).
    [[nodiscard]] index_t group_of(index_t c) const {
        return g_idx.empty() ? grid.group_of(c) : g_idx[static_cast<std::size_t>(c)];
    }
    /// `values` as a rows × cols view.
    [[nodiscard]] matrix_view<const float> values_view() const { return {values.data(), rows(), cols()}; }
    /// `codes` as a rows × cols view.
    [[nodiscard]] matrix_view<const std::uint8_t> codes_view() const { return {codes.data(), rows(), cols()}; }
};

/// The dequantized codes of `q`, row-major into `out` (rows·cols values):
/// bit for bit what `values` holds at every weight that is not kept (GPTQ
/// and RTN write values with the same element formula, quant/element.hpp).
/// At a kept weight it is its stored code's value, not the weight.
inline void dequantize_codes(const quantized_matrix& q, std::span<float> out) {
    const index_t R = q.rows(), C = q.cols();
    require(q.codes.size() == static_cast<std::size_t>(R * C) && out.size() == q.codes.size(),
            "dequantize_codes: ", q.codes.size(), " codes and ", out.size(), " outputs for a ", R, "x", C, " matrix");
    for (index_t r = 0; r < R; ++r)
        for (index_t c = 0; c < C; ++c) {
            const grid_param& p = q.grid.at(r, q.group_of(c));
            const auto i = static_cast<std::size_t>(r * C + c);
            out[i] = dequant_code(static_cast<float>(q.codes[i]), p.scale, p.zero);
        }
}

}  // namespace tcq
