#pragma once
/// @file inverse_hessian.hpp
/// @brief Damping and U = chol_upper(H⁻¹), GPTQ's factor (docs/algorithms.md §2.3).
///
/// Steps, as in IST-DASLab/gptq `fasterquant`: dead columns (H_ii = 0) get
/// H_ii = 1; the columns are permuted (act-order); λ = relative·mean(diag H)
/// is added to the diagonal; U is the upper Cholesky factor of H⁻¹, so
/// H⁻¹ = UᵀU. Only the lower triangle of the permuted H is read, as
/// torch.linalg.cholesky does.
///
/// Two ways to U, equal in exact arithmetic:
///  - hinv_method::reversed (default): with P the reversal permutation,
///    P·H·P = L̃L̃ᵀ gives H⁻¹ = (P L̃⁻¹ P)ᵀ(P L̃⁻¹ P) with P L̃⁻¹ P upper
///    triangular, so U = P·L̃⁻¹·P: one Cholesky and one triangular inverse
///    (2n³/3 flops, half of the reference order's 4n³/3; in fp32 its
///    error against an fp64 U is the same order as the torch order's).
///  - hinv_method::torch: the reference's order, Cholesky of H, H⁻¹ from it
///    (cholesky_inverse), upper Cholesky of H⁻¹ (4n³/3 flops, two n² buffers).
///
/// Failure (a non-positive or non-finite pivot, or a non-finite U) is retried
/// with more damping on the schedule of damping_options::at, and reported;
/// past max_retries it is a tcq::error naming the matrix. Every step runs as
/// fixed tiles (tiles.hpp): results do not depend on the thread count.
/// Scalar twin: reference::factor_inverse_hessian (fp64, torch order).

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "tcq/core/matrix_view.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/core/tiles.hpp"

namespace tcq {

/// Floating-point type in which U is computed (U is stored as float either way).
enum class factor_precision {
    fp32,  ///< like the reference (torch fp32)
    fp64,  ///< double: for ill-conditioned H; about 2× slower
};

/// Algorithm for U = chol_upper(H⁻¹); see the file comment.
enum class hinv_method {
    reversed,  ///< one Cholesky of the reversed H + triangular inverse (default)
    torch,     ///< cholesky → cholesky_inverse → cholesky(upper), the reference's order
};

/// Diagonal damping and its escalation schedule.
struct damping_options {
    /// λ = relative · mean(diag H) on the first attempt (the reference's percdamp).
    double relative = 0.01;
    /// Attempts after the first failure; the schedule is bounded by this.
    int max_retries = 4;
    /// Each retry multiplies the relative damping by this.
    double growth = 10.0;
    /// Retries start from max(relative, retry_floor), so relative = 0 escalates too.
    double retry_floor = 1e-3;

    /// Relative damping of attempt k (0 = first): relative, then
    /// max(relative, retry_floor)·growth^k. Default: 0.01, 0.1, 1, 10, 100.
    [[nodiscard]] double at(int attempt) const {
        if (attempt == 0) return relative;
        return std::max(relative, retry_floor) * std::pow(growth, attempt);
    }

    /// Throws tcq::error naming `what` on an unusable schedule.
    void validate(std::string_view what) const {
        require(std::isfinite(relative) && relative >= 0.0, what, ": damping ", relative,
                " must be finite and non-negative");
        require(max_retries >= 0 && max_retries <= 64, what, ": max_retries ", max_retries,
                " must lie in [0, 64]");
        require(std::isfinite(growth) && growth > 1.0, what, ": damping growth ", growth, " must exceed 1");
        require(std::isfinite(retry_floor) && retry_floor > 0.0, what, ": damping retry_floor ", retry_floor,
                " must be positive");
    }
};

/// How U is computed.
struct hinv_options {
    damping_options damping{};                            ///< diagonal damping and its retry schedule
    factor_precision precision = factor_precision::fp32;  ///< arithmetic in which U is computed
    hinv_method method = hinv_method::reversed;           ///< algorithm for U
};

/// How U was obtained: the damping it took and the dead columns. Declared once
/// here; gptq_report holds this struct rather than copies of its fields.
struct hinv_summary {
    /// Fraction of mean(diag H) that was added (after any retries).
    double relative_damping = 0.0;
    /// λ actually added to the diagonal.
    double absolute_damping = 0.0;
    /// mean(diag H) after the dead-column fix.
    double mean_diagonal = 0.0;
    /// Failed Cholesky attempts before success (0 = first try).
    int retries = 0;
    /// Columns with H_ii == 0 (original indices, ascending); GPTQ sets their weights to 0.
    std::vector<index_t> dead_columns;
};

/// U = chol_upper((H + λI)⁻¹) of the (dead-fixed, permuted) H, and how it was
/// obtained (the base; a report keeps that part and drops the cols² factor).
struct inverse_hessian : hinv_summary {
    index_t cols = 0;  ///< order of H and U (number of input columns)
    /// Row-major cols × cols, upper triangular (strict lower part is 0),
    /// in the permuted column order.
    std::vector<float> u;

    /// U as a view.
    [[nodiscard]] matrix_view<const float> view() const { return {u.data(), cols, cols}; }
};

namespace detail {

template <class S>
using col_matrix = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
template <class S>
using col_map = Eigen::Map<col_matrix<S>>;

inline constexpr index_t factor_block = 256;  // panel width of the blocked factorizations
inline constexpr index_t copy_tile = 64;      // tile of the cache-blocked copies

/// In-place upper Cholesky A = RᵀR of the column-major n × n `a` (upper
/// triangle read; the strict lower part of diagonal tiles gets scratch).
/// Right-looking over 256-column panels; panel solve and trailing update run
/// as fixed tiles. False on a non-positive or non-finite pivot.
template <class S>
bool cholesky_upper_inplace(S* a, index_t n, const exec_policy& pol) {
    col_map<S> A(a, n, n);
    for (index_t k0 = 0; k0 < n; k0 += factor_block) {
        const index_t kb = std::min(factor_block, n - k0), rest = n - k0 - kb;
        {
            const eigen_serial serial;
            auto blk = A.block(k0, k0, kb, kb);
            Eigen::Ref<col_matrix<S>> r(blk);
            Eigen::LLT<Eigen::Ref<col_matrix<S>>, Eigen::Upper> llt(r);
            if (llt.info() != Eigen::Success) return false;
            for (index_t i = 0; i < kb; ++i) {
                const S d = A(k0 + i, k0 + i);
                if (!(d > S(0)) || !std::isfinite(d)) return false;
            }
        }
        if (rest == 0) break;
        const auto R11 = A.block(k0, k0, kb, kb);
        // Panel: A12 ← R11⁻ᵀ·A12, columns independent.
        parallel_for(pol, rest, factor_block, [&](index_t c0, index_t c1) {
            const eigen_serial serial;
            auto X = A.block(k0, k0 + kb + c0, kb, c1 - c0);
            R11.template triangularView<Eigen::Upper>().transpose().solveInPlace(X);
        });
        // Trailing: A22 ← A22 − A12ᵀ·A12 on the upper tiles (tile (i, j), i ≤ j).
        const auto A12 = A.block(k0, k0 + kb, kb, rest);
        parallel_lower_tiles(pol, rest, factor_block, [&](index_t j0, index_t j1, index_t i0, index_t i1) {
            A.block(k0 + kb + i0, k0 + kb + j0, i1 - i0, j1 - j0).noalias() -=
                A12.middleCols(i0, i1 - i0).transpose() * A12.middleCols(j0, j1 - j0);
        });
    }
    return true;
}

/// In-place inverse of the upper-triangular column-major `a` (LAPACK trtri,
/// upper, forward over block columns): R⁻¹₁₂ = −R₁₁⁻¹·R₁₂·R₂₂⁻¹.
template <class S>
void invert_upper_inplace(S* a, index_t n, const exec_policy& pol) {
    col_map<S> A(a, n, n);
    col_matrix<S> T;
    for (index_t j0 = 0; j0 < n; j0 += factor_block) {
        const index_t jb = std::min(factor_block, n - j0);
        const auto R22 = A.block(j0, j0, jb, jb);
        if (j0 > 0) {
            const auto Ri = A.block(0, 0, j0, j0);  // already inverted
            auto X = A.block(0, j0, j0, jb);
            T.resize(j0, jb);
            parallel_for(pol, j0, factor_block, [&](index_t r0, index_t r1) {
                const eigen_serial serial;
                auto Tr = T.middleRows(r0, r1 - r0);
                Tr.noalias() = Ri.block(r0, r0, r1 - r0, r1 - r0).template triangularView<Eigen::Upper>() *
                               X.middleRows(r0, r1 - r0);
                if (r1 < j0) Tr.noalias() += Ri.block(r0, r1, r1 - r0, j0 - r1) * X.middleRows(r1, j0 - r1);
                R22.template triangularView<Eigen::Upper>().template solveInPlace<Eigen::OnTheRight>(Tr);
                Tr = -Tr;
            });
            X = T;
        }
        const eigen_serial serial;
        col_matrix<S> inv = col_matrix<S>::Identity(jb, jb);
        R22.template triangularView<Eigen::Upper>().solveInPlace(inv);
        A.block(j0, j0, jb, jb).template triangularView<Eigen::Upper>() = inv;
    }
}

/// Zeroes the strict lower triangle of the column-major `a`.
template <class S>
void zero_strict_lower(S* a, index_t n, const exec_policy& pol) {
    parallel_for(pol, n, 256, [&](index_t j0, index_t j1) {
        for (index_t j = j0; j < j1; ++j) std::fill(a + j * n + j + 1, a + (j + 1) * n, S(0));
    });
}

/// Fills the upper triangle (i ≤ j) of the column-major `a` with
/// `value(i, j)`, in cache-blocked tiles.
template <class S, class F>
void fill_upper(S* a, index_t n, const exec_policy& pol, F&& value) {
    parallel_for(pol, n, copy_tile, [&](index_t j0, index_t j1) {
        for (index_t i0 = 0; i0 < j1; i0 += copy_tile) {
            const index_t i1 = std::min(i0 + copy_tile, j1);
            for (index_t i = i0; i < i1; ++i)
                for (index_t j = std::max(i, j0); j < j1; ++j) a[j * n + i] = value(i, j);
        }
    });
}

/// True if the row-major upper-triangular `u` is finite with a positive diagonal.
inline bool usable_upper(const float* u, index_t n, const exec_policy& pol) {
    return parallel_reduce(
               pol, n, 256, 1,
               [&](index_t r0, index_t r1) {
                   bool ok = true;
                   for (index_t i = r0; i < r1; ++i) {
                       ok &= u[i * n + i] > 0.f;
                       for (index_t j = i; j < n; ++j) ok &= std::isfinite(u[i * n + j]);
                   }
                   return ok ? 1 : 0;
               },
               [](int x, int y) { return x & y; }) == 1;
}

/// One attempt at absolute damping `lambda`. Returns an empty vector on failure.
template <class S, class HT>
std::vector<float> try_factor(matrix_view<const HT> H, std::span<const index_t> perm, double lambda,
                              hinv_method method, const exec_policy& pol) {
    const index_t n = H.rows();
    const std::size_t N = static_cast<std::size_t>(n * n);
    auto p = [&](index_t i) { return perm.empty() ? i : perm[static_cast<std::size_t>(i)]; };
    // Hp(x, y), x ≥ y: the lower triangle of the permuted, dead-fixed, damped H.
    auto hp = [&](index_t x, index_t y) -> S {
        S v = static_cast<S>(H(p(x), p(y)));
        if (x == y) {
            if (v == S(0)) v = S(1);
            v += static_cast<S>(lambda);
        }
        return v;
    };
    std::vector<S> a(N);
    std::vector<float> u;
    if (method == hinv_method::reversed) {
        // A = P·Hp·P (P reverses), A = RᵀR in column-major upper storage, which
        // is the row-major lower L̃ = Rᵀ of A = L̃L̃ᵀ. R⁻¹ in place is then the
        // row-major L̃⁻¹, and U(p, q) = L̃⁻¹(n−1−p, n−1−q): the flat reversal.
        fill_upper(a.data(), n, pol, [&](index_t i, index_t j) { return hp(n - 1 - i, n - 1 - j); });
        if (!cholesky_upper_inplace(a.data(), n, pol)) return {};
        invert_upper_inplace(a.data(), n, pol);
        zero_strict_lower(a.data(), n, pol);
        if constexpr (std::is_same_v<S, float>) {
            u = std::move(a);
            parallel_for(pol, static_cast<index_t>(N / 2), index_t{1} << 16, [&](index_t k0, index_t k1) {
                for (index_t k = k0; k < k1; ++k) std::swap(u[static_cast<std::size_t>(k)], u[N - 1 - static_cast<std::size_t>(k)]);
            });
        } else {
            u.resize(N);
            parallel_for(pol, static_cast<index_t>(N), index_t{1} << 16, [&](index_t k0, index_t k1) {
                for (index_t k = k0; k < k1; ++k) u[static_cast<std::size_t>(k)] = static_cast<float>(a[N - 1 - static_cast<std::size_t>(k)]);
            });
        }
    } else {
        // Reference order. Hp = RᵀR (R = torch's Lᵀ); R⁻¹ = L⁻ᵀ;
        // H⁻¹ = L⁻ᵀL⁻¹ = R⁻¹R⁻ᵀ; H⁻¹ = R₂ᵀR₂ gives U = R₂ (torch's upper=True).
        fill_upper(a.data(), n, pol, [&](index_t i, index_t j) { return hp(j, i); });
        if (!cholesky_upper_inplace(a.data(), n, pol)) return {};
        zero_strict_lower(a.data(), n, pol);
        invert_upper_inplace(a.data(), n, pol);
        std::vector<S> b(N);
        {
            col_map<S> Ri(a.data(), n, n), B(b.data(), n, n);
            // B(i, j), i ≤ j: Σ_{k ≥ j} R⁻¹(i, k)·R⁻¹(j, k), upper tiles.
            parallel_lower_tiles(pol, n, factor_block, [&](index_t j0, index_t j1, index_t i0, index_t i1) {
                B.block(i0, j0, i1 - i0, j1 - j0).noalias() =
                    Ri.block(i0, j0, i1 - i0, n - j0) * Ri.block(j0, j0, j1 - j0, n - j0).transpose();
            });
        }
        std::vector<S>().swap(a);
        if (!cholesky_upper_inplace(b.data(), n, pol)) return {};
        // Row-major U(p, q) = R₂(p, q) = b[q·n + p]: a blocked transpose.
        u.assign(N, 0.f);
        parallel_for(pol, n, copy_tile, [&](index_t p0, index_t p1) {
            for (index_t q0 = p0; q0 < n; q0 += copy_tile)
                for (index_t q = q0; q < std::min(q0 + copy_tile, n); ++q)
                    for (index_t pr = p0; pr < std::min(p1, q + 1); ++pr)
                        u[static_cast<std::size_t>(pr * n + q)] = static_cast<float>(b[static_cast<std::size_t>(q * n + pr)]);
        });
    }
    if (!usable_upper(u.data(), n, pol)) return {};
    return u;
}

}  // namespace detail

/// Computes U = chol_upper((H + λI)⁻¹) with dead-column fix, optional column
/// permutation `perm` (perm[k] = original column at position k; empty =
/// identity) and escalating damping. `name` names the matrix in errors.
/// H must be square, finite, with a non-negative diagonal.
template <class HT>
[[nodiscard]] inverse_hessian factor_inverse_hessian(matrix_view<HT> Hin, std::span<const index_t> perm,
                                                     const hinv_options& opt, std::string_view name = "H",
                                                     const exec_policy& pol = seq()) {
    using H0 = std::remove_const_t<HT>;
    static_assert(std::is_same_v<H0, float> || std::is_same_v<H0, double>, "H must be float or double");
    const matrix_view<const H0> H(Hin);
    opt.damping.validate(name);
    require(H.rows() == H.cols(), name, ": Hessian is ", H.rows(), "x", H.cols(), ", not square");
    const index_t n = H.rows();
    require_finite(H, std::string(name) + ": Hessian");
    if (!perm.empty()) {
        require(static_cast<index_t>(perm.size()) == n, name, ": permutation has ", perm.size(),
                " entries for ", n, " columns");
        std::vector<char> seen(static_cast<std::size_t>(n), 0);
        for (index_t v : perm) {
            require(v >= 0 && v < n && !seen[static_cast<std::size_t>(v)], name, ": column permutation is invalid at ", v);
            seen[static_cast<std::size_t>(v)] = 1;
        }
    }
    inverse_hessian out;
    out.cols = n;
    double sum = 0.0;
    for (index_t i = 0; i < n; ++i) {
        const double d = static_cast<double>(H(i, i));
        require(d >= 0.0, name, ": Hessian diagonal H(", i, ", ", i, ") = ", d,
                " is negative; a Hessian 2XᵀX/n has none");
        if (d == 0.0) out.dead_columns.push_back(i);
        sum += d == 0.0 ? 1.0 : d;
    }
    out.mean_diagonal = n ? sum / static_cast<double>(n) : 0.0;
    if (n == 0) return out;
    for (int attempt = 0; attempt <= opt.damping.max_retries; ++attempt) {
        const double rel = opt.damping.at(attempt);
        // The reference computes λ in fp32 when H is fp32.
        const double lambda = opt.precision == factor_precision::fp32
                                  ? static_cast<double>(static_cast<float>(rel) * static_cast<float>(out.mean_diagonal))
                                  : rel * out.mean_diagonal;
        std::vector<float> u = opt.precision == factor_precision::fp32
                                   ? detail::try_factor<float>(H, perm, lambda, opt.method, pol)
                                   : detail::try_factor<double>(H, perm, lambda, opt.method, pol);
        if (!u.empty()) {
            out.u = std::move(u);
            out.relative_damping = rel;
            out.absolute_damping = lambda;
            out.retries = attempt;
            return out;
        }
    }
    fail(name, ": Hessian is not positive definite: Cholesky of H + λI failed on all ",
         opt.damping.max_retries + 1, " attempts, relative damping ", opt.damping.at(0), " up to ",
         opt.damping.at(opt.damping.max_retries), " of mean(diag H) = ", out.mean_diagonal);
}

}  // namespace tcq
