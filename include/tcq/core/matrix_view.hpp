#pragma once
/// @file matrix_view.hpp
/// @brief Strided, non-owning 2-D views. Every kernel takes these, never containers.

#include <span>
#include <type_traits>

#include "tcq/core/config.hpp"
#include "tcq/core/error.hpp"

namespace tcq {

/// A row-major, strided, non-owning view of a `rows × cols` matrix.
/// `matrix_view<const T>` is the read-only form; a mutable view converts to it.
/// Element (r, c) lives at `data[r * stride + c]`.
template <class T>
class matrix_view {
public:
    using element_type = T;                 ///< T, possibly const
    using value_type = std::remove_cv_t<T>;  ///< T without const/volatile

    constexpr matrix_view() = default;

    /// Throws tcq::error on negative extents, `stride < cols`, or a null pointer
    /// with a non-empty shape.
    matrix_view(T* data, index_t rows, index_t cols, index_t stride)
        : data_(data), rows_(rows), cols_(cols), stride_(stride) {
        require(rows >= 0 && cols >= 0, "matrix_view: negative extent ", rows, "x", cols);
        require(stride >= cols || rows <= 1, "matrix_view: row stride ", stride,
                " is smaller than cols ", cols);
        require(data != nullptr || rows * cols == 0, "matrix_view: null data for a ",
                rows, "x", cols, " matrix");
    }
    /// Contiguous (stride == cols) view.
    matrix_view(T* data, index_t rows, index_t cols) : matrix_view(data, rows, cols, cols) {}

    /// Mutable → const conversion.
    template <class U, class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
    constexpr matrix_view(const matrix_view<U>& o) noexcept
        : data_(o.data()), rows_(o.rows()), cols_(o.cols()), stride_(o.stride()) {}

    /// Pointer to element (0, 0).
    [[nodiscard]] constexpr T* data() const noexcept { return data_; }
    /// Number of rows.
    [[nodiscard]] constexpr index_t rows() const noexcept { return rows_; }
    /// Number of columns.
    [[nodiscard]] constexpr index_t cols() const noexcept { return cols_; }
    /// Distance in elements between the starts of consecutive rows.
    [[nodiscard]] constexpr index_t stride() const noexcept { return stride_; }
    /// rows × cols.
    [[nodiscard]] constexpr index_t size() const noexcept { return rows_ * cols_; }
    /// True if the view has no elements.
    [[nodiscard]] constexpr bool empty() const noexcept { return rows_ == 0 || cols_ == 0; }
    /// True if rows follow each other without gaps.
    [[nodiscard]] constexpr bool contiguous() const noexcept { return stride_ == cols_ || rows_ <= 1; }

    /// Element (r, c); not bounds-checked.
    [[nodiscard]] constexpr T& operator()(index_t r, index_t c) const noexcept {
        return data_[r * stride_ + c];
    }
    /// Pointer to the first element of row r; not bounds-checked.
    [[nodiscard]] constexpr T* row(index_t r) const noexcept { return data_ + r * stride_; }
    /// Row r as a span of cols() elements; not bounds-checked.
    [[nodiscard]] std::span<T> row_span(index_t r) const noexcept {
        return {row(r), static_cast<std::size_t>(cols_)};
    }

    /// Sub-block [r0, r0+nr) × [c0, c0+nc); bounds are checked.
    [[nodiscard]] matrix_view block(index_t r0, index_t c0, index_t nr, index_t nc) const {
        require(r0 >= 0 && c0 >= 0 && nr >= 0 && nc >= 0 && r0 + nr <= rows_ && c0 + nc <= cols_,
                "matrix_view::block: [", r0, "+", nr, ", ", c0, "+", nc, ") outside ", rows_, "x",
                cols_);
        return matrix_view((nr > 0 && nc > 0) ? data_ + r0 * stride_ + c0 : data_, nr, nc, stride_);
    }

private:
    T* data_ = nullptr;
    index_t rows_ = 0;
    index_t cols_ = 0;
    index_t stride_ = 0;
};

/// View of `rows × cols` elements at `p` with row stride `stride` (default: cols).
template <class T>
[[nodiscard]] matrix_view<T> make_view(T* p, index_t rows, index_t cols, index_t stride = -1) {
    return matrix_view<T>(p, rows, cols, stride < 0 ? cols : stride);
}

/// Customization point: specialize for your tensor type to pass it to any kernel
/// without a copy. Provide `static auto view(Tensor&)` returning a matrix_view.
/// See examples/custom_tensor.cpp.
template <class Tensor, class Enable = void>
struct tensor_adapter;

/// A type for which `tensor_adapter` is specialized.
template <class Tensor>
concept adaptable_tensor = requires(Tensor& t) {
    tensor_adapter<std::remove_cvref_t<Tensor>>::view(t);
};

/// The matrix_view of any adaptable tensor (Eigen row-major, user types, views).
template <class Tensor>
    requires adaptable_tensor<Tensor>
[[nodiscard]] auto as_view(Tensor& t) {
    return tensor_adapter<std::remove_cvref_t<Tensor>>::view(t);
}

/// A view adapts to itself.
template <class T>
struct tensor_adapter<matrix_view<T>> {
    /// Returns `v` itself.
    static matrix_view<T> view(const matrix_view<T>& v) { return v; }
};

/// Throws unless `v` is `rows × cols`; `what` names the object in the message.
template <class T>
void require_shape(const matrix_view<T>& v, index_t rows, index_t cols, std::string_view what) {
    require(v.rows() == rows && v.cols() == cols, what, ": shape mismatch, expected ", rows, "x",
            cols, ", got ", v.rows(), "x", v.cols());
}

/// Throws unless every element is finite, naming the first offending position.
template <class T>
void require_finite(const matrix_view<T>& v, std::string_view what) {
    for (index_t r = 0; r < v.rows(); ++r) {
        const auto* p = v.row(r);
        // x − x is NaN exactly for NaN and ±Inf; the sum stays NaN once hit (vectorizes).
        std::remove_cv_t<T> acc = 0;
        for (index_t c = 0; c < v.cols(); ++c) acc += p[c] - p[c];
        if (acc != acc)
            for (index_t c = 0; c < v.cols(); ++c) require_finite(static_cast<double>(p[c]), what, r, c);
    }
}

}  // namespace tcq
