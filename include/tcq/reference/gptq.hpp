#pragma once
/// @file reference/gptq.hpp
/// @brief Scalar twins of tcq/gptq: Hessian accumulation, U = chol_upper(H⁻¹)
/// in fp64 (the reference's three steps, plain loops), the kept-entry grid
/// fit, plain column-by-column GPTQ without lazy blocks, and RTN.
///
/// The GPTQ twin applies every column's update to all later columns at once,
/// so its W is always fully updated; the blocked solver applies the same
/// in-block updates in the same order (bit-identical arithmetic) and the
/// block-to-block ones as GEMMs (same math, other summation order). Codes
/// therefore agree except where a value lies within rounding noise of a
/// rounding boundary, or two MSE candidates tie within rounding noise.

#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>
#include <string_view>
#include <vector>

#include "tcq/core/mask.hpp"
#include "tcq/core/matrix_view.hpp"
#include "tcq/gptq/inverse_hessian.hpp"
#include "tcq/gptq/options.hpp"
#include "tcq/gptq/report.hpp"
#include "tcq/quant/masked_fit.hpp"
#include "tcq/quant/quantized.hpp"
#include "tcq/reference/quant.hpp"

namespace tcq::reference {

/// Twin of hessian_accumulator<T>::add_batch on a row-major cols × cols H
/// with sample count n: H ← H·n/(n+m); n ← n+m; H += (s·X)ᵀ(s·X), s = sqrt(2/n).
template <class T>
void hessian_add(std::vector<T>& H, index_t cols, index_t& n, matrix_view<const float> X, index_t samples = 1) {
    if (n > 0) {
        const T f = static_cast<T>(static_cast<double>(n) / static_cast<double>(n + samples));
        for (auto& v : H) v *= f;
    }
    n += samples;
    const T s = static_cast<T>(std::sqrt(2.0 / static_cast<double>(n)));
    for (index_t i = 0; i < cols; ++i)
        for (index_t j = 0; j < cols; ++j) {
            T acc = 0;
            for (index_t t = 0; t < X.rows(); ++t) acc += (static_cast<T>(X(t, i)) * s) * (static_cast<T>(X(t, j)) * s);
            H[static_cast<std::size_t>(i * cols + j)] += acc;
        }
}

namespace detail {
/// Plain lower Cholesky of the row-major n × n `a` (lower triangle read) into
/// `l`; false on a non-positive or non-finite pivot.
inline bool cholesky(const std::vector<double>& a, std::vector<double>& l, index_t n) {
    l.assign(static_cast<std::size_t>(n * n), 0.0);
    auto L = [&](index_t i, index_t j) -> double& { return l[static_cast<std::size_t>(i * n + j)]; };
    for (index_t j = 0; j < n; ++j) {
        double d = a[static_cast<std::size_t>(j * n + j)];
        for (index_t k = 0; k < j; ++k) d -= L(j, k) * L(j, k);
        if (!(d > 0.0) || !std::isfinite(d)) return false;
        L(j, j) = std::sqrt(d);
        for (index_t i = j + 1; i < n; ++i) {
            double v = a[static_cast<std::size_t>(i * n + j)];
            for (index_t k = 0; k < j; ++k) v -= L(i, k) * L(j, k);
            L(i, j) = v / L(j, j);
        }
    }
    return true;
}
}  // namespace detail

/// fp64 twin of tcq::factor_inverse_hessian: dead fix, permutation, damping
/// with the same escalation schedule; then, as torch: L = chol(H),
/// H⁻¹ = L⁻ᵀL⁻¹, U = chol_upper(H⁻¹). U is rounded to float at the end.
template <class HT>
inverse_hessian factor_inverse_hessian(matrix_view<HT> H, std::span<const index_t> perm,
                                       const damping_options& damping, std::string_view name = "H") {
    damping.validate(name);
    const index_t n = H.rows();
    require(H.cols() == n, name, ": Hessian is not square");
    require_finite(H, std::string(name) + ": Hessian");
    auto p = [&](index_t i) { return perm.empty() ? i : perm[static_cast<std::size_t>(i)]; };
    inverse_hessian out;
    out.cols = n;
    double sum = 0.0;
    for (index_t i = 0; i < n; ++i) {
        const double d = static_cast<double>(H(i, i));
        require(d >= 0.0, name, ": negative Hessian diagonal at ", i);
        if (d == 0.0) out.dead_columns.push_back(i);
        sum += d == 0.0 ? 1.0 : d;
    }
    out.mean_diagonal = n ? sum / static_cast<double>(n) : 0.0;
    if (n == 0) return out;
    std::vector<double> a(static_cast<std::size_t>(n * n)), l, li(static_cast<std::size_t>(n * n)),
        hi(static_cast<std::size_t>(n * n)), l2;
    for (int attempt = 0; attempt <= damping.max_retries; ++attempt) {
        const double rel = damping.at(attempt), lambda = rel * out.mean_diagonal;
        for (index_t x = 0; x < n; ++x)
            for (index_t y = 0; y <= x; ++y) {
                double v = static_cast<double>(H(p(x), p(y)));
                if (x == y) v = (v == 0.0 ? 1.0 : v) + lambda;
                a[static_cast<std::size_t>(x * n + y)] = a[static_cast<std::size_t>(y * n + x)] = v;
            }
        if (!detail::cholesky(a, l, n)) continue;
        // L⁻¹ by forward substitution, column by column.
        std::fill(li.begin(), li.end(), 0.0);
        for (index_t j = 0; j < n; ++j) {
            li[static_cast<std::size_t>(j * n + j)] = 1.0 / l[static_cast<std::size_t>(j * n + j)];
            for (index_t i = j + 1; i < n; ++i) {
                double v = 0.0;
                for (index_t k = j; k < i; ++k) v += l[static_cast<std::size_t>(i * n + k)] * li[static_cast<std::size_t>(k * n + j)];
                li[static_cast<std::size_t>(i * n + j)] = -v / l[static_cast<std::size_t>(i * n + i)];
            }
        }
        for (index_t i = 0; i < n; ++i)
            for (index_t j = 0; j < n; ++j) {
                double v = 0.0;
                for (index_t k = std::max(i, j); k < n; ++k)
                    v += li[static_cast<std::size_t>(k * n + i)] * li[static_cast<std::size_t>(k * n + j)];
                hi[static_cast<std::size_t>(i * n + j)] = v;
            }
        if (!detail::cholesky(hi, l2, n)) continue;
        std::vector<float> u(static_cast<std::size_t>(n * n), 0.f);
        bool ok = true;
        for (index_t i = 0; i < n; ++i)
            for (index_t j = i; j < n; ++j) {
                const float v = static_cast<float>(l2[static_cast<std::size_t>(j * n + i)]);
                ok &= std::isfinite(v);
                u[static_cast<std::size_t>(i * n + j)] = v;
            }
        for (index_t i = 0; i < n && ok; ++i) ok = u[static_cast<std::size_t>(i * n + i)] > 0.f;
        if (!ok) continue;
        out.u = std::move(u);
        out.relative_damping = rel;
        out.absolute_damping = lambda;
        out.retries = attempt;
        return out;
    }
    fail(name, ": Hessian is not positive definite after ", damping.max_retries + 1, " attempts");
}

/// Twin of tcq::fit_segment_masked.
template <class Kept>
grid_param fit_segment_masked(std::span<const float> x, Kept&& kept, const grid_spec& spec) {
    double sum = 0.0;
    std::size_t nk = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        if (kept(i))
            ++nk;
        else
            sum += static_cast<double>(x[i]);
    }
    const float fill = nk == x.size() ? 0.f : static_cast<float>(sum / static_cast<double>(x.size() - nk));
    std::vector<float> y(x.begin(), x.end());
    for (std::size_t i = 0; i < x.size(); ++i)
        if (kept(i)) y[i] = fill;
    return reference::fit_segment(y, spec);
}

/// Twin of tcq::fit_grid_masked.
inline grid fit_grid_masked(matrix_view<const float> W, const grid_spec& spec, const mask& kept) {
    grid out(spec, W.rows(), W.cols());
    const index_t gc = spec.group_cols(W.cols());
    for (index_t r = 0; r < W.rows(); ++r)
        for (index_t g = 0; g < out.groups(); ++g) {
            const index_t c0 = g * gc, n = std::min(gc, W.cols() - c0);
            out.at(r, g) = reference::fit_segment_masked(
                std::span<const float>(W.row(r) + c0, static_cast<std::size_t>(n)),
                [&](std::size_t i) { return !kept.empty() && kept.test(r, c0 + static_cast<index_t>(i)); }, spec);
        }
    return out;
}

/// Twin of tcq::rtn_quantize.
inline quantized_matrix rtn_quantize(matrix_view<const float> W, const grid_spec& spec, const mask& kept = {}) {
    quantized_matrix q;
    q.grid = reference::fit_grid_masked(W, spec, kept);
    q.kept = kept;
    q.codes.resize(static_cast<std::size_t>(W.size()));
    q.values.resize(static_cast<std::size_t>(W.size()));
    const float maxq = spec.maxq();
    for (index_t r = 0; r < W.rows(); ++r)
        for (index_t c = 0; c < W.cols(); ++c) {
            const auto f = static_cast<std::size_t>(r * W.cols() + c);
            if (!kept.empty() && kept.test(r, c)) {
                q.codes[f] = 0;
                q.values[f] = W(r, c);
                continue;
            }
            const grid_param p = q.grid.at(r, q.grid.group_of(c));
            const float code = quant_code(W(r, c), p.scale, p.zero, maxq);
            q.codes[f] = static_cast<std::uint8_t>(code);
            q.values[f] = dequant_code(code, p.scale, p.zero);
        }
    return q;
}

/// Plain column-by-column GPTQ (docs/algorithms.md §2.3, no lazy blocks): the definition
/// tcq::gptq_quantize is tested against. U comes from the fp64 twin above;
/// opt.hinv.precision and opt.hinv.method are ignored. Timings are not set.
template <class HT>
gptq_result gptq_quantize(matrix_view<const float> W, matrix_view<HT> H, const gptq_options& opt,
                          const mask& kept = {}) {
    opt.validate();
    const index_t rows = W.rows(), cols = W.cols();
    require(H.rows() == cols && H.cols() == cols, opt.name, ": Hessian shape mismatch");
    require_mask_shape(kept, rows, cols, opt.name);
    require_finite(W, opt.name + ": W");
    const grid_spec& spec = opt.grid;
    const bool grouped = spec.group_size > 0, dynamic = grouped && !opt.static_groups;
    const index_t gsz = spec.group_size;
    gptq_result res;
    auto& rep = res.report;
    auto& q = res.q;
    q.kept = kept;
    if (opt.act_order) {
        rep.perm.resize(static_cast<std::size_t>(cols));
        std::iota(rep.perm.begin(), rep.perm.end(), index_t{0});
        auto dg = [&](index_t i) { return H(i, i) == 0 ? 1.0 : static_cast<double>(H(i, i)); };
        std::stable_sort(rep.perm.begin(), rep.perm.end(), [&](index_t a, index_t b) { return dg(a) > dg(b); });
    }
    auto orig = [&](index_t k) { return opt.act_order ? rep.perm[static_cast<std::size_t>(k)] : k; };
    const inverse_hessian hinv = reference::factor_inverse_hessian(H, rep.perm, opt.hinv.damping, opt.name);
    rep.hinv = hinv;  // the summary part of it
    auto U = [&](index_t i, index_t j) { return hinv.u[static_cast<std::size_t>(i * cols + j)]; };

    q.grid = grid(spec, rows, cols);
    if (!grouped) q.grid = reference::fit_grid_masked(W, spec, kept);  // before the dead fix, as the reference
    std::vector<float> wk(static_cast<std::size_t>(rows * cols));
    for (index_t r = 0; r < rows; ++r)
        for (index_t c = 0; c < cols; ++c) wk[static_cast<std::size_t>(r * cols + c)] = W(r, c);
    for (index_t c : rep.hinv.dead_columns)
        for (index_t r = 0; r < rows; ++r) wk[static_cast<std::size_t>(r * cols + c)] = 0.f;
    if (grouped && opt.static_groups) q.grid = reference::fit_grid_masked(matrix_view<const float>(wk.data(), rows, cols), spec, kept);
    std::vector<float> wp(wk.size());
    for (index_t r = 0; r < rows; ++r)
        for (index_t k = 0; k < cols; ++k)
            wp[static_cast<std::size_t>(r * cols + k)] = wk[static_cast<std::size_t>(r * cols + orig(k))];
    auto Wp = [&](index_t r, index_t c) -> float& { return wp[static_cast<std::size_t>(r * cols + c)]; };
    auto is_kept = [&](index_t r, index_t k) { return !kept.empty() && kept.test(r, orig(k)); };
    auto fit_group = [&](index_t c) {  // dynamic group starting at permuted column c, current W
        const index_t n = std::min(gsz, cols - c);
        for (index_t r = 0; r < rows; ++r)
            q.grid.at(r, c / gsz) = reference::fit_segment_masked(
                std::span<const float>(&Wp(r, c), static_cast<std::size_t>(n)),
                [&](std::size_t i) { return is_kept(r, c + static_cast<index_t>(i)); }, spec);
    };

    std::vector<float> val(wk.size()), loss(wk.size());
    q.codes.assign(wk.size(), 0);
    const float maxq = spec.maxq();
    for (index_t c = 0; c < cols; ++c) {
        if (dynamic) {
            if (opt.group_fit_mode == group_fit::fresh) {
                if (c % gsz == 0) fit_group(c);
            } else if (c % opt.block_size == 0) {
                for (index_t s = c; s < std::min(c + opt.block_size, cols); ++s)
                    if (s % gsz == 0) fit_group(s);
            }
        }
        const index_t g = dynamic ? c / gsz : (grouped ? orig(c) / gsz : 0);
        const float d = U(c, c);
        for (index_t r = 0; r < rows; ++r) {
            const grid_param p = q.grid.at(r, g);
            const float w = Wp(r, c);
            float code = 0.f, qv = w;
            if (!is_kept(r, c)) {
                code = quant_code(w, p.scale, p.zero, maxq);
                qv = dequant_code(code, p.scale, p.zero);
            }
            const float diff = w - qv, err = diff / d;
            const auto f = static_cast<std::size_t>(r * cols + orig(c));
            val[f] = qv;
            loss[f] = ((diff * diff) / (d * d)) * 0.5f;
            q.codes[f] = static_cast<std::uint8_t>(code);
            for (index_t j = c + 1; j < cols; ++j) Wp(r, j) = Wp(r, j) - err * U(c, j);
        }
    }
    if (opt.act_order && dynamic) {
        q.g_idx.resize(static_cast<std::size_t>(cols));
        for (index_t k = 0; k < cols; ++k) q.g_idx[static_cast<std::size_t>(orig(k))] = static_cast<std::int32_t>(k / gsz);
    }
    rep.u_diag.resize(static_cast<std::size_t>(cols));
    for (index_t k = 0; k < cols; ++k) rep.u_diag[static_cast<std::size_t>(orig(k))] = U(k, k);
    for (index_t r = 0; r < rows; ++r) {
        double rl = 0.0;
        for (index_t k = 0; k < cols; ++k) rl += static_cast<double>(loss[static_cast<std::size_t>(r * cols + orig(k))]);
        rep.total_loss += rl;
    }
    q.values = std::move(val);
    if (opt.keep_losses) rep.losses = std::move(loss);
    return res;
}

}  // namespace tcq::reference
