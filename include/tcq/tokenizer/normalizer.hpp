#pragma once
/// @file normalizer.hpp
/// @brief The `normalizer` of tokenizer.json: NFC/NFD/NFKC/NFKD, Prepend,
/// Replace and Sequence of these. Any other type is rejected at load.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tcq/tokenizer/json_fields.hpp"
#include "tcq/tokenizer/pattern.hpp"
#include "tcq/tokenizer/regex.hpp"
#include "tcq/tokenizer/unicode.hpp"

namespace tcq::tok {

/// A normalizer: a list of string rewrites applied in order.
class normalizer {
public:
    /// The identity (tokenizer.json `"normalizer": null`).
    normalizer() = default;

    /// Parses `v` (an object, or null for the identity) found at `p`.
    static normalizer from_json(const nlohmann::json& v, const json_place& p) {
        normalizer n;
        if (!v.is_null()) n.add(v, p);
        return n;
    }

    /// True if the normalizer changes nothing.
    [[nodiscard]] bool identity() const noexcept { return steps_.empty(); }

    /// `s` (well-formed UTF-8) normalized.
    [[nodiscard]] std::string apply(std::string_view s) const {
        std::string cur(s);
        for (const step& st : steps_) {
            switch (st.what) {
                case kind::unicode:
                    cur = normalize_unicode(cur, st.form);
                    break;
                case kind::prepend:
                    if (!cur.empty()) cur.insert(0, st.content);
                    break;
                case kind::replace:
                    cur = replace_all(cur, *st.pattern, st.content);
                    break;
            }
        }
        return cur;
    }

private:
    enum class kind { unicode, prepend, replace };
    struct step {
        kind what = kind::unicode;
        unicode_form form = unicode_form::nfc;
        std::string content;           // prepend: the prefix; replace: the replacement
        std::optional<regex> pattern;  // replace
    };

    static std::string replace_all(const std::string& s, const regex& re, const std::string& content) {
        std::string out;
        std::size_t prev = 0;
        for (const match_range& m : re.find_all(s)) {
            out.append(s, prev, m.begin - prev);
            out += content;
            prev = m.end;
        }
        out.append(s, prev, std::string::npos);
        return out;
    }

    void add(const nlohmann::json& v, const json_place& p) {
        const std::string& type = type_of(v, p);
        step st;
        if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
            require_known_keys(v, {"type"}, p);
            st.form = type == "NFC"    ? unicode_form::nfc
                      : type == "NFD"  ? unicode_form::nfd
                      : type == "NFKC" ? unicode_form::nfkc
                                       : unicode_form::nfkd;
        } else if (type == "Sequence") {
            require_known_keys(v, {"type", "normalizers"}, p);
            const auto& list = member(v, "normalizers", p);
            if (!list.is_array()) bad_field(p.at("normalizers"), "must be an array");
            for (std::size_t i = 0; i < list.size(); ++i) add(list[i], p.at("normalizers").at(i));
            return;
        } else if (type == "Prepend") {
            require_known_keys(v, {"type", "prepend"}, p);
            st.what = kind::prepend;
            st.content = as_string(member(v, "prepend", p), p.at("prepend"));
            require_utf8(st.content, p.at("prepend").where());
        } else if (type == "Replace") {
            require_known_keys(v, {"type", "pattern", "content"}, p);
            st.what = kind::replace;
            st.content = as_string(member(v, "content", p), p.at("content"));
            require_utf8(st.content, p.at("content").where());
            st.pattern = pattern_from_json(member(v, "pattern", p), p.at("pattern"));
        } else {
            unsupported_value(p.at("type"), type);
        }
        steps_.push_back(std::move(st));
    }

    std::vector<step> steps_;
};

}  // namespace tcq::tok
