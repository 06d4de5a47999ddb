// libFuzzer target: arbitrary bytes → the HF config.json parser and the
// safetensors shard-index parser (first byte picks which).
// Contract: each either throws tcq::error or returns a value that passes its
// own validation (a config that validates and round-trips through
// to_hf_config; an index whose every shard name is a plain file name). Any
// other exception, sanitizer report or trap is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "llama/config.hpp"
#include "tcq/io/safetensors_dir.hpp"

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        if (data[0] & 1) {
            const auto c = llama::parse_hf_config(text, "config.json");
            llama::validate(c, "fuzz");
            check(c.n_heads % c.n_kv_heads == 0 && c.head_dim % 2 == 0);
            const auto back = llama::parse_hf_config(llama::to_hf_config(c), "round trip");
            check(back.dim == c.dim && back.n_layers == c.n_layers && back.vocab_size == c.vocab_size &&
                  back.qkv_bias == c.qkv_bias && back.qk_norm == c.qk_norm && back.tied == c.tied);
        } else {
            const auto idx = tcq::safetensors::parse_shard_index(text, "model.safetensors.index.json");
            check(!idx.weight_map.empty());
            for (const auto& f : idx.shards()) check(!f.empty() && f.find('/') == std::string::npos && f != "..");
        }
    } catch (const tcq::error&) {
    }
    return 0;
}
