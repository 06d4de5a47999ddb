#pragma once
/// @file pre_tokenizer.hpp
/// @brief The `pre_tokenizer` of tokenizer.json: Split (regex or literal,
/// every delimiter behaviour, invert), Digits, ByteLevel, Metaspace and Sequence.
/// It cuts a text into the words BPE then encodes one by one.

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tcq/tokenizer/byte_level.hpp"
#include "tcq/tokenizer/json_fields.hpp"
#include "tcq/tokenizer/pattern.hpp"
#include "tcq/tokenizer/regex.hpp"

namespace tcq::tok {

/// A piece of text on its way to the model.
struct piece {
    std::string text;      ///< UTF-8 (after ByteLevel: alphabet characters)
    bool at_start = true;  ///< begins at offset 0 of the original input (Metaspace "first")
};

/// What Split does with the matches of its pattern (HF SplitDelimiterBehavior).
enum class split_behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

/// Cuts `text` at the matches of `re` (`invert`: at the non-matches) and
/// returns the byte ranges of the non-empty parts, as Hugging Face's
/// NormalizedString::split does.
[[nodiscard]] inline std::vector<match_range> split_ranges(std::string_view text, const regex& re,
                                                           split_behavior how, bool invert) {
    struct part {
        match_range r;
        bool flag;  // a match (before the fold); "remove" (after)
    };
    std::vector<part> parts;
    std::size_t prev = 0;
    for (const match_range& m : re.find_all(text)) {
        if (prev != m.begin) parts.push_back({{prev, m.begin}, invert});
        parts.push_back({m, !invert});
        prev = m.end;
    }
    if (prev != text.size()) parts.push_back({{prev, text.size()}, invert});

    std::vector<part> out;
    bool previous_match = false;
    switch (how) {
        case split_behavior::removed:
            out = std::move(parts);
            break;
        case split_behavior::isolated:
            for (auto& x : parts) out.push_back({x.r, false});
            break;
        case split_behavior::contiguous:
        case split_behavior::merged_with_previous:
            for (auto& x : parts) {
                const bool merge = how == split_behavior::contiguous ? x.flag == previous_match
                                                                     : x.flag && !previous_match;
                if (merge && !out.empty())
                    out.back().r.end = x.r.end;
                else
                    out.push_back({x.r, false});
                previous_match = x.flag;
            }
            break;
        case split_behavior::merged_with_next:
            for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
                if (it->flag && !previous_match && !out.empty())
                    out.back().r.begin = it->r.begin;
                else
                    out.push_back({it->r, false});
                previous_match = it->flag;
            }
            std::reverse(out.begin(), out.end());
            break;
    }
    std::vector<match_range> ranges;
    for (const auto& x : out)
        if (!x.flag && x.r.end > x.r.begin) ranges.push_back(x.r);
    return ranges;
}

/// A pre-tokenizer: steps applied in order to every piece.
class pre_tokenizer {
public:
    /// No pre-tokenization (`"pre_tokenizer": null`): each piece is one word.
    pre_tokenizer() = default;

    /// Parses `v` (an object, or null) found at `p`.
    static pre_tokenizer from_json(const nlohmann::json& v, const json_place& p) {
        pre_tokenizer t;
        if (!v.is_null()) t.add(v, p);
        return t;
    }

    /// True if a ByteLevel step maps text to the byte alphabet.
    [[nodiscard]] bool byte_level() const noexcept {
        for (const auto& s : steps_)
            if (s.what == kind::byte_level) return true;
        return false;
    }

    /// Splits `in` into words (empty pieces dropped).
    [[nodiscard]] std::vector<piece> apply(std::vector<piece> in) const {
        for (const step& s : steps_) {
            std::vector<piece> out;
            out.reserve(in.size());
            for (piece& x : in) run(s, std::move(x), out);
            in = std::move(out);
        }
        std::erase_if(in, [](const piece& x) { return x.text.empty(); });
        return in;
    }

private:
    enum class kind { split, byte_level, metaspace };
    enum class prepend { always, first, never };
    struct step {
        kind what = kind::split;
        std::optional<regex> re;  // split; byte_level with use_regex (the GPT-2 pattern)
        split_behavior behavior = split_behavior::isolated;
        bool invert = false;
        bool add_prefix_space = false;  // byte_level
        std::string replacement;        // metaspace: one character
        prepend scheme = prepend::always;
        bool split = true;  // metaspace
    };

    static void cut(piece x, const regex& re, split_behavior how, bool invert, std::vector<piece>& out) {
        for (const match_range& r : split_ranges(x.text, re, how, invert))
            out.push_back({x.text.substr(r.begin, r.end - r.begin), x.at_start && r.begin == 0});
    }

    static void run(const step& s, piece x, std::vector<piece>& out) {
        if (x.text.empty()) return;
        switch (s.what) {
            case kind::split:
                cut(std::move(x), *s.re, s.behavior, s.invert, out);
                return;
            case kind::byte_level: {
                if (s.add_prefix_space && x.text[0] != ' ') x.text.insert(x.text.begin(), ' ');  // not insert(0, " "): GCC 12 -Werror=restrict false positive
                std::vector<piece> words;
                if (s.re)
                    cut(std::move(x), *s.re, split_behavior::isolated, false, words);
                else
                    words.push_back(std::move(x));
                const byte_alphabet& a = byte_alphabet::get();
                for (piece& w : words) {
                    std::string mapped;
                    mapped.reserve(w.text.size() * 2);
                    a.encode(w.text, mapped);
                    out.push_back({std::move(mapped), w.at_start});
                }
                return;
            }
            case kind::metaspace: {
                std::string t;
                t.reserve(x.text.size() + s.replacement.size());
                for (char c : x.text) {
                    if (c == ' ')
                        t += s.replacement;
                    else
                        t += c;
                }
                const bool starts = t.compare(0, s.replacement.size(), s.replacement) == 0;
                if (!starts && (s.scheme == prepend::always || (s.scheme == prepend::first && x.at_start)))
                    t.insert(0, s.replacement);
                x.text = std::move(t);
                if (s.split)
                    cut(std::move(x), *s.re, split_behavior::merged_with_next, false, out);
                else
                    out.push_back(std::move(x));
                return;
            }
        }
    }

    static split_behavior behavior_of(const std::string& b, const json_place& p) {
        if (b == "Removed") return split_behavior::removed;
        if (b == "Isolated") return split_behavior::isolated;
        if (b == "MergedWithPrevious") return split_behavior::merged_with_previous;
        if (b == "MergedWithNext") return split_behavior::merged_with_next;
        if (b == "Contiguous") return split_behavior::contiguous;
        unsupported_value(p, b);
    }

    void add(const nlohmann::json& v, const json_place& p) {
        const std::string& type = type_of(v, p);
        step st;
        if (type == "Sequence") {
            require_known_keys(v, {"type", "pretokenizers"}, p);
            const auto& list = member(v, "pretokenizers", p);
            if (!list.is_array()) bad_field(p.at("pretokenizers"), "must be an array");
            for (std::size_t i = 0; i < list.size(); ++i) add(list[i], p.at("pretokenizers").at(i));
            return;
        }
        if (type == "Split") {
            require_known_keys(v, {"type", "pattern", "behavior", "invert"}, p);
            st.re = pattern_from_json(member(v, "pattern", p), p.at("pattern"));
            st.behavior = behavior_of(as_string(member(v, "behavior", p), p.at("behavior")), p.at("behavior"));
            st.invert = bool_or(v, "invert", false, p);
        } else if (type == "Digits") {
            // Hugging Face splits at each char::is_numeric character (category N): one
            // match per digit, isolated, or merged into runs.
            require_known_keys(v, {"type", "individual_digits"}, p);
            st.re.emplace(R"(\p{N})", false, p.where());
            st.behavior = bool_or(v, "individual_digits", false, p) ? split_behavior::isolated
                                                                     : split_behavior::contiguous;
        } else if (type == "ByteLevel") {
            // trim_offsets only moves offsets, never ids.
            require_known_keys(v, {"type", "add_prefix_space", "trim_offsets", "use_regex"}, p);
            st.what = kind::byte_level;
            st.add_prefix_space = bool_or(v, "add_prefix_space", true, p);
            if (bool_or(v, "use_regex", true, p))
                st.re.emplace(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", false,
                              p.where());
        } else if (type == "Metaspace") {
            require_known_keys(v, {"type", "replacement", "add_prefix_space", "prepend_scheme", "split", "str_rep"},
                               p);
            st.what = kind::metaspace;
            st.replacement = as_string(member(v, "replacement", p), p.at("replacement"));
            require_utf8(st.replacement, p.at("replacement").where());
            if (st.replacement.empty() || utf8_sequence_length(st.replacement, 0) != st.replacement.size())
                bad_field(p.at("replacement"), "must be one character");
            if (const auto* s = optional_member(v, "prepend_scheme")) {
                const std::string& sc = as_string(*s, p.at("prepend_scheme"));
                st.scheme = sc == "always" ? prepend::always
                            : sc == "first" ? prepend::first
                            : sc == "never" ? prepend::never
                                            : (unsupported_value(p.at("prepend_scheme"), sc), prepend::never);
            }
            if (const auto* a = optional_member(v, "add_prefix_space"); a && !as_bool(*a, p.at("add_prefix_space"))) {
                if (optional_member(v, "prepend_scheme") && st.scheme != prepend::never)
                    bad_field(p.at("add_prefix_space"), "false contradicts prepend_scheme");
                st.scheme = prepend::never;
            }
            st.split = bool_or(v, "split", true, p);
            st.re.emplace(st.replacement, true, p.where());
        } else {
            unsupported_value(p.at("type"), type);
        }
        steps_.push_back(std::move(st));
    }

    std::vector<step> steps_;
};

}  // namespace tcq::tok
