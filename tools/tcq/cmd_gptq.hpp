#pragma once
/// @file cmd_gptq.hpp
/// @brief `tcq gptq`: GPTQ (optionally masked) of every matrix of a weights file.

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
inline constexpr const char* gptq_usage = R"(usage: tcq gptq --weights W.st --hessians H.st [--mask M.st] --bits B [options] -o OUT.st

GPTQ-quantizes every matrix x of W.st with its Hessian (tensor x of H.st, or
the name given by --hessian-map). With --mask, weights whose mask bit is set
stay at full precision. OUT.st holds, per x: x (F32 dequantized weights, kept
weights at their final values), x.codes (U8), x.scales, x.zeros (F32, rows x
groups) and, under --act-order, x.g_idx (I32).

options:
  --weights FILE        weights (F32/F16/BF16/F64 matrices)
  --hessians FILE       Hessians, cols x cols, under the weight's name
  --hessian-map FILE    JSON object {"weight_name": "hessian_name"}
  --mask FILE           masks (BOOL or U8 0/1) under the weight's name
  --bits B              base bit width, 1-8 (required)
  --group G             columns per grid group (default: one grid per row)
  --act-order           quantize columns by decreasing diag(H)
  --static-groups       fit all group grids up front (needs --group)
  --damp D              relative damping (default 0.01)
  --sym                 symmetric grid (default asymmetric)
  --no-mse              min-max grid, no MSE scale search
  --torch-order         U = chol_upper(H^-1) in the reference's exact order (slower; for
                        element-by-element comparison with the PyTorch implementation)
  --block N             lazy-batch block size (default 128)
  --fp16-scale          round scales to fp16, as the packed format stores them
  -o, --output FILE     output safetensors file (required)
  --report FILE         write the JSON report there (default: stderr)
  --threads N           worker threads (default 0: all cores)
  --quiet               no progress lines
)";

/// Report entry of one solved matrix.
inline nlohmann::json gptq_tensor_json(const std::string& name, const gptq_result& r, const std::string& hessian) {
    return {{"name", name},
            {"hessian", hessian},
            {"rows", r.q.rows},
            {"cols", r.q.cols},
            {"kept", r.q.kept.count()},
            {"loss", r.report.total_loss},
            {"relative_damping", r.report.relative_damping},
            {"absolute_damping", r.report.absolute_damping},
            {"retries", r.report.retries},
            {"dead_columns", r.report.dead_columns},
            {"seconds", r.report.seconds_total}};
}

/// Runs `tcq gptq`.
inline int run_gptq(const arguments& a) {
    gptq_options opt = gptq_options_of(a, false);
    opt.grid.fp16_scale = a.has("fp16-scale");
    const std::string out_path = a.required("output");
    const std::string w_path = a.required("weights");
    const std::string h_path = a.required("hessians");
    const exec_policy pol = policy_of(a);
    const progress say("gptq", a.has("quiet"));
    const auto t0 = std::chrono::steady_clock::now();

    auto in = open_solve_inputs(w_path, h_path, a.get("hessian-map"), a.get("mask"));
    const auto& W = in.weights;
    const auto& names = in.names;
    auto& H = in.hessians;
    const auto& M = in.masks;

    st::writer out;
    nlohmann::json tensors = nlohmann::json::array();
    std::vector<matrix_shape> shapes;
    std::vector<index_t> kept;
    double total_loss = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
        const std::string& name = names[i];
        float_matrix w = read_matrix(W, name, "weights");
        const float_matrix& h = H.get(name, w.cols);
        const mask m = M ? read_mask_for(*M, name, w.rows, w.cols) : mask{};
        opt.name = name;
        const gptq_result r = gptq_quantize(std::move(w.data), w.rows, w.cols, h.view(), opt, m, pol);
        H.release(name, std::span(names).subspan(i + 1));
        say("[", i + 1, "/", names.size(), "] ", name, " ", r.q.rows, "x", r.q.cols, ": loss ", r.report.total_loss,
            ", kept ", r.q.kept.count(), ", damping ", r.report.relative_damping, ", ", r.report.seconds_total, " s");
        add_quantized(out, name, r.q);
        tensors.push_back(gptq_tensor_json(name, r, H.name_for(name)));
        shapes.push_back({name, r.q.rows, r.q.cols});
        kept.push_back(r.q.kept.count());
        total_loss += r.report.total_loss;
    }
    out.write(out_path);
    say("wrote ", out_path);

    const bits_report bits = storage_bits(shapes, kept, opt.grid, opt.act_order);
    index_t k = 0;
    for (index_t x : kept) k += x;
    nlohmann::json rep{{"command", "gptq"},
                       {"weights", w_path},
                       {"hessians", h_path},
                       {"output", out_path},
                       {"settings", gptq_settings_json(opt)},
                       {"tensors", tensors},
                       {"total_weights", bits.weights},
                       {"total_kept", k},
                       {"total_loss", total_loss},
                       {"packed_bits_per_weight", bits.bits_per_weight()},
                       {"seconds", seconds_since(t0)}};
    if (const auto m = a.get("mask")) rep["mask"] = *m;
    emit_report(rep, a.get("report"));
    return 0;
}

/// The `tcq gptq` subcommand.
inline command gptq_command() {
    return {"gptq", "GPTQ (optionally masked) of every matrix of a safetensors file", gptq_usage,
            join({common_specs(), gptq_specs(), {{"weights", true}, {"mask", true}, {"fp16-scale", false}}}), 0,
            run_gptq};
}

}  // namespace tcq::cli
