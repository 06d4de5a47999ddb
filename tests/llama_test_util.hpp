#pragma once
// Shared by the llama engine tests: the tiny 2-layer config with odd widths.
#include "llama/config.hpp"

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
