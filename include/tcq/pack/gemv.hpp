#pragma once
/// @file gemv.hpp
/// @brief Fused dequant matrix-vector product y = Ŵx on a packed matrix.
///
/// One pass over codes, scales and the sparse 16-bit weights; the arithmetic
/// and its tolerance against dequantize-then-multiply are specified in
/// pack/gemv_batch.hpp (gemv is its batch-1 case). Scalar twin: reference::gemv.

#include <span>

#include "tcq/pack/gemv_batch.hpp"

namespace tcq {

/// y = Ŵx: x has cols elements, y has rows elements. Deterministic for any
/// thread count (every row is computed alone, in the canonical order).
inline void gemv(const packed_view& W, std::span<const float> x, std::span<float> y,
                 const exec_policy& pol = seq()) {
    require(static_cast<index_t>(x.size()) == W.cols(), "gemv: x has ", x.size(), " elements, the matrix has ",
            W.cols(), " columns");
    require(static_cast<index_t>(y.size()) == W.rows(), "gemv: y has ", y.size(), " elements, the matrix has ",
            W.rows(), " rows");
    gemv_batch(W, matrix_view<const float>(x.data(), 1, W.cols()), matrix_view<float>(y.data(), 1, W.rows()), pol);
}

}  // namespace tcq
