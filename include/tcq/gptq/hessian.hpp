#pragma once
/// @file hessian.hpp
/// @brief GPTQ's layer Hessian H = (2/n) Σ_s X_sᵀX_s, accumulated per sample (docs/algorithms.md §2.1).
///
/// Mirrors IST-DASLab/gptq `add_batch` step for step: with `m` new samples,
/// H ← H·(n/(n+m)), n ← n+m, then H += (s·X)ᵀ(s·X) with s = sqrt(2/n) applied
/// to X (rounded to the accumulator type, as torch multiplies a float tensor by
/// a Python scalar). `n` counts samples (the batch dimension), not tokens.
/// The product is tiled over the lower triangle (fixed tiles, GEMM per tile)
/// and mirrored, so H is exactly symmetric and identical for any thread count.
/// Scalar twin: reference::hessian_add in tcq/reference/gptq.hpp.

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "tcq/core/eigen.hpp"
#include "tcq/core/matrix_view.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/core/tiles.hpp"

namespace tcq {

/// Incremental Hessian of one linear layer; memory is one cols × cols matrix
/// of T (float, like the reference, or double).
template <class T = float>
class hessian_accumulator {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "hessian_accumulator: T must be float or double");

public:
    using value_type = T;  ///< element type of the stored H (float or double)

    /// An empty accumulator (0 samples, H = 0) for `cols` input features.
    explicit hessian_accumulator(index_t cols) : cols_(cols) {
        require(cols >= 0, "hessian_accumulator: negative column count ", cols);
        h_.assign(static_cast<std::size_t>(cols * cols), T(0));
    }

    /// Adds one calibration sample: X is its tokens × cols layer input.
    void add(matrix_view<const float> X, const exec_policy& pol = seq()) { add_batch(X, 1, pol); }

    /// Adds `samples` samples at once whose tokens are stacked in X
    /// (the reference's add_batch with inp.shape[0] == samples).
    void add_batch(matrix_view<const float> X, index_t samples, const exec_policy& pol = seq()) {
        require(X.cols() == cols_, "hessian_accumulator::add: X has ", X.cols(), " columns, the layer has ",
                cols_);
        require(X.rows() > 0, "hessian_accumulator::add: X has no tokens");
        require(samples > 0, "hessian_accumulator::add: sample count ", samples, " must be positive");
        require_finite(X, "hessian_accumulator::add: X");
        if (n_ > 0) {
            const T f = static_cast<T>(static_cast<double>(n_) / static_cast<double>(n_ + samples));
            parallel_for(pol, cols_, 64, [&](index_t r0, index_t r1) {
                for (auto* p = h_.data() + r0 * cols_; p != h_.data() + r1 * cols_; ++p) *p *= f;
            });
        }
        n_ += samples;
        const T s = static_cast<T>(std::sqrt(2.0 / static_cast<double>(n_)));
        accumulate(X, s, pol);
    }

    /// Combines a shard accumulated apart: the result equals accumulating both
    /// sample sets into one (up to rounding): H = (n₁H₁ + n₂H₂)/(n₁+n₂).
    void merge(const hessian_accumulator& o) {
        require(o.cols_ == cols_, "hessian_accumulator::merge: column counts differ (", cols_, " vs ", o.cols_,
                ")");
        if (o.n_ == 0) return;
        if (n_ == 0) {
            h_ = o.h_;
            n_ = o.n_;
            return;
        }
        const double tot = static_cast<double>(n_ + o.n_);
        const T a = static_cast<T>(static_cast<double>(n_) / tot), b = static_cast<T>(static_cast<double>(o.n_) / tot);
        for (std::size_t i = 0; i < h_.size(); ++i) h_[i] = h_[i] * a + o.h_[i] * b;
        n_ += o.n_;
    }

    /// Back to 0 samples, H = 0.
    void reset() {
        std::fill(h_.begin(), h_.end(), T(0));
        n_ = 0;
    }

    /// Number of input features.
    [[nodiscard]] index_t cols() const noexcept { return cols_; }
    /// Samples accumulated so far (the reference's nsamples).
    [[nodiscard]] index_t samples() const noexcept { return n_; }
    /// The full, symmetric H (row-major cols × cols).
    [[nodiscard]] matrix_view<const T> view() const { return {h_.data(), cols_, cols_}; }

private:
    static constexpr index_t tile = 512;        // output tile of H
    static constexpr index_t token_chunk = 256;  // tokens scaled per GEMM: bounds the scratch

    void accumulate(matrix_view<const float> X, T s, const exec_policy& pol) {
        using M = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
        const index_t n = cols_;
        parallel_lower_tiles(pol, n, tile, [&](index_t i0, index_t i1, index_t j0, index_t j1) {
            const index_t ni = i1 - i0, nj = j1 - j0;
            const bool diag = i0 == j0;
            M A(std::min(token_chunk, X.rows()), ni), B;
            if (!diag) B.resize(A.rows(), nj);
            Eigen::Map<M, Eigen::Unaligned, Eigen::OuterStride<>> Ht(h_.data() + i0 * n + j0, ni, nj,
                                                                   Eigen::OuterStride<>(n));
            for (index_t t0 = 0; t0 < X.rows(); t0 += token_chunk) {
                const index_t nt = std::min(token_chunk, X.rows() - t0);
                for (index_t t = 0; t < nt; ++t) {
                    const float* x = X.row(t0 + t);
                    for (index_t c = 0; c < ni; ++c) A(t, c) = static_cast<T>(x[i0 + c]) * s;
                    if (!diag)
                        for (index_t c = 0; c < nj; ++c) B(t, c) = static_cast<T>(x[j0 + c]) * s;
                }
                const auto a = A.topRows(nt);
                if (diag)
                    Ht.noalias() += a.transpose() * a;
                else
                    Ht.noalias() += a.transpose() * B.topRows(nt);
            }
            // Mirror this tile into the upper triangle (disjoint from every other tile).
            for (index_t i = i0; i < i1; ++i)
                for (index_t j = j0; j < std::min(j1, i); ++j) h_[static_cast<std::size_t>(j * n + i)] = h_[static_cast<std::size_t>(i * n + j)];
        });
    }

    index_t cols_ = 0;
    index_t n_ = 0;
    std::vector<T> h_;
};

}  // namespace tcq
