#pragma once
/// @file batched_fit.hpp
/// @brief Grid fitting of many row segments at once, SIMD across rows.
///
/// GPTQ fits one grid per (row, group): thousands of short segments (128
/// columns) for which the per-segment kernel (quant/fit.hpp) spends its time
/// in per-candidate overhead and never reaches an early exit. Here one SIMD
/// lane is one row: the segments of `simd::width` rows are transposed and the
/// 80 MSE candidates run on all of them at once. The result is bit-identical
/// to tcq::fit_segment (and its scalar twin reference::fit_segment): each
/// lane performs the same correctly-rounded operations in the same order, the
/// error of element k goes to accumulator k mod 16 and the 16 accumulators
/// fold in the canonical tree (core/simd.hpp). A candidate is abandoned once
/// every lane's partial error (canonical fold of a prefix, which can only
/// grow) reaches that lane's best: it could not win `err < best` anywhere.
/// Only the sign of a zero range bound may differ from the per-segment path.

#include <algorithm>
#include <limits>
#include <span>
#include <vector>

#include "tcq/core/simd.hpp"
#include "tcq/quant/element.hpp"
#include "tcq/quant/fit.hpp"
#include "tcq/quant/grid.hpp"

namespace tcq {

/// Fits `simd::width` segments of length n stored transposed: element k of
/// segment l is xt[k·width + l]. Writes one grid_param per segment to out.
/// Equal to fit_segment on each segment; an unusable range throws as there.
inline void fit_segments_transposed(const float* xt, index_t n, const grid_spec& spec, grid_param* out) {
    using fb = simd::fbatch;
    constexpr std::size_t W = fb::size;
    constexpr index_t L = static_cast<index_t>(simd::sum_lanes);
    const float maxq = spec.maxq();
    const bool sym = spec.symmetric;
    const fb vmaxq(maxq);

    fb xmin(0.f), xmax(0.f);
    for (index_t k = 0; k < n; ++k) {
        const fb v = fb::load_unaligned(xt + k * static_cast<index_t>(W));
        xmin = xsimd::min(xmin, v);
        xmax = xsimd::max(xmax, v);
    }
    adjust_range(xmin, xmax, sym);
    const basic_grid_param<fb> base = base_grid(xmin, xmax, vmaxq, sym);
    fb best_s = base.scale, best_z = base.zero;
    alignas(64) float ls[W], lz[W];
    best_s.store_aligned(ls);
    for (std::size_t l = 0; l < W; ++l)
        if (!(std::isfinite(ls[l]) && ls[l] > 0.f)) {
            // Same error as the per-segment path, naming the range.
            std::vector<float> seg(static_cast<std::size_t>(n));
            for (index_t k = 0; k < n; ++k) seg[static_cast<std::size_t>(k)] = xt[k * static_cast<index_t>(W) + static_cast<index_t>(l)];
            (void)fit_segment(seg, spec);
            fail("fit_segments_transposed: unusable scale ", ls[l]);  // fit_segment threw already
        }

    if (spec.mse.enabled) {
        const int ncand = mse_candidates(spec.mse);
        const float norm = spec.mse.norm;
        fb best_err(std::numeric_limits<float>::infinity());
        fb acc[L];
        auto fold = [&](const fb* a) {
            fb t[L / 2];
            for (index_t i = 0; i < L / 2; ++i) t[i] = a[i] + a[i + L / 2];
            for (index_t h = L / 4; h >= 1; h /= 2)
                for (index_t i = 0; i < h; ++i) t[i] = t[i] + t[i + h];
            return t[0];
        };
        constexpr index_t check_every = 2 * L;  // elements between abandonment checks
        for (int i = 0; i < ncand; ++i) {
            const fb p(shrink_factor(i, spec.mse.grid));
            const basic_grid_param<fb> c = grid_from_range(p * xmin, p * xmax, vmaxq, sym);
            const fb cs = c.scale, cz = c.zero;
            const auto at = [&](index_t k) { return fb::load_unaligned(xt + k * static_cast<index_t>(W)); };
            for (auto& a : acc) a = fb(0.f);
            bool abandoned = false;
            const index_t full = n - n % L;
            index_t k = 0;
            while (k < full) {
                const index_t stop = std::min(full, k + check_every);
                for (; k < stop; k += L) {
#pragma GCC unroll 16
                    for (index_t l = 0; l < L; ++l) acc[l] = acc[l] + detail::mse_term(at(k + l), cs, cz, vmaxq, norm);
                }
                if (k < n && xsimd::all(fold(acc) >= best_err)) {
                    abandoned = true;
                    break;
                }
            }
            if (abandoned) continue;
            for (; k < n; ++k) acc[k - full] = acc[k - full] + detail::mse_term(at(k), cs, cz, vmaxq, norm);
            const fb err = fold(acc);
            const auto better = err < best_err;
            best_err = xsimd::select(better, err, best_err);
            best_s = xsimd::select(better, cs, best_s);
            best_z = xsimd::select(better, cz, best_z);
        }
    }
    best_s.store_aligned(ls);
    best_z.store_aligned(lz);
    for (std::size_t l = 0; l < W; ++l) out[l] = finish_scale(grid_param{ls[l], lz[l]}, spec);
}

/// Fits one segment of length n per row r in [r0, r1): element k is
/// value(r, k); kept(r, k) marks kept entries, replaced by the mean of the
/// row segment's other entries (masked_fit.hpp's rule; pass any_kept = false
/// to skip the mask). Calls out(r, grid_param). `xt` is reused scratch.
template <class Value, class Kept, class Out>
void fit_rows_batched(index_t r0, index_t r1, index_t n, Value&& value, Kept&& kept, bool any_kept,
                      const grid_spec& spec, Out&& out, std::vector<float>& xt) {
    constexpr index_t W = static_cast<index_t>(simd::width);
    xt.resize(static_cast<std::size_t>(n * W));
    grid_param res[W];
    for (index_t b = r0; b < r1; b += W) {
        const index_t lanes = std::min(W, r1 - b);
        for (index_t l = 0; l < W; ++l) {
            float* col = xt.data() + l;
            if (l >= lanes) {
                for (index_t k = 0; k < n; ++k) col[k * W] = 0.f;
                continue;
            }
            const index_t r = b + l;
            index_t nk = 0;
            double sum = 0.0;
            for (index_t k = 0; k < n; ++k) {
                const float v = value(r, k);
                col[k * W] = v;
                if (any_kept && kept(r, k))
                    ++nk;
                else
                    sum += static_cast<double>(v);
            }
            if (nk > 0) {
                const float fill = nk == n ? 0.f : static_cast<float>(sum / static_cast<double>(n - nk));
                for (index_t k = 0; k < n; ++k)
                    if (kept(r, k)) col[k * W] = fill;
            }
        }
        fit_segments_transposed(xt.data(), n, spec, res);
        for (index_t l = 0; l < lanes; ++l) out(b + l, res[l]);
    }
}

}  // namespace tcq
