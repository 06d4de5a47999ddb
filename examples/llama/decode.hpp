#pragma once
/// @file decode.hpp
/// @brief KV-cached incremental decoding and greedy generation.

#include <span>
#include <vector>

#include "forward.hpp"

namespace llama {

/// Incremental decoder over one sequence: keeps every layer's rotated keys and
/// values, so each new token costs one row through the model.
class decoder {
public:
    /// A cache for up to `capacity` positions (0: the model's max_length).
    explicit decoder(const model& m, index_t capacity = 0) : m_(m) {
        const config& c = m.cfg();
        cap_ = capacity > 0 ? capacity : max_length(m);
        tcq::require(cap_ <= max_length(m), "decoder: capacity ", cap_, " exceeds the model's longest sequence ",
                     max_length(m));
        k_.assign(static_cast<std::size_t>(c.n_layers), RowMatrixXf(cap_, c.kv_dim()));
        v_ = k_;
    }

    /// Appends `tokens` (prefill when several) and returns the logits after
    /// the last one. Throws if the cache would overflow or a token is outside the vocabulary.
    std::span<const float> extend(std::span<const std::int32_t> tokens) {
        const config& c = m_.cfg();
        const index_t M = static_cast<index_t>(tokens.size()), p0 = pos_;
        tcq::require(M >= 1, "decoder: no tokens to append");
        tcq::require(p0 + M <= cap_, "decoder: ", p0 + M, " positions exceed the capacity ", cap_);
        check_tokens(m_, tcq::make_view(tokens.data(), 1, M), 1, "decoder");
        ops::ensure(x_, M, c.dim);
        detail::embed_rows(m_, tokens, x_);
        auto& a = acts_;
        for (index_t l = 0; l < c.n_layers; ++l) {
            const auto& w = m_.layers[static_cast<std::size_t>(l)];
            auto& K = k_[static_cast<std::size_t>(l)];
            auto& V = v_[static_cast<std::size_t>(l)];
            detail::attn_norm(m_, w, x_, a);
            detail::qkv(m_, w, a, M, p0, K.middleRows(p0, M), V.middleRows(p0, M));
            ops::ensure(a.att, M, c.q_dim());
            ops::attention(c, a.q, K.topRows(p0 + M), V.topRows(p0 + M), p0, a.att, nullptr, a.scratch);
            detail::finish_block(m_, w, x_, a, false, std::nullopt);
        }
        pos_ += M;
        detail::run_head(m_, x_.bottomRows(1), head_);
        return {head_.logits.data(), static_cast<std::size_t>(c.vocab_size)};
    }

    /// Appends one token.
    std::span<const float> step(std::int32_t token) { return extend({&token, 1}); }
    /// Tokens in the cache.
    [[nodiscard]] index_t position() const noexcept { return pos_; }
    /// Positions the cache holds.
    [[nodiscard]] index_t capacity() const noexcept { return cap_; }
    /// Empties the cache (keeps the memory).
    void reset() noexcept { pos_ = 0; }

private:
    const model& m_;
    index_t cap_ = 0, pos_ = 0;
    std::vector<RowMatrixXf> k_, v_;  // per layer: capacity × kv_dim
    RowMatrixXf x_;
    block_acts acts_;
    detail::head_acts head_;
};

/// Index of the largest logit (the lowest index among equal maxima).
[[nodiscard]] inline std::int32_t argmax(std::span<const float> logits) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < logits.size(); ++i)
        if (logits[i] > logits[best]) best = i;
    return static_cast<std::int32_t>(best);
}

/// Greedy continuation of `prompt` (resets `dec`): up to `max_new` argmax
/// tokens, stopping after a token with `stop(token)` true (included) or when
/// the cache is full.
template <class Stop>
[[nodiscard]] std::vector<std::int32_t> greedy(decoder& dec, std::span<const std::int32_t> prompt, index_t max_new,
                                               Stop&& stop) {
    dec.reset();
    std::vector<std::int32_t> out;
    if (max_new <= 0) return out;
    auto logits = dec.extend(prompt);
    for (;;) {
        const std::int32_t t = argmax(logits);
        out.push_back(t);
        if (stop(t) || static_cast<index_t>(out.size()) >= max_new || dec.position() >= dec.capacity()) break;
        logits = dec.step(t);
    }
    return out;
}

}  // namespace llama
