#pragma once
/// @file pattern.hpp
/// @brief The `{"String": s}` / `{"Regex": r}` pattern objects of tokenizer.json
/// (Split pre-tokenizer, Replace normalizer) compiled to a regex.

#include <string>

#include <nlohmann/json.hpp>

#include "tcq/tokenizer/json_fields.hpp"
#include "tcq/tokenizer/regex.hpp"
#include "tcq/tokenizer/utf8.hpp"

namespace tcq::tok {

/// Compiles the pattern object `v` found at `p`; a String is matched literally.
[[nodiscard]] inline regex pattern_from_json(const nlohmann::json& v, const json_place& p) {
    require_object(v, p);
    const bool literal = v.contains("String");
    if (v.size() != 1 || (!literal && !v.contains("Regex")))
        bad_field(p, "must hold exactly one of \"String\" or \"Regex\"");
    const json_place q = p.at(literal ? "String" : "Regex");
    const std::string& s = as_string(v.begin().value(), q);
    require_utf8(s, q.where());
    if (s.empty()) bad_field(q, "is empty");
    return regex(s, literal, q.where());
}

}  // namespace tcq::tok
