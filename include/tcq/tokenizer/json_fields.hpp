#pragma once
/// @file json_fields.hpp
/// @brief Checked access to the fields of tokenizer JSON files: every error
/// names the file and the dotted field path (e.g. "tokenizer.json: model.type").

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tcq/core/error.hpp"

namespace tcq::tok {

/// The place of a JSON value: its file and its field path inside the file.
struct json_place {
    std::string file;  ///< the file's name as shown in errors
    std::string path;  ///< dotted path, "" for the document root

    /// The place of member `key`.
    [[nodiscard]] json_place at(std::string_view key) const {
        return {file, path.empty() ? std::string(key) : path + "." + std::string(key)};
    }
    /// The place of array element `i`.
    [[nodiscard]] json_place at(std::size_t i) const { return {file, path + "[" + std::to_string(i) + "]"}; }
    /// "file: path" (or "file" at the root), the prefix of every message.
    [[nodiscard]] std::string where() const { return path.empty() ? file : file + ": " + path; }
};

/// Throws "file: path <what>".
[[noreturn]] inline void bad_field(const json_place& p, std::string_view what) { fail(p.where(), " ", what); }

/// Throws "file: path 'value' is not supported".
[[noreturn]] inline void unsupported_value(const json_place& p, std::string_view value) {
    fail(p.where(), " '", value, "' is not supported");
}

/// Requires `v` to be an object.
inline void require_object(const nlohmann::json& v, const json_place& p) {
    if (!v.is_object()) bad_field(p, "must be a JSON object");
}

/// The member `key` of object `obj`, or nullptr if absent or null.
[[nodiscard]] inline const nlohmann::json* optional_member(const nlohmann::json& obj, std::string_view key) {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
}

/// The member `key` of object `obj`; "is missing" if absent or null.
[[nodiscard]] inline const nlohmann::json& member(const nlohmann::json& obj, std::string_view key,
                                                  const json_place& p) {
    const nlohmann::json* v = optional_member(obj, key);
    if (!v) bad_field(p.at(key), "is missing");
    return *v;
}

/// `v` as a string; "must be a string" otherwise.
[[nodiscard]] inline const std::string& as_string(const nlohmann::json& v, const json_place& p) {
    if (!v.is_string()) bad_field(p, "must be a string");
    return v.get_ref<const std::string&>();
}

/// `v` as a bool; "must be true or false" otherwise.
[[nodiscard]] inline bool as_bool(const nlohmann::json& v, const json_place& p) {
    if (!v.is_boolean()) bad_field(p, "must be true or false");
    return v.get<bool>();
}

/// `v` as a token id: an integer in [0, 2^31 - 1).
[[nodiscard]] inline std::int32_t as_id(const nlohmann::json& v, const json_place& p) {
    if (!v.is_number_integer()) bad_field(p, "must be an integer token id");
    const bool neg = v.is_number_unsigned() ? false : v.get<std::int64_t>() < 0;
    if (neg || v.get<std::uint64_t>() >= static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max()))
        bad_field(p, "is outside [0, 2^31 - 1)");
    return static_cast<std::int32_t>(v.get<std::int64_t>());
}

/// Optional bool member; `fallback` if absent or null.
[[nodiscard]] inline bool bool_or(const nlohmann::json& obj, std::string_view key, bool fallback,
                                  const json_place& p) {
    const nlohmann::json* v = optional_member(obj, key);
    return v ? as_bool(*v, p.at(key)) : fallback;
}

/// The "type" member of a component object (normalizer, pre_tokenizer, …).
[[nodiscard]] inline const std::string& type_of(const nlohmann::json& obj, const json_place& p) {
    require_object(obj, p);
    return as_string(member(obj, "type", p), p.at("type"));
}

/// Rejects members of `obj` outside `known`: an option tcq does not know may
/// change the output, so it is an error rather than ignored.
inline void require_known_keys(const nlohmann::json& obj, std::initializer_list<std::string_view> known,
                               const json_place& p) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        bool ok = false;
        for (auto k : known) ok = ok || it.key() == k;
        if (!ok) bad_field(p.at(it.key()), "is not a supported option");
    }
}

namespace detail {
/// Parse-time guard: bounds nesting depth (hostile input must not exhaust the stack).
struct depth_guard {
    const std::string* file;
    bool operator()(int depth, nlohmann::json::parse_event_t, nlohmann::json&) const {
        if (depth > 64) fail(*file, ": JSON nested deeper than 64 levels");
        return true;
    }
};
}  // namespace detail

/// Parses `text` as JSON; malformed or truncated text is "file: malformed JSON (…)".
[[nodiscard]] inline nlohmann::json parse_json(std::string_view text, const std::string& file) {
    try {
        return nlohmann::json::parse(text.begin(), text.end(), detail::depth_guard{&file});
    } catch (const nlohmann::json::exception& e) {
        fail(file, ": malformed JSON (", e.what(), ")");
    }
}

/// The whole content of `path`; "cannot read" if it cannot be opened.
[[nodiscard]] inline std::string read_text_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path.string(), ": cannot read the file");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) fail(path.string(), ": read error");
    return ss.str();
}

}  // namespace tcq::tok
