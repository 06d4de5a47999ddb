#pragma once
/// @file forward.hpp
/// @brief Batched forward pass: full (losses, logits) and block-wise staged
/// (embed → block_forward per block → output_losses) with capture of every
/// linear layer's input (block_forward's hook, capture_block, capture_group),
/// for sequential GPTQ.
///
/// Sequences are processed in fixed chunks of `seqs_per_chunk` stacked
/// sequences (so the linear layers are large GEMMs); chunks run in parallel
/// and results never depend on the thread count.

#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "ops.hpp"
#include "ordered.hpp"
#include "tcq/core/parallel.hpp"

namespace l2c {

/// Sequences stacked into one GEMM operand. Fixed for determinism.
inline constexpr index_t seqs_per_chunk = 2;

/// Throws tcq::error unless every token is in [0, vocab) and the length is
/// in [min_len, seq_len]; `what` names the object.
inline void check_tokens(const model& m, tcq::matrix_view<const std::int32_t> t, index_t min_len,
                         std::string_view what) {
    const config& c = m.cfg();
    tcq::require(t.cols() >= min_len && t.cols() <= c.seq_len, what, ": sequence length ", t.cols(),
                 " outside [", min_len, ", ", c.seq_len, "] (the model's context)");
    for (index_t s = 0; s < t.rows(); ++s)
        for (index_t i = 0; i < t.cols(); ++i)
            tcq::require(t(s, i) >= 0 && t(s, i) < c.vocab_size, what, ": token ", t(s, i), " at (", s, ", ", i,
                         ") outside the vocabulary [0, ", c.vocab_size, ")");
}

/// Activations of one block over R = n·T stacked rows. The tape fields
/// (x_in, x_mid, probs) are filled only when the backward needs them.
struct block_acts {
    RowMatrixXf x_in, x_mid;              ///< block input; input of the FFN residual
    RowMatrixXf xn, q, k, v, att;         ///< attention: normed x, rotated q/k, v, output
    RowMatrixXf xn2, a, b, h;             ///< FFN: normed x, w1 x, w3 x, silu(a) ⊙ b
    std::vector<float> inv1, inv2;        ///< RMSNorm 1/rms per row
    /// Per sequence, heads × T × T. Eigen-allocated on purpose: Eigen's
    /// vectorized reductions peel by address, so a fixed (64-byte) alignment
    /// keeps sums bit-identical whichever buffer a sequence lands in.
    Eigen::VectorXf probs;
    RowMatrixXf scratch;
};

namespace detail {

/// Advances x (n·T rows, in place) through block `layer`. With `stop`, returns
/// as soon as the input of that group is in `a` (x is modified for groups
/// after the attention residual; pass a copy then).
inline void run_block(const model& m, index_t layer, ops::mref x, index_t T, block_acts& a, bool tape,
                      std::optional<linear_group> stop = std::nullopt) {
    const config& c = m.cfg();
    const auto& w = m.layers[static_cast<std::size_t>(layer)];
    const index_t R = x.rows(), nseq = R / T, D = c.dim, KV = c.kv_dim();
    if (tape) a.x_in = x;
    ops::ensure(a.xn, R, D);
    a.inv1.resize(static_cast<std::size_t>(R));
    ops::rmsnorm(x, w.rms_att, a.xn, a.inv1.data());
    if (stop == linear_group::attn_in) return;

    ops::ensure(a.q, R, D);
    ops::ensure(a.k, R, KV);
    ops::ensure(a.v, R, KV);
    a.q.noalias() = a.xn * w.wq.transpose();
    a.k.noalias() = a.xn * w.wk.transpose();
    a.v.noalias() = a.xn * w.wv.transpose();
    ops::ensure(a.att, R, D);
    const index_t per_seq = c.n_heads * T * T;
    if (tape && a.probs.size() != nseq * per_seq) a.probs.resize(nseq * per_seq);
    for (index_t s = 0; s < nseq; ++s) {
        ops::rope(m, a.q.middleRows(s * T, T), 0);
        ops::rope(m, a.k.middleRows(s * T, T), 0);
        ops::attention(m, a.q.middleRows(s * T, T), a.k.middleRows(s * T, T), a.v.middleRows(s * T, T), 0,
                       a.att.middleRows(s * T, T), tape ? a.probs.data() + s * per_seq : nullptr, a.scratch);
    }
    if (stop == linear_group::attn_out) return;

    x.noalias() += a.att * w.wo.transpose();
    if (tape) a.x_mid = x;
    ops::ensure(a.xn2, R, D);
    a.inv2.resize(static_cast<std::size_t>(R));
    ops::rmsnorm(x, w.rms_ffn, a.xn2, a.inv2.data());
    if (stop == linear_group::ffn_in) return;

    ops::ensure(a.a, R, c.hidden_dim);
    ops::ensure(a.b, R, c.hidden_dim);
    ops::ensure(a.h, R, c.hidden_dim);
    a.a.noalias() = a.xn2 * w.w1.transpose();
    a.b.noalias() = a.xn2 * w.w3.transpose();
    ops::swiglu(a.a, a.b, a.h);
    if (stop == linear_group::ffn_out) return;

    x.noalias() += a.h * w.w2.transpose();
}

/// The final RMSNorm and classifier of n·T rows.
struct head_acts {
    RowMatrixXf xf, logits;
    std::vector<float> inv;
};

inline void run_head(const model& m, ops::cref x, head_acts& a) {
    ops::ensure(a.xf, x.rows(), x.cols());
    a.inv.resize(static_cast<std::size_t>(x.rows()));
    ops::rmsnorm(x, m.rms_final, a.xf, a.inv.data());
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

/// Residual-stream states of `count` sequences of `length` tokens between
/// blocks: rows [s·length, (s+1)·length) of x belong to sequence s.
struct hidden_states {
    index_t count = 0;
    index_t length = 0;
    RowMatrixXf x;  ///< (count·length) × dim

    /// The length × dim states of sequence s.
    [[nodiscard]] tcq::matrix_view<const float> sequence(index_t s) const {
        return detail::rows_view(x, s * length, length);
    }
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

/// Receives the input X (T × in_features) of a linear layer for one sequence.
/// Called on the calling thread, sequences in increasing order; per sequence
/// the kinds come in forward order wq, wk, wv, wo, w1, w3, w2 (wq/wk/wv get
/// the same X, and so do w1/w3). X is valid during the call only.
using capture_hook = std::function<void(linear_kind, index_t seq, tcq::matrix_view<const float> X)>;

namespace detail {
inline void check_hidden(const model& m, index_t layer, const hidden_states& h, std::string_view what) {
    tcq::require(layer >= 0 && layer < m.cfg().n_layers, what, ": layer ", layer, " outside [0, ",
                 m.cfg().n_layers, ")");
    tcq::require(h.x.cols() == m.cfg().dim && h.x.rows() == h.count * h.length && h.length >= 1 &&
                     h.length <= m.cfg().seq_len,
                 what, ": hidden states of shape ", h.x.rows(), "x", h.x.cols(), " do not hold ", h.count,
                 " sequences of ", h.length, " tokens of dim ", m.cfg().dim, " (max length ", m.cfg().seq_len,
                 ")");
}

/// Calls the hook for the kinds of `only` (all kinds when empty), per sequence
/// of the chunk, in forward order wq, wk, wv, wo, w1, w3, w2.
inline void deliver_captures(const block_acts& a, index_t seq0, index_t nseq, index_t T,
                             std::optional<linear_group> only, const capture_hook& hook) {
    for (index_t j = 0; j < nseq; ++j) {
        const index_t s = seq0 + j;
        auto want = [&](linear_group g) { return !only || *only == g; };
        if (want(linear_group::attn_in)) {
            const auto X = rows_view(a.xn, j * T, T);
            hook(linear_kind::wq, s, X);
            hook(linear_kind::wk, s, X);
            hook(linear_kind::wv, s, X);
        }
        if (want(linear_group::attn_out)) hook(linear_kind::wo, s, rows_view(a.att, j * T, T));
        if (want(linear_group::ffn_in)) {
            const auto X = rows_view(a.xn2, j * T, T);
            hook(linear_kind::w1, s, X);
            hook(linear_kind::w3, s, X);
        }
        if (want(linear_group::ffn_out)) hook(linear_kind::w2, s, rows_view(a.h, j * T, T));
    }
}
}  // namespace detail

/// Advances the hidden states of every sequence through block `layer` with
/// the model's current weights. If `hook` is set it is called on the calling
/// thread with the input of every linear layer of the block (order: see
/// capture_hook).
inline void block_forward(const model& m, index_t layer, hidden_states& h, const tcq::exec_policy& pol,
                          const capture_hook& hook = {}) {
    detail::check_hidden(m, layer, h, "block_forward");
    const index_t T = h.length, chunks = (h.count + seqs_per_chunk - 1) / seqs_per_chunk;
    std::vector<block_acts> slots(static_cast<std::size_t>(ordered_slots(pol, chunks)));
    auto range = [&](index_t i) { return std::pair{i * seqs_per_chunk, std::min(seqs_per_chunk, h.count - i * seqs_per_chunk)}; };
    ordered_for(
        pol, chunks,
        [&](index_t i, index_t slot) {
            const auto [s0, n] = range(i);
            detail::run_block(m, layer, h.x.middleRows(s0 * T, n * T), T, slots[static_cast<std::size_t>(slot)], false);
        },
        [&](index_t i, index_t slot) {
            if (!hook) return;
            const auto [s0, n] = range(i);
            detail::deliver_captures(slots[static_cast<std::size_t>(slot)], s0, n, T, std::nullopt, hook);
        });
}

namespace detail {
inline void capture(const model& m, index_t layer, const hidden_states& h, std::optional<linear_group> group,
                    const tcq::exec_policy& pol, const capture_hook& hook, std::string_view what) {
    check_hidden(m, layer, h, what);
    tcq::require(static_cast<bool>(hook), what, ": empty hook");
    const index_t T = h.length, chunks = (h.count + seqs_per_chunk - 1) / seqs_per_chunk;
    struct slot_t {
        RowMatrixXf x;
        block_acts a;
    };
    std::vector<slot_t> slots(static_cast<std::size_t>(ordered_slots(pol, chunks)));
    auto range = [&](index_t i) { return std::pair{i * seqs_per_chunk, std::min(seqs_per_chunk, h.count - i * seqs_per_chunk)}; };
    ordered_for(
        pol, chunks,
        [&](index_t i, index_t slot) {
            const auto [s0, n] = range(i);
            auto& st = slots[static_cast<std::size_t>(slot)];
            st.x = h.x.middleRows(s0 * T, n * T);
            run_block(m, layer, st.x, T, st.a, false, group);
        },
        [&](index_t i, index_t slot) {
            const auto [s0, n] = range(i);
            deliver_captures(slots[static_cast<std::size_t>(slot)].a, s0, n, T, group, hook);
        });
}
}  // namespace detail

/// Calls `hook` with the input of every linear layer of block `layer`, like
/// block_forward, but leaves the hidden states unchanged: capture, quantize
/// the block, then advance with block_forward through the quantized weights.
inline void capture_block(const model& m, index_t layer, const hidden_states& h, const tcq::exec_policy& pol,
                          const capture_hook& hook) {
    detail::capture(m, layer, h, std::nullopt, pol, hook, "capture_block");
}

/// Captures only the inputs of one group of block `layer` (wq/wk/wv, wo,
/// w1/w3 or w2) without advancing the hidden states; stops computing as soon
/// as that input is known. For true-sequential GPTQ inside a block.
inline void capture_group(const model& m, index_t layer, const hidden_states& h, linear_group group,
                          const tcq::exec_policy& pol, const capture_hook& hook) {
    detail::capture(m, layer, h, group, pol, hook, "capture_group");
}

/// Mean next-token cross-entropy per sequence from the final hidden states
/// (after the last block): final RMSNorm, classifier, loss over T−1 predictions.
[[nodiscard]] inline std::vector<double> output_losses(const model& m, const hidden_states& h,
                                                       tcq::matrix_view<const std::int32_t> tokens,
                                                       const tcq::exec_policy& pol) {
    tcq::require(tokens.rows() == h.count && tokens.cols() == h.length, "output_losses: tokens ", tokens.rows(),
                 "x", tokens.cols(), " do not match hidden states of ", h.count, " sequences of ", h.length);
    check_tokens(m, tokens, 2, "output_losses");
    detail::check_hidden(m, 0, h, "output_losses");
    const index_t T = h.length;
    std::vector<double> loss(static_cast<std::size_t>(h.count));
    tcq::parallel_for(pol, h.count, seqs_per_chunk, [&](index_t s0, index_t s1) {
        detail::head_acts a;
        detail::run_head(m, h.x.middleRows(s0 * T, (s1 - s0) * T), a);
        for (index_t s = s0; s < s1; ++s)
            loss[static_cast<std::size_t>(s)] =
                ops::next_token_loss(a.logits.middleRows((s - s0) * T, T), tokens.row_span(s), nullptr);
    });
    return loss;
}

/// Full forward pass: mean next-token cross-entropy (nats/token) of every
/// sequence, over its T−1 predictions.
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

}  // namespace l2c
