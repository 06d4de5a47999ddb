// tcq-llama2c: quantize llama2.c models with TaCQ and its baselines, compare
// them, evaluate and generate (fp32 checkpoints or tcq files).
// Results go to stdout, progress to stderr. Exit codes: 0 ok, 1 failure,
// 2 usage error.

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "l2c.hpp"
#include "quant_cli.hpp"
#include "tcq_adapter.hpp"
#include "tcq_file.hpp"
#include "tcq/io/atomic_file.hpp"
#include "tcq/pipeline/comparison.hpp"
#include "tcq/pipeline/seed_list.hpp"

namespace {

using l2c::cli::command;
using l2c::cli::option;
using l2c::cli::parsed;
using l2c::cli::usage_error;
using l2c::quant_cli::calibration;
using l2c::quant_cli::calibration_texts;
using l2c::quant_cli::opt_threads;
using l2c::quant_cli::policy;
using l2c::quant_cli::quant_flags;
using l2c::quant_cli::quant_options;
using l2c::quant_cli::single_seed;
using l2c::quant_cli::true_sequential;

std::vector<option> concat(std::vector<option> a, const std::vector<option>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}


const option opt_tcq{"tcq", "FILE", "tcq file whose packed linear layers replace the checkpoint's"};

/// The one place that turns --model (and --tcq) into a model.
l2c::model load_model(const parsed& p, const tcq::exec_policy& pol) {
    auto m = l2c::load_checkpoint(*p.value("model"));
    if (const auto f = p.value("tcq")) l2c::apply_tcq(m, tcq::packed_file::open(*f), pol);
    return m;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// NAME=FILE → (NAME, FILE).
std::pair<std::string, std::string> split_task(const std::string& s) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
        throw usage_error("--task expects NAME=FILE, got '" + s + "'");
    return {s.substr(0, eq), s.substr(eq + 1)};
}

int run_eval(const parsed& p) {
    const auto pol = policy(p);
    std::vector<std::pair<std::string, std::string>> tasks;
    for (const auto& t : p.values("task")) tasks.push_back(split_task(t));
    const auto t0 = std::chrono::steady_clock::now();
    const auto m = load_model(p, pol);
    std::fprintf(stderr, "[eval] loaded %s (%.2fs)\n", p.value("model")->c_str(), seconds_since(t0));
    std::printf("| task | windows | loss (nats/byte) | accuracy |\n|---|---|---|---|\n");
    for (const auto& [name, file] : tasks) {
        const auto text = l2c::read_text(file);
        const auto t1 = std::chrono::steady_clock::now();
        const auto loss = l2c::task_loss(m, text, pol, file);
        std::fprintf(stderr, "[eval] %s: loss %.4f over %lld windows (%.2fs)\n", name.c_str(), loss.loss,
                     static_cast<long long>(loss.windows), seconds_since(t1));
        std::string acc = "—";
        if (l2c::is_arith_text(text)) {
            const auto t2 = std::chrono::steady_clock::now();
            const auto a = l2c::arith_accuracy(m, text, pol, file);
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.3f (%lld/%lld)", a.accuracy(), static_cast<long long>(a.correct),
                          static_cast<long long>(a.total));
            acc = buf;
            std::fprintf(stderr, "[eval] %s: accuracy %s (%.2fs)\n", name.c_str(), buf, seconds_since(t2));
        }
        std::printf("| %s | %lld | %.4f | %s |\n", name.c_str(), static_cast<long long>(loss.windows), loss.loss,
                    acc.c_str());
        std::fflush(stdout);
    }
    return 0;
}

int run_generate(const parsed& p) {
    const auto m = load_model(p, tcq::par());
    const auto prompt = p.value_or("prompt", "");
    const auto steps = p.integer("steps", 64, 1, m.cfg().seq_len);
    const auto out = l2c::generate(m, prompt, steps);
    std::cout << prompt << out << "\n";
    return 0;
}

/// Comma-separated list → items.
std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::size_t b = 0;
    while (b <= s.size()) {
        const auto e = std::min(s.find(',', b), s.size());
        if (e > b) out.push_back(s.substr(b, e - b));
        b = e + 1;
    }
    return out;
}


int run_quantize(const parsed& p) {
    const auto pol = policy(p);
    auto m = l2c::load_checkpoint(*p.value("model"));
    const auto texts = calibration_texts(p);
    const auto calib = calibration(p, texts, single_seed(p));
    const auto method = tcq::parse_quant_method(p.value_or("method", "tacq"));
    const int bits = static_cast<int>(p.integer("bits", 3, 1, 8));
    l2c::tcq_adapter ad(m, calib, pol, true_sequential(p));
    tcq::pipeline pipe(ad);
    const auto r = pipe.run(quant_options(p, method, bits, pol));
    tcq::file_metadata meta;
    meta.calibration = std::to_string(calib.count) + " windows of 256 tokens from";
    for (const auto& f : p.values("calib")) meta.calibration += " " + f;
    meta.calibration += ", seed " + std::to_string(single_seed(p));
    const double bpw = l2c::save_tcq(r, meta, *p.value("out"), pol);
    std::printf("| layer | rows | cols | 16-bit weights | GPTQ loss | damping |\n|---|---|---|---|---|---|\n");
    for (const auto& l : r.reports)
        std::printf("| %s | %lld | %lld | %lld | %.4g | %.3g |\n", l.name.c_str(), static_cast<long long>(l.rows),
                    static_cast<long long>(l.cols), static_cast<long long>(l.kept), l.loss, l.relative_damping);
    std::printf("\n%s at %d bits: %.4f bits/weight (codes+stats %.4f, 16-bit weights %.4f), %lld 16-bit weights\n",
                std::string(tcq::display_name(method)).c_str(), bits, bpw,
                r.bits.ratio(r.bits.base()),
                r.bits.ratio(r.bits.outliers),
                static_cast<long long>(r.kept));
    std::printf("time: gradients %.2fs, contrast %.2fs, scores %.2fs, selection %.2fs, final %.2fs, total %.2fs\n",
                r.seconds_gradients, r.seconds_contrast, r.seconds_scores, r.seconds_select, r.seconds_final,
                r.seconds_total);
    return 0;
}

/// Metric values of one model on every task: the loss of each, then the
/// exact-match accuracy on the first arith task (when there is one).
std::vector<double> evaluate(const l2c::model& m, const std::vector<std::pair<std::string, std::string>>& tasks,
                             const std::vector<std::string>& texts, const parsed& p, const tcq::exec_policy& pol) {
    std::vector<double> v;
    const auto windows = p.integer("eval-windows", l2c::eval_max_windows, 1, 1 << 20);
    const auto problems = p.integer("eval-problems", l2c::eval_max_problems, 1, 1 << 20);
    for (std::size_t i = 0; i < tasks.size(); ++i) v.push_back(l2c::task_loss(m, texts[i], pol, tasks[i].second, windows).loss);
    for (std::size_t i = 0; i < tasks.size(); ++i)
        if (l2c::is_arith_text(texts[i])) {
            v.push_back(l2c::arith_accuracy(m, texts[i], pol, tasks[i].second, problems).accuracy());
            break;
        }
    return v;
}

int run_compare(const parsed& p) {
    const auto pol = policy(p);
    const auto base = l2c::load_checkpoint(*p.value("model"));
    const auto calib_texts = calibration_texts(p);
    if (p.value("seed") && p.value("seeds")) throw usage_error("give --seed or --seeds, not both");
    std::vector<std::uint64_t> seeds{single_seed(p)};
    if (const auto s = p.value("seeds")) {
        try {
            seeds = tcq::parse_seed_list(*s);
        } catch (const tcq::error& e) {
            throw usage_error(std::string("--seeds: ") + e.what());
        }
    }
    std::vector<std::pair<std::string, std::string>> tasks;
    std::vector<std::string> texts;
    std::vector<tcq::comparison_metric> metrics;
    for (const auto& t : p.values("task")) {
        tasks.push_back(split_task(t));
        texts.push_back(l2c::read_text(tasks.back().second));
        metrics.push_back({"loss " + tasks.back().first, tcq::better::lower, 4});
    }
    for (const auto& t : texts)
        if (l2c::is_arith_text(t)) {
            metrics.push_back({"arith acc", tcq::better::higher, 3});
            break;
        }
    std::vector<tcq::quant_method> methods;
    for (const auto& s : split_list(p.value_or("methods", "rtn,gptq,spqr,tacq"))) methods.push_back(tcq::parse_quant_method(s));
    std::vector<int> bit_list;
    for (const auto& s : split_list(p.value_or("bits", "2,3"))) {
        const int b = std::atoi(s.c_str());
        if (b < 1 || b > 8) throw usage_error("--bits: '" + s + "' is not a bit width in 1-8");
        bit_list.push_back(b);
    }
    const auto baseline = tcq::parse_quant_method(p.value_or("baseline", "gptq"));
    bool have_baseline = false;
    for (auto m : methods) have_baseline |= m == baseline;
    if (p.value("baseline") && !have_baseline)
        throw usage_error("--baseline " + std::string(tcq::to_string(baseline)) + " is not among --methods");
    const auto json = p.value("json");
    tcq::comparison cmp(metrics);
    auto say = [&](const tcq::comparison_run& r) {
        std::fprintf(stderr, "[compare] %s%s at %s:", r.seed ? ("seed " + std::to_string(*r.seed) + ": ").c_str() : "",
                     r.display.c_str(), r.label.c_str());
        for (std::size_t k = 0; k < metrics.size(); ++k)
            std::fprintf(stderr, " %s %.4f", metrics[k].name.c_str(), r.values[k]);
        std::fprintf(stderr, " (%.1fs)\n", r.seconds);
    };
    auto save = [&] {
        if (json)
            tcq::write_atomically(*json, "--json '" + *json + "'", [&](std::ostream& f) {
                f << cmp.json(have_baseline ? std::optional<std::string_view>(tcq::to_string(baseline)) : std::nullopt);
            });
    };
    std::fprintf(stderr, "[compare] %zu seed(s); evaluating fp32\n", seeds.size());
    cmp.add({"fp32", "fp32", 32, "32", std::nullopt, 32.0, 0, evaluate(base, tasks, texts, p, pol)});
    say(cmp.runs().back());
    auto m = base;
    for (const auto seed : seeds) {
        // One pipeline per calibration draw: gradients and contrasts are cached
        // within it, so each is computed once per seed (and per grid).
        m = base;
        const auto calib = calibration(p, calib_texts, seed);
        l2c::tcq_adapter ad(m, calib, pol, true_sequential(p));
        tcq::pipeline pipe(ad);
        for (int bits : bit_list)
            for (auto method : methods) {
                std::fprintf(stderr, "[compare] seed %llu: %s at %d bits, %lld calibration windows\n",
                             static_cast<unsigned long long>(seed), std::string(tcq::display_name(method)).c_str(), bits,
                             static_cast<long long>(calib.count));
                const auto r = pipe.run(quant_options(p, method, bits, pol));
                char label[64];
                std::snprintf(label, sizeof label, r.kept > 0 ? "%d + %.2f%%" : "%d", bits,
                              100.0 * r.bits.ratio(static_cast<std::uint64_t>(r.kept)));
                // Cached phases count in every run that uses them: time is what one run alone costs.
                const double secs =
                    r.seconds_gradients + r.seconds_contrast + r.seconds_scores + r.seconds_select + r.seconds_final;
                cmp.add({std::string(tcq::to_string(method)), std::string(tcq::display_name(method)), bits, label, seed,
                         r.bits.per_weight(), secs, evaluate(m, tasks, texts, p, pol)});
                say(cmp.runs().back());
            }
        save();  // partial results survive an interrupted run
    }
    std::printf("%s", cmp.summary_markdown().c_str());
    if (have_baseline && methods.size() > 1)
        std::printf("\n%s", cmp.paired_markdown(tcq::to_string(baseline), tcq::display_name(baseline)).c_str());
    std::fflush(stdout);
    return 0;
}

std::vector<command> commands() {
    return {
        {"quantize",
         "quantize the linear layers with a method (TaCQ by default) and write a tcq file",
         concat(quant_flags, {{"method", "NAME", "rtn, gptq, tacq, spqr, magnitude, fisher, grad_delta, wanda, random (default tacq)"},
                              {"bits", "B", "base bit width (default 3)"},
                              {"out", "FILE", "tcq file to write", false, true}}),
         run_quantize},
        {"compare",
         "run several methods and bit widths on one or more calibration draws; print mean ± sd per metric "
         "and each method's paired difference from a baseline",
         concat(quant_flags, {{"methods", "LIST", "comma-separated methods (default rtn,gptq,spqr,tacq)"},
                              {"seeds", "LIST", "calibration seeds, e.g. 0-9 or 0,2,5 (instead of --seed): every method runs on each draw"},
                              {"baseline", "NAME", "method the paired section subtracts (default gptq)"},
                              {"json", "FILE", "write every per-seed number and the paired statistics as JSON"},
                              {"hessian-per-sample", "", "experiment: update each Hessian once per sample (the reference's order)"},
                              {"fp32-scales", "", "experiment: keep fp32 grid scales (not packable; evaluation only)"},
                              {"bits", "LIST", "comma-separated bit widths (default 2,3)"},
                              {"task", "NAME=FILE", "a text file to evaluate, named NAME in the table", true, true},
                              {"eval-windows", "N", "windows per task loss (default 64)"},
                              {"eval-problems", "N", "arith problems (default 500)"}}),
         run_compare},
        {"eval",
         "mean loss per byte over the first 64 windows of each file (docs/algorithms.md §6) and, for a+b=c files, "
         "greedy exact-match accuracy on the first 500 problems",
         {{"model", "FILE", "llama2.c checkpoint", false, true},
          opt_tcq,
          {"task", "NAME=FILE", "a text file to evaluate, named NAME in the report", true, true},
          opt_threads},
         run_eval},
        {"generate",
         "greedy continuation of BOS + PROMPT, printed after the prompt",
         {{"model", "FILE", "llama2.c checkpoint", false, true},
          opt_tcq,
          {"prompt", "TEXT", "prompt bytes (default: empty)"},
          {"steps", "N", "tokens to generate, at most (default 64)"}},
         run_generate},
    };
}

void print_overview(std::FILE* f, const std::vector<command>& cmds) {
    std::fprintf(f, "usage: tcq-llama2c COMMAND [options]   (tcq-llama2c COMMAND --help for details)\n\ncommands:\n");
    for (const auto& c : cmds) std::fprintf(f, "  %-10s %s\n", c.name.c_str(), c.summary.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    const auto cmds = commands();
    if (argc < 2) {
        print_overview(stderr, cmds);
        return 2;
    }
    const std::string name = argv[1];
    if (name == "--help" || name == "-h" || name == "help") {
        print_overview(stdout, cmds);
        return 0;
    }
    const command* cmd = nullptr;
    for (const auto& c : cmds)
        if (c.name == name) cmd = &c;
    if (!cmd) {
        std::fprintf(stderr, "tcq-llama2c: unknown command '%s'\n\n", name.c_str());
        print_overview(stderr, cmds);
        return 2;
    }
    for (int i = 2; i < argc; ++i)
        if (std::string_view(argv[i]) == "--help" || std::string_view(argv[i]) == "-h") {
            std::fputs(l2c::cli::usage(*cmd).c_str(), stdout);
            return 0;
        }
    try {
        return cmd->run(l2c::cli::parse(*cmd, argc, argv, 2));
    } catch (const usage_error& e) {
        std::fprintf(stderr, "tcq-llama2c %s: %s\n\n%s", name.c_str(), e.what(), l2c::cli::usage(*cmd).c_str());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tcq-llama2c %s: error: %s\n", name.c_str(), e.what());
        return 1;
    }
}
