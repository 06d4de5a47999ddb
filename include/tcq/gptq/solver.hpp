#pragma once
/// @file solver.hpp
/// @brief GPTQ: the blocked, masked column sweep (docs/algorithms.md §2.3), producing a quantized_matrix.
///
/// Follows IST-DASLab/gptq `fasterquant`:
///  1. per-row grids (group_size 0) are fitted once on the caller's W, before
///     the dead-column fix, as the reference does (`find_params(W)` precedes
///     `W[:, dead] = 0`);
///  2. dead columns (H_ii = 0) are zeroed in W; static groups are fitted on
///     that W in the original column order;
///  3. act-order permutes the columns by decreasing diag(H) (stable sort:
///     ties keep the lower index first; torch.argsort is not stable);
///  4. U = chol_upper(H⁻¹) (inverse_hessian.hpp), with escalating damping;
///  5. blocks of `block_size` columns: for column i, q = quant(w) (q = w where
///     kept), err = (w − q)/U_ii, W[:, i+1:block end] −= err ⊗ U[i, ...]; after
///     the block W[:, end:] −= Err·U[block, end:] as one GEMM (fixed tiles);
///  6. dynamic groups are fitted at their first column (group_fit).
/// Kept weights get zero error, loss 0 and code 0, and still receive the
/// updates of earlier columns; grids ignore them (masked_fit.hpp).
///
/// Speed: per block, one parallel region over fixed 64-row chunks; a chunk's
/// block is transposed so the column sweep is SIMD across rows. Rows are
/// independent within a block and GEMM tiles are fixed, so results are
/// bit-identical for any thread count. Scalar twin: reference::gptq_quantize.
///
/// Memory: the working W is the output's value buffer (no copy with the
/// rvalue overload); beyond it: U (cols² floats; the default fp32 factor
/// builds it in place, fp64 or the torch method need one more cols² buffer
/// while factoring), codes, optional losses, rows × block_size errors.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "tcq/core/eigen.hpp"
#include "tcq/core/matrix_view.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/core/simd.hpp"
#include "tcq/core/tiles.hpp"
#include "tcq/gptq/hessian.hpp"
#include "tcq/gptq/inverse_hessian.hpp"
#include "tcq/gptq/options.hpp"
#include "tcq/gptq/report.hpp"
#include "tcq/quant/batched_fit.hpp"
#include "tcq/quant/element.hpp"
#include "tcq/quant/fit.hpp"
#include "tcq/quant/masked_fit.hpp"
#include "tcq/quant/quantized.hpp"

namespace tcq {

namespace detail {

inline double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

/// act-order permutation: columns by decreasing diag(H) (dead columns count
/// as 1), ties in increasing column order.
template <class T>
std::vector<index_t> act_order_perm(matrix_view<const T> H) {
    const index_t n = H.rows();
    std::vector<double> d(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) {
        const double v = static_cast<double>(H(i, i));
        d[static_cast<std::size_t>(i)] = v == 0.0 ? 1.0 : v;
    }
    std::vector<index_t> p(static_cast<std::size_t>(n));
    std::iota(p.begin(), p.end(), index_t{0});
    std::stable_sort(p.begin(), p.end(), [&](index_t a, index_t b) {
        return d[static_cast<std::size_t>(a)] > d[static_cast<std::size_t>(b)];
    });
    return p;
}

/// Per-thread scratch of one 64-row chunk × one block, transposed (column-major).
struct sweep_scratch {
    std::vector<float> t, e, l, c, m, fit;
};

inline sweep_scratch& thread_scratch() {
    thread_local sweep_scratch s;
    return s;
}

/// The sweep state shared by all chunks of a solve.
struct sweep_state {
    index_t rows = 0, cols = 0, rows_pad = 0, block = 0;
    float* w = nullptr;                 // rows × cols working W, permuted order
    const float* u = nullptr;           // U, row-major cols × cols
    float* err = nullptr;               // rows × block errors of the current block
    std::uint8_t* codes = nullptr;      // rows × cols, original order
    float* losses = nullptr;            // rows × cols, original order, or null
    double* row_loss = nullptr;         // per row
    float* gs = nullptr;                // grid scales, groups × rows_pad (transposed)
    float* gz = nullptr;                // grid zeros, same layout
    const index_t* perm = nullptr;      // null: identity
    const mask* kept = nullptr;         // null: none kept
    grid_spec spec{};
    bool dynamic_groups = false, static_groups = false, fresh = false;

    [[nodiscard]] index_t orig(index_t c) const { return perm ? perm[c] : c; }
    [[nodiscard]] bool is_kept(index_t r, index_t c) const { return kept && kept->test(r, orig(c)); }
    [[nodiscard]] index_t group_at(index_t c) const {
        if (dynamic_groups) return c / spec.group_size;
        if (static_groups) return orig(c) / spec.group_size;
        return 0;
    }
};

inline constexpr index_t sweep_rows = 64;  // rows per chunk: 4 AVX-512 registers of errors

/// Fits dynamic group grids starting at column c for rows [r0, r1) on the
/// values `value(r, col)`, SIMD across rows (batched_fit.hpp).
template <class Value>
void fit_groups_at(const sweep_state& st, index_t c, index_t r0, index_t r1, Value&& value, sweep_scratch& sc) {
    const index_t g = c / st.spec.group_size, n = std::min(c + st.spec.group_size, st.cols) - c;
    fit_rows_batched(
        r0, r1, n, [&](index_t r, index_t k) { return value(r, c + k); },
        [&](index_t r, index_t k) { return st.is_kept(r, c + k); }, st.kept != nullptr, st.spec,
        [&](index_t r, grid_param p) {
            st.gs[g * st.rows_pad + r] = p.scale;
            st.gz[g * st.rows_pad + r] = p.zero;
        },
        sc.fit);
}

/// Sweeps columns [i1, i2) for rows [r0, r1): the in-block GPTQ recursion.
inline void sweep_chunk(const sweep_state& st, index_t i1, index_t i2, index_t r0, index_t r1) {
    using fb = simd::fbatch;
    constexpr index_t W = static_cast<index_t>(fb::size);
    constexpr index_t RC = sweep_rows;
    constexpr index_t NV = RC / W;
    static_assert(RC % W == 0, "chunk rows must be a multiple of the SIMD width");
    const index_t B = i2 - i1, R = r1 - r0, cols = st.cols;
    sweep_scratch& sc = thread_scratch();
    const auto sz = static_cast<std::size_t>(B * RC);
    for (auto* v : {&sc.t, &sc.e, &sc.l, &sc.c}) v->resize(sz);
    float *T = sc.t.data(), *E = sc.e.data(), *L = sc.l.data(), *C = sc.c.data();

    // Grids of dynamic groups starting in this block, on W as of the block
    // start (fresh mode: only the group starting at i1, where both agree).
    if (st.dynamic_groups) {
        const index_t gsz = st.spec.group_size;
        for (index_t c = (i1 + gsz - 1) / gsz * gsz; c < i2; c += gsz)
            if (!st.fresh || c == i1)
                fit_groups_at(st, c, r0, r1, [&](index_t r, index_t col) { return st.w[r * cols + col]; }, sc);
    }

    // Transpose in: T[j][rr] = W[r0 + rr][i1 + j]; padding rows are 0.
    for (index_t rr = 0; rr < RC; ++rr) {
        const float* src = st.w + (r0 + rr) * cols + i1;
        for (index_t j = 0; j < B; ++j) T[j * RC + rr] = rr < R ? src[j] : 0.f;
    }
    bool any_kept = false;
    float* M = nullptr;
    if (st.kept) {
        sc.m.assign(sz, 0.f);
        M = sc.m.data();
        for (index_t rr = 0; rr < R; ++rr)
            for (index_t j = 0; j < B; ++j)
                if (st.is_kept(r0 + rr, i1 + j)) {
                    M[j * RC + rr] = 1.f;
                    any_kept = true;
                }
    }

    const float maxq = st.spec.maxq();
    const fb vzero(0.f), vmaxq(maxq), vhalf(0.5f);
    for (index_t i = 0; i < B; ++i) {
        const index_t c = i1 + i;
        if (st.dynamic_groups && st.fresh && i > 0 && c % st.spec.group_size == 0) {
            // Fresh values: in-block columns from T; columns past the block
            // with this block's pending updates applied in column order.
            fit_groups_at(st, c, r0, r1,
                          [&](index_t r, index_t col) {
                              const index_t rr = r - r0;
                              if (col < i2) return T[(col - i1) * RC + rr];
                              float v = st.w[r * cols + col];
                              for (index_t k = 0; k < i; ++k) v = v - E[k * RC + rr] * st.u[(i1 + k) * cols + col];
                              return v;
                          },
                          sc);
        }
        const index_t g = st.group_at(c);
        const float* sp = st.gs + g * st.rows_pad + r0;
        const float* zp = st.gz + g * st.rows_pad + r0;
        const float d = st.u[c * cols + c];
        const fb vd(d), vdd(d * d);
        fb errs[NV];
        for (index_t v = 0; v < NV; ++v) {
            const index_t o = i * RC + v * W;
            const fb w = fb::load_unaligned(T + o);
            const fb s = fb::load_unaligned(sp + v * W), z = fb::load_unaligned(zp + v * W);
            fb code = quant_code(w, s, z, vmaxq);
            fb q = dequant_code(code, s, z);
            if (any_kept) {
                const auto m = fb::load_unaligned(M + o) != vzero;
                q = xsimd::select(m, w, q);
                code = xsimd::select(m, vzero, code);
            }
            const fb diff = w - q;
            errs[v] = diff / vd;
            q.store_unaligned(T + o);
            errs[v].store_unaligned(E + o);
            (((diff * diff) / vdd) * vhalf).store_unaligned(L + o);
            code.store_unaligned(C + o);
        }
        const float* urow = st.u + c * cols + i1;
        for (index_t j = i + 1; j < B; ++j) {
            const fb uj(urow[j]);
            float* tj = T + j * RC;
            for (index_t v = 0; v < NV; ++v)
                (fb::load_unaligned(tj + v * W) - errs[v] * uj).store_unaligned(tj + v * W);
        }
    }

    // Transpose out: Q into W, errors for the block update, codes and losses
    // in the original column order.
    for (index_t rr = 0; rr < R; ++rr) {
        const index_t r = r0 + rr;
        float* dst = st.w + r * cols + i1;
        float* er = st.err + r * st.block;
        double rl = 0.0;
        for (index_t j = 0; j < B; ++j) {
            const index_t o = j * RC + rr, oc = st.orig(i1 + j);
            dst[j] = T[o];
            er[j] = E[o];
            st.codes[r * cols + oc] = static_cast<std::uint8_t>(C[o]);
            if (st.losses) st.losses[r * cols + oc] = L[o];
            rl += static_cast<double>(L[o]);
        }
        st.row_loss[r] += rl;
    }
}

/// The lazy block update W[:, i2:] −= Err·U[i1:i2, i2:] as fixed GEMM tiles.
/// W is row-major rows × cols, Err rows × err_stride (first i2 − i1 columns
/// used), U row-major cols × cols.
inline void lazy_block_update(float* w, const float* err, const float* u, index_t rows, index_t cols,
                              index_t err_stride, index_t i1, index_t i2, const exec_policy& pol) {
    if (i2 >= cols || rows == 0) return;
    using RowMap = Eigen::Map<RowMatrixXf, Eigen::Unaligned, Eigen::OuterStride<>>;
    using ConstRowMap = Eigen::Map<const RowMatrixXf, Eigen::Unaligned, Eigen::OuterStride<>>;
    const index_t B = i2 - i1;
    parallel_tiles(pol, rows, cols - i2, 512, 1024, [&](index_t r0, index_t r1, index_t c0, index_t c1) {
        RowMap Wt(w + r0 * cols + i2 + c0, r1 - r0, c1 - c0, Eigen::OuterStride<>(cols));
        ConstRowMap Et(err + r0 * err_stride, r1 - r0, B, Eigen::OuterStride<>(err_stride));
        ConstRowMap Ut(u + i1 * cols + i2 + c0, B, c1 - c0, Eigen::OuterStride<>(cols));
        Wt.noalias() -= Et * Ut;
    });
}

/// Copies the fitted grid `g` into the transposed arrays.
inline void scatter_grid(const grid& g, sweep_state& st) {
    for (index_t r = 0; r < g.rows; ++r)
        for (index_t k = 0; k < g.groups(); ++k) {
            st.gs[k * st.rows_pad + r] = g.at(r, k).scale;
            st.gz[k * st.rows_pad + r] = g.at(r, k).zero;
        }
}

/// In-place column permutation of each row: row[k] ← row[p[k]] (gather) or
/// row[p[k]] ← row[k] (scatter).
inline void permute_columns(float* w, index_t rows, index_t cols, const std::vector<index_t>& p, bool gather,
                            const exec_policy& pol) {
    parallel_for(pol, rows, 64, [&](index_t r0, index_t r1) {
        std::vector<float> tmp(static_cast<std::size_t>(cols));
        for (index_t r = r0; r < r1; ++r) {
            float* row = w + r * cols;
            std::copy(row, row + cols, tmp.begin());
            for (index_t k = 0; k < cols; ++k) {
                const auto pk = static_cast<std::size_t>(p[static_cast<std::size_t>(k)]);
                if (gather)
                    row[k] = tmp[pk];
                else
                    row[pk] = tmp[static_cast<std::size_t>(k)];
            }
        }
    });
}

template <class HT>
gptq_result gptq_run(matrix_view<const float> Wsrc, std::vector<float>* moved, matrix_view<const HT> H,
                     const gptq_options& opt, const mask& kept, const exec_policy& pol) {
    const auto t_start = std::chrono::steady_clock::now();
    opt.validate();
    const std::string& name = opt.name;
    const index_t rows = Wsrc.rows(), cols = Wsrc.cols();
    require(H.rows() == cols && H.cols() == cols, name, ": Hessian is ", H.rows(), "x", H.cols(),
            ", expected ", cols, "x", cols, " for a ", rows, "x", cols, " weight");
    require_mask_shape(kept, rows, cols, name);
    require_finite(Wsrc, name + ": W");
    for (index_t i = 0; i < cols; ++i) {
        const double d = static_cast<double>(H(i, i));
        require(std::isfinite(d) && d >= 0.0, name, ": Hessian diagonal H(", i, ", ", i, ") = ", d,
                " must be finite and non-negative");
    }
    const grid_spec& spec = opt.grid;
    const bool grouped = spec.group_size > 0;

    gptq_result res;
    gptq_report& rep = res.report;
    quantized_matrix& q = res.q;
    q.grid = grid(spec, rows, cols);
    q.kept = kept;
    if (opt.act_order) rep.perm = act_order_perm(H);

    // U first: its transient buffer is freed before the outputs are allocated.
    auto t = std::chrono::steady_clock::now();
    inverse_hessian hinv = factor_inverse_hessian(H, rep.perm, opt.hinv, name, pol);
    rep.seconds_factor = seconds_since(t);
    rep.hinv = hinv;  // the summary part of it
    rep.u_diag.resize(static_cast<std::size_t>(cols));
    for (index_t k = 0; k < cols; ++k)
        rep.u_diag[static_cast<std::size_t>(opt.act_order ? rep.perm[static_cast<std::size_t>(k)] : k)] =
            hinv.u[static_cast<std::size_t>(k * cols + k)];

    sweep_state st;
    st.rows = rows;
    st.cols = cols;
    st.rows_pad = (rows + sweep_rows - 1) / sweep_rows * sweep_rows;
    st.block = opt.block_size;
    st.spec = spec;
    st.dynamic_groups = grouped && !opt.static_groups;
    st.static_groups = grouped && opt.static_groups;
    st.fresh = opt.group_fit_mode == group_fit::fresh;
    st.kept = kept.empty() ? nullptr : &kept;
    st.perm = opt.act_order ? rep.perm.data() : nullptr;
    const index_t ngroups = spec.groups(cols);
    std::vector<float> gs(static_cast<std::size_t>(std::max<index_t>(ngroups, 1) * st.rows_pad), 1.f),
        gz(gs.size(), 0.f);
    st.gs = gs.data();
    st.gz = gz.data();

    // Per-row grids: on the caller's W before the dead-column fix (reference order).
    t = std::chrono::steady_clock::now();
    if (!grouped && rows > 0 && cols > 0) scatter_grid(fit_grid_masked(Wsrc, spec, kept, pol), st);

    std::vector<float> values;
    if (moved) {
        values = std::move(*moved);
    } else {
        values.resize(static_cast<std::size_t>(rows * cols));
        parallel_for(pol, rows, 256, [&](index_t r0, index_t r1) {
            for (index_t r = r0; r < r1; ++r) std::copy(Wsrc.row(r), Wsrc.row(r) + cols, values.data() + r * cols);
        });
    }
    for (index_t c : rep.hinv.dead_columns)
        for (index_t r = 0; r < rows; ++r) values[static_cast<std::size_t>(r * cols + c)] = 0.f;
    if (st.static_groups && rows > 0 && cols > 0)
        scatter_grid(fit_grid_masked(matrix_view<const float>(values.data(), rows, cols), spec, kept, pol), st);
    rep.seconds_fit = seconds_since(t);

    t = std::chrono::steady_clock::now();
    if (opt.act_order) permute_columns(values.data(), rows, cols, rep.perm, true, pol);
    q.codes.assign(static_cast<std::size_t>(rows * cols), 0);
    if (opt.keep_losses) rep.losses.assign(static_cast<std::size_t>(rows * cols), 0.f);
    std::vector<double> row_loss(static_cast<std::size_t>(rows), 0.0);
    std::vector<float> err(static_cast<std::size_t>(rows * opt.block_size));
    st.w = values.data();
    st.u = hinv.u.data();
    st.err = err.data();
    st.codes = q.codes.data();
    st.losses = opt.keep_losses ? rep.losses.data() : nullptr;
    st.row_loss = row_loss.data();

    for (index_t i1 = 0; i1 < cols; i1 += opt.block_size) {
        const index_t i2 = std::min(i1 + opt.block_size, cols);
        parallel_for(pol, rows, sweep_rows, [&](index_t r0, index_t r1) { sweep_chunk(st, i1, i2, r0, r1); });
        const auto tu = std::chrono::steady_clock::now();
        lazy_block_update(values.data(), err.data(), hinv.u.data(), rows, cols, opt.block_size, i1, i2, pol);
        rep.seconds_update += seconds_since(tu);
    }
    std::vector<float>().swap(err);
    if (opt.act_order) permute_columns(values.data(), rows, cols, rep.perm, false, pol);
    rep.seconds_sweep = seconds_since(t);

    for (index_t r = 0; r < rows; ++r)
        for (index_t k = 0; k < ngroups; ++k)
            q.grid.at(r, k) = grid_param{gs[static_cast<std::size_t>(k * st.rows_pad + r)],
                                         gz[static_cast<std::size_t>(k * st.rows_pad + r)]};
    if (opt.act_order && st.dynamic_groups) {
        q.g_idx.resize(static_cast<std::size_t>(cols));
        for (index_t k = 0; k < cols; ++k)
            q.g_idx[static_cast<std::size_t>(rep.perm[static_cast<std::size_t>(k)])] =
                static_cast<std::int32_t>(k / spec.group_size);
    }
    for (double v : row_loss) rep.total_loss += v;
    q.values = std::move(values);
    rep.seconds_total = seconds_since(t_start);
    return res;
}

template <class HT>
matrix_view<const std::remove_const_t<HT>> const_view(matrix_view<HT> v) {
    return v;
}

}  // namespace detail

/// GPTQ-quantizes W (rows × cols) with the Hessian H (cols × cols, float or
/// double), keeping the weights set in `kept` (empty mask: none) at full
/// precision. W is not modified. Throws tcq::error on bad input or a Hessian
/// that stays indefinite past the damping schedule.
template <class HT>
[[nodiscard]] gptq_result gptq_quantize(matrix_view<const float> W, matrix_view<HT> H, const gptq_options& opt = {},
                                        const mask& kept = {}, const exec_policy& pol = seq()) {
    return detail::gptq_run(W, nullptr, detail::const_view(H), opt, kept, pol);
}

/// As above, taking ownership of W (row-major rows × cols): its storage becomes
/// the result's `values`, saving a rows × cols copy.
template <class HT>
[[nodiscard]] gptq_result gptq_quantize(std::vector<float>&& W, index_t rows, index_t cols, matrix_view<HT> H,
                                        const gptq_options& opt = {}, const mask& kept = {},
                                        const exec_policy& pol = seq()) {
    require(rows >= 0 && cols >= 0 && static_cast<index_t>(W.size()) == rows * cols, opt.name, ": W holds ",
            W.size(), " values, expected ", rows, "x", cols);
    const matrix_view<const float> v(W.data(), rows, cols);
    return detail::gptq_run(v, &W, detail::const_view(H), opt, kept, pol);
}

/// Convenience: the Hessian straight from an accumulator.
template <class T>
[[nodiscard]] gptq_result gptq_quantize(matrix_view<const float> W, const hessian_accumulator<T>& H,
                                        const gptq_options& opt = {}, const mask& kept = {},
                                        const exec_policy& pol = seq()) {
    return detail::gptq_run(W, nullptr, H.view(), opt, kept, pol);
}

}  // namespace tcq
