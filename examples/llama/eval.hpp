#pragma once
/// @file eval.hpp
/// @brief Evaluation on token ids: mean next-token loss over windows and
/// greedy exact-match accuracy. Text → ids is the caller's (the tokenizer
/// seam: byte tokens for the fixture, tokenizer.json elsewhere).

#include <cmath>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "decode.hpp"
#include "forward.hpp"
#include "text.hpp"

namespace llama {

/// Mean loss over windows.
struct loss_report {
    double loss = 0;      ///< mean over windows of each window's mean nats per token
    index_t windows = 0;  ///< windows evaluated
    /// e^loss.
    [[nodiscard]] double perplexity() const { return std::exp(loss); }
};

/// Mean of the per-window mean next-token losses of `windows` (rows).
[[nodiscard]] inline loss_report task_loss(const model& m, tcq::matrix_view<const std::int32_t> windows,
                                           const tcq::exec_policy& pol) {
    const auto per = sequence_losses(m, windows, pol);
    double sum = 0;
    for (double l : per) sum += l;
    return {sum / static_cast<double>(per.size()), windows.rows()};
}

/// One greedy-completion problem in token ids.
struct completion_problem {
    std::vector<std::int32_t> prompt;  ///< ids fed before decoding
    std::string answer;                ///< expected text
};

/// Exact-match accuracy.
struct accuracy_report {
    index_t correct = 0;
    index_t total = 0;
    /// correct / total.
    [[nodiscard]] double accuracy() const { return total ? static_cast<double>(correct) / total : 0.0; }
};

/// Greedy decoding of every problem (at most `max_new` tokens, stopping
/// after a token with `stop(token)`); `detok` turns the new tokens into the
/// answer text (dropping the stop token). Problems run in parallel.
[[nodiscard]] inline accuracy_report greedy_accuracy(
    const model& m, const std::vector<completion_problem>& problems, index_t max_new,
    const std::function<bool(std::int32_t)>& stop,
    const std::function<std::string(std::span<const std::int32_t>)>& detok, const tcq::exec_policy& pol) {
    const auto n = static_cast<index_t>(problems.size());
    std::vector<char> ok(static_cast<std::size_t>(n), 0);
    tcq::parallel_for(pol, n, 8, [&](index_t b, index_t e) {
        decoder dec(m);
        for (index_t i = b; i < e; ++i) {
            const auto& p = problems[static_cast<std::size_t>(i)];
            auto out = greedy(dec, p.prompt, max_new, stop);
            if (!out.empty() && stop(out.back())) out.pop_back();
            ok[static_cast<std::size_t>(i)] = detok(out) == p.answer;
        }
    });
    accuracy_report r;
    r.total = n;
    for (char c : ok) r.correct += c;
    return r;
}

}  // namespace llama
