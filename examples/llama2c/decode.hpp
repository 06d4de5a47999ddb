#pragma once
/// @file decode.hpp
/// @brief KV-cached incremental decoding and greedy generation.

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "data.hpp"
#include "forward.hpp"

namespace l2c {

/// Incremental decoder over one sequence: keeps every layer's rotated keys and
/// values, so each new token costs one row through the model.
class decoder {
public:
    /// A cache for up to `capacity` positions (0 = the model's seq_len).
    explicit decoder(const model& m, index_t capacity = 0) : m_(m) {
        const config& c = m.cfg();
        cap_ = capacity > 0 ? capacity : c.seq_len;
        tcq::require(cap_ <= c.seq_len, "decoder: capacity ", cap_, " exceeds the model's context ", c.seq_len);
        k_.assign(static_cast<std::size_t>(c.n_layers), RowMatrixXf(cap_, c.kv_dim()));
        v_ = k_;
    }

    /// Appends `tokens` (prefill when several) and returns the logits after
    /// the last one. Throws tcq::error if the cache would overflow or a token
    /// is outside the vocabulary.
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
            ops::ensure(a.xn, M, c.dim);
            a.inv1.resize(static_cast<std::size_t>(M));
            ops::rmsnorm(x_, w.rms_att, a.xn, a.inv1.data());
            ops::ensure(a.q, M, c.dim);
            a.q.noalias() = a.xn * w.wq.transpose();
            K.middleRows(p0, M).noalias() = a.xn * w.wk.transpose();
            V.middleRows(p0, M).noalias() = a.xn * w.wv.transpose();
            ops::rope(m_, a.q, p0);
            ops::rope(m_, K.middleRows(p0, M), p0);
            ops::ensure(a.att, M, c.dim);
            ops::attention(m_, a.q, K.topRows(p0 + M), V.topRows(p0 + M), p0, a.att, nullptr, a.scratch);
            x_.noalias() += a.att * w.wo.transpose();
            ops::ensure(a.xn2, M, c.dim);
            a.inv2.resize(static_cast<std::size_t>(M));
            ops::rmsnorm(x_, w.rms_ffn, a.xn2, a.inv2.data());
            ops::ensure(a.a, M, c.hidden_dim);
            ops::ensure(a.b, M, c.hidden_dim);
            ops::ensure(a.h, M, c.hidden_dim);
            a.a.noalias() = a.xn2 * w.w1.transpose();
            a.b.noalias() = a.xn2 * w.w3.transpose();
            ops::swiglu(a.a, a.b, a.h);
            x_.noalias() += a.h * w.w2.transpose();
        }
        pos_ += M;
        detail::run_head(m_, x_.bottomRows(1), head_);
        return {head_.logits.data(), static_cast<std::size_t>(c.vocab_size)};
    }

    /// Appends one token.
    std::span<const float> step(std::int32_t token) { return extend({&token, 1}); }

    /// Tokens in the cache.
    [[nodiscard]] index_t position() const noexcept { return pos_; }
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

/// Greedy continuation of `prompt` (resets `dec` first): appends up to
/// `max_new` argmax tokens, stopping early after a token for which
/// `stop(token)` is true (that token is included) or when the decoder is
/// full. Returns the new tokens.
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

/// Greedy text generation after BOS + `prompt` bytes: at most `steps` tokens,
/// stopping at BOS/EOS or the end of the context. Returns the generated bytes.
[[nodiscard]] inline std::string generate(const model& m, std::string_view prompt, index_t steps) {
    const auto tokens = encode(prompt);
    tcq::require(static_cast<index_t>(tokens.size()) <= m.cfg().seq_len, "generate: prompt of ", tokens.size(),
                 " tokens exceeds the context ", m.cfg().seq_len);
    decoder dec(m);
    auto out = greedy(dec, tokens, steps, [](std::int32_t t) { return t == tok_bos || t == tok_eos; });
    return decode_bytes(out);
}

}  // namespace l2c
