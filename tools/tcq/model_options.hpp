#pragma once
/// @file model_options.hpp
/// @brief What the model-level commands (quantize, compare, eval, generate)
/// share: loading a model (HF directory or llama2.c file, optionally with a
/// tcq file applied), its text codec, calibration draws, and the
/// quantization flags as pipeline options.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "args.hpp"
#include "llama/checkpoint.hpp"
#include "llama/codec.hpp"
#include "llama/tcq_file.hpp"
#include "options.hpp"
#include "tcq/io/calib_ids.hpp"
#include "tcq/pipeline/pipeline.hpp"

namespace tcq::cli {

/// --model PATH [--tcq FILE] [--tokenizer PATH]: the model and its codec.
inline std::vector<option_spec> model_specs() { return {{"model", true}, {"tcq", true}, {"tokenizer", true}}; }

inline constexpr std::string_view model_help =
    R"(  --model PATH          HF checkpoint directory (config.json + safetensors) or
                        llama2.c file (required)
  --tokenizer PATH      tokenizer.json or a directory holding it (default: the
                        model directory's; a 259-token model without one uses
                        the fixture's byte vocabulary)
)";

inline constexpr std::string_view tcq_help =
    R"(  --tcq FILE            replace the model's linear layers by this tcq file's
)";

/// A loaded model with the codec its text goes through.
struct loaded_model {
    llama::model model;
    llama::text_codec codec;
};

/// Loads --model (then --tcq, when given) and picks the codec.
inline loaded_model load_model(const arguments& a, const exec_policy& pol) {
    const std::string path = a.required("model");
    auto m = llama::load_model(path);
    if (const auto f = a.get("tcq")) llama::apply_tcq(m, packed_file::open(*f), pol, *f);
    std::optional<std::filesystem::path> tok;
    if (const auto t = a.get("tokenizer")) tok = *t;
    auto codec = llama::text_codec::for_model(path, m.cfg().vocab_size, tok, m.cfg().bos_token_id);
    return {std::move(m), std::move(codec)};
}

/// The --calib texts and --calib-ids files as id streams, one per file.
inline std::vector<std::vector<std::int32_t>> calibration_streams(const arguments& a, const loaded_model& lm) {
    std::vector<std::vector<std::int32_t>> out;
    for (const auto& f : a.all("calib")) out.push_back(lm.codec.encode(llama::read_text(f)));
    for (const auto& f : a.all("calib-ids")) {
        std::vector<std::int32_t> joined;
        for (auto& line : read_calib_ids(f, lm.model.cfg().vocab_size)) joined.insert(joined.end(), line.begin(), line.end());
        out.push_back(std::move(joined));
    }
    if (out.empty()) throw usage_error("give at least one --calib FILE or --calib-ids FILE");
    return out;
}

/// --seq-len T (default 256), at most the model's longest sequence.
inline index_t seq_len_of(const arguments& a, const llama::model& m) {
    const index_t t = a.integer("seq-len", std::min<index_t>(256, llama::max_length(m)), 2, llama::max_rope_positions);
    require(t <= llama::max_length(m), "--seq-len ", t, " exceeds the model's longest sequence ", llama::max_length(m));
    return t;
}

/// Draw `seed`: --samples windows of --seq-len tokens, an equal share per stream.
inline llama::token_batch calibration(const arguments& a, const loaded_model& lm,
                                      const std::vector<std::vector<std::int32_t>>& streams, std::uint64_t seed) {
    const auto n = a.integer("samples", 128, 1, 1 << 20);
    return llama::id_sample_mix(lm.codec.prefix(), streams, n, seed, seq_len_of(a, lm.model));
}

/// --seed S (default 0).
inline std::uint64_t seed_of(const arguments& a) {
    return static_cast<std::uint64_t>(a.integer("seed", 0, 0, (std::int64_t{1} << 62) - 1));
}

/// True-sequential GPTQ (the paper's setting) unless --whole-block.
inline bool true_sequential(const arguments& a) {
    a.at_most_one_of({"true-sequential", "whole-block"});
    return !a.has("whole-block");
}

/// The quantization flags of quantize and compare.
inline std::vector<option_spec> quant_specs() {
    return join({model_specs(),
                 {{"calib", true, 0, true}, {"calib-ids", true, 0, true}, {"samples", true}, {"seq-len", true},
                  {"seed", true}, {"group", true}, {"ratio", true}, {"target-bpw", true}, {"act-order", false},
                  {"rtn-contrast", false}, {"true-sequential", false}, {"whole-block", false},
                  {"kept-format", true}, {"hessian-per-sample", false}, {"fp32-scales", false},
                  {"threads", true}, {"quiet", false}}});
}

inline constexpr std::string_view quant_help =
    R"(  --calib FILE          calibration text; repeat to mix tasks (equal share each)
  --calib-ids FILE      pre-tokenized calibration ids (docs/tokenizers.md); one
                        stream per file, drawn from like a --calib text
  --samples N           calibration windows (default 128)
  --seq-len T           tokens per window, BOS included (default 256)
  --seed S              seed of the window offsets (default 0)
  --group G             columns per grid group (default: one grid per row)
  --ratio R             fraction of linear weights kept in 16-bit (default 0.0035)
  --target-bpw X        instead: the largest budget whose packed size is <= X bits/weight
  --act-order           GPTQ act-order
  --rtn-contrast        contrast Q(W) from RTN instead of sequential GPTQ (cheaper)
  --true-sequential     quantize each block in four sub-stages (q/k/v, o,
                        gate/up, down): the default, as the paper
  --whole-block         instead: capture each block once for all seven matrices
  --kept-format F       16-bit type of kept weights: fp16 (default) or bf16
  --hessian-per-sample  experiment: one Hessian update per sample (the reference's order)
  --fp32-scales         experiment: fp32 grid scales (not packable; compare only)
  --threads N           worker threads (default 0: all cores); results do not depend on it
  --quiet               no progress lines
)";

/// --kept-format fp16|bf16.
inline value_format kept_format_of(const arguments& a) {
    const auto f = a.get("kept-format").value_or("fp16");
    if (f == "fp16") return value_format::fp16;
    if (f == "bf16") return value_format::bf16;
    throw usage_error("option '--kept-format': '" + f + "' is not fp16 or bf16");
}

/// Pipeline options from the quantization flags, for `method` at `bits`.
inline pipeline_options quant_options(const arguments& a, quant_method method, int bits, const exec_policy& pol) {
    pipeline_options o;
    o.method = method;
    o.gptq.grid.bits = bits;
    o.gptq.grid.group_size = a.integer("group", 0, 0, max_extent);
    o.gptq.act_order = a.has("act-order");
    o.rtn_contrast = a.has("rtn-contrast");
    o.kept_format = kept_format_of(a);
    o.hessian_per_sample = a.has("hessian-per-sample");
    o.fp16_scales = !a.has("fp32-scales");
    o.pol = pol;
    o.outliers = budget_of(a, 0.0035, &o.gptq.grid, o.gptq.act_order);
    if (!a.has("quiet")) o.progress = [](const std::string& s) { std::fprintf(stderr, "[tcq] %s\n", s.c_str()); };
    return o;
}

/// --method NAME (default tacq).
inline quant_method method_of(const arguments& a) {
    try {
        return parse_quant_method(a.get("method").value_or("tacq"));
    } catch (const error& e) {
        throw usage_error(std::string("option '--method': ") + e.what());
    }
}

/// Splits NAME=FILE.
inline std::pair<std::string, std::string> task_of(const std::string& t) {
    const auto eq = t.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == t.size())
        throw usage_error("option '--task': expected NAME=FILE, got '" + t + "'");
    return {t.substr(0, eq), t.substr(eq + 1)};
}

}  // namespace tcq::cli
