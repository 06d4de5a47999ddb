#pragma once
/// @file options.hpp
/// @brief Options shared by several `tcq` subcommands: the GPTQ grid and
/// solver flags, budgets and scopes, threads, report and quiet.

#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "args.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/core/value_format.hpp"
#include "tcq/gptq/options.hpp"
#include "tcq/pack/blocks.hpp"
#include "tcq/select/budget.hpp"

namespace tcq::cli {

inline constexpr std::int64_t max_extent = std::numeric_limits<std::int32_t>::max();
inline constexpr double max_real = std::numeric_limits<double>::max();

/// Options every subcommand takes: -o/--output, --threads, --report, --quiet.
inline std::vector<option_spec> common_specs() {
    return {{"output", true, 'o'}, {"threads", true}, {"report", true}, {"quiet", false}};
}

/// The GPTQ flags: --bits --group --act-order --static-groups --damp --sym
/// --no-mse --block --torch-order, plus the Hessian inputs --hessians and --hessian-map.
inline std::vector<option_spec> gptq_specs() {
    return {{"bits", true},       {"group", true}, {"act-order", false}, {"static-groups", false},
            {"damp", true},       {"sym", false},  {"no-mse", false},    {"block", true},
            {"torch-order", false}, {"hessians", true},   {"hessian-map", true}};
}

/// Help lines of the solve inputs --weights, --hessians, --hessian-map.
inline constexpr std::string_view solve_inputs_help =
    R"(  --weights FILE        weights (F32/F16/BF16/F64 matrices)
  --hessians FILE       Hessians, cols x cols, under the weight's name
  --hessian-map FILE    JSON object {"weight_name": "hessian_name"}
)";

/// Help lines of the GPTQ flags --group to --block (--bits is per command).
inline constexpr std::string_view gptq_help =
    R"(  --group G             columns per grid group (default: one grid per row)
  --act-order           quantize columns by decreasing diag(H)
  --static-groups       fit all group grids up front (needs --group)
  --damp D              relative damping (default 0.01)
  --sym                 symmetric grid (default asymmetric)
  --no-mse              min-max grid, no MSE scale search
  --torch-order         U = chol_upper(H^-1) in the reference's exact order (slower; for
                        element-by-element comparison with the PyTorch implementation)
  --block N             lazy-batch block size (default 128)
)";

/// Help lines of --report, --threads, --quiet.
inline constexpr std::string_view common_help =
    R"(  --report FILE         write the JSON report there (default: stderr)
  --threads N           worker threads (default 0: all cores)
  --quiet               no progress lines
)";

/// Concatenates usage text pieces.
inline std::string usage_text(std::initializer_list<std::string_view> parts) {
    std::string s;
    for (const auto p : parts) s += p;
    return s;
}

/// The budget flags: --ratio, --count, --target-bpw, --scope.
inline std::vector<option_spec> budget_specs() {
    return {{"ratio", true}, {"count", true}, {"target-bpw", true}, {"scope", true}};
}

/// Concatenates option lists.
inline std::vector<option_spec> join(std::initializer_list<std::vector<option_spec>> lists) {
    std::vector<option_spec> out;
    for (const auto& l : lists) out.insert(out.end(), l.begin(), l.end());
    return out;
}

/// --threads N (0 = all cores; the default).
inline exec_policy policy_of(const arguments& a) {
    return par(static_cast<int>(a.integer("threads", 0, 0, 4096)));
}

/// The files of a GPTQ solve, all required.
struct solve_paths {
    std::string output;    ///< -o/--output
    std::string weights;   ///< --weights
    std::string hessians;  ///< --hessians
};

/// Reads -o/--output, --weights, --hessians, in that order.
inline solve_paths solve_paths_of(const arguments& a) {
    return {a.required("output"), a.required("weights"), a.required("hessians")};
}

/// The grid from --bits (required), --group, --sym, --no-mse. With
/// `packable`, --bits must be one the packed format stores (2, 3, 4, 8).
inline grid_spec grid_of(const arguments& a, bool packable) {
    grid_spec g;
    g.bits = static_cast<int>(a.required_integer("bits", 1, 8));
    if (packable && !packed_bits_supported(g.bits))
        throw usage_error("option '--bits': the packed format stores 2, 3, 4 or 8 bits, not " +
                          std::to_string(g.bits));
    g.group_size = a.integer("group", 0, 0, max_extent);
    g.symmetric = a.has("sym");
    g.mse.enabled = !a.has("no-mse");
    return g;
}

/// GPTQ options from the flags; defaults are the reference's (asymmetric,
/// MSE search, damping 0.01, block 128, per-row grid).
inline gptq_options gptq_options_of(const arguments& a, bool packable) {
    gptq_options o;
    o.grid = grid_of(a, packable);
    o.act_order = a.has("act-order");
    o.static_groups = a.has("static-groups");
    if (o.static_groups && o.grid.group_size == 0)
        throw usage_error("option '--static-groups' needs '--group G' with G > 0");
    o.hinv.damping.relative = a.real("damp", 0.01, 0.0, max_real);
    o.block_size = a.integer("block", 128, 1, max_extent);
    // U = chol_upper(H⁻¹) in the reference's exact operation order (slower):
    // for element-by-element comparisons with the PyTorch implementation.
    if (a.has("torch-order")) o.hinv.method = hinv_method::torch;
    o.keep_losses = false;
    return o;
}

/// The GPTQ settings as JSON, for reports.
inline nlohmann::json gptq_settings_json(const gptq_options& o) {
    return {{"bits", o.grid.bits},
            {"group_size", o.grid.group_size},
            {"symmetric", o.grid.symmetric},
            {"mse", o.grid.mse.enabled},
            {"fp16_scale", o.grid.fp16_scale},
            {"act_order", o.act_order},
            {"static_groups", o.static_groups},
            {"damping", o.hinv.damping.relative},
            {"torch_order", o.hinv.method == hinv_method::torch},
            {"block_size", o.block_size}};
}

/// --kept-format fp16|bf16.
inline value_format kept_format_of(const arguments& a) {
    const auto f = a.get("kept-format").value_or("fp16");
    if (f == "fp16") return value_format::fp16;
    if (f == "bf16") return value_format::bf16;
    throw usage_error("option '--kept-format': '" + f + "' is not fp16 or bf16");
}

/// --scope global|matrix|row (default global).
inline select_scope scope_of(const arguments& a) {
    const std::string s = a.get("scope").value_or("global");
    if (s == "global") return select_scope::global;
    if (s == "matrix") return select_scope::per_matrix;
    if (s == "row") return select_scope::per_row;
    throw usage_error("option '--scope': '" + s + "' is not one of global, matrix, row");
}

/// Name of a scope as the CLI spells it.
inline const char* scope_name(select_scope s) {
    switch (s) {
        case select_scope::global: return "global";
        case select_scope::per_matrix: return "matrix";
        case select_scope::per_row: return "row";
    }
    return "?";
}

/// The budget from exactly one of --ratio R, --count K, --target-bpw X;
/// `fallback_ratio` when none is given (negative: one is required). A
/// bits-per-weight target is measured on the packed format at `format`.
inline budget budget_of(const arguments& a, double fallback_ratio, const grid_spec* format, bool act_order) {
    a.at_most_one_of({"ratio", "count", "target-bpw"});
    if (a.has("ratio")) return budget::of_ratio(a.real("ratio", 0, 0.0, 1.0));
    if (a.has("count"))
        return budget::of_count(a.integer("count", 0, 0, std::numeric_limits<std::int64_t>::max()));
    if (a.has("target-bpw")) {
        if (!format) throw usage_error("option '--target-bpw' needs '--bits B' (and --group/--act-order if used)");
        return budget::of_bits_per_weight(a.real("target-bpw", 0, 0.0, max_real), *format, act_order);
    }
    if (fallback_ratio < 0) throw usage_error("one of '--ratio R', '--count K' or '--target-bpw X' is required");
    return budget::of_ratio(fallback_ratio);
}

/// The budget as JSON, for reports.
inline nlohmann::json budget_json(const budget& b, select_scope scope) {
    nlohmann::json j{{"scope", scope_name(scope)}};
    switch (b.type()) {
        case budget::kind::ratio: j["ratio"] = b.ratio(); break;
        case budget::kind::count: j["count"] = b.count(); break;
        case budget::kind::bits_per_weight: j["target_bits_per_weight"] = b.target_bits(); break;
    }
    return j;
}

}  // namespace tcq::cli
