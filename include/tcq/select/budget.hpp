#pragma once
/// @file budget.hpp
/// @brief How many weights to keep in 16-bit: a ratio, a count, or a target
/// average bits per weight, for a global, per-matrix or per-row scope.
///
/// Bit costs come only from tcq/core/storage_cost.hpp (the packed format's exact cost),
/// never from formulas of their own. A bit budget target·N is floored exactly
/// (128-bit integer arithmetic), so the achieved storage never exceeds it.
/// A ratio gives k = floor(fl(ratio·N)), the IEEE double product floored, as
/// the reference's `int(ratio * N)` does (ratio = 0.3, N = 10 gives 3, while
/// the exact value of the double 0.3 times 10 is just below 3).

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tcq/core/error.hpp"
#include "tcq/core/storage_cost.hpp"
#include "tcq/quant/grid.hpp"

namespace tcq {

/// Where one k applies.
enum class select_scope {
    global,      ///< one top-k over all matrices together (TaCQ's default)
    per_matrix,  ///< an independent top-k_m in every matrix
    per_row,     ///< an independent top-k_r in every row of every matrix
};

/// Name and shape of one scored matrix.
struct matrix_shape {
    std::string name;  ///< for error messages
    index_t rows = 0;  ///< output features
    index_t cols = 0;  ///< input features
    /// Number of weights, rows·cols.
    [[nodiscard]] index_t size() const noexcept { return rows * cols; }
};

namespace detail {
/// 64×64 → 128-bit product, portable.
inline void mul_u64(std::uint64_t a, std::uint64_t b, std::uint64_t& hi, std::uint64_t& lo) {
    const std::uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
    const std::uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    const std::uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    lo = (p00 & 0xffffffffu) | (mid << 32);
    hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/// floor(t·n) exactly, for finite t ≥ 0 (t = m·2^e with a 53-bit integer m).
inline std::uint64_t floor_mul(double t, std::uint64_t n) {
    require(std::isfinite(t) && t >= 0.0, "floor_mul: factor ", t, " must be finite and >= 0");
    if (t == 0.0 || n == 0) return 0;
    int e = 0;
    const double fr = std::frexp(t, &e);
    const auto m = static_cast<std::uint64_t>(std::ldexp(fr, 53));
    const int sh = e - 53;  // t = m·2^sh exactly
    std::uint64_t hi, lo;
    mul_u64(m, n, hi, lo);
    if (sh >= 0) {
        require(sh < 64 && hi == 0 && (sh == 0 || (lo >> (64 - sh)) == 0), "floor_mul: ", t, "·", n,
                " overflows 64 bits");
        return lo << sh;
    }
    const int s = -sh;
    if (s >= 128) return 0;
    if (s >= 64) return hi >> (s - 64);
    require((hi >> s) == 0, "floor_mul: ", t, "·", n, " overflows 64 bits");
    return (lo >> s) | (hi << (64 - s));
}
}  // namespace detail

/// Bits of a matrix without kept weights: codes + statistics (+ g_idx).
inline std::uint64_t base_storage_bits(const matrix_shape& s, const grid_spec& g, bool act_order) {
    return matrix_cost(s.rows, s.cols, g.bits, g.groups(s.cols), 0, act_order).total();
}

/// Exact bits of `shapes` at base grid `g` with kept[m] 16-bit weights in matrix m.
inline storage_cost storage_bits(std::span<const matrix_shape> shapes, std::span<const index_t> kept,
                                 const grid_spec& g, bool act_order = false) {
    g.validate("storage_bits");
    require(kept.size() == shapes.size(), "storage_bits: ", kept.size(), " kept counts for ", shapes.size(),
            " matrices");
    storage_cost r;
    for (std::size_t m = 0; m < shapes.size(); ++m) {
        const auto& s = shapes[m];
        require(kept[m] >= 0 && kept[m] <= s.size(), "storage_bits: matrix '", s.name, "' keeps ", kept[m],
                " of ", s.size(), " weights");
        r += matrix_cost(s.rows, s.cols, g.bits, g.groups(s.cols), kept[m], act_order);
    }
    return r;
}

/// A budget of 16-bit weights. Build with of_ratio / of_count / of_bits_per_weight.
class budget {
public:
    /// How the budget is given.
    enum class kind { ratio, count, bits_per_weight };

    /// k = floor(fl(ratio · N)) in the scope (N: weights of the scope). ratio ∈ [0, 1].
    [[nodiscard]] static budget of_ratio(double ratio) {
        require(std::isfinite(ratio) && ratio >= 0.0 && ratio <= 1.0, "budget: ratio ", ratio,
                " outside [0, 1]");
        budget b;
        b.kind_ = kind::ratio;
        b.ratio_ = ratio;
        return b;
    }
    /// TaCQ's default: ratio 0.0035 (0.35% of the scored weights).
    [[nodiscard]] static budget tacq_default() { return of_ratio(0.0035); }
    /// Exactly k weights in every scope unit (all matrices / each matrix / each row); k ≤ its size.
    [[nodiscard]] static budget of_count(index_t k) {
        require(k >= 0, "budget: count ", k, " is negative");
        budget b;
        b.kind_ = kind::count;
        b.count_ = k;
        return b;
    }
    /// The largest k whose exact packed storage (core/storage_cost.hpp: codes at
    /// `base.bits`, statistics per `base.group_size`, g_idx under act-order,
    /// kept weights) averages at most `target` bits per weight. See resolve_budget.
    [[nodiscard]] static budget of_bits_per_weight(double target, const grid_spec& base, bool act_order = false) {
        base.validate("budget: base grid");
        require(std::isfinite(target) && target > 0.0, "budget: target bits per weight ", target,
                " must be finite and positive");
        budget b;
        b.kind_ = kind::bits_per_weight;
        b.target_ = target;
        b.format_ = base;
        b.act_order_ = act_order;
        return b;
    }

    /// How the budget is given.
    [[nodiscard]] kind type() const noexcept { return kind_; }
    /// The ratio of a ratio budget.
    [[nodiscard]] double ratio() const noexcept { return ratio_; }
    /// The k of a count budget.
    [[nodiscard]] index_t count() const noexcept { return count_; }
    /// The target average bits per weight of a bits_per_weight budget.
    [[nodiscard]] double target_bits() const noexcept { return target_; }
    /// Base grid of a bits_per_weight budget.
    [[nodiscard]] const grid_spec& format() const noexcept { return format_; }
    /// Whether a bits_per_weight budget counts act-order's g_idx.
    [[nodiscard]] bool act_order() const noexcept { return act_order_; }

private:
    budget() = default;
    kind kind_ = kind::ratio;
    double ratio_ = 0.0;
    index_t count_ = 0;
    double target_ = 0.0;
    grid_spec format_{};
    bool act_order_ = false;
};

namespace detail {
/// floor(fl(ratio·n)) for ratio ∈ [0, 1].
inline index_t ratio_count(double ratio, std::uint64_t n) {
    return static_cast<index_t>(std::floor(ratio * static_cast<double>(n)));
}
/// Largest k ≤ n with base + fixed·[k > 0] + marginal·k ≤ limit; base ≤ limit.
inline index_t afford(std::uint64_t limit, std::uint64_t base, std::uint64_t fixed, std::uint64_t per_unit,
                      index_t n) {
    if (limit < base + fixed + per_unit) return 0;
    return static_cast<index_t>(std::min<std::uint64_t>(static_cast<std::uint64_t>(n), (limit - base - fixed) / per_unit));
}
}  // namespace detail

/// The k of every scope unit:
/// - global: one entry, k for all matrices together;
/// - per_matrix: k_m for each matrix;
/// - per_row: for each matrix, the count kept in every one of its rows.
///
/// Ratio: floor(fl(ratio·N)) with N the weights of the unit (global: all weights,
/// per row: cols). Count: k in every unit; more than the unit holds is an error.
///
/// Bits per weight: the largest k with exact storage ≤ target·N (floored exactly).
/// The fixed kept-weight overhead of a matrix (row bitmaps' bucket separators and
/// skip entries, cost::kept_fixed_bits) is paid only by matrices with ≥ 1
/// kept weight, which for a global budget depends on the selection itself. It is
/// resolved conservatively: the global solve counts the fixed overhead of every
/// non-empty matrix, so the achieved storage (selection::bits, exact) never
/// exceeds the target; it equals the solved bound whenever every non-empty
/// matrix receives a kept weight (at realistic k it does) and is lower otherwise.
/// per_matrix solves each matrix exactly against target·N_m; per_row finds, per
/// matrix, the largest count c kept in every row with storage ≤ target·N_m.
/// A target below the base cost (codes + statistics [+ g_idx]) is an error.
inline std::vector<index_t> resolve_budget(const budget& b, select_scope scope, std::span<const matrix_shape> shapes) {
    for (const auto& s : shapes)
        require(s.rows >= 0 && s.cols >= 0, "resolve_budget: matrix '", s.name, "' has negative shape ", s.rows,
                "x", s.cols);
    std::uint64_t N = 0;
    for (const auto& s : shapes) N += static_cast<std::uint64_t>(s.size());
    std::vector<index_t> k;
    switch (b.type()) {
        case budget::kind::ratio:
            if (scope == select_scope::global) return {detail::ratio_count(b.ratio(), N)};
            for (const auto& s : shapes)
                k.push_back(detail::ratio_count(
                    b.ratio(), static_cast<std::uint64_t>(scope == select_scope::per_matrix ? s.size() : s.cols)));
            return k;
        case budget::kind::count:
            if (scope == select_scope::global) {
                require(static_cast<std::uint64_t>(b.count()) <= N, "resolve_budget: count ", b.count(),
                        " exceeds the ", N, " scored weights");
                return {b.count()};
            }
            for (const auto& s : shapes) {
                const index_t cap = scope == select_scope::per_matrix ? s.size() : s.cols;
                require(b.count() <= cap || (scope == select_scope::per_row && s.rows == 0), "resolve_budget: count ",
                        b.count(), " exceeds the ", cap, " weights of ",
                        scope == select_scope::per_matrix ? "matrix '" : "each row of matrix '", s.name, "'");
                k.push_back(b.count());
            }
            return k;
        case budget::kind::bits_per_weight: {
            const grid_spec& g = b.format();
            const auto base_of = [&](const matrix_shape& s) { return base_storage_bits(s, g, b.act_order()); };
            const auto bpw = [](std::uint64_t bits, std::uint64_t n) {
                return n ? static_cast<double>(bits) / static_cast<double>(n) : 0.0;
            };
            if (scope == select_scope::global) {
                std::uint64_t base = 0, fixed = 0;
                for (const auto& s : shapes) {
                    base += base_of(s);
                    if (s.size() > 0) fixed += cost::kept_fixed_bits(s.rows, s.cols);
                }
                const std::uint64_t limit = detail::floor_mul(b.target_bits(), N);
                require(base <= limit, "resolve_budget: target ", b.target_bits(),
                        " bits/weight is below the base cost of ", bpw(base, N), " bits/weight (", base, " bits for ", N,
                        " weights at ", g.bits, " bits, group size ", g.group_size, ")");
                if (limit < base + fixed) return {0};
                return {static_cast<index_t>(std::min<std::uint64_t>(N, (limit - base - fixed) / cost::kept_marginal_bits))};
            }
            for (const auto& s : shapes) {
                if (s.size() == 0) {
                    k.push_back(0);
                    continue;
                }
                const std::uint64_t n = static_cast<std::uint64_t>(s.size());
                const std::uint64_t base = base_of(s), limit = detail::floor_mul(b.target_bits(), n);
                require(base <= limit, "resolve_budget: target ", b.target_bits(),
                        " bits/weight is below the base cost of matrix '", s.name, "', ", bpw(base, n), " bits/weight");
                const std::uint64_t fixed = cost::kept_fixed_bits(s.rows, s.cols);
                if (scope == select_scope::per_matrix)
                    k.push_back(detail::afford(limit, base, fixed, cost::kept_marginal_bits, s.size()));
                else
                    k.push_back(detail::afford(limit, base, fixed,
                                               static_cast<std::uint64_t>(cost::kept_marginal_bits) *
                                                   static_cast<std::uint64_t>(s.rows),
                                               s.cols));
            }
            return k;
        }
    }
    fail("resolve_budget: unknown budget kind");
}

}  // namespace tcq
