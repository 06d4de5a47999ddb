#pragma once
/// @file codec.hpp
/// @brief The tokenizer seam of the engine: text → a model's token ids,
/// either the fixture's byte vocabulary or a checkpoint's tokenizer.json;
/// and, on those ids, evaluation windows, seeded calibration windows and the
/// `a+b=c` accuracy protocol (docs/algorithms.md §6).

#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eval.hpp"
#include "text.hpp"
#include "tcq/tokenizer/tokenizer.hpp"

namespace llama {

/// How text becomes one model's token ids. Every sequence starts with
/// `prefix()` (the BOS, or nothing for tokenizers that add none).
class text_codec {
public:
    /// The fixture's byte vocabulary: BOS 1, byte b → 3 + b.
    [[nodiscard]] static text_codec bytes() {
        text_codec c;
        c.prefix_ = {tok_bos};
        return c;
    }

    /// A tokenizer.json (with its tokenizer_config.json). The prefix is what
    /// the files add to an empty text; anything beyond one BOS is refused.
    [[nodiscard]] static text_codec of(tcq::tokenizer t) {
        text_codec c;
        c.tok_ = std::make_shared<const tcq::tokenizer>(std::move(t));
        c.prefix_ = c.tok_->encode("", true);
        tcq::require(c.prefix_.size() <= 1, c.tok_->name(), ": the post-processor adds ", c.prefix_.size(),
                     " tokens to an empty text; tcq's windows take at most a BOS");
        return c;
    }

    /// Ids only, for a model without a tokenizer fed pre-tokenized ids: the
    /// prefix is `bos` (config.json's bos_token_id; none if negative), and
    /// any text to encode or decode is an error naming `model`.
    [[nodiscard]] static text_codec ids_only(std::int64_t bos, std::string model) {
        text_codec c;
        if (bos >= 0) c.prefix_ = {static_cast<std::int32_t>(bos)};
        c.ids_only_ = std::move(model);
        return c;
    }

    /// The codec of `model_path`: `tokenizer` if given; else the
    /// tokenizer.json in the model directory; else the byte vocabulary when
    /// the model has 259 tokens; else ids only (text is then an error).
    [[nodiscard]] static text_codec for_model(const std::filesystem::path& model_path, index_t vocab_size,
                                              const std::optional<std::filesystem::path>& tokenizer = std::nullopt,
                                              std::int64_t bos_token_id = -1) {
        std::error_code ec;
        std::optional<std::filesystem::path> p = tokenizer;
        if (!p && std::filesystem::is_regular_file(model_path / "tokenizer.json", ec)) p = model_path;
        if (!p) return vocab_size == byte_vocab_size ? bytes() : ids_only(bos_token_id, model_path.string());
        auto c = of(tcq::tokenizer::from_path(*p));
        tcq::require(c.tok_->vocab_size() <= vocab_size, c.tok_->name(), ": ", c.tok_->vocab_size(),
                     " tokens do not fit the model's vocab_size ", vocab_size, " (", model_path.string(), ")");
        return c;
    }

    /// Ids of `text`, no special tokens added.
    [[nodiscard]] std::vector<std::int32_t> encode(std::string_view text) const {
        require_text();
        return tok_ ? tok_->encode(text, false) : llama::encode(text, false);
    }

    /// Ids every sequence starts with.
    [[nodiscard]] const std::vector<std::int32_t>& prefix() const noexcept { return prefix_; }

    /// `prefix()` followed by the ids of `text`.
    [[nodiscard]] std::vector<std::int32_t> encode_sequence(std::string_view text) const {
        auto ids = prefix_;
        const auto body = encode(text);
        ids.insert(ids.end(), body.begin(), body.end());
        return ids;
    }

    /// Text of `ids`; special tokens are dropped.
    [[nodiscard]] std::string decode(std::span<const std::int32_t> ids) const {
        require_text();
        return tok_ ? tok_->decode(ids, true) : decode_bytes(ids);
    }

    /// True for a special token (BOS, EOS, ...), where generation stops.
    [[nodiscard]] bool is_special(std::int32_t id) const {
        if (!ids_only_.empty()) return !prefix_.empty() && id == prefix_[0];
        if (!tok_) return id < tok_byte0;
        const auto* a = tok_->added_tokens().find(id);
        return a && a->special;
    }

    /// True for a token that ends a one-line answer: a special token, or one
    /// whose text holds a newline.
    [[nodiscard]] bool ends_line(std::int32_t id) const {
        require_text();
        if (is_special(id)) return true;
        if (!tok_) return id == byte_token('\n');
        const std::int32_t one[1] = {id};
        return tok_->decode(one).find('\n') != std::string::npos;
    }

    /// "byte vocabulary" or the tokenizer file.
    [[nodiscard]] std::string describe() const {
        return tok_ ? tok_->name() : ids_only_.empty() ? std::string("byte vocabulary") : std::string("ids only");
    }

private:
    text_codec() = default;
    void require_text() const {
        tcq::require(ids_only_.empty(), ids_only_, ": no tokenizer.json for text (and vocab_size is not the 259-token "
                     "byte vocabulary); give --tokenizer, or pre-tokenized ids with --calib-ids");
    }
    std::string ids_only_;  ///< the model, when text cannot be encoded
    std::shared_ptr<const tcq::tokenizer> tok_;
    std::vector<std::int32_t> prefix_;
};

/// Writes prefix + ids[offset, offset + length − |prefix|) into `dst` (length).
inline void fill_id_window(std::span<const std::int32_t> prefix, std::span<const std::int32_t> ids,
                           std::size_t offset, std::span<std::int32_t> dst) {
    std::copy(prefix.begin(), prefix.end(), dst.begin());
    std::copy_n(ids.begin() + static_cast<std::ptrdiff_t>(offset), dst.size() - prefix.size(),
                dst.begin() + static_cast<std::ptrdiff_t>(prefix.size()));
}

/// Evaluation windows on ids (docs/algorithms.md §6): window w is prefix +
/// ids [w·s, (w+1)·s) with s = length − |prefix|; the first
/// min(max_windows, |ids|/s). Throws naming `what` if there is none.
[[nodiscard]] inline token_batch id_eval_windows(std::span<const std::int32_t> prefix,
                                                 std::span<const std::int32_t> ids, index_t max_windows,
                                                 std::string_view what, index_t length) {
    const auto np = static_cast<index_t>(prefix.size());
    tcq::require(length >= np + 1, what, ": window length ", length, " leaves no room after the prefix");
    const index_t step = length - np;
    const index_t avail = static_cast<index_t>(ids.size()) / step;
    tcq::require(avail > 0, what, ": ", ids.size(), " tokens is shorter than one window of ", step, " tokens");
    const index_t n = std::min(avail, max_windows);
    token_batch b(n, length);
    for (index_t w = 0; w < n; ++w) fill_id_window(prefix, ids, static_cast<std::size_t>(w * step), b.row(w));
    return b;
}

/// A calibration stream: ids and, when answer spans are marked, one flag per
/// id (answer_spans.hpp); `scored` empty: none marked.
struct id_stream {
    std::vector<std::int32_t> ids;
    std::vector<std::uint8_t> scored;
};

/// `n` calibration windows of prefix + (length − |prefix|) ids at offsets
/// `std::mt19937_64(seed)() % (|ids| − s + 1)`, drawn in order (portable: no
/// std distribution). For the byte vocabulary this is exactly sample_windows.
/// With `scored` (one flag per id), the windows carry the flags of their ids
/// (the prefix is never scored).
[[nodiscard]] inline token_batch id_sample_windows(std::span<const std::int32_t> prefix,
                                                   std::span<const std::int32_t> ids, index_t n, std::uint64_t seed,
                                                   std::string_view what, index_t length,
                                                   std::span<const std::uint8_t> scored = {}) {
    const auto np = static_cast<index_t>(prefix.size());
    tcq::require(n >= 0 && length >= np + 1, what, ": bad sample request (", n, " windows of ", length, ")");
    const auto span = static_cast<std::size_t>(length - np);
    tcq::require(ids.size() >= span, what, ": ", ids.size(), " tokens is shorter than one window of ", span,
                 " tokens");
    tcq::require(scored.empty() || scored.size() == ids.size(), what, ": ", scored.size(), " answer flags for ",
                 ids.size(), " ids");
    std::mt19937_64 rng(seed);
    const std::uint64_t positions = ids.size() - span + 1;
    token_batch b(n, length);
    if (!scored.empty()) b.scored.assign(static_cast<std::size_t>(n * length), 0);
    for (index_t i = 0; i < n; ++i) {
        const auto off = static_cast<std::size_t>(rng() % positions);
        fill_id_window(prefix, ids, off, b.row(i));
        if (!scored.empty())
            std::copy_n(scored.begin() + static_cast<std::ptrdiff_t>(off), span,
                        b.scored.begin() + static_cast<std::ptrdiff_t>(i * length + np));
    }
    return b;
}

/// The calibration mix of sample_mix on id streams: text f gets n/F windows
/// (the first n mod F one more), drawn with seed + f, grouped in text order.
/// Answer flags are kept when every stream has them; a mix of marked and
/// unmarked streams is an error (an unmarked text has no answer to score).
[[nodiscard]] inline token_batch id_sample_mix(std::span<const std::int32_t> prefix, std::span<const id_stream> texts,
                                               index_t n, std::uint64_t seed, index_t length) {
    tcq::require(!texts.empty(), "calibration: no texts");
    const auto nf = static_cast<index_t>(texts.size());
    const bool marked = !texts[0].scored.empty();
    token_batch out(n, length);
    if (marked) out.scored.assign(static_cast<std::size_t>(n * length), 0);
    index_t row = 0;
    for (index_t f = 0; f < nf; ++f) {
        const auto& t = texts[static_cast<std::size_t>(f)];
        tcq::require(t.scored.empty() != marked, "calibration text ", f, (marked ? " has no" : " has"),
                     " answer spans, unlike calibration text 0: mark all texts or none");
        const index_t share = n / nf + (f < n % nf ? 1 : 0);
        const auto part = id_sample_windows(prefix, t.ids, share, seed + static_cast<std::uint64_t>(f),
                                            "calibration text " + std::to_string(f), length, t.scored);
        std::copy(part.tokens.begin(), part.tokens.end(), out.tokens.begin() + row * length);
        if (marked) std::copy(part.scored.begin(), part.scored.end(), out.scored.begin() + row * length);
        row += share;
    }
    return out;
}

/// id_sample_mix of unmarked id streams.
[[nodiscard]] inline token_batch id_sample_mix(std::span<const std::int32_t> prefix,
                                               std::span<const std::vector<std::int32_t>> texts, index_t n,
                                               std::uint64_t seed, index_t length) {
    std::vector<id_stream> s;
    for (const auto& t : texts) s.push_back({t, {}});
    return id_sample_mix(prefix, std::span<const id_stream>(s), n, seed, length);
}

/// Tokens decoded per `a+b=c` answer, at most.
inline constexpr index_t arith_answer_tokens = 6;

/// The `a+b=c` protocol through `codec`: prompt prefix + the prompt's ids,
/// greedy until a token that ends a line, exact match of the decoded answer.
[[nodiscard]] inline accuracy_report arith_accuracy(const model& m, const text_codec& codec, std::string_view text,
                                                    std::string_view what, index_t max_problems,
                                                    const tcq::exec_policy& pol = tcq::seq()) {
    const auto probs = arith_problems(text, max_problems);
    tcq::require(!probs.empty(), what, ": no line of the form a+b=c with three lines before it");
    std::vector<completion_problem> ps;
    for (const auto& p : probs) {
        ps.push_back({codec.encode_sequence(p.prompt), p.answer});
        tcq::require(static_cast<index_t>(ps.back().prompt.size()) + arith_answer_tokens <= max_length(m), what,
                     ": the prompt of line ", p.line + 1, " leaves no room for the answer");
    }
    return greedy_accuracy(
        m, ps, arith_answer_tokens, [&](std::int32_t t) { return codec.ends_line(t); },
        [&](std::span<const std::int32_t> t) { return codec.decode(t); }, pol);
}

}  // namespace llama
