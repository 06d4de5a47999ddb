#pragma once
/// @file mask.hpp
/// @brief Compact bitset of the weights kept in 16-bit, one per matrix.

#include <bit>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "tcq/core/error.hpp"

namespace tcq {

/// rows × cols bitset, row-major flat index r·cols + c; bit set = keep in 16-bit.
class mask {
public:
    mask() = default;
    /// All-clear rows × cols mask. Throws tcq::error on a negative shape.
    mask(index_t rows, index_t cols) : rows_(rows), cols_(cols) {
        require(rows >= 0 && cols >= 0, "mask: negative shape ", rows, "x", cols);
        words_.assign(static_cast<std::size_t>((rows * cols + 63) / 64), 0);
    }

    /// Rows of the matrix.
    [[nodiscard]] index_t rows() const noexcept { return rows_; }
    /// Columns of the matrix.
    [[nodiscard]] index_t cols() const noexcept { return cols_; }
    /// Bits, rows·cols.
    [[nodiscard]] index_t size() const noexcept { return rows_ * cols_; }
    /// True for the 0 × 0 mask, the one convention for "no kept weights"; any
    /// other mask has its matrix's shape (require_mask_shape).
    [[nodiscard]] bool empty() const noexcept { return rows_ == 0 && cols_ == 0; }

    /// Bit of flat index r·cols + c (unchecked).
    [[nodiscard]] bool test(index_t flat) const noexcept {
        return (words_[static_cast<std::size_t>(flat >> 6)] >> (flat & 63)) & 1u;
    }
    /// Bit of (r, c) (unchecked).
    [[nodiscard]] bool test(index_t r, index_t c) const noexcept { return test(r * cols_ + c); }
    /// Sets (or clears) the bit of a flat index (unchecked).
    void set(index_t flat, bool v = true) noexcept {
        auto& w = words_[static_cast<std::size_t>(flat >> 6)];
        const std::uint64_t b = std::uint64_t{1} << (flat & 63);
        w = v ? (w | b) : (w & ~b);
    }
    /// Sets (or clears) the bit of (r, c) (unchecked).
    void set(index_t r, index_t c, bool v = true) noexcept { set(r * cols_ + c, v); }

    /// Number of set bits.
    [[nodiscard]] index_t count() const noexcept {
        index_t n = 0;
        for (auto w : words_) n += std::popcount(w);
        return n;
    }
    /// Sorted flat indices of the set bits.
    [[nodiscard]] std::vector<index_t> indices() const {
        std::vector<index_t> out;
        out.reserve(static_cast<std::size_t>(count()));
        for (std::size_t i = 0; i < words_.size(); ++i)
            for (std::uint64_t w = words_[i]; w; w &= w - 1)
                out.push_back(static_cast<index_t>(i * 64 + static_cast<std::size_t>(std::countr_zero(w))));
        return out;
    }
    /// Raw 64-bit words (bit i of word j is flat index 64·j + i); tail bits are 0.
    [[nodiscard]] const std::vector<std::uint64_t>& words() const noexcept { return words_; }
    /// Mutable raw words; keep the tail bits 0.
    [[nodiscard]] std::vector<std::uint64_t>& words() noexcept { return words_; }

    /// Mask with the bits of the flat indices `flat` set (any order, duplicates
    /// allowed). Throws tcq::error on an index outside [0, rows·cols).
    [[nodiscard]] static mask from_indices(index_t rows, index_t cols, std::span<const index_t> flat) {
        mask m(rows, cols);
        for (const index_t f : flat) {
            require(f >= 0 && f < m.size(), "mask::from_indices: index ", f, " outside a ", rows, "x",
                    cols, " mask");
            m.set(f);
        }
        return m;
    }

    /// Sorted column indices of the set bits of row r.
    [[nodiscard]] std::vector<index_t> row_indices(index_t r) const {
        require(r >= 0 && r < rows_, "mask::row_indices: row ", r, " outside ", rows_, " rows");
        std::vector<index_t> out;
        for (index_t c = 0; c < cols_; ++c)
            if (test(r, c)) out.push_back(c);
        return out;
    }

    /// Union: bits set in either mask. Shapes must match.
    mask& operator|=(const mask& o) { return combine(o, "union", [](std::uint64_t a, std::uint64_t b) { return a | b; }); }
    /// Intersection: bits set in both masks. Shapes must match.
    mask& operator&=(const mask& o) { return combine(o, "intersection", [](std::uint64_t a, std::uint64_t b) { return a & b; }); }
    /// Difference: bits set here and not in `o`. Shapes must match.
    mask& operator-=(const mask& o) { return combine(o, "difference", [](std::uint64_t a, std::uint64_t b) { return a & ~b; }); }
    /// Union of two masks of the same shape.
    [[nodiscard]] friend mask operator|(mask a, const mask& b) { return a |= b; }
    /// Intersection of two masks of the same shape.
    [[nodiscard]] friend mask operator&(mask a, const mask& b) { return a &= b; }
    /// Difference a \ b of two masks of the same shape.
    [[nodiscard]] friend mask operator-(mask a, const mask& b) { return a -= b; }

    /// Same shape and bits.
    friend bool operator==(const mask&, const mask&) = default;

private:
    template <class Op>
    mask& combine(const mask& o, std::string_view what, Op op) {
        require(o.rows_ == rows_ && o.cols_ == cols_, "mask ", what, ": shape mismatch, ", rows_, "x",
                cols_, " vs ", o.rows_, "x", o.cols_);
        // Tail bits stay 0: every op maps (0, 0) to 0.
        for (std::size_t i = 0; i < words_.size(); ++i) words_[i] = op(words_[i], o.words_[i]);
        return *this;
    }

    index_t rows_ = 0;
    index_t cols_ = 0;
    std::vector<std::uint64_t> words_;
};

/// Throws unless `kept` is empty (0 × 0, no kept weights) or rows × cols.
inline void require_mask_shape(const mask& kept, index_t rows, index_t cols, std::string_view what) {
    require(kept.empty() || (kept.rows() == rows && kept.cols() == cols), what,
            ": mask is ", kept.rows(), "x", kept.cols(), ", matrix is ", rows, "x", cols);
}

}  // namespace tcq
