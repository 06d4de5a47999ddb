#pragma once
/// @file mask.hpp
/// @brief Compact bitset of the weights kept in 16-bit, one per matrix.

#include <bit>
#include <cstdint>
#include <vector>

#include "tcq/core/error.hpp"

namespace tcq {

/// rows × cols bitset, row-major flat index r·cols + c; bit set = keep in 16-bit.
class mask {
public:
    mask() = default;
    mask(index_t rows, index_t cols) : rows_(rows), cols_(cols) {
        require(rows >= 0 && cols >= 0, "mask: negative shape ", rows, "x", cols);
        words_.assign(static_cast<std::size_t>((rows * cols + 63) / 64), 0);
    }

    [[nodiscard]] index_t rows() const noexcept { return rows_; }
    [[nodiscard]] index_t cols() const noexcept { return cols_; }
    [[nodiscard]] index_t size() const noexcept { return rows_ * cols_; }

    [[nodiscard]] bool test(index_t flat) const noexcept {
        return (words_[static_cast<std::size_t>(flat >> 6)] >> (flat & 63)) & 1u;
    }
    [[nodiscard]] bool test(index_t r, index_t c) const noexcept { return test(r * cols_ + c); }
    void set(index_t flat, bool v = true) noexcept {
        auto& w = words_[static_cast<std::size_t>(flat >> 6)];
        const std::uint64_t b = std::uint64_t{1} << (flat & 63);
        w = v ? (w | b) : (w & ~b);
    }
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
    [[nodiscard]] std::vector<std::uint64_t>& words() noexcept { return words_; }

    friend bool operator==(const mask&, const mask&) = default;

private:
    index_t rows_ = 0;
    index_t cols_ = 0;
    std::vector<std::uint64_t> words_;
};

}  // namespace tcq
