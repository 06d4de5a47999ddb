// The fixture through the engine's gradient and staged paths: per-sample
// gradients vs finite differences, thread-count bit-identity (with a user
// executor), staged forward with capture, bad input, ordered_for; and TaCQ
// through the tcq file reproducing the in-process model bit for bit.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "llama/adapter.hpp"
#include "llama/checkpoint.hpp"
#include "llama/codec.hpp"
#include "llama/tcq_file.hpp"
#include "tcq/core/half.hpp"
#include "tcq/pipeline/result_file.hpp"

#include "llama_test_util.hpp"
#include "sanitized_build.hpp"

// Own namespace: the four engine test files compile as one unity translation
// unit (tests/llama.cmake), where their helpers would otherwise collide.
namespace test_llama_fixture_grad {

using llama::index_t;
using llama::linear_kind;
using llama::RowMatrixXf;

namespace {

const std::string fixture_dir = TCQ_SOURCE_DIR "/examples/fixture/";

llama::model fixture() { return llama::load_llama2c(fixture_dir + "model/model.bin"); }

/// `n` seeded calibration windows of `length` tokens from a fixture text.
llama::token_batch sample(const char* file, index_t n, std::uint64_t seed, index_t length) {
    const auto c = llama::text_codec::bytes();
    return llama::id_sample_windows(c.prefix(), c.encode(llama::read_text(fixture_dir + "data/" + file)), n, seed, file,
                                    length);
}

llama::token_batch random_tokens(index_t n, index_t len, index_t vocab, unsigned seed) {
    std::mt19937 g(seed);
    llama::token_batch b(n, len);
    for (auto& t : b.tokens) t = static_cast<std::int32_t>(g() % static_cast<unsigned>(vocab));
    return b;
}


/// Gradients of every linear layer of one sequence: [layer][kind].
std::vector<std::vector<RowMatrixXf>> gradients_of(const llama::model& m, std::span<const std::int32_t> tokens) {
    std::vector<std::vector<RowMatrixXf>> g(static_cast<std::size_t>(m.cfg().n_layers), std::vector<RowMatrixXf>(7));
    (void)llama::per_sample_gradients(m, tcq::make_view(tokens.data(), 1, static_cast<index_t>(tokens.size())),
                                      tcq::seq(), [&](index_t, index_t l, linear_kind k, tcq::matrix_view<const float> d) {
                                          g[static_cast<std::size_t>(l)][static_cast<std::size_t>(k)] = tcq::as_eigen(d);
                                      });
    return g;
}


bool same_bits(const RowMatrixXf& a, const RowMatrixXf& b) {
    return a.rows() == b.rows() && a.cols() == b.cols() &&
           std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
}

}  // namespace

TEST_CASE("per-sample gradients match finite differences on the fixture model") {
    auto m = fixture();
    const auto toks = sample("arith.valid.txt", 1, 5, 33);
    const auto g = gradients_of(m, toks.row(0));
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.f, 1.f);
    const double rel = 1e-2, abs_tol = 2e-4;
    for (index_t l = 0; l < m.cfg().n_layers; l += sanitized_build ? 5 : 1)
        for (auto k : llama::all_linear_kinds) {
            CAPTURE(llama::linear_name(l, k));
            const auto& G = g[static_cast<std::size_t>(l)][static_cast<std::size_t>(k)];
            REQUIRE(G.rows() == m.linear(l, k).rows());
            REQUIRE(G.cols() == m.linear(l, k).cols());
            CHECK(G.norm() > 1e-4);  // not passing on a zero gradient
            // Along a random direction: any wrong entry shifts the projection; scale by ‖G‖.
            RowMatrixXf D(G.rows(), G.cols());
            for (index_t i = 0; i < D.size(); ++i) D.data()[i] = nd(rng);
            const double analytic = static_cast<double>(G.cwiseProduct(D).sum());
            const double fd = directional_fd(m, l, k, D, 2e-3, toks.row(0));
            CAPTURE(analytic);
            CAPTURE(fd);
            CHECK(std::abs(fd - analytic) <= rel * std::max<double>(std::abs(analytic), G.norm()) + abs_tol);
            // And on the largest entry.
            Eigen::Index i = 0;
            Eigen::Map<const Eigen::VectorXf>(G.data(), G.size()).cwiseAbs().maxCoeff(&i);
            RowMatrixXf E = RowMatrixXf::Zero(G.rows(), G.cols());
            E.data()[i] = 1.f;
            const double a = G.data()[i], f = directional_fd(m, l, k, E, 1e-2, toks.row(0));
            CAPTURE(a);
            CAPTURE(f);
            CHECK(std::abs(f - a) <= rel * std::abs(a) + abs_tol);
        }
}

TEST_CASE("each sequence gets the gradient of its own loss, in order per layer") {
    auto c = llama_tiny_config();
    c.rope = llama::rope_pairs::interleaved;
    const auto m = llama::random_model(c, 5, 0.3f);
    const auto toks = random_tokens(3, 17, c.vocab_size, 9);
    std::vector<std::vector<std::pair<index_t, int>>> calls(2);  // per layer: (seq, kind)
    std::vector<RowMatrixXf> gate_grads;
    const auto losses = llama::per_sample_gradients(
        m, toks.view(), tcq::par(2), [&](index_t s, index_t l, linear_kind k, tcq::matrix_view<const float> d) {
            calls[static_cast<std::size_t>(l)].emplace_back(s, static_cast<int>(k));
            if (l == 1 && k == linear_kind::gate) gate_grads.emplace_back(tcq::as_eigen(d));
        });
    for (const auto& per_layer : calls) {
        REQUIRE(per_layer.size() == 3u * 7u);
        CHECK(std::is_sorted(per_layer.begin(), per_layer.end()));  // sequences increasing, kinds in order
    }
    REQUIRE(losses.size() == 3u);
    REQUIRE(gate_grads.size() == 3u);
    for (index_t s = 0; s < 3; ++s) {
        CHECK(losses[static_cast<std::size_t>(s)] == doctest::Approx(loss_of(m, toks.row(s))).epsilon(1e-6));
        const auto single = gradients_of(m, toks.row(s));
        CHECK(same_bits(gate_grads[static_cast<std::size_t>(s)], single[1][static_cast<std::size_t>(linear_kind::gate)]));
    }
    CHECK_FALSE(same_bits(gate_grads[0], gate_grads[1]));  // the sink is per sample
}

TEST_CASE("fixture per-sample gradients are identical for 1, 2 and 3 threads and a user executor") {
    const auto m = fixture();
    const auto toks = sample("shakespeare.valid.txt", sanitized_build ? 3 : 5, 17, 97);
    auto run = [&](const tcq::exec_policy& pol) {
        std::vector<RowMatrixXf> sum(static_cast<std::size_t>(m.cfg().n_layers * 7));
        std::vector<index_t> last(static_cast<std::size_t>(m.cfg().n_layers), -1);
        (void)llama::per_sample_gradients(m, toks.view(), pol, [&](index_t s, index_t l, linear_kind k, tcq::matrix_view<const float> d) {
            CHECK(s >= last[static_cast<std::size_t>(l)]);
            last[static_cast<std::size_t>(l)] = s;
            auto& a = sum[static_cast<std::size_t>(l * 7 + static_cast<index_t>(k))];
            if (a.size() == 0) a = RowMatrixXf::Zero(d.rows(), d.cols());
            a += tcq::as_eigen(d).cwiseAbs();  // accumulation order is part of what must not change
        });
        for (index_t v : last) CHECK(v == toks.count - 1);
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

TEST_CASE("staged forward with capture equals the full forward on the fixture") {
    const auto m = fixture();
    const auto toks = sample("gsm8k.valid.txt", 5, 3, 45);
    const auto full = llama::sequence_losses(m, toks.view(), tcq::par(2));
    using captured = std::vector<std::tuple<int, index_t, RowMatrixXf>>;  // (kind, seq, X)

    auto h = llama::embed(m, toks.view());
    for (index_t l = 0; l < m.cfg().n_layers; ++l) {
        CAPTURE(l);
        // Group by group, then the whole block: same inputs, states unchanged.
        captured grouped, whole, seen;
        for (auto g : {llama::linear_group::attn_in, llama::linear_group::attn_out, llama::linear_group::ffn_in,
                       llama::linear_group::ffn_out})
            llama::capture_block(m, l, h, g, tcq::par(2), [&](linear_kind k, index_t s, tcq::matrix_view<const float> X) {
                CHECK(llama::group_of(k) == g);
                grouped.emplace_back(static_cast<int>(k), s, tcq::as_eigen(X));
            });
        const RowMatrixXf before = h.x;
        llama::capture_block(m, l, h, std::nullopt, tcq::par(2), [&](linear_kind k, index_t s, tcq::matrix_view<const float> X) {
            whole.emplace_back(static_cast<int>(k), s, tcq::as_eigen(X));
        });
        CHECK(same_bits(before, h.x));
        // q's input is the attention RMSNorm of the block input.
        const RowMatrixXf x2 = h.x.middleRows(2 * 45, 45);
        const auto& w = m.layers[static_cast<std::size_t>(l)];
        RowMatrixXf xn(x2.rows(), x2.cols());
        for (index_t r = 0; r < x2.rows(); ++r) {
            const float s = 1.0f / std::sqrt(x2.row(r).squaredNorm() / static_cast<float>(x2.cols()) + 1e-5f);
            for (index_t c = 0; c < x2.cols(); ++c) xn(r, c) = w.attn_norm[static_cast<std::size_t>(c)] * (s * x2(r, c));
        }
        llama::block_forward(m, l, h, tcq::par(2), [&](linear_kind k, index_t s, tcq::matrix_view<const float> X) {
            CHECK(X.rows() == 45);
            CHECK(X.cols() == m.linear(l, k).cols());
            seen.emplace_back(static_cast<int>(k), s, tcq::as_eigen(X));
        });
        REQUIRE(seen.size() == 5u * 7u);
        // Sequences increasing; per sequence q, k, v, o, gate, up, down.
        for (std::size_t i = 0; i < seen.size(); ++i) {
            CHECK(std::get<1>(seen[i]) == static_cast<index_t>(i / 7));
            CHECK(std::get<0>(seen[i]) == static_cast<int>(i % 7));
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
            const auto k = std::get<0>(g);  // no structured bindings: clang 14 cannot capture them
            const auto s = std::get<1>(g);
            const auto it = std::find_if(seen.begin(), seen.end(),
                                         [&](const auto& e) { return std::get<0>(e) == k && std::get<1>(e) == s; });
            REQUIRE(it != seen.end());
            CHECK(same_bits(std::get<2>(*it), std::get<2>(g)));
        }
    }
    // The head on the staged states gives the full forward's losses.
    for (index_t s = 0; s < toks.count; ++s) {
        llama::detail::head_acts head;
        llama::detail::run_head(m, h.x.middleRows(s * 45, 45), head);
        const double staged = llama::ops::next_token_loss(head.logits, toks.row(s), nullptr);
        CHECK(staged == doctest::Approx(full[static_cast<std::size_t>(s)]).epsilon(1e-6));
    }
}

TEST_CASE("fixture staged forward and losses are identical for any thread count") {
    const auto m = fixture();
    const auto toks = sample("arith.calib.txt", 7, 1, 33);
    auto staged = [&](const tcq::exec_policy& pol) {
        auto h = llama::embed(m, toks.view());
        for (index_t l = 0; l < m.cfg().n_layers; ++l) llama::block_forward(m, l, h, pol);
        return h.x;
    };
    const auto ref = staged(tcq::seq());
    CHECK(same_bits(ref, staged(tcq::par(2))));
    CHECK(same_bits(ref, staged(tcq::par(3))));
    CHECK(llama::sequence_losses(m, toks.view(), tcq::seq()) == llama::sequence_losses(m, toks.view(), tcq::par(3)));
}

TEST_CASE("block_forward, capture_block and per_sample_gradients reject bad input") {
    auto c = llama_tiny_config();
    c.max_seq = 16;
    const auto m = llama::random_model(c, 1);
    auto h = llama::embed(m, random_tokens(2, 9, c.vocab_size, 1).view());
    CHECK_THROWS_WITH_AS(llama::block_forward(m, 2, h, tcq::seq()), doctest::Contains("layer 2 outside [0, 2)"),
                         tcq::error);
    CHECK_THROWS_AS(llama::block_forward(m, -1, h, tcq::seq()), tcq::error);
    auto bad = h;
    bad.length = 8;  // rows no longer match count × length
    CHECK_THROWS_WITH_AS(llama::block_forward(m, 0, bad, tcq::seq()), doctest::Contains("do not hold 2 sequences"),
                         tcq::error);
    CHECK_THROWS_WITH_AS(llama::capture_block(m, 0, h, std::nullopt, tcq::seq(), {}), doctest::Contains("empty hook"),
                         tcq::error);
    auto toks = random_tokens(2, 9, c.vocab_size, 1);
    toks.tokens[5] = static_cast<std::int32_t>(c.vocab_size);
    CHECK_THROWS_WITH_AS((void)llama::per_sample_gradients(m, toks.view(), tcq::seq(), {}),
                         doctest::Contains("outside the vocabulary"), tcq::error);
    CHECK_THROWS_AS((void)llama::per_sample_gradients(m, random_tokens(1, 17, c.vocab_size, 1).view(), tcq::seq(), {}),
                    tcq::error);
    CHECK_THROWS_AS((void)llama::per_sample_gradients(m, random_tokens(1, 1, c.vocab_size, 1).view(), tcq::seq(), {}),
                    tcq::error);
}

TEST_CASE("ordered_for delivers in order and propagates exceptions") {
    tcq::exec_policy user = tcq::par(3);
    user.executor = [](index_t n, const std::function<void(index_t)>& task) {
        for (index_t i = n - 1; i >= 0; --i) task(i);
    };
    for (const auto& pol : {tcq::par(1), tcq::par(2), tcq::par(3), user}) {
        CAPTURE(pol.resolved_threads());
        std::vector<index_t> got;
        std::vector<int> slot_owner(static_cast<std::size_t>(llama::ordered_slots(pol, 51)), -1);
        llama::ordered_for(
            pol, 51, [&](index_t i, index_t slot) { slot_owner[static_cast<std::size_t>(slot)] = static_cast<int>(i); },
            [&](index_t i, index_t slot) {
                CHECK(slot_owner[static_cast<std::size_t>(slot)] == i);  // nobody overwrote the slot before delivery
                got.push_back(i);
            });
        std::vector<index_t> want(51);
        for (index_t i = 0; i < 51; ++i) want[static_cast<std::size_t>(i)] = i;
        CHECK(got == want);
        CHECK_THROWS_WITH(llama::ordered_for(
                              pol, 21,
                              [](index_t i, index_t) {
                                  if (i == 7) throw tcq::error("compute 7");
                              },
                              [](index_t, index_t) {}),
                          "compute 7");
        CHECK_THROWS_WITH(llama::ordered_for(
                              pol, 21, [](index_t, index_t) {},
                              [](index_t i, index_t) {
                                  if (i == 3) throw tcq::error("deliver 3");
                              }),
                          "deliver 3");
    }
    CHECK(llama::ordered_slots(tcq::par(3), 1) == 1);
    CHECK(llama::ordered_slots(tcq::par(3), 50) == 4);
}

TEST_CASE("TaCQ on the fixture: the in-process model equals the tcq file's model bit for bit") {
    const auto base = fixture();
    const auto calib = sample("arith.calib.txt", 6, 7, 64);
    const auto pol = tcq::par(2);
    const auto valid = llama::read_text(fixture_dir + "data/arith.valid.txt");
    const auto codec = llama::text_codec::bytes();
    const auto windows = llama::id_eval_windows(codec.prefix(), codec.encode(valid), 4, "arith", 256);
    index_t n_linear = 0;
    for (index_t l = 0; l < base.cfg().n_layers; ++l)
        for (auto k : llama::all_linear_kinds) n_linear += base.linear(l, k).rows() * base.linear(l, k).cols();
    for (const auto fmt : {tcq::value_format::fp16, tcq::value_format::bf16}) {
        CAPTURE(tcq::to_string(fmt));
        auto m = base;
        llama::adapter ad(m, calib.view(), pol);
        tcq::pipeline p(ad);
        tcq::pipeline_options o;
        o.method = tcq::quant_method::tacq;
        o.gptq.grid.bits = 3;
        o.kept = tcq::budget::of_ratio(0.01);
        o.kept_format = fmt;
        o.pol = pol;
        const auto r = p.run(o);
        CHECK(r.kept() == static_cast<index_t>(0.01 * static_cast<double>(n_linear)));
        CHECK(r.kept_format == fmt);
        CHECK(r.names[0] == "model.layers.0.self_attn.q_proj");

        const auto path = std::filesystem::temp_directory_path() / "tcq_test_llama_fixture_tacq.tcq";
        tcq::file_metadata meta;
        meta.extra.push_back({"rope_pairs", "interleaved"});
        const auto cost = tcq::write_result(r, meta, path, pol);
        CHECK(cost.per_weight() == doctest::Approx(r.bits().per_weight()).epsilon(1e-12));
        auto loaded = base;
        const auto file = tcq::packed_file::open(path);
        CHECK(file.find(r.names[0]).info().kept_format == fmt);
        CHECK(file.metadata().method == "tacq");
        CHECK(file.metadata().bits == 3);
        llama::apply_tcq(loaded, file, path.string(), pol);
        std::filesystem::remove(path);

        index_t i = 0, kept = 0, off_grid = 0;
        for (index_t l = 0; l < base.cfg().n_layers; ++l)
            for (auto k : llama::all_linear_kinds) {
                const auto& q = r.layers[static_cast<std::size_t>(i++)];
                const auto w = loaded.linear(l, k);
                const auto mine = std::as_const(m).linear(l, k);
                REQUIRE(w.rows() == q.rows());
                for (index_t rr = 0; rr < q.rows(); ++rr)
                    for (index_t cc = 0; cc < q.cols(); ++cc) {
                        const float v = q.values[static_cast<std::size_t>(rr * q.cols() + cc)];
                        const bool is_kept = q.kept.size() && q.kept.test(rr, cc);
                        kept += is_kept;
                        // kept values are already 16-bit values of the chosen format
                        if (is_kept)
                            off_grid += v != (fmt == tcq::value_format::bf16 ? tcq::round_to_bf16(v) : tcq::round_to_half(v));
                        REQUIRE(w(rr, cc) == v);
                        REQUIRE(mine(rr, cc) == v);  // what compare evaluates
                    }
            }
        CHECK(kept == r.kept());
        CHECK(off_grid == 0);
        CHECK(llama::task_loss(m, windows.view(), pol).loss == llama::task_loss(loaded, windows.view(), pol).loss);
    }
}

TEST_CASE("block_stager captures what capture_block does, group by group, with weights changing in between") {
    auto a = fixture(), b = fixture();
    const auto calib = sample("arith.calib.txt", 3, 7, 65);  // odd: the last chunk holds one sequence
    auto ha = llama::embed(a, calib.view()), hb = llama::embed(b, calib.view());
    using X = std::vector<std::tuple<linear_kind, index_t, std::vector<float>>>;
    auto recorder = [](X& out) {
        return [&out](linear_kind k, index_t s, tcq::matrix_view<const float> x) {
            out.emplace_back(k, s, std::vector<float>(x.data(), x.data() + x.size()));
        };
    };
    for (index_t layer : {0, 1}) {
        llama::block_stager st(a, layer, ha);
        for (auto g : {llama::linear_group::attn_in, llama::linear_group::attn_out, llama::linear_group::ffn_in,
                       llama::linear_group::ffn_out}) {
            X xa, xb;
            st.capture(g, tcq::par(2), recorder(xa));
            llama::capture_block(b, layer, hb, g, tcq::par(2), recorder(xb));
            CHECK(xa.size() == xb.size());
            CHECK(xa == xb);
            // "quantize" the group: scale its weights in both models the same way
            for (auto k : llama::all_linear_kinds)
                if (llama::group_of(k) == g) {
                    a.layers[static_cast<std::size_t>(layer)][k] *= 0.75f;
                    b.layers[static_cast<std::size_t>(layer)][k] *= 0.75f;
                }
        }
        CHECK_THROWS_WITH_AS(st.capture(llama::linear_group::attn_in, tcq::seq(), {}), doctest::Contains("out of order"),
                             tcq::error);
        st.advance(tcq::par(2));
        llama::block_forward(b, layer, hb, tcq::par(2));
        CHECK(ha.x == hb.x);
    }
    llama::block_stager early(a, 2, ha);
    CHECK_THROWS_WITH_AS(early.advance(tcq::seq()), doctest::Contains("advance before all four groups"), tcq::error);
}

}  // namespace test_llama_fixture_grad
