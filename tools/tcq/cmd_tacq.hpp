#pragma once
/// @file cmd_tacq.hpp
/// @brief `tcq tacq`: the whole TaCQ method on per-layer W, H and Σ|grad|:
/// contrast GPTQ, TaCQ scores, one top-k, final masked GPTQ, pack.

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cmd_pack.hpp"
#include "command.hpp"
#include "options.hpp"
#include "tcq/pipeline/layer.hpp"
#include "tcq/saliency/scores.hpp"
#include "tcq/select/topk.hpp"
#include "tensors.hpp"

namespace tcq::cli {

/// Usage text of `tcq tacq`.
inline std::string tacq_usage() {
    return usage_text(
        {R"(usage: tcq tacq --weights W.st --hessians H.st --grads G.st --bits B [--ratio R] [options] -o model.tcq

The whole TaCQ method for per-layer problems, per matrix x of W.st:
  1. contrast Q(W): GPTQ at B bits, no 16-bit weights (or RTN: --rtn-contrast);
  2. scores S = A * |W - Q| * |W| with A = tensor x of G.st (sum of |grad|);
  3. one top-k over all matrices (ties: tensor name, then flat index);
  4. final GPTQ keeping the selected weights in 16-bit; 5. packed into model.tcq.
Scales are rounded to fp16 in both GPTQ passes, as the packed format stores them.

options:
)",
         solve_inputs_help,
         R"(  --grads FILE          accumulated |grad| per weight, under the weight's name
  --bits B              base bit width: 2, 3, 4 or 8 (required)
  --ratio R             keep floor(R * N) weights (default 0.0035)
  --count K             keep K weights instead
  --target-bpw X        keep the most weights that fit X bits per weight
  --scope S             global (default), matrix or row
)",
         gptq_help,
         R"(  --rtn-contrast        contrast from round-to-nearest instead of GPTQ
  --kept-format F       fp16 (default) or bf16 for the kept weights
  --calibration TEXT    free text recorded in the file
  --masks FILE          also write the selected masks (BOOL) there
  -o, --output FILE     output .tcq file (required)
)",
         common_help});
}

/// Runs `tcq tacq`.
inline int run_tacq(const arguments& a) {
    // The per-layer steps are the library's (pipeline/layer.hpp), as in the pipeline.
    layer_options lo;
    lo.gptq = gptq_options_of(a, true);
    lo.gptq.grid.fp16_scale = true;
    const select_scope scope = scope_of(a);
    const budget b = budget_of(a, 0.0035, &lo.gptq.grid, lo.gptq.act_order);
    lo.rtn_contrast = a.has("rtn-contrast");
    lo.kept_format = kept_format_of(a);
    // Not solve_start_of: --grads is read before --threads.
    const solve_paths paths = solve_paths_of(a);
    const std::string g_path = a.required("grads");
    const exec_policy pol = policy_of(a);
    const progress say("tacq", a.has("quiet"));
    const auto t0 = std::chrono::steady_clock::now();

    auto in = open_solve_inputs(paths.weights, paths.hessians, a.get("hessian-map"), std::nullopt);
    const auto& W = in.weights;
    const auto& names = in.names;
    auto& H = in.hessians;
    const auto G = open_tensors(g_path, "grads");
    for (const auto& n : names) require(G.contains(n), "grads file '", G.source(), "' has no tensor '", n, "'");

    // 1-2. contrast and scores, matrix by matrix.
    std::vector<float_matrix> weights, scores;
    nlohmann::json contrast = nlohmann::json::array();
    for (std::size_t i = 0; i < names.size(); ++i) {
        const std::string& name = names[i];
        float_matrix w = read_matrix(W, name, "weights");
        const float_matrix g = read_matrix_like(G, name, "grads", w.rows, w.cols);
        lo.gptq.name = name;
        // RTN reads no Hessian, so none is loaded for it.
        const gptq_result c = lo.rtn_contrast ? contrast_layer(w.view(), matrix_view<const float>{}, lo, pol)
                                           : contrast_layer(w.view(), H.get(name, w.cols).view(), lo, pol);
        const double loss = c.report.total_loss;  // 0 for RTN
        score_inputs si;
        si.W = w.view();
        si.Q = c.q.values_view();
        si.grad_abs = g.view();
        float_matrix s{w.rows, w.cols, std::vector<float>(w.data.size())};
        compute_scores(score_method::tacq, si, s.view(), pol);
        say("contrast [", i + 1, "/", names.size(), "] ", name, " ", w.rows, "x", w.cols,
            lo.rtn_contrast ? " (rtn)" : "", ": loss ", loss);
        contrast.push_back({{"name", name}, {"loss", loss}});
        weights.push_back(std::move(w));
        scores.push_back(std::move(s));
    }

    // 3. one top-k over all matrices, in sorted-name order.
    std::vector<scored_matrix> mats;
    for (std::size_t i = 0; i < names.size(); ++i) mats.push_back({names[i], scores[i].view()});
    const selection sel = select_topk(mats, b, scope, pol);
    scores.clear();
    say("selected ", sel.selected, " of ", sel.scored, " weights (", scope_name(scope), ")");
    if (const auto m = a.get("masks")) {
        st::writer mw;
        for (std::size_t i = 0; i < names.size(); ++i) mw.add_mask(names[i], sel.masks[i]);
        mw.write(*m);
        say("wrote ", *m);
    }

    // 4-5. final masked GPTQ and packing.
    std::vector<packed_matrix> packed;
    nlohmann::json tensors = nlohmann::json::array();
    storage_cost total;
    for (std::size_t i = 0; i < names.size(); ++i) {
        const std::string& name = names[i];
        float_matrix& w = weights[i];
        lo.gptq.name = name;
        const gptq_result r =
            final_layer(std::move(w.data), w.rows, w.cols, H.get(name, w.cols).view(), sel.masks[i], lo, pol);
        H.release(name, std::span(names).subspan(i + 1));  // once no later matrix shares it
        packed.push_back(pack(r.q, {lo.kept_format, true}, pol));
        const storage_cost bb = packed.back().bits_used();
        say("final [", i + 1, "/", names.size(), "] ", name, ": loss ", r.report.total_loss, ", kept ",
            r.q.kept.count(), ", ", bb.per_weight(), " bits/weight");
        nlohmann::json t = gptq_tensor_json(name, r, H.name_for(name));
        t["contrast_loss"] = contrast[i]["loss"];
        t["bits"] = breakdown_json(bb);
        tensors.push_back(std::move(t));
        total += bb;
    }
    const double fraction =
        sel.scored ? static_cast<double>(sel.selected) / static_cast<double>(sel.scored) : 0.0;
    write_packed(paths.output, metadata_of("tacq", lo.gptq, fraction, a.get("calibration").value_or("")), names, packed);
    say("wrote ", paths.output, ": ", total.per_weight(), " bits/weight");

    nlohmann::json rep{{"command", "tacq"},
                       {"weights", paths.weights},
                       {"hessians", paths.hessians},
                       {"grads", g_path},
                       {"output", paths.output},
                       {"settings", gptq_settings_json(lo.gptq)},
                       {"contrast", lo.rtn_contrast ? "rtn" : "gptq"},
                       {"budget", budget_json(b, scope)},
                       {"selected", sel.selected},
                       {"scored", sel.scored},
                       {"kept_format", to_string(lo.kept_format)},
                       {"tensors", tensors},
                       {"bits", breakdown_json(total)},
                       {"seconds", seconds_since(t0)}};
    emit_report(rep, a.get("report"));
    return 0;
}

/// The `tcq tacq` subcommand.
inline command tacq_command() {
    return {"tacq", "the whole TaCQ method on per-layer W, H and sum |grad|, packed", tacq_usage(),
            join({common_specs(), gptq_specs(), budget_specs(),
                  {{"weights", true},
                   {"grads", true},
                   {"rtn-contrast", false},
                   {"kept-format", true},
                   {"calibration", true},
                   {"masks", true}}}),
            0, run_tacq};
}

}  // namespace tcq::cli
