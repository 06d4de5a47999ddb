#pragma once
/// @file eval.hpp
/// @brief The evaluation protocol of docs/algorithms.md §6: task loss over fixed windows
/// and exact-match accuracy of greedy `a+b=c` completion.

#include <string_view>

#include "decode.hpp"
#include "forward.hpp"

namespace l2c {

/// Windows and problems of the protocol.
inline constexpr index_t eval_max_windows = 64;
inline constexpr index_t eval_max_problems = 500;
/// Bytes decoded per arith answer, at most.
inline constexpr index_t arith_max_answer = 6;

/// Mean loss over the evaluation windows.
struct loss_report {
    double loss = 0;      ///< nats per byte
    index_t windows = 0;  ///< windows used (64 unless the text is shorter)
};

/// Mean next-token loss (nats/byte) over the first `max_windows`
/// consecutive, non-overlapping windows of BOS + 255 bytes; each window's loss
/// is the mean of its 255 predictions. A text with fewer windows uses all it
/// has (see `windows`); one shorter than a single window is a tcq::error.
[[nodiscard]] inline loss_report task_loss(const model& m, std::string_view text, const tcq::exec_policy& pol,
                                           std::string_view what = "text",
                                           index_t max_windows = eval_max_windows) {
    const auto w = eval_windows(text, max_windows, what);
    const auto per = sequence_losses(m, w.view(), pol);
    double sum = 0;
    for (double l : per) sum += l;
    return {sum / static_cast<double>(per.size()), w.count};
}

/// Exact-match accuracy of greedy completion.
struct accuracy_report {
    index_t correct = 0;
    index_t total = 0;  ///< problems evaluated (500 unless the file has fewer)
    [[nodiscard]] double accuracy() const { return total ? static_cast<double>(correct) / total : 0.0; }
};

/// Greedy answer to one problem: the bytes decoded after the prompt up to a
/// newline, at most `arith_max_answer` bytes. A non-byte token ends it too.
[[nodiscard]] inline std::string arith_answer(decoder& dec, const arith_problem& p) {
    const auto prompt = encode(p.prompt);
    const std::int32_t nl = byte_token('\n');
    auto out = greedy(dec, prompt, arith_max_answer, [&](std::int32_t t) { return t == nl || t < tok_byte0; });
    if (!out.empty() && (out.back() == nl || out.back() < tok_byte0)) out.pop_back();
    return decode_bytes(out);
}

/// Accuracy on the first `max_problems` lines `a+b=c` that have three lines
/// before them (docs/algorithms.md §6): prompt BOS + the three previous lines + '\n' each
/// + "a+b=", greedy decoding until a newline (at most 6 bytes), exact match
/// with c. Lines that are not `a+b=c` are skipped (still used as context).
/// A file with fewer problems uses all it has (see `total`); none, or a
/// prompt longer than the context, is a tcq::error naming `what`.
[[nodiscard]] inline accuracy_report arith_accuracy(const model& m, std::string_view text,
                                                    const tcq::exec_policy& pol, std::string_view what = "text",
                                                    index_t max_problems = eval_max_problems) {
    const auto problems = arith_problems(text, max_problems);
    tcq::require(!problems.empty(), what, ": no line of the form a+b=c with three lines before it");
    for (const auto& p : problems)
        tcq::require(static_cast<index_t>(p.prompt.size()) + 1 + arith_max_answer <= m.cfg().seq_len, what,
                     ": the prompt of line ", p.line + 1, " (", p.prompt.size() + 1,
                     " tokens) leaves no room for the answer in the context of ", m.cfg().seq_len);
    const auto n = static_cast<index_t>(problems.size());
    std::vector<char> ok(static_cast<std::size_t>(n), 0);
    tcq::parallel_for(pol, n, 8, [&](index_t b, index_t e) {
        decoder dec(m);
        for (index_t i = b; i < e; ++i) {
            const auto& p = problems[static_cast<std::size_t>(i)];
            ok[static_cast<std::size_t>(i)] = arith_answer(dec, p) == p.answer;
        }
    });
    accuracy_report r;
    r.total = n;
    for (char c : ok) r.correct += c;
    return r;
}

}  // namespace l2c
