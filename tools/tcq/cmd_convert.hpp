#pragma once
/// @file cmd_convert.hpp
/// @brief `tcq convert`: a llama2.c checkpoint, or a random-init model of a
/// named shape, written as a Hugging Face checkpoint directory.

#include <algorithm>
#include <filesystem>
#include <string>

#include "command.hpp"
#include "llama/checkpoint.hpp"
#include "llama/ladder.hpp"
#include "llama/text.hpp"
#include "options.hpp"
#include "tcq/io/atomic_file.hpp"
#include "tensors.hpp"

namespace tcq::cli {

/// Usage text of `tcq convert`.
inline std::string convert_usage() {
    std::string names;
    for (const auto& n : llama::ladder_names()) names += " " + n;
    return R"(usage: tcq convert (--from-llama2c FILE | --random SHAPE) --to-hf DIR [options]

Writes a Hugging Face checkpoint directory (config.json + model.safetensors,
or shards model-XXXXX-of-YYYYY.safetensors + model.safetensors.index.json
past --max-shard-mb). DIR must not exist or be empty; nothing is left there
on failure. A llama2.c model's q/k rows are permuted to HF's rotate-half RoPE;
with the 259-token byte vocabulary (the fixture's) a tokenizer.json and
tokenizer_config.json of that vocabulary are written too, unless --copy gives one.

options:
  --from-llama2c FILE   llama2.c version-0 checkpoint
  --random SHAPE        random-init weights (N(0, 0.02), norms 1) of a shape:
                       )" + names + R"(
  --seed S              seed of --random (default 0)
  --to-hf DIR           output directory (required)
  --dtype T             bf16, f16 or f32 (default: f32 for --from-llama2c, bf16 for --random)
  --max-shard-mb N      shard size limit in MB (default 5000, as transformers)
  --max-shard-kb N      shard size limit in KB instead (small test checkpoints)
  --copy FILE           copy FILE into DIR (e.g. tokenizer.json); repeatable
  --quiet               no progress lines
)";
}

/// Runs `tcq convert`.
inline int run_convert(const arguments& a) {
    namespace st = tcq::safetensors;
    const bool from = a.has("from-llama2c"), rnd = a.has("random");
    if (from == rnd) throw usage_error("give exactly one of --from-llama2c FILE and --random SHAPE");
    const std::filesystem::path out = a.required("to-hf");
    const progress say("convert", a.has("quiet"));
    st::dtype type = from ? st::dtype::F32 : st::dtype::BF16;
    if (const auto t = a.get("dtype")) {
        if (*t == "bf16") type = st::dtype::BF16;
        else if (*t == "f16") type = st::dtype::F16;
        else if (*t == "f32") type = st::dtype::F32;
        else throw usage_error("option '--dtype': expected bf16, f16 or f32, not '" + *t + "'");
    }
    if (a.has("max-shard-mb") && a.has("max-shard-kb")) throw usage_error("give --max-shard-mb or --max-shard-kb, not both");
    const auto shard = a.has("max-shard-kb")
                           ? static_cast<std::uint64_t>(a.integer("max-shard-kb", 0, 1, 1 << 30)) * 1000
                           : static_cast<std::uint64_t>(a.integer("max-shard-mb", 5000, 1, 1 << 30)) * 1'000'000;
    std::vector<std::pair<std::string, std::string>> files;
    for (const auto& f : a.all("copy"))
        files.emplace_back(std::filesystem::path(f).filename().string(), st::directory::read_text(f));
    // Fail on an unwritable or non-empty output before any work.
    check_output_dir(out);
    if (from) {
        const auto path = a.required("from-llama2c");
        const auto m = llama::load_llama2c(path);
        say("read ", path, ": ", m.n_params(), " parameters");
        const bool has_tok = std::any_of(files.begin(), files.end(), [](const auto& f) { return f.first == "tokenizer.json"; });
        if (!has_tok && m.cfg().vocab_size == llama::byte_vocab_size) {
            for (auto& f : llama::byte_tokenizer_files(m.cfg().max_seq)) files.push_back(std::move(f));
            say("wrote the byte vocabulary's tokenizer.json (vocab ", llama::byte_vocab_size, ")");
        } else if (!has_tok) {
            say("note: no --copy tokenizer.json given; the export has no tokenizer");
        }
        llama::save_hf(m, out, {type, shard, files});
    } else {
        if (!files.empty()) throw usage_error("--copy is for --from-llama2c");
        const auto c = llama::ladder_config(a.required("random"));
        llama::random_checkpoint(c, out, static_cast<std::uint64_t>(a.integer("seed", 0, 0, max_extent)), type, shard);
    }
    say("wrote ", out.string());
    return 0;
}

/// The `tcq convert` subcommand.
inline command convert_command() {
    return {"convert", "llama2.c or random-init model -> Hugging Face checkpoint", convert_usage(),
            {{"from-llama2c", true}, {"random", true}, {"seed", true}, {"to-hf", true}, {"dtype", true},
             {"max-shard-mb", true}, {"max-shard-kb", true}, {"copy", true, 0, true}, {"quiet", false}},
            0, run_convert};
}

}  // namespace tcq::cli
