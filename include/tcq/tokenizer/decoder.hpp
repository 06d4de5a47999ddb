#pragma once
/// @file decoder.hpp
/// @brief The `decoder` of tokenizer.json, turning tokens back into text:
/// ByteLevel, Metaspace, and Sequence of Replace, ByteFallback, Fuse, Strip.
/// Encoding never needs it, so an unsupported decoder fails only decode().

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tcq/tokenizer/byte_level.hpp"
#include "tcq/tokenizer/json_fields.hpp"
#include "tcq/tokenizer/utf8.hpp"

namespace tcq::tok {

/// A token-sequence → text decoder.
class decoder {
public:
    /// Concatenates the tokens (`"decoder": null`).
    decoder() = default;

    /// Parses `v` (null: concatenation) found at `p`. An unsupported decoder
    /// is remembered, and decode() reports it.
    static decoder from_json(const nlohmann::json& v, const json_place& p) {
        decoder d;
        if (v.is_null()) return d;
        try {
            d.add(v, p);
        } catch (const error& e) {
            d.steps_.clear();
            d.problem_ = e.what();
        }
        return d;
    }

    /// The text of `tokens`; as bytes, so a byte-level decode of a whole encode
    /// reproduces the input exactly.
    [[nodiscard]] std::string decode(std::vector<std::string> tokens) const {
        if (problem_) fail(*problem_);
        for (const step& s : steps_) tokens = run(s, std::move(tokens));
        std::string out;
        for (const auto& t : tokens) out += t;
        return out;
    }

private:
    enum class kind { byte_level, metaspace, replace, byte_fallback, fuse, strip };
    struct step {
        kind what = kind::fuse;
        std::string from, to;  // replace; metaspace: from = replacement
        bool prepend = true;   // metaspace: the first token lost a leading space
        std::size_t start = 0, stop = 0;  // strip
    };

    static std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
        std::string out;
        std::size_t prev = 0;
        for (std::size_t k = s.find(from); k != std::string::npos; k = s.find(from, prev)) {
            out.append(s, prev, k - prev);
            out += to;
            prev = k + from.size();
        }
        out.append(s, prev, std::string::npos);
        return out;
    }

    static std::optional<int> byte_token(const std::string& t) {
        if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return std::nullopt;
        int v = 0;
        for (int k = 3; k < 5; ++k) {
            const char c = t[static_cast<std::size_t>(k)];
            const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) return std::nullopt;
            v = v * 16 + d;
        }
        return v;
    }

    static std::vector<std::string> run(const step& s, std::vector<std::string> in) {
        std::vector<std::string> out;
        switch (s.what) {
            case kind::byte_level:
                for (const auto& t : in) {
                    std::string bytes;
                    bool all = true;
                    for (std::size_t i = 0; i < t.size() && all;) {
                        const int b = byte_alphabet::get().byte_of(next_code_point(t, i));
                        if (b < 0) all = false;
                        else bytes += static_cast<char>(b);
                    }
                    out.push_back(all ? bytes : t);
                }
                return out;
            case kind::metaspace:
                for (std::size_t i = 0; i < in.size(); ++i) {
                    std::string t = replace_all(in[i], s.from, " ");
                    if (i == 0 && s.prepend && !t.empty() && t[0] == ' ') t.erase(0, 1);
                    out.push_back(std::move(t));
                }
                return out;
            case kind::replace:
                for (auto& t : in) out.push_back(replace_all(t, s.from, s.to));
                return out;
            case kind::byte_fallback: {
                std::string pending;
                const auto flush = [&] {
                    if (pending.empty()) return;
                    bool valid = true;
                    for (std::size_t i = 0; i < pending.size() && valid;) {
                        const std::size_t n = utf8_sequence_length(pending, i);
                        valid = n > 0;
                        i += n;
                    }
                    if (valid) out.push_back(pending);
                    else
                        for (std::size_t k = 0; k < pending.size(); ++k) out.emplace_back("\xEF\xBF\xBD");  // U+FFFD
                    pending.clear();
                };
                for (auto& t : in) {
                    if (const auto b = byte_token(t)) {
                        pending += static_cast<char>(*b);
                        continue;
                    }
                    flush();
                    out.push_back(std::move(t));
                }
                flush();
                return out;
            }
            case kind::fuse: {
                std::string all;
                for (const auto& t : in) all += t;
                out.push_back(std::move(all));
                return out;
            }
            case kind::strip:
                for (auto& t : in) {
                    std::size_t b = 0, e = t.size();
                    for (std::size_t k = 0; k < s.start && e - b >= s.from.size() && t.compare(b, s.from.size(), s.from) == 0; ++k)
                        b += s.from.size();
                    for (std::size_t k = 0; k < s.stop && e - b >= s.from.size() &&
                                            t.compare(e - s.from.size(), s.from.size(), s.from) == 0;
                         ++k)
                        e -= s.from.size();
                    out.push_back(t.substr(b, e - b));
                }
                return out;
        }
        return out;
    }

    static std::size_t count_of(const nlohmann::json& obj, const char* key, const json_place& p) {
        const auto& v = member(obj, key, p);
        if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
            bad_field(p.at(key), "must be a non-negative integer");
        return v.get<std::size_t>();
    }

    void add(const nlohmann::json& v, const json_place& p) {
        const std::string& type = type_of(v, p);
        step st;
        if (type == "Sequence") {
            const auto& list = member(v, "decoders", p);
            if (!list.is_array()) bad_field(p.at("decoders"), "must be an array");
            for (std::size_t i = 0; i < list.size(); ++i) add(list[i], p.at("decoders").at(i));
            return;
        }
        if (type == "ByteLevel") {
            st.what = kind::byte_level;
        } else if (type == "Metaspace") {
            st.what = kind::metaspace;
            st.from = as_string(member(v, "replacement", p), p.at("replacement"));
            const auto* sc = optional_member(v, "prepend_scheme");
            st.prepend = !(sc && sc->is_string() && sc->get<std::string>() == "never") &&
                         bool_or(v, "add_prefix_space", true, p);
        } else if (type == "Replace") {
            st.what = kind::replace;
            const auto& pat = member(v, "pattern", p);
            if (!pat.is_object() || !pat.contains("String")) bad_field(p.at("pattern"), "must be {\"String\": …}");
            st.from = as_string(pat["String"], p.at("pattern").at("String"));
            if (st.from.empty()) bad_field(p.at("pattern").at("String"), "is empty");
            st.to = as_string(member(v, "content", p), p.at("content"));
        } else if (type == "ByteFallback") {
            st.what = kind::byte_fallback;
        } else if (type == "Fuse") {
            st.what = kind::fuse;
        } else if (type == "Strip") {
            st.what = kind::strip;
            st.from = as_string(member(v, "content", p), p.at("content"));
            if (st.from.empty()) bad_field(p.at("content"), "is empty");
            st.start = count_of(v, "start", p);
            st.stop = count_of(v, "stop", p);
        } else {
            unsupported_value(p.at("type"), type);
        }
        steps_.push_back(std::move(st));
    }

    std::vector<step> steps_;
    std::optional<std::string> problem_;
};

}  // namespace tcq::tok
