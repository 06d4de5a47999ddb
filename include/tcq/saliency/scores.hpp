#pragma once
/// @file scores.hpp
/// @brief Saliency scores of TaCQ and its baselines (docs/algorithms.md §1 step 3, §3), SIMD.
///
/// One signature for every method: compute_scores(method, inputs, out). Each
/// score is a fixed sequence of correctly rounded fp32 operations (listed per
/// method below), so the SIMD kernels here and the scalar twins in
/// tcq/reference/saliency.hpp agree bit for bit (the build disables a·b+c
/// contraction). Scores are finite and ≥ 0; anything else is a tcq::error that
/// names the input at fault.

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "tcq/core/matrix_view.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/core/simd.hpp"
#include "tcq/saliency/accumulator.hpp"

namespace tcq {

/// Saliency methods. `d = W − Q`, `A = Σ_s|g_s|`, `G2 = Σ_s g_s²`; j is the column.
enum class score_method {
    tacq,        ///< (A·|d|)·|W|       (TaCQ: gradient × contrast × weight)
    grad_delta,  ///< A·|d|             (TaCQ without the |W| factor)
    fisher,      ///< G2·(d·d)          (empirical Fisher × squared delta)
    spqr,        ///< t·t, t = d / U_jj  (SpQR sensitivity; U = upper Cholesky factor of H⁻¹)
    magnitude,   ///< |W|
    wanda,       ///< |W|·sqrt(H_jj)    (Wanda |W_ij|·‖x_j‖, from the Hessian diagonal; see score_inputs::h_diag)
    random,      ///< uniform in [0, 1) from a hash of (seed, flat index); a control baseline
};

/// All methods, in declaration order.
inline constexpr score_method all_score_methods[] = {score_method::tacq,      score_method::grad_delta,
                                                     score_method::fisher,    score_method::spqr,
                                                     score_method::magnitude, score_method::wanda,
                                                     score_method::random};

/// Lower-case name of a method ("tacq", "grad_delta", ...).
[[nodiscard]] constexpr std::string_view to_string(score_method m) {
    switch (m) {
        case score_method::tacq: return "tacq";
        case score_method::grad_delta: return "grad_delta";
        case score_method::fisher: return "fisher";
        case score_method::spqr: return "spqr";
        case score_method::magnitude: return "magnitude";
        case score_method::wanda: return "wanda";
        case score_method::random: return "random";
    }
    return "?";
}

/// The method named `s`; throws tcq::error listing the valid names otherwise.
[[nodiscard]] inline score_method parse_score_method(std::string_view s) {
    for (auto m : all_score_methods)
        if (to_string(m) == s) return m;
    fail("parse_score_method: unknown score method '", s,
         "' (expected tacq, grad_delta, fisher, spqr, magnitude, wanda or random)");
}

/// The inputs a method reads.
struct score_needs {
    bool W = false;         ///< weights
    bool Q = false;         ///< contrast
    bool grad_abs = false;  ///< Σ|g|
    bool grad_sq = false;   ///< Σg²
    bool u_diag = false;    ///< diagonal of U
    bool h_diag = false;    ///< diagonal of H
};

/// What `m` reads from score_inputs.
[[nodiscard]] constexpr score_needs needs(score_method m) {
    switch (m) {
        case score_method::tacq: return {true, true, true, false, false, false};
        case score_method::grad_delta: return {true, true, true, false, false, false};
        case score_method::fisher: return {true, true, false, true, false, false};
        case score_method::spqr: return {true, true, false, false, true, false};
        case score_method::magnitude: return {true, false, false, false, false, false};
        case score_method::wanda: return {true, false, false, false, false, true};
        case score_method::random: return {};
    }
    return {};
}

/// Inputs of compute_scores; a method reads only what needs(method) lists and
/// ignores the rest. Matrices are shaped like the output.
struct score_inputs {
    matrix_view<const float> W;         ///< fp32 original weights
    matrix_view<const float> Q;         ///< contrast Q(W) (GPTQ or RTN at the base bits)
    matrix_view<const float> grad_abs;  ///< A = Σ_s |∂L_s/∂W| (grad_accumulator::abs_sum)
    matrix_view<const float> grad_sq;   ///< G2 = Σ_s (∂L_s/∂W)² (grad_accumulator::sq_sum)
    /// spqr: U_jj, diagonal of GPTQ's upper Cholesky factor of H⁻¹ (after
    /// damping), one per column in original column order; finite and > 0.
    std::span<const float> u_diag;
    /// wanda: diag(H) before damping, one per column; finite and ≥ 0. With
    /// H = (2/n)·Σ_s X_sᵀX_s (n samples), sqrt(H_jj) = sqrt(2/n)·‖x_j‖ where
    /// ‖x_j‖ is the 2-norm of input feature j over all calibration tokens. The
    /// factor sqrt(2/n) is one constant for every matrix scored on the same
    /// calibration set, so rankings (per row, per matrix and global) equal
    /// Wanda's up to fp32 rounding. The score is |W_ij|·sqrt(H_jj), with
    /// sqrt(H_jj) computed once per column (correctly rounded).
    std::span<const float> h_diag;
    /// random: seed; use a different one per matrix for independent draws.
    std::uint64_t seed = 0;
};

/// Element math shared by the scalar twins and the SIMD tails.
namespace score_math {
/// Uniform fp32 in [0, 1), 24 random bits, from (seed, flat index) via SplitMix64.
TCQ_HOST_DEVICE inline float random_score(std::uint64_t seed, std::uint64_t flat) {
    std::uint64_t z = seed + (flat + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<float>(z >> 40) * 0x1p-24f;
}
}  // namespace score_math

namespace detail {

/// Validates inputs against the output shape and the method's needs.
inline void check_score_inputs(score_method m, const score_inputs& in, matrix_view<float> out, std::string_view fn) {
    const score_needs nd = needs(m);
    const index_t R = out.rows(), C = out.cols();
    const auto what = [&](const char* x) { return detail::cat(fn, "(", to_string(m), "): ", x); };
    if (nd.W) require_shape(in.W, R, C, what("W"));
    if (nd.Q) require_shape(in.Q, R, C, what("Q"));
    if (nd.grad_abs) require_shape(in.grad_abs, R, C, what("grad_abs"));
    if (nd.grad_sq) require_shape(in.grad_sq, R, C, what("grad_sq"));
    if (nd.u_diag) {
        require(static_cast<index_t>(in.u_diag.size()) == C, what("u_diag"), ": has ", in.u_diag.size(),
                " entries, expected one per column (", C, ")");
        for (std::size_t j = 0; j < in.u_diag.size(); ++j)
            require(std::isfinite(in.u_diag[j]) && in.u_diag[j] > 0.f, what("u_diag"), ": entry ", j, " is ",
                    in.u_diag[j], ", must be finite and > 0");
    }
    if (nd.h_diag) {
        require(static_cast<index_t>(in.h_diag.size()) == C, what("h_diag"), ": has ", in.h_diag.size(),
                " entries, expected one per column (", C, ")");
        for (std::size_t j = 0; j < in.h_diag.size(); ++j)
            require(std::isfinite(in.h_diag[j]) && in.h_diag[j] >= 0.f, what("h_diag"), ": entry ", j, " is ",
                    in.h_diag[j], ", must be finite and >= 0");
    }
}

/// Explains why score (r, c) is not finite and ≥ 0, naming the input, and throws.
[[noreturn]] inline void score_fail(score_method m, const score_inputs& in, index_t r, index_t c, float s,
                                    std::string_view fn) {
    const score_needs nd = needs(m);
    const auto at = [&](const char* x, float v, const char* why) {
        fail(fn, "(", to_string(m), "): ", x, " is ", why, " (", v, ") at (", r, ", ", c, ")");
    };
    if (nd.W && !std::isfinite(in.W(r, c))) at("W", in.W(r, c), "not finite");
    if (nd.Q && !std::isfinite(in.Q(r, c))) at("Q", in.Q(r, c), "not finite");
    if (nd.grad_abs && !std::isfinite(in.grad_abs(r, c))) at("grad_abs", in.grad_abs(r, c), "not finite");
    if (nd.grad_abs && in.grad_abs(r, c) < 0.f) at("grad_abs", in.grad_abs(r, c), "negative");
    if (nd.grad_sq && !std::isfinite(in.grad_sq(r, c))) at("grad_sq", in.grad_sq(r, c), "not finite");
    if (nd.grad_sq && in.grad_sq(r, c) < 0.f) at("grad_sq", in.grad_sq(r, c), "negative");
    fail(fn, "(", to_string(m), "): score overflows fp32 (", s, ") at (", r, ", ", c, ")");
}

/// Scores of one row segment of n elements; the functor maps batches
/// (w, q, x, col) to scores. Returns false if a score is not finite and ≥ 0.
template <class F>
TCQ_FORCEINLINE bool score_row(const float* w, const float* q, const float* x, const float* col, float* out,
                               index_t n, F&& f) {
    using fb = simd::fbatch;
    constexpr index_t Wd = static_cast<index_t>(fb::size);
    const fb big(FLT_MAX), zero(0.f);
    auto ok = zero == zero;
    const auto ld = [](const float* p, index_t i) { return p ? fb::load_unaligned(p + i) : fb(0.f); };
    index_t i = 0;
    for (; i + Wd <= n; i += Wd) {
        const fb s = f(ld(w, i), ld(q, i), ld(x, i), col ? fb::load_unaligned(col + i) : fb(1.f));
        ok = ok && (s >= zero) && (s <= big);  // false for NaN, ±inf, negatives
        s.store_unaligned(out + i);
    }
    if (i < n) {  // tail through zero-padded buffers; padding scores 0
        alignas(64) float tw[Wd] = {}, tq[Wd] = {}, tx[Wd] = {}, tc[Wd], ts[Wd];
        std::fill(tc, tc + Wd, 1.f);
        const index_t m = n - i;
        if (w) std::copy(w + i, w + n, tw);
        if (q) std::copy(q + i, q + n, tq);
        if (x) std::copy(x + i, x + n, tx);
        if (col) std::copy(col + i, col + n, tc);
        const fb s = f(fb::load_aligned(tw), fb::load_aligned(tq), fb::load_aligned(tx), fb::load_aligned(tc));
        ok = ok && (s >= zero) && (s <= big);
        s.store_aligned(ts);
        std::copy(ts, ts + m, out + i);
    }
    return xsimd::all(ok);
}

template <class F>
void score_rows(score_method m, const score_inputs& in, matrix_view<const float> X, const float* col,
                matrix_view<float> out, const exec_policy& pol, F&& f) {
    const score_needs nd = needs(m);
    first_bad_row bad;
    parallel_for(pol, out.rows(), rows_grain(out.cols()), [&](index_t r0, index_t r1) {
        for (index_t r = r0; r < r1; ++r)
            if (!score_row(nd.W ? in.W.row(r) : nullptr, nd.Q ? in.Q.row(r) : nullptr,
                           X.data() ? X.row(r) : nullptr, col, out.row(r), out.cols(), f)) {
                bad.report(r);
                return;
            }
    });
    if (const index_t r = bad.get(); r >= 0) {
        for (index_t c = 0; c < out.cols(); ++c) {
            const float s = out(r, c);
            if (!(s >= 0.f && s <= FLT_MAX)) score_fail(m, in, r, c, s, "compute_scores");
        }
        fail("compute_scores(", to_string(m), "): invalid score in row ", r);  // unreachable
    }
}

}  // namespace detail

/// Writes the `method` score of every weight into `out` (rows × cols, must not
/// overlap the inputs). Throws tcq::error on missing or mis-shaped inputs,
/// NaN/Inf inputs, negative gradient sums, bad diagonals, or a score that
/// overflows fp32; `out` is then unspecified. Same result for any thread count.
inline void compute_scores(score_method method, const score_inputs& in, matrix_view<float> out,
                           const exec_policy& pol = seq()) {
    detail::check_score_inputs(method, in, out, "compute_scores");
    using fb = simd::fbatch;
    if (out.empty()) return;
    switch (method) {
        case score_method::tacq:
            return detail::score_rows(method, in, in.grad_abs, nullptr, out, pol, [](fb w, fb q, fb a, fb) {
                return (a * xsimd::abs(w - q)) * xsimd::abs(w);
            });
        case score_method::grad_delta:
            return detail::score_rows(method, in, in.grad_abs, nullptr, out, pol,
                                      [](fb w, fb q, fb a, fb) { return a * xsimd::abs(w - q); });
        case score_method::fisher:
            return detail::score_rows(method, in, in.grad_sq, nullptr, out, pol, [](fb w, fb q, fb g2, fb) {
                const fb d = w - q;
                return g2 * (d * d);
            });
        case score_method::spqr:
            return detail::score_rows(method, in, {}, in.u_diag.data(), out, pol, [](fb w, fb q, fb, fb u) {
                const fb t = (w - q) / u;
                return t * t;
            });
        case score_method::magnitude:
            return detail::score_rows(method, in, {}, nullptr, out, pol, [](fb w, fb, fb, fb) { return xsimd::abs(w); });
        case score_method::wanda: {
            std::vector<float> norm(in.h_diag.size());
            for (std::size_t j = 0; j < norm.size(); ++j) norm[j] = std::sqrt(in.h_diag[j]);
            return detail::score_rows(method, in, {}, norm.data(), out, pol,
                                      [](fb w, fb, fb, fb nj) { return xsimd::abs(w) * nj; });
        }
        case score_method::random: {
            const index_t C = out.cols();
            parallel_for(pol, out.rows(), detail::rows_grain(C), [&](index_t r0, index_t r1) {
                for (index_t r = r0; r < r1; ++r)
                    for (index_t c = 0; c < C; ++c)
                        out(r, c) = score_math::random_score(in.seed, static_cast<std::uint64_t>(r * C + c));
            });
            return;
        }
    }
    fail("compute_scores: unknown score method ", static_cast<int>(method));
}

}  // namespace tcq
