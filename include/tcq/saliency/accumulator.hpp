#pragma once
/// @file accumulator.hpp
/// @brief Streaming accumulation of per-sample gradients: Σ|g_s|, Σg_s, Σg_s² (SIMD).
///
/// One sample (a gradient view shaped like W) at a time, in fp32. Every element
/// is summed in sample order, one rounding per sample, so the result is the
/// same for any thread count and equals the scalar twins in
/// tcq/reference/saliency.hpp bit for bit.

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tcq/core/matrix_view.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/core/simd.hpp"

namespace tcq {

/// Which gradient statistics to accumulate; combine with `|`.
enum class grad_stats : unsigned {
    abs_sum = 1,  ///< A = Σ_s |g_s| (TaCQ, gradient × delta)
    sum = 2,      ///< Σ_s g_s
    sq_sum = 4,   ///< G2 = Σ_s g_s² (Fisher)
    all = 7,
};
/// Union of statistic sets.
constexpr grad_stats operator|(grad_stats a, grad_stats b) {
    return static_cast<grad_stats>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
/// True if `set` contains every statistic of `s`.
constexpr bool contains(grad_stats set, grad_stats s) {
    return (static_cast<unsigned>(set) & static_cast<unsigned>(s)) == static_cast<unsigned>(s);
}

namespace detail {

/// Rows per parallel chunk so that a chunk holds ~32K elements.
inline index_t rows_grain(index_t cols) { return std::max<index_t>(1, 32768 / std::max<index_t>(cols, 1)); }

/// Lowest row reported by any chunk; deterministic whatever the thread timing.
struct first_bad_row {
    std::atomic<index_t> row{-1};
    void report(index_t r) {
        index_t cur = row.load(std::memory_order_relaxed);
        while ((cur < 0 || r < cur) && !row.compare_exchange_weak(cur, r, std::memory_order_relaxed)) {
        }
    }
    [[nodiscard]] index_t get() const { return row.load(std::memory_order_relaxed); }
};

/// acc_abs += |g|, acc_sum += g, acc_sq += g·g over one row; null outputs are
/// skipped. Returns false if a result is not finite.
inline bool accumulate_row(const float* g, float* abs_out, float* sum_out, float* sq_out, index_t n) {
    using fb = simd::fbatch;
    constexpr index_t W = static_cast<index_t>(fb::size);
    const fb big(FLT_MAX);
    auto ok = fb(0.f) == fb(0.f);
    index_t i = 0;
    for (; i + W <= n; i += W) {
        const fb v = fb::load_unaligned(g + i);
        if (abs_out) {
            const fb a = fb::load_unaligned(abs_out + i) + xsimd::abs(v);
            ok = ok && (a <= big);  // false for NaN and +inf
            a.store_unaligned(abs_out + i);
        }
        if (sum_out) {
            const fb a = fb::load_unaligned(sum_out + i) + v;
            ok = ok && (xsimd::abs(a) <= big);
            a.store_unaligned(sum_out + i);
        }
        if (sq_out) {
            const fb a = fb::load_unaligned(sq_out + i) + v * v;
            ok = ok && (a <= big);
            a.store_unaligned(sq_out + i);
        }
    }
    bool good = xsimd::all(ok);
    for (; i < n; ++i) {
        const float v = g[i];
        if (abs_out) good &= (abs_out[i] = abs_out[i] + std::fabs(v)) <= FLT_MAX;
        if (sum_out) good &= std::fabs(sum_out[i] = sum_out[i] + v) <= FLT_MAX;
        if (sq_out) good &= (sq_out[i] = sq_out[i] + v * v) <= FLT_MAX;
    }
    return good;
}

/// Names the first bad element of row r of g (or reports an overflow) and throws.
[[noreturn]] inline void accumulate_fail(std::string_view what, matrix_view<const float> g, index_t r) {
    for (index_t c = 0; c < g.cols(); ++c)
        if (!std::isfinite(g(r, c))) fail(what, ": non-finite gradient ", g(r, c), " at (", r, ", ", c, ")");
    fail(what, ": accumulated value overflows fp32 in row ", r);
}

/// Fused accumulation of the non-empty outputs; all must be shaped like g.
inline void accumulate_fused(std::string_view what, matrix_view<float> abs_acc, matrix_view<float> sum_acc,
                             matrix_view<float> sq_acc, matrix_view<const float> g, const exec_policy& pol) {
    for (auto* a : {&abs_acc, &sum_acc, &sq_acc})
        if (a->data() || a->rows() || a->cols()) require_shape(*a, g.rows(), g.cols(), detail::cat(what, ": accumulator"));
    first_bad_row bad;
    parallel_for(pol, g.rows(), rows_grain(g.cols()), [&](index_t r0, index_t r1) {
        for (index_t r = r0; r < r1; ++r)
            if (!accumulate_row(g.row(r), abs_acc.data() ? abs_acc.row(r) : nullptr,
                                sum_acc.data() ? sum_acc.row(r) : nullptr, sq_acc.data() ? sq_acc.row(r) : nullptr,
                                g.cols())) {
                bad.report(r);
                return;
            }
    });
    if (bad.get() >= 0) accumulate_fail(what, g, bad.get());
}

}  // namespace detail

/// acc += |g| element-wise. Throws tcq::error on a shape mismatch, a non-finite
/// gradient or an fp32 overflow; `acc` is then partly updated (unspecified).
inline void accumulate_abs(matrix_view<float> acc, matrix_view<const float> g, const exec_policy& pol = seq()) {
    require_shape(acc, g.rows(), g.cols(), "accumulate_abs: acc");
    detail::accumulate_fused("accumulate_abs", acc, {}, {}, g, pol);
}

/// acc += g element-wise. Errors as accumulate_abs.
inline void accumulate(matrix_view<float> acc, matrix_view<const float> g, const exec_policy& pol = seq()) {
    require_shape(acc, g.rows(), g.cols(), "accumulate: acc");
    detail::accumulate_fused("accumulate", {}, acc, {}, g, pol);
}

/// acc += g·g element-wise. Errors as accumulate_abs.
inline void accumulate_sq(matrix_view<float> acc, matrix_view<const float> g, const exec_policy& pol = seq()) {
    require_shape(acc, g.rows(), g.cols(), "accumulate_sq: acc");
    detail::accumulate_fused("accumulate_sq", {}, {}, acc, g, pol);
}

/// Owning accumulator of the chosen gradient statistics of one rows × cols
/// weight matrix, fed one per-sample gradient at a time.
///
/// After an error (non-finite gradient, overflow) the sums are partly updated;
/// the accumulator then refuses further use until reset(), so a corrupted sum
/// can never reach a score silently.
class grad_accumulator {
public:
    grad_accumulator() = default;
    /// Zeroed accumulator; `name` appears in error messages.
    grad_accumulator(index_t rows, index_t cols, grad_stats stats = grad_stats::abs_sum,
                     std::string name = "grad_accumulator")
        : rows_(rows), cols_(cols), stats_(stats), name_(std::move(name)) {
        require(rows >= 0 && cols >= 0, name_, ": negative shape ", rows, "x", cols);
        require(static_cast<unsigned>(stats) != 0 && static_cast<unsigned>(stats) <= 7u, name_,
                ": invalid statistic set ", static_cast<unsigned>(stats));
        const auto n = static_cast<std::size_t>(rows * cols);
        if (contains(stats, grad_stats::abs_sum)) abs_.assign(n, 0.f);
        if (contains(stats, grad_stats::sum)) sum_.assign(n, 0.f);
        if (contains(stats, grad_stats::sq_sum)) sq_.assign(n, 0.f);
    }

    /// Adds one sample's gradient (shaped rows × cols), reading it once.
    void add(matrix_view<const float> g, const exec_policy& pol = seq()) {
        require_usable();
        require_shape(g, rows_, cols_, detail::cat(name_, ": gradient of sample ", samples_));
        failed_ = true;  // cleared on success
        detail::accumulate_fused(detail::cat(name_, " (sample ", samples_, ")"), view(abs_), view(sum_), view(sq_), g, pol);
        failed_ = false;
        ++samples_;
    }

    /// Adds the sums of another accumulator of the same shape and statistics
    /// (sample sets disjoint): this += o element-wise, one rounding per element.
    /// Combining chunk partials in a fixed order (core/chunk_tree.hpp) makes
    /// the result independent of how the samples were split.
    void merge(const grad_accumulator& o) {
        require_usable();
        o.require_usable();
        require(o.rows_ == rows_ && o.cols_ == cols_ && o.stats_ == stats_, name_, ": merge with ", o.rows_, "x", o.cols_,
                " statistics ", static_cast<unsigned>(o.stats_), " (this is ", rows_, "x", cols_, ", statistics ",
                static_cast<unsigned>(stats_), ")");
        auto add = [&](std::vector<float>& a, const std::vector<float>& b, const char* what) {
            for (std::size_t i = 0; i < a.size(); ++i) {
                a[i] += b[i];
                if (!(std::fabs(a[i]) <= FLT_MAX)) {
                    failed_ = true;
                    fail(name_, ": merged ", what, " overflows fp32 at flat index ", i);
                }
            }
        };
        add(abs_, o.abs_, "abs_sum");
        add(sum_, o.sum_, "sum");
        add(sq_, o.sq_, "sq_sum");
        samples_ += o.samples_;
    }

    /// An accumulator holding `samples` samples with the given sums (each
    /// rows·cols values, empty when not in `stats`), e.g. received from
    /// another process. Throws on a size mismatch or a non-finite sum.
    [[nodiscard]] static grad_accumulator from_sums(index_t rows, index_t cols, grad_stats stats, index_t samples,
                                                    std::span<const float> abs, std::span<const float> sum,
                                                    std::span<const float> sq, std::string name = "grad_accumulator") {
        grad_accumulator a(rows, cols, stats, std::move(name));
        require(samples >= 0, a.name_, ": negative sample count ", samples);
        auto set = [&](std::vector<float>& dst, std::span<const float> src, const char* what) {
            require(src.size() == dst.size(), a.name_, ": ", src.size(), " values of ", what, " for ", dst.size());
            for (std::size_t i = 0; i < src.size(); ++i)
                require(std::fabs(src[i]) <= FLT_MAX, a.name_, ": non-finite ", what, " at flat index ", i);
            std::copy(src.begin(), src.end(), dst.begin());
        };
        set(a.abs_, abs, "abs_sum");
        set(a.sum_, sum, "sum");
        set(a.sq_, sq, "sq_sum");
        a.samples_ = samples;
        return a;
    }

    /// Zeroes the sums and the sample count; clears a failed state.
    void reset() {
        std::fill(abs_.begin(), abs_.end(), 0.f);
        std::fill(sum_.begin(), sum_.end(), 0.f);
        std::fill(sq_.begin(), sq_.end(), 0.f);
        samples_ = 0;
        failed_ = false;
    }

    /// Rows of the weight matrix.
    [[nodiscard]] index_t rows() const noexcept { return rows_; }
    /// Columns of the weight matrix.
    [[nodiscard]] index_t cols() const noexcept { return cols_; }
    /// Samples added so far.
    [[nodiscard]] index_t samples() const noexcept { return samples_; }
    /// Statistics tracked.
    [[nodiscard]] grad_stats stats() const noexcept { return stats_; }

    /// Σ_s |g_s|; throws if not tracked or after a failed add().
    [[nodiscard]] matrix_view<const float> abs_sum() const { return get(abs_, grad_stats::abs_sum, "abs_sum"); }
    /// Σ_s g_s; throws if not tracked or after a failed add().
    [[nodiscard]] matrix_view<const float> sum() const { return get(sum_, grad_stats::sum, "sum"); }
    /// Σ_s g_s²; throws if not tracked or after a failed add().
    [[nodiscard]] matrix_view<const float> sq_sum() const { return get(sq_, grad_stats::sq_sum, "sq_sum"); }

private:
    matrix_view<float> view(std::vector<float>& v) {
        return v.empty() && rows_ * cols_ > 0 ? matrix_view<float>{} : matrix_view<float>(v.data(), rows_, cols_);
    }
    void require_usable() const {
        require(!failed_, name_, ": unusable after a failed add() at sample ", samples_, "; call reset()");
    }
    matrix_view<const float> get(const std::vector<float>& v, grad_stats s, const char* what) const {
        require(contains(stats_, s), name_, ": statistic ", what, " is not tracked");
        require_usable();
        return matrix_view<const float>(v.data(), rows_, cols_);
    }

    index_t rows_ = 0;
    index_t cols_ = 0;
    grad_stats stats_ = grad_stats::abs_sum;
    std::string name_ = "grad_accumulator";
    std::vector<float> abs_, sum_, sq_;
    index_t samples_ = 0;
    bool failed_ = false;
};

}  // namespace tcq
