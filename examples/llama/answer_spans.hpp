#pragma once
/// @file answer_spans.hpp
/// @brief Answer-span calibration (docs/algorithms.md §1 step 2, "answer
/// span"): which tokens of a calibration text the per-sample loss scores.
///
/// A text is cut into prompt and answer segments, either by a rule (an answer
/// starts after each `after` marker and runs through the next `until`, both
/// included in the stream) or from JSONL records {"prompt", "completion"}
/// (each record is prompt + completion + "\n"; completion and newline are the
/// answer). Segments are encoded one by one and concatenated, as prompt and
/// completion are tokenized separately in fine-tuning tools; for the byte
/// vocabulary that is exactly the bytes. The Hessians still see every token:
/// only the gradient's loss is restricted.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "codec.hpp"

namespace llama {

/// A piece of calibration text: prompt (not scored) or answer (scored).
struct text_segment {
    std::string text;
    bool answer = false;
};

/// The answer-span rule: an answer starts right after each `after` and
/// runs through the next `until` (inclusive; to the end of the text if none).
struct answer_rule {
    std::string after;
    std::string until = "\n";
};

/// `text` cut by `rule`. Throws naming `what` if the marker never occurs
/// (a rule that marks nothing would silently score nothing).
[[nodiscard]] inline std::vector<text_segment> answer_segments(std::string_view text, const answer_rule& rule,
                                                                std::string_view what) {
    tcq::require(!rule.after.empty() && !rule.until.empty(), what, ": the answer-span markers must not be empty");
    std::vector<text_segment> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto a = text.find(rule.after, pos);
        if (a == std::string_view::npos) break;
        const auto start = a + rule.after.size();
        const auto u = text.find(rule.until, start);
        const auto end = u == std::string_view::npos ? text.size() : u + rule.until.size();
        out.push_back({std::string(text.substr(pos, start - pos)), false});
        if (end > start) out.push_back({std::string(text.substr(start, end - start)), true});
        pos = end;
    }
    tcq::require(!out.empty(), what, ": the answer marker '", rule.after, "' does not occur");
    if (pos < text.size()) out.push_back({std::string(text.substr(pos)), false});
    return out;
}

/// JSONL records {"prompt": ..., "completion": ...}, one per non-empty line,
/// as segments. Throws naming `what` and the line on bad JSON or fields.
[[nodiscard]] inline std::vector<text_segment> prompt_completion_segments(std::string_view jsonl,
                                                                          std::string_view what) {
    std::vector<text_segment> out;
    std::size_t pos = 0, line = 0;
    while (pos < jsonl.size()) {
        auto e = jsonl.find('\n', pos);
        if (e == std::string_view::npos) e = jsonl.size();
        const auto rec = jsonl.substr(pos, e - pos);
        ++line;
        pos = e + 1;
        if (rec.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(rec);
        } catch (const nlohmann::json::exception& ex) {
            tcq::fail(what, ":", line, ": not a JSON record (", ex.what(), ")");
        }
        for (const char* k : {"prompt", "completion"})
            tcq::require(j.is_object() && j.contains(k) && j[k].is_string(), what, ":", line, ": field \"", k,
                         "\" is missing or not a string");
        const auto completion = j["completion"].get<std::string>();
        tcq::require(!completion.empty(), what, ":", line, ": \"completion\" is empty");
        out.push_back({j["prompt"].get<std::string>(), false});
        out.push_back({completion + "\n", true});
    }
    tcq::require(!out.empty(), what, ": no JSONL record");
    return out;
}

/// The segments as one id stream with answer flags (1 on every id of an answer).
[[nodiscard]] inline id_stream encode_segments(const text_codec& codec, const std::vector<text_segment>& segs) {
    id_stream s;
    for (const auto& g : segs) {
        const auto ids = codec.encode(g.text);
        s.ids.insert(s.ids.end(), ids.begin(), ids.end());
        s.scored.insert(s.scored.end(), ids.size(), g.answer ? 1 : 0);
    }
    return s;
}

/// Answer tokens among the targets of `b` (every token but each row's first).
[[nodiscard]] inline index_t scored_targets(const token_batch& b) {
    index_t n = 0;
    for (index_t r = 0; r < b.count; ++r)
        for (index_t t = 1; t < b.length; ++t) n += b.scored[static_cast<std::size_t>(r * b.length + t)] != 0;
    return n;
}

}  // namespace llama
