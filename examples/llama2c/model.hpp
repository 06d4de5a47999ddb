#pragma once
/// @file model.hpp
/// @brief The llama2.c model: hyper-parameters, fp32 weights, and named access
/// to the seven linear layers of every block as tcq views.

#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tcq/core/eigen.hpp"
#include "tcq/core/error.hpp"
#include "tcq/core/matrix_view.hpp"
#include "../llama/text.hpp"

// The engine runs one GEMM per thread and parallelizes over sequences; Eigen's
// own OpenMP threads would oversubscribe the cores and make results depend on
// the thread count. The l2c_engine CMake target defines this.
#if defined(EIGEN_HAS_OPENMP)
#error "l2c: define EIGEN_DONT_PARALLELIZE (link the l2c_engine target)"
#endif

namespace l2c {

using tcq::index_t;
using tcq::RowMatrixXf;

/// Special token ids of the byte vocabulary; byte `b` is token `3 + b`.
using llama::tok_unk, llama::tok_bos, llama::tok_eos, llama::tok_byte0;
/// RMSNorm epsilon (llama2.c).
inline constexpr float rms_eps = 1e-5f;

/// Hyper-parameters of a llama2.c checkpoint.
struct config {
    index_t dim = 0;          ///< model width
    index_t hidden_dim = 0;   ///< SwiGLU width
    index_t n_layers = 0;
    index_t n_heads = 0;
    index_t n_kv_heads = 0;   ///< grouped-query attention: heads share KV heads
    index_t vocab_size = 0;   ///< always positive here; see shared_classifier
    index_t seq_len = 0;      ///< maximum context
    bool shared_classifier = true;  ///< classifier is the token embedding

    [[nodiscard]] index_t head_size() const { return dim / n_heads; }
    [[nodiscard]] index_t kv_dim() const { return head_size() * n_kv_heads; }
    /// Query heads per KV head.
    [[nodiscard]] index_t kv_mul() const { return n_heads / n_kv_heads; }
    friend bool operator==(const config&, const config&) = default;
};

/// Throws tcq::error unless `c` describes a model this engine can run:
/// positive sizes, heads divide dim, KV heads divide heads, even head size,
/// and sane upper bounds (so a corrupt header cannot ask for terabytes).
inline void validate(const config& c, std::string_view what) {
    auto in = [&](index_t v, index_t hi, const char* field) {
        tcq::require(v >= 1 && v <= hi, what, ": ", field, " = ", v, " is outside [1, ", hi, "]");
    };
    in(c.dim, index_t{1} << 16, "dim");
    in(c.hidden_dim, index_t{1} << 18, "hidden_dim");
    in(c.n_layers, 1024, "n_layers");
    in(c.n_heads, c.dim, "n_heads");
    in(c.n_kv_heads, c.n_heads, "n_kv_heads");
    in(c.vocab_size, index_t{1} << 22, "vocab_size");
    in(c.seq_len, index_t{1} << 20, "seq_len");
    tcq::require(c.dim % c.n_heads == 0, what, ": n_heads = ", c.n_heads, " does not divide dim = ", c.dim);
    tcq::require(c.n_heads % c.n_kv_heads == 0, what, ": n_kv_heads = ", c.n_kv_heads,
                 " does not divide n_heads = ", c.n_heads);
    tcq::require(c.head_size() % 2 == 0, what, ": head size ", c.head_size(),
                 " is odd (RoPE rotates pairs)");
}

/// The seven linear layers of a block, in llama2.c naming.
enum class linear_kind { wq, wk, wv, wo, w1, w2, w3 };
/// All kinds in checkpoint order.
inline constexpr std::array<linear_kind, 7> all_linear_kinds{linear_kind::wq, linear_kind::wk, linear_kind::wv,
                                                             linear_kind::wo, linear_kind::w1, linear_kind::w2,
                                                             linear_kind::w3};

/// "wq", "wk", ...
[[nodiscard]] constexpr std::string_view kind_name(linear_kind k) {
    constexpr std::array<std::string_view, 7> n{"wq", "wk", "wv", "wo", "w1", "w2", "w3"};
    return n[static_cast<std::size_t>(k)];
}

/// Linear layers that read the same input and so share a capture:
/// {wq, wk, wv} read the attention-normed x, {wo} the attention output,
/// {w1, w3} the FFN-normed x, {w2} the SwiGLU product.
enum class linear_group { attn_in, attn_out, ffn_in, ffn_out };

[[nodiscard]] constexpr linear_group group_of(linear_kind k) {
    switch (k) {
        case linear_kind::wq: case linear_kind::wk: case linear_kind::wv: return linear_group::attn_in;
        case linear_kind::wo: return linear_group::attn_out;
        case linear_kind::w1: case linear_kind::w3: return linear_group::ffn_in;
        case linear_kind::w2: return linear_group::ffn_out;
    }
    return linear_group::ffn_out;
}

/// (out_features, in_features) of a linear layer.
[[nodiscard]] inline std::pair<index_t, index_t> linear_shape(const config& c, linear_kind k) {
    switch (k) {
        case linear_kind::wq: case linear_kind::wo: return {c.dim, c.dim};
        case linear_kind::wk: case linear_kind::wv: return {c.kv_dim(), c.dim};
        case linear_kind::w1: case linear_kind::w3: return {c.hidden_dim, c.dim};
        case linear_kind::w2: return {c.dim, c.hidden_dim};
    }
    return {0, 0};
}

/// "layers.3.wq" — the name tcq reports and stores a layer under.
[[nodiscard]] inline std::string linear_name(index_t layer, linear_kind k) {
    return "layers." + std::to_string(layer) + "." + std::string(kind_name(k));
}

/// Weights of one transformer block.
struct block_weights {
    std::vector<float> rms_att;  ///< dim
    std::vector<float> rms_ffn;  ///< dim
    RowMatrixXf wq, wk, wv, wo, w1, w2, w3;  ///< row-major out × in

    [[nodiscard]] RowMatrixXf& operator[](linear_kind k) {
        switch (k) {
            case linear_kind::wq: return wq;
            case linear_kind::wk: return wk;
            case linear_kind::wv: return wv;
            case linear_kind::wo: return wo;
            case linear_kind::w1: return w1;
            case linear_kind::w2: return w2;
            case linear_kind::w3: return w3;
        }
        return w2;
    }
    [[nodiscard]] const RowMatrixXf& operator[](linear_kind k) const {
        return (*const_cast<block_weights*>(this))[k];
    }
};

/// A llama2.c model held in fp32. Copyable: quantize a copy, keep the original.
class model {
public:
    /// Zero weights of the given shape; throws tcq::error on an invalid config.
    explicit model(const config& c, std::string_view what = "model") : cfg_(c) {
        validate(c, what);
        const index_t d = c.dim, f = c.hidden_dim, kv = c.kv_dim();
        embedding = RowMatrixXf::Zero(c.vocab_size, d);
        if (!c.shared_classifier) wcls = RowMatrixXf::Zero(c.vocab_size, d);
        layers.resize(static_cast<std::size_t>(c.n_layers));
        for (auto& b : layers) {
            b.rms_att.assign(static_cast<std::size_t>(d), 0.f);
            b.rms_ffn.assign(static_cast<std::size_t>(d), 0.f);
            b.wq = RowMatrixXf::Zero(d, d);
            b.wk = RowMatrixXf::Zero(kv, d);
            b.wv = RowMatrixXf::Zero(kv, d);
            b.wo = RowMatrixXf::Zero(d, d);
            b.w1 = RowMatrixXf::Zero(f, d);
            b.w2 = RowMatrixXf::Zero(d, f);
            b.w3 = RowMatrixXf::Zero(f, d);
        }
        rms_final.assign(static_cast<std::size_t>(d), 0.f);
        build_rope();
    }

    [[nodiscard]] const config& cfg() const noexcept { return cfg_; }

    /// Mutable view of a linear weight (out × in); write quantized weights here.
    [[nodiscard]] tcq::matrix_view<float> linear(index_t layer, linear_kind k) {
        auto& m = block(layer)[k];
        return tcq::make_view(m.data(), m.rows(), m.cols());
    }
    [[nodiscard]] tcq::matrix_view<const float> linear(index_t layer, linear_kind k) const {
        const auto& m = block(layer)[k];
        return tcq::make_view(m.data(), m.rows(), m.cols());
    }

    /// Number of weights in all linear layers (the scored set).
    [[nodiscard]] index_t n_linear_weights() const {
        index_t n = 0;
        for (auto k : all_linear_kinds) {
            const auto [r, c] = linear_shape(cfg_, k);
            n += r * c;
        }
        return n * cfg_.n_layers;
    }

    /// The output projection: the embedding when shared, else `wcls`.
    [[nodiscard]] const RowMatrixXf& classifier() const noexcept {
        return cfg_.shared_classifier ? embedding : wcls;
    }

    /// RoPE cos/sin of position `pos`, pair `i` of a head: computed in float
    /// exactly as llama2.c run.c (freq = 1 / 10000^(2i / head_size)).
    [[nodiscard]] const float* rope_cos(index_t pos) const { return rope_cos_.data() + pos * half_head(); }
    [[nodiscard]] const float* rope_sin(index_t pos) const { return rope_sin_.data() + pos * half_head(); }

    RowMatrixXf embedding;          ///< vocab × dim
    RowMatrixXf wcls;               ///< vocab × dim, empty when shared
    std::vector<block_weights> layers;
    std::vector<float> rms_final;   ///< dim

private:
    [[nodiscard]] index_t half_head() const { return cfg_.head_size() / 2; }
    [[nodiscard]] const block_weights& block(index_t layer) const {
        tcq::require(layer >= 0 && layer < cfg_.n_layers, "model: layer ", layer, " outside [0, ",
                     cfg_.n_layers, ")");
        return layers[static_cast<std::size_t>(layer)];
    }
    [[nodiscard]] block_weights& block(index_t layer) {
        return const_cast<block_weights&>(static_cast<const model&>(*this).block(layer));
    }
    void build_rope() {
        const index_t hs = cfg_.head_size(), half = hs / 2;
        rope_cos_.resize(static_cast<std::size_t>(cfg_.seq_len * half));
        rope_sin_.resize(rope_cos_.size());
        for (index_t p = 0; p < cfg_.seq_len; ++p)
            for (index_t i = 0; i < half; ++i) {
                const float freq = 1.0f / std::pow(10000.0f, static_cast<float>(2 * i) / static_cast<float>(hs));
                const float val = static_cast<float>(p) * freq;
                rope_cos_[static_cast<std::size_t>(p * half + i)] = std::cos(val);
                rope_sin_[static_cast<std::size_t>(p * half + i)] = std::sin(val);
            }
    }

    config cfg_;
    std::vector<float> rope_cos_, rope_sin_;  // seq_len × head_size/2
};

/// A model with N(0, sd) weights and norm gains near 1, for tests and benchmarks.
[[nodiscard]] inline model random_model(const config& c, std::uint64_t seed, float sd = 0.1f) {
    model m(c, "random_model");
    std::mt19937_64 g(seed);
    std::normal_distribution<float> n(0.f, 1.f);
    auto fill = [&](float* p, index_t count, float s, float mean) {
        for (index_t i = 0; i < count; ++i) p[i] = mean + s * n(g);
    };
    fill(m.embedding.data(), m.embedding.size(), 1.f, 0.f);
    if (!c.shared_classifier) fill(m.wcls.data(), m.wcls.size(), sd, 0.f);
    for (auto& b : m.layers) {
        fill(b.rms_att.data(), c.dim, 0.1f, 1.f);
        fill(b.rms_ffn.data(), c.dim, 0.1f, 1.f);
        for (auto k : all_linear_kinds) fill(b[k].data(), b[k].size(), sd, 0.f);
    }
    fill(m.rms_final.data(), c.dim, 0.1f, 1.f);
    return m;
}

}  // namespace l2c
