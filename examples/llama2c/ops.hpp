#pragma once
/// @file ops.hpp
/// @brief The layer kernels of the transformer, forward and backward, on Eigen
/// row-major blocks: RMSNorm, RoPE, causal grouped-query attention, SwiGLU,
/// cross-entropy. Shared by the batched forward, the backward and the decoder.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include "model.hpp"

namespace l2c::ops {

using mref = Eigen::Ref<RowMatrixXf>;
using cref = Eigen::Ref<const RowMatrixXf>;
using rowvec = Eigen::Matrix<float, 1, Eigen::Dynamic>;

/// Query rows per attention tile: a tile of rows [r0, r1) only needs keys
/// [0, p0 + r1), which skips most of the masked upper triangle. Fixed, so the
/// summation order never depends on threads.
inline constexpr index_t attn_tile = 64;

/// Resizes only when the shape changes (Eigen reallocates otherwise).
inline void ensure(RowMatrixXf& m, index_t r, index_t c) {
    if (m.rows() != r || m.cols() != c) m.resize(r, c);
}

/// out = x · inv_rms(x) ⊙ g per row, as run.c: g[j] * (s * x[j]),
/// s = 1/sqrt(mean(x²) + eps). Stores s per row in `inv`.
inline void rmsnorm(cref x, std::span<const float> g, mref out, float* inv) {
    const Eigen::Map<const rowvec> gv(g.data(), static_cast<index_t>(g.size()));
    const float d = static_cast<float>(x.cols());
    for (index_t r = 0; r < x.rows(); ++r) {
        const float s = 1.0f / std::sqrt(x.row(r).squaredNorm() / d + rms_eps);
        inv[r] = s;
        out.row(r) = (x.row(r) * s).cwiseProduct(gv);
    }
}

/// dx += ∂(rmsnorm)/∂x applied to dy: s·(u − x·s²·(u·x)/D), u = g ⊙ dy.
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

/// Rotates adjacent pairs (x[2i], x[2i+1]) of every head in every row; row r
/// is at position p0 + r. `inverse` applies the transposed rotation (backward).
inline void rope(const model& m, mref x, index_t p0, bool inverse = false) {
    const index_t hs = m.cfg().head_size(), half = hs / 2, heads = x.cols() / hs;
    for (index_t r = 0; r < x.rows(); ++r) {
        const float* c = m.rope_cos(p0 + r);
        const float* s = m.rope_sin(p0 + r);
        float* row = x.row(r).data();
        for (index_t h = 0; h < heads; ++h) {
            float* v = row + h * hs;
            for (index_t i = 0; i < half; ++i) {
                const float a = v[2 * i], b = v[2 * i + 1];
                const float si = inverse ? -s[i] : s[i];
                v[2 * i] = a * c[i] - b * si;
                v[2 * i + 1] = a * si + b * c[i];
            }
        }
    }
}

/// In-place softmax of the first `valid` entries of a row, zeroing the rest.
inline void softmax_prefix(float* row, index_t valid, index_t len, float scale) {
    Eigen::Map<Eigen::ArrayXf> v(row, valid);
    v *= scale;
    v -= v.maxCoeff();
    v = v.exp();
    v *= 1.0f / v.sum();
    std::fill(row + valid, row + len, 0.f);
}

/// Causal grouped-query attention of one sequence. q: M×dim (rows at positions
/// p0..p0+M−1, already rotated); k, v: L×kv_dim with L = p0 + M; out: M×dim.
/// When `probs` is non-null the probabilities of head h are kept at
/// probs + h·M·L (M×L row-major; entries a tile never reads stay unset).
inline void attention(const model& m, cref q, cref k, cref v, index_t p0, mref out, float* probs,
                      RowMatrixXf& scratch) {
    const config& c = m.cfg();
    const index_t hs = c.head_size(), M = q.rows(), L = k.rows();
    const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    if (!probs) ensure(scratch, M, L);
    for (index_t h = 0; h < c.n_heads; ++h) {
        const index_t g = h / c.kv_mul();
        Eigen::Map<RowMatrixXf> P(probs ? probs + h * M * L : scratch.data(), M, L);
        for (index_t r0 = 0; r0 < M; r0 += attn_tile) {
            const index_t n = std::min(attn_tile, M - r0), keys = p0 + r0 + n;
            auto Pt = P.block(r0, 0, n, keys);
            Pt.noalias() = q.block(r0, h * hs, n, hs) * k.block(0, g * hs, keys, hs).transpose();
            for (index_t t = 0; t < n; ++t) softmax_prefix(&Pt(t, 0), p0 + r0 + t + 1, keys, scale);
            out.block(r0, h * hs, n, hs).noalias() = Pt * v.block(0, g * hs, keys, hs);
        }
    }
}

/// Backward of `attention` for one whole sequence (p0 = 0, M = L = T) from
/// the kept probabilities. Writes dq; accumulates into dk, dv (zero them first).
inline void attention_backward(const model& m, cref q, cref k, cref v, const float* probs, cref dout, mref dq,
                               mref dk, mref dv, RowMatrixXf& scratch) {
    const config& c = m.cfg();
    const index_t hs = c.head_size(), T = q.rows();
    const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    ensure(scratch, attn_tile, T);
    for (index_t h = 0; h < c.n_heads; ++h) {
        const index_t g = h / c.kv_mul();
        const Eigen::Map<const RowMatrixXf> P(probs + h * T * T, T, T);
        for (index_t r0 = 0; r0 < T; r0 += attn_tile) {
            const index_t n = std::min(attn_tile, T - r0), keys = r0 + n;
            const auto Pt = P.block(r0, 0, n, keys);
            const auto dO = dout.block(r0, h * hs, n, hs);
            dv.block(0, g * hs, keys, hs).noalias() += Pt.transpose() * dO;
            auto dS = scratch.block(0, 0, n, keys);
            dS.noalias() = dO * v.block(0, g * hs, keys, hs).transpose();
            for (index_t t = 0; t < n; ++t) {
                // softmax backward: dS = P ⊙ (dP − Σ P·dP); masked entries have P = 0.
                const float dot = Pt.row(t).dot(dS.row(t));
                dS.row(t) = Pt.row(t).cwiseProduct((dS.row(t).array() - dot).matrix()) * scale;
            }
            dq.block(r0, h * hs, n, hs).noalias() = dS * k.block(0, g * hs, keys, hs);
            dk.block(0, g * hs, keys, hs).noalias() += dS.transpose() * q.block(r0, h * hs, n, hs);
        }
    }
}

/// h = silu(a) ⊙ b, silu(a) = a / (1 + e^−a).
inline void swiglu(cref a, cref b, mref h) {
    h.array() = a.array() / (1.0f + (-a.array()).exp()) * b.array();
}

/// Backward of swiglu given dh: da = dh ⊙ b ⊙ σ(a)(1 + a(1 − σ(a))),
/// db = dh ⊙ silu(a). Overwrites a ← da and b ← db (the tape is consumed).
inline void swiglu_backward(mref a, mref b, cref dh, RowMatrixXf& sig, RowMatrixXf& db) {
    ensure(sig, a.rows(), a.cols());
    ensure(db, a.rows(), a.cols());
    sig.array() = 1.0f / (1.0f + (-a.array()).exp());
    db.array() = dh.array() * a.array() * sig.array();
    a.array() = dh.array() * b.array() * sig.array() * (1.0f + a.array() * (1.0f - sig.array()));
    b = db;
}

/// Mean next-token cross-entropy of logits rows 0..P−1 against tokens 1..P
/// (P = T − 1), in double. When `dlogits` is non-null it receives
/// (softmax − onehot)/P for rows < P and 0 for the last row.
inline double next_token_loss(cref logits, std::span<const std::int32_t> tokens, RowMatrixXf* dlogits) {
    const index_t T = static_cast<index_t>(tokens.size()), P = T - 1;
    double sum = 0;
    if (dlogits) {
        ensure(*dlogits, T, logits.cols());
        dlogits->row(T - 1).setZero();
    }
    for (index_t t = 0; t < P; ++t) {
        const auto row = logits.row(t).array();
        const float mx = row.maxCoeff();
        const float lse = mx + std::log((row - mx).exp().sum());
        const std::int32_t y = tokens[static_cast<std::size_t>(t + 1)];
        sum += static_cast<double>(lse) - static_cast<double>(row(y));
        if (dlogits) {
            auto d = dlogits->row(t).array();
            d = (row - lse).exp() * (1.0f / static_cast<float>(P));
            d(y) -= 1.0f / static_cast<float>(P);
        }
    }
    return sum / static_cast<double>(P);
}

}  // namespace l2c::ops
