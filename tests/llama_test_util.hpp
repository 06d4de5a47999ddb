#pragma once
// Shared by the llama engine tests: the tiny 2-layer config with odd widths,
// one sequence's loss, and the finite-difference check of gradients.
#include <span>

#include "llama/forward.hpp"
#include "tcq/core/eigen.hpp"

/// 2 layers, odd widths; head_dim 6 explicit so q_dim (18) differs from dim (23); GQA 3/1.
inline llama::config llama_tiny_config(const char* arch = "LlamaForCausalLM") {
    llama::config c;
    c.architecture = arch;
    c.dim = 23;
    c.hidden_dim = 37;
    c.n_layers = 2;
    c.n_heads = 3;
    c.n_kv_heads = 1;
    c.head_dim = 6;
    c.vocab_size = 41;
    c.max_seq = 96;
    c.norm_eps = 1e-5f;
    c.rope_theta = 500.0;
    return c;
}

/// Mean next-token loss of one sequence.
inline double loss_of(const llama::model& m, std::span<const std::int32_t> tokens) {
    return llama::sequence_losses(m, tcq::make_view(tokens.data(), 1, static_cast<llama::index_t>(tokens.size())),
                                  tcq::seq())[0];
}

/// Central differences of the loss along D at h and h/2, Richardson-extrapolated (O(h²) cancels).
inline double directional_fd(llama::model& m, llama::index_t layer, llama::linear_kind k, const llama::RowMatrixXf& D,
                             double h, std::span<const std::int32_t> tokens) {
    auto W = tcq::as_eigen(m.linear(layer, k));
    const llama::RowMatrixXf W0 = W;
    auto central = [&](double step) {
        W = W0 + static_cast<float>(step) * D;
        const double lp = loss_of(m, tokens);
        W = W0 - static_cast<float>(step) * D;
        const double lm = loss_of(m, tokens);
        W = W0;
        return (lp - lm) / (2 * step);
    };
    return (4 * central(h / 2) - central(h)) / 3;
}
