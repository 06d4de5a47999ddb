#pragma once
/// @file quant_cli.hpp
/// @brief The quantization flags and their meaning, shared by tcq-llama2c
/// (main.cpp) and its data-parallel twin tcq-llama2c-mpi (mpi_main.cpp).

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "data.hpp"
#include "tcq/pipeline/pipeline.hpp"

namespace l2c::quant_cli {

using cli::option;
using cli::parsed;
using cli::usage_error;

/// --threads N.
inline const option opt_threads{"threads", "N", "worker threads (default: all cores); results do not depend on it"};

/// The thread policy of --threads.
inline tcq::exec_policy policy(const parsed& p) { return tcq::par(static_cast<int>(p.integer("threads", 0, 0, 1024))); }

/// The --calib texts.
inline std::vector<std::string> calibration_texts(const parsed& p) {
    std::vector<std::string> texts;
    for (const auto& f : p.values("calib")) texts.push_back(l2c::read_text(f));
    return texts;
}

/// Calibration windows of draw `seed`: --samples windows of 256 tokens at
/// seeded random offsets, an equal share from every --calib text.
inline l2c::token_batch calibration(const parsed& p, const std::vector<std::string>& texts, std::uint64_t seed) {
    std::vector<std::string_view> views(texts.begin(), texts.end());
    const auto n = p.integer("samples", 128, 1, 1 << 20);
    return l2c::sample_mix(views, n, seed);
}

/// --seed S (default 0).
inline std::uint64_t single_seed(const parsed& p) { return static_cast<std::uint64_t>(p.integer("seed", 0, 0, (1ll << 62) - 1)); }

/// True-sequential GPTQ (the paper's setting) unless --whole-block.
inline bool true_sequential(const parsed& p) {
    if (p.flag("whole-block") && p.flag("true-sequential"))
        throw usage_error("give --true-sequential or --whole-block, not both");
    return !p.flag("whole-block");
}

/// --kept-format fp16|bf16 (default fp16).
inline tcq::value_format kept_format(const parsed& p) {
    const auto f = p.value_or("kept-format", "fp16");
    if (f == "fp16") return tcq::value_format::fp16;
    if (f == "bf16") return tcq::value_format::bf16;
    throw usage_error("--kept-format: '" + f + "' is not fp16 or bf16");
}

/// Pipeline options from the shared quantization flags.
inline tcq::pipeline_options quant_options(const parsed& p, tcq::quant_method m, int bits, const tcq::exec_policy& pol) {
    tcq::pipeline_options o;
    o.method = m;
    o.gptq.grid.bits = bits;
    o.gptq.grid.group_size = p.integer("group", 0, 0, 1 << 20);
    o.gptq.act_order = p.flag("act-order");
    o.rtn_contrast = p.flag("rtn-contrast");
    o.kept_format = kept_format(p);
    o.hessian_per_sample = p.flag("hessian-per-sample");
    o.fp16_scales = !p.flag("fp32-scales");
    o.pol = pol;
    if (p.value("ratio") && p.value("target-bpw")) throw usage_error("give --ratio or --target-bpw, not both");
    if (const auto t = p.value("target-bpw")) {
        o.outliers = tcq::budget::of_bits_per_weight(std::stod(*t), o.gptq.grid, o.gptq.act_order);
    } else {
        const double r = std::stod(p.value_or("ratio", "0.0035"));
        if (!(r >= 0 && r <= 1)) throw usage_error("--ratio must lie in [0, 1]");
        o.outliers = tcq::budget::of_ratio(r);
    }
    o.progress = [](const std::string& s) { std::fprintf(stderr, "[tcq] %s\n", s.c_str()); };
    return o;
}

/// Flags of every quantizing command.
inline const std::vector<option> quant_flags = {
    {"model", "FILE", "llama2.c checkpoint (fp32)", false, true},
    {"calib", "FILE", "calibration text; repeat to mix tasks (equal share each)", true, true},
    {"samples", "N", "calibration windows of 256 tokens (default 128)"},
    {"seed", "S", "seed of the calibration window offsets (default 0)"},
    {"group", "G", "group size (default 0: one grid per row)"},
    {"ratio", "R", "fraction of the linear weights kept in 16-bit (default 0.0035)"},
    {"target-bpw", "X", "instead of --ratio: the largest budget whose exact packed size is <= X bits/weight"},
    {"act-order", "", "GPTQ act-order"},
    {"rtn-contrast", "", "contrast Q(W) from RTN instead of sequential GPTQ (cheaper)"},
    {"true-sequential", "", "quantize each block in four sub-stages (q/k/v, o, w1/w3, w2): the default, as the paper"},
    {"whole-block", "", "instead: capture each block once and quantize its seven matrices on the same inputs"},
    {"kept-format", "F", "16-bit type of the kept weights: fp16 (default) or bf16 (as the paper stores them)"},
    opt_threads};

}  // namespace l2c::quant_cli
