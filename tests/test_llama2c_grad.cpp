// Per-sample gradients (finite differences), determinism, and the staged
// forward with capture of the llama2c reference engine.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "l2c.hpp"

#include "sanitized_build.hpp"

namespace {

using l2c::index_t;
using l2c::linear_kind;

const std::string fixture_dir = TCQ_SOURCE_DIR "/examples/fixture/";

l2c::config tiny_config(bool shared, index_t kv_heads, index_t seq_len) {
    l2c::config c;
    c.dim = 24;
    c.hidden_dim = 40;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = kv_heads;
    c.vocab_size = 37;
    c.seq_len = seq_len;
    c.shared_classifier = shared;
    return c;
}

l2c::token_batch random_tokens(index_t n, index_t len, index_t vocab, unsigned seed) {
    std::mt19937 g(seed);
    l2c::token_batch b(n, len);
    for (auto& t : b.tokens) t = static_cast<std::int32_t>(g() % static_cast<unsigned>(vocab));
    return b;
}

double loss_of(const l2c::model& m, std::span<const std::int32_t> tokens) {
    return l2c::sequence_losses(m, tcq::make_view(tokens.data(), 1, static_cast<index_t>(tokens.size())), tcq::seq())[0];
}

/// Gradients of every linear layer of one sequence: [layer][kind].
std::vector<std::vector<l2c::RowMatrixXf>> gradients_of(const l2c::model& m, std::span<const std::int32_t> tokens) {
    std::vector<std::vector<l2c::RowMatrixXf>> g(static_cast<std::size_t>(m.cfg().n_layers),
                                                 std::vector<l2c::RowMatrixXf>(7));
    l2c::per_sample_gradients(m, tcq::make_view(tokens.data(), 1, static_cast<index_t>(tokens.size())), tcq::seq(),
                              [&](index_t, index_t l, linear_kind k, tcq::matrix_view<const float> d) {
                                  g[static_cast<std::size_t>(l)][static_cast<std::size_t>(k)] = tcq::as_eigen(d);
                              });
    return g;
}

/// Derivative of the loss along direction D (same shape as the weight):
/// central differences at h and h/2, Richardson-extrapolated so the O(h²)
/// truncation error cancels and float rounding noise dominates.
double directional_fd(l2c::model& m, index_t layer, linear_kind k, const l2c::RowMatrixXf& D, double h,
                      std::span<const std::int32_t> tokens) {
    auto W = tcq::as_eigen(m.linear(layer, k));
    const l2c::RowMatrixXf W0 = W;
    auto central = [&](double step) {
        W = W0 + static_cast<float>(step) * D;
        const double lp = loss_of(m, tokens);
        W = W0 - static_cast<float>(step) * D;
        const double lm = loss_of(m, tokens);
        W = W0;
        return (lp - lm) / (2 * step);
    };
    return (4 * central(h / 2) - central(h)) / 3;
}

/// Checks the analytic gradient of every linear weight against finite
/// differences: along a seeded N(0, 1) direction (any wrong entry shifts the
/// projection) and on the `n_top` entries with the largest |gradient|.
void check_gradients(l2c::model& m, std::span<const std::int32_t> tokens, double h_dir, double h_entry, int n_top,
                     double rel_tol, double abs_tol, index_t layer_step = 1) {
    const auto g = gradients_of(m, tokens);
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.f, 1.f);
    for (index_t l = 0; l < m.cfg().n_layers; l += layer_step)
        for (auto k : l2c::all_linear_kinds) {
            CAPTURE(l2c::linear_name(l, k));
            const auto& G = g[static_cast<std::size_t>(l)][static_cast<std::size_t>(k)];
            REQUIRE(G.rows() == m.linear(l, k).rows());
            REQUIRE(G.cols() == m.linear(l, k).cols());
            l2c::RowMatrixXf D(G.rows(), G.cols());
            for (index_t i = 0; i < D.size(); ++i) D.data()[i] = nd(rng);
            const double analytic = static_cast<double>((G.cwiseProduct(D)).sum());
            const double fd = directional_fd(m, l, k, D, h_dir, tokens);
            CAPTURE(analytic);
            CAPTURE(fd);
            // A random projection of G can be near 0: scale by ‖G‖, its typical size.
            CHECK(std::abs(fd - analytic) <= rel_tol * std::max<double>(std::abs(analytic), G.norm()) + abs_tol);
            std::vector<index_t> idx(static_cast<std::size_t>(G.size()));
            for (index_t i = 0; i < G.size(); ++i) idx[static_cast<std::size_t>(i)] = i;
            std::partial_sort(idx.begin(), idx.begin() + n_top, idx.end(), [&](index_t a, index_t b) {
                return std::abs(G.data()[a]) > std::abs(G.data()[b]);
            });
            for (int t = 0; t < n_top; ++t) {
                const index_t i = idx[static_cast<std::size_t>(t)];
                l2c::RowMatrixXf E = l2c::RowMatrixXf::Zero(G.rows(), G.cols());
                E.data()[i] = 1.f;
                const double a = G.data()[i];
                const double f = directional_fd(m, l, k, E, h_entry, tokens);
                CAPTURE(i);
                CAPTURE(a);
                CAPTURE(f);
                CHECK(std::abs(f - a) <= rel_tol * std::abs(a) + abs_tol);
            }
        }
}

bool same_bits(const l2c::RowMatrixXf& a, const l2c::RowMatrixXf& b) {
    return a.rows() == b.rows() && a.cols() == b.cols() &&
           std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
}

}  // namespace

TEST_CASE("per-sample gradients match finite differences on tiny random models") {
    struct variant {
        bool shared;
        index_t kv_heads, seq_len, T;
    };
    // GQA and MHA, shared and separate classifier, T below and above the
    // attention tile (64 rows), odd lengths.
    for (auto v : {variant{true, 2, 16, 13}, variant{false, 4, 16, 11}, variant{true, 1, 80, 77}}) {
        CAPTURE(v.T);
        CAPTURE(v.kv_heads);
        auto m = l2c::random_model(tiny_config(v.shared, v.kv_heads, v.seq_len), 11 + static_cast<unsigned>(v.T), 0.3f);
        const auto toks = random_tokens(1, v.T, 37, 3);
        check_gradients(m, toks.row(0), 2e-3, 4e-3, 2, 1e-2, 2e-4);
    }
}

TEST_CASE("per-sample gradients match finite differences on the fixture model") {
    auto m = l2c::load_checkpoint(fixture_dir + "model/model.bin");
    const auto text = l2c::read_text(fixture_dir + "data/arith.valid.txt");
    auto toks = l2c::sample_windows(text, 1, 5, "arith", 33);
    check_gradients(m, toks.row(0), 2e-3, 1e-2, 1, 1e-2, 2e-4, sanitized_build ? 5 : 1);
}

TEST_CASE("each sequence gets the gradient of its own loss, in order") {
    auto m = l2c::random_model(tiny_config(true, 2, 20), 5, 0.3f);
    auto toks = random_tokens(3, 17, 37, 9);
    std::vector<std::tuple<index_t, index_t, int>> calls;
    std::vector<l2c::RowMatrixXf> w1_grads;
    const auto losses = l2c::per_sample_gradients(
        m, toks.view(), tcq::par(2), [&](index_t s, index_t l, linear_kind k, tcq::matrix_view<const float> d) {
            calls.emplace_back(s, l, static_cast<int>(k));
            if (l == 1 && k == linear_kind::w1) w1_grads.emplace_back(tcq::as_eigen(d));
        });
    REQUIRE(calls.size() == 3u * 2u * 7u);
    CHECK(std::is_sorted(calls.begin(), calls.end()));
    REQUIRE(losses.size() == 3u);
    for (index_t s = 0; s < 3; ++s) {
        CHECK(losses[static_cast<std::size_t>(s)] == doctest::Approx(loss_of(m, toks.row(s))).epsilon(1e-6));
        const auto single = gradients_of(m, toks.row(s));
        CHECK(same_bits(w1_grads[static_cast<std::size_t>(s)], single[1][static_cast<std::size_t>(linear_kind::w1)]));
    }
    // The gradient of sequence 1 differs from that of sequence 0 (the sink is per sample).
    CHECK_FALSE(same_bits(w1_grads[0], w1_grads[1]));
}

TEST_CASE("per-sample gradients are identical for 1, 2 and 3 threads and a user executor") {
    const auto m = l2c::load_checkpoint(fixture_dir + "model/model.bin");
    const auto text = l2c::read_text(fixture_dir + "data/shakespeare.valid.txt");
    const auto toks = l2c::sample_windows(text, sanitized_build ? 3 : 5, 17, "shakespeare", 97);
    auto run = [&](const tcq::exec_policy& pol) {
        std::vector<l2c::RowMatrixXf> sum(static_cast<std::size_t>(m.cfg().n_layers * 7));
        std::vector<index_t> order;
        l2c::per_sample_gradients(m, toks.view(), pol, [&](index_t s, index_t l, linear_kind k, tcq::matrix_view<const float> d) {
            if (order.empty() || order.back() != s) order.push_back(s);
            auto& a = sum[static_cast<std::size_t>(l * 7 + static_cast<index_t>(k))];
            if (a.size() == 0) a = l2c::RowMatrixXf::Zero(d.rows(), d.cols());
            a += tcq::as_eigen(d).cwiseAbs();
        });
        CHECK(order.size() == static_cast<std::size_t>(toks.count));
        CHECK(std::is_sorted(order.begin(), order.end()));
        return sum;
    };
    const auto ref = run(tcq::seq());
    tcq::exec_policy user = tcq::par(2);
    user.executor = [](index_t n, const std::function<void(index_t)>& task) {
        for (index_t i = n - 1; i >= 0; --i) task(i);  // reverse order on purpose
    };
    for (const auto& pol : {tcq::par(2), tcq::par(3), user}) {
        const auto got = run(pol);
        for (std::size_t i = 0; i < ref.size(); ++i) CHECK(same_bits(ref[i], got[i]));
    }
}

TEST_CASE("staged forward with capture equals the full forward") {
    const auto m = l2c::load_checkpoint(fixture_dir + "model/model.bin");
    const auto text = l2c::read_text(fixture_dir + "data/gsm8k.valid.txt");
    const auto toks = l2c::sample_windows(text, 5, 3, "gsm8k", 45);
    const auto full = l2c::sequence_losses(m, toks.view(), tcq::par(2));

    auto h = l2c::embed(m, toks.view());
    for (index_t l = 0; l < m.cfg().n_layers; ++l) {
        CAPTURE(l);
        // Inputs captured by block_forward, keyed by (kind, seq).
        std::vector<std::tuple<int, index_t, l2c::RowMatrixXf>> seen;
        // Group captures (before the block advances) must agree bit for bit.
        std::vector<std::tuple<int, index_t, l2c::RowMatrixXf>> grouped;
        for (auto g : {l2c::linear_group::attn_in, l2c::linear_group::attn_out, l2c::linear_group::ffn_in,
                       l2c::linear_group::ffn_out})
            l2c::capture_group(m, l, h, g, tcq::par(2), [&](linear_kind k, index_t s, tcq::matrix_view<const float> X) {
                CHECK(l2c::group_of(k) == g);
                grouped.emplace_back(static_cast<int>(k), s, tcq::as_eigen(X));
            });
        // capture_block delivers the same inputs and leaves h unchanged.
        std::vector<std::tuple<int, index_t, l2c::RowMatrixXf>> whole;
        const l2c::RowMatrixXf before = h.x;
        l2c::capture_block(m, l, h, tcq::par(2), [&](linear_kind k, index_t s, tcq::matrix_view<const float> X) {
            whole.emplace_back(static_cast<int>(k), s, tcq::as_eigen(X));
        });
        CHECK(same_bits(before, h.x));
        // wq's input is the attention RMSNorm of the block input.
        const l2c::RowMatrixXf x2 = tcq::as_eigen(h.sequence(2));
        const auto& w = m.layers[static_cast<std::size_t>(l)];
        l2c::RowMatrixXf xn(x2.rows(), x2.cols());
        for (index_t r = 0; r < x2.rows(); ++r) {
            const float s = 1.0f / std::sqrt(x2.row(r).squaredNorm() / static_cast<float>(x2.cols()) + 1e-5f);
            for (index_t c = 0; c < x2.cols(); ++c) xn(r, c) = w.rms_att[static_cast<std::size_t>(c)] * (s * x2(r, c));
        }
        l2c::block_forward(m, l, h, tcq::par(2), [&](linear_kind k, index_t s, tcq::matrix_view<const float> X) {
            CHECK(X.rows() == 45);
            CHECK(X.cols() == m.linear(l, k).cols());
            seen.emplace_back(static_cast<int>(k), s, tcq::as_eigen(X));
        });
        REQUIRE(seen.size() == 5u * 7u);
        // Order: sequences increasing; per sequence wq, wk, wv, wo, w1, w3, w2.
        const int order[] = {0, 1, 2, 3, 4, 6, 5};
        for (std::size_t i = 0; i < seen.size(); ++i) {
            CHECK(std::get<1>(seen[i]) == static_cast<index_t>(i / 7));
            CHECK(std::get<0>(seen[i]) == order[i % 7]);
        }
        CHECK((std::get<2>(seen[2 * 7]) - xn).cwiseAbs().maxCoeff() < 1e-5f);
        REQUIRE(whole.size() == seen.size());
        for (std::size_t i = 0; i < seen.size(); ++i) {
            CHECK(std::get<0>(whole[i]) == std::get<0>(seen[i]));
            CHECK(std::get<1>(whole[i]) == std::get<1>(seen[i]));
            CHECK(same_bits(std::get<2>(whole[i]), std::get<2>(seen[i])));
        }
        REQUIRE(grouped.size() == seen.size());
        for (const auto& g : grouped) {
            // no structured bindings here: clang 14 cannot capture them in the lambda
            const auto k = std::get<0>(g);
            const auto s = std::get<1>(g);
            const auto it = std::find_if(seen.begin(), seen.end(), [&](const auto& e) {
                return std::get<0>(e) == k && std::get<1>(e) == s;
            });
            REQUIRE(it != seen.end());
            CHECK(same_bits(std::get<2>(*it), std::get<2>(g)));
        }
    }
    const auto staged = l2c::output_losses(m, h, toks.view(), tcq::par(2));
    for (std::size_t s = 0; s < full.size(); ++s) CHECK(staged[s] == doctest::Approx(full[s]).epsilon(1e-6));
}

TEST_CASE("staged forward and losses are identical for any thread count") {
    const auto m = l2c::load_checkpoint(fixture_dir + "model/model.bin");
    const auto toks = l2c::sample_windows(l2c::read_text(fixture_dir + "data/arith.calib.txt"), 7, 1, "arith", 33);
    auto staged = [&](const tcq::exec_policy& pol) {
        auto h = l2c::embed(m, toks.view());
        for (index_t l = 0; l < m.cfg().n_layers; ++l) l2c::block_forward(m, l, h, pol);
        return h.x;
    };
    const auto ref = staged(tcq::seq());
    CHECK(same_bits(ref, staged(tcq::par(2))));
    CHECK(same_bits(ref, staged(tcq::par(3))));
    CHECK(l2c::sequence_losses(m, toks.view(), tcq::seq()) == l2c::sequence_losses(m, toks.view(), tcq::par(3)));
}

TEST_CASE("block_forward and per_sample_gradients reject bad input") {
    const auto m = l2c::random_model(tiny_config(true, 2, 16), 1);
    auto h = l2c::embed(m, random_tokens(2, 9, 37, 1).view());
    CHECK_THROWS_AS(l2c::block_forward(m, 2, h, tcq::seq()), tcq::error);
    CHECK_THROWS_AS(l2c::block_forward(m, -1, h, tcq::seq()), tcq::error);
    auto bad = h;
    bad.length = 8;  // rows no longer match count × length
    CHECK_THROWS_AS(l2c::block_forward(m, 0, bad, tcq::seq()), tcq::error);
    CHECK_THROWS_AS(l2c::capture_block(m, 0, h, tcq::seq(), {}), tcq::error);
    auto toks = random_tokens(2, 9, 37, 1);
    toks.tokens[5] = 37;
    CHECK_THROWS_WITH_AS(l2c::per_sample_gradients(m, toks.view(), tcq::seq(), {}),
                         doctest::Contains("outside the vocabulary"), tcq::error);
    CHECK_THROWS_AS(l2c::per_sample_gradients(m, random_tokens(1, 17, 37, 1).view(), tcq::seq(), {}), tcq::error);
    CHECK_THROWS_AS(l2c::per_sample_gradients(m, random_tokens(1, 1, 37, 1).view(), tcq::seq(), {}), tcq::error);
}

TEST_CASE("ordered_for delivers in order and propagates exceptions") {
    for (int threads : {1, 2, 3}) {
        std::vector<index_t> got;
        std::vector<int> slot_owner(static_cast<std::size_t>(l2c::ordered_slots(tcq::par(threads), 50)), -1);
        l2c::ordered_for(
            tcq::par(threads), 50, [&](index_t i, index_t slot) { slot_owner[static_cast<std::size_t>(slot)] = static_cast<int>(i); },
            [&](index_t i, index_t slot) {
                CHECK(slot_owner[static_cast<std::size_t>(slot)] == i);  // nobody overwrote the slot before delivery
                got.push_back(i);
            });
        std::vector<index_t> want(50);
        for (index_t i = 0; i < 50; ++i) want[static_cast<std::size_t>(i)] = i;
        CHECK(got == want);
        CHECK_THROWS_WITH(l2c::ordered_for(
                              tcq::par(threads), 20,
                              [](index_t i, index_t) {
                                  if (i == 7) throw tcq::error("compute 7");
                              },
                              [](index_t, index_t) {}),
                          "compute 7");
        CHECK_THROWS_WITH(l2c::ordered_for(
                              tcq::par(threads), 20, [](index_t, index_t) {},
                              [](index_t i, index_t) {
                                  if (i == 3) throw tcq::error("deliver 3");
                              }),
                          "deliver 3");
    }
}
