#pragma once
/// @file cmd_eval.hpp
/// @brief `tcq eval`: mean loss per token and perplexity of a model (HF
/// directory or llama2.c file) on text tasks; accuracy for `a+b=c` files.

#include <cstdio>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "llama/checkpoint.hpp"
#include "llama/eval.hpp"
#include "options.hpp"
#include "tensors.hpp"

namespace tcq::cli {

/// Usage text of `tcq eval`.
inline constexpr const char* eval_usage = R"(usage: tcq eval --model PATH --task NAME=FILE... [options]

Evaluates a model: an HF checkpoint directory (config.json + safetensors) or
a llama2.c file. Per task: the mean next-token loss over the first --windows
non-overlapping windows of BOS + (--seq-len - 1) tokens of FILE, its
perplexity, and for files of `a+b=c` lines the greedy exact-match accuracy.

Tokens: the text's bytes in the fixture's byte vocabulary (BOS 1, byte b ->
3 + b); the model's vocabulary must be 259. tokenizer.json support is the
`tcq tokenize` tokenizer's, not wired here yet.

options:
  --model PATH          model directory or llama2.c file (required)
  --task NAME=FILE      a task; repeatable (required)
  --windows N           windows per task (default 64)
  --seq-len T           window length in tokens (default 256)
  --problems N          a+b=c problems (default 500)
  --json                print JSON instead of a table
  --threads N           worker threads (default 0: all cores)
)";

/// Runs `tcq eval`.
inline int run_eval(const arguments& a) {
    const auto path = a.required("model");
    const auto tasks = a.all("task");
    if (tasks.empty()) throw usage_error("give at least one --task NAME=FILE");
    const index_t windows = a.integer("windows", 64, 1, 1 << 20);
    const index_t seq_len = a.integer("seq-len", 256, 2, llama::max_rope_positions);
    const index_t problems = a.integer("problems", 500, 1, 1 << 20);
    const auto pol = policy_of(a);
    std::vector<std::pair<std::string, std::string>> named;
    for (const auto& t : tasks) {
        const auto eq = t.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == t.size())
            throw usage_error("option '--task': expected NAME=FILE, got '" + t + "'");
        named.emplace_back(t.substr(0, eq), llama::read_text(t.substr(eq + 1)));  // read all before loading the model
    }
    const auto m = llama::load_model(path);
    require(m.cfg().vocab_size == 259, path, ": vocab_size = ", m.cfg().vocab_size,
            " is not the 259-token byte vocabulary; tcq eval has no tokenizer.json support yet");
    require(seq_len <= llama::max_length(m), path, ": --seq-len ", seq_len, " exceeds the model's longest sequence ",
            llama::max_length(m));
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const auto& [name, text] : named) {
        const auto w = llama::eval_windows(text, windows, name, seq_len);
        const auto r = llama::task_loss(m, w.view(), pol);
        nlohmann::ordered_json j{{"task", name}, {"windows", r.windows}, {"loss", r.loss}, {"perplexity", r.perplexity()}};
        if (llama::is_arith_text(text)) {
            const auto acc = llama::byte_arith_accuracy(m, text, pol, name, problems);
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
            {{"model", true}, {"task", true, 0, true}, {"windows", true}, {"seq-len", true}, {"problems", true},
             {"json", false}, {"threads", true}},
            0, run_eval};
}

}  // namespace tcq::cli
