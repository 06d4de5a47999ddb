// tcq-llama2c: evaluate, generate with (and, later, quantize) llama2.c models.
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

namespace {

using l2c::cli::command;
using l2c::cli::option;
using l2c::cli::parsed;
using l2c::cli::usage_error;

const option opt_threads{"threads", "N", "worker threads (default: all cores); results do not depend on it"};

tcq::exec_policy policy(const parsed& p) { return tcq::par(static_cast<int>(p.integer("threads", 0, 0, 1024))); }

/// The one place that turns a --model path into a model (extend for tcq files).
l2c::model load_model(const std::string& path) { return l2c::load_checkpoint(path); }

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
    const auto m = load_model(*p.value("model"));
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
    const auto m = load_model(*p.value("model"));
    const auto prompt = p.value_or("prompt", "");
    const auto steps = p.integer("steps", 64, 1, m.cfg().seq_len);
    const auto out = l2c::generate(m, prompt, steps);
    std::cout << prompt << out << "\n";
    return 0;
}

std::vector<command> commands() {
    return {
        {"eval",
         "mean loss per byte over the first 64 windows of each file (DESIGN §6) and, for a+b=c files, "
         "greedy exact-match accuracy on the first 500 problems",
         {{"model", "FILE", "llama2.c checkpoint", false, true},
          {"task", "NAME=FILE", "a text file to evaluate, named NAME in the report", true, true},
          opt_threads},
         run_eval},
        {"generate",
         "greedy continuation of BOS + PROMPT, printed after the prompt",
         {{"model", "FILE", "llama2.c checkpoint", false, true},
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
