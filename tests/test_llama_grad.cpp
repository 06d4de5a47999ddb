// The Llama-family engine: per-sample gradients against finite differences for
// every architecture feature, recomputation vs determinism, KV-cached decoding,
// and the staged forward/capture of the adapter.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <tuple>
#include <random>
#include <string>
#include <vector>

#include "llama/adapter.hpp"
#include "llama/decode.hpp"
#include "tcq/pipeline/pipeline.hpp"
#include "tcq/select/topk.hpp"

#include "llama_test_util.hpp"
#include "sanitized_build.hpp"

// Own namespace: the four engine test files compile as one unity translation
// unit (tests/llama.cmake), where their helpers would otherwise collide.
namespace test_llama_grad {

namespace {

using llama::index_t;
using llama::linear_kind;
using llama::RowMatrixXf;

llama::config tiny(const char* arch = "LlamaForCausalLM") { return llama_tiny_config(arch); }

struct feature {
    std::string name;
    llama::config cfg;
};

std::vector<feature> features() {
    std::vector<feature> f;
    f.push_back({"GQA, rotate-half RoPE, untied", tiny()});
    auto b = tiny();
    b.qkv_bias = b.o_bias = b.mlp_bias = true;
    f.push_back({"Llama attention_bias + mlp_bias", b});
    auto q2 = tiny("Qwen2ForCausalLM");
    q2.qkv_bias = true;
    q2.tied = true;
    q2.n_kv_heads = 3;
    f.push_back({"Qwen2: q/k/v biases, tied, MHA", q2});
    auto q3 = tiny("Qwen3ForCausalLM");
    q3.qk_norm = true;
    f.push_back({"Qwen3: per-head q/k RMSNorm", q3});
    auto l3 = tiny();
    l3.scaling = llama::llama3_scaling{4.0, 1.0, 4.0, 16};
    l3.rope_theta = 10000;
    f.push_back({"llama3 rope scaling", l3});
    auto il = tiny();
    il.rope = llama::rope_pairs::interleaved;
    il.tied = true;
    f.push_back({"llama2.c interleaved RoPE, tied", il});
    return f;
}

std::vector<std::int32_t> random_tokens(index_t n, index_t vocab, unsigned seed) {
    std::mt19937 g(seed);
    std::vector<std::int32_t> t(static_cast<std::size_t>(n));
    for (auto& x : t) x = static_cast<std::int32_t>(g() % static_cast<unsigned>(vocab));
    return t;
}

/// `count` sequences of `length` tokens, row-major; sequence s is random_tokens(length, vocab, seed0 + s).
std::vector<std::int32_t> random_batch(index_t count, index_t length, index_t vocab, unsigned seed0) {
    std::vector<std::int32_t> toks;
    for (index_t s = 0; s < count; ++s) {
        const auto t = random_tokens(length, vocab, seed0 + static_cast<unsigned>(s));
        toks.insert(toks.end(), t.begin(), t.end());
    }
    return toks;
}


std::vector<std::vector<RowMatrixXf>> gradients_of(const llama::model& m, std::span<const std::int32_t> tokens,
                                                   const tcq::exec_policy& pol = tcq::seq()) {
    std::vector<std::vector<RowMatrixXf>> g(static_cast<std::size_t>(m.cfg().n_layers), std::vector<RowMatrixXf>(7));
    const double loss = llama::per_sample_gradients(
        m, tcq::make_view(tokens.data(), 1, static_cast<index_t>(tokens.size())), pol,
        [&](index_t, index_t l, linear_kind k, tcq::matrix_view<const float> d) {
            g[static_cast<std::size_t>(l)][static_cast<std::size_t>(k)] = tcq::as_eigen(d);
        })[0];
    CHECK(std::abs(loss - loss_of(m, tokens)) < 1e-6);
    return g;
}


/// Every linear weight's gradient vs finite differences: along a random
/// direction and on its two largest entries.
void check_gradients(llama::model& m, std::span<const std::int32_t> tokens) {
    const double rel = 1e-2, abs_tol = 2e-4;
    const auto g = gradients_of(m, tokens);
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (index_t l = 0; l < m.cfg().n_layers; ++l)
        for (auto k : llama::all_linear_kinds) {
            CAPTURE(llama::linear_name(l, k));
            const auto& G = g[static_cast<std::size_t>(l)][static_cast<std::size_t>(k)];
            REQUIRE(G.rows() == m.linear(l, k).rows());
            REQUIRE(G.cols() == m.linear(l, k).cols());
            RowMatrixXf D(G.rows(), G.cols());
            for (index_t i = 0; i < D.size(); ++i) D.data()[i] = nd(rng);
            const double analytic = static_cast<double>(G.cwiseProduct(D).sum());
            const double fd = directional_fd(m, l, k, D, 2e-3, tokens);
            CAPTURE(analytic);
            CAPTURE(fd);
            CHECK(std::abs(fd - analytic) <= rel * std::max<double>(std::abs(analytic), G.norm()) + abs_tol);
            CHECK(G.norm() > 1e-4);  // the check above must not pass on an all-zero gradient
            std::vector<index_t> idx(static_cast<std::size_t>(G.size()));
            for (index_t i = 0; i < G.size(); ++i) idx[static_cast<std::size_t>(i)] = i;
            std::partial_sort(idx.begin(), idx.begin() + 2, idx.end(),
                              [&](index_t a, index_t b) { return std::abs(G.data()[a]) > std::abs(G.data()[b]); });
            for (int t = 0; t < 2; ++t) {
                const index_t i = idx[static_cast<std::size_t>(t)];
                RowMatrixXf E = RowMatrixXf::Zero(G.rows(), G.cols());
                E.data()[i] = 1.f;
                const double a = G.data()[i], f = directional_fd(m, l, k, E, 4e-3, tokens);
                CAPTURE(a);
                CAPTURE(f);
                CHECK(std::abs(f - a) <= rel * std::abs(a) + abs_tol);
            }
        }
}

bool same_bits(const RowMatrixXf& a, const RowMatrixXf& b) {
    return a.rows() == b.rows() && a.cols() == b.cols() &&
           std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
}

}  // namespace

TEST_CASE("per-sample gradients match finite differences for every architecture feature") {
    for (const auto& f : features()) {
        CAPTURE(f.name);
        auto m = llama::random_model(f.cfg, 11, 0.3f);
        check_gradients(m, random_tokens(13, f.cfg.vocab_size, 3));
    }
    // Past one attention tile (64 query rows), odd length.
    auto m = llama::random_model(features()[3].cfg, 5, 0.3f);
    if (!sanitized_build) check_gradients(m, random_tokens(71, m.cfg().vocab_size, 4));
}

TEST_CASE("gradients, losses and captures are bit-identical for 1 and 3 threads") {
    const auto cfg = features()[1].cfg;
    const auto m = llama::random_model(cfg, 21, 0.3f);
    const auto toks = random_batch(5, 17, cfg.vocab_size, 40);
    const auto batch = tcq::make_view(toks.data(), 5, 17);
    // Per layer the samples come in order; layers interleave depending on the threads.
    auto collect = [&](const tcq::exec_policy& pol) {
        std::map<std::tuple<index_t, index_t, int>, RowMatrixXf> g;
        std::vector<index_t> last(2, -1);
        (void)llama::per_sample_gradients(m, batch, pol, [&](index_t s, index_t l, linear_kind k, tcq::matrix_view<const float> d) {
            CHECK(s >= last[static_cast<std::size_t>(l)]);
            last[static_cast<std::size_t>(l)] = s;
            CHECK(g.emplace(std::tuple{s, l, static_cast<int>(k)}, tcq::as_eigen(d)).second);
        });
        return g;
    };
    const auto a = collect(tcq::seq()), b = collect(tcq::par(3)), c = collect(tcq::par(2));
    REQUIRE(a.size() == 5u * 2u * 7u);
    REQUIRE(b.size() == a.size());
    REQUIRE(c.size() == a.size());
    for (const auto& [key, v] : a) {
        CHECK(same_bits(v, b.at(key)));
        CHECK(same_bits(v, c.at(key)));
    }
    // A throwing sink stops the workers and the exception reaches the caller.
    CHECK_THROWS_WITH_AS((void)llama::per_sample_gradients(m, batch, tcq::par(2),
                                                          [&](index_t s, index_t, linear_kind, tcq::matrix_view<const float>) {
                                                              if (s == 3) tcq::fail("sink refused");
                                                          }),
                         doctest::Contains("sink refused"), tcq::error);
    CHECK(llama::sequence_losses(m, batch, tcq::seq()) == llama::sequence_losses(m, batch, tcq::par(3)));
}

TEST_CASE("KV-cached decoding reproduces the full forward for every feature") {
    for (const auto& f : features()) {
        CAPTURE(f.name);
        const auto m = llama::random_model(f.cfg, 9, 0.3f);
        const auto tokens = random_tokens(83, f.cfg.vocab_size, 5);
        const auto full = llama::forward_logits(m, tokens);
        llama::decoder dec(m);
        index_t at = 0;
        for (index_t n : {13, 1, 1, 7, 61}) {
            const auto logits = dec.extend(std::span(tokens).subspan(static_cast<std::size_t>(at), static_cast<std::size_t>(n)));
            at += n;
            const auto row = full.row(at - 1);
            float diff = 0;
            for (index_t v = 0; v < row.size(); ++v)
                diff = std::max(diff, std::abs(row(v) - logits[static_cast<std::size_t>(v)]));
            CHECK(diff < 1e-4f * (1.f + row.cwiseAbs().maxCoeff()));
        }
    }
    const auto m = llama::random_model(tiny(), 1);
    llama::decoder small(m, 4);
    CHECK_THROWS_WITH_AS(small.extend(random_tokens(5, 41, 1)), doctest::Contains("exceed the capacity"), tcq::error);
}

TEST_CASE("llama3 rope scaling follows the transformers formula") {
    auto c = tiny();
    c.head_dim = 8;
    c.rope_theta = 10000;
    c.scaling = llama::llama3_scaling{4.0, 1.0, 4.0, 16};
    const llama::model m(c);
    // Frequencies 1, 0.1, 0.01, 0.001 have wavelengths 6.28 (between 16/4 and
    // 16: smoothed), 62.8, 628, 6283 (> 16: divided by the factor).
    const double sm = (16 / (2 * M_PI) - 1) / 3;
    const double f0 = (1 - sm) * 1.0 / 4 + sm * 1.0;
    CHECK(m.rope_cos(3)[0] == doctest::Approx(std::cos(3 * f0)).epsilon(1e-6));
    CHECK(m.rope_cos(3)[1] == doctest::Approx(std::cos(3 * 0.1 / 4)).epsilon(1e-6));
    CHECK(m.rope_sin(5)[3] == doctest::Approx(std::sin(5 * 0.001 / 4)).epsilon(1e-6));
    c.scaling.reset();
    const llama::model u(c);
    CHECK(u.rope_cos(3)[1] == doctest::Approx(std::cos(0.3)).epsilon(1e-6));
}

TEST_CASE("the adapter captures what block_forward sees and names layers as the checkpoint") {
    const auto cfg = features()[3].cfg;
    auto m = llama::random_model(cfg, 2, 0.3f);
    const auto toks = random_batch(3, 9, cfg.vocab_size, 0);
    llama::adapter ad(m, tcq::make_view(toks.data(), 3, 9), tcq::par(2), true);
    const auto lin = ad.linears();
    REQUIRE(lin.size() == 14u);
    CHECK(lin[0].name == "model.layers.0.self_attn.q_proj");
    CHECK(lin[13].name == "model.layers.1.mlp.down_proj");
    CHECK(ad.stages() == 8);
    ad.reset();
    int calls = 0;
    for (index_t s = 0; s < ad.stages(); ++s) {
        ad.capture(s, [&](index_t layer, index_t, tcq::matrix_view<const float> X) {
            CHECK(X.rows() == 9);
            CHECK(X.cols() == lin[static_cast<std::size_t>(layer)].weight.cols());
            ++calls;
        });
        ad.advance(s);
    }
    CHECK(calls == 3 * 14);
    // After all stages the hidden states equal a full forward: the head gives the same loss.
    int grads = 0;
    ad.gradients([&](index_t, index_t, tcq::matrix_view<const float>) { ++grads; });
    CHECK(grads == 3 * 14);
    CHECK_THROWS_WITH_AS(llama::adapter(m, tcq::make_view(toks.data(), 1, 1), tcq::seq()), doctest::Contains("too small"),
                         tcq::error);
}

TEST_CASE("an active sliding window shorter than the sequence is refused") {
    auto c = tiny("MistralForCausalLM");
    c.sliding_window = 10;
    const auto m = llama::random_model(c, 1);
    const auto ok = random_tokens(10, 41, 1), bad = random_tokens(11, 41, 1);
    CHECK(std::isfinite(loss_of(m, ok)));
    CHECK_THROWS_WITH_AS((void)loss_of(m, bad), doctest::Contains("sliding_window = 10"), tcq::error);
}

TEST_CASE("answer-span loss: the mean over the scored targets, and its gradient") {
    const auto cfg = features()[0].cfg;
    const auto m = llama::random_model(cfg, 31, 0.3f);
    const index_t T = 17;
    const auto toks = random_tokens(T, cfg.vocab_size, 77);
    const auto view = tcq::make_view(toks.data(), 1, T);
    using grads = std::vector<RowMatrixXf>;  // layer-major, 7 kinds each
    auto run = [&](const std::vector<std::uint8_t>* flags, index_t len, double* loss) {
        grads g(static_cast<std::size_t>(2 * 7));
        const auto tv = tcq::make_view(toks.data(), 1, len);
        const auto l = llama::per_sample_gradients(
            m, tv, tcq::seq(),
            [&](index_t, index_t layer, linear_kind k, tcq::matrix_view<const float> d) {
                g[static_cast<std::size_t>(layer * 7 + static_cast<index_t>(k))] = tcq::as_eigen(d);
            },
            flags ? tcq::make_view(flags->data(), 1, len) : tcq::matrix_view<const std::uint8_t>{});
        if (loss) *loss = l[0];
        return g;
    };
    double plain = 0, all_flags = 0;
    const auto g_plain = run(nullptr, T, &plain);
    const std::vector<std::uint8_t> ones(static_cast<std::size_t>(T), 1);
    const auto g_ones = run(&ones, T, &all_flags);
    CHECK(plain == all_flags);  // every target scored: bit-identical to the plain loss
    for (std::size_t i = 0; i < g_plain.size(); ++i) CHECK(same_bits(g_plain[i], g_ones[i]));

    // Targets 6 and 12 only. The model is causal, so the loss of target p is
    // p·L(prefix p+1) − (p−1)·L(prefix p), and likewise its gradient.
    std::vector<std::uint8_t> two(static_cast<std::size_t>(T), 0);
    two[6] = two[12] = 1;
    double masked = 0;
    const auto g_two = run(&two, T, &masked);
    auto token_term = [&](index_t p, double* lp) {
        double a = 0, b = 0;
        const auto ga = run(nullptr, p + 1, &a), gb = run(nullptr, p, &b);
        *lp = static_cast<double>(p) * a - static_cast<double>(p - 1) * b;
        grads out(ga.size());
        for (std::size_t i = 0; i < ga.size(); ++i)
            out[i] = static_cast<float>(p) * ga[i] - static_cast<float>(p - 1) * gb[i];
        return out;
    };
    double l6 = 0, l12 = 0;
    const auto t6 = token_term(6, &l6), t12 = token_term(12, &l12);
    CHECK(masked == doctest::Approx((l6 + l12) / 2).epsilon(1e-5));
    for (std::size_t i = 0; i < g_two.size(); ++i) {
        const RowMatrixXf want = 0.5f * (t6[i] + t12[i]);
        CHECK((g_two[i] - want).cwiseAbs().maxCoeff() <= 1e-4f * (1.0f + want.cwiseAbs().maxCoeff()));
    }
    // The flags are not all equal to the plain loss's (the test can fail).
    CHECK(std::abs(masked - plain) > 1e-6);

    // No scored target: loss 0 and zero gradients; a wrong flag shape is refused.
    const std::vector<std::uint8_t> none(static_cast<std::size_t>(T), 0);
    double zero = 1;
    for (const auto& g : run(&none, T, &zero)) CHECK(g.cwiseAbs().maxCoeff() == 0.0f);
    CHECK(zero == 0.0);
    CHECK_THROWS_WITH_AS((void)llama::per_sample_gradients(m, view, tcq::seq(), {}, tcq::make_view(ones.data(), 1, T - 1)),
                         doctest::Contains("scored flags are 1x16"), tcq::error);
}

TEST_CASE("the adapter's answer gradients use its flags; without flags they are refused") {
    const auto cfg = features()[0].cfg;
    auto m = llama::random_model(cfg, 32, 0.3f);
    const index_t N = 3, T = 15;
    const auto toks = random_batch(N, T, cfg.vocab_size, 90);
    std::vector<std::uint8_t> flags(toks.size(), 0);
    for (std::size_t i = 4; i < flags.size(); i += 5) flags[i] = 1;
    const auto batch = tcq::make_view(toks.data(), N, T);
    const auto fv = tcq::make_view(flags.data(), N, T);
    llama::adapter plain(m, batch, tcq::seq());
    CHECK_FALSE(plain.has_answer_spans());
    CHECK_THROWS_WITH_AS(plain.answer_gradients({}), doctest::Contains("no answer spans"), tcq::error);
    llama::adapter marked(m, batch, tcq::seq(), false, nullptr, fv);
    REQUIRE(marked.has_answer_spans());
    std::vector<RowMatrixXf> a, b;
    marked.answer_gradients([&](index_t, index_t, tcq::matrix_view<const float> d) { a.push_back(tcq::as_eigen(d)); });
    (void)llama::per_sample_gradients(m, batch, tcq::seq(),
                                      [&](index_t, index_t, linear_kind, tcq::matrix_view<const float> d) { b.push_back(tcq::as_eigen(d)); },
                                      fv);
    REQUIRE(a.size() == b.size());
    REQUIRE(a.size() == static_cast<std::size_t>(N * 2 * 7));
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(same_bits(a[i], b[i]));
    CHECK_THROWS_WITH_AS(llama::adapter(m, batch, tcq::seq(), false, nullptr, tcq::make_view(flags.data(), N, T - 1)),
                         doctest::Contains("answer flags are 3x14"), tcq::error);
}

TEST_CASE("pipeline: answer-span TaCQ has its own cached gradients; plain TaCQ is unchanged by it") {
    const auto cfg = features()[0].cfg;
    const auto m0 = llama::random_model(cfg, 33, 0.3f);
    const index_t N = 4, T = 15;
    const auto toks = random_batch(N, T, cfg.vocab_size, 60);
    std::vector<std::uint8_t> flags(toks.size(), 0);
    for (std::size_t i = 3; i < flags.size(); i += 4) flags[i] = 1;
    const auto batch = tcq::make_view(toks.data(), N, T);
    auto opts = [](tcq::loss_tokens loss) {
        tcq::pipeline_options o;
        o.gptq.grid.bits = 2;
        o.kept = tcq::budget::of_ratio(0.02);
        o.loss = loss;
        o.pol = tcq::seq();
        return o;
    };
    auto m = m0;
    llama::adapter ad(m, batch, tcq::seq(), true, nullptr, tcq::make_view(flags.data(), N, T));
    tcq::pipeline pipe(ad);
    const auto all1 = pipe.run(opts(tcq::loss_tokens::all));
    const auto ans = pipe.run(opts(tcq::loss_tokens::answer));
    const auto all2 = pipe.run(opts(tcq::loss_tokens::all));
    REQUIRE(all1.layers.size() == ans.layers.size());
    bool masks_differ = false;
    for (std::size_t i = 0; i < all1.layers.size(); ++i) {
        CHECK(all1.layers[i].kept == all2.layers[i].kept);
        CHECK(all1.layers[i].values == all2.layers[i].values);
        masks_differ |= !(all1.layers[i].kept == ans.layers[i].kept);
    }
    CHECK(masks_differ);
    CHECK(all1.kept() == ans.kept());  // same budget, other weights

    auto m2 = m0;
    llama::adapter unmarked(m2, batch, tcq::seq(), true);
    tcq::pipeline p2(unmarked);
    CHECK_THROWS_WITH_AS((void)p2.run(opts(tcq::loss_tokens::answer)), doctest::Contains("mark no answer spans"), tcq::error);
}

TEST_CASE("pipeline: iterative selection re-scores on the final pass's Q(W)") {
    const auto cfg = features()[0].cfg;
    const auto m0 = llama::random_model(cfg, 34, 0.3f);
    const index_t N = 4, T = 15;
    const auto toks = random_batch(N, T, cfg.vocab_size, 70);
    const auto batch = tcq::make_view(toks.data(), N, T);
    auto opts = [](int rounds) {
        tcq::pipeline_options o;
        o.gptq.grid.bits = 2;
        o.kept = tcq::budget::of_ratio(0.02);
        o.reselect_rounds = rounds;
        o.pol = tcq::seq();
        return o;
    };
    auto m = m0;
    llama::adapter ad(m, batch, tcq::seq(), true);
    tcq::pipeline pipe(ad);
    const auto r0 = pipe.run(opts(0));
    const auto r1 = pipe.run(opts(1));
    const auto r2 = pipe.run(opts(2));
    CHECK(r0.reselect_overlap.empty());
    REQUIRE(r1.reselect_overlap.size() == 1);
    REQUIRE(r2.reselect_overlap.size() == 2);
    CHECK(r1.reselect_overlap[0] == r2.reselect_overlap[0]);  // round 1 is the same computation
    CHECK(r1.reselect_overlap[0] > 0.0);
    CHECK(r1.reselect_overlap[0] < 1.0);  // re-scoring moved some weights
    CHECK(r1.kept() == r0.kept());             // same budget
    // Round 1's mask is the top-k of the scores on round 0's Q(W), kept weights fake-quantized
    // on their row's grid: recompute it from r0 by hand.
    auto m3 = m0;
    llama::adapter ad3(m3, batch, tcq::seq(), true);
    tcq::pipeline p3(ad3);
    std::vector<tcq::grad_accumulator> acc;
    for (const auto& l : p3.layers()) acc.emplace_back(l.weight.rows(), l.weight.cols(), tcq::grad_stats::abs_sum, l.name);
    ad3.gradients([&](index_t layer, index_t, tcq::matrix_view<const float> d) { acc[static_cast<std::size_t>(layer)].add(d, tcq::seq()); });
    p3.restore();
    std::vector<std::vector<float>> scores(r0.layers.size());
    std::vector<tcq::scored_matrix> mats;
    for (std::size_t i = 0; i < r0.layers.size(); ++i) {
        const auto& q = r0.layers[i];
        std::vector<float> qv = q.values;
        for (const auto f : q.kept.indices()) {
            const auto p = q.grid.at(f / q.cols(), q.group_of(f % q.cols()));
            qv[static_cast<std::size_t>(f)] = tcq::fake_quant(qv[static_cast<std::size_t>(f)], p.scale, p.zero, 3.0f);
        }
        tcq::score_inputs in;
        in.W = p3.layers()[i].weight;
        in.Q = {qv.data(), q.rows(), q.cols()};
        in.grad_abs = acc[i].abs_sum();
        scores[i].resize(qv.size());
        tcq::compute_scores(tcq::score_method::tacq, in, {scores[i].data(), q.rows(), q.cols()}, tcq::seq());
        mats.push_back({p3.layers()[i].name, {scores[i].data(), q.rows(), q.cols()}});
    }
    const auto sel = tcq::select_topk(mats, tcq::budget::of_ratio(0.02));
    for (std::size_t i = 0; i < r1.layers.size(); ++i) CHECK(sel.masks[i] == r1.layers[i].kept);

    CHECK_THROWS_WITH_AS((void)pipe.run([&] {
                             auto o = opts(1);
                             o.method = tcq::quant_method::magnitude;
                             return o;
                         }()),
                         doctest::Contains("only methods scored on Q(W)"), tcq::error);
}

}  // namespace test_llama_grad
