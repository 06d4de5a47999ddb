#pragma once
/// @file comparison.hpp
/// @brief Results of a method comparison over calibration seeds, and their
/// reports: a markdown table of mean ± sd, the paired differences against a
/// baseline method (mean, 95 % t-interval, wins/N), and JSON with every
/// per-seed number. Engine-independent: an engine adds one run per
/// (method, bits, seed) with its metric values.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tcq/core/error.hpp"
#include "tcq/pipeline/stats.hpp"

namespace tcq {

/// One evaluated quantity, e.g. "loss arith" (lower is better) or "arith acc".
struct comparison_metric {
    std::string name;             ///< column name
    better dir = better::lower;   ///< which way is a win
    int decimals = 4;             ///< printed decimals
};

/// One evaluated model: a method at a bit width on one calibration draw.
struct comparison_run {
    std::string method;                  ///< key, e.g. "tacq" (what --baseline names)
    std::string display;                 ///< table name, e.g. "TaCQ"
    int bits = 0;                        ///< base bit width (the pairing key beside the seed)
    std::string label;                   ///< bits column, e.g. "2 + 0.35%"
    std::optional<std::uint64_t> seed;   ///< calibration seed; empty for a seed-independent model (fp32)
    double bits_per_weight = 0;          ///< exact stored bits per weight
    double seconds = 0;                  ///< time of the run (0: not timed)
    std::vector<double> values;          ///< one per metric, in metric order
};

/// Per-seed results of several methods and bit widths, and their statistics.
class comparison {
public:
    /// Starts an empty comparison over `metrics` (at least one).
    explicit comparison(std::vector<comparison_metric> metrics) : metrics_(std::move(metrics)) {
        require(!metrics_.empty(), "comparison: no metrics");
    }

    /// The metrics, in column order.
    [[nodiscard]] const std::vector<comparison_metric>& metrics() const { return metrics_; }
    /// Every run, in the order added.
    [[nodiscard]] const std::vector<comparison_run>& runs() const { return runs_; }

    /// Adds one run. Throws tcq::error on a wrong number of values, a
    /// non-finite value, or a (method, bits, seed) already present.
    void add(comparison_run r) {
        require(r.values.size() == metrics_.size(), "comparison: run '", r.method, "' at ", r.bits, " bits has ",
                r.values.size(), " values for ", metrics_.size(), " metrics");
        for (std::size_t i = 0; i < r.values.size(); ++i)
            require(std::isfinite(r.values[i]), "comparison: run '", r.method, "' at ", r.bits, " bits: ",
                    metrics_[i].name, " is ", r.values[i]);
        for (const auto& o : runs_)
            require(!(o.method == r.method && o.bits == r.bits && o.seed == r.seed), "comparison: run '", r.method,
                    "' at ", r.bits, " bits for seed ", r.seed ? std::to_string(*r.seed) : "none", " added twice");
        runs_.push_back(std::move(r));
    }

    /// Markdown table, one row per (method, bits) in order of first
    /// appearance: mean bits/weight (the 16-bit weights' positions change it
    /// slightly between seeds), each metric as mean ± sd over seeds (the mean
    /// alone for a single run), the number of seeds, and the mean time.
    [[nodiscard]] std::string summary_markdown() const {
        std::string s = "| method | bits | bits/weight |", rule = "|---|---|---|";
        for (const auto& m : metrics_) {
            s += " " + m.name + " |";
            rule += "---|";
        }
        s += " seeds | time (s) |\n" + rule + "---|---|\n";
        for (const auto& g : groups()) {
            const auto& first = runs_[g.front()];
            std::vector<double> bpw;
            for (std::size_t i : g) bpw.push_back(runs_[i].bits_per_weight);
            put(s, "| ", first.display, " | ", first.label, " | ", fmt(summarize(bpw).mean, 4), " |");
            for (std::size_t k = 0; k < metrics_.size(); ++k) {
                const auto sm = summarize(column(g, k));
                put(s, " ", fmt(sm.mean, metrics_[k].decimals));
                if (sm.n >= 2) put(s, " ± ", fmt(sm.sd, metrics_[k].decimals));
                s += " |";
            }
            const auto t = summarize(seconds(g));
            put(s, " ", std::to_string(g.size()), " | ", t.mean > 0 ? fmt(t.mean, 2) : std::string("—"), " |\n");
        }
        return s;
    }

    /// The paired comparison of every other method with `baseline` at the same
    /// bit width, metric by metric, over the seeds both ran.
    struct paired_row {
        std::string method;   ///< key of the method
        std::string display;  ///< its table name
        int bits = 0;         ///< bit width of both
        std::vector<paired_comparison> metrics;  ///< one per metric
    };
    /// Rows of the paired section. Throws tcq::error when `baseline` did not
    /// run at some bit width, or misses a seed another method ran.
    [[nodiscard]] std::vector<paired_row> paired(std::string_view baseline) const {
        std::vector<paired_row> out;
        for (const auto& g : groups()) {
            const auto& first = runs_[g.front()];
            if (first.method == baseline || !first.seed) continue;
            std::vector<std::size_t> base;
            for (std::size_t i : g) {
                const auto j = find(baseline, first.bits, runs_[i].seed);
                require(j.has_value(), "comparison: baseline '", baseline, "' has no run at ", first.bits,
                        " bits for seed ", *runs_[i].seed);
                base.push_back(*j);
            }
            paired_row row{first.method, first.display, first.bits, {}};
            for (std::size_t k = 0; k < metrics_.size(); ++k)
                row.metrics.push_back(compare_paired(column(g, k), column(base, k), metrics_[k].dir));
            out.push_back(std::move(row));
        }
        return out;
    }

    /// Markdown of paired(): per metric "mean [lo, hi] wins/N", with a line
    /// saying what a win is.
    [[nodiscard]] std::string paired_markdown(std::string_view baseline, std::string_view baseline_display) const {
        const auto rows = paired(baseline);
        std::string s = "Paired against " + std::string(baseline_display) +
                        " (same bits, same seed): mean difference (method − " + std::string(baseline_display) +
                        ") [95 % t-interval] wins/N; a win is";
        for (std::size_t k = 0; k < metrics_.size(); ++k)
            s += std::string(k ? "," : "") + " " + (metrics_[k].dir == better::lower ? "lower " : "higher ") +
                 metrics_[k].name;
        s += ".\n\n| method | bits |";
        std::string rule = "|---|---|";
        for (const auto& m : metrics_) {
            s += " Δ " + m.name + " |";
            rule += "---|";
        }
        s += "\n" + rule + "\n";
        for (const auto& r : rows) {
            s += "| " + r.display + " | " + std::to_string(r.bits) + " |";
            for (std::size_t k = 0; k < r.metrics.size(); ++k) {
                const auto& c = r.metrics[k];
                const int d = metrics_[k].decimals;
                put(s, " ", fmt(c.mean, d, true));
                if (c.n >= 2)
                    put(s, " [", fmt(c.lo, d, true), ", ", fmt(c.hi, d, true), "]");
                else
                    s += " [—]";
                put(s, " ", std::to_string(c.wins), "/", std::to_string(c.n), c.significant() ? " *" : "", " |");
            }
            s += "\n";
        }
        s += "\n`*`: the interval excludes 0.\n";
        return s;
    }

    /// JSON: the metrics, every run with its per-seed values, and (when
    /// `baseline` is given and ran) the paired statistics.
    [[nodiscard]] std::string json(std::optional<std::string_view> baseline = std::nullopt) const {
        std::string s = "{\n  \"metrics\": [";
        for (std::size_t k = 0; k < metrics_.size(); ++k)
            s += std::string(k ? ", " : "") + "{\"name\": " + quote(metrics_[k].name) + ", \"better\": \"" +
                 (metrics_[k].dir == better::lower ? "lower" : "higher") + "\"}";
        s += "],\n  \"runs\": [";
        for (std::size_t i = 0; i < runs_.size(); ++i) {
            const auto& r = runs_[i];
            s += std::string(i ? "," : "") + "\n    {\"method\": " + quote(r.method) + ", \"bits\": " +
                 std::to_string(r.bits) + ", \"label\": " + quote(r.label) + ", \"seed\": " +
                 (r.seed ? std::to_string(*r.seed) : std::string("null")) + ", \"bits_per_weight\": " +
                 num(r.bits_per_weight) + ", \"seconds\": " + num(r.seconds) + ", \"values\": {";
            for (std::size_t k = 0; k < metrics_.size(); ++k)
                s += std::string(k ? ", " : "") + quote(metrics_[k].name) + ": " + num(r.values[k]);
            s += "}}";
        }
        s += "\n  ]";
        if (baseline) {
            s += ",\n  \"baseline\": " + quote(*baseline) + ",\n  \"paired\": [";
            const auto rows = paired(*baseline);
            bool first = true;
            for (const auto& r : rows)
                for (std::size_t k = 0; k < r.metrics.size(); ++k) {
                    const auto& c = r.metrics[k];
                    s += std::string(first ? "" : ",") + "\n    {\"method\": " + quote(r.method) + ", \"bits\": " +
                         std::to_string(r.bits) + ", \"metric\": " + quote(metrics_[k].name) + ", \"n\": " +
                         std::to_string(c.n) + ", \"mean\": " + num(c.mean) + ", \"sd\": " + num(c.sd) +
                         ", \"ci95\": [" + num(c.lo) + ", " + num(c.hi) + "], \"wins\": " + std::to_string(c.wins) +
                         ", \"ties\": " + std::to_string(c.ties) + "}";
                    first = false;
                }
            s += "\n  ]";
        }
        s += "\n}\n";
        return s;
    }

private:
    /// Runs grouped by (method, bits), groups in order of first appearance.
    [[nodiscard]] std::vector<std::vector<std::size_t>> groups() const {
        std::vector<std::vector<std::size_t>> g;
        for (std::size_t i = 0; i < runs_.size(); ++i) {
            bool placed = false;
            for (auto& grp : g)
                if (runs_[grp.front()].method == runs_[i].method && runs_[grp.front()].bits == runs_[i].bits) {
                    grp.push_back(i);
                    placed = true;
                    break;
                }
            if (!placed) g.push_back({i});
        }
        return g;
    }
    [[nodiscard]] std::optional<std::size_t> find(std::string_view method, int bits,
                                                  std::optional<std::uint64_t> seed) const {
        for (std::size_t i = 0; i < runs_.size(); ++i)
            if (runs_[i].method == method && runs_[i].bits == bits && runs_[i].seed == seed) return i;
        return std::nullopt;
    }
    [[nodiscard]] std::vector<double> column(const std::vector<std::size_t>& idx, std::size_t k) const {
        std::vector<double> v;
        for (std::size_t i : idx) v.push_back(runs_[i].values[k]);
        return v;
    }
    [[nodiscard]] std::vector<double> seconds(const std::vector<std::size_t>& idx) const {
        std::vector<double> v;
        for (std::size_t i : idx) v.push_back(runs_[i].seconds);
        return v;
    }
    /// Appends every part to s (no temporaries; g++ 12 warns on literal + string).
    template <class... P>
    static void put(std::string& s, const P&... p) {
        (s += ... += p);
    }
    /// Fixed decimals; `sign` prints + for positive values (differences).
    static std::string fmt(double v, int decimals, bool sign = false) {
        char b[64];
        std::snprintf(b, sizeof b, sign ? "%+.*f" : "%.*f", decimals, v);
        return b;
    }
    /// Round-trip precision; NaN/Inf (undefined statistics) as null.
    static std::string num(double v) {
        if (!std::isfinite(v)) return "null";
        char b[32];
        std::snprintf(b, sizeof b, "%.17g", v);
        return b;
    }
    static std::string quote(std::string_view v) {
        std::string s = "\"";
        for (char c : v) {
            if (c == '"' || c == '\\') {
                s += '\\';
                s += c;
            } else if (static_cast<unsigned char>(c) < 0x20) {
                char b[8];
                std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned>(c));
                s += b;
            } else {
                s += c;
            }
        }
        return s + "\"";
    }

    std::vector<comparison_metric> metrics_;
    std::vector<comparison_run> runs_;
};

}  // namespace tcq
