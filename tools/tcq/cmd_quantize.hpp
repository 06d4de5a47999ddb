#pragma once
/// @file cmd_quantize.hpp
/// @brief `tcq quantize`: a whole model (HF directory or llama2.c file)
/// quantized with TaCQ or a baseline into a tcq file, optionally also as a
/// dequantized HF checkpoint. Under mpirun it runs data-parallel
/// (docs/distributed.md); rank 0 writes, byte-identical for any rank count.

#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "command.hpp"
#include "model_options.hpp"
#include "tcq/io/atomic_file.hpp"
#include "tcq/pipeline/result_file.hpp"
#include "world.hpp"
#include "llama/adapter.hpp"

#ifdef TCQ_CLI_MPI
#include "tcq/mpi/data_parallel.hpp"
#include "tcq/mpi/guard.hpp"
#endif

namespace tcq::cli {

inline const std::string quantize_usage = usage_text({R"(usage: tcq quantize --model PATH --calib FILE... -o OUT.tcq [options]

Quantizes every linear layer of a model with --method (TaCQ by default) at
--bits, calibrated on --samples windows drawn at seeded offsets of the --calib
texts, and writes a tcq file whose matrices carry the checkpoint's tensor
names. Prints a per-layer table and the exact bits per weight. Under
`mpirun -np N tcq quantize ...` rank r calibrates on its contiguous chunks of
the windows; the file rank 0 writes is byte-identical for any N (same
--sample-chunk).

options:
  -o, --output FILE     tcq file to write (required; checked before any work)
  --method NAME         rtn, gptq, tacq, spqr, magnitude, fisher, grad_delta,
                        wanda, random (default tacq); NAME:answer (e.g.
                        tacq:answer) scores with the answer-span loss;
                        NAME@matrix, NAME@row split the budget evenly per
                        matrix or row; NAME+N (N = 1-3) re-scores on the
                        final pass's Q(W) and re-selects N times
  --bits B              base bit width: 2, 3, 4 or 8 (default 3)
  --save-hf DIR         also write the dequantized model as an HF checkpoint
  --save-dtype T        its dtype: bf16 (default), fp16 or fp32
  --sample-chunk N      windows per accumulation chunk, even (default 0: one
                        running sum; under mpirun 8); the result depends on it,
                        never on the rank count
)", model_help, quant_help});

namespace quantize_impl {

/// Checks the outputs can be written before any work.
inline void check_outputs(const arguments& a) {
    check_writable(a.required("output"), "--output");
    if (const auto d = a.get("save-hf")) check_output_dir(*d);
}

inline safetensors::dtype save_dtype_of(const arguments& a) {
    const auto t = a.get("save-dtype").value_or("bf16");
    if (t == "bf16") return safetensors::dtype::BF16;
    if (t == "fp16") return safetensors::dtype::F16;
    if (t == "fp32") return safetensors::dtype::F32;
    throw usage_error("option '--save-dtype': '" + t + "' is not bf16, fp16 or fp32");
}

/// Rows [s0, s1) of `all`.
inline llama::token_batch rows_of(const llama::token_batch& all, index_t s0, index_t s1) {
    llama::token_batch out(s1 - s0, all.length);
    for (index_t s = s0; s < s1; ++s) std::copy(all.row(s).begin(), all.row(s).end(), out.row(s - s0).begin());
    if (!all.scored.empty())
        out.scored.assign(all.scored.begin() + s0 * all.length, all.scored.begin() + s1 * all.length);
    return out;
}

inline void print_result(const pipeline_result& r, const storage_cost& written, int ranks) {
    std::printf("| layer | rows | cols | 16-bit weights | GPTQ loss | damping |\n|---|---|---|---|---|---|\n");
    for (std::size_t i = 0; i < r.layers.size(); ++i) {
        const quantized_matrix& q = r.layers[i];
        std::printf("| %s | %lld | %lld | %lld | %.4g | %.3g |\n", r.names[i].c_str(), static_cast<long long>(q.rows()),
                    static_cast<long long>(q.cols()), static_cast<long long>(q.kept.count()),
                    r.reports[i].total_loss, r.reports[i].hinv.relative_damping);
    }
    const storage_cost bits = r.bits();
    std::printf("\n%s at %d bits%s: %.4f bits/weight (codes+stats %.4f, 16-bit weights %.4f), %lld 16-bit weights\n",
                std::string(display_name(r.method)).c_str(), r.grid.bits,
                ranks > 1 ? (" on " + std::to_string(ranks) + " ranks").c_str() : "", written.per_weight(),
                bits.ratio(bits.base()), bits.ratio(bits.kept), static_cast<long long>(r.kept()));
    std::printf("time: gradients %.2fs, contrast %.2fs, scores %.2fs, selection %.2fs, final %.2fs, total %.2fs\n",
                r.seconds_gradients, r.seconds_contrast, r.seconds_scores, r.seconds_select, r.seconds_final,
                r.seconds_total);
}

}  // namespace quantize_impl

/// Runs `tcq quantize` (on every rank under MPI).
inline int run_quantize(const arguments& a) {
    const bool lead = world_rank() == 0;
    const auto pol = policy_of(a);
    const int bits = static_cast<int>(a.integer("bits", 3, 1, 8));
    if (!packed_bits_supported(bits))
        throw usage_error("option '--bits': the packed format stores 2, 3, 4 or 8 bits, not " + std::to_string(bits));
    if (a.has("fp32-scales")) throw usage_error("option '--fp32-scales' cannot be packed; use it with compare");
    if (a.has("tcq")) throw usage_error("option '--tcq' is for eval, generate and compare, not quantize");
    auto o = quant_options(a, method_of(a), bits, pol);
    o.cache = false;  // one method: gradients and contrast are freed before the final pass
    if (!lead) o.progress = nullptr;
    const auto save_type = quantize_impl::save_dtype_of(a);
    index_t chunk = a.integer("sample-chunk", world_size() > 1 ? 8 : 0, 0, 1 << 20);
    if (chunk % llama::seqs_per_chunk) throw usage_error("option '--sample-chunk' must be even");

    std::optional<loaded_model> lm;
    // An HF checkpoint stays mapped: the pipeline re-reads originals from it instead of copying them.
    std::optional<safetensors::directory> originals;
    llama::token_batch calib;
    std::string calib_text;
#ifdef TCQ_CLI_MPI
    std::optional<mpi::data_parallel> dp;
#endif
    auto load = [&] {
        if (lead) quantize_impl::check_outputs(a);  // before any work
        std::error_code ec;  // the directory is opened once, for loading and for the originals
        if (std::filesystem::is_directory(a.required("model"), ec)) {
            (void)llama::hf_config_path(a.required("model"));  // its errors come before the shards'
            originals.emplace(safetensors::directory::open(a.required("model")));
        }
        lm.emplace(load_model(a, pol, originals ? &*originals : nullptr));
        const auto streams = calibration_streams(a, *lm);
        auto all = calibration(a, *lm, streams, seed_of(a));
        calib_text = std::to_string(all.count) + " windows of " + std::to_string(all.length) + " tokens (" +
                     lm->codec.describe() + ") from";
        for (const auto& f : a.all("calib")) calib_text += " " + f;
        for (const auto& f : a.all("calib-ids")) calib_text += " " + f;
        calib_text += ", seed " + std::to_string(seed_of(a));
        if (o.loss == loss_tokens::answer) calib_text += ", answer-span loss";
        if (o.scope != select_scope::global) calib_text += o.scope == select_scope::per_matrix ? ", budget per matrix" : ", budget per row";
        if (o.reselect_rounds) calib_text += ", " + std::to_string(o.reselect_rounds) + " reselection rounds";
        if (chunk > 0) calib_text += ", chunks of " + std::to_string(chunk);
#ifdef TCQ_CLI_MPI
        if (world()) {
            dp.emplace(*world(), all.count, chunk);
            const auto [s0, s1] = dp->samples();
            calib = quantize_impl::rows_of(all, s0, s1);
            return;
        }
#endif
        calib = std::move(all);
    };
    pipeline_result r;
    auto quantize = [&] {
        o.sample_chunk = chunk;
#ifdef TCQ_CLI_MPI
        if (dp) o.dist = &*dp;
#endif
        llama::adapter ad(lm->model, calib.view(), pol, true_sequential(a), originals ? &*originals : nullptr,
                          calib.scored_view());
        pipeline pipe(ad);
        r = pipe.run(o);
    };
    storage_cost written;
    auto write = [&] {
        if (!lead) return;
        file_metadata meta;
        meta.calibration = calib_text;
        meta.extra.push_back({"model", a.required("model")});
        meta.extra.push_back({"rope_pairs", lm->model.cfg().rope == llama::rope_pairs::interleaved ? "interleaved" : "half"});
        written = write_result(r, meta, a.required("output"), pol);
        if (const auto d = a.get("save-hf")) {
            llama::save_options so;
            so.type = save_type;
            const std::filesystem::path src = a.required("model");
            std::error_code ec;
            if (std::filesystem::is_directory(src, ec))
                for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                                      "special_tokens_map.json"})
                    if (std::filesystem::is_regular_file(src / f, ec))
                        so.files.emplace_back(f, safetensors::directory::read_text(src / f));
            llama::save_hf(lm->model, *d, so);
            std::fprintf(stderr, "[tcq] wrote the dequantized model to %s\n", d->c_str());
        }
    };
#ifdef TCQ_CLI_MPI
    if (world()) {
        mpi::run_phase(*world(), "load", load);
        mpi::run_phase(*world(), "quantize", quantize);
        mpi::run_phase(*world(), "write", write);
    } else
#endif
    {
        load();
        quantize();
        write();
    }
    if (lead) quantize_impl::print_result(r, written, world_size());
    return 0;
}

/// The `tcq quantize` subcommand.
inline command quantize_command() {
    return {"quantize", "quantize a whole model (HF directory or llama2.c file) into a tcq file", quantize_usage,
            join({quant_specs(),
                  {{"output", true, 'o'}, {"method", true}, {"bits", true}, {"save-hf", true}, {"save-dtype", true},
                   {"sample-chunk", true}}}),
            0, run_quantize};
}

}  // namespace tcq::cli
