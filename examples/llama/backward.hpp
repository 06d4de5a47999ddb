#pragma once
/// @file backward.hpp
/// @brief Per-sample gradients of every linear weight, ∂L_s/∂W with L_s the
/// mean next-token cross-entropy of sequence s.
///
/// Activation recomputation: the forward keeps only each block's input
/// (n_layers × T × dim floats); the backward re-runs one block at a time with
/// its tape, so the working memory is one block's activations of one sample
/// (T·(4·dim + 2·q_dim + 4·kv_dim + 3·hidden) + heads·T² floats), not the
/// whole model's. Costs one extra forward per sample.

#include <array>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <functional>
#include <vector>

#include "forward.hpp"

namespace llama {

/// Receives ∂L_s/∂W (out × in) of one linear layer for sequence s; valid during the call only.
using gradient_sink = std::function<void(index_t seq, index_t layer, linear_kind kind, tcq::matrix_view<const float> dW)>;

/// The seven weight gradients of one block, by linear_kind.
using block_grads = std::array<RowMatrixXf, 7>;

/// Buffers of one sequence's gradient.
struct gradient_workspace {
    std::vector<RowMatrixXf> inputs;  ///< block inputs (the checkpoints)
    RowMatrixXf x;                    ///< residual stream
    block_acts tape;                  ///< one block's activations
    detail::head_acts head;
    RowMatrixXf dlogits, dx, dxn, datt, dq, dk, dv, dqn, dkn, dh, sig, tmp;
    double loss = 0;
};

namespace detail {

/// Backward through the qk-norm of one projection: d(raw) from d(normed).
inline void qk_norm_backward(RowMatrixXf& raw, std::span<const float> g, const std::vector<float>& inv,
                             RowMatrixXf& dnormed, RowMatrixXf& draw, index_t hd) {
    draw.setZero(dnormed.rows(), dnormed.cols());
    ops::rmsnorm_backward(ops::per_head(raw, hd), g, inv.data(), ops::per_head(dnormed, hd), ops::per_head(draw, hd));
}

/// Loss of one sequence into w.loss; the gradients of block l are written
/// into `grads_of(l)` (a block_grads&), last block first.
template <class GradsOf, class Emit>
void sequence_gradient(const model& m, std::span<const std::int32_t> tokens, std::span<const std::uint8_t> scored,
                       gradient_workspace& w, GradsOf&& grads_of, Emit&& emit) {
    const config& c = m.cfg();
    const index_t T = static_cast<index_t>(tokens.size()), L = c.n_layers, hd = c.head_dim;
    w.inputs.resize(static_cast<std::size_t>(L));
    ops::ensure(w.x, T, c.dim);
    embed_rows(m, tokens, w.x);
    for (index_t l = 0; l < L; ++l) {
        w.inputs[static_cast<std::size_t>(l)] = w.x;
        run_block(m, l, w.x, T, w.tape, false);
    }
    run_head(m, w.x, w.head);
    w.loss = ops::next_token_loss(w.head.logits, tokens, &w.dlogits, scored);

    ops::ensure(w.dxn, T, c.dim);
    w.dxn.noalias() = w.dlogits * m.classifier();
    w.dx.setZero(T, c.dim);
    ops::rmsnorm_backward(w.x, m.final_norm, w.head.inv.data(), w.dxn, w.dx);

    for (index_t l = L - 1; l >= 0; --l) {
        auto& a = w.tape;
        w.x = w.inputs[static_cast<std::size_t>(l)];
        run_block(m, l, w.x, T, a, true);  // recompute this block with its tape
        const auto& wt = m.layers[static_cast<std::size_t>(l)];
        block_grads& g = grads_of(l);
        auto G = [&](linear_kind k) -> RowMatrixXf& { return g[static_cast<std::size_t>(k)]; };

        // FFN: x_out = x_mid + h Wdᵀ, h = silu(xn2 Wgᵀ) ⊙ (xn2 Wuᵀ).
        G(linear_kind::down).noalias() = w.dx.transpose() * a.h;
        ops::ensure(w.dh, T, c.hidden_dim);
        w.dh.noalias() = w.dx * wt[linear_kind::down];
        ops::swiglu_backward(a.a, a.b, w.dh, w.sig, w.tmp);  // a ← d gate, b ← d up
        G(linear_kind::gate).noalias() = a.a.transpose() * a.xn2;
        G(linear_kind::up).noalias() = a.b.transpose() * a.xn2;
        w.dxn.noalias() = a.a * wt[linear_kind::gate];
        w.dxn.noalias() += a.b * wt[linear_kind::up];
        ops::rmsnorm_backward(a.x_mid, wt.ffn_norm, a.inv2.data(), w.dxn, w.dx);  // dx = ∂/∂x_mid

        // Attention: x_mid = x_in + att Woᵀ.
        G(linear_kind::o).noalias() = w.dx.transpose() * a.att;
        ops::ensure(w.datt, T, c.q_dim());
        w.datt.noalias() = w.dx * wt[linear_kind::o];
        ops::ensure(w.dq, T, c.q_dim());
        w.dk.setZero(T, c.kv_dim());
        w.dv.setZero(T, c.kv_dim());
        ops::attention_backward(c, a.q, a.k, a.v, a.probs.data(), w.datt, w.dq, w.dk, w.dv, a.scratch);
        ops::rope(m, w.dq, 0, true);
        ops::rope(m, w.dk, 0, true);
        if (c.qk_norm) {
            qk_norm_backward(a.q_raw, wt.q_norm, a.qinv, w.dq, w.dqn, hd);
            qk_norm_backward(a.k_raw, wt.k_norm, a.kinv, w.dk, w.dkn, hd);
            std::swap(w.dq, w.dqn);
            std::swap(w.dk, w.dkn);
        }
        G(linear_kind::q).noalias() = w.dq.transpose() * a.xn;
        G(linear_kind::k).noalias() = w.dk.transpose() * a.xn;
        G(linear_kind::v).noalias() = w.dv.transpose() * a.xn;
        if (l > 0) {  // the embedding gradient is not needed
            w.dxn.noalias() = w.dq * wt[linear_kind::q];
            w.dxn.noalias() += w.dk * wt[linear_kind::k];
            w.dxn.noalias() += w.dv * wt[linear_kind::v];
            ops::rmsnorm_backward(a.x_in, wt.attn_norm, a.inv1.data(), w.dxn, w.dx);
        }
        emit(l);
    }
}

}  // namespace detail

/// Pending block gradients a worker may hold before it waits for the sink.
inline constexpr std::size_t max_pending_blocks = 2;

/// For every sequence s (rows of `tokens`), computes ∂L_s/∂W of every linear
/// weight and calls `sink(s, layer, kind, dW)` on the calling thread. For each
/// layer the calls come in increasing s (kinds in all_linear_kinds order);
/// calls of different layers interleave (last layer first within a sample).
/// Sequences run in parallel, one per worker thread; each block's gradients go
/// to the sink as soon as that block's backward is done, so memory is one
/// workspace and at most `max_pending_blocks` block gradients per thread, not
/// the whole model's gradient. Values and the per-layer order do not depend on
/// the thread count. With `scored` (the shape of `tokens`; empty: every
/// token), L_s averages over the scored targets only (ops::next_token_loss).
/// Returns L_s.
inline std::vector<double> per_sample_gradients(const model& m, tcq::matrix_view<const std::int32_t> tokens,
                                                const tcq::exec_policy& pol, const gradient_sink& sink,
                                                tcq::matrix_view<const std::uint8_t> scored = {}) {
    check_tokens(m, tokens, 2, "per_sample_gradients");
    tcq::require(scored.size() == 0 || (scored.rows() == tokens.rows() && scored.cols() == tokens.cols()),
                 "per_sample_gradients: scored flags are ", scored.rows(), "x", scored.cols(), ", tokens ",
                 tokens.rows(), "x", tokens.cols());
    auto flags = [&](index_t s) {
        return scored.size() == 0 ? std::span<const std::uint8_t>() : scored.row_span(s);
    };
    const index_t N = tokens.rows(), L = m.cfg().n_layers;
    std::vector<double> loss(static_cast<std::size_t>(N));
    auto deliver = [&](index_t s, index_t l, const block_grads& g) {
        if (!sink) return;
        for (auto k : all_linear_kinds) {
            const auto& d = g[static_cast<std::size_t>(k)];
            sink(s, l, k, tcq::make_view(static_cast<const float*>(d.data()), d.rows(), d.cols()));
        }
    };
    const int T = static_cast<int>(std::min<index_t>(pol.resolved_threads(), N));
    if (T <= 1 || pol.executor) {
        gradient_workspace w;
        block_grads g;
        for (index_t s = 0; s < N; ++s) {
            detail::sequence_gradient(
                m, tokens.row_span(s), flags(s), w, [&](index_t) -> block_grads& { return g; },
                [&](index_t l) { deliver(s, l, g); });
            loss[static_cast<std::size_t>(s)] = w.loss;
        }
        return loss;
    }
    // Worker t computes samples t, t + T, ...; the calling thread delivers block
    // (s, l) once every sample before s has delivered block l. The smallest
    // unfinished sample is always deliverable, so no worker waits forever.
    struct pending {
        index_t s, l;
        block_grads g;
    };
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::vector<pending>> queue(static_cast<std::size_t>(T));  // per worker, in production order
    std::vector<index_t> next_sample(static_cast<std::size_t>(L), 0);       // per layer: next sample to deliver
    index_t delivered = 0;
    bool stop = false;
    std::exception_ptr err;
    auto worker = [&](int t) {
        try {
            gradient_workspace w;
            for (index_t s = t; s < N; s += T) {
                block_grads g;
                detail::sequence_gradient(
                    m, tokens.row_span(s), flags(s), w, [&](index_t) -> block_grads& { return g; },
                    [&](index_t l) {
                        std::unique_lock lk(mu);
                        cv.wait(lk, [&] { return stop || queue[static_cast<std::size_t>(t)].size() < max_pending_blocks; });
                        if (stop) throw std::runtime_error("stopped");
                        queue[static_cast<std::size_t>(t)].push_back({s, l, std::move(g)});
                        cv.notify_all();
                    });
                std::lock_guard lk(mu);
                loss[static_cast<std::size_t>(s)] = w.loss;
            }
        } catch (...) {
            std::lock_guard lk(mu);
            if (!err && !stop) err = std::current_exception();
            stop = true;
            cv.notify_all();
        }
    };
    std::vector<std::thread> pool;
    for (int t = 0; t < T; ++t) pool.emplace_back(worker, t);
    try {
        std::unique_lock lk(mu);
        while (delivered < N * L) {
            pending* ready = nullptr;
            std::size_t from = 0;
            for (std::size_t t = 0; t < queue.size() && !ready; ++t)
                if (!queue[t].empty() && next_sample[static_cast<std::size_t>(queue[t].front().l)] == queue[t].front().s) {
                    ready = &queue[t].front();
                    from = t;
                }
            if (!ready) {
                if (stop) break;
                cv.wait(lk);
                continue;
            }
            pending p = std::move(*ready);
            queue[from].erase(queue[from].begin());
            cv.notify_all();
            lk.unlock();
            deliver(p.s, p.l, p.g);
            lk.lock();
            ++next_sample[static_cast<std::size_t>(p.l)];
            ++delivered;
        }
        stop = true;
        cv.notify_all();
    } catch (...) {
        std::lock_guard lk(mu);
        if (!err) err = std::current_exception();
        stop = true;
        cv.notify_all();
    }
    for (auto& th : pool) th.join();
    if (err) std::rethrow_exception(err);
    return loss;
}

}  // namespace llama
