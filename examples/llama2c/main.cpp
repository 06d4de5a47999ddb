// tcq-llama2c: quantize llama2.c models with TaCQ and its baselines, compare
// them, evaluate and generate (fp32 checkpoints or tcq files).
// Results go to stdout, progress to stderr. Exit codes: 0 ok, 1 failure,
// 2 usage error.

#include <chrono>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "l2c.hpp"
#include "tcq_adapter.hpp"
#include "tcq_file.hpp"

namespace {

using l2c::cli::command;
using l2c::cli::option;
using l2c::cli::parsed;
using l2c::cli::usage_error;

std::vector<option> concat(std::vector<option> a, const std::vector<option>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

const option opt_threads{"threads", "N", "worker threads (default: all cores); results do not depend on it"};

tcq::exec_policy policy(const parsed& p) { return tcq::par(static_cast<int>(p.integer("threads", 0, 0, 1024))); }

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

/// Calibration windows: --samples windows of 256 tokens at seeded random
/// offsets, an equal share from every --calib file.
l2c::token_batch calibration(const parsed& p, std::vector<std::string>& texts) {
    for (const auto& f : p.values("calib")) texts.push_back(l2c::read_text(f));
    std::vector<std::string_view> views(texts.begin(), texts.end());
    const auto n = p.integer("samples", 128, 1, 1 << 20);
    const auto seed = static_cast<std::uint64_t>(p.integer("seed", 0, 0, (1ll << 62)));
    return l2c::sample_mix(views, n, seed);
}

/// Pipeline options from the shared quantization flags.
tcq::pipeline_options quant_options(const parsed& p, tcq::quant_method m, int bits, const tcq::exec_policy& pol) {
    tcq::pipeline_options o;
    o.method = m;
    o.gptq.grid.bits = bits;
    o.gptq.grid.group_size = p.integer("group", 0, 0, 1 << 20);
    o.gptq.act_order = p.flag("act-order");
    o.rtn_contrast = p.flag("rtn-contrast");
    o.pol = pol;
    if (p.value("ratio") && p.value("target-bpw")) throw usage_error("give --ratio or --target-bpw, not both");
    if (const auto t = p.value("target-bpw")) {
        o.outliers = tcq::budget::of_bits_per_weight(std::stod(*t), o.gptq.grid, o.gptq.act_order);
    } else {
        const double r = std::stod(p.value_or("ratio", "0.0035"));
        if (!(r >= 0 && r <= 1)) throw usage_error("--ratio must lie in [0, 1]");
        o.outliers = tcq::budget::of_ratio(r);
    }
    o.progress = [](const std::string& s) { std::fprintf(stderr, "[tcq] %s\n", s.c_str()); };
    return o;
}

const std::vector<option> quant_flags = {
    {"model", "FILE", "llama2.c checkpoint (fp32)", false, true},
    {"calib", "FILE", "calibration text; repeat to mix tasks (equal share each)", true, true},
    {"samples", "N", "calibration windows of 256 tokens (default 128)"},
    {"seed", "S", "seed of the calibration window offsets (default 0)"},
    {"group", "G", "group size (default 0: one grid per row)"},
    {"ratio", "R", "fraction of the linear weights kept in 16-bit (default 0.0035)"},
    {"target-bpw", "X", "instead of --ratio: the largest budget whose exact packed size is <= X bits/weight"},
    {"act-order", "", "GPTQ act-order"},
    {"rtn-contrast", "", "contrast Q(W) from RTN instead of sequential GPTQ (cheaper)"},
    {"true-sequential", "", "quantize each block in four sub-stages (q/k/v, o, w1/w3, w2)"},
    opt_threads};

int run_quantize(const parsed& p) {
    const auto pol = policy(p);
    auto m = l2c::load_checkpoint(*p.value("model"));
    std::vector<std::string> texts;
    const auto calib = calibration(p, texts);
    const auto method = tcq::parse_quant_method(p.value_or("method", "tacq"));
    const int bits = static_cast<int>(p.integer("bits", 3, 1, 8));
    l2c::tcq_adapter ad(m, calib, pol, p.flag("true-sequential"));
    tcq::pipeline pipe(ad);
    const auto r = pipe.run(quant_options(p, method, bits, pol));
    tcq::file_metadata meta;
    meta.calibration = std::to_string(calib.count) + " windows of 256 tokens from";
    for (const auto& f : p.values("calib")) meta.calibration += " " + f;
    meta.calibration += ", seed " + p.value_or("seed", "0");
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

/// Evaluation results of one model on every task.
struct eval_row {
    std::vector<double> loss;
    std::string acc = "—";
};

eval_row evaluate(const l2c::model& m, const std::vector<std::pair<std::string, std::string>>& tasks,
                  const std::vector<std::string>& texts, const parsed& p, const tcq::exec_policy& pol) {
    eval_row row;
    const auto windows = p.integer("eval-windows", l2c::eval_max_windows, 1, 1 << 20);
    const auto problems = p.integer("eval-problems", l2c::eval_max_problems, 1, 1 << 20);
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        row.loss.push_back(l2c::task_loss(m, texts[i], pol, tasks[i].second, windows).loss);
        if (l2c::is_arith_text(texts[i]) && row.acc == "—") {
            const auto a = l2c::arith_accuracy(m, texts[i], pol, tasks[i].second, problems);
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.3f", a.accuracy());
            row.acc = buf;
        }
    }
    return row;
}

int run_compare(const parsed& p) {
    const auto pol = policy(p);
    const auto base = l2c::load_checkpoint(*p.value("model"));
    std::vector<std::string> calib_texts;
    const auto calib = calibration(p, calib_texts);
    std::vector<std::pair<std::string, std::string>> tasks;
    std::vector<std::string> texts;
    for (const auto& t : p.values("task")) {
        tasks.push_back(split_task(t));
        texts.push_back(l2c::read_text(tasks.back().second));
    }
    std::vector<tcq::quant_method> methods;
    for (const auto& s : split_list(p.value_or("methods", "rtn,gptq,spqr,tacq"))) methods.push_back(tcq::parse_quant_method(s));
    std::vector<int> bit_list;
    for (const auto& s : split_list(p.value_or("bits", "2,3"))) {
        const int b = std::atoi(s.c_str());
        if (b < 1 || b > 8) throw usage_error("--bits: '" + s + "' is not a bit width in 1-8");
        bit_list.push_back(b);
    }
    std::string header = "| method | bits | bits/weight |", rule = "|---|---|---|";
    for (const auto& [name, file] : tasks) {
        header += " loss " + name + " |";
        rule += "---|";
    }
    header += " arith acc | time (s) |";
    rule += "---|---|";
    auto print_row = [&](const std::string& method, const std::string& bits, double bpw, const eval_row& e, double secs) {
        std::printf("| %s | %s | %.4f |", method.c_str(), bits.c_str(), bpw);
        for (double l : e.loss) std::printf(" %.4f |", l);
        std::printf(" %s | %s |\n", e.acc.c_str(), secs > 0 ? std::to_string(secs).substr(0, std::to_string(secs).find('.') + 3).c_str() : "—");
        std::fflush(stdout);
    };
    std::fprintf(stderr, "[compare] %lld calibration windows; evaluating fp32\n", static_cast<long long>(calib.count));
    std::printf("%s\n%s\n", header.c_str(), rule.c_str());
    print_row("fp32", "32", 32.0, evaluate(base, tasks, texts, p, pol), 0);
    auto m = base;
    l2c::tcq_adapter ad(m, calib, pol, p.flag("true-sequential"));
    tcq::pipeline pipe(ad);
    for (int bits : bit_list)
        for (auto method : methods) {
            std::fprintf(stderr, "[compare] %s at %d bits\n", std::string(tcq::display_name(method)).c_str(), bits);
            const auto r = pipe.run(quant_options(p, method, bits, pol));
            const bool outliers = r.kept > 0;
            char label[64];
            std::snprintf(label, sizeof label, outliers ? "%d + %.2f%%" : "%d", bits,
                          100.0 * static_cast<double>(r.kept) / static_cast<double>(r.bits.weights));
            // Cached phases count in every run that uses them: time is what one run alone costs.
            const double secs = r.seconds_gradients + r.seconds_contrast + r.seconds_scores + r.seconds_select + r.seconds_final;
            print_row(std::string(tcq::display_name(method)), label, r.bits.per_weight(), evaluate(m, tasks, texts, p, pol), secs);
        }
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
         "run several methods and bit widths on one calibration set and print a markdown table",
         concat(quant_flags, {{"methods", "LIST", "comma-separated methods (default rtn,gptq,spqr,tacq)"},
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
