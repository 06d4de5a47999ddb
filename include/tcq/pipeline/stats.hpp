#pragma once
/// @file stats.hpp
/// @brief Statistics over repeated runs (e.g. calibration seeds): mean and
/// sample standard deviation, Student-t quantiles, and the paired comparison
/// of a method against a baseline (mean difference, 95 % t-interval, wins).
/// Engine-independent: the inputs are plain numbers.

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <vector>

#include "tcq/core/error.hpp"

namespace tcq {

/// Mean and spread of a sample.
struct sample_summary {
    std::size_t n = 0;  ///< observations
    double mean = 0;    ///< arithmetic mean (NaN when n = 0)
    double sd = 0;      ///< sample standard deviation, divisor n − 1 (NaN when n < 2)
};

/// Mean and sample standard deviation of `x`; every value must be finite.
[[nodiscard]] inline sample_summary summarize(std::span<const double> x) {
    constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    sample_summary s{x.size(), nan, nan};
    if (x.empty()) return s;
    double sum = 0;
    for (double v : x) {
        require(std::isfinite(v), "summarize: non-finite value ", v);
        sum += v;
    }
    s.mean = sum / static_cast<double>(x.size());
    if (x.size() < 2) return s;
    double ss = 0;  // two-pass: no cancellation for values far from 0
    for (double v : x) ss += (v - s.mean) * (v - s.mean);
    s.sd = std::sqrt(ss / static_cast<double>(x.size() - 1));
    return s;
}

namespace detail {

/// Continued fraction of the regularized incomplete beta (modified Lentz);
/// converges fast for x < (a + 1)/(a + b + 2).
inline double beta_fraction(double a, double b, double x) {
    constexpr double tiny = 1e-300, eps = 1e-16;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    if (std::fabs(d) < tiny) d = tiny;
    d = 1 / d;
    double f = d;
    for (int m = 1; m <= 1000; ++m) {
        const double m2 = 2.0 * m;
        double num = m * (b - m) * x / ((a + m2 - 1) * (a + m2));  // even step
        d = 1 + num * d;
        c = 1 + num / c;
        if (std::fabs(d) < tiny) d = tiny;
        if (std::fabs(c) < tiny) c = tiny;
        d = 1 / d;
        f *= d * c;
        num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));  // odd step
        d = 1 + num * d;
        c = 1 + num / c;
        if (std::fabs(d) < tiny) d = tiny;
        if (std::fabs(c) < tiny) c = tiny;
        d = 1 / d;
        const double delta = d * c;
        f *= delta;
        if (std::fabs(delta - 1) < eps) break;
    }
    return f;
}

}  // namespace detail

/// Regularized incomplete beta I_x(a, b) for a, b > 0 and x ∈ [0, 1].
[[nodiscard]] inline double incomplete_beta(double a, double b, double x) {
    require(a > 0 && b > 0 && std::isfinite(a) && std::isfinite(b), "incomplete_beta: parameters a = ", a, ", b = ", b,
            " must be positive and finite");
    require(x >= 0 && x <= 1, "incomplete_beta: x = ", x, " outside [0, 1]");
    if (x == 0 || x == 1) return x;
    const double front =
        std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x));
    if (x < (a + 1) / (a + b + 2)) return front * detail::beta_fraction(a, b, x) / a;
    return 1 - front * detail::beta_fraction(b, a, 1 - x) / b;  // symmetry I_x(a,b) = 1 − I_{1−x}(b,a)
}

/// CDF of Student's t distribution with `df` > 0 degrees of freedom.
[[nodiscard]] inline double student_t_cdf(double t, double df) {
    require(df > 0 && std::isfinite(df), "student_t_cdf: degrees of freedom ", df, " must be positive and finite");
    require(!std::isnan(t), "student_t_cdf: t is NaN");
    if (std::isinf(t)) return t > 0 ? 1.0 : 0.0;
    const double tail = 0.5 * incomplete_beta(df / 2, 0.5, df / (df + t * t));  // P(T > |t|)
    return t >= 0 ? 1 - tail : tail;
}

/// Quantile of Student's t with `df` > 0 degrees of freedom: the t with
/// cdf(t) = p, p ∈ (0, 1). Computed by bisection on the CDF (not tabulated),
/// accurate to about 1e-12 relative; e.g. p = 0.975, df = 9 → 2.262157.
[[nodiscard]] inline double student_t_quantile(double p, double df) {
    require(p > 0 && p < 1, "student_t_quantile: probability ", p, " outside (0, 1)");
    require(df > 0 && std::isfinite(df), "student_t_quantile: degrees of freedom ", df,
            " must be positive and finite");
    if (p == 0.5) return 0;
    if (p < 0.5) return -student_t_quantile(1 - p, df);
    double lo = 0, hi = 1;
    while (student_t_cdf(hi, df) < p) {
        lo = hi;
        hi *= 2;
        require(hi < 1e300, "student_t_quantile: no bracket for p = ", p, ", df = ", df);
    }
    for (int i = 0; i < 200 && hi - lo > 1e-13 * hi; ++i) {
        const double mid = 0.5 * (lo + hi);
        (student_t_cdf(mid, df) < p ? lo : hi) = mid;
    }
    return 0.5 * (lo + hi);
}

/// Which way a metric improves.
enum class better { lower, higher };

/// A method against a baseline over paired runs (same seed ↔ same position).
struct paired_comparison {
    std::size_t n = 0;      ///< pairs
    double mean = 0;        ///< mean of method − baseline
    double sd = 0;          ///< sample sd of the differences (NaN when n < 2)
    double half_width = 0;  ///< t_{(1+level)/2, n−1} · sd / √n (NaN when n < 2)
    double lo = 0;          ///< mean − half_width
    double hi = 0;          ///< mean + half_width
    std::size_t wins = 0;   ///< pairs where the method is strictly better
    std::size_t ties = 0;   ///< pairs with equal values
    /// True when the interval excludes 0 (false when it is undefined).
    [[nodiscard]] bool significant() const { return n >= 2 && (lo > 0 || hi < 0); }
};

/// Paired differences method[i] − baseline[i], their mean, a two-sided
/// Student-t interval at `level` (0.95 by default), and the count of pairs
/// where the method is better in direction `dir`. Sizes must match.
[[nodiscard]] inline paired_comparison compare_paired(std::span<const double> method, std::span<const double> baseline,
                                                      better dir, double level = 0.95) {
    require(method.size() == baseline.size(), "compare_paired: ", method.size(), " method values but ",
            baseline.size(), " baseline values");
    require(level > 0 && level < 1, "compare_paired: confidence level ", level, " outside (0, 1)");
    std::vector<double> d(method.size());
    paired_comparison c;
    for (std::size_t i = 0; i < d.size(); ++i) {
        d[i] = method[i] - baseline[i];
        if (method[i] == baseline[i])
            ++c.ties;
        else if (dir == better::lower ? method[i] < baseline[i] : method[i] > baseline[i])
            ++c.wins;
    }
    const auto s = summarize(d);
    c.n = s.n;
    c.mean = s.mean;
    c.sd = s.sd;
    c.half_width = s.n >= 2 ? student_t_quantile(0.5 + level / 2, static_cast<double>(s.n - 1)) * s.sd /
                                  std::sqrt(static_cast<double>(s.n))
                            : std::numeric_limits<double>::quiet_NaN();
    c.lo = c.mean - c.half_width;
    c.hi = c.mean + c.half_width;
    return c;
}

}  // namespace tcq
