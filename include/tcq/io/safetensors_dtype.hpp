#pragma once
/// @file safetensors_dtype.hpp
/// @brief safetensors element types, tensor entries and shape arithmetic,
/// shared by the reader and the writer.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "tcq/core/config.hpp"
#include "tcq/core/half.hpp"

namespace tcq::safetensors {


/// The element types tcq reads and writes. Others (I8, U16, F8_*, …) are rejected.
enum class dtype : std::uint8_t { BOOL, U8, I32, I64, F16, BF16, F32, F64 };

/// Bytes per element.
[[nodiscard]] constexpr std::size_t dtype_size(dtype t) noexcept {
    switch (t) {
        case dtype::BOOL:
        case dtype::U8:
            return 1;
        case dtype::F16:
        case dtype::BF16:
            return 2;
        case dtype::I32:
        case dtype::F32:
            return 4;
        case dtype::I64:
        case dtype::F64:
            return 8;
    }
    return 0;
}

/// The header spelling ("F32", "BOOL", …).
[[nodiscard]] constexpr std::string_view dtype_name(dtype t) noexcept {
    switch (t) {
        case dtype::BOOL:
            return "BOOL";
        case dtype::U8:
            return "U8";
        case dtype::I32:
            return "I32";
        case dtype::I64:
            return "I64";
        case dtype::F16:
            return "F16";
        case dtype::BF16:
            return "BF16";
        case dtype::F32:
            return "F32";
        case dtype::F64:
            return "F64";
    }
    return "?";
}

/// Parses a header dtype string; nullopt for anything tcq does not support.
[[nodiscard]] inline std::optional<dtype> parse_dtype(std::string_view s) noexcept {
    for (dtype t :
         {dtype::BOOL, dtype::U8, dtype::I32, dtype::I64, dtype::F16, dtype::BF16, dtype::F32, dtype::F64})
        if (s == dtype_name(t)) return t;
    return std::nullopt;
}

/// The dtype matching a C++ element type (float → F32, bool → BOOL, …).
template <class T>
inline constexpr dtype dtype_of = [] {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_same_v<U, float>)
        return dtype::F32;
    else if constexpr (std::is_same_v<U, double>)
        return dtype::F64;
    else if constexpr (std::is_same_v<U, std::int32_t>)
        return dtype::I32;
    else if constexpr (std::is_same_v<U, std::int64_t>)
        return dtype::I64;
    else if constexpr (std::is_same_v<U, std::uint8_t>)
        return dtype::U8;
    else if constexpr (std::is_same_v<U, bool>)
        return dtype::BOOL;
    else if constexpr (std::is_same_v<U, half_bits>)
        return dtype::F16;
    else if constexpr (std::is_same_v<U, bf16_bits>)
        return dtype::BF16;
    else
        static_assert(sizeof(T) == 0, "no safetensors dtype for this element type");
}();

/// One tensor entry of a validated header.
struct tensor_info {
    std::string name;         ///< tensor name (header key)
    dtype type = dtype::F32;  ///< element type (header "dtype")
    /// Dimensions; empty for a 0-d scalar (one element).
    std::vector<index_t> shape;
    /// Byte range [begin, end) in the data buffer.
    std::uint64_t begin = 0;
    std::uint64_t end = 0;  ///< one past the last byte, relative to the data buffer

    /// Number of elements (product of the shape; 1 for a scalar).
    [[nodiscard]] index_t numel() const noexcept {
        index_t n = 1;
        for (index_t d : shape) n *= d;  // validated: cannot overflow
        return n;
    }
    /// Size of the data in bytes.
    [[nodiscard]] std::size_t nbytes() const noexcept { return static_cast<std::size_t>(end - begin); }
};

namespace detail {


/// Python's `safetensors` caps the header at 100 MB; so do we (bounds JSON memory).
inline constexpr std::uint64_t max_header_bytes = 100'000'000;

/// Element count of `shape`, or nullopt if a dimension is negative or the
/// product × elem_size overflows index_t.
inline std::optional<index_t> checked_numel(std::span<const index_t> shape, std::size_t elem_size) {
    index_t n = 1;
    bool zero = false;
    for (index_t d : shape) {
        if (d < 0) return std::nullopt;
        zero |= d == 0;
    }
    if (zero) return 0;
    constexpr index_t max = std::numeric_limits<index_t>::max();
    for (index_t d : shape) {
        if (n > max / d) return std::nullopt;
        n *= d;
    }
    if (n > max / static_cast<index_t>(elem_size)) return std::nullopt;
    return n;
}

inline std::string shape_string(std::span<const index_t> shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

/// The 2-D interpretation tcq uses: 0-d → 1×1, 1-d → 1×n, 2-d → rows×cols.
inline std::optional<std::pair<index_t, index_t>> matrix_shape(const tensor_info& t) {
    switch (t.shape.size()) {
        case 0:
            return std::pair<index_t, index_t>{1, 1};
        case 1:
            return std::pair<index_t, index_t>{1, t.shape[0]};
        case 2:
            return std::pair<index_t, index_t>{t.shape[0], t.shape[1]};
        default:
            return std::nullopt;
    }
}

}  // namespace detail

}  // namespace tcq::safetensors
