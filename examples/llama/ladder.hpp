#pragma once
/// @file ladder.hpp
/// @brief Random-init checkpoints in true HF layout: tiny 2-layer configs of
/// each architecture (CI) and the size ladder of real model shapes
/// (benchmarks; no downloads). Tensors are generated one at a time while
/// writing, so memory stays at one shard's bf16 bytes.

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint.hpp"

namespace llama {

/// The named shapes `random_checkpoint` knows, in the order listed by `ladder_names`.
[[nodiscard]] inline std::vector<std::string> ladder_names() {
    return {"tiny-llama", "tiny-mistral", "tiny-qwen2", "tiny-qwen3",
            "smollm2-135m", "qwen2.5-0.5b", "tinyllama-1.1b", "llama-3.2-1b"};
}

/// The config of a named shape; throws listing the known names.
[[nodiscard]] inline config ladder_config(std::string_view name) {
    config c;
    auto base = [&](const char* arch, index_t d, index_t f, index_t l, index_t h, index_t kv, index_t v) {
        c.architecture = arch;
        c.dim = d;
        c.hidden_dim = f;
        c.n_layers = l;
        c.n_heads = h;
        c.n_kv_heads = kv;
        c.head_dim = d / h;
        c.vocab_size = v;
        c.norm_eps = 1e-5f;
    };
    // Tiny: 2 layers, odd widths, the fixture's byte vocabulary (259) so byte text evaluates.
    if (name == "tiny-llama") {
        base("LlamaForCausalLM", 45, 67, 2, 3, 1, 259);
        c.head_dim = 14;
        c.max_seq = 512;
        c.rope_theta = 500000;
        c.scaling = llama3_scaling{8.0, 1.0, 4.0, 64};
        c.tied = true;
    } else if (name == "tiny-mistral") {
        base("MistralForCausalLM", 48, 71, 2, 4, 2, 259);
        c.max_seq = 512;
        c.sliding_window = 512;
    } else if (name == "tiny-qwen2") {
        base("Qwen2ForCausalLM", 42, 69, 2, 3, 1, 259);
        c.max_seq = 512;
        c.rope_theta = 1e6;
        c.qkv_bias = c.tied = true;
    } else if (name == "tiny-qwen3") {
        base("Qwen3ForCausalLM", 39, 61, 2, 4, 2, 259);
        c.head_dim = 16;  // q_dim 64 > hidden 39, as in Qwen3
        c.max_seq = 512;
        c.rope_theta = 1e6;
        c.qk_norm = true;
    } else if (name == "smollm2-135m") {
        base("LlamaForCausalLM", 576, 1536, 30, 9, 3, 49152);
        c.max_seq = 8192;
        c.rope_theta = 100000;
        c.tied = true;
    } else if (name == "qwen2.5-0.5b") {
        base("Qwen2ForCausalLM", 896, 4864, 24, 14, 2, 151936);
        c.max_seq = 32768;
        c.rope_theta = 1e6;
        c.norm_eps = 1e-6f;
        c.qkv_bias = c.tied = true;
    } else if (name == "tinyllama-1.1b") {
        base("LlamaForCausalLM", 2048, 5632, 22, 32, 4, 32000);
        c.max_seq = 2048;
    } else if (name == "llama-3.2-1b") {
        base("LlamaForCausalLM", 2048, 8192, 16, 32, 8, 128256);
        c.max_seq = 131072;
        c.rope_theta = 500000;
        c.scaling = llama3_scaling{32.0, 1.0, 4.0, 8192};
        c.tied = true;
    } else {
        std::string known;
        for (const auto& n : ladder_names()) known += (known.empty() ? "" : ", ") + n;
        tcq::fail("unknown model shape '", name, "' (known: ", known, ")");
    }
    c.bos_token_id = 1;
    c.eos_token_id = 2;
    validate(c, name);
    return c;
}

/// Writes a random-init checkpoint of `c` to `dir` (config.json + safetensors
/// as `type`, sharded past `max_shard_bytes`): weights N(0, 0.02²) as
/// transformers initializes them, biases N(0, 0.02²), norm gains 1. Tensor i
/// draws from mt19937_64(seed + i), so the files do not depend on sharding.
inline void random_checkpoint(const config& c, const std::filesystem::path& dir, std::uint64_t seed,
                              tcq::safetensors::dtype type = tcq::safetensors::dtype::BF16,
                              std::uint64_t max_shard_bytes = 5'000'000'000) {
    validate(c, "random_checkpoint");
    std::vector<tcq::safetensors::tensor_out> out;
    std::uint64_t i = 0;
    for (const auto& t : hf_layout(c)) {
        const std::uint64_t s = seed + i++;
        const bool gain = t.is_gain();
        out.push_back({t.name, t.shape, [s, gain](std::span<float> v) {
                           if (gain) {
                               std::fill(v.begin(), v.end(), 1.f);
                               return;
                           }
                           std::mt19937_64 g(s);
                           std::normal_distribution<float> n(0.f, 0.02f);
                           for (auto& x : v) x = n(g);
                       }});
    }
    tcq::safetensors::write_directory(dir, out, type, max_shard_bytes, {{"config.json", to_hf_config(c)}});
}

}  // namespace llama
