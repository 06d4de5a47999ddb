#pragma once
/// @file added_tokens.hpp
/// @brief The `added_tokens` of tokenizer.json: strings cut out of the text
/// before normalization (`normalized: false`) or after it (`normalized:
/// true`), matched leftmost-longest, each becoming its own id.

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tcq/tokenizer/json_fields.hpp"
#include "tcq/tokenizer/normalizer.hpp"
#include "tcq/tokenizer/pre_tokenizer.hpp"
#include "tcq/tokenizer/unicode.hpp"
#include "tcq/tokenizer/utf8.hpp"

namespace tcq::tok {

/// One entry of `added_tokens`.
struct added_token {
    std::int32_t id = 0;        ///< its id
    std::string content;        ///< the literal text
    bool special = false;       ///< a control token (skipped by decode(skip_special); not split when split_special)
    bool lstrip = false;        ///< also swallows the whitespace before it
    bool rstrip = false;        ///< also swallows the whitespace after it
    bool normalized = true;     ///< matched in the normalized text (against its normalized content)
    bool single_word = false;   ///< matched only where not inside a word
};

/// A piece of text, or an added token already cut out of it (id >= 0).
struct segment {
    piece text;             ///< the text (for a token: the matched text)
    std::int32_t id = -1;   ///< the added token's id, or -1
};

/// The added vocabulary and its two matchers.
class added_vocabulary {
public:
    /// No added tokens.
    added_vocabulary() = default;

    /// Parses the `added_tokens` array `v` (null: none) found at `p`; the
    /// patterns of `normalized` tokens are their contents run through `norm`.
    static added_vocabulary from_json(const nlohmann::json& v, const json_place& p, const normalizer& norm) {
        added_vocabulary a;
        if (v.is_null()) return a;
        if (!v.is_array()) bad_field(p, "must be an array");
        for (std::size_t i = 0; i < v.size(); ++i) {
            const json_place q = p.at(i);
            const auto& t = v[i];
            require_object(t, q);
            require_known_keys(t, {"id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"}, q);
            added_token tok;
            tok.id = as_id(member(t, "id", q), q.at("id"));
            tok.content = as_string(member(t, "content", q), q.at("content"));
            if (tok.content.empty()) bad_field(q.at("content"), "is empty");
            tok.special = bool_or(t, "special", false, q);
            tok.lstrip = bool_or(t, "lstrip", false, q);
            tok.rstrip = bool_or(t, "rstrip", false, q);
            tok.normalized = bool_or(t, "normalized", !tok.special, q);
            tok.single_word = bool_or(t, "single_word", false, q);
            a.tokens_.push_back(std::move(tok));
        }
        for (std::size_t i = 0; i < a.tokens_.size(); ++i) {
            const added_token& t = a.tokens_[i];
            const std::string pat = t.normalized ? norm.apply(t.content) : t.content;
            if (!pat.empty()) (t.normalized ? a.normalized_ : a.raw_).add(pat, i);
        }
        a.raw_.sort();
        a.normalized_.sort();
        return a;
    }

    /// All entries, in file order.
    [[nodiscard]] const std::vector<added_token>& tokens() const noexcept { return tokens_; }

    /// The entry with content `s`, or nullptr.
    [[nodiscard]] const added_token* find(std::string_view s) const {
        for (const auto& t : tokens_)
            if (t.content == s) return &t;
        return nullptr;
    }

    /// The entry with id `id`, or nullptr.
    [[nodiscard]] const added_token* find(std::int32_t id) const {
        for (const auto& t : tokens_)
            if (t.id == id) return &t;
        return nullptr;
    }

    /// Cuts the tokens of one matcher (`normalized` or raw) out of `x`,
    /// appending pieces and tokens in order; special tokens are left in the
    /// text when `split_special`.
    void split(piece x, bool normalized, bool split_special, std::vector<segment>& out) const {
        const matcher& m = normalized ? normalized_ : raw_;
        const std::string& s = x.text;
        std::size_t done = 0;  // end of the last emitted part
        std::size_t i = 0;
        while (i < s.size()) {
            const auto hit = m.longest_at(s, i);
            if (hit.second == 0) {
                ++i;
                continue;
            }
            const added_token& t = tokens_[hit.first];
            std::size_t start = i, stop = i + hit.second;
            i = stop;  // the automaton resumes after the match, even a discarded one
            if (split_special && t.special) continue;
            if (t.single_word && ((start > 0 && ends_with_word(s, start)) || (stop < s.size() && starts_with_word(s, stop))))
                continue;
            if (t.lstrip) start = std::max(done, white_space_start(s, start));
            if (t.rstrip) stop = white_space_end(s, stop);
            if (done < start) out.push_back({{s.substr(done, start - done), x.at_start && done == 0}, -1});
            out.push_back({{s.substr(start, stop - start), x.at_start && start == 0}, t.id});
            done = stop;
            i = stop;
        }
        if (done < s.size() || s.empty()) out.push_back({{s.substr(done), x.at_start && done == 0}, -1});
    }

private:
    // Patterns bucketed by first byte, longest first: the first that matches at
    // a position is the longest there.
    struct matcher {
        std::array<std::vector<std::pair<std::string, std::size_t>>, 256> by_first;
        void add(const std::string& pat, std::size_t index) {
            by_first[static_cast<unsigned char>(pat[0])].emplace_back(pat, index);
        }
        void sort() {
            for (auto& b : by_first)
                std::stable_sort(b.begin(), b.end(),
                                 [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });
        }
        // (token index, match length); length 0: no match at `i`.
        [[nodiscard]] std::pair<std::size_t, std::size_t> longest_at(const std::string& s, std::size_t i) const {
            for (const auto& [pat, idx] : by_first[static_cast<unsigned char>(s[i])])
                if (s.compare(i, pat.size(), pat) == 0) return {idx, pat.size()};
            return {0, 0};
        }
    };

    static bool ends_with_word(const std::string& s, std::size_t end) {
        std::size_t b = previous_code_point_start(s, end);
        return is_word_char(next_code_point(s, b));
    }
    static bool starts_with_word(const std::string& s, std::size_t at) {
        std::size_t k = at;
        return is_word_char(next_code_point(s, k));
    }
    // Start of the run of white space that ends at `end`.
    static std::size_t white_space_start(const std::string& s, std::size_t end) {
        while (end > 0) {
            const std::size_t b = previous_code_point_start(s, end);
            std::size_t k = b;
            if (!is_white_space(next_code_point(s, k))) break;
            end = b;
        }
        return end;
    }
    // End of the run of white space that starts at `at`.
    static std::size_t white_space_end(const std::string& s, std::size_t at) {
        while (at < s.size()) {
            std::size_t k = at;
            if (!is_white_space(next_code_point(s, k))) break;
            at = k;
        }
        return at;
    }

    std::vector<added_token> tokens_;
    matcher raw_, normalized_;
};

}  // namespace tcq::tok
