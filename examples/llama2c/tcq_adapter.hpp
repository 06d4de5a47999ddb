#pragma once
/// @file tcq_adapter.hpp
/// @brief How an engine plugs into tcq: the llama2c model as a
/// tcq::model_adapter. This is all the model-specific code the TaCQ pipeline
/// needs: the layer list, staged forward passes with input capture, and
/// per-sample gradients.

#include <string>
#include <vector>

#include "backward.hpp"
#include "data.hpp"
#include "forward.hpp"
#include "model.hpp"
#include "tcq/pipeline/model_adapter.hpp"

namespace l2c {

/// The calibration batch run through a llama2c model for tcq's pipeline.
/// Stages are transformer blocks; with `true_sequential` (the default, as the
/// paper's GPTQ runs) each block is split
/// into its four input groups ({wq,wk,wv}, {wo}, {w1,w3}, {w2}), so e.g. wo is
/// quantized on inputs produced by the already-quantized wq/wk/wv.
class tcq_adapter final : public tcq::model_adapter {
public:
    tcq_adapter(model& m, const token_batch& calib, const tcq::exec_policy& pol, bool true_sequential = true)
        : m_(m), calib_(calib), pol_(pol), true_seq_(true_sequential) {
        tcq::require(calib.count > 0 && calib.length >= 2, "tcq_adapter: calibration batch of ", calib.count,
                     " sequences of ", calib.length, " tokens is too small");
    }

    std::vector<tcq::linear_layer> linears() override {
        std::vector<tcq::linear_layer> out;
        for (index_t l = 0; l < m_.cfg().n_layers; ++l)
            for (auto k : all_linear_kinds)
                out.push_back({linear_name(l, k), stage_of(l, k), m_.linear(l, k),
                               l * 4 + static_cast<index_t>(group_of(k))});  // wq/wk/wv and w1/w3 share X
        return out;
    }
    [[nodiscard]] index_t stages() const override { return m_.cfg().n_layers * (true_seq_ ? 4 : 1); }
    [[nodiscard]] index_t samples() const override { return calib_.count; }

    void reset() override { h_ = embed(m_, calib_.view()); }

    void capture(index_t stage, const tcq::capture_sink& sink) override {
        const index_t layer = layer_of(stage);
        auto hook = [&](linear_kind k, index_t seq, tcq::matrix_view<const float> X) { sink(index_of(layer, k), seq, X); };
        if (true_seq_)
            capture_group(m_, layer, h_, group_at(stage), pol_, hook);
        else
            capture_block(m_, layer, h_, pol_, hook);
    }

    void advance(index_t stage) override {
        // Inside a block the groups only change weights; the states move once the block is done.
        if (!true_seq_ || group_at(stage) == linear_group::ffn_out) block_forward(m_, layer_of(stage), h_, pol_);
    }

    void gradients(const tcq::gradient_sink& sink) override {
        per_sample_gradients(m_, calib_.view(), pol_, [&](index_t s, index_t layer, linear_kind k, tcq::matrix_view<const float> dW) {
            sink(s, index_of(layer, k), dW);
        });
    }

private:
    [[nodiscard]] index_t stage_of(index_t layer, linear_kind k) const {
        return true_seq_ ? layer * 4 + static_cast<index_t>(group_of(k)) : layer;
    }
    [[nodiscard]] index_t layer_of(index_t stage) const { return true_seq_ ? stage / 4 : stage; }
    [[nodiscard]] static linear_group group_at(index_t stage) { return static_cast<linear_group>(stage % 4); }
    [[nodiscard]] static index_t index_of(index_t layer, linear_kind k) {
        return layer * static_cast<index_t>(all_linear_kinds.size()) + static_cast<index_t>(k);
    }

    model& m_;
    const token_batch& calib_;
    tcq::exec_policy pol_;
    bool true_seq_;
    hidden_states h_;
};

}  // namespace l2c
