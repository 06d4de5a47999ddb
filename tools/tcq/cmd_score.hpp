#pragma once
/// @file cmd_score.hpp
/// @brief `tcq score`: saliency scores (TaCQ and baselines) of every matrix.

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "options.hpp"
#include "tcq/gptq/inverse_hessian.hpp"
#include "tcq/gptq/solver.hpp"
#include "tcq/saliency/scores.hpp"
#include "tensors.hpp"

namespace tcq::cli {

/// Usage text of `tcq score`.
inline constexpr const char* score_usage = R"(usage: tcq score --method M --weights W.st [inputs] -o S.st

Scores every matrix x of W.st with method M and writes the scores (F32, the
weight's shape) under x. Methods and the inputs they read:
  tacq        S = A * |W - Q| * |W|     --contrast Q.st --grads G.st
  grad_delta  S = A * |W - Q|           --contrast Q.st --grads G.st
  fisher      S = G2 * (W - Q)^2        --contrast Q.st --grads-sq G2.st
  spqr        S = ((W - Q) / U_jj)^2    --contrast Q.st --hessians H.st
  magnitude   S = |W|
  wanda       S = |W| * sqrt(H_jj)      --hessians H.st
  random      uniform [0, 1)            (--seed S)
A = sum over samples of |grad|, G2 = sum of grad^2, Q = contrast (e.g. the
output of `tcq gptq`), U = upper Cholesky factor of (H + damping)^-1 as GPTQ
computes it. Inputs a method does not read are ignored (with a note).

options:
  --method M            tacq, grad_delta, fisher, spqr, magnitude, wanda, random (required)
  --weights FILE        original weights (required)
  --contrast FILE       contrast Q(W), tensors under the weights' names
  --grads FILE          accumulated |grad|, under the weights' names
  --grads-sq FILE       accumulated grad^2 (fisher)
  --hessians FILE       Hessians (spqr, wanda); --hessian-map FILE maps names
  --damp D              spqr: relative damping of U (default 0.01)
  --act-order           spqr: U of the act-order permuted H, as `gptq --act-order`
  --seed S              random: seed; matrix i (sorted names) uses S + i (default 0)
  -o, --output FILE     output safetensors file (required)
  --report FILE         write the JSON report there (default: stderr)
  --threads N           worker threads (default 0: all cores)
  --quiet               no progress lines
)";

/// Which optional input file feeds which score input.
struct score_files {
    std::optional<st::reader> contrast, grads, grads_sq;
    std::optional<hessian_source> hessians;
};

/// Opens the inputs `method` reads; inputs it does not read are noted and ignored.
inline score_files open_score_inputs(const arguments& a, score_method method, const std::vector<std::string>& names,
                                     const progress& say) {
    const score_needs nd = needs(method);
    const auto want = [&](const char* opt, bool needed) -> std::optional<std::string> {
        if (needed && !a.has(opt))
            throw usage_error("method '" + std::string(to_string(method)) + "' needs '--" + opt + " FILE'");
        if (!needed && a.has(opt)) say("ignoring --", opt, " (method ", to_string(method), " does not read it)");
        return needed ? a.get(opt) : std::nullopt;
    };
    score_files f;
    if (auto p = want("contrast", nd.Q)) f.contrast.emplace(open_tensors(*p, "contrast"));
    if (auto p = want("grads", nd.grad_abs)) f.grads.emplace(open_tensors(*p, "grads"));
    if (auto p = want("grads-sq", nd.grad_sq)) f.grads_sq.emplace(open_tensors(*p, "grads-sq"));
    if (auto p = want("hessians", nd.u_diag || nd.h_diag)) {
        f.hessians.emplace(*p, a.get("hessian-map"));
        f.hessians->check(names);
    } else if (a.has("hessian-map") && !f.hessians) {
        say("ignoring --hessian-map (method ", to_string(method), " does not read Hessians)");
    }
    return f;
}

/// U_jj of GPTQ's factor (original column order), as gptq_quantize computes it.
inline std::vector<float> u_diagonal(matrix_view<const float> H, const hinv_options& hinv, bool act_order,
                                     const std::string& name, const exec_policy& pol) {
    std::vector<index_t> perm;
    if (act_order) perm = detail::act_order_perm(H);
    const inverse_hessian U = factor_inverse_hessian(H, perm, hinv, name, pol);
    std::vector<float> d(static_cast<std::size_t>(H.cols()));
    for (index_t k = 0; k < H.cols(); ++k)
        d[static_cast<std::size_t>(perm.empty() ? k : perm[static_cast<std::size_t>(k)])] = U.view()(k, k);
    return d;
}

/// diag(H) before damping.
inline std::vector<float> h_diagonal(matrix_view<const float> H) {
    std::vector<float> d(static_cast<std::size_t>(H.cols()));
    for (index_t j = 0; j < H.cols(); ++j) d[static_cast<std::size_t>(j)] = H(j, j);
    return d;
}

/// Runs `tcq score`.
inline int run_score(const arguments& a) {
    const std::string mname = a.required("method");
    score_method method{};
    try {
        method = parse_score_method(mname);
    } catch (const tcq::error&) {
        throw usage_error("option '--method': '" + mname +
                          "' is not one of tacq, grad_delta, fisher, spqr, magnitude, wanda, random");
    }
    const std::string out_path = a.required("output");
    const std::string w_path = a.required("weights");
    const exec_policy pol = policy_of(a);
    hinv_options hinv;
    hinv.damping.relative = a.real("damp", 0.01, 0.0, max_real);
    const bool act_order = a.has("act-order");
    const auto seed = static_cast<std::uint64_t>(a.integer("seed", 0, 0, std::numeric_limits<std::int64_t>::max()));
    const progress say("score", a.has("quiet"));
    const auto t0 = std::chrono::steady_clock::now();

    const auto W = open_tensors(w_path, "weights");
    const auto names = weight_names(W);
    score_files in = open_score_inputs(a, method, names, say);

    st::writer out;
    nlohmann::json tensors = nlohmann::json::array();
    for (std::size_t i = 0; i < names.size(); ++i) {
        const std::string& name = names[i];
        const float_matrix w = read_matrix(W, name, "weights");
        float_matrix q, g, g2;
        std::vector<float> u_diag, h_diag;
        score_inputs si;
        si.W = w.view();
        si.seed = seed + i;
        if (in.contrast) si.Q = (q = read_matrix_like(*in.contrast, name, "contrast", w.rows, w.cols)).view();
        if (in.grads) si.grad_abs = (g = read_matrix_like(*in.grads, name, "grads", w.rows, w.cols)).view();
        if (in.grads_sq) si.grad_sq = (g2 = read_matrix_like(*in.grads_sq, name, "grads-sq", w.rows, w.cols)).view();
        if (in.hessians) {
            const float_matrix& h = in.hessians->get(name, w.cols);
            if (needs(method).u_diag) si.u_diag = u_diag = u_diagonal(h.view(), hinv, act_order, name, pol);
            if (needs(method).h_diag) si.h_diag = h_diag = h_diagonal(h.view());
            in.hessians->release(name, std::span(names).subspan(i + 1));
        }
        float_matrix s{w.rows, w.cols, std::vector<float>(w.data.size())};
        compute_scores(method, si, s.view(), pol);
        const float mx = s.data.empty() ? 0.f : *std::max_element(s.data.begin(), s.data.end());
        say("[", i + 1, "/", names.size(), "] ", name, " ", w.rows, "x", w.cols, ": max score ", mx);
        tensors.push_back({{"name", name}, {"rows", w.rows}, {"cols", w.cols}, {"max_score", mx}});
        out.add(name, s.data, {s.rows, s.cols});
    }
    out.write(out_path);
    say("wrote ", out_path);
    nlohmann::json rep{{"command", "score"}, {"method", to_string(method)}, {"weights", w_path},
                       {"output", out_path}, {"tensors", tensors},         {"seconds", seconds_since(t0)}};
    if (needs(method).u_diag) {
        rep["damping"] = hinv.damping.relative;
        rep["act_order"] = act_order;
    }
    emit_report(rep, a.get("report"));
    return 0;
}

/// The `tcq score` subcommand.
inline command score_command() {
    return {"score", "saliency scores (tacq, grad_delta, fisher, spqr, magnitude, wanda, random)", score_usage,
            join({common_specs(),
                  {{"method", true},
                   {"weights", true},
                   {"contrast", true},
                   {"grads", true},
                   {"grads-sq", true},
                   {"hessians", true},
                   {"hessian-map", true},
                   {"damp", true},
                   {"act-order", false},
                   {"seed", true}}}),
            0, run_score};
}

}  // namespace tcq::cli
