#pragma once
/// @file value_format.hpp
/// @brief The 16-bit storage types of the weights kept out of quantization,
/// shared by the format (pack/), the tcq file (io/) and the pipeline.

#include <cstdint>

#include "tcq/core/config.hpp"
#include "tcq/core/half.hpp"

namespace tcq {

/// 16-bit storage type of kept weights.
enum class value_format : std::uint8_t {
    fp16 = 0,  ///< IEEE binary16 (default; exact for |w| < 65520, 11-bit mantissa)
    bf16 = 1,  ///< bfloat16 (fp32 range, 8-bit mantissa)
};

/// Float value of stored 16-bit bits.
TCQ_HOST_DEVICE inline float decode_value(std::uint16_t bits, value_format f) {
    return f == value_format::bf16 ? bf16_to_float(bits) : half_to_float(bits);
}
/// 16-bit bits of a float, round to nearest even.
TCQ_HOST_DEVICE inline std::uint16_t encode_value(float v, value_format f) {
    return f == value_format::bf16 ? float_to_bf16(v) : float_to_half(v);
}
/// "fp16" / "bf16".
inline const char* to_string(value_format f) { return f == value_format::bf16 ? "bf16" : "fp16"; }

}  // namespace tcq
