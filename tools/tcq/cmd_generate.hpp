#pragma once
/// @file cmd_generate.hpp
/// @brief `tcq generate`: greedy continuation of a prompt (KV-cached decode).

#include <iostream>
#include <string>

#include "command.hpp"
#include "llama/decode.hpp"
#include "model_options.hpp"

namespace tcq::cli {

inline const std::string generate_usage = usage_text({R"(usage: tcq generate --model PATH [--tcq FILE] [--prompt TEXT] [--steps N]

Greedy continuation of BOS + PROMPT: up to --steps tokens, stopping at a
special token (EOS) or a full context. Prints the prompt, then the new text.

options:
  --prompt TEXT         prompt (default: empty)
  --steps N             tokens to generate, at most (default 64)
  --threads N           worker threads for loading (default 0: all cores)
)", model_help, tcq_help});

/// Runs `tcq generate`.
inline int run_generate(const arguments& a) {
    const auto lm = load_model(a, policy_of(a));
    const auto prompt = a.get("prompt").value_or("");
    const auto ids = lm.codec.encode_sequence(prompt);
    const index_t room = llama::max_length(lm.model) - static_cast<index_t>(ids.size());
    require(room > 0, "--prompt: ", ids.size(), " tokens fill the model's context of ", llama::max_length(lm.model));
    const auto steps = std::min<index_t>(a.integer("steps", 64, 1, 1 << 20), room);
    llama::decoder dec(lm.model);
    auto out = llama::greedy(dec, ids, steps, [&](std::int32_t t) { return lm.codec.is_special(t); });
    std::cout << prompt << lm.codec.decode(out) << "\n";
    return 0;
}

/// The `tcq generate` subcommand.
inline command generate_command() {
    return {"generate", "greedy continuation of a prompt", generate_usage,
            join({model_specs(), {{"prompt", true}, {"steps", true}, {"threads", true}}}), 0, run_generate};
}

}  // namespace tcq::cli
