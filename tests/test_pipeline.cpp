#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "tcq/pipeline/pipeline.hpp"

namespace {
using tcq::index_t;

// A two-layer linear chain y = W2 (W1 x), loss L_s = Σ_t ||y_t − target_t||² / (2T):
// small enough to check the pipeline's orchestration against hand-wired calls.
struct chain_model final : tcq::model_adapter {
    index_t d0 = 13, d1 = 11, d2 = 7, T = 9, S = 6;
    std::vector<float> w1, w2;
    std::vector<std::vector<float>> x, tgt, h;  // per sample: inputs, targets, cached activations
    index_t captures = 0, grad_calls = 0;

    chain_model() {
        std::mt19937 g(3);
        std::normal_distribution<float> n(0.f, 0.3f);
        w1.resize(d1 * d0);
        w2.resize(d2 * d1);
        for (auto& v : w1) v = n(g);
        for (auto& v : w2) v = n(g);
        for (index_t s = 0; s < S; ++s) {
            std::vector<float> xs(T * d0), ts(T * d2);
            for (auto& v : xs) v = n(g) + (&v - xs.data()) % 3 * 0.2f;  // correlated features
            for (auto& v : ts) v = n(g);
            x.push_back(xs);
            tgt.push_back(ts);
        }
    }
    std::vector<tcq::linear_layer> linears() override {
        return {{"l1", 0, tcq::make_view(w1.data(), d1, d0)}, {"l2", 1, tcq::make_view(w2.data(), d2, d1)}};
    }
    index_t stages() const override { return 2; }
    index_t samples() const override { return S; }
    void reset() override { h = x; }
    static std::vector<float> matmul_t(const std::vector<float>& X, const std::vector<float>& W, index_t T, index_t in,
                                       index_t out) {  // X (T×in) · Wᵀ
        std::vector<float> Y(T * out, 0.f);
        for (index_t t = 0; t < T; ++t)
            for (index_t o = 0; o < out; ++o) {
                float acc = 0;
                for (index_t i = 0; i < in; ++i) acc += X[t * in + i] * W[o * in + i];
                Y[t * out + o] = acc;
            }
        return Y;
    }
    void capture(index_t stage, const tcq::capture_sink& sink) override {
        ++captures;
        const index_t cols = stage == 0 ? d0 : d1;
        for (index_t s = 0; s < S; ++s) sink(stage, s, tcq::make_view<const float>(h[s].data(), T, cols));
    }
    void advance(index_t stage) override {
        for (auto& hs : h) hs = stage == 0 ? matmul_t(hs, w1, T, d0, d1) : matmul_t(hs, w2, T, d1, d2);
    }
    void gradients(const tcq::gradient_sink& sink) override {
        ++grad_calls;
        for (index_t s = 0; s < S; ++s) {
            const auto a = matmul_t(x[s], w1, T, d0, d1), y = matmul_t(a, w2, T, d1, d2);
            std::vector<float> dy(T * d2), da(T * d1, 0.f), g1(d1 * d0, 0.f), g2(d2 * d1, 0.f);
            for (index_t i = 0; i < T * d2; ++i) dy[i] = (y[i] - tgt[s][i]) / static_cast<float>(T);
            for (index_t t = 0; t < T; ++t)
                for (index_t o = 0; o < d2; ++o)
                    for (index_t i = 0; i < d1; ++i) {
                        g2[o * d1 + i] += dy[t * d2 + o] * a[t * d1 + i];
                        da[t * d1 + i] += dy[t * d2 + o] * w2[o * d1 + i];
                    }
            for (index_t t = 0; t < T; ++t)
                for (index_t o = 0; o < d1; ++o)
                    for (index_t i = 0; i < d0; ++i) g1[o * d0 + i] += da[t * d1 + o] * x[s][t * d0 + i];
            sink(s, 0, tcq::make_view<const float>(g1.data(), d1, d0));
            sink(s, 1, tcq::make_view<const float>(g2.data(), d2, d1));
        }
    }
};

tcq::pipeline_options opts(tcq::quant_method m, int bits) {
    tcq::pipeline_options o;
    o.method = m;
    o.gptq.grid.bits = bits;
    o.outliers = tcq::budget::of_ratio(0.05);
    o.pol = tcq::seq();
    return o;
}
}  // namespace

TEST_CASE("pipeline: sequential GPTQ equals hand-wired layer-by-layer calls") {
    chain_model m;
    const auto w1 = m.w1, w2 = m.w2;
    tcq::pipeline p(m);
    auto res = p.run(opts(tcq::quant_method::gptq, 3));
    REQUIRE(res.layers.size() == 2);

    // by hand: H1 from x, GPTQ l1, then H2 from Q1·x (quantized inputs), GPTQ l2
    tcq::gptq_options g;
    g.grid.bits = 3;
    g.grid.fp16_scale = true;
    g.keep_losses = false;
    tcq::hessian_accumulator<float> H1(m.d0), H2(m.d1);
    for (index_t s = 0; s < m.S; ++s) H1.add(tcq::make_view<const float>(m.x[s].data(), m.T, m.d0));
    g.name = "l1";
    auto q1 = tcq::gptq_quantize(tcq::make_view<const float>(w1.data(), m.d1, m.d0), H1, g);
    for (index_t s = 0; s < m.S; ++s) {
        auto a = chain_model::matmul_t(m.x[s], q1.q.values, m.T, m.d0, m.d1);
        H2.add(tcq::make_view<const float>(a.data(), m.T, m.d1));
    }
    g.name = "l2";
    auto q2 = tcq::gptq_quantize(tcq::make_view<const float>(w2.data(), m.d2, m.d1), H2, g);
    CHECK(res.layers[0].values == q1.q.values);
    CHECK(res.layers[1].values == q2.q.values);
    CHECK(res.layers[1].codes == q2.q.codes);
    // the model now holds the final values
    CHECK(m.w1 == q1.q.values);
    CHECK(res.kept == 0);
    CHECK(res.bits.outliers == 0);
}

TEST_CASE("pipeline: TaCQ keeps the budgeted weights at full precision; caches are reused") {
    chain_model m;
    const auto w1 = m.w1;
    tcq::pipeline p(m);
    auto tacq = p.run(opts(tcq::quant_method::tacq, 2));
    const index_t N = m.d1 * m.d0 + m.d2 * m.d1;
    CHECK(tacq.kept == static_cast<index_t>(0.05 * static_cast<double>(N)));
    CHECK(m.grad_calls == 1);
    const index_t captures_after_tacq = m.captures;
    CHECK(captures_after_tacq == 4);  // contrast pass + final pass, 2 stages each
    // kept weights: value not on the grid necessarily, but equal to the model's final weights
    const auto& L1 = tacq.layers[0];
    index_t kept1 = 0;
    for (index_t i = 0; i < L1.rows * L1.cols; ++i)
        if (L1.kept.size() && L1.kept.test(i)) {
            ++kept1;
            CHECK(m.w1[i] == L1.values[i]);
        }
    CHECK(kept1 == tacq.reports[0].kept);
    // bits: base + outliers, exact
    CHECK(tacq.bits.outliers > 0);
    CHECK(tacq.bits.per_weight() > 2.0);

    // SpQR-style at the same bits reuses the contrast (no new contrast pass) and gradients are not needed
    auto spqr = p.run(opts(tcq::quant_method::spqr, 2));
    CHECK(m.captures == captures_after_tacq + 2);
    CHECK(spqr.kept == tacq.kept);
    CHECK(m.grad_calls == 1);
    // a different method selects (in general) different weights
    bool differ = false;
    for (std::size_t i = 0; i < 2; ++i) differ |= !(spqr.layers[i].kept == tacq.layers[i].kept);
    CHECK(differ);
    // restore puts the fp32 weights back
    p.restore();
    CHECK(m.w1 == w1);
}

TEST_CASE("pipeline: RTN baseline and bad options") {
    chain_model m;
    tcq::pipeline p(m);
    auto r = p.run(opts(tcq::quant_method::rtn, 4));
    CHECK(m.captures == 0);
    CHECK(r.kept == 0);
    for (float v : r.layers[0].values) CHECK(std::isfinite(v));
    auto bad = opts(tcq::quant_method::gptq, 9);
    CHECK_THROWS_AS(p.run(bad), tcq::error);
    auto wanda_rtn = opts(tcq::quant_method::wanda, 3);
    wanda_rtn.rtn_contrast = true;
    CHECK_THROWS_WITH_AS(p.run(wanda_rtn), doctest::Contains("needs diag H"), tcq::error);
    CHECK_THROWS_AS((void)tcq::parse_quant_method("foo"), tcq::error);
    CHECK(tcq::parse_quant_method("spqr") == tcq::quant_method::spqr);
}
