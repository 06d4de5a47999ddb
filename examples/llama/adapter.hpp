#pragma once
/// @file adapter.hpp
/// @brief The Llama-family engine as a tcq::model_adapter: the reference of
/// how an engine plugs into tcq's model-agnostic pipeline.

#include <optional>
#include <string>
#include <vector>

#include "backward.hpp"
#include "forward.hpp"
#include "tcq/io/safetensors_dir.hpp"
#include "tcq/pipeline/model_adapter.hpp"

namespace llama {

/// A calibration batch run through a model for tcq's pipeline. Stages are
/// blocks; with `true_sequential` each block splits into its four input
/// groups ({q,k,v}, {o}, {gate,up}, {down}). Layers are named by their HF
/// module path (linear_name), so a tcq file carries the checkpoint's names.
class adapter final : public tcq::model_adapter {
public:
    /// `calib` is count × length tokens, row-major; kept by reference. With
    /// `originals`, the checkpoint `m` was loaded from (kept open, mapped),
    /// the pipeline re-reads original weights from it instead of copying them.
    /// `scored` (the shape of `calib`, or empty) marks the answer-span targets
    /// (answer_spans.hpp); kept by reference.
    adapter(model& m, tcq::matrix_view<const std::int32_t> calib, const tcq::exec_policy& pol,
            bool true_sequential = false, const tcq::safetensors::directory* originals = nullptr,
            tcq::matrix_view<const std::uint8_t> scored = {})
        : m_(m), calib_(calib), pol_(pol), true_seq_(true_sequential), originals_(originals), scored_(scored) {
        tcq::require(calib.rows() > 0 && calib.cols() >= 2, "llama::adapter: calibration batch of ", calib.rows(),
                     " sequences of ", calib.cols(), " tokens is too small");
        check_tokens(m, calib, 2, "llama::adapter: calibration");
        tcq::require(scored.size() == 0 || (scored.rows() == calib.rows() && scored.cols() == calib.cols()),
                     "llama::adapter: answer flags are ", scored.rows(), "x", scored.cols(), ", calibration ",
                     calib.rows(), "x", calib.cols());
    }

    std::vector<tcq::linear_layer> linears() override {
        std::vector<tcq::linear_layer> out;
        for (index_t l = 0; l < m_.cfg().n_layers; ++l)
            for (auto k : all_linear_kinds)
                out.push_back({linear_name(l, k), stage_of(l, k), m_.linear(l, k),
                               l * 4 + static_cast<index_t>(group_of(k))});
        return out;
    }
    [[nodiscard]] index_t stages() const override { return m_.cfg().n_layers * (true_seq_ ? 4 : 1); }
    [[nodiscard]] index_t samples() const override { return calib_.rows(); }

    void reset() override {
        stager_.reset();
        h_ = embed(m_, calib_);
    }

    void capture(index_t stage, const tcq::capture_sink& sink) override {
        const index_t layer = layer_of(stage);
        auto hook = [&](linear_kind k, index_t seq, tcq::matrix_view<const float> X) { sink(index_of(layer, k), seq, X); };
        if (!true_seq_) return capture_block(m_, layer, h_, std::nullopt, pol_, hook);
        // One pass through the block for its four groups (block_stager), not one per group.
        if (group_at(stage) == linear_group::attn_in) stager_.emplace(m_, layer, h_);
        tcq::require(stager_.has_value(), "llama::adapter: stage ", stage, " captured before its block's first group");
        stager_->capture(group_at(stage), pol_, hook);
    }

    void advance(index_t stage) override {
        if (!true_seq_) return block_forward(m_, layer_of(stage), h_, pol_);
        if (group_at(stage) != linear_group::ffn_out) return;  // the weights changed; the states move once per block
        stager_->advance(pol_);
        stager_.reset();
    }

    void gradients(const tcq::gradient_sink& sink) override { gradients_of(sink, {}); }

    [[nodiscard]] bool has_answer_spans() const override { return scored_.size() > 0; }
    void answer_gradients(const tcq::gradient_sink& sink) override {
        tcq::require(has_answer_spans(), "llama::adapter: the calibration batch marks no answer spans");
        gradients_of(sink, scored_);
    }

    [[nodiscard]] bool reloads_originals() const override { return originals_ != nullptr; }

    void reload_original(index_t layer, tcq::matrix_view<float> dst) override {
        tcq::require(originals_ && dst.contiguous(), "llama::adapter: cannot reload layer ", layer);
        const auto nk = static_cast<index_t>(all_linear_kinds.size());
        const auto name = linear_name(layer / nk, all_linear_kinds[static_cast<std::size_t>(layer % nk)]) + ".weight";
        originals_->to_float(name, {dst.data(), static_cast<std::size_t>(dst.size())});
    }

private:
    [[nodiscard]] index_t stage_of(index_t layer, linear_kind k) const {
        return true_seq_ ? layer * 4 + static_cast<index_t>(group_of(k)) : layer;
    }
    void gradients_of(const tcq::gradient_sink& sink, tcq::matrix_view<const std::uint8_t> scored) {
        per_sample_gradients(
            m_, calib_, pol_,
            [&](index_t s, index_t layer, linear_kind k, tcq::matrix_view<const float> dW) { sink(index_of(layer, k), s, dW); },
            scored);
    }
    [[nodiscard]] index_t layer_of(index_t stage) const { return true_seq_ ? stage / 4 : stage; }
    [[nodiscard]] static linear_group group_at(index_t stage) { return static_cast<linear_group>(stage % 4); }
    [[nodiscard]] static index_t index_of(index_t layer, linear_kind k) {
        return layer * static_cast<index_t>(all_linear_kinds.size()) + static_cast<index_t>(k);
    }

    model& m_;
    tcq::matrix_view<const std::int32_t> calib_;
    tcq::exec_policy pol_;
    bool true_seq_;
    const tcq::safetensors::directory* originals_;
    tcq::matrix_view<const std::uint8_t> scored_;
    hidden_states h_;
    std::optional<block_stager> stager_;
};

}  // namespace llama
