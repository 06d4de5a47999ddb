#pragma once
/// @file backward.hpp
/// @brief Per-sample gradients of every linear weight: for each sequence s,
/// ∂L_s/∂W with L_s the mean next-token cross-entropy of that sequence.
///
/// Each sequence runs a taped forward and a full backward on one thread
/// (GEMMs over its T tokens); sequences run in parallel and are delivered in
/// order on the calling thread, so downstream sums are deterministic.

#include <functional>
#include <vector>

#include "forward.hpp"

namespace l2c {

/// Receives ∂L_s/∂W (out × in, same layout as the weight) of one linear layer
/// for sequence s. dW is valid during the call only.
using gradient_sink =
    std::function<void(index_t seq, index_t layer, linear_kind kind, tcq::matrix_view<const float> dW)>;

/// Forward tape and backward buffers of one sequence.
struct gradient_workspace {
    RowMatrixXf x;                    ///< residual stream
    std::vector<block_acts> blocks;   ///< tape, one per layer
    detail::head_acts head;
    RowMatrixXf dlogits, dx, dxn, datt, dq, dk, dv, dh, sig, tmp;
    std::vector<std::array<RowMatrixXf, 7>> grad;  ///< [layer][kind]
    double loss = 0;
};

namespace detail {

/// Loss and all linear-weight gradients of one sequence into `w`.
inline void sequence_gradient(const model& m, std::span<const std::int32_t> tokens, gradient_workspace& w) {
    const config& c = m.cfg();
    const index_t T = static_cast<index_t>(tokens.size()), D = c.dim, L = c.n_layers;
    w.blocks.resize(static_cast<std::size_t>(L));
    w.grad.resize(static_cast<std::size_t>(L));
    ops::ensure(w.x, T, D);
    embed_rows(m, tokens, w.x);
    for (index_t l = 0; l < L; ++l) run_block(m, l, w.x, T, w.blocks[static_cast<std::size_t>(l)], true);
    run_head(m, w.x, w.head);
    w.loss = ops::next_token_loss(w.head.logits, tokens, &w.dlogits);

    // Head: logits = xf Cᵀ → dxf = dlogits C; then the final RMSNorm.
    ops::ensure(w.dxn, T, D);
    w.dxn.noalias() = w.dlogits * m.classifier();
    w.dx.setZero(T, D);
    ops::rmsnorm_backward(w.x, m.rms_final, w.head.inv.data(), w.dxn, w.dx);

    for (index_t l = L - 1; l >= 0; --l) {
        auto& a = w.blocks[static_cast<std::size_t>(l)];
        const auto& wt = m.layers[static_cast<std::size_t>(l)];
        auto& g = w.grad[static_cast<std::size_t>(l)];
        auto G = [&](linear_kind k) -> RowMatrixXf& { return g[static_cast<std::size_t>(k)]; };

        // FFN: x_out = x_mid + h W2ᵀ, h = silu(xn2 W1ᵀ) ⊙ (xn2 W3ᵀ).
        G(linear_kind::w2).noalias() = w.dx.transpose() * a.h;
        ops::ensure(w.dh, T, c.hidden_dim);
        w.dh.noalias() = w.dx * wt.w2;
        ops::swiglu_backward(a.a, a.b, w.dh, w.sig, w.tmp);  // a ← da, b ← db
        G(linear_kind::w1).noalias() = a.a.transpose() * a.xn2;
        G(linear_kind::w3).noalias() = a.b.transpose() * a.xn2;
        w.dxn.noalias() = a.a * wt.w1;
        w.dxn.noalias() += a.b * wt.w3;
        ops::rmsnorm_backward(a.x_mid, wt.rms_ffn, a.inv2.data(), w.dxn, w.dx);  // dx is now ∂/∂x_mid

        // Attention: x_mid = x_in + att Woᵀ.
        G(linear_kind::wo).noalias() = w.dx.transpose() * a.att;
        ops::ensure(w.datt, T, D);
        w.datt.noalias() = w.dx * wt.wo;
        ops::ensure(w.dq, T, D);
        w.dk.setZero(T, c.kv_dim());
        w.dv.setZero(T, c.kv_dim());
        ops::attention_backward(m, a.q, a.k, a.v, a.probs.data(), w.datt, w.dq, w.dk, w.dv, a.scratch);
        ops::rope(m, w.dq, 0, true);
        ops::rope(m, w.dk, 0, true);
        G(linear_kind::wq).noalias() = w.dq.transpose() * a.xn;
        G(linear_kind::wk).noalias() = w.dk.transpose() * a.xn;
        G(linear_kind::wv).noalias() = w.dv.transpose() * a.xn;
        if (l == 0) break;  // the embedding gradient is not needed
        w.dxn.noalias() = w.dq * wt.wq;
        w.dxn.noalias() += w.dk * wt.wk;
        w.dxn.noalias() += w.dv * wt.wv;
        ops::rmsnorm_backward(a.x_in, wt.rms_att, a.inv1.data(), w.dxn, w.dx);
    }
}

}  // namespace detail

/// For every sequence s (rows of `tokens`, 2 ≤ T ≤ seq_len), computes
/// ∂L_s/∂W of every linear weight at the model's current weights and calls
/// `sink(s, layer, kind, dW)` on the calling thread: sequences in increasing
/// order, and within one sequence layers in increasing order, kinds in
/// all_linear_kinds order. Sequences are computed in parallel under `pol`;
/// the values delivered do not depend on the thread count. Returns L_s.
inline std::vector<double> per_sample_gradients(const model& m, tcq::matrix_view<const std::int32_t> tokens,
                                                const tcq::exec_policy& pol, const gradient_sink& sink) {
    check_tokens(m, tokens, 2, "per_sample_gradients");
    const index_t N = tokens.rows();
    std::vector<gradient_workspace> slots(static_cast<std::size_t>(ordered_slots(pol, N)));
    std::vector<double> loss(static_cast<std::size_t>(N));
    ordered_for(
        pol, N,
        [&](index_t s, index_t slot) {
            detail::sequence_gradient(m, tokens.row_span(s), slots[static_cast<std::size_t>(slot)]);
        },
        [&](index_t s, index_t slot) {
            auto& w = slots[static_cast<std::size_t>(slot)];
            loss[static_cast<std::size_t>(s)] = w.loss;
            if (!sink) return;
            for (index_t l = 0; l < m.cfg().n_layers; ++l)
                for (auto k : all_linear_kinds) {
                    const auto& g = w.grad[static_cast<std::size_t>(l)][static_cast<std::size_t>(k)];
                    sink(s, l, k, tcq::make_view(static_cast<const float*>(g.data()), g.rows(), g.cols()));
                }
        });
    return loss;
}

}  // namespace l2c
