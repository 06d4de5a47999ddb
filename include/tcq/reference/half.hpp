#pragma once
/// @file reference/half.hpp
/// @brief Scalar twins of the fp16/bf16 span converters in core/half.hpp.

#include <span>

#include "tcq/core/half.hpp"

namespace tcq::reference {

/// float → fp16 bits, element by element.
inline void to_half(std::span<const float> in, std::span<std::uint16_t> out) {
    for (std::size_t i = 0; i < in.size(); ++i) out[i] = float_to_half(in[i]);
}
/// fp16 bits → float, element by element.
inline void from_half(std::span<const std::uint16_t> in, std::span<float> out) {
    for (std::size_t i = 0; i < in.size(); ++i) out[i] = half_to_float(in[i]);
}
/// float → bf16 bits, element by element.
inline void to_bf16(std::span<const float> in, std::span<std::uint16_t> out) {
    for (std::size_t i = 0; i < in.size(); ++i) out[i] = float_to_bf16(in[i]);
}

}  // namespace tcq::reference
