#pragma once
/// @file forward.hpp
/// @brief Batched forward passes: whole-model losses, block-by-block advance
/// with input capture (for GPTQ), logits. Sequences are stacked in chunks of
/// `seqs_per_chunk` into one GEMM operand; chunks run in parallel, results
/// never depend on the thread count.

#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "ops.hpp"
#include "ordered.hpp"
#include "tcq/core/parallel.hpp"

namespace llama {

/// Sequences stacked into one GEMM operand. Fixed for determinism.
inline constexpr index_t seqs_per_chunk = 2;

/// Longest sequence the model runs: the RoPE tables, and an active sliding
/// window (not implemented, so longer sequences are refused).
[[nodiscard]] inline index_t max_length(const model& m) {
    const index_t w = m.cfg().sliding_window;
    return w > 0 ? std::min(w, m.rope_positions()) : m.rope_positions();
}

/// Throws unless the length is in [min_len, max_length] and every token is in the vocabulary.
inline void check_tokens(const model& m, tcq::matrix_view<const std::int32_t> t, index_t min_len,
                         std::string_view what) {
    const config& c = m.cfg();
    if (c.sliding_window > 0)
        tcq::require(t.cols() <= c.sliding_window, what, ": sequence length ", t.cols(),
                     " exceeds the config's sliding_window = ", c.sliding_window,
                     " (windowed attention is not implemented)");
    tcq::require(t.cols() >= min_len && t.cols() <= max_length(m), what, ": sequence length ", t.cols(), " outside [",
                 min_len, ", ", max_length(m), "]");
    for (index_t s = 0; s < t.rows(); ++s)
        for (index_t i = 0; i < t.cols(); ++i)
            tcq::require(t(s, i) >= 0 && t(s, i) < c.vocab_size, what, ": token ", t(s, i), " at (", s, ", ", i,
                         ") outside the vocabulary [0, ", c.vocab_size, ")");
}

/// Activations of one block over R = n·T stacked rows. Tape fields (x_in,
/// x_mid, q_raw, k_raw, probs) are filled only when the backward needs them.
struct block_acts {
    RowMatrixXf x_in, x_mid;           ///< block input; input of the FFN residual
    RowMatrixXf xn, q_raw, k_raw;      ///< normed x; q/k before the qk-norm
    RowMatrixXf q, k, v, att;          ///< rotated q/k, v, attention output
    RowMatrixXf xn2, a, b, h;          ///< FFN: normed x, gate, up, silu(gate) ⊙ up
    std::vector<float> inv1, inv2, qinv, kinv;  ///< RMSNorm 1/rms per row (qinv/kinv per row and head)
    Eigen::VectorXf probs;             ///< per sequence heads × T × T (Eigen-aligned: sums stay bit-identical)
    RowMatrixXf scratch;
};

namespace detail {

/// q, k, v of normed rows `xn` (rows at positions p0.., one sequence or a
/// stack of sequences of length T when p0 = 0): linear, qk-norm, RoPE.
inline void qkv(const model& m, const block_weights& w, block_acts& a, index_t T, index_t p0, ops::mref K,
                ops::mref V) {
    const config& c = m.cfg();
    const index_t R = a.xn.rows();
    ops::ensure(a.q, R, c.q_dim());
    ops::linear(a.xn, w[linear_kind::q], w.bias(linear_kind::q), a.q);
    ops::linear(a.xn, w[linear_kind::k], w.bias(linear_kind::k), K);
    ops::linear(a.xn, w[linear_kind::v], w.bias(linear_kind::v), V);
    if (c.qk_norm) {
        const index_t hd = c.head_dim;
        a.q_raw = a.q;
        a.k_raw = K;
        a.qinv.resize(static_cast<std::size_t>(R * c.n_heads));
        a.kinv.resize(static_cast<std::size_t>(R * c.n_kv_heads));
        ops::rmsnorm(ops::per_head(a.q_raw, hd), w.q_norm, c.norm_eps, ops::per_head(a.q, hd), a.qinv.data());
        Eigen::Map<RowMatrixXf> Kh(K.data(), K.rows() * c.n_kv_heads, hd);
        ops::rmsnorm(ops::per_head(a.k_raw, hd), w.k_norm, c.norm_eps, Kh, a.kinv.data());
    }
    for (index_t s = 0; s < R / T; ++s) {
        ops::rope(m, a.q.middleRows(s * T, T), p0);
        ops::rope(m, K.middleRows(s * T, T), p0);
    }
}

/// xn = the attention RMSNorm of x (1/rms in inv1).
inline void attn_norm(const model& m, const block_weights& w, ops::cref x, block_acts& a) {
    ops::ensure(a.xn, x.rows(), m.cfg().dim);
    a.inv1.resize(static_cast<std::size_t>(x.rows()));
    ops::rmsnorm(x, w.attn_norm, m.cfg().norm_eps, a.xn, a.inv1.data());
}

/// x += in Wᵀ (+ bias): a residual linear layer.
inline void add_linear(ops::mref x, ops::cref in, const block_weights& w, linear_kind k) {
    x.noalias() += in * w[k].transpose();
    if (w.bias(k).size()) x.rowwise() += w.bias(k);
}

/// The steps of a block, each once: run_block chains them, block_stager
/// runs them one input group at a time.

/// att = attention(qkv(xn)) over the n = rows/T sequences.
inline void attention_step(const model& m, const block_weights& w, block_acts& a, index_t T, bool tape) {
    const config& c = m.cfg();
    const index_t R = a.xn.rows(), nseq = R / T;
    ops::ensure(a.k, R, c.kv_dim());
    ops::ensure(a.v, R, c.kv_dim());
    qkv(m, w, a, T, 0, a.k, a.v);
    ops::ensure(a.att, R, c.q_dim());
    const index_t per_seq = c.n_heads * T * T;
    if (tape && a.probs.size() != nseq * per_seq) a.probs.resize(nseq * per_seq);
    for (index_t s = 0; s < nseq; ++s)
        ops::attention(c, a.q.middleRows(s * T, T), a.k.middleRows(s * T, T), a.v.middleRows(s * T, T), 0,
                       a.att.middleRows(s * T, T), tape ? a.probs.data() + s * per_seq : nullptr, a.scratch);
}

/// x += o(att); xn2 = the FFN RMSNorm of x.
inline void ffn_norm_step(const model& m, const block_weights& w, ops::mref x, block_acts& a, bool tape) {
    add_linear(x, a.att, w, linear_kind::o);
    if (tape) a.x_mid = x;
    ops::ensure(a.xn2, x.rows(), m.cfg().dim);
    a.inv2.resize(static_cast<std::size_t>(x.rows()));
    ops::rmsnorm(x, w.ffn_norm, m.cfg().norm_eps, a.xn2, a.inv2.data());
}

/// h = silu(gate(xn2)) ⊙ up(xn2).
inline void ffn_act_step(const model& m, const block_weights& w, block_acts& a) {
    const index_t R = a.xn2.rows(), F = m.cfg().hidden_dim;
    ops::ensure(a.a, R, F);
    ops::ensure(a.b, R, F);
    ops::ensure(a.h, R, F);
    ops::linear(a.xn2, w[linear_kind::gate], w.bias(linear_kind::gate), a.a);
    ops::linear(a.xn2, w[linear_kind::up], w.bias(linear_kind::up), a.b);
    ops::swiglu(a.a, a.b, a.h);
}

/// The block after attention: x += o(att), then the FFN residual. With
/// `stop` (ffn_in or ffn_out), returns once that group's input is in `a`.
inline void finish_block(const model& m, const block_weights& w, ops::mref x, block_acts& a, bool tape,
                         std::optional<linear_group> stop) {
    ffn_norm_step(m, w, x, a, tape);
    if (stop == linear_group::ffn_in) return;
    ffn_act_step(m, w, a);
    if (stop == linear_group::ffn_out) return;
    add_linear(x, a.h, w, linear_kind::down);
}

/// Advances x (n·T rows, in place) through block `layer`. With `stop`, returns
/// once the input of that group is in `a` (x may already be modified then).
inline void run_block(const model& m, index_t layer, ops::mref x, index_t T, block_acts& a, bool tape,
                      std::optional<linear_group> stop = std::nullopt) {
    const auto& w = m.layers[static_cast<std::size_t>(layer)];
    if (tape) a.x_in = x;
    attn_norm(m, w, x, a);
    if (stop == linear_group::attn_in) return;
    attention_step(m, w, a, T, tape);
    if (stop == linear_group::attn_out) return;
    finish_block(m, w, x, a, tape, stop);
}

/// The final RMSNorm and classifier.
struct head_acts {
    RowMatrixXf xf, logits;
    std::vector<float> inv;
};

inline void run_head(const model& m, ops::cref x, head_acts& a) {
    ops::ensure(a.xf, x.rows(), x.cols());
    a.inv.resize(static_cast<std::size_t>(x.rows()));
    ops::rmsnorm(x, m.final_norm, m.cfg().norm_eps, a.xf, a.inv.data());
    ops::ensure(a.logits, x.rows(), m.cfg().vocab_size);
    a.logits.noalias() = a.xf * m.classifier().transpose();
}

inline void embed_rows(const model& m, std::span<const std::int32_t> tokens, ops::mref x) {
    for (std::size_t i = 0; i < tokens.size(); ++i) x.row(static_cast<index_t>(i)) = m.embedding.row(tokens[i]);
}

[[nodiscard]] inline tcq::matrix_view<const float> rows_view(const RowMatrixXf& m, index_t r0, index_t n) {
    return tcq::make_view(m.data() + r0 * m.cols(), n, m.cols());
}

}  // namespace detail

/// Residual-stream states of `count` sequences of `length` tokens between blocks.
struct hidden_states {
    index_t count = 0;
    index_t length = 0;
    RowMatrixXf x;  ///< (count·length) × dim
};

/// Token embeddings of a batch: the input of block 0.
[[nodiscard]] inline hidden_states embed(const model& m, tcq::matrix_view<const std::int32_t> tokens) {
    check_tokens(m, tokens, 1, "embed");
    hidden_states h;
    h.count = tokens.rows();
    h.length = tokens.cols();
    h.x.resize(h.count * h.length, m.cfg().dim);
    for (index_t s = 0; s < h.count; ++s)
        detail::embed_rows(m, tokens.row_span(s), h.x.middleRows(s * h.length, h.length));
    return h;
}

/// Receives the input X (T × in_features) of a linear layer for one sequence,
/// on the calling thread, sequences in increasing order; per sequence in
/// forward order q, k, v, o, gate, up, down. X is valid during the call only.
using capture_hook = std::function<void(linear_kind, index_t seq, tcq::matrix_view<const float> X)>;

namespace detail {
inline void check_hidden(const model& m, index_t layer, const hidden_states& h, std::string_view what) {
    tcq::require(layer >= 0 && layer < m.cfg().n_layers, what, ": layer ", layer, " outside [0, ", m.cfg().n_layers,
                 ")");
    tcq::require(h.x.cols() == m.cfg().dim && h.x.rows() == h.count * h.length && h.length >= 1 &&
                     h.length <= max_length(m),
                 what, ": hidden states of shape ", h.x.rows(), "x", h.x.cols(), " do not hold ", h.count,
                 " sequences of ", h.length, " tokens of width ", m.cfg().dim);
}

inline void deliver_captures(const block_acts& a, index_t seq0, index_t nseq, index_t T,
                             std::optional<linear_group> only, const capture_hook& hook) {
    for (index_t j = 0; j < nseq; ++j) {
        const index_t s = seq0 + j;
        auto want = [&](linear_group g) { return !only || *only == g; };
        if (want(linear_group::attn_in)) {
            const auto X = rows_view(a.xn, j * T, T);
            for (auto k : {linear_kind::q, linear_kind::k, linear_kind::v}) hook(k, s, X);
        }
        if (want(linear_group::attn_out)) hook(linear_kind::o, s, rows_view(a.att, j * T, T));
        if (want(linear_group::ffn_in)) {
            const auto X = rows_view(a.xn2, j * T, T);
            hook(linear_kind::gate, s, X);
            hook(linear_kind::up, s, X);
        }
        if (want(linear_group::ffn_out)) hook(linear_kind::down, s, rows_view(a.h, j * T, T));
    }
}

/// Runs block `layer` over chunks of h; with `advance` x moves in place,
/// else each chunk runs on a copy (capture only, stopping at `group`).
inline void run_chunks(const model& m, index_t layer, hidden_states& h, bool advance,
                       std::optional<linear_group> group, const tcq::exec_policy& pol, const capture_hook& hook) {
    const index_t T = h.length, chunks = (h.count + seqs_per_chunk - 1) / seqs_per_chunk;
    struct slot_t {
        RowMatrixXf x;
        block_acts a;
    };
    std::vector<slot_t> slots(static_cast<std::size_t>(ordered_slots(pol, chunks)));
    auto range = [&](index_t i) {
        return std::pair{i * seqs_per_chunk, std::min(seqs_per_chunk, h.count - i * seqs_per_chunk)};
    };
    ordered_for(
        pol, chunks,
        [&](index_t i, index_t slot) {
            const auto [s0, n] = range(i);
            auto& st = slots[static_cast<std::size_t>(slot)];
            if (advance) {
                run_block(m, layer, h.x.middleRows(s0 * T, n * T), T, st.a, false);
            } else {
                st.x = h.x.middleRows(s0 * T, n * T);
                run_block(m, layer, st.x, T, st.a, false, group);
            }
        },
        [&](index_t i, index_t slot) {
            if (!hook) return;
            const auto [s0, n] = range(i);
            deliver_captures(slots[static_cast<std::size_t>(slot)].a, s0, n, T, group, hook);
        });
}
}  // namespace detail

/// Advances every sequence through block `layer`; `hook` (optional) sees the
/// input of every linear layer of the block (order: capture_hook).
inline void block_forward(const model& m, index_t layer, hidden_states& h, const tcq::exec_policy& pol,
                          const capture_hook& hook = {}) {
    detail::check_hidden(m, layer, h, "block_forward");
    detail::run_chunks(m, layer, h, true, std::nullopt, pol, hook);
}

/// Calls `hook` with the inputs of the linear layers of block `layer` (all
/// groups, or only `group`) without advancing the states.
inline void capture_block(const model& m, index_t layer, hidden_states& h, std::optional<linear_group> group,
                          const tcq::exec_policy& pol, const capture_hook& hook) {
    detail::check_hidden(m, layer, h, "capture_block");
    tcq::require(static_cast<bool>(hook), "capture_block: empty hook");
    detail::run_chunks(m, layer, h, false, group, pol, hook);
}

/// True-sequential capture of block `layer` without recomputation. Groups
/// are captured in order (attn_in, attn_out, ffn_in, ffn_out), each
/// continuing from the activations the previous one left: the input of a
/// group depends only on the groups before it, which the caller has
/// quantized by then. advance() then finishes the block in h. Between the
/// calls it holds one group's activations for every sequence
/// (docs/models.md, "Memory"); capture_block would recompute the block's
/// start for every group instead (about 2× the block's FLOPs).
class block_stager {
public:
    block_stager(const model& m, index_t layer, hidden_states& h) : m_(m), layer_(layer), h_(h) {
        detail::check_hidden(m, layer, h, "block_stager");
        acts_.resize(static_cast<std::size_t>((h.count + seqs_per_chunk - 1) / seqs_per_chunk));
    }

    /// Computes group `g`'s input from the previous group's state and hands it to `hook`.
    void capture(linear_group g, const tcq::exec_policy& pol, const capture_hook& hook) {
        tcq::require(static_cast<int>(g) == next_, "block_stager: layer ", layer_, ": group ", static_cast<int>(g),
                     " captured out of order (expected ", next_, ")");
        run(pol, [&](block_acts& a, ops::mref x) { step(g, a, x); },
            [&](index_t s0, index_t n, const block_acts& a) {
                if (hook) detail::deliver_captures(a, s0, n, h_.length, g, hook);
            });
        ++next_;
    }

    /// x += down(h): the block's output, in h; frees the activations.
    void advance(const tcq::exec_policy& pol) {
        tcq::require(next_ == 4, "block_stager: layer ", layer_, ": advance before all four groups were captured");
        run(pol,
            [&](block_acts& a, ops::mref x) {
                detail::add_linear(x, a.h, weights(), linear_kind::down);
                a = block_acts{};
            },
            [](index_t, index_t, const block_acts&) {});
        next_ = 5;
    }

private:
    [[nodiscard]] const block_weights& weights() const { return m_.layers[static_cast<std::size_t>(layer_)]; }

    void step(linear_group g, block_acts& a, ops::mref x) const {
        const auto& w = weights();
        switch (g) {
            case linear_group::attn_in: detail::attn_norm(m_, w, x, a); break;
            case linear_group::attn_out:
                detail::attention_step(m_, w, a, h_.length, false);
                a.xn = a.q = a.k = a.v = a.q_raw = a.k_raw = RowMatrixXf();  // only att is needed from here
                break;
            case linear_group::ffn_in:
                detail::ffn_norm_step(m_, w, x, a, false);
                a.att = RowMatrixXf();
                break;
            case linear_group::ffn_out:
                detail::ffn_act_step(m_, w, a);
                a.xn2 = a.a = a.b = RowMatrixXf();
                break;
        }
    }

    /// compute(acts, rows of h) per chunk in parallel; deliver(seq0, n, acts) in order.
    template <class Compute, class Deliver>
    void run(const tcq::exec_policy& pol, Compute&& compute, Deliver&& deliver) {
        const index_t T = h_.length;
        auto range = [&](index_t i) {
            return std::pair{i * seqs_per_chunk, std::min(seqs_per_chunk, h_.count - i * seqs_per_chunk)};
        };
        ordered_for(
            pol, static_cast<index_t>(acts_.size()),
            [&](index_t i, index_t) {
                const auto [s0, n] = range(i);
                compute(acts_[static_cast<std::size_t>(i)], h_.x.middleRows(s0 * T, n * T));
            },
            [&](index_t i, index_t) {
                const auto [s0, n] = range(i);
                deliver(s0, n, acts_[static_cast<std::size_t>(i)]);
            });
    }

    const model& m_;
    index_t layer_;
    hidden_states& h_;
    std::vector<block_acts> acts_;  ///< per chunk of seqs_per_chunk sequences
    int next_ = 0;                  ///< next group to capture; 4: advance; 5: done
};

/// Full forward pass: mean next-token cross-entropy of every sequence.
[[nodiscard]] inline std::vector<double> sequence_losses(const model& m, tcq::matrix_view<const std::int32_t> tokens,
                                                         const tcq::exec_policy& pol) {
    check_tokens(m, tokens, 2, "sequence_losses");
    const index_t N = tokens.rows(), T = tokens.cols(), chunks = (N + seqs_per_chunk - 1) / seqs_per_chunk;
    struct slot_t {
        RowMatrixXf x;
        block_acts a;
        detail::head_acts head;
    };
    std::vector<slot_t> slots(static_cast<std::size_t>(ordered_slots(pol, chunks)));
    std::vector<double> loss(static_cast<std::size_t>(N));
    ordered_for(
        pol, chunks,
        [&](index_t i, index_t slot) {
            auto& st = slots[static_cast<std::size_t>(slot)];
            const index_t s0 = i * seqs_per_chunk, n = std::min(seqs_per_chunk, N - s0);
            ops::ensure(st.x, n * T, m.cfg().dim);
            for (index_t j = 0; j < n; ++j) detail::embed_rows(m, tokens.row_span(s0 + j), st.x.middleRows(j * T, T));
            for (index_t l = 0; l < m.cfg().n_layers; ++l) detail::run_block(m, l, st.x, T, st.a, false);
            detail::run_head(m, st.x, st.head);
            for (index_t j = 0; j < n; ++j)
                loss[static_cast<std::size_t>(s0 + j)] =
                    ops::next_token_loss(st.head.logits.middleRows(j * T, T), tokens.row_span(s0 + j), nullptr);
        },
        [](index_t, index_t) {});
    return loss;
}

/// Logits (T × vocab) of every position of one sequence.
[[nodiscard]] inline RowMatrixXf forward_logits(const model& m, std::span<const std::int32_t> tokens) {
    const auto tv = tcq::make_view(tokens.data(), 1, static_cast<index_t>(tokens.size()));
    check_tokens(m, tv, 1, "forward_logits");
    const index_t T = tv.cols();
    RowMatrixXf x(T, m.cfg().dim);
    detail::embed_rows(m, tokens, x);
    block_acts a;
    for (index_t l = 0; l < m.cfg().n_layers; ++l) detail::run_block(m, l, x, T, a, false);
    detail::head_acts head;
    detail::run_head(m, x, head);
    return head.logits;
}

}  // namespace llama
