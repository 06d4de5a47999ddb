#pragma once
/// @file cmd_eval.hpp
/// @brief `tcq eval`: mean loss per token and perplexity of a model (HF
/// directory or llama2.c file, optionally from a tcq file) on text tasks;
/// accuracy for `a+b=c` files.

#include <cstdio>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "model_options.hpp"

namespace tcq::cli {

/// Usage text of `tcq eval`.
inline const std::string eval_usage = usage_text({R"(usage: tcq eval --model PATH [--tcq FILE] --task NAME=FILE... [options]

Evaluates a model: an HF checkpoint directory (config.json + safetensors) or
a llama2.c file, with --tcq its linear layers replaced by a tcq file's. Per
task: the mean next-token loss over the first --windows non-overlapping
windows of BOS + (--seq-len - 1) tokens of FILE, its perplexity, and for
files of `a+b=c` lines the greedy exact-match accuracy (docs/algorithms.md §6).

options:
  --task NAME=FILE      a task; repeatable (required)
  --windows N           windows per task (default 64)
  --seq-len T           window length in tokens (default 256)
  --problems N          a+b=c problems (default 500)
  --json                print JSON instead of a table
  --threads N           worker threads (default 0: all cores)
)", model_help, tcq_help});

/// Runs `tcq eval`.
inline int run_eval(const arguments& a) {
    const auto tasks = a.all("task");
    if (tasks.empty()) throw usage_error("give at least one --task NAME=FILE");
    const index_t windows = a.integer("windows", 64, 1, 1 << 20);
    const index_t problems = a.integer("problems", 500, 1, 1 << 20);
    const auto pol = policy_of(a);
    std::vector<std::pair<std::string, std::string>> named;
    for (const auto& t : tasks) {
        auto [name, file] = task_of(t);
        named.emplace_back(name, llama::read_text(file));  // read all before loading the model
    }
    const auto lm = load_model(a, pol);
    const auto& m = lm.model;
    const index_t seq_len = seq_len_of(a, m);
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& [name, text] : named) {
        const auto w = llama::id_eval_windows(lm.codec.prefix(), lm.codec.encode(text), windows, name, seq_len);
        const auto r = llama::task_loss(m, w.view(), pol);
        nlohmann::ordered_json j{{"task", name}, {"windows", r.windows}, {"loss", r.loss}, {"perplexity", r.perplexity()}};
        if (llama::is_arith_text(text)) {
            const auto acc = llama::arith_accuracy(m, lm.codec, text, name, problems, pol);
            j["correct"] = acc.correct;
            j["problems"] = acc.total;
            j["accuracy"] = acc.accuracy();
        }
        out.push_back(j);
    }
    if (a.has("json")) {
        std::cout << out.dump(2) << '\n';
        return 0;
    }
    std::cout << "| task | windows | loss (nats/token) | perplexity | accuracy |\n|---|---|---|---|---|\n";
    for (const auto& j : out) {
        char buf[256];
        std::snprintf(buf, sizeof buf, "| %s | %lld | %.5f | %.4f | ", j["task"].get<std::string>().c_str(),
                      static_cast<long long>(j["windows"].get<index_t>()), j["loss"].get<double>(),
                      j["perplexity"].get<double>());
        std::cout << buf;
        if (j.contains("accuracy")) {
            std::snprintf(buf, sizeof buf, "%.3f (%lld/%lld)", j["accuracy"].get<double>(),
                          static_cast<long long>(j["correct"].get<index_t>()),
                          static_cast<long long>(j["problems"].get<index_t>()));
            std::cout << buf;
        } else {
            std::cout << "-";
        }
        std::cout << " |\n";
    }
    return 0;
}

/// The `tcq eval` subcommand.
inline command eval_command() {
    return {"eval", "loss, perplexity and a+b=c accuracy of a model", eval_usage,
            join({model_specs(), {{"task", true, 0, true}, {"windows", true}, {"seq-len", true}, {"problems", true},
                                 {"json", false}, {"threads", true}}}),
            0, run_eval};
}

}  // namespace tcq::cli
