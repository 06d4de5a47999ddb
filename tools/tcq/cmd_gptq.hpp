#pragma once
/// @file cmd_gptq.hpp
/// @brief `tcq gptq`: GPTQ (optionally masked) of every matrix of a weights file.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "options.hpp"
#include "tcq/gptq/solver.hpp"
#include "tcq/select/budget.hpp"
#include "tensors.hpp"

namespace tcq::cli {

/// Usage text of `tcq gptq`.
inline std::string gptq_usage() {
    return usage_text({R"(usage: tcq gptq --weights W.st --hessians H.st [--mask M.st] --bits B [options] -o OUT.st

GPTQ-quantizes every matrix x of W.st with its Hessian (tensor x of H.st, or
the name given by --hessian-map). With --mask, weights whose mask bit is set
stay at full precision. OUT.st holds, per x: x (F32 dequantized weights, kept
weights at their final values), x.codes (U8), x.scales, x.zeros (F32, rows x
groups) and, under --act-order, x.g_idx (I32).

options:
)",
                       solve_inputs_help,
                       R"(  --mask FILE           masks (BOOL or U8 0/1) under the weight's name
  --bits B              base bit width, 1-8 (required)
)",
                       gptq_help,
                       R"(  --fp16-scale          round scales to fp16, as the packed format stores them
  -o, --output FILE     output safetensors file (required)
)",
                       common_help});
}

/// Report entry of one solved matrix.
inline nlohmann::json gptq_tensor_json(const std::string& name, const gptq_result& r, const std::string& hessian) {
    return {{"name", name},
            {"hessian", hessian},
            {"rows", r.q.rows()},
            {"cols", r.q.cols()},
            {"kept", r.q.kept.count()},
            {"loss", r.report.total_loss},
            {"relative_damping", r.report.hinv.relative_damping},
            {"absolute_damping", r.report.hinv.absolute_damping},
            {"retries", r.report.hinv.retries},
            {"dead_columns", r.report.hinv.dead_columns},
            {"seconds", r.report.seconds_total}};
}

/// The start of a solve: its files, --threads, progress lines, start time.
struct solve_start {
    solve_paths paths;
    exec_policy pol;
    progress say;
    std::chrono::steady_clock::time_point t0;
};

/// Reads the files then --threads (usage errors in that order) and starts the clock.
inline solve_start solve_start_of(const arguments& a, std::string command) {
    solve_paths paths = solve_paths_of(a);
    const exec_policy pol = policy_of(a);
    return {std::move(paths), pol, progress(std::move(command), a.has("quiet")), std::chrono::steady_clock::now()};
}

/// GPTQ of matrix `i` of a solve from weights `w` with mask `m`; frees the
/// Hessian once no later matrix shares it.
inline gptq_result solve_matrix(solve_inputs& in, std::size_t i, float_matrix w, const mask& m, gptq_options& opt,
                                const exec_policy& pol) {
    const std::string& name = in.names[i];
    const float_matrix& h = in.hessians.get(name, w.cols);
    opt.name = name;
    gptq_result r = gptq_quantize(std::move(w.data), w.rows, w.cols, h.view(), opt, m, pol);
    in.hessians.release(name, std::span(in.names).subspan(i + 1));
    return r;
}

/// As above, reading the weights and the mask (if a masks file is given).
inline gptq_result solve_matrix(solve_inputs& in, std::size_t i, gptq_options& opt, const exec_policy& pol) {
    const std::string& name = in.names[i];
    float_matrix w = read_matrix(in.weights, name, "weights");
    in.hessians.get(name, w.cols);  // checked before the mask
    const mask m = in.masks ? read_mask_for(*in.masks, name, w.rows, w.cols) : mask{};
    return solve_matrix(in, i, std::move(w), m, opt, pol);
}

/// Runs `tcq gptq`.
inline int run_gptq(const arguments& a) {
    gptq_options opt = gptq_options_of(a, false);
    opt.grid.fp16_scale = a.has("fp16-scale");
    const auto [paths, pol, say, t0] = solve_start_of(a, "gptq");

    auto in = open_solve_inputs(paths.weights, paths.hessians, a.get("hessian-map"), a.get("mask"));
    const auto& names = in.names;

    st::writer out;
    nlohmann::json tensors = nlohmann::json::array();
    std::vector<matrix_shape> shapes;
    std::vector<index_t> kept;
    double total_loss = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
        const std::string& name = names[i];
        const gptq_result r = solve_matrix(in, i, opt, pol);
        say("[", i + 1, "/", names.size(), "] ", name, " ", r.q.rows(), "x", r.q.cols(), ": loss ", r.report.total_loss,
            ", kept ", r.q.kept.count(), ", damping ", r.report.hinv.relative_damping, ", ", r.report.seconds_total, " s");
        add_quantized(out, name, r.q);
        tensors.push_back(gptq_tensor_json(name, r, in.hessians.name_for(name)));
        shapes.push_back({name, r.q.rows(), r.q.cols()});
        kept.push_back(r.q.kept.count());
        total_loss += r.report.total_loss;
    }
    out.write(paths.output);
    say("wrote ", paths.output);

    const storage_cost bits = storage_bits(shapes, kept, opt.grid, opt.act_order);
    index_t k = 0;
    for (index_t x : kept) k += x;
    nlohmann::json rep{{"command", "gptq"},
                       {"weights", paths.weights},
                       {"hessians", paths.hessians},
                       {"output", paths.output},
                       {"settings", gptq_settings_json(opt)},
                       {"tensors", tensors},
                       {"total_weights", bits.weights},
                       {"total_kept", k},
                       {"total_loss", total_loss},
                       {"packed_bits_per_weight", bits.per_weight()},
                       {"seconds", seconds_since(t0)}};
    if (const auto m = a.get("mask")) rep["mask"] = *m;
    emit_report(rep, a.get("report"));
    return 0;
}

/// The `tcq gptq` subcommand.
inline command gptq_command() {
    return {"gptq", "GPTQ (optionally masked) of every matrix of a safetensors file", gptq_usage(),
            join({common_specs(), gptq_specs(), {{"weights", true}, {"mask", true}, {"fp16-scale", false}}}), 0,
            run_gptq};
}

}  // namespace tcq::cli
