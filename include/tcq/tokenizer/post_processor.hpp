#pragma once
/// @file post_processor.hpp
/// @brief The special ids around one encoded text (BOS/EOS): the
/// `post_processor` of tokenizer.json (TemplateProcessing, Bert/Roberta
/// processing, ByteLevel, Sequence), or the `add_bos_token` /
/// `add_eos_token` of tokenizer_config.json, which take precedence.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tcq/tokenizer/json_fields.hpp"

namespace tcq::tok {

/// Ids put before and after the ids of a single text.
class post_processor {
public:
    /// Adds nothing.
    post_processor() = default;

    /// Ids `before` and `after` the text.
    post_processor(std::vector<std::int32_t> before, std::vector<std::int32_t> after)
        : before_(std::move(before)), after_(std::move(after)) {}

    /// Parses the `post_processor` object `v` (null: nothing) found at `p`.
    static post_processor from_json(const nlohmann::json& v, const json_place& p) {
        post_processor r;
        if (v.is_null()) return r;
        const std::string& type = type_of(v, p);
        if (type == "ByteLevel") {
            require_known_keys(v, {"type", "add_prefix_space", "trim_offsets", "use_regex"}, p);  // offsets only
        } else if (type == "Sequence") {
            require_known_keys(v, {"type", "processors"}, p);
            const auto& list = member(v, "processors", p);
            if (!list.is_array()) bad_field(p.at("processors"), "must be an array");
            for (std::size_t i = 0; i < list.size(); ++i) {
                const post_processor q = from_json(list[i], p.at("processors").at(i));
                r.before_.insert(r.before_.begin(), q.before_.begin(), q.before_.end());
                r.after_.insert(r.after_.end(), q.after_.begin(), q.after_.end());
            }
        } else if (type == "TemplateProcessing") {
            require_known_keys(v, {"type", "single", "pair", "special_tokens"}, p);
            r.read_template(v, p);
        } else if (type == "BertProcessing" || type == "RobertaProcessing") {
            require_known_keys(v, {"type", "sep", "cls", "trim_offsets", "add_prefix_space"}, p);
            r.before_.push_back(pair_id(member(v, "cls", p), p.at("cls")));
            r.after_.push_back(pair_id(member(v, "sep", p), p.at("sep")));
        } else {
            unsupported_value(p.at("type"), type);
        }
        return r;
    }

    /// `ids` with the special ids around them.
    [[nodiscard]] std::vector<std::int32_t> apply(std::vector<std::int32_t> ids) const {
        ids.insert(ids.begin(), before_.begin(), before_.end());
        ids.insert(ids.end(), after_.begin(), after_.end());
        return ids;
    }

    /// The ids put before the text.
    [[nodiscard]] const std::vector<std::int32_t>& before() const noexcept { return before_; }
    /// The ids put after the text.
    [[nodiscard]] const std::vector<std::int32_t>& after() const noexcept { return after_; }

private:
    // ["[CLS]", 101]
    static std::int32_t pair_id(const nlohmann::json& v, const json_place& p) {
        if (!v.is_array() || v.size() != 2 || !v[0].is_string()) bad_field(p, "must be a pair [token, id]");
        return as_id(v[1], p.at(1));
    }

    void read_template(const nlohmann::json& v, const json_place& p) {
        const auto& single = member(v, "single", p);
        const json_place ps = p.at("single");
        if (!single.is_array()) bad_field(ps, "must be an array");
        const auto* specials = optional_member(v, "special_tokens");
        bool seen_text = false;
        for (std::size_t i = 0; i < single.size(); ++i) {
            const json_place q = ps.at(i);
            const auto& item = single[i];
            require_object(item, q);
            if (item.size() != 1) bad_field(q, "must hold one of \"SpecialToken\" or \"Sequence\"");
            if (const auto it = item.find("Sequence"); it != item.end()) {
                require_object(*it, q.at("Sequence"));
                const std::string& which = as_string(member(*it, "id", q.at("Sequence")), q.at("Sequence").at("id"));
                if (which != "A") unsupported_value(q.at("Sequence").at("id"), which);
                if (seen_text) bad_field(q, "repeats the text $A");
                seen_text = true;
            } else if (const auto st = item.find("SpecialToken"); st != item.end()) {
                const json_place qs = q.at("SpecialToken");
                require_object(*st, qs);
                const std::string& name = as_string(member(*st, "id", qs), qs.at("id"));
                const json_place pt = p.at("special_tokens");
                if (!specials || !specials->is_object() || !specials->contains(name))
                    bad_field(pt, "has no entry '" + name + "' named by " + qs.path);
                const auto& entry = (*specials)[name];
                require_object(entry, pt.at(name));
                const auto& ids = member(entry, "ids", pt.at(name));
                if (!ids.is_array()) bad_field(pt.at(name).at("ids"), "must be an array");
                for (std::size_t k = 0; k < ids.size(); ++k)
                    (seen_text ? after_ : before_).push_back(as_id(ids[k], pt.at(name).at("ids").at(k)));
            } else {
                bad_field(q, "must hold one of \"SpecialToken\" or \"Sequence\"");
            }
        }
        if (!seen_text) bad_field(ps, "does not contain the text $A");
    }

    std::vector<std::int32_t> before_, after_;
};

}  // namespace tcq::tok
