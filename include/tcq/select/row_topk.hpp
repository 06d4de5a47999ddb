#pragma once
/// @file row_topk.hpp
/// @brief Exact top-k within every row of one matrix (the per_row scope).
///
/// Each row ranks (score, column) as one 64-bit key, score_key << 32 |
/// (2^32 − 1 − column), so a larger key comes first in the selection order
/// (ties: lower column, i.e. lower flat index). One pass per row with a SIMD
/// filter against the running k-th best; O(k) memory per thread.

#include <algorithm>
#include <atomic>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "tcq/core/mask.hpp"
#include "tcq/core/matrix_view.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/select/histogram.hpp"
#include "tcq/select/order.hpp"

namespace tcq {

/// Selects the top `k_row` weights of every row of `scores` into `out`
/// (bits are set, never cleared) and writes one threshold per row into
/// `thr_out`. `matrix` is the matrix index reported in the thresholds; `what`
/// names it in errors. Throws on invalid scores (NaN, Inf, negative), k_row > cols or
/// mismatched shapes. Same result for any thread count.
inline void select_rows(matrix_view<const float> scores, index_t k_row, index_t matrix, mask& out,
                        std::span<threshold> thr_out, std::string_view what = "scores", const exec_policy& pol = seq()) {
    const index_t R = scores.rows(), C = scores.cols();
    require(out.rows() == R && out.cols() == C, what, ": mask is ", out.rows(), "x", out.cols(), ", scores are ", R,
            "x", C);
    require(static_cast<index_t>(thr_out.size()) == R, what, ": ", thr_out.size(), " thresholds for ", R, " rows");
    require(k_row >= 0 && (k_row <= C || R == 0), what, ": per-row k ", k_row, " outside [0, ", C, "]");
    require(C <= index_t{0xffffffff}, what, ": ", C, " columns exceed the per-row selection limit 2^32 - 1");
    // Chunks of whole rows that also own whole mask words: g·C ≡ 0 (mod 64).
    const index_t unit = C == 0 ? 1 : 64 / std::gcd(C, index_t{64});
    const index_t grain = std::max<index_t>(1, (detail::select_grain / std::max<index_t>(C, 1) + unit - 1) / unit) * unit;
    std::atomic<index_t> bad_row{-1};
    // Streaming top-k per row: keep candidates above a running threshold (the
    // k-th best so far; a later score equal to it has a higher column and
    // loses), compacting to the best k whenever the buffer reaches 2k + 8.
    const auto cap = static_cast<std::size_t>(2 * k_row + 8);
    const auto kk = static_cast<std::size_t>(k_row);
    parallel_for(pol, R, grain, [&](index_t r0, index_t r1) {
        std::vector<std::uint64_t> keys;
        keys.reserve(cap);
        const auto key_of = [](float v, index_t c) {
            return std::uint64_t{score_key(v)} << 32 | (std::uint64_t{0xffffffffu} - static_cast<std::uint64_t>(c));
        };
        const auto col_of = [](std::uint64_t key) { return static_cast<index_t>(0xffffffffu - (key & 0xffffffffu)); };
        for (index_t r = r0; r < r1; ++r) {
            const float* p = scores.row(r);
            keys.clear();
            bool full = false;   // holds k candidates: later scores must beat `thr`
            float thr = 0.f;     // score of the k-th best while full
            auto compact = [&] {
                std::nth_element(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(kk - 1), keys.end(),
                                 std::greater<>());
                keys.resize(kk);
                full = true;
                thr = key_score(static_cast<std::uint32_t>(keys[kk - 1] >> 32));
            };
            bool good = true;
            // Sub-pieces start short and double once the threshold exists, so the
            // SIMD bound follows the rising threshold and few scores go scalar.
            index_t step = 16;
            for (index_t s0 = 0, len = 0; s0 < C && good; s0 += len) {
                len = std::min<index_t>(step, C - s0);
                if (full) step = std::min<index_t>(2 * step, 4096);
                // k = 0: a NaN bound admits nothing; full: strictly above thr.
                const float lo = k_row == 0 ? key_score(0x7fc00000u) : full ? std::nextafter(thr, FLT_MAX) : 0.f;
                good = detail::scan_scores(p + s0, len, lo, [&](const float* vals, index_t i, std::uint32_t m) {
                           for (; m; m &= m - 1) {
                               const int j = std::countr_zero(m);
                               if (full && !(vals[j] > thr)) continue;
                               keys.push_back(key_of(vals[j], s0 + i + j));
                               if (keys.size() >= cap) compact();
                           }
                       }) < 0;
            }
            if (!good) {
                index_t cur = bad_row.load();
                while ((cur < 0 || r < cur) && !bad_row.compare_exchange_weak(cur, r)) {
                }
                return;
            }
            threshold& t = thr_out[static_cast<std::size_t>(r)];
            t = threshold{};
            if (k_row == 0) continue;
            if (keys.size() > kk || !full) compact();  // exactly the best k, k-th last
            for (const std::uint64_t key : keys) out.set(r * C + col_of(key));
            t.k = k_row;
            t.score = key_score(static_cast<std::uint32_t>(keys[kk - 1] >> 32));
            t.matrix = matrix;
            t.flat = r * C + col_of(keys[kk - 1]);
        }
    });
    if (bad_row.load() >= 0) detail::invalid_score_fail(what, scores, bad_row.load());
}

}  // namespace tcq
