#pragma once
/// @file pipeline.hpp
/// @brief The TaCQ pipeline on any model (docs/algorithms.md §1), and its baselines at
/// the same budget:
///  1. per-sample gradients at the fp32 weights → Σ|g| (and Σg² for Fisher);
///  2. contrast Q(W): sequential GPTQ at the base bits, no 16-bit weights
///     (or RTN, a cheaper option), also giving U_jj (SpQR) and diag H (Wanda);
///     the GPTQ method's result is this pass, so it is computed once for both;
///  3. scores, then one exact top-k under the budget (global by default);
///  4. the final sequential GPTQ pass with the mask; 16-bit weights keep
///     their error-updated values, rounded to the stored 16-bit format, so
///     the model left behind is exactly the one a tcq file holds.
/// Gradients and contrasts are cached, so comparing methods on one model
/// recomputes neither. The engine supplies a model_adapter.

#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "tcq/core/chunk_tree.hpp"
#include "tcq/core/progress.hpp"
#include "tcq/gptq/hessian.hpp"
#include "tcq/gptq/options.hpp"
#include "tcq/gptq/report.hpp"
#include "tcq/gptq/solver.hpp"
#include "tcq/pack/kept.hpp"
#include "tcq/pipeline/distribution.hpp"
#include "tcq/pipeline/layer.hpp"
#include "tcq/pipeline/method.hpp"
#include "tcq/pipeline/model_adapter.hpp"
#include "tcq/quant/element.hpp"
#include "tcq/quant/rtn.hpp"
#include "tcq/saliency/accumulator.hpp"
#include "tcq/saliency/scores.hpp"
#include "tcq/select/budget.hpp"
#include "tcq/select/streaming.hpp"

namespace tcq {

/// What one pipeline run does: the per-layer settings (gptq, kept_format,
/// rtn_contrast; the pipeline sets gptq.grid.fp16_scale from fp16_scales, on
/// by default so the result packs exactly), plus the run's own.
struct pipeline_options : layer_options {
    /// Method to run (TaCQ by default).
    quant_method method = quant_method::tacq;
    /// How many weights are kept in 16-bit (ignored by rtn and gptq).
    budget kept = budget::tacq_default();
    /// Where the top-k applies: one global k (TaCQ), per matrix or per row.
    select_scope scope = select_scope::global;
    /// Accumulate Hessians in fp64.
    bool hessian_fp64 = false;
    /// Update each Hessian once per calibration sample, as the reference's
    /// sequential loop does, instead of once per ~32 MB of stacked samples
    /// (same formula, other rounding; slower for small samples).
    bool hessian_per_sample = false;
    /// false: keep fp32 grid scales (an experiment; such a result cannot be
    /// packed, so it is only for evaluation). The default rounds them to fp16.
    bool fp16_scales = true;
    /// Targets the gradients' per-sample loss averages over (answer: the
    /// adapter's answer spans; GPTQ's Hessians use every token either way).
    loss_tokens loss = loss_tokens::all;
    /// Iterative selection (beyond the paper, docs/algorithms.md §1): after
    /// the final pass, re-score with that pass's Q(W) instead of the
    /// contrast's, re-select under the same budget and re-run the final pass,
    /// this many times (0: the paper's single selection).
    int reselect_rounds = 0;
    /// Seed of the `random` baseline.
    std::uint64_t seed = 0;
    /// Keep this run's gradients and contrast for a later run (compare runs
    /// several methods). false: free them once the selection no longer needs
    /// them, before the final pass (with reselection rounds, after them), so
    /// a single-method run never holds them beside the final pass.
    bool cache = true;
    /// Threads for every phase; results do not depend on it.
    exec_policy pol = par();
    /// Samples per accumulation chunk: gradient sums and Hessians are then
    /// fixed trees over chunk partials (docs/algorithms.md, "Chunked
    /// accumulation"), the same for any split of the samples over processes.
    /// 0: one running sum in sample order (the reference's order; also what
    /// any chunk ≥ the sample count gives).
    index_t sample_chunk = 0;
    /// Set when this process holds only some of the samples (needs
    /// sample_chunk > 0); null: the model_adapter holds every sample.
    distribution* dist = nullptr;
    /// Progress lines ("contrast: stage 3/6"), e.g. to stderr; may be empty.
    std::function<void(const std::string&)> progress;
};

/// Outcome of one run: every layer quantized, plus the report.
struct pipeline_result {
    quant_method method = quant_method::tacq;  ///< method that ran
    grid_spec grid{};                          ///< base grid (fp16 scales)
    value_format kept_format = value_format::fp16;  ///< 16-bit type the kept values are rounded to
    bool act_order = false;                    ///< GPTQ act-order was on
    std::vector<std::string> names;            ///< layer names
    std::vector<quantized_matrix> layers;   ///< in model_adapter::linears() order
    /// The report of each layer's final GPTQ solve (loss, damping, dead
    /// columns…), same order; default (all zero) for rtn. Shapes and kept
    /// weights are read from `layers`, so no per-layer summary repeats them.
    std::vector<gptq_report> reports;
    /// Per reselection round: the fraction of the previous mask selected again.
    std::vector<double> reselect_overlap;
    /// Seconds per phase; cached phases report the time they took when computed.
    double seconds_gradients = 0;
    double seconds_contrast = 0;  ///< contrast Q(W) pass (cached per grid)
    double seconds_scores = 0;    ///< saliency scores
    double seconds_select = 0;    ///< top-k selection
    double seconds_final = 0;     ///< final (masked) quantization pass
    double seconds_total = 0;     ///< this call, wall clock

    /// 16-bit weights in all layers (computed from the layers' masks; an empty mask counts 0).
    [[nodiscard]] index_t kept() const {
        index_t n = 0;
        for (const auto& q : layers) n += q.kept.count();
        return n;
    }
    /// Exact packed storage of all layers (core/storage_cost.hpp), from their
    /// shapes and kept counts at the base grid.
    [[nodiscard]] storage_cost bits() const {
        storage_cost r;
        for (const auto& q : layers)
            r += matrix_cost(q.rows(), q.cols(), grid.bits, grid.groups(q.cols()), q.kept.count(), act_order);
        return r;
    }
};

/// Runs methods on one model; caches gradients and contrasts between runs.
/// A template only so that its code compiles where it is used: including
/// this header instantiates nothing. `pipeline` is the instantiation to use.
template <class Model = model_adapter>
class basic_pipeline {
public:
    /// Snapshots the model's fp32 linear weights (restored before each pass),
    /// unless the adapter reloads them itself (model_adapter::reloads_originals).
    explicit basic_pipeline(Model& model) : model_(model), layers_(model.linears()) {
        require(!layers_.empty(), "pipeline: the model has no linear layers");
        const bool snapshot = !model.reloads_originals();
        if (snapshot) original_.reserve(layers_.size());
        for (const auto& l : layers_) {
            require_finite(l.weight, l.name);
            require(l.stage >= 0 && l.stage < model.stages(), "pipeline: layer '", l.name, "' has stage ", l.stage,
                    " outside [0, ", model.stages(), ")");
            if (!snapshot) continue;
            std::vector<float> w(static_cast<std::size_t>(l.weight.size()));
            for (index_t r = 0; r < l.weight.rows(); ++r)
                std::copy(l.weight.row(r), l.weight.row(r) + l.weight.cols(), w.begin() + r * l.weight.cols());
            original_.push_back(std::move(w));
        }
    }

    /// The linear layers, in order.
    [[nodiscard]] const std::vector<linear_layer>& layers() const { return layers_; }

    /// Runs one method. On return the model's linear weights hold the final
    /// (dequantized, with 16-bit weights) values, ready for evaluation.
    pipeline_result run(const pipeline_options& opt_in) {
        const auto t0 = clock::now();
        pipeline_options opt = opt_in;
        opt.gptq.grid.fp16_scale = opt.fp16_scales;
        opt.gptq.validate();
        require(opt.sample_chunk >= 0, "pipeline: sample_chunk ", opt.sample_chunk, " is negative");
        require(!opt.dist || opt.sample_chunk > 0, "pipeline: a distributed run needs sample_chunk > 0");
        pipeline_result res;
        res.method = opt.method;
        res.grid = opt.gptq.grid;
        res.kept_format = opt.kept_format;
        res.act_order = opt.gptq.act_order;
        for (const auto& l : layers_) res.names.push_back(l.name);

        std::vector<mask> masks;
        const auto sm = score_of(opt.method);
        require(opt.reselect_rounds >= 0 && (opt.reselect_rounds == 0 || (sm && needs(*sm).Q)), "pipeline: ",
                opt.reselect_rounds, " reselection rounds for method '", to_string(opt.method),
                "' (only methods scored on Q(W) can be re-scored)");
        const grads* g = nullptr;
        const contrast* c = nullptr;
        if (sm) {
            const score_needs nd = needs(*sm);
            if (nd.grad_abs || nd.grad_sq) {
                g = &gradients(opt, stats_for(nd));
                res.seconds_gradients = g->seconds;
            }
            if (nd.Q || nd.u_diag || nd.h_diag) {
                c = &contrast_for(opt);
                res.seconds_contrast = c->seconds;
            }
            masks = select(*sm, g, c, opt, res);
        }
        auto t = clock::now();
        if (opt.method == quant_method::rtn) {
            restore();
            for (std::size_t i = 0; i < layers_.size(); ++i) {
                // Layer i still holds its original: only layers before it were written back.
                res.layers.push_back(rtn_quantize(layers_[i].weight, opt.gptq.grid, {}, opt.pol));
                write_back(i, res.layers.back());
            }
        } else if (opt.method == quant_method::gptq) {
            // Plain GPTQ is exactly the GPTQ contrast pass: take it from the cache.
            auto o = opt;
            o.rtn_contrast = false;
            const auto& c = contrast_for(o);
            for (std::size_t i = 0; i < layers_.size(); ++i) {
                res.layers.push_back(c.pass[i].q);
                auto& q = res.layers.back();
                q.values.resize(q.codes.size());
                dequantize_codes(q, q.values);
                res.reports.push_back(c.pass[i].report);
                write_back(i, q);
            }
            res.seconds_final = c.seconds;  // what this run costs alone
        } else {
            if (!opt.cache && opt.reselect_rounds == 0) {
                g = nullptr;
                c = nullptr;
                clear_caches();
            }
            auto pass = sequential_gptq(opt, masks.empty() ? nullptr : &masks, "final", nullptr);
            // Iterative selection: re-score on this pass's Q(W), re-select, re-run the pass.
            for (int round = 1; round <= opt.reselect_rounds; ++round) {
                const contrast rc = requantized(std::move(pass), c, opt.gptq.grid);  // pass is rerun below
                auto next = select(*sm, g, &rc, opt, res);
                index_t same = 0, before = 0;
                for (std::size_t i = 0; i < masks.size(); ++i) {
                    before += masks[i].count();
                    for (std::size_t w = 0; w < masks[i].words().size(); ++w)
                        same += std::popcount(masks[i].words()[w] & next[i].words()[w]);
                }
                res.reselect_overlap.push_back(before ? static_cast<double>(same) / static_cast<double>(before) : 1.0);
                say(opt, "reselection round " + std::to_string(round) + ": " + std::to_string(same) + " of " +
                             std::to_string(before) + " weights kept again");
                masks = std::move(next);
                pass = sequential_gptq(opt, &masks, "final (round " + std::to_string(round + 1) + ")", nullptr);
            }
            if (!opt.cache) clear_caches();
            for (auto& r : pass) {
                res.layers.push_back(std::move(r.q));
                res.reports.push_back(std::move(r.report));
            }
        }
        if (opt.method != quant_method::gptq) res.seconds_final = seconds(t);
        if (res.reports.empty()) res.reports.resize(layers_.size());  // rtn: no solve to report
        res.seconds_total = seconds(t0);
        return res;
    }

    /// Frees every cached gradient and contrast (as pipeline_options::cache =
    /// false does within a run); a later run recomputes what it needs.
    void clear_caches() {
        grads_.clear();
        contrasts_.clear();
    }

    /// Puts the original fp32 weights back into the model.
    void restore() {
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            const auto& w = layers_[i].weight;
            if (original_.empty()) {
                model_.reload_original(static_cast<index_t>(i), w);
                continue;
            }
            for (index_t r = 0; r < w.rows(); ++r)
                std::copy(original_[i].begin() + r * w.cols(), original_[i].begin() + (r + 1) * w.cols(), w.row(r));
        }
    }

private:
    using clock = std::chrono::steady_clock;
    static double seconds(clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); }

    struct grads {
        std::vector<grad_accumulator> acc;
        index_t chunk = 0;  ///< sample_chunk they were accumulated with
        grad_stats stats = grad_stats::abs_sum;  ///< what acc holds
        double seconds = 0;
    };
    struct contrast {
        std::vector<gptq_result> pass;           ///< GPTQ contrast: the unmasked pass (Q(W), U_jj), also the gptq method's result
        std::vector<std::vector<float>> q;       ///< RTN contrast: Q(W) per layer
        std::vector<std::vector<float>> h_diag;  ///< diag H per layer (GPTQ contrast only)
        double seconds = 0;
        /// Q(W) of layer i: RTN's values, or the GPTQ pass's codes dequantized
        /// into `buf` (the cached pass keeps codes only, see contrast_for).
        [[nodiscard]] const std::vector<float>& values(std::size_t i, std::vector<float>& buf) const {
            if (pass.empty()) return q[i];
            const quantized_matrix& qm = pass[i].q;
            if (!qm.values.empty()) return qm.values;
            buf.resize(qm.codes.size());
            dequantize_codes(qm, buf);
            return buf;
        }
    };

    void say(const pipeline_options& o, const std::string& s) const {
        if (o.progress) o.progress(s);
    }
    void write_back(std::size_t i, const quantized_matrix& q) {
        const auto& w = layers_[i].weight;
        for (index_t r = 0; r < w.rows(); ++r)
            std::copy(q.values.begin() + r * w.cols(), q.values.begin() + (r + 1) * w.cols(), w.row(r));
    }

    /// The gradient statistics a score reads: Σg² is held only for the
    /// methods that need it (one fp32 copy of the linear weights less).
    static grad_stats stats_for(const score_needs& nd) {
        unsigned s = 0;
        if (nd.grad_abs) s |= static_cast<unsigned>(grad_stats::abs_sum);
        if (nd.grad_sq) s |= static_cast<unsigned>(grad_stats::sq_sum);
        return static_cast<grad_stats>(s);
    }

    /// `want` (Σ|g| and/or Σg²) of every layer at the original weights,
    /// cached; a later method needing more recomputes the union.
    /// One cache entry per loss_tokens (compare may score both).
    const grads& gradients(const pipeline_options& opt, grad_stats want) {
        require(opt.loss == loss_tokens::all || model_.has_answer_spans(),
                "pipeline: answer-span loss requested, but the model_adapter's calibration samples mark no answer spans");
        if (auto it = grads_.find(opt.loss); it != grads_.end()) {
            if (it->second.chunk == opt.sample_chunk) {
                if (contains(it->second.stats, want)) return it->second;
                want = want | it->second.stats;
            }
            grads_.erase(it);  // free the old sums before accumulating new ones
        }
        const auto t = clock::now();
        restore();
        say(opt, "gradients: " + std::to_string(model_.samples()) + " samples" +
                     (opt.loss == loss_tokens::answer ? ", answer-span loss" : ""));
        grads g;
        g.chunk = opt.sample_chunk;
        g.stats = want;
        if (opt.sample_chunk > 0) {
            chunked_gradients(opt, g);
            g.seconds = seconds(t);
            return grads_.emplace(opt.loss, std::move(g)).first->second;
        }
        for (const auto& l : layers_)
            g.acc.emplace_back(l.weight.rows(), l.weight.cols(), want, l.name);
        engine_gradients(opt, [&](index_t layer, index_t, matrix_view<const float> dW) {
            require(layer >= 0 && layer < static_cast<index_t>(layers_.size()), "pipeline: gradient for unknown layer ",
                    layer);
            // Sequential on purpose: the engine computes gradients on all threads,
            // and one small parallel region per (sample, layer) would cost more than the sums.
            g.acc[static_cast<std::size_t>(layer)].add(dW, seq());
        });
        g.seconds = seconds(t);
        return grads_.emplace(opt.loss, std::move(g)).first->second;
    }

    /// The adapter's per-sample gradients of the loss opt.loss names.
    void engine_gradients(const pipeline_options& opt, const gradient_sink& sink) {
        if (opt.loss == loss_tokens::answer)
            model_.answer_gradients(sink);
        else
            model_.gradients(sink);
    }

    /// This process's chunk plan and chunk range (sample_chunk > 0).
    struct local_chunks {
        chunk_plan plan;
        index_t first = 0;  ///< global index of the adapter's sample 0
        std::pair<index_t, index_t> range;
    };
    local_chunks chunks_of(const pipeline_options& opt) const {
        local_chunks lc;
        const index_t n = model_.samples();
        lc.plan = {opt.dist ? opt.dist->total_samples() : n, opt.sample_chunk};
        lc.plan.validate();
        lc.first = opt.dist ? opt.dist->first_sample() : 0;
        const index_t c0 = lc.plan.chunk_of(lc.first), c1 = n > 0 ? lc.plan.chunk_of(lc.first + n - 1) + 1 : c0;
        require(lc.plan.chunks() >= 1 && lc.first >= 0 && lc.first + n <= lc.plan.samples &&
                    lc.plan.first_sample(c0) == lc.first && lc.plan.first_sample(c1) == lc.first + n,
                "pipeline: samples [", lc.first, ", ", lc.first + n, ") are not whole chunks of ", lc.plan.chunk,
                " out of ", lc.plan.samples);
        lc.range = {c0, c1};
        return lc;
    }

    /// Chunked Σ|g|, Σg² (combined over processes when distributed).
    void chunked_gradients(const pipeline_options& opt, grads& g) {
        const local_chunks lc = chunks_of(opt);
        struct maker {
            const linear_layer* l;
            grad_stats stats;
            grad_accumulator operator()() const { return {l->weight.rows(), l->weight.cols(), stats, l->name}; }
        };
        std::vector<chunked_sum<grad_accumulator, maker, merge_combine>> cs;
        cs.reserve(layers_.size());
        for (const auto& l : layers_) cs.emplace_back(lc.plan, lc.range, maker{&l, g.stats}, merge_combine{});
        engine_gradients(opt, [&](index_t layer, index_t sample, matrix_view<const float> dW) {
            require(layer >= 0 && layer < static_cast<index_t>(layers_.size()), "pipeline: gradient for unknown layer ",
                    layer);
            cs[static_cast<std::size_t>(layer)].at(lc.first + sample).add(dW, seq());
        });
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            auto nodes = cs[i].finish();
            g.acc.push_back(opt.dist ? opt.dist->combine(lc.plan.chunks(), std::move(nodes), layers_[i].name)
                                     : reduce_nodes(lc.plan.chunks(), std::move(nodes), merge_combine{}));
        }
    }

    /// Cache key of a contrast: every option the contrast pass reads (the
    /// whole grid spec and GPTQ solve, inverse-Hessian settings included, and
    /// the chunking of the sample sums), as exact bits. Method, budget, scope, seed, 16-bit format and threads do not
    /// change Q(W), U_jj or diag H. A new field of grid_spec / gptq_options /
    /// hinv_options that changes the solve must be added here.
    static std::string contrast_key(const pipeline_options& o) {
        const auto& g = o.gptq;
        const auto& d = g.hinv.damping;
        std::string k;
        auto put = [&](auto v) {
            if constexpr (std::is_same_v<decltype(v), double>)
                k += std::to_string(std::bit_cast<std::uint64_t>(v));
            else if constexpr (std::is_same_v<decltype(v), float>)
                k += std::to_string(std::bit_cast<std::uint32_t>(v));
            else
                k += std::to_string(static_cast<long long>(v));
            k += ',';
        };
        put(g.grid.bits), put(g.grid.symmetric), put(g.grid.group_size), put(g.grid.mse.enabled), put(g.grid.mse.norm);
        put(g.grid.mse.grid), put(g.grid.mse.max_shrink), put(g.grid.fp16_scale);
        put(g.block_size), put(g.act_order), put(g.static_groups), put(static_cast<int>(g.group_fit_mode));
        put(d.relative), put(d.max_retries), put(d.growth), put(d.retry_floor);
        put(static_cast<int>(g.hinv.precision)), put(static_cast<int>(g.hinv.method));
        put(o.rtn_contrast), put(o.hessian_fp64), put(o.hessian_per_sample), put(o.sample_chunk);
        return k;
    }

    /// Q(W), U_jj and diag H at the run's base grid (cached per contrast_key).
    const contrast& contrast_for(const pipeline_options& opt) {
        const auto key = contrast_key(opt);
        if (auto it = contrasts_.find(key); it != contrasts_.end()) return it->second;
        const auto t = clock::now();
        contrast c;
        if (opt.rtn_contrast) {
            restore();
            for (std::size_t i = 0; i < layers_.size(); ++i)  // RTN reads no Hessian: none was captured
                c.q.push_back(contrast_layer(layers_[i].weight, matrix_view<const float>{}, opt, opt.pol).q.values);
        } else {
            c.pass = sequential_gptq(opt, nullptr, "contrast", &c.h_diag);
            // Codes only: with no kept weight, values are exactly the dequantized
            // codes (1 byte per weight cached instead of 5; docs/models.md).
            for (auto& r : c.pass) std::vector<float>().swap(r.q.values);
        }
        restore();
        c.seconds = seconds(t);
        return contrasts_.emplace(key, std::move(c)).first->second;
    }

    /// The contrast of a masked pass for re-scoring: its values, with every
    /// kept weight replaced by its final value fake-quantized on its row's
    /// (group's) grid (what quantizing it would give); U_jj of the pass, diag H
    /// of the first contrast `c` (if any). Takes the pass: no model-sized copy.
    static contrast requantized(std::vector<gptq_result> pass, const contrast* c, const grid_spec& spec) {
        contrast rc;
        rc.pass = std::move(pass);
        const float maxq = spec.maxq();
        for (auto& r : rc.pass) {
            auto& q = r.q;
            if (!q.has_kept()) continue;
            for (const index_t f : q.kept.indices()) {
                const index_t row = f / q.cols(), col = f % q.cols();
                const grid_param p = q.grid.at(row, q.group_of(col));
                auto& v = q.values[static_cast<std::size_t>(f)];
                v = fake_quant(v, p.scale, p.zero, maxq);
            }
        }
        if (c) rc.h_diag = c->h_diag;
        return rc;
    }

    /// Scores every layer and selects the 16-bit weights under the budget,
    /// streaming: one layer's scores at a time, computed again for the second
    /// pass of a global selection (docs/algorithms.md §1 step 3; bit-identical
    /// to select_topk over all scores at once, which would hold 4 bytes per weight).
    std::vector<mask> select(score_method sm, const grads* g, const contrast* c, const pipeline_options& opt,
                             pipeline_result& res) {
        restore();  // W of the scores is the original
        std::vector<matrix_shape> shapes;
        for (const auto& l : layers_) shapes.push_back({l.name, l.weight.rows(), l.weight.cols()});
        std::vector<float> scores, qbuf;
        double scoring = 0;
        const score_provider provide = [&](index_t m, int /*pass*/) {
            const auto t = clock::now();
            const auto i = static_cast<std::size_t>(m);
            const index_t R = layers_[i].weight.rows(), C = layers_[i].weight.cols();
            score_inputs in;
            in.W = layers_[i].weight;
            if (c) {
                in.Q = {c->values(i, qbuf).data(), R, C};
                if (!c->pass.empty()) in.u_diag = c->pass[i].report.u_diag;
                if (!c->h_diag.empty()) in.h_diag = c->h_diag[i];
            }
            if (g) {
                const auto& a = g->acc[i];
                if (needs(sm).grad_abs) in.grad_abs = a.abs_sum();
                if (needs(sm).grad_sq) in.grad_sq = a.sq_sum();
            }
            require(!needs(sm).u_diag || !in.u_diag.empty(), "pipeline: method '", to_string(sm),
                    "' needs U_jj from a GPTQ contrast; it is not available with rtn_contrast");
            require(!needs(sm).h_diag || !in.h_diag.empty(), "pipeline: method '", to_string(sm),
                    "' needs diag H from a GPTQ contrast; it is not available with rtn_contrast");
            in.seed = opt.seed + i;
            scores.resize(static_cast<std::size_t>(R * C));
            compute_scores(sm, in, {scores.data(), R, C}, opt.pol);
            scoring += seconds(t);
            return matrix_view<const float>{scores.data(), R, C};
        };
        const auto t = clock::now();
        auto sel = select_streaming(shapes, provide, opt.kept, opt.scope, opt.pol);
        res.seconds_scores = scoring;
        res.seconds_select = seconds(t) - scoring;
        say(opt, "selected " + std::to_string(sel.selected) + " of " + std::to_string(sel.scored) + " weights");
        return std::move(sel.masks);
    }

    /// One sequential GPTQ pass over all stages; weights start from the originals
    /// and end at the pass's values. Optionally records diag H per layer.
    std::vector<gptq_result> sequential_gptq(const pipeline_options& opt, const std::vector<mask>* masks,
                                             const std::string& phase, std::vector<std::vector<float>>* h_diag) {
        restore();
        model_.reset();
        std::vector<gptq_result> out(layers_.size());
        if (h_diag) h_diag->assign(layers_.size(), {});
        const index_t S = model_.stages();
        const auto t0 = clock::now();
        for (index_t s = 0; s < S; ++s) {
            say(opt, progress_line(phase, s, S, seconds(t0)));
            std::vector<std::size_t> idx;
            for (std::size_t i = 0; i < layers_.size(); ++i)
                if (layers_[i].stage == s) idx.push_back(i);
            if (opt.hessian_fp64)
                solve_stage<double>(opt, masks, idx, s, out, h_diag);
            else
                solve_stage<float>(opt, masks, idx, s, out, h_diag);
            model_.advance(s);
        }
        return out;
    }

    /// Stacks the captured inputs of one Hessian over several samples, so each
    /// update is one large GEMM (the reference's add_batch with tmp = samples).
    template <class T>
    struct hessian_stage {
        /// Makes an empty chunk partial.
        struct maker {
            index_t cols;  ///< input features
            /// An empty accumulator.
            hessian_accumulator<T> operator()() const { return hessian_accumulator<T>(cols); }
        };
        hessian_accumulator<T> H;
        std::vector<float> rows;  ///< staged X rows, tokens × cols
        index_t staged = 0;       ///< samples staged
        index_t last_sample = -1;
        /// Chunked mode: the chunk partials; staging never spans two chunks.
        std::optional<chunked_sum<hessian_accumulator<T>, maker, merge_combine>> chunks;
        const chunk_plan* plan = nullptr;
        index_t first = 0;  ///< global index of the adapter's sample 0

        explicit hessian_stage(index_t cols) : H(cols) {}
        /// Stages the X of (local) `sample`; flushes at chunk boundaries, every
        /// stage_bytes, and before each new sample when `per_sample`.
        void stage(index_t sample, matrix_view<const float> X, const exec_policy& pol, bool per_sample) {
            if (last_sample >= 0 && sample != last_sample &&
                (per_sample || (chunks && plan->chunk_of(first + sample) != plan->chunk_of(first + last_sample))))
                flush(pol);
            if (sample != last_sample) ++staged;
            last_sample = sample;
            for (index_t r = 0; r < X.rows(); ++r) rows.insert(rows.end(), X.row(r), X.row(r) + X.cols());
            if (rows.size() * sizeof(float) >= stage_bytes) flush(pol);
        }
        void flush(const exec_policy& pol) {
            if (staged == 0) return;
            const index_t c = H.cols();
            const matrix_view<const float> X{rows.data(), static_cast<index_t>(rows.size()) / c, c};
            if (chunks)
                chunks->at(first + last_sample).add_batch(X, staged, pol);
            else
                H.add_batch(X, staged, pol);
            rows.clear();
            staged = 0;
        }
    };
    /// Bytes of staged inputs per Hessian before an update.
    static constexpr std::size_t stage_bytes = std::size_t{32} << 20;

    template <class T>
    void solve_stage(const pipeline_options& opt, const std::vector<mask>* masks, const std::vector<std::size_t>& idx,
                     index_t s, std::vector<gptq_result>& out, std::vector<std::vector<float>>* h_diag) {
        // One Hessian per distinct input of the stage.
        std::vector<hessian_stage<T>> H;
        std::optional<local_chunks> lc;
        if (opt.sample_chunk > 0) lc = chunks_of(opt);
        std::vector<index_t> slot(layers_.size(), -1);
        std::vector<bool> feeds(layers_.size(), false);  // the layer whose X fills its slot
        for (std::size_t i : idx) {
            const index_t in = layers_[i].input;
            for (std::size_t j : idx) {
                if (j >= i) break;
                if (in >= 0 && layers_[j].input == in) {
                    require(layers_[j].weight.cols() == layers_[i].weight.cols(), "pipeline: layers '", layers_[j].name,
                            "' and '", layers_[i].name, "' share input ", in, " but differ in columns");
                    slot[i] = slot[j];
                    break;
                }
            }
            if (slot[i] < 0) {
                slot[i] = static_cast<index_t>(H.size());
                feeds[i] = true;
                H.emplace_back(layers_[i].weight.cols());
            }
        }
        if (lc)
            for (auto& st : H) {
                st.chunks.emplace(lc->plan, lc->range, typename hessian_stage<T>::maker{st.H.cols()}, merge_combine{});
                st.plan = &lc->plan;
                st.first = lc->first;
            }
        model_.capture(s, [&](index_t layer, index_t sample, matrix_view<const float> X) {
            require(layer >= 0 && layer < static_cast<index_t>(layers_.size()) && slot[static_cast<std::size_t>(layer)] >= 0,
                    "pipeline: capture of stage ", s, " delivered layer ", layer, ", which is not in that stage");
            if (!feeds[static_cast<std::size_t>(layer)]) return;
            auto& st = H[static_cast<std::size_t>(slot[static_cast<std::size_t>(layer)])];
            const index_t c = st.H.cols();
            require(X.cols() == c, "pipeline: input of '", layers_[static_cast<std::size_t>(layer)].name, "' has ",
                    X.cols(), " columns, the weight has ", c);
            st.stage(sample, X, opt.pol, opt.hessian_per_sample);
        });
        for (auto& st : H) {
            st.flush(opt.pol);
            if (!st.chunks) continue;
            auto nodes = st.chunks->finish();
            st.H = opt.dist ? opt.dist->combine(lc->plan.chunks(), std::move(nodes))
                            : reduce_nodes(lc->plan.chunks(), std::move(nodes), merge_combine{});
        }
        for (std::size_t i : idx) {
            const auto& Hi = H[static_cast<std::size_t>(slot[i])].H;
            layer_options lo = opt;
            lo.gptq.name = layers_[i].name;
            lo.gptq.keep_losses = false;
            lo.rtn_contrast = false;  // this is a GPTQ pass
            // The pass restored the originals, and layer i is written back only below.
            const matrix_view<const float> W(layers_[i].weight);
            out[i] = masks ? final_layer(W, Hi.view(), (*masks)[i], lo, opt.pol) : contrast_layer(W, Hi.view(), lo, opt.pol);
            write_back(i, out[i].q);
            if (h_diag) {
                const auto hv = Hi.view();
                auto& d = (*h_diag)[i];
                d.resize(static_cast<std::size_t>(hv.cols()));
                for (index_t j = 0; j < hv.cols(); ++j) d[static_cast<std::size_t>(j)] = static_cast<float>(hv(j, j));
            }
        }
    }

    Model& model_;
    std::vector<linear_layer> layers_;
    std::vector<std::vector<float>> original_;
    std::map<loss_tokens, grads> grads_;
    std::map<std::string, contrast> contrasts_;
};

/// The pipeline over any model_adapter.
using pipeline = basic_pipeline<>;

}  // namespace tcq
