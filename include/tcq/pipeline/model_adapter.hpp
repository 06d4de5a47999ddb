#pragma once
/// @file model_adapter.hpp
/// @brief What an inference engine supplies so the TaCQ pipeline can run on
/// its model: the linear layers, staged forward passes with input capture,
/// and per-sample gradients. The pipeline itself is model-agnostic.

#include <functional>
#include <string>
#include <vector>

#include "tcq/core/error.hpp"
#include "tcq/core/matrix_view.hpp"

namespace tcq {

/// One linear layer y = W x as the pipeline sees it.
struct linear_layer {
    std::string name;            ///< unique, e.g. "layers.3.wq"
    index_t stage = 0;           ///< sequential stage; layers of one stage share one capture
    matrix_view<float> weight;   ///< rows = out features, cols = in features; overwritten in place
    /// Layers of one stage with the same non-negative `input` read the same X
    /// in every capture (e.g. wq/wk/wv): they share one Hessian, and only the
    /// first of them needs its X delivered. −1: an input of its own.
    index_t input = -1;
};

/// Receives the input X (tokens × cols) of layer `layer` for calibration sample `sample`.
/// Both sinks take (layer, sample, matrix), so an adapter maps indices one way.
using capture_sink = std::function<void(index_t layer, index_t sample, matrix_view<const float> X)>;
/// Receives ∂L_s/∂W of layer `layer` for sample `sample`, on the calling thread.
/// For each layer the calls come in increasing sample order; calls of
/// different layers may interleave (an engine can then hand each block's
/// gradient on as soon as it is computed instead of holding the whole model's).
using gradient_sink = std::function<void(index_t layer, index_t sample, matrix_view<const float> dW)>;

/// Which targets of a calibration sample its loss L_s averages over
/// (docs/algorithms.md §1 step 2): every token, or only the answer spans the
/// engine's calibration data marks. Hessians always see every token.
enum class loss_tokens { all, answer };

/// "all" or "answer".
[[nodiscard]] constexpr const char* to_string(loss_tokens t) noexcept { return t == loss_tokens::all ? "all" : "answer"; }

/// The engine side of the pipeline. Stages run in increasing order; the
/// pipeline calls `reset()`, then for each stage `capture(stage)`, quantizes
/// that stage's weights in place, then `advance(stage)`, so every stage sees
/// inputs produced by the already-quantized earlier stages (GPTQ's sequential
/// protocol).
class model_adapter {
public:
    virtual ~model_adapter() = default;
    /// All linear layers, in a fixed order (the order ties are broken by).
    virtual std::vector<linear_layer> linears() = 0;
    /// Number of sequential stages (max stage + 1).
    virtual index_t stages() const = 0;
    /// Number of calibration samples.
    virtual index_t samples() const = 0;
    /// Puts the calibration samples at the model input (start of a sequential pass).
    virtual void reset() = 0;
    /// Runs stage `stage` on the cached activations with the current weights
    /// and calls `sink` with the inputs of every layer of that stage; the
    /// cached activations are not advanced.
    virtual void capture(index_t stage, const capture_sink& sink) = 0;
    /// Advances the cached activations through stage `stage` with the current weights.
    virtual void advance(index_t stage) = 0;
    /// Per-sample gradients of every linear weight at the current weights.
    virtual void gradients(const gradient_sink& sink) = 0;
    /// True if the calibration samples carry answer spans (answer_gradients works).
    [[nodiscard]] virtual bool has_answer_spans() const { return false; }
    /// As gradients(), with L_s the mean over the sample's answer-span
    /// targets only; a sample without one gives zero gradients.
    virtual void answer_gradients(const gradient_sink& sink) {
        (void)sink;
        fail("model_adapter: the calibration samples carry no answer spans");
    }
    /// True if reload_original() works. The pipeline then keeps no fp32
    /// snapshot of the linear weights (one model-sized copy less,
    /// docs/models.md "Memory"); otherwise it copies them once.
    [[nodiscard]] virtual bool reloads_originals() const { return false; }
    /// Writes the original weights of layer `layer` (linears() order) into
    /// `dst`, bit-identical to what linears() exposed at the start, e.g.
    /// converted again from the memory-mapped checkpoint.
    virtual void reload_original(index_t layer, matrix_view<float> dst) {
        (void)dst;
        fail("model_adapter: layer ", layer, ": this adapter cannot reload original weights");
    }
};

}  // namespace tcq
