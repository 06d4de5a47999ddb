#pragma once
/// @file eigen.hpp
/// @brief tensor_adapter for Eigen dense row-major matrices, maps, refs and blocks.

#include <Eigen/Core>

#include "tcq/core/matrix_view.hpp"

namespace tcq {

/// Row-major Eigen expressions with direct access and unit inner stride adapt
/// without a copy. Column-major ones are rejected at compile time: pass
/// `m.transpose()` semantics yourself, a silent transpose would be a wrong answer.
template <class Derived>
struct tensor_adapter<Derived, std::enable_if_t<std::is_base_of_v<Eigen::DenseBase<Derived>, Derived>>> {
    /// View of `m` (no copy); throws tcq::error if its inner stride is not 1.
    static auto view(auto& m) {
        static_assert(Derived::IsRowMajor || Derived::ColsAtCompileTime == 1,
                      "tcq views are row-major: use an Eigen::RowMajor matrix");
        using scalar = std::remove_reference_t<decltype(*m.data())>;
        require(m.innerStride() == 1, "Eigen adapter: inner stride ", m.innerStride(),
                " is not 1");
        const index_t stride = Derived::IsRowMajor ? m.outerStride() : 1;
        return matrix_view<scalar>(m.data(), m.rows(), m.cols(),
                                   m.rows() <= 1 ? m.cols() : stride);
    }
};

/// Row-major dynamic float matrix, the natural Eigen partner of tcq views.
using RowMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// Row-major dynamic double matrix.
using RowMatrixXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Eigen map over a view (no copy), for handing views to Eigen GEMMs.
template <class T>
[[nodiscard]] auto as_eigen(const matrix_view<T>& v) {
    using S = std::remove_const_t<T>;
    using M = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using MapT = std::conditional_t<std::is_const_v<T>, const M, M>;
    return Eigen::Map<MapT, Eigen::Unaligned, Eigen::OuterStride<>>(
        v.data(), v.rows(), v.cols(), Eigen::OuterStride<>(v.rows() <= 1 ? std::max<index_t>(v.cols(), 1) : v.stride()));
}

}  // namespace tcq
