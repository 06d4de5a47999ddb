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
#include "llama/answer_spans.hpp"
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

/// Loads --model (then --tcq, when given) and picks the codec; `files`: the
/// model directory's safetensors, if the caller has them open.
inline loaded_model load_model(const arguments& a, const exec_policy& pol,
                               const safetensors::directory* files = nullptr) {
    const std::string path = a.required("model");
    auto m = llama::load_model(path, files);
    if (const auto f = a.get("tcq")) llama::apply_tcq(m, packed_file::open(*f), *f, pol);
    std::optional<std::filesystem::path> tok;
    if (const auto t = a.get("tokenizer")) tok = *t;
    auto codec = llama::text_codec::for_model(path, m.cfg().vocab_size, tok, m.cfg().bos_token_id);
    return {std::move(m), std::move(codec)};
}

/// C escapes \n, \t, \r and \\ of a marker typed on the command line.
inline std::string unescape(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\' || i + 1 == s.size()) {
            out += s[i];
            continue;
        }
        const char c = s[++i];
        out += c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
    }
    return out;
}

/// --answer-after M [--answer-until U]: the answer-span rule, if given.
inline std::optional<llama::answer_rule> answer_rule_of(const arguments& a) {
    const auto after = a.get("answer-after");
    if (!after) {
        if (a.has("answer-until")) throw usage_error("option '--answer-until' needs --answer-after");
        return std::nullopt;
    }
    llama::answer_rule r{unescape(*after), unescape(a.get("answer-until").value_or("\\n"))};
    if (r.after.empty() || r.until.empty()) throw usage_error("options '--answer-after' and '--answer-until' must not be empty");
    return r;
}

/// The --calib texts and --calib-ids files as id streams, one per file. A
/// *.jsonl --calib holds prompt/completion records; with --answer-after the
/// texts are marked by that rule (answer_spans.hpp).
inline std::vector<llama::id_stream> calibration_streams(const arguments& a, const loaded_model& lm) {
    std::vector<llama::id_stream> out;
    const auto rule = answer_rule_of(a);
    for (const auto& f : a.all("calib")) {
        const auto text = llama::read_text(f);
        if (std::filesystem::path(f).extension() == ".jsonl") {
            if (rule) throw usage_error("--calib " + f + " is JSONL (its completions are the answers); drop --answer-after");
            out.push_back(llama::encode_segments(lm.codec, llama::prompt_completion_segments(text, f)));
        } else if (rule) {
            out.push_back(llama::encode_segments(lm.codec, llama::answer_segments(text, *rule, f)));
        } else {
            out.push_back({lm.codec.encode(text), {}});
        }
    }
    for (const auto& f : a.all("calib-ids")) {
        llama::id_stream joined;
        for (auto& line : read_calib_ids(f, lm.model.cfg().vocab_size)) joined.ids.insert(joined.ids.end(), line.begin(), line.end());
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
/// With answer spans, a draw in which no window holds an answer token is an error.
inline llama::token_batch calibration(const arguments& a, const loaded_model& lm,
                                      const std::vector<llama::id_stream>& streams, std::uint64_t seed) {
    const auto n = a.integer("samples", 128, 1, 1 << 20);
    auto b = llama::id_sample_mix(lm.codec.prefix(), std::span<const llama::id_stream>(streams), n, seed,
                                  seq_len_of(a, lm.model));
    require(b.scored.empty() || llama::scored_targets(b) > 0, "calibration seed ", seed, ": none of the ", b.count,
            " windows holds an answer token");
    return b;
}

/// A method with the targets its gradients score, where its top-k applies
/// and how often it is re-selected: NAME[:answer][@matrix|@row][+N].
/// ":answer": the answer-span loss (needs marked calibration data);
/// "@matrix", "@row": the 16-bit budget split evenly per matrix or per row
/// instead of one global top-k; "+N": N rounds of iterative selection.
struct method_spec {
    quant_method method = quant_method::tacq;
    loss_tokens loss = loss_tokens::all;
    select_scope scope = select_scope::global;
    int reselect = 0;
    [[nodiscard]] std::string key() const {
        return std::string(to_string(method)) + (loss == loss_tokens::answer ? ":answer" : "") +
               (scope == select_scope::per_matrix ? "@matrix" : scope == select_scope::per_row ? "@row" : "") +
               (reselect ? "+" + std::to_string(reselect) : "");
    }
    [[nodiscard]] std::string display() const {
        std::string d(display_name(method));
        if (loss == loss_tokens::answer) d += " (answer)";
        if (scope == select_scope::per_matrix) d += " (per matrix)";
        if (scope == select_scope::per_row) d += " (per row)";
        if (reselect) d += " (reselect " + std::to_string(reselect) + ")";
        return d;
    }
};

/// Parses NAME[:answer][@matrix|@row][+N]; `option` names the flag in errors.
inline method_spec parse_method_spec(std::string_view s, std::string_view option) {
    method_spec m;
    auto bad = [&](const std::string& why) {
        return usage_error("option '--" + std::string(option) + "': '" + std::string(s) + "': " + why);
    };
    std::string_view rest = s;
    if (const auto plus = rest.find('+'); plus != std::string_view::npos) {
        const auto n = rest.substr(plus + 1);
        if (n.size() != 1 || n[0] < '1' || n[0] > '3') throw bad("the reselection suffix is +1, +2 or +3");
        m.reselect = n[0] - '0';
        rest = rest.substr(0, plus);
    }
    if (const auto at = rest.find('@'); at != std::string_view::npos) {
        const auto sc = rest.substr(at + 1);
        if (sc == "matrix")
            m.scope = select_scope::per_matrix;
        else if (sc == "row")
            m.scope = select_scope::per_row;
        else
            throw bad("the scope suffix is @matrix or @row");
        rest = rest.substr(0, at);
    }
    const auto colon = rest.find(':');
    const auto name = rest.substr(0, colon);
    try {
        m.method = parse_quant_method(name);
    } catch (const error& e) {
        throw usage_error("option '--" + std::string(option) + "': " + e.what());
    }
    const auto sm = score_of(m.method);
    if (m.scope != select_scope::global && !sm) throw bad(std::string(name) + " keeps no 16-bit weights, so a scope changes nothing");
    if (m.reselect && !(sm && needs(*sm).Q)) throw bad(std::string(name) + " is not scored on Q(W), so re-scoring changes nothing");
    if (colon == std::string_view::npos) return m;
    if (rest.substr(colon + 1) != "answer") throw bad("the loss suffix is :answer");
    if (!sm || !(needs(*sm).grad_abs || needs(*sm).grad_sq))
        throw bad(std::string(name) + " uses no gradients, so ':answer' would change nothing");
    m.loss = loss_tokens::answer;
    return m;
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
                  {"answer-after", true}, {"answer-until", true},
                  {"threads", true}, {"quiet", false}}});
}

inline constexpr std::string_view quant_help =
    R"(  --calib FILE          calibration text; repeat to mix tasks (equal share each)
  --calib-ids FILE      pre-tokenized calibration ids (docs/tokenizers.md); one
                        stream per file, drawn from like a --calib text
  --answer-after M      answer-span calibration: an answer starts after each M
                        (e.g. '=' for a+b=c, 'A:' for gsm8k) and runs through
                        the next --answer-until U (default '\n'); for
                        METHOD:answer. A *.jsonl --calib holds
                        {"prompt", "completion"} records instead
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

/// Pipeline options from the quantization flags, for `method` at `bits`.
inline pipeline_options quant_options(const arguments& a, const method_spec& method, int bits, const exec_policy& pol) {
    pipeline_options o;
    o.method = method.method;
    o.loss = method.loss;
    o.scope = method.scope;
    o.reselect_rounds = method.reselect;
    o.gptq.grid.bits = bits;
    o.gptq.grid.group_size = a.integer("group", 0, 0, max_extent);
    o.gptq.act_order = a.has("act-order");
    o.rtn_contrast = a.has("rtn-contrast");
    o.kept_format = kept_format_of(a);
    o.hessian_per_sample = a.has("hessian-per-sample");
    o.fp16_scales = !a.has("fp32-scales");
    o.pol = pol;
    o.kept = budget_of(a, 0.0035, &o.gptq.grid, o.gptq.act_order);
    if (!a.has("quiet")) o.progress = [](const std::string& s) { std::fprintf(stderr, "[tcq] %s\n", s.c_str()); };
    return o;
}

/// --method NAME[:answer] (default tacq).
inline method_spec method_of(const arguments& a) { return parse_method_spec(a.get("method").value_or("tacq"), "method"); }

/// Splits NAME=FILE.
inline std::pair<std::string, std::string> task_of(const std::string& t) {
    const auto eq = t.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == t.size())
        throw usage_error("option '--task': expected NAME=FILE, got '" + t + "'");
    return {t.substr(0, eq), t.substr(eq + 1)};
}

}  // namespace tcq::cli
