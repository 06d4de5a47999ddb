#pragma once
/// @file cmd_select.hpp
/// @brief `tcq select`: exact top-k of scores into BOOL masks.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "options.hpp"
#include "tcq/select/topk.hpp"
#include "tensors.hpp"

namespace tcq::cli {

/// Usage text of `tcq select`.
inline constexpr const char* select_usage = R"(usage: tcq select --scores S.st (--ratio R | --count K | --target-bpw X) [--scope global|matrix|row] -o M.st

Keeps the highest-scoring weights and writes one BOOL mask per score tensor,
under the same name and shape (true = keep in 16-bit). Ties are broken by
tensor name (sorted), then by flat index r*cols + c: lower first.

options:
  --scores FILE         scores (finite, >= 0), e.g. from `tcq score` (required)
  --ratio R             keep floor(R * N) weights of each scope unit
  --count K             keep K weights in each scope unit
  --target-bpw X        keep the most weights whose exact packed storage
                        averages at most X bits per weight; the format is given
                        by --bits B [--group G] [--act-order]
  --scope S             global (one top-k over all tensors, default), matrix
                        (each tensor), row (each row of each tensor)
  -o, --output FILE     output safetensors file of masks (required)
  --report FILE         write the JSON report there (default: stderr)
  --threads N           worker threads (default 0: all cores)
  --quiet               no progress lines
)";

/// The threshold of one scope unit as JSON (the last selected weight).
inline nlohmann::json threshold_json(const threshold& t, const std::vector<std::string>& names) {
    if (t.k == 0) return {{"k", 0}};
    return {{"k", t.k},
            {"score", t.score},
            {"tensor", names[static_cast<std::size_t>(t.matrix)]},
            {"flat_index", t.flat}};
}

/// Runs `tcq select`.
inline int run_select(const arguments& a) {
    const std::string s_path = a.required("scores");
    const std::string out_path = a.required("output");
    const select_scope scope = scope_of(a);
    const bool act_order = a.has("act-order");
    std::optional<grid_spec> format;
    if (a.has("bits")) {
        format = grid_of(a, true);
    } else if (a.has("group") || a.has("act-order")) {
        throw usage_error("options '--group' and '--act-order' describe the --target-bpw format and need '--bits B'");
    }
    if (format && !a.has("target-bpw")) throw usage_error("option '--bits' is only used with '--target-bpw'");
    const budget b = budget_of(a, -1.0, format ? &*format : nullptr, act_order);
    const exec_policy pol = policy_of(a);
    const progress say("select", a.has("quiet"));
    const auto t0 = std::chrono::steady_clock::now();

    const auto S = open_tensors(s_path, "scores");
    const auto names = S.names();  // sorted: the tie order across tensors
    require(!names.empty(), "scores file '", S.source(), "' holds no tensors");
    std::vector<float_matrix> scores;
    scores.reserve(names.size());
    for (const auto& n : names) scores.push_back(read_matrix(S, n, "scores"));
    std::vector<scored_matrix> mats;
    for (std::size_t i = 0; i < names.size(); ++i) mats.push_back({names[i], scores[i].view()});

    const selection sel = select_topk(mats, b, scope, pol);
    st::writer out;
    nlohmann::json tensors = nlohmann::json::array();
    for (std::size_t i = 0; i < names.size(); ++i) {
        out.add_mask(names[i], sel.masks[i]);
        tensors.push_back({{"name", names[i]},
                           {"rows", scores[i].rows},
                           {"cols", scores[i].cols},
                           {"kept", sel.masks[i].count()}});
    }
    out.write(out_path);
    say("kept ", sel.selected, " of ", sel.scored, " weights (", scope_name(scope), "); wrote ", out_path);

    nlohmann::json rep{{"command", "select"},
                       {"scores", s_path},
                       {"output", out_path},
                       {"budget", budget_json(b, scope)},
                       {"selected", sel.selected},
                       {"scored", sel.scored},
                       {"tensors", tensors},
                       {"seconds", seconds_since(t0)}};
    if (scope != select_scope::per_row) {
        nlohmann::json th = nlohmann::json::array();
        for (const auto& t : sel.thresholds) th.push_back(threshold_json(t, names));
        rep["thresholds"] = th;
    }
    if (sel.bits) {
        rep["bits"] = {{"weights", sel.bits->weights},
                       {"base_bits", sel.bits->base()},
                       {"kept_bits", sel.bits->kept},
                       {"total_bits", sel.bits->total()},
                       {"bits_per_weight", sel.bits->per_weight()}};
    }
    emit_report(rep, a.get("report"));
    return 0;
}

/// The `tcq select` subcommand.
inline command select_command() {
    return {"select", "top-k of scores into masks (global, per matrix or per row)", select_usage,
            join({common_specs(), budget_specs(),
                  {{"scores", true}, {"bits", true}, {"group", true}, {"act-order", false}}}),
            0, run_select};
}

}  // namespace tcq::cli
