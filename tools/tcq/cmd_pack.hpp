#pragma once
/// @file cmd_pack.hpp
/// @brief `tcq pack`, `tcq inspect`, `tcq unpack`: the packed .tcq container.

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cmd_gptq.hpp"
#include "command.hpp"
#include "options.hpp"
#include "tcq/io/tcq_file.hpp"
#include "tcq/pack/packed_matrix.hpp"
#include "tensors.hpp"

namespace tcq::cli {

/// Usage text of `tcq pack`.
inline std::string pack_usage() {
    return usage_text({R"(usage: tcq pack --weights W.st --hessians H.st [--mask M.st] --bits B [options] -o model.tcq

Runs GPTQ on every matrix x of W.st (as `tcq gptq`, with scales rounded to
fp16) keeping the masked weights in 16-bit, and writes the packed container.

options:
)",
                       solve_inputs_help,
                       R"(  --mask FILE           masks (BOOL or U8 0/1) under the weight's name
  --bits B              base bit width: 2, 3, 4 or 8 (required)
)",
                       gptq_help,
                       R"(  --kept-format F       fp16 (default) or bf16 for the kept weights
  --method NAME         method recorded in the file (default: gptq)
  --calibration TEXT    free text recorded in the file
  -o, --output FILE     output .tcq file (required)
)",
                       common_help});
}

/// Usage text of `tcq inspect`.
inline constexpr const char* inspect_usage = R"(usage: tcq inspect model.tcq [--json] [--report FILE]

Validates a .tcq file (structure and checksums) and prints its metadata, the
exact bits-per-weight breakdown and per-tensor statistics on stdout.

options:
  --json                print JSON instead of a table
  --report FILE         also write the JSON there
)";

/// Usage text of `tcq unpack`.
inline constexpr const char* unpack_usage = R"(usage: tcq unpack model.tcq -o W.st [--masks M.st]

Writes, per matrix x of the .tcq file: x (F32 dequantized weights, kept
weights at their 16-bit values), x.codes (U8, 0 at kept weights), x.scales,
x.zeros (F32, rows x groups) and, under act-order, x.g_idx (I32).

options:
  -o, --output FILE     output safetensors file (required)
  --masks FILE          also write the kept masks (BOOL, under the names)
  --quiet               no progress lines
)";

/// A bit breakdown as JSON (bits, and per weight).
inline nlohmann::json breakdown_json(const storage_cost& b) {
    return {{"weights", b.weights},
            {"codes", b.codes},
            {"stats", b.stats},
            {"kept", b.kept},
            {"g_idx", b.g_idx},
            {"total", b.total()},
            {"bits_per_weight", b.per_weight()},
            {"codes_per_weight", b.ratio(b.codes)},
            {"stats_per_weight", b.ratio(b.stats)},
            {"kept_per_weight", b.ratio(b.kept)},
            {"g_idx_per_weight", b.ratio(b.g_idx)}};
}

/// File metadata shared by `pack` and `tacq`: settings recorded as extras.
inline file_metadata metadata_of(std::string method, const gptq_options& opt, double budget_fraction,
                                 std::string calibration) {
    file_metadata m;
    m.method = std::move(method);
    m.bits = opt.grid.bits;
    m.budget = budget_fraction;
    m.calibration = std::move(calibration);
    m.extra = {{"group_size", std::to_string(opt.grid.group_size)},
               {"act_order", opt.act_order ? "true" : "false"},
               {"static_groups", opt.static_groups ? "true" : "false"},
               {"symmetric", opt.grid.symmetric ? "true" : "false"},
               {"mse", opt.grid.mse.enabled ? "true" : "false"},
               {"damping", format_real(opt.hinv.damping.relative)}};
    return m;
}

/// Writes named packed matrices into a .tcq file.
inline void write_packed(const std::string& path, const file_metadata& meta, const std::vector<std::string>& names,
                         const std::vector<packed_matrix>& mats) {
    file_writer w(meta);
    for (std::size_t i = 0; i < names.size(); ++i) w.add(names[i], mats[i].view());
    w.write(path);
}

/// Runs `tcq pack`.
inline int run_pack(const arguments& a) {
    gptq_options opt = gptq_options_of(a, true);
    opt.grid.fp16_scale = true;  // the format stores fp16 scales: fit them so
    const value_format fmt = kept_format_of(a);
    const auto [paths, pol, say, t0] = solve_start_of(a, "pack");

    auto in = open_solve_inputs(paths.weights, paths.hessians, a.get("hessian-map"), a.get("mask"));
    const auto& names = in.names;

    std::vector<packed_matrix> packed;
    nlohmann::json tensors = nlohmann::json::array();
    storage_cost total;
    index_t kept = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
        const std::string& name = names[i];
        const gptq_result r = solve_matrix(in, i, opt, pol);
        packed.push_back(pack(r.q, {fmt, true}, pol));
        const storage_cost b = packed.back().bits_used();
        say("[", i + 1, "/", names.size(), "] ", name, " ", r.q.rows(), "x", r.q.cols(), ": loss ", r.report.total_loss,
            ", kept ", r.q.kept.count(), ", ", b.per_weight(), " bits/weight");
        nlohmann::json t = gptq_tensor_json(name, r, in.hessians.name_for(name));
        t["bits"] = breakdown_json(b);
        tensors.push_back(std::move(t));
        total += b;
        kept += r.q.kept.count();
    }
    const double fraction = total.ratio(static_cast<std::uint64_t>(kept));
    write_packed(paths.output,
                 metadata_of(a.get("method").value_or("gptq"), opt, fraction, a.get("calibration").value_or("")), names,
                 packed);
    say("wrote ", paths.output, ": ", total.per_weight(), " bits/weight");
    nlohmann::json rep{{"command", "pack"},          {"weights", paths.weights},
                       {"hessians", paths.hessians}, {"output", paths.output},
                       {"settings", gptq_settings_json(opt)},
                       {"kept_format", to_string(fmt)},
                       {"tensors", tensors},       {"total_kept", kept},
                       {"bits", breakdown_json(total)},
                       {"seconds", seconds_since(t0)}};
    if (const auto m = a.get("mask")) rep["mask"] = *m;
    emit_report(rep, a.get("report"));
    return 0;
}

/// Per-tensor statistics of a packed matrix, for `inspect`.
inline nlohmann::json packed_tensor_json(const std::string& name, const packed_view& v) {
    const packed_info& i = v.info();
    float smin = 0.f, smax = 0.f;
    for (index_t r = 0; r < i.rows; ++r)
        for (index_t g = 0; g < i.groups(); ++g) {
            const float s = v.scale(r, g);
            smin = (r == 0 && g == 0) ? s : std::min(smin, s);
            smax = (r == 0 && g == 0) ? s : std::max(smax, s);
        }
    const index_t n = i.rows * i.cols;
    return {{"name", name},
            {"rows", i.rows},
            {"cols", i.cols},
            {"bits", i.bits},
            {"group_size", i.group_size},
            {"act_order", i.act_order},
            {"kept_format", to_string(i.kept_format)},
            {"kept", i.kept},
            {"kept_fraction", n ? static_cast<double>(i.kept) / static_cast<double>(n) : 0.0},
            {"scale_min", smin},
            {"scale_max", smax},
            {"bits_exact", breakdown_json(packed_bits(i))},
            {"bytes_stored", stored_bits(i).total() / 8}};
}

/// Prints the human-readable `inspect` table.
inline void print_inspect(const std::string& path, const packed_file& f, const nlohmann::json& rep) {
    const file_metadata& m = f.metadata();
    std::printf("file: %s (%zu bytes, tcq format v%u, written by tcq %s)\n", path.c_str(), f.bytes().size(),
                static_cast<unsigned>(file_format_version), m.library_version.c_str());
    std::printf("method: %s  bits: %d  budget: %.6g  calibration: %s\n", m.method.c_str(), m.bits, m.budget,
                m.calibration.empty() ? "-" : m.calibration.c_str());
    for (const auto& [k, v] : m.extra) std::printf("  %s = %s\n", k.c_str(), v.c_str());
    std::printf("%-40s %12s %4s %6s %3s %10s %9s %8s %8s %8s %8s %8s\n", "tensor", "shape", "bits", "group", "ao",
                "kept", "%kept", "bpw", "codes", "stats", "kept", "g_idx");
    for (const auto& t : rep["tensors"]) {
        const auto& b = t["bits_exact"];
        const std::string shape = std::to_string(t["rows"].get<index_t>()) + "x" + std::to_string(t["cols"].get<index_t>());
        std::printf("%-40s %12s %4d %6lld %3s %10lld %9.4f %8.4f %8.4f %8.4f %8.4f %8.4f\n",
                    t["name"].get<std::string>().c_str(), shape.c_str(), t["bits"].get<int>(),
                    static_cast<long long>(t["group_size"].get<index_t>()), t["act_order"].get<bool>() ? "y" : "n",
                    static_cast<long long>(t["kept"].get<index_t>()), 100.0 * t["kept_fraction"].get<double>(),
                    b["bits_per_weight"].get<double>(), b["codes_per_weight"].get<double>(),
                    b["stats_per_weight"].get<double>(), b["kept_per_weight"].get<double>(),
                    b["g_idx_per_weight"].get<double>());
    }
    const auto& b = rep["bits"];
    std::printf("total: %lld weights, %lld kept (%.4f%%), %.6f bits/weight = codes %.6f + stats %.6f + kept %.6f "
                "+ g_idx %.6f\n",
                static_cast<long long>(b["weights"].get<index_t>()), static_cast<long long>(rep["total_kept"].get<index_t>()),
                100.0 * rep["kept_fraction"].get<double>(), b["bits_per_weight"].get<double>(),
                b["codes_per_weight"].get<double>(), b["stats_per_weight"].get<double>(),
                b["kept_per_weight"].get<double>(), b["g_idx_per_weight"].get<double>());
}

/// The single positional file argument of inspect/unpack.
inline std::string input_file(const arguments& a) {
    if (a.positionals().empty()) throw usage_error("missing the .tcq file argument");
    return a.positionals().front();
}

/// Runs `tcq inspect`.
inline int run_inspect(const arguments& a) {
    const std::string path = input_file(a);
    const packed_file f = packed_file::open(path);
    const file_metadata& m = f.metadata();
    nlohmann::json extra = nlohmann::json::object();
    for (const auto& [k, v] : m.extra) extra[k] = v;
    nlohmann::json tensors = nlohmann::json::array();
    storage_cost total;
    index_t kept = 0;
    for (index_t i = 0; i < f.size(); ++i) {
        tensors.push_back(packed_tensor_json(f.name(i), f.matrix(i)));
        total += packed_bits(f.matrix(i).info());
        kept += f.matrix(i).info().kept;
    }
    nlohmann::json rep{{"command", "inspect"},
                       {"file", path},
                       {"file_bytes", f.bytes().size()},
                       {"format_version", file_format_version},
                       {"metadata",
                        {{"method", m.method},
                         {"bits", m.bits},
                         {"budget", m.budget},
                         {"calibration", m.calibration},
                         {"library_version", m.library_version},
                         {"extra", extra}}},
                       {"tensors", tensors},
                       {"total_kept", kept},
                       {"kept_fraction", total.ratio(static_cast<std::uint64_t>(kept))},
                       {"bits", breakdown_json(total)}};
    if (a.has("json"))
        std::cout << rep.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    else
        print_inspect(path, f, rep);
    std::cout.flush();
    if (const auto r = a.get("report")) emit_report(rep, r);
    return 0;
}

/// Runs `tcq unpack`.
inline int run_unpack(const arguments& a) {
    const std::string path = input_file(a);
    const std::string out_path = a.required("output");
    const progress say("unpack", a.has("quiet"));
    const packed_file f = packed_file::open(path);
    st::writer out, masks;
    for (index_t i = 0; i < f.size(); ++i) {
        const quantized_matrix q = unpack(f.matrix(i));
        add_quantized(out, f.name(i), q);
        if (a.has("masks")) masks.add_mask(f.name(i), q.kept);
        say("[", i + 1, "/", f.size(), "] ", f.name(i), " ", q.rows(), "x", q.cols(), ", kept ", q.kept.count());
    }
    out.write(out_path);
    say("wrote ", out_path);
    if (const auto m = a.get("masks")) {
        masks.write(*m);
        say("wrote ", *m);
    }
    return 0;
}

/// The `tcq pack` subcommand.
inline command pack_command() {
    return {"pack", "GPTQ with a mask, packed into a .tcq file", pack_usage(),
            join({common_specs(), gptq_specs(),
                  {{"weights", true}, {"mask", true}, {"kept-format", true}, {"method", true}, {"calibration", true}}}),
            0, run_pack};
}

/// The `tcq inspect` subcommand.
inline command inspect_command() {
    return {"inspect", "validate a .tcq file; bits breakdown and per-tensor statistics", inspect_usage,
            {{"json", false}, {"report", true}}, 1, run_inspect};
}

/// The `tcq unpack` subcommand.
inline command unpack_command() {
    return {"unpack", "a .tcq file back to safetensors", unpack_usage,
            {{"output", true, 'o'}, {"masks", true}, {"quiet", false}}, 1, run_unpack};
}

}  // namespace tcq::cli
