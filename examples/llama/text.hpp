#pragma once
/// @file text.hpp
/// @brief Text → byte tokens of the fixture vocabulary, token batches, and
/// `a+b=c` problem parsing. Windows and tokenizer.json live in codec.hpp.

#include <cstdint>
#include <cstdio>
#include <utility>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tcq/core/error.hpp"
#include "tcq/core/matrix_view.hpp"

namespace llama {

using tcq::index_t;

/// Special token ids of the byte vocabulary; byte `b` is token `3 + b`.
inline constexpr std::int32_t tok_unk = 0, tok_bos = 1, tok_eos = 2, tok_byte0 = 3;

/// Tokens of a window: BOS + 255 bytes (the model's context).
inline constexpr index_t window_tokens = 256;

/// `count` sequences of `length` tokens each, row-major. Passed to kernels as
/// a tcq::matrix_view<const std::int32_t> (rows = sequences).
struct token_batch {
    index_t count = 0;
    index_t length = 0;
    std::vector<std::int32_t> tokens;

    token_batch() = default;
    token_batch(index_t n, index_t len)
        : count(n), length(len), tokens(static_cast<std::size_t>(n * len), tok_unk) {}

    [[nodiscard]] std::span<std::int32_t> row(index_t i) {
        return {tokens.data() + i * length, static_cast<std::size_t>(length)};
    }
    [[nodiscard]] std::span<const std::int32_t> row(index_t i) const {
        return {tokens.data() + i * length, static_cast<std::size_t>(length)};
    }
    [[nodiscard]] tcq::matrix_view<const std::int32_t> view() const {
        return tcq::make_view(tokens.data(), count, length);
    }
    /// One flag per token when answer spans are marked (1: a target the
    /// answer-span loss scores; answer_spans.hpp); empty: none marked.
    std::vector<std::uint8_t> scored;
    [[nodiscard]] tcq::matrix_view<const std::uint8_t> scored_view() const {
        if (scored.empty()) return {};
        return tcq::make_view(scored.data(), count, length);
    }
};

/// Reads a whole text file; throws tcq::error naming the path.
[[nodiscard]] inline std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    tcq::require(static_cast<bool>(in), path.string(), ": cannot open for reading");
    std::ostringstream ss;
    ss << in.rdbuf();
    tcq::require(!in.bad(), path.string(), ": read failed");
    return std::move(ss).str();
}

/// Token of byte `b`.
[[nodiscard]] constexpr std::int32_t byte_token(unsigned char b) { return tok_byte0 + b; }

/// BOS followed by the byte tokens of `text`.
[[nodiscard]] inline std::vector<std::int32_t> encode(std::string_view text, bool bos = true) {
    std::vector<std::int32_t> t;
    t.reserve(text.size() + 1);
    if (bos) t.push_back(tok_bos);
    for (char ch : text) t.push_back(byte_token(static_cast<unsigned char>(ch)));
    return t;
}

/// Bytes of the byte tokens in `tokens`; special tokens are dropped.
[[nodiscard]] inline std::string decode_bytes(std::span<const std::int32_t> tokens) {
    std::string s;
    for (auto t : tokens)
        if (t >= tok_byte0 && t < tok_byte0 + 256) s.push_back(static_cast<char>(t - tok_byte0));
    return s;
}

/// Splits on '\n'. A final line without a newline counts; a trailing newline
/// does not start an empty line.
[[nodiscard]] inline std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto nl = text.find('\n', start);
        if (nl == std::string_view::npos) {
            lines.push_back(text.substr(start));
            break;
        }
        lines.push_back(text.substr(start, nl - start));
        start = nl + 1;
    }
    return lines;
}

/// One `a+b=c` problem: the prompt bytes (without BOS) and the expected answer.
struct arith_problem {
    index_t line = 0;     ///< 0-based line index in the file
    std::string prompt;   ///< lines i−3..i−1 + '\n' each, then "a+b="
    std::string answer;   ///< c
};

/// If `line` is exactly `digits+digits=digits`, returns the position of '='.
[[nodiscard]] inline std::size_t arith_equals_pos(std::string_view line) {
    auto digits = [&](std::size_t b, std::size_t e) {
        if (b >= e) return false;
        for (auto i = b; i < e; ++i)
            if (line[i] < '0' || line[i] > '9') return false;
        return true;
    };
    const auto plus = line.find('+');
    const auto eq = line.find('=');
    if (plus == std::string_view::npos || eq == std::string_view::npos || eq < plus) return std::string_view::npos;
    if (!digits(0, plus) || !digits(plus + 1, eq) || !digits(eq + 1, line.size())) return std::string_view::npos;
    return eq;
}

/// Problems of docs/algorithms.md §6: for every line i ≥ 3 that is `a+b=c` (other lines
/// are skipped but still serve as context), up to `max_problems`.
[[nodiscard]] inline std::vector<arith_problem> arith_problems(std::string_view text, index_t max_problems) {
    const auto lines = split_lines(text);
    std::vector<arith_problem> out;
    for (std::size_t i = 3; i < lines.size() && static_cast<index_t>(out.size()) < max_problems; ++i) {
        const auto eq = arith_equals_pos(lines[i]);
        if (eq == std::string_view::npos) continue;
        arith_problem p;
        p.line = static_cast<index_t>(i);
        for (std::size_t j = i - 3; j < i; ++j) (p.prompt += lines[j]) += '\n';
        p.prompt += lines[i].substr(0, eq + 1);
        p.answer = std::string(lines[i].substr(eq + 1));
        out.push_back(std::move(p));
    }
    return out;
}

/// True when the text looks like an `a+b=c` task: at least 4 non-empty lines
/// and at least 90% of them match.
[[nodiscard]] inline bool is_arith_text(std::string_view text) {
    index_t nonempty = 0, match = 0;
    for (auto l : split_lines(text)) {
        if (l.empty()) continue;
        ++nonempty;
        match += arith_equals_pos(l) != std::string_view::npos;
    }
    return nonempty >= 4 && match * 10 >= nonempty * 9;
}

/// Size of the byte vocabulary: 3 specials + 256 bytes.
inline constexpr index_t byte_vocab_size = 259;

/// tokenizer.json and tokenizer_config.json of the byte vocabulary, as the
/// Hugging Face tokenizers library reads them: a BPE model without merges
/// whose vocabulary holds only `<unk>`, `<s>`, `</s>` and `<0x00>`..`<0xFF>`,
/// so with byte_fallback every UTF-8 byte b becomes `<0xNN>` = id 3 + b; BOS
/// `<s>` is prepended by the post-processor; decoding is ByteFallback + Fuse.
[[nodiscard]] inline std::vector<std::pair<std::string, std::string>> byte_tokenizer_files(index_t max_length) {
    using oj = nlohmann::ordered_json;
    const char* specials[] = {"<unk>", "<s>", "</s>"};
    oj added = oj::array(), vocab = oj::object();
    for (int i = 0; i < 3; ++i) {
        added.push_back({{"id", i}, {"content", specials[i]}, {"single_word", false}, {"lstrip", false},
                         {"rstrip", false}, {"normalized", false}, {"special", true}});
        vocab[specials[i]] = i;
    }
    for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        vocab[name] = tok_byte0 + b;
    }
    auto special = [](const char* t) { return oj{{"SpecialToken", {{"id", t}, {"type_id", 0}}}}; };
    auto seq = [](const char* t) { return oj{{"Sequence", {{"id", t}, {"type_id", 0}}}}; };
    oj tok{{"version", "1.0"},
           {"truncation", nullptr},
           {"padding", nullptr},
           {"added_tokens", added},
           {"normalizer", nullptr},
           {"pre_tokenizer", nullptr},
           {"post_processor",
            {{"type", "TemplateProcessing"},
             {"single", {special("<s>"), seq("A")}},
             {"pair", {special("<s>"), seq("A"), special("<s>"), seq("B")}},
             {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {tok_bos}}, {"tokens", {"<s>"}}}}}}}},
           {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}}},
           {"model",
            {{"type", "BPE"},
             {"dropout", nullptr},
             {"unk_token", "<unk>"},
             {"continuing_subword_prefix", nullptr},
             {"end_of_word_suffix", nullptr},
             {"fuse_unk", false},
             {"byte_fallback", true},
             {"ignore_merges", false},
             {"vocab", vocab},
             {"merges", oj::array()}}}};
    oj cfg{{"add_bos_token", true},     {"add_eos_token", false},   {"bos_token", "<s>"},
           {"eos_token", "</s>"},       {"unk_token", "<unk>"},     {"model_max_length", max_length},
           {"tokenizer_class", "PreTrainedTokenizerFast"}};
    return {{"tokenizer.json", tok.dump(2) + "\n"}, {"tokenizer_config.json", cfg.dump(2) + "\n"}};
}

}  // namespace llama
