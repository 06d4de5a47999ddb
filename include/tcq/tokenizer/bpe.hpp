#pragma once
/// @file bpe.hpp
/// @brief The BPE model of tokenizer.json (`"model": {"type": "BPE"}`):
/// vocabulary, ranked merges, byte fallback, unknown-token fusing.
///
/// A word is first split into characters (each a vocabulary token, else its
/// `<0xNN>` bytes with byte_fallback, else the unknown token); then the pair
/// of adjacent symbols with the lowest merge rank, leftmost first, is merged
/// until no adjacent pair has a merge. A min-heap of candidate pairs over a
/// linked list of symbols does this in O(n log n) per word.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tcq/tokenizer/json_fields.hpp"
#include "tcq/tokenizer/utf8.hpp"

namespace tcq::tok {

/// Hash for string-keyed maps looked up with string_view.
struct string_hash {
    using is_transparent = void;  ///< enables heterogeneous lookup
    /// Hash of the bytes of `s`.
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

/// Token string → id.
using token_map = std::unordered_map<std::string, std::int32_t, string_hash, std::equal_to<>>;

/// Word → its ids; one per encode call, so repeated words are merged once.
using word_cache = std::unordered_map<std::string, std::vector<std::int32_t>, string_hash, std::equal_to<>>;

/// A byte-pair-encoding model.
class bpe_model {
public:
    /// Parses the `model` object `m` found at `p`; only type "BPE" is accepted.
    static bpe_model from_json(const nlohmann::json& m, const json_place& p) {
        const std::string& type = type_of(m, p);
        if (type != "BPE") unsupported_value(p.at("type"), type);
        require_known_keys(m, {"type", "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix",
                               "fuse_unk", "byte_fallback", "ignore_merges", "vocab", "merges"},
                           p);
        bpe_model b;
        if (const auto* d = optional_member(m, "dropout")) {
            if (!d->is_number()) bad_field(p.at("dropout"), "must be a number or null");
            if (d->get<double>() != 0.0) unsupported_value(p.at("dropout"), d->dump());
        }
        if (const auto* u = optional_member(m, "unk_token")) b.unk_token_ = as_string(*u, p.at("unk_token"));
        if (const auto* s = optional_member(m, "continuing_subword_prefix"))
            b.prefix_ = as_string(*s, p.at("continuing_subword_prefix"));
        if (const auto* s = optional_member(m, "end_of_word_suffix"))
            b.suffix_ = as_string(*s, p.at("end_of_word_suffix"));
        b.fuse_unk_ = bool_or(m, "fuse_unk", false, p);
        b.byte_fallback_ = bool_or(m, "byte_fallback", false, p);
        b.ignore_merges_ = bool_or(m, "ignore_merges", false, p);
        b.read_vocab(member(m, "vocab", p), p.at("vocab"));
        b.read_merges(member(m, "merges", p), p.at("merges"));
        return b;
    }

    /// The id of token `s`, if it is in the vocabulary.
    [[nodiscard]] std::optional<std::int32_t> id_of(std::string_view s) const {
        const auto it = vocab_.find(s);
        if (it == vocab_.end()) return std::nullopt;
        return it->second;
    }

    /// The token of `id`, or nullptr if no token has that id.
    [[nodiscard]] const std::string* token_of(std::int32_t id) const {
        const auto it = tokens_.find(id);
        return it == tokens_.end() ? nullptr : &it->second;
    }

    /// One past the largest id.
    [[nodiscard]] std::int32_t id_end() const noexcept { return id_end_; }

    /// True if `<0xNN>` byte tokens stand for raw bytes.
    [[nodiscard]] bool byte_fallback() const noexcept { return byte_fallback_; }

    /// Appends the ids of `word` (non-empty, well-formed UTF-8) to `out`; `cache` may be null.
    void encode(std::string_view word, std::vector<std::int32_t>& out, word_cache* cache) const {
        if (word.empty()) return;
        if (ignore_merges_) {
            if (const auto it = vocab_.find(word); it != vocab_.end()) {
                out.push_back(it->second);
                return;
            }
        }
        if (cache) {
            if (const auto it = cache->find(word); it != cache->end()) {
                out.insert(out.end(), it->second.begin(), it->second.end());
                return;
            }
        }
        std::vector<std::int32_t> ids = merge_word(word);
        out.insert(out.end(), ids.begin(), ids.end());
        if (cache && word.size() < 256 && cache->size() < (1u << 20)) cache->emplace(std::string(word), std::move(ids));
    }

private:
    struct symbol {
        std::int32_t id;
        std::int32_t prev, next;  // -1: none
        bool alive;
    };
    struct merge {
        std::uint32_t rank;
        std::int32_t new_id;
    };
    struct candidate {
        std::uint32_t rank;
        std::int32_t pos;
        std::int32_t new_id;
        // priority_queue pops the largest: make lower rank, then lower position, larger.
        bool operator<(const candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };

    static std::uint64_t key(std::int32_t a, std::int32_t b) {
        return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
    }

    [[nodiscard]] const merge* find_merge(std::int32_t a, std::int32_t b) const {
        const auto it = merges_.find(key(a, b));
        return it == merges_.end() ? nullptr : &it->second;
    }

    [[nodiscard]] std::int32_t unk_id() const {
        const auto id = id_of(*unk_token_);
        if (!id) fail("tokenizer: model.unk_token '", *unk_token_, "' is not in model.vocab");
        return *id;
    }

    // The characters of the word as symbols, as Hugging Face's BPE::merge_word builds them.
    [[nodiscard]] std::vector<symbol> initial_symbols(std::string_view w) const {
        std::vector<symbol> syms;
        syms.reserve(w.size());
        const auto add = [&](std::int32_t id) { syms.push_back({id, -1, -1, true}); };
        std::optional<std::int32_t> unk;  // a pending unknown token (fused runs become one)
        std::string buf;
        for (std::size_t i = 0; i < w.size();) {
            const std::size_t start = i;
            (void)next_code_point(w, i);
            std::string_view s = w.substr(start, i - start);
            if ((prefix_ && start > 0 && !prefix_->empty()) || (suffix_ && i == w.size() && !suffix_->empty())) {
                buf.clear();
                if (prefix_ && start > 0) buf += *prefix_;
                buf += s;
                if (suffix_ && i == w.size()) buf += *suffix_;
                s = buf;
            }
            if (const auto it = vocab_.find(s); it != vocab_.end()) {
                if (unk) add(*unk);
                unk.reset();
                add(it->second);
                continue;
            }
            if (byte_fallback_) {
                bool all = true;
                for (char c : s) all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
                if (all) {
                    for (char c : s) add(byte_ids_[static_cast<unsigned char>(c)]);
                    continue;
                }
            }
            if (unk_token_) {
                if (unk && !fuse_unk_) add(*unk);
                if (!unk || !fuse_unk_) unk = unk_id();
            }
            // No unk_token: the character is dropped, as Hugging Face does.
        }
        if (unk) add(*unk);
        for (std::size_t k = 0; k < syms.size(); ++k) {
            syms[k].prev = static_cast<std::int32_t>(k) - 1;
            syms[k].next = k + 1 < syms.size() ? static_cast<std::int32_t>(k + 1) : -1;
        }
        return syms;
    }

    [[nodiscard]] std::vector<std::int32_t> merge_word(std::string_view w) const {
        std::vector<symbol> syms = initial_symbols(w);
        std::priority_queue<candidate> queue;
        for (std::size_t k = 0; k + 1 < syms.size(); ++k)
            if (const merge* m = find_merge(syms[k].id, syms[k + 1].id))
                queue.push({m->rank, static_cast<std::int32_t>(k), m->new_id});
        while (!queue.empty()) {
            const candidate top = queue.top();
            queue.pop();
            symbol& left = syms[static_cast<std::size_t>(top.pos)];
            if (!left.alive || left.next < 0) continue;
            symbol& right = syms[static_cast<std::size_t>(left.next)];
            // Stale entry: the pair at this position changed since it was queued.
            const merge* now = find_merge(left.id, right.id);
            if (!now || now->new_id != top.new_id) continue;
            left.id = top.new_id;
            right.alive = false;
            left.next = right.next;
            if (right.next >= 0) syms[static_cast<std::size_t>(right.next)].prev = top.pos;
            if (left.prev >= 0)
                if (const merge* m = find_merge(syms[static_cast<std::size_t>(left.prev)].id, left.id))
                    queue.push({m->rank, left.prev, m->new_id});
            if (left.next >= 0)
                if (const merge* m = find_merge(left.id, syms[static_cast<std::size_t>(left.next)].id))
                    queue.push({m->rank, top.pos, m->new_id});
        }
        std::vector<std::int32_t> ids;
        for (const symbol& s : syms)
            if (s.alive) ids.push_back(s.id);
        return ids;
    }

    void read_vocab(const nlohmann::json& v, const json_place& p) {
        require_object(v, p);
        for (auto it = v.begin(); it != v.end(); ++it) {
            const std::int32_t id = as_id(it.value(), p.at(it.key()));
            vocab_.emplace(it.key(), id);
            const auto [at, fresh] = tokens_.emplace(id, it.key());
            if (!fresh) fail(p.where(), ": id ", id, " is given to both '", at->second, "' and '", it.key(), "'");
            id_end_ = std::max(id_end_, id + 1);
        }
        byte_ids_.fill(-1);
        for (int b = 0; b < 256; ++b) {
            char name[8];
            std::snprintf(name, sizeof name, "<0x%02X>", b);
            if (const auto id = id_of(name)) byte_ids_[static_cast<std::size_t>(b)] = *id;
        }
    }

    void read_merges(const nlohmann::json& v, const json_place& p) {
        if (!v.is_array()) bad_field(p, "must be an array");
        merges_.reserve(v.size());
        const std::size_t plen = prefix_ ? prefix_->size() : 0;
        for (std::size_t r = 0; r < v.size(); ++r) {
            const json_place q = p.at(r);
            std::string a, b;
            if (v[r].is_string()) {
                const std::string& s = v[r].get_ref<const std::string&>();
                const auto sp = s.find(' ');
                if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
                    bad_field(q, "must be two tokens separated by one space");
                a = s.substr(0, sp);
                b = s.substr(sp + 1);
            } else if (v[r].is_array() && v[r].size() == 2 && v[r][0].is_string() && v[r][1].is_string()) {
                a = v[r][0].get<std::string>();
                b = v[r][1].get<std::string>();
            } else {
                bad_field(q, "must be a string \"a b\" or a pair [\"a\", \"b\"]");
            }
            const auto ia = id_of(a), ib = id_of(b);
            if (!ia) bad_field(q, "names '" + a + "', which is not in model.vocab");
            if (!ib) bad_field(q, "names '" + b + "', which is not in model.vocab");
            if (plen > 0 && (b.size() < plen || b.compare(0, plen, *prefix_) != 0))
                bad_field(q, "second token '" + b + "' lacks model.continuing_subword_prefix");
            const std::string joined = a + b.substr(plen);
            const auto in = id_of(joined);
            if (!in) bad_field(q, "merged token '" + joined + "' is not in model.vocab");
            // A repeated pair takes the later rank, as a Hugging Face HashMap collect does.
            merges_[key(*ia, *ib)] = merge{static_cast<std::uint32_t>(r), *in};
        }
    }

    token_map vocab_;
    std::unordered_map<std::int32_t, std::string> tokens_;  // id → token
    std::int32_t id_end_ = 0;
    std::unordered_map<std::uint64_t, merge> merges_;
    std::array<std::int32_t, 256> byte_ids_{};
    std::optional<std::string> unk_token_, prefix_, suffix_;
    bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
};

}  // namespace tcq::tok
