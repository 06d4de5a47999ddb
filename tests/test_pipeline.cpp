#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "tcq/core/half.hpp"
#include "tcq/pack/packed_matrix.hpp"
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
    // With `reload`, originals come back from o1/o2 (as an engine re-reading its checkpoint).
    bool reload = false;
    std::vector<float> o1, o2;
    index_t reloads = 0;
    bool reloads_originals() const override { return reload; }
    void reload_original(index_t layer, tcq::matrix_view<float> dst) override {
        ++reloads;
        const auto& o = layer == 0 ? o1 : o2;
        REQUIRE(static_cast<std::size_t>(dst.size()) == o.size());
        std::copy(o.begin(), o.end(), dst.data());
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
            sink(0, s, tcq::make_view<const float>(g1.data(), d1, d0));
            sink(1, s, tcq::make_view<const float>(g2.data(), d2, d1));
        }
    }
};

tcq::pipeline_options opts(tcq::quant_method m, int bits) {
    tcq::pipeline_options o;
    o.method = m;
    o.gptq.grid.bits = bits;
    o.kept = tcq::budget::of_ratio(0.05);
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
    CHECK(res.kept() == 0);
    CHECK(res.bits().kept == 0);
}

TEST_CASE("pipeline: TaCQ keeps the budgeted weights at full precision; caches are reused") {
    chain_model m;
    const auto w1 = m.w1;
    tcq::pipeline p(m);
    auto tacq = p.run(opts(tcq::quant_method::tacq, 2));
    const index_t N = m.d1 * m.d0 + m.d2 * m.d1;
    CHECK(tacq.kept() == static_cast<index_t>(0.05 * static_cast<double>(N)));
    CHECK(m.grad_calls == 1);
    const index_t captures_after_tacq = m.captures;
    CHECK(captures_after_tacq == 4);  // contrast pass + final pass, 2 stages each
    // kept weights: value not on the grid necessarily, but equal to the model's final weights
    const auto& L1 = tacq.layers[0];
    index_t kept1 = 0;
    for (index_t i = 0; i < L1.rows() * L1.cols(); ++i)
        if (L1.kept.size() && L1.kept.test(i)) {
            ++kept1;
            CHECK(m.w1[i] == L1.values[i]);
        }
    CHECK(kept1 == tacq.layers[0].kept.count());
    // bits: base + kept, exact
    CHECK(tacq.bits().kept > 0);
    CHECK(tacq.bits().per_weight() > 2.0);

    // SpQR-style at the same bits reuses the contrast (no new contrast pass) and gradients are not needed
    auto spqr = p.run(opts(tcq::quant_method::spqr, 2));
    CHECK(m.captures == captures_after_tacq + 2);
    CHECK(spqr.kept() == tacq.kept());
    CHECK(m.grad_calls == 1);
    // a different method selects (in general) different weights
    bool differ = false;
    for (std::size_t i = 0; i < 2; ++i) differ |= !(spqr.layers[i].kept == tacq.layers[i].kept);
    CHECK(differ);
    // restore puts the fp32 weights back
    p.restore();
    CHECK(m.w1 == w1);
}

TEST_CASE("pipeline: cache = false frees gradients and contrast before the final pass, same result") {
    for (const int rounds : {0, 1}) {
        CAPTURE(rounds);
        chain_model a, b;
        tcq::pipeline pa(a), pb(b);
        auto o = opts(tcq::quant_method::tacq, 2);
        o.reselect_rounds = rounds;
        const auto kept = pa.run(o);
        o.cache = false;
        const auto freed = pb.run(o);
        REQUIRE(kept.layers.size() == freed.layers.size());
        for (std::size_t i = 0; i < kept.layers.size(); ++i) {
            CHECK(kept.layers[i].values == freed.layers[i].values);
            CHECK(kept.layers[i].codes == freed.layers[i].codes);
            CHECK(kept.layers[i].kept == freed.layers[i].kept);
        }
        CHECK(a.w1 == b.w1);
        CHECK(a.w2 == b.w2);
        // The next run finds no cache: gradients and contrast are computed again.
        const index_t grads_a = a.grad_calls, grads_b = b.grad_calls, caps_a = a.captures, caps_b = b.captures;
        o.cache = true;
        (void)pa.run(o);
        (void)pb.run(o);
        CHECK(a.grad_calls == grads_a);
        CHECK(b.grad_calls == grads_b + 1);
        CHECK(b.captures - caps_b == a.captures - caps_a + 2);  // + the contrast pass (2 stages)
    }
}

TEST_CASE("pipeline: an adapter that reloads originals gives the snapshot's results bit for bit") {
    chain_model a, b;
    b.reload = true;
    b.o1 = b.w1;
    b.o2 = b.w2;
    tcq::pipeline pa(a), pb(b);
    for (auto method : {tcq::quant_method::tacq, tcq::quant_method::fisher, tcq::quant_method::spqr,
                        tcq::quant_method::gptq, tcq::quant_method::rtn, tcq::quant_method::tacq}) {
        CAPTURE(tcq::to_string(method));
        for (bool rtn_contrast : {false, true}) {
            if (rtn_contrast && method == tcq::quant_method::spqr) continue;  // needs U_jj of a GPTQ contrast
            auto o = opts(method, 3);
            o.rtn_contrast = rtn_contrast;
            const auto ra = pa.run(o), rb = pb.run(o);
            REQUIRE(ra.layers.size() == rb.layers.size());
            for (std::size_t i = 0; i < ra.layers.size(); ++i) {
                CHECK(ra.layers[i].values == rb.layers[i].values);
                CHECK(ra.layers[i].kept == rb.layers[i].kept);
            }
            CHECK(a.w1 == b.w1);
            CHECK(a.w2 == b.w2);
        }
    }
    CHECK(b.reloads > 0);
    CHECK(a.reloads == 0);
    // TaCQ, then Fisher (needs Σg² too), then TaCQ again: the sums are computed twice, not three times
    CHECK(b.grad_calls == 2);
}

TEST_CASE("pipeline: RTN baseline and bad options") {
    chain_model m;
    tcq::pipeline p(m);
    auto r = p.run(opts(tcq::quant_method::rtn, 4));
    CHECK(m.captures == 0);
    CHECK(r.kept() == 0);
    for (float v : r.layers[0].values) CHECK(std::isfinite(v));
    auto bad = opts(tcq::quant_method::gptq, 9);
    CHECK_THROWS_AS(p.run(bad), tcq::error);
    auto wanda_rtn = opts(tcq::quant_method::wanda, 3);
    wanda_rtn.rtn_contrast = true;
    CHECK_THROWS_WITH_AS(p.run(wanda_rtn), doctest::Contains("needs diag H"), tcq::error);
    CHECK_THROWS_AS((void)tcq::parse_quant_method("foo"), tcq::error);
    CHECK(tcq::parse_quant_method("spqr") == tcq::quant_method::spqr);
}

TEST_CASE("pipeline: the contrast cache key covers every solve option") {
    chain_model m;
    tcq::pipeline p(m);
    auto o = opts(tcq::quant_method::spqr, 2);
    (void)p.run(o);
    index_t c = m.captures;
    CHECK(c == 4);  // contrast + final pass
    auto again = [&](const tcq::pipeline_options& x, bool new_contrast) {
        const auto r = p.run(x);
        CHECK(m.captures - c == (new_contrast ? 4 : 2));
        c = m.captures;
        return r;
    };
    auto o2 = o;
    o2.method = tcq::quant_method::tacq;
    o2.kept_format = tcq::value_format::bf16;
    o2.kept = tcq::budget::of_ratio(0.1);
    (void)again(o2, false);  // method, budget, 16-bit format: same contrast
    auto d = o;
    d.gptq.hinv.damping.relative = 0.5;
    const auto damped = again(d, true);
    auto gf = o;
    gf.gptq.group_fit_mode = tcq::group_fit::fresh;
    (void)again(gf, true);
    auto pr = o;
    pr.gptq.hinv.precision = tcq::factor_precision::fp64;
    (void)again(pr, true);
    auto hm = o;
    hm.gptq.hinv.method = tcq::hinv_method::torch;
    (void)again(hm, true);
    auto rt = o;
    rt.gptq.hinv.damping.max_retries = 2;
    (void)again(rt, true);
    (void)again(d, false);  // cached now
    // a damped run from the cache equals one on a fresh pipeline
    chain_model m2;
    tcq::pipeline p2(m2);
    const auto fresh = p2.run(d);
    for (std::size_t i = 0; i < 2; ++i) {
        CHECK(fresh.layers[i].kept == damped.layers[i].kept);
        CHECK(fresh.layers[i].values == damped.layers[i].values);
    }
}

TEST_CASE("pipeline: kept weights are written back as their stored 16-bit values") {
    for (const auto f : {tcq::value_format::fp16, tcq::value_format::bf16}) {
        chain_model m;
        tcq::pipeline p(m);
        auto o = opts(tcq::quant_method::tacq, 2);
        o.kept_format = f;
        const auto r = p.run(o);
        CHECK(r.kept_format == f);
        index_t n = 0;
        for (std::size_t l = 0; l < 2; ++l) {
            const auto& q = r.layers[l];
            const auto& w = l == 0 ? m.w1 : m.w2;
            for (index_t i = 0; i < q.rows() * q.cols(); ++i) {
                CHECK(w[static_cast<std::size_t>(i)] == q.values[static_cast<std::size_t>(i)]);
                if (q.kept.size() && q.kept.test(i)) {
                    ++n;
                    const float v = q.values[static_cast<std::size_t>(i)];
                    CHECK(v == tcq::decode_value(tcq::encode_value(v, f), f));
                }
            }
        }
        CHECK(n == r.kept());
        CHECK(n > 0);
    }
}

TEST_CASE("pipeline: the GPTQ method reuses the GPTQ contrast pass (and vice versa)") {
    chain_model m;
    tcq::pipeline p(m);
    (void)p.run(opts(tcq::quant_method::tacq, 3));
    const index_t c = m.captures;  // contrast + final
    const auto g = p.run(opts(tcq::quant_method::gptq, 3));
    CHECK(m.captures == c);  // no pass at all
    chain_model m2;
    tcq::pipeline p2(m2);
    const auto fresh = p2.run(opts(tcq::quant_method::gptq, 3));
    CHECK(m2.captures == 2);
    for (std::size_t i = 0; i < 2; ++i) {
        CHECK(g.layers[i].values == fresh.layers[i].values);
        CHECK(g.layers[i].codes == fresh.layers[i].codes);
        CHECK(g.reports[i].total_loss == fresh.reports[i].total_loss);
    }
    CHECK(m.w1 == m2.w1);  // the model holds the GPTQ values
    CHECK(m.w2 == m2.w2);
    (void)p2.run(opts(tcq::quant_method::spqr, 3));  // the gptq run's pass serves as the contrast
    CHECK(m2.captures == 4);
}

TEST_CASE("pipeline: experiment switches (per-sample Hessians, fp32 scales)") {
    chain_model m;
    tcq::pipeline p(m);
    auto o = opts(tcq::quant_method::gptq, 3);
    o.hessian_per_sample = true;
    const auto r = p.run(o);
    // by hand, one Hessian update per sample, as the reference's loop
    tcq::gptq_options g;
    g.grid.bits = 3;
    g.grid.fp16_scale = true;
    g.keep_losses = false;
    g.name = "l1";
    tcq::hessian_accumulator<float> H1(m.d0);
    chain_model fresh;
    for (index_t s = 0; s < fresh.S; ++s) H1.add(tcq::make_view<const float>(fresh.x[s].data(), fresh.T, fresh.d0));
    const auto q1 = tcq::gptq_quantize(tcq::make_view<const float>(fresh.w1.data(), fresh.d1, fresh.d0), H1, g);
    CHECK(r.reports[0].total_loss == q1.report.total_loss);
    CHECK(r.layers[0].values == q1.q.values);

    auto f = opts(tcq::quant_method::gptq, 3);
    f.fp16_scales = false;
    const auto r32 = p.run(f);
    CHECK_FALSE(r32.grid.fp16_scale);
    bool off_fp16 = false;
    for (const auto& gp : r32.layers[0].grid.params) off_fp16 |= gp.scale != tcq::round_to_half(gp.scale);
    CHECK(off_fp16);
    CHECK_THROWS_WITH_AS((void)tcq::pack(r32.layers[0]), doctest::Contains("not a positive fp16 value"), tcq::error);
}

TEST_CASE("pipeline: chunked accumulation; one chunk equals the running sum") {
    chain_model m;
    tcq::pipeline p(m), q(m), q2(m);  // all snapshot the fp32 weights
    auto o = opts(tcq::quant_method::tacq, 2);
    const auto plain = p.run(o);
    o.sample_chunk = m.S;  // one chunk: the same partial sums, bit for bit
    const auto one = p.run(o);
    o.sample_chunk = 100;
    const auto big = p.run(o);
    o.sample_chunk = 2;
    const auto three = p.run(o);
    const auto again = p.run(o);
    for (std::size_t i = 0; i < 2; ++i) {
        CHECK(one.layers[i].values == plain.layers[i].values);
        CHECK(big.layers[i].values == plain.layers[i].values);
        CHECK(three.layers[i].values == again.layers[i].values);
        CHECK(three.layers[i].kept.words() == again.layers[i].kept.words());
    }
    CHECK(three.kept() == plain.kept());
    // A one-process distribution goes through combine() and gives the same bits.
    struct local final : tcq::distribution {
        index_t n;
        int calls = 0;
        explicit local(index_t s) : n(s) {}
        index_t total_samples() const override { return n; }
        index_t first_sample() const override { return 0; }
        tcq::grad_accumulator combine(index_t c, std::vector<tcq::tree_node<tcq::grad_accumulator>> v,
                                      const std::string&) override {
            ++calls;
            return tcq::reduce_nodes(c, std::move(v), tcq::merge_combine{});
        }
        tcq::hessian_accumulator<float> combine(index_t c,
                                                std::vector<tcq::tree_node<tcq::hessian_accumulator<float>>> v) override {
            ++calls;
            return tcq::reduce_nodes(c, std::move(v), tcq::merge_combine{});
        }
        tcq::hessian_accumulator<double> combine(
            index_t c, std::vector<tcq::tree_node<tcq::hessian_accumulator<double>>> v) override {
            return tcq::reduce_nodes(c, std::move(v), tcq::merge_combine{});
        }
    } d(m.S);
    o.dist = &d;
    const auto via = q.run(o);
    CHECK(d.calls > 0);
    for (std::size_t i = 0; i < 2; ++i) CHECK(via.layers[i].values == three.layers[i].values);
    local missing(m.S + 1);  // 7 samples, this process has 6: chunk 3 never arrives
    o.dist = &missing;
    CHECK_THROWS_WITH_AS(q2.run(o), doctest::Contains("1 of 4 chunks are missing"), tcq::error);
    o.sample_chunk = 4;  // [0, 6) is not whole chunks of 4 out of 7
    CHECK_THROWS_WITH_AS(q2.run(o), doctest::Contains("not whole chunks"), tcq::error);
    o.sample_chunk = 2;
    o.dist = &d;
    o.sample_chunk = 0;
    CHECK_THROWS_WITH_AS(q.run(o), doctest::Contains("needs sample_chunk"), tcq::error);
    o.dist = nullptr;
    o.sample_chunk = -1;
    CHECK_THROWS_AS(p.run(o), tcq::error);
}
