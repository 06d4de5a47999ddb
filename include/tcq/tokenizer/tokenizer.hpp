#pragma once
/// @file tokenizer.hpp
/// @brief A Hugging Face `tokenizer.json` (BPE model) loaded for encoding
/// text to ids and decoding ids to text, matching the `tokenizers` library.
///
/// encode() runs, in this order (docs/tokenizers.md):
///  1. cut out the added tokens with `normalized: false` (leftmost-longest);
///  2. normalize each remaining piece, then cut out the `normalized: true` ones;
///  3. pre-tokenize each remaining piece into words;
///  4. BPE-encode each word;
///  5. with add_special only: put the BOS/EOS ids around the result.
///
/// Needs PCRE2 and utf8proc: link `tcq::tokenizer`. Not part of `tcq/tcq.hpp`.

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tcq/core/error.hpp"
#include "tcq/tokenizer/added_tokens.hpp"
#include "tcq/tokenizer/bpe.hpp"
#include "tcq/tokenizer/decoder.hpp"
#include "tcq/tokenizer/json_fields.hpp"
#include "tcq/tokenizer/normalizer.hpp"
#include "tcq/tokenizer/post_processor.hpp"
#include "tcq/tokenizer/pre_tokenizer.hpp"
#include "tcq/tokenizer/utf8.hpp"

namespace tcq {

/// A loaded tokenizer. Immutable after loading; encode/decode are thread-safe.
class tokenizer {
public:
    /// Loads `path`: a `tokenizer.json` file, or a directory holding one.
    /// A `tokenizer_config.json` beside it, if present, supplies BOS/EOS and
    /// `split_special_tokens`.
    [[nodiscard]] static tokenizer from_path(const std::filesystem::path& path) {
        namespace fs = std::filesystem;
        std::error_code ec;
        if (!fs::exists(path, ec))
            fail(path.string(), ": no such file or directory (expected tokenizer.json or a directory holding it)");
        const fs::path file = fs::is_directory(path, ec) ? path / "tokenizer.json" : path;
        const std::string text = tok::read_text_file(file);
        const fs::path cfg = file.parent_path() / "tokenizer_config.json";
        if (fs::is_regular_file(cfg, ec)) {
            const std::string cfg_text = tok::read_text_file(cfg);
            return from_json_text(text, file.string(), cfg_text, cfg.string());
        }
        return from_json_text(text, file.string());
    }

    /// Loads from the text of a tokenizer.json (`name` names it in errors) and
    /// optionally of a tokenizer_config.json (`config_name`).
    [[nodiscard]] static tokenizer from_json_text(std::string_view json, const std::string& name = "tokenizer.json",
                                                  std::optional<std::string_view> config = std::nullopt,
                                                  const std::string& config_name = "tokenizer_config.json") {
        tokenizer t;
        t.load(tok::parse_json(json, name), tok::json_place{name, ""});
        if (config) t.load_config(tok::parse_json(*config, config_name), tok::json_place{config_name, ""});
        return t;
    }

    /// The ids of `text` (bytes, which must be well-formed UTF-8). With
    /// `add_special`, the BOS/EOS ids are added as the files say.
    [[nodiscard]] std::vector<std::int32_t> encode(std::string_view text, bool add_special = false) const {
        tok::require_utf8(text, "tokenizer input");
        std::vector<std::int32_t> ids;
        tok::word_cache cache;
        std::vector<tok::segment> raw;
        added_.split({std::string(text), true}, false, split_special_, raw);
        for (tok::segment& r : raw) {
            if (r.id >= 0) {
                ids.push_back(r.id);
                continue;
            }
            if (r.text.text.empty()) continue;
            std::vector<tok::segment> norm;
            r.text.text = normalizer_.apply(r.text.text);
            added_.split(std::move(r.text), true, split_special_, norm);
            for (tok::segment& s : norm) {
                if (s.id >= 0) {
                    ids.push_back(s.id);
                    continue;
                }
                if (s.text.text.empty()) continue;
                std::vector<tok::piece> one;
                one.push_back(std::move(s.text));
                for (const tok::piece& w : pre_tokenizer_.apply(std::move(one))) model_.encode(w.text, ids, &cache);
            }
        }
        return add_special ? specials_.apply(std::move(ids)) : ids;
    }

    /// The text of `ids`: tokens joined by the tokenizer.json decoder.
    /// `skip_special` drops special added tokens. Unknown ids are an error.
    [[nodiscard]] std::string decode(std::span<const std::int32_t> ids, bool skip_special = false) const {
        std::vector<std::string> tokens;
        tokens.reserve(ids.size());
        for (const std::int32_t id : ids) {
            if (const tok::added_token* a = added_.find(id)) {
                if (!(skip_special && a->special)) tokens.push_back(a->content);
                continue;
            }
            const std::string* s = model_.token_of(id);
            if (!s) fail("tokenizer decode: id ", id, " is not in the vocabulary of ", name_);
            tokens.push_back(*s);
        }
        return decoder_.decode(std::move(tokens));
    }

    /// The id of a token (added tokens first, then the model vocabulary).
    [[nodiscard]] std::optional<std::int32_t> token_to_id(std::string_view token) const {
        if (const tok::added_token* a = added_.find(token)) return a->id;
        return model_.id_of(token);
    }

    /// The token of an id, or nullptr.
    [[nodiscard]] const std::string* id_to_token(std::int32_t id) const {
        if (const tok::added_token* a = added_.find(id)) return &a->content;
        return model_.token_of(id);
    }

    /// One past the largest id of the model or the added tokens.
    [[nodiscard]] std::int32_t vocab_size() const noexcept {
        std::int32_t n = model_.id_end();
        for (const auto& a : added_.tokens()) n = std::max(n, a.id + 1);
        return n;
    }

    /// The ids add_special puts before and after the text.
    [[nodiscard]] const tok::post_processor& specials() const noexcept { return specials_; }

    /// The added tokens.
    [[nodiscard]] const tok::added_vocabulary& added_tokens() const noexcept { return added_; }

    /// The tokenizer.json file name errors refer to.
    [[nodiscard]] const std::string& name() const noexcept { return name_; }

private:
    tokenizer() = default;

    void load(const nlohmann::json& root, const tok::json_place& p) {
        name_ = p.file;
        tok::require_object(root, p);
        tok::require_known_keys(root,
                                {"version", "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer",
                                 "post_processor", "decoder", "model"},
                                p);
        // Both change what encode returns; tcq encodes whole texts unpadded.
        for (const char* k : {"truncation", "padding"})
            if (const auto* v = tok::optional_member(root, k)) tok::unsupported_value(p.at(k), v->dump());
        const auto get = [&](const char* k) -> const nlohmann::json& {
            static const nlohmann::json null;
            const auto it = root.find(k);
            return it == root.end() ? null : *it;
        };
        model_ = tok::bpe_model::from_json(tok::member(root, "model", p), p.at("model"));
        normalizer_ = tok::normalizer::from_json(get("normalizer"), p.at("normalizer"));
        pre_tokenizer_ = tok::pre_tokenizer::from_json(get("pre_tokenizer"), p.at("pre_tokenizer"));
        added_ = tok::added_vocabulary::from_json(get("added_tokens"), p.at("added_tokens"), normalizer_);
        specials_ = tok::post_processor::from_json(get("post_processor"), p.at("post_processor"));
        decoder_ = tok::decoder::from_json(get("decoder"), p.at("decoder"));
    }

    // The id of a bos_token / eos_token entry: a string or {"content": …}.
    std::int32_t special_id(const nlohmann::json& v, const tok::json_place& p) const {
        const nlohmann::json* c = &v;
        tok::json_place q = p;
        if (v.is_object()) {
            c = &tok::member(v, "content", p);
            q = p.at("content");
        }
        const std::string& s = tok::as_string(*c, q);
        const auto id = token_to_id(s);
        if (!id) tok::bad_field(q, "'" + s + "' is not a token of " + name_);
        return *id;
    }

    void load_config(const nlohmann::json& cfg, const tok::json_place& p) {
        tok::require_object(cfg, p);
        split_special_ = tok::bool_or(cfg, "split_special_tokens", false, p);
        // transformers rewrites the pre-tokenizer for this; tcq does not.
        if (tok::bool_or(cfg, "add_prefix_space", false, p)) tok::unsupported_value(p.at("add_prefix_space"), "true");
        const auto* bos = tok::optional_member(cfg, "add_bos_token");
        const auto* eos = tok::optional_member(cfg, "add_eos_token");
        if (!bos && !eos) return;
        std::vector<std::int32_t> before, after;
        if (bos && tok::as_bool(*bos, p.at("add_bos_token")))
            before.push_back(special_id(tok::member(cfg, "bos_token", p), p.at("bos_token")));
        if (eos && tok::as_bool(*eos, p.at("add_eos_token")))
            after.push_back(special_id(tok::member(cfg, "eos_token", p), p.at("eos_token")));
        specials_ = tok::post_processor(std::move(before), std::move(after));
    }

    std::string name_;
    tok::bpe_model model_;
    tok::normalizer normalizer_;
    tok::pre_tokenizer pre_tokenizer_;
    tok::added_vocabulary added_;
    tok::post_processor specials_;
    tok::decoder decoder_;
    bool split_special_ = false;
};

}  // namespace tcq
