#pragma once
/// @file method.hpp
/// @brief The quantization methods the pipeline runs side by side: RTN, GPTQ,
/// and GPTQ plus 16-bit weights chosen by a saliency score (TaCQ and baselines).

#include <optional>
#include <string_view>

#include "tcq/core/error.hpp"
#include "tcq/saliency/scores.hpp"

namespace tcq {

/// A whole-model quantization method.
enum class quant_method {
    rtn,         ///< round-to-nearest on the MSE grid, no 16-bit weights
    gptq,        ///< sequential GPTQ, no 16-bit weights
    tacq,        ///< TaCQ: Σ|g| ⊙ |W − Q| ⊙ |W| selects the 16-bit weights
    spqr,        ///< SpQR-style ((W − Q)/U_jj)² sensitivity
    magnitude,   ///< |W|
    fisher,      ///< Σg² ⊙ (W − Q)²
    grad_delta,  ///< Σ|g| ⊙ |W − Q| (TaCQ without |W|)
    wanda,       ///< |W| ⊙ ‖x_j‖
    random,      ///< uniform random control
};

/// All methods, in declaration order.
inline constexpr quant_method all_quant_methods[] = {
    quant_method::rtn,    quant_method::gptq,       quant_method::tacq,  quant_method::spqr,  quant_method::magnitude,
    quant_method::fisher, quant_method::grad_delta, quant_method::wanda, quant_method::random};

/// Lower-case name ("rtn", "gptq", "tacq", ...).
[[nodiscard]] constexpr std::string_view to_string(quant_method m) {
    switch (m) {
        case quant_method::rtn: return "rtn";
        case quant_method::gptq: return "gptq";
        case quant_method::tacq: return "tacq";
        case quant_method::spqr: return "spqr";
        case quant_method::magnitude: return "magnitude";
        case quant_method::fisher: return "fisher";
        case quant_method::grad_delta: return "grad_delta";
        case quant_method::wanda: return "wanda";
        case quant_method::random: return "random";
    }
    return "?";
}

/// Display name for tables ("TaCQ", "SpQR-style", ...).
[[nodiscard]] constexpr std::string_view display_name(quant_method m) {
    switch (m) {
        case quant_method::rtn: return "RTN";
        case quant_method::gptq: return "GPTQ";
        case quant_method::tacq: return "TaCQ";
        case quant_method::spqr: return "SpQR-style";
        case quant_method::magnitude: return "magnitude";
        case quant_method::fisher: return "Fisher";
        case quant_method::grad_delta: return "grad×delta";
        case quant_method::wanda: return "Wanda";
        case quant_method::random: return "random";
    }
    return "?";
}

/// The method named `s`; throws tcq::error listing the valid names otherwise.
[[nodiscard]] inline quant_method parse_quant_method(std::string_view s) {
    for (auto m : all_quant_methods)
        if (to_string(m) == s) return m;
    fail("unknown method '", s, "' (expected rtn, gptq, tacq, spqr, magnitude, fisher, grad_delta, wanda or random)");
}

/// The saliency score behind a method; empty for rtn and gptq (no 16-bit weights).
[[nodiscard]] constexpr std::optional<score_method> score_of(quant_method m) {
    switch (m) {
        case quant_method::rtn:
        case quant_method::gptq: return std::nullopt;
        case quant_method::tacq: return score_method::tacq;
        case quant_method::spqr: return score_method::spqr;
        case quant_method::magnitude: return score_method::magnitude;
        case quant_method::fisher: return score_method::fisher;
        case quant_method::grad_delta: return score_method::grad_delta;
        case quant_method::wanda: return score_method::wanda;
        case quant_method::random: return score_method::random;
    }
    return std::nullopt;
}

}  // namespace tcq
