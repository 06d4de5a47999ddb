#pragma once
/// @file ops.hpp
/// @brief Layer kernels, forward and backward, on Eigen row-major views:
/// RMSNorm, RoPE (both pairings), causal grouped-query attention, SwiGLU,
/// cross-entropy. Weights come in as views; nothing here owns a weight.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include "model.hpp"

namespace llama::ops {

using mref = Eigen::Ref<RowMatrixXf>;
using cref = Eigen::Ref<const RowMatrixXf>;

/// Query rows per attention tile; fixed so sums never depend on threads.
inline constexpr index_t attn_tile = 64;

/// Resizes only when the shape changes.
inline void ensure(RowMatrixXf& m, index_t r, index_t c) {
    if (m.rows() != r || m.cols() != c) m.resize(r, c);
}

/// out = g ⊙ (s·x) per row, s = 1/sqrt(mean(x²) + eps); s kept in `inv`.
inline void rmsnorm(cref x, std::span<const float> g, float eps, mref out, float* inv) {
    const Eigen::Map<const rowvec> gv(g.data(), static_cast<index_t>(g.size()));
    const float d = static_cast<float>(x.cols());
    for (index_t r = 0; r < x.rows(); ++r) {
        const float s = 1.0f / std::sqrt(x.row(r).squaredNorm() / d + eps);
        inv[r] = s;
        out.row(r) = (x.row(r) * s).cwiseProduct(gv);
    }
}

/// dx += ∂rmsnorm/∂x · dy = s·u − x·s³(u·x)/D with u = g ⊙ dy.
inline void rmsnorm_backward(cref x, std::span<const float> g, const float* inv, cref dy, mref dx) {
    const Eigen::Map<const rowvec> gv(g.data(), static_cast<index_t>(g.size()));
    const float d = static_cast<float>(x.cols());
    rowvec u;
    for (index_t r = 0; r < x.rows(); ++r) {
        const float s = inv[r];
        u = dy.row(r).cwiseProduct(gv);
        const float k = s * s * s * u.dot(x.row(r)) / d;
        dx.row(r) += s * u - k * x.row(r);
    }
}

/// A T × (H·hd) row-major block seen as (T·H) × hd: one row per head.
[[nodiscard]] inline Eigen::Map<RowMatrixXf> per_head(RowMatrixXf& m, index_t hd) {
    return {m.data(), m.size() / hd, hd};
}

/// Rotates every head of every row; row r is at position p0 + r. `inverse`
/// applies the transposed rotation (backward). Pairs follow cfg().rope.
inline void rope(const model& m, mref x, index_t p0, bool inverse = false) {
    const index_t hd = m.cfg().head_dim, half = hd / 2, heads = x.cols() / hd;
    const bool inter = m.cfg().rope == rope_pairs::interleaved;
    for (index_t r = 0; r < x.rows(); ++r) {
        const float* c = m.rope_cos(p0 + r);
        const float* s = m.rope_sin(p0 + r);
        float* row = x.row(r).data();
        for (index_t h = 0; h < heads; ++h) {
            float* v = row + h * hd;
            for (index_t i = 0; i < half; ++i) {
                float& a = inter ? v[2 * i] : v[i];
                float& b = inter ? v[2 * i + 1] : v[i + half];
                const float si = inverse ? -s[i] : s[i], x0 = a, x1 = b;
                a = x0 * c[i] - x1 * si;
                b = x0 * si + x1 * c[i];
            }
        }
    }
}

/// In-place scaled softmax of the first `valid` entries of a row, zeroing the rest.
inline void softmax_prefix(float* row, index_t valid, index_t len, float scale) {
    Eigen::Map<Eigen::ArrayXf> v(row, valid);
    v *= scale;
    v -= v.maxCoeff();
    v = v.exp();
    v *= 1.0f / v.sum();
    std::fill(row + valid, row + len, 0.f);
}

/// Causal GQA of one sequence: q M×q_dim (rows at positions p0.., rotated),
/// k, v L×kv_dim with L = p0 + M; out M×q_dim. With `probs` the probabilities
/// of head h are kept at probs + h·M·L.
inline void attention(const config& c, cref q, cref k, cref v, index_t p0, mref out, float* probs,
                      RowMatrixXf& scratch) {
    const index_t hd = c.head_dim, M = q.rows(), L = k.rows();
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    if (!probs) ensure(scratch, M, L);
    for (index_t h = 0; h < c.n_heads; ++h) {
        const index_t g = h / c.kv_mul();
        Eigen::Map<RowMatrixXf> P(probs ? probs + h * M * L : scratch.data(), M, L);
        for (index_t r0 = 0; r0 < M; r0 += attn_tile) {
            const index_t n = std::min(attn_tile, M - r0), keys = p0 + r0 + n;
            auto Pt = P.block(r0, 0, n, keys);
            Pt.noalias() = q.block(r0, h * hd, n, hd) * k.block(0, g * hd, keys, hd).transpose();
            for (index_t t = 0; t < n; ++t) softmax_prefix(&Pt(t, 0), p0 + r0 + t + 1, keys, scale);
            out.block(r0, h * hd, n, hd).noalias() = Pt * v.block(0, g * hd, keys, hd);
        }
    }
}

/// Backward of `attention` over one whole sequence (p0 = 0) from the kept
/// probabilities. Writes dq; accumulates into dk, dv (zero them first).
inline void attention_backward(const config& c, cref q, cref k, cref v, const float* probs, cref dout, mref dq,
                               mref dk, mref dv, RowMatrixXf& scratch) {
    const index_t hd = c.head_dim, T = q.rows();
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    ensure(scratch, attn_tile, T);
    for (index_t h = 0; h < c.n_heads; ++h) {
        const index_t g = h / c.kv_mul();
        const Eigen::Map<const RowMatrixXf> P(probs + h * T * T, T, T);
        for (index_t r0 = 0; r0 < T; r0 += attn_tile) {
            const index_t n = std::min(attn_tile, T - r0), keys = r0 + n;
            const auto Pt = P.block(r0, 0, n, keys);
            const auto dO = dout.block(r0, h * hd, n, hd);
            dv.block(0, g * hd, keys, hd).noalias() += Pt.transpose() * dO;
            auto dS = scratch.block(0, 0, n, keys);
            dS.noalias() = dO * v.block(0, g * hd, keys, hd).transpose();
            for (index_t t = 0; t < n; ++t) {
                // softmax backward: P ⊙ (dP − Σ P·dP); masked entries have P = 0.
                const float dot = Pt.row(t).dot(dS.row(t));
                dS.row(t) = Pt.row(t).cwiseProduct((dS.row(t).array() - dot).matrix()) * scale;
            }
            dq.block(r0, h * hd, n, hd).noalias() = dS * k.block(0, g * hd, keys, hd);
            dk.block(0, g * hd, keys, hd).noalias() += dS.transpose() * q.block(r0, h * hd, n, hd);
        }
    }
}

/// h = silu(a) ⊙ b.
inline void swiglu(cref a, cref b, mref h) { h.array() = a.array() / (1.0f + (-a.array()).exp()) * b.array(); }

/// Backward of swiglu: a ← dh ⊙ b ⊙ σ(a)(1 + a(1 − σ(a))), b ← dh ⊙ silu(a).
inline void swiglu_backward(mref a, mref b, cref dh, RowMatrixXf& sig, RowMatrixXf& db) {
    ensure(sig, a.rows(), a.cols());
    ensure(db, a.rows(), a.cols());
    sig.array() = 1.0f / (1.0f + (-a.array()).exp());
    db.array() = dh.array() * a.array() * sig.array();
    a.array() = dh.array() * b.array() * sig.array() * (1.0f + a.array() * (1.0f - sig.array()));
    b = db;
}

/// y = x Wᵀ (+ bias): the linear layer.
inline void linear(cref x, const RowMatrixXf& w, const rowvec& bias, mref y) {
    y.noalias() = x * w.transpose();
    if (bias.size()) y.rowwise() += bias;
}

/// Mean next-token cross-entropy of logits rows 0..T−2 against tokens 1..T−1
/// (double). With `dlogits`: (softmax − onehot)/(T−1), last row 0.
/// With `scored` (T flags, one per token; empty: all): the mean runs over the
/// targets t with scored[t] != 0 only (answer-span loss, docs/algorithms.md
/// §1 step 2); the other rows of `dlogits` are 0. No scored target: loss 0 and
/// a zero gradient (the sample adds nothing to Σ|g|).
inline double next_token_loss(cref logits, std::span<const std::int32_t> tokens, RowMatrixXf* dlogits,
                              std::span<const std::uint8_t> scored = {}) {
    const index_t T = static_cast<index_t>(tokens.size()), P = T - 1;
    tcq::require(scored.empty() || scored.size() == tokens.size(), "next_token_loss: ", scored.size(),
                 " scored flags for ", T, " tokens");
    auto counts = [&](index_t t) { return scored.empty() || scored[static_cast<std::size_t>(t + 1)] != 0; };
    index_t n = 0;
    for (index_t t = 0; t < P; ++t) n += counts(t) ? 1 : 0;
    double sum = 0;
    if (dlogits) {
        ensure(*dlogits, T, logits.cols());
        dlogits->row(T - 1).setZero();
    }
    const float inv = n > 0 ? 1.0f / static_cast<float>(n) : 0.0f;
    for (index_t t = 0; t < P; ++t) {
        if (!counts(t)) {
            if (dlogits) dlogits->row(t).setZero();
            continue;
        }
        const auto row = logits.row(t).array();
        const float mx = row.maxCoeff();
        const float lse = mx + std::log((row - mx).exp().sum());
        const std::int32_t y = tokens[static_cast<std::size_t>(t + 1)];
        sum += static_cast<double>(lse) - static_cast<double>(row(y));
        if (dlogits) {
            auto d = dlogits->row(t).array();
            d = (row - lse).exp() * inv;
            d(y) -= inv;
        }
    }
    return n > 0 ? sum / static_cast<double>(n) : 0.0;
}

}  // namespace llama::ops
