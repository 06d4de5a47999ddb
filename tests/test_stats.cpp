// Statistics over calibration seeds: summaries, Student-t quantiles, paired
// comparisons, the seed-list parser and the comparison reports.
#include <doctest/doctest.h>

#include <numbers>
#include <string>
#include <vector>

#include "tcq/pipeline/comparison.hpp"
#include "tcq/pipeline/seed_list.hpp"
#include "tcq/pipeline/stats.hpp"

TEST_CASE("stats: mean and sample sd against hand-computed values") {
    const std::vector<double> x = {2, 4, 4, 4, 5, 5, 7, 9};  // mean 5, Σ(x−5)² = 32
    const auto s = tcq::summarize(x);
    CHECK(s.n == 8);
    CHECK(s.mean == 5.0);
    CHECK(s.sd == doctest::Approx(std::sqrt(32.0 / 7.0)).epsilon(1e-15));
    // far from zero: the two-pass sd does not cancel
    std::vector<double> y;
    for (double v : x) y.push_back(v + 1e9);
    CHECK(tcq::summarize(y).sd == doctest::Approx(s.sd).epsilon(1e-9));
    const std::vector<double> one = {3.5};
    CHECK(tcq::summarize(one).mean == 3.5);
    CHECK(std::isnan(tcq::summarize(one).sd));
    CHECK(std::isnan(tcq::summarize(std::vector<double>{}).mean));
    const std::vector<double> bad = {1, std::nan("")};
    CHECK_THROWS_AS((void)tcq::summarize(bad), tcq::error);
}

TEST_CASE("stats: Student-t quantiles and CDF") {
    struct row { double p, df, t; };
    // two-sided 95 % (p = 0.975) and one-sided 95 %/99 % quantiles, from standard tables
    const row rows[] = {{0.975, 1, 12.706204736}, {0.975, 2, 4.302652730}, {0.975, 4, 2.776445105},
                        {0.975, 9, 2.262157163},  {0.975, 29, 2.045229642}, {0.975, 100, 1.983971519},
                        {0.95, 3, 2.353363435},   {0.99, 9, 2.821437925},   {0.995, 1, 63.656741163}};
    for (const auto& r : rows) {
        CAPTURE(r.p);
        CAPTURE(r.df);
        CHECK(tcq::student_t_quantile(r.p, r.df) == doctest::Approx(r.t).epsilon(1e-9));
        CHECK(tcq::student_t_quantile(1 - r.p, r.df) == doctest::Approx(-r.t).epsilon(1e-9));
        CHECK(tcq::student_t_cdf(r.t, r.df) == doctest::Approx(r.p).epsilon(1e-8));
    }
    // df = 1 is Cauchy: cdf(t) = 1/2 + atan(t)/π; df = 2: t = (2p−1)·sqrt(2/(4p(1−p)))
    CHECK(tcq::student_t_cdf(0.7, 1) == doctest::Approx(0.5 + std::atan(0.7) / std::numbers::pi).epsilon(1e-13));
    const double p = 0.9;
    CHECK(tcq::student_t_quantile(p, 2) == doctest::Approx((2 * p - 1) * std::sqrt(2 / (4 * p * (1 - p)))).epsilon(1e-11));
    // large df approaches the normal quantile 1.959964
    CHECK(tcq::student_t_quantile(0.975, 1e6) == doctest::Approx(1.959966).epsilon(1e-6));
    CHECK(tcq::student_t_quantile(0.5, 7) == 0.0);
    CHECK_THROWS_AS((void)tcq::student_t_quantile(1.0, 5), tcq::error);
    CHECK_THROWS_AS((void)tcq::student_t_quantile(0.9, 0), tcq::error);
    CHECK_THROWS_AS((void)tcq::student_t_quantile(0.9, std::nan("")), tcq::error);
    CHECK(tcq::incomplete_beta(2, 3, 0.4) == doctest::Approx(0.5248).epsilon(1e-12));  // Σ_{j=2..4} C(4,j) x^j (1−x)^(4−j)
}

TEST_CASE("stats: paired comparison by hand") {
    // differences m − b = {−0.1, −0.3, 0.2, −0.2, 0}: mean −0.08, Σ(d+0.08)² = 0.148, sd = sqrt(0.037)
    const std::vector<double> b = {1.0, 1.5, 1.2, 0.9, 1.1};
    const std::vector<double> m = {0.9, 1.2, 1.4, 0.7, 1.1};
    const auto lo = tcq::compare_paired(m, b, tcq::better::lower);
    CHECK(lo.n == 5);
    CHECK(lo.mean == doctest::Approx(-0.08).epsilon(1e-12));
    CHECK(lo.sd == doctest::Approx(std::sqrt(0.037)).epsilon(1e-12));
    const double hw = 2.776445105 * std::sqrt(0.037) / std::sqrt(5.0);
    CHECK(lo.half_width == doctest::Approx(hw).epsilon(1e-9));
    CHECK(lo.lo == doctest::Approx(-0.08 - hw).epsilon(1e-9));
    CHECK(lo.hi == doctest::Approx(-0.08 + hw).epsilon(1e-9));
    CHECK(lo.wins == 3);  // lower is better: three pairs below, one tie, one above
    CHECK(lo.ties == 1);
    CHECK_FALSE(lo.significant());
    const auto hi = tcq::compare_paired(m, b, tcq::better::higher);
    CHECK(hi.wins == 1);
    CHECK(hi.ties == 1);
    // a consistent shift is significant
    const std::vector<double> shifted = {1.1, 1.6, 1.35, 1.0, 1.2};
    CHECK(tcq::compare_paired(shifted, b, tcq::better::higher).significant());
    CHECK(tcq::compare_paired(shifted, b, tcq::better::higher).wins == 5);
    // one pair: no interval
    const std::vector<double> a1 = {1}, b1 = {2};
    const auto c1 = tcq::compare_paired(a1, b1, tcq::better::lower);
    CHECK(c1.wins == 1);
    CHECK(std::isnan(c1.half_width));
    CHECK_FALSE(c1.significant());
    CHECK_THROWS_WITH_AS((void)tcq::compare_paired(a1, b, tcq::better::lower), doctest::Contains("1 method values but 5"),
                         tcq::error);
}

TEST_CASE("seed lists: ranges, lists and bad input") {
    using v = std::vector<std::uint64_t>;
    CHECK(tcq::parse_seed_list("0-9") == v{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(tcq::parse_seed_list("0,2,5") == v{0, 2, 5});
    CHECK(tcq::parse_seed_list("7") == v{7});
    CHECK(tcq::parse_seed_list("3-3") == v{3});
    CHECK(tcq::parse_seed_list("10-12,1") == v{10, 11, 12, 1});
    for (const char* bad : {"", ",", "1,", ",1", "1,,2", "a", "1-", "-3", "1-2-3", "5-2", "1,1", "0-3,2", " 1",
                            "1.5", "+1", "4611686018427387904", "0-1000000", "99999999999999999999"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS((void)tcq::parse_seed_list(bad), tcq::error);
    }
    CHECK_THROWS_WITH_AS((void)tcq::parse_seed_list("5-2"), doctest::Contains("runs backwards"), tcq::error);
    CHECK_THROWS_WITH_AS((void)tcq::parse_seed_list("1,2,1"), doctest::Contains("repeats seed 1"), tcq::error);
    CHECK_THROWS_WITH_AS((void)tcq::parse_seed_list("0,x"), doctest::Contains("'x' is not a seed"), tcq::error);
}

TEST_CASE("comparison: summary, paired rows and JSON") {
    tcq::comparison c({{"loss a", tcq::better::lower, 3}, {"acc", tcq::better::higher, 2}});
    c.add({"fp32", "fp32", 32, "32", std::nullopt, 32, 0, {1.0, 0.5}});
    const double gl[] = {1.3, 1.5, 1.4}, ga[] = {0.30, 0.20, 0.25};
    const double tl[] = {1.2, 1.3, 1.4}, ta[] = {0.28, 0.22, 0.19};
    for (std::uint64_t s = 0; s < 3; ++s) {
        c.add({"gptq", "GPTQ", 2, "2", s, 2.125, 1.0, {gl[s], ga[s]}});
        c.add({"tacq", "TaCQ", 2, "2 + 0.35%", s, 2.2, 3.0, {tl[s], ta[s]}});
    }
    CHECK_THROWS_WITH_AS(c.add({"tacq", "TaCQ", 2, "2", 1, 2.2, 0, {1, 1}}), doctest::Contains("added twice"), tcq::error);
    CHECK_THROWS_AS(c.add({"x", "x", 2, "2", 1, 2.2, 0, {1}}), tcq::error);
    CHECK_THROWS_AS(c.add({"x", "x", 2, "2", 1, 2.2, 0, {1, std::nan("")}}), tcq::error);
    const auto md = c.summary_markdown();
    CHECK(md.find("| fp32 | 32 | 32.0000 | 1.000 | 0.50 | 1 | — |") != std::string::npos);
    CHECK(md.find("| GPTQ | 2 | 2.1250 | 1.400 ± 0.100 | 0.25 ± 0.05 | 3 | 1.00 |") != std::string::npos);
    const auto rows = c.paired("gptq");
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].method == "tacq");
    // loss differences {−0.1, −0.2, 0}: mean −0.1, sd 0.1, half width 4.302653·0.1/√3
    CHECK(rows[0].metrics[0].mean == doctest::Approx(-0.1));
    CHECK(rows[0].metrics[0].half_width == doctest::Approx(4.302652730 * 0.1 / std::sqrt(3.0)).epsilon(1e-9));
    CHECK(rows[0].metrics[0].wins == 2);
    CHECK(rows[0].metrics[0].ties == 1);
    CHECK(rows[0].metrics[1].wins == 1);  // higher accuracy only on seed 1
    const auto pm = c.paired_markdown("gptq", "GPTQ");
    CHECK(pm.find("lower loss a, higher acc") != std::string::npos);
    CHECK(pm.find("| TaCQ | 2 | -0.100 [-0.348, +0.148] 2/3 |") != std::string::npos);
    CHECK_THROWS_WITH_AS((void)c.paired("rtn"), doctest::Contains("baseline 'rtn' has no run"), tcq::error);
    const auto js = c.json(std::string_view("gptq"));
    CHECK(js.find("{\"method\": \"tacq\", \"bits\": 2, \"label\": \"2 + 0.35%\", \"seed\": 2, \"bits_per_weight\": 2.2000000000000002, \"seconds\": 3, \"values\": {\"loss a\": 1.3999999999999999, \"acc\": 0.19}}") != std::string::npos);
    CHECK(js.find("\"seed\": null") != std::string::npos);
    CHECK(js.find("\"metric\": \"acc\", \"n\": 3") != std::string::npos);
}
