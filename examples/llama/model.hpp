#pragma once
/// @file model.hpp
/// @brief A Llama-family model held in fp32: per-block weights (optional
/// biases and q/k norms), HF tensor names, RoPE tables, random init.
///
/// Memory: 4 bytes × every parameter, one copy (bf16/f16 checkpoints are
/// converted once at load; the mapping is released afterwards).

#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "tcq/core/eigen.hpp"
#include "tcq/core/matrix_view.hpp"

// Parallelism is over sequences (deterministic); Eigen's own OpenMP threads
// would oversubscribe and depend on the thread count. tcq_llama_engine defines this.
#if defined(EIGEN_HAS_OPENMP)
#error "llama: define EIGEN_DONT_PARALLELIZE (link the tcq_llama_engine target)"
#endif

namespace llama {

using tcq::RowMatrixXf;
using rowvec = Eigen::Matrix<float, 1, Eigen::Dynamic>;

/// Longest sequence the engine runs (bounds the RoPE tables: 8192 × head_dim floats).
inline constexpr index_t max_rope_positions = 8192;

/// The seven linear layers of a block, in HF naming.
enum class linear_kind { q, k, v, o, gate, up, down };
/// All kinds, in forward order of their weights in a block.
inline constexpr std::array<linear_kind, 7> all_linear_kinds{linear_kind::q,    linear_kind::k,  linear_kind::v,
                                                             linear_kind::o,    linear_kind::gate, linear_kind::up,
                                                             linear_kind::down};

/// HF module path of a kind inside a block: "self_attn.q_proj", "mlp.gate_proj", ...
[[nodiscard]] constexpr std::string_view kind_module(linear_kind k) {
    constexpr std::array<std::string_view, 7> n{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                                "mlp.down_proj"};
    return n[static_cast<std::size_t>(k)];
}

/// Linear layers that read the same input: {q,k,v}, {o}, {gate,up}, {down}.
enum class linear_group { attn_in, attn_out, ffn_in, ffn_out };

[[nodiscard]] constexpr linear_group group_of(linear_kind k) {
    switch (k) {
        case linear_kind::q: case linear_kind::k: case linear_kind::v: return linear_group::attn_in;
        case linear_kind::o: return linear_group::attn_out;
        case linear_kind::gate: case linear_kind::up: return linear_group::ffn_in;
        case linear_kind::down: return linear_group::ffn_out;
    }
    return linear_group::ffn_out;
}

/// (out_features, in_features) of a linear layer.
[[nodiscard]] inline std::pair<index_t, index_t> linear_shape(const config& c, linear_kind k) {
    switch (k) {
        case linear_kind::q: return {c.q_dim(), c.dim};
        case linear_kind::k: case linear_kind::v: return {c.kv_dim(), c.dim};
        case linear_kind::o: return {c.dim, c.q_dim()};
        case linear_kind::gate: case linear_kind::up: return {c.hidden_dim, c.dim};
        case linear_kind::down: return {c.dim, c.hidden_dim};
    }
    return {0, 0};
}

/// True when the config gives layer kind `k` a bias.
[[nodiscard]] inline bool has_bias(const config& c, linear_kind k) {
    switch (group_of(k)) {
        case linear_group::attn_in: return c.qkv_bias;
        case linear_group::attn_out: return c.o_bias;
        default: return c.mlp_bias;
    }
}

/// "model.layers.3.self_attn.q_proj" — the checkpoint prefix of a linear layer
/// and the name tcq reports and stores it under.
[[nodiscard]] inline std::string linear_name(index_t layer, linear_kind k) {
    return "model.layers." + std::to_string(layer) + "." + std::string(kind_module(k));
}

/// Weights of one transformer block.
struct block_weights {
    std::vector<float> attn_norm, ffn_norm;  ///< input_layernorm, post_attention_layernorm (dim)
    std::vector<float> q_norm, k_norm;       ///< head_dim, Qwen3 only
    std::array<RowMatrixXf, 7> w;            ///< by linear_kind, row-major out × in
    std::array<rowvec, 7> b;                 ///< biases (empty when absent)

    [[nodiscard]] const RowMatrixXf& operator[](linear_kind k) const { return w[static_cast<std::size_t>(k)]; }
    [[nodiscard]] RowMatrixXf& operator[](linear_kind k) { return w[static_cast<std::size_t>(k)]; }
    [[nodiscard]] const rowvec& bias(linear_kind k) const { return b[static_cast<std::size_t>(k)]; }
};

/// A Llama-family model in fp32. Copyable.
class model {
public:
    /// Zero weights (norm gains zero too) of the shape `c` describes.
    explicit model(const config& c, std::string_view what = "model") : cfg_(c) {
        validate(c, what);
        const auto d = static_cast<std::size_t>(c.dim);
        embedding = RowMatrixXf::Zero(c.vocab_size, c.dim);
        if (!c.tied) lm_head = RowMatrixXf::Zero(c.vocab_size, c.dim);
        layers.resize(static_cast<std::size_t>(c.n_layers));
        for (auto& blk : layers) {
            blk.attn_norm.assign(d, 0.f);
            blk.ffn_norm.assign(d, 0.f);
            if (c.qk_norm) {
                blk.q_norm.assign(static_cast<std::size_t>(c.head_dim), 0.f);
                blk.k_norm.assign(static_cast<std::size_t>(c.head_dim), 0.f);
            }
            for (auto k : all_linear_kinds) {
                const auto [r, cc] = linear_shape(c, k);
                blk[k] = RowMatrixXf::Zero(r, cc);
                if (has_bias(c, k)) blk.b[static_cast<std::size_t>(k)] = rowvec::Zero(r);
            }
        }
        final_norm.assign(d, 0.f);
        build_rope();
    }

    [[nodiscard]] const config& cfg() const noexcept { return cfg_; }

    /// Mutable view of a linear weight (out × in).
    [[nodiscard]] tcq::matrix_view<float> linear(index_t layer, linear_kind k) {
        auto& m = layers.at(static_cast<std::size_t>(layer))[k];
        return tcq::make_view(m.data(), m.rows(), m.cols());
    }
    [[nodiscard]] tcq::matrix_view<const float> linear(index_t layer, linear_kind k) const {
        const auto& m = layers.at(static_cast<std::size_t>(layer))[k];
        return tcq::make_view(m.data(), m.rows(), m.cols());
    }
    /// The output projection: the embedding when tied.
    [[nodiscard]] const RowMatrixXf& classifier() const noexcept { return cfg_.tied ? embedding : lm_head; }

    /// Number of parameters (every tensor of the checkpoint).
    [[nodiscard]] index_t n_params() const {
        index_t n = embedding.size() + lm_head.size() + static_cast<index_t>(final_norm.size());
        for (const auto& blk : layers) {
            n += static_cast<index_t>(blk.attn_norm.size() + blk.ffn_norm.size() + blk.q_norm.size() + blk.k_norm.size());
            for (std::size_t i = 0; i < 7; ++i) n += blk.w[i].size() + blk.b[i].size();
        }
        return n;
    }

    /// cos/sin of position `pos` for frequency i < head_dim/2.
    [[nodiscard]] const float* rope_cos(index_t pos) const { return cos_.data() + pos * half(); }
    [[nodiscard]] const float* rope_sin(index_t pos) const { return sin_.data() + pos * half(); }
    /// Positions the RoPE tables cover: min(max_position_embeddings, max_rope_positions).
    [[nodiscard]] index_t rope_positions() const { return static_cast<index_t>(cos_.size()) / half(); }

    RowMatrixXf embedding;           ///< vocab × dim
    RowMatrixXf lm_head;             ///< vocab × dim, empty when tied
    std::vector<block_weights> layers;
    std::vector<float> final_norm;   ///< dim

private:
    [[nodiscard]] index_t half() const { return cfg_.head_dim / 2; }

    /// Inverse frequencies, with llama3 scaling applied as transformers does.
    [[nodiscard]] std::vector<double> inv_freq() const {
        const index_t h = half();
        std::vector<double> f(static_cast<std::size_t>(h));
        for (index_t i = 0; i < h; ++i)
            f[static_cast<std::size_t>(i)] =
                1.0 / std::pow(cfg_.rope_theta, static_cast<double>(2 * i) / static_cast<double>(cfg_.head_dim));
        if (cfg_.scaling) {
            const auto& s = *cfg_.scaling;
            const double old = static_cast<double>(s.original_max_position_embeddings);
            const double low_wl = old / s.low_freq_factor, high_wl = old / s.high_freq_factor;
            for (auto& v : f) {
                const double wl = 2 * M_PI / v;
                if (wl < high_wl) continue;
                if (wl > low_wl) {
                    v /= s.factor;
                } else {
                    const double sm = (old / wl - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
                    v = (1 - sm) * v / s.factor + sm * v;
                }
            }
        }
        return f;
    }

    void build_rope() {
        const index_t h = half(), n = std::min<index_t>(cfg_.max_seq, max_rope_positions);
        cos_.resize(static_cast<std::size_t>(n * h));
        sin_.resize(cos_.size());
        if (cfg_.rope == rope_pairs::interleaved) {
            // llama2.c run.c computes these in float; the fixture's numbers depend on it.
            for (index_t p = 0; p < n; ++p)
                for (index_t i = 0; i < h; ++i) {
                    const float freq = 1.0f / std::pow(static_cast<float>(cfg_.rope_theta),
                                                       static_cast<float>(2 * i) / static_cast<float>(cfg_.head_dim));
                    const float val = static_cast<float>(p) * freq;
                    cos_[static_cast<std::size_t>(p * h + i)] = std::cos(val);
                    sin_[static_cast<std::size_t>(p * h + i)] = std::sin(val);
                }
            return;
        }
        const auto f = inv_freq();
        for (index_t p = 0; p < n; ++p)
            for (index_t i = 0; i < h; ++i) {
                const double a = static_cast<double>(p) * f[static_cast<std::size_t>(i)];
                cos_[static_cast<std::size_t>(p * h + i)] = static_cast<float>(std::cos(a));
                sin_[static_cast<std::size_t>(p * h + i)] = static_cast<float>(std::sin(a));
            }
    }

    config cfg_;
    std::vector<float> cos_, sin_;  // positions × head_dim/2
};

/// A model with N(0, sd) weights and biases, norm gains near 1; for tests and benchmarks.
[[nodiscard]] inline model random_model(const config& c, std::uint64_t seed, float sd = 0.1f) {
    model m(c, "random_model");
    std::mt19937_64 g(seed);
    std::normal_distribution<float> n(0.f, 1.f);
    auto fill = [&](float* p, index_t count, float s, float mean) {
        for (index_t i = 0; i < count; ++i) p[i] = mean + s * n(g);
    };
    auto gains = [&](std::vector<float>& v) { fill(v.data(), static_cast<index_t>(v.size()), 0.1f, 1.f); };
    fill(m.embedding.data(), m.embedding.size(), 1.f, 0.f);
    if (!c.tied) fill(m.lm_head.data(), m.lm_head.size(), sd, 0.f);
    for (auto& blk : m.layers) {
        gains(blk.attn_norm);
        gains(blk.ffn_norm);
        gains(blk.q_norm);
        gains(blk.k_norm);
        for (std::size_t i = 0; i < 7; ++i) {
            fill(blk.w[i].data(), blk.w[i].size(), sd, 0.f);
            fill(blk.b[i].data(), blk.b[i].size(), sd, 0.f);
        }
    }
    gains(m.final_norm);
    return m;
}

}  // namespace llama
