#pragma once
/// @file cmd_compare.hpp
/// @brief `tcq compare`: several methods and bit widths on one or more
/// calibration draws of one model; mean ± sd per metric and each method's
/// paired difference from a baseline (docs/algorithms.md §7).

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "command.hpp"
#include "llama/adapter.hpp"
#include "model_options.hpp"
#include "tcq/io/atomic_file.hpp"
#include "tcq/pipeline/comparison.hpp"
#include "tcq/pipeline/seed_list.hpp"

namespace tcq::cli {

inline const std::string compare_usage = usage_text({R"(usage: tcq compare --model PATH --calib FILE... --task NAME=FILE... [options]

Runs every --methods at every --bits on each calibration draw (--seed or
--seeds), evaluates each quantized model on the tasks (loss per task, and
a+b=c accuracy on the first arith task), and prints mean ± sd per method and
the paired difference of each method from --baseline with its 95% CI.
Gradients and contrasts are computed once per draw and shared by the methods.

options:
  --methods LIST        comma-separated methods (default rtn,gptq,spqr,tacq);
                        NAME:answer scores with the answer-span loss
                        (--answer-after or a *.jsonl --calib); NAME@matrix
                        or NAME@row splits the 16-bit budget evenly per
                        matrix or row (e.g. tacq:answer@matrix); NAME+N
                        (N = 1-3) re-selects N times on the final pass's Q(W)
  --bits LIST           comma-separated bit widths (default 2,3)
  --seeds LIST          calibration seeds, e.g. 0-9 or 0,2,5 (instead of --seed)
  --baseline LIST       methods the paired sections subtract, one section each
                        (default gptq); the JSON pairs with the first
  --json FILE           every per-seed number and the paired statistics as JSON
                        (rewritten after each seed, so partial results survive)
  --task NAME=FILE      a text to evaluate; repeatable (required)
  --eval-windows N      windows per task loss (default 64)
  --eval-problems N     a+b=c problems (default 500)
)", model_help, quant_help});

namespace compare_impl {

/// Comma-separated list → items.
inline std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::size_t b = 0;
    while (b <= s.size()) {
        const auto e = std::min(s.find(',', b), s.size());
        if (e > b) out.push_back(s.substr(b, e - b));
        b = e + 1;
    }
    return out;
}

/// One task of a comparison: its windows and, for a+b=c text, the text.
struct compare_task {
    std::string name;
    llama::token_batch windows;
    std::optional<std::string> arith;
};

/// The metric values of one model: each task's loss, then the accuracy of the first arith task.
inline std::vector<double> evaluate(const llama::model& m, const llama::text_codec& codec,
                                    const std::vector<compare_task>& tasks, index_t problems, const exec_policy& pol) {
    std::vector<double> v;
    for (const auto& t : tasks) v.push_back(llama::task_loss(m, t.windows.view(), pol).loss);
    for (const auto& t : tasks)
        if (t.arith) {
            v.push_back(llama::arith_accuracy(m, codec, *t.arith, t.name, problems, pol).accuracy());
            break;
        }
    return v;
}

}  // namespace compare_impl

/// Runs `tcq compare`.
inline int run_compare(const arguments& a) {
    const auto pol = policy_of(a);
    a.at_most_one_of({"seed", "seeds"});
    std::vector<std::uint64_t> seeds{seed_of(a)};
    if (const auto s = a.get("seeds")) {
        try {
            seeds = parse_seed_list(*s);
        } catch (const error& e) {
            throw usage_error(std::string("option '--seeds': ") + e.what());
        }
    }
    std::vector<method_spec> methods;
    for (const auto& s : compare_impl::split_list(a.get("methods").value_or("rtn,gptq,spqr,tacq")))
        methods.push_back(parse_method_spec(s, "methods"));
    std::vector<int> bit_list;
    for (const auto& s : compare_impl::split_list(a.get("bits").value_or("2,3")))
        bit_list.push_back(static_cast<int>(arguments::parse_integer("bits", s, 1, 8)));
    std::vector<method_spec> baselines;
    for (const auto& s : compare_impl::split_list(a.get("baseline").value_or("gptq"))) {
        baselines.push_back(parse_method_spec(s, "baseline"));
        bool ran = false;
        for (const auto& m : methods) ran |= m.key() == baselines.back().key();
        if (!ran && a.has("baseline")) throw usage_error("--baseline " + baselines.back().key() + " is not among --methods");
        if (!ran) baselines.pop_back();
    }
    const bool have_baseline = !baselines.empty();
    const auto json = a.get("json");
    if (json) check_writable(*json, "--json");
    const auto task_args = a.all("task");
    if (task_args.empty()) throw usage_error("give at least one --task NAME=FILE");
    const index_t windows = a.integer("eval-windows", 64, 1, 1 << 20);
    const index_t problems = a.integer("eval-problems", 500, 1, 1 << 20);
    const bool quiet = a.has("quiet");

    const auto base = load_model(a, pol);
    const index_t seq_len = seq_len_of(a, base.model);
    const auto streams = calibration_streams(a, base);
    std::vector<compare_impl::compare_task> tasks;
    std::vector<comparison_metric> metrics;
    for (const auto& t : task_args) {
        auto [name, file] = task_of(t);
        const auto text = llama::read_text(file);
        tasks.push_back({name, llama::id_eval_windows(base.codec.prefix(), base.codec.encode(text), windows, file, seq_len),
                         llama::is_arith_text(text) ? std::optional(text) : std::nullopt});
        metrics.push_back({"loss " + name, better::lower, 4});
    }
    for (const auto& t : tasks)
        if (t.arith) {
            metrics.push_back({"arith acc", better::higher, 3});
            break;
        }
    comparison cmp(metrics);
    auto say = [&](const comparison_run& r) {
        if (quiet) return;
        std::fprintf(stderr, "[compare] %s%s at %s:", r.seed ? ("seed " + std::to_string(*r.seed) + ": ").c_str() : "",
                     r.display.c_str(), r.label.c_str());
        for (std::size_t k = 0; k < metrics.size(); ++k) std::fprintf(stderr, " %s %.4f", metrics[k].name.c_str(), r.values[k]);
        std::fprintf(stderr, " (%.1fs)\n", r.seconds);
    };
    auto save = [&] {
        if (json)
            write_atomically(*json, "--json '" + *json + "'", [&](std::ostream& f) {
                f << cmp.json(have_baseline ? std::optional<std::string_view>(baselines[0].key()) : std::nullopt);
            });
    };
    if (!quiet) std::fprintf(stderr, "[compare] %zu seed(s); evaluating the unquantized model\n", seeds.size());
    cmp.add({"fp32", "fp32", 32, "32", std::nullopt, 32.0, 0, compare_impl::evaluate(base.model, base.codec, tasks, problems, pol)});
    say(cmp.runs().back());
    auto m = base.model;
    // Per reselecting method (key, bits): each run's mask overlap per round.
    std::map<std::pair<std::string, int>, std::vector<std::vector<double>>> overlaps;
    for (const auto seed : seeds) {
        // One pipeline per draw: gradients and contrasts are cached within it.
        m = base.model;
        const auto calib = calibration(a, base, streams, seed);
        llama::adapter ad(m, calib.view(), pol, true_sequential(a), nullptr, calib.scored_view());
        pipeline pipe(ad);
        for (int bits : bit_list)
            for (const auto& method : methods) {
                if (!quiet)
                    std::fprintf(stderr, "[compare] seed %llu: %s at %d bits, %lld calibration windows\n",
                                 static_cast<unsigned long long>(seed), method.display().c_str(), bits,
                                 static_cast<long long>(calib.count));
                const auto r = pipe.run(quant_options(a, method, bits, pol));
                if (!r.reselect_overlap.empty()) overlaps[{method.display(), bits}].push_back(r.reselect_overlap);
                char label[64];
                const storage_cost cost = r.bits();
                std::snprintf(label, sizeof label, r.kept() > 0 ? "%d + %.2f%%" : "%d", bits,
                              100.0 * cost.ratio(static_cast<std::uint64_t>(r.kept())));
                // Cached phases count in every run that uses them: the time one run alone costs.
                const double secs =
                    r.seconds_gradients + r.seconds_contrast + r.seconds_scores + r.seconds_select + r.seconds_final;
                cmp.add({method.key(), method.display(), bits, label, seed,
                         cost.per_weight(), secs, compare_impl::evaluate(m, base.codec, tasks, problems, pol)});
                say(cmp.runs().back());
            }
        save();
    }
    std::printf("%s", cmp.summary_markdown().c_str());
    if (methods.size() > 1)
        for (const auto& b : baselines) std::printf("\n%s", cmp.paired_markdown(b.key(), b.display()).c_str());
    if (!overlaps.empty()) {
        std::printf("\nIterative selection: the fraction of the previous round's 16-bit weights selected again, "
                    "mean [min, max] over seeds.\n\n| method | bits | round 1 | round 2 | round 3 |\n|---|---|---|---|---|\n");
        for (const auto& [key, runs] : overlaps) {
            std::printf("| %s | %d |", key.first.c_str(), key.second);
            for (std::size_t k = 0; k < 3; ++k) {
                double sum = 0, lo = 1, hi = 0;
                std::size_t n = 0;
                for (const auto& v : runs)
                    if (k < v.size()) sum += v[k], lo = std::min(lo, v[k]), hi = std::max(hi, v[k]), ++n;
                if (n)
                    std::printf(" %.3f [%.3f, %.3f] |", sum / static_cast<double>(n), lo, hi);
                else
                    std::printf(" — |");
            }
            std::printf("\n");
        }
    }
    std::fflush(stdout);
    return 0;
}

/// The `tcq compare` subcommand.
inline command compare_command() {
    return {"compare", "methods x bit widths x calibration seeds on one model, with paired statistics",
            compare_usage,
            join({quant_specs(),
                  {{"methods", true}, {"bits", true}, {"seeds", true}, {"baseline", true}, {"json", true},
                   {"task", true, 0, true}, {"eval-windows", true}, {"eval-problems", true}}}),
            0, run_compare};
}

}  // namespace tcq::cli
