#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "error_message.hpp"
#include "tcq/reference/saliency.hpp"
#include "tcq/saliency/accumulator.hpp"
#include "tcq/saliency/scores.hpp"
#include "test_util.hpp"

namespace {
using test_util::message_of;
using test_util::randn;
using test_util::uniform;
bool bits_equal(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
}  // namespace

TEST_CASE("accumulators equal hand sums") {
    // Two samples of a 2x3 gradient.
    const std::vector<float> g1 = {1.f, -2.f, 0.5f, 0.f, 3.f, -1.f};
    const std::vector<float> g2 = {-1.f, -2.f, 0.25f, 4.f, -3.f, 2.f};
    tcq::grad_accumulator acc(2, 3, tcq::grad_stats::all, "layer0.q");
    acc.add(tcq::make_view(g1.data(), 2, 3));
    acc.add(tcq::make_view(g2.data(), 2, 3));
    CHECK(acc.samples() == 2);
    const float abs_sum[] = {2.f, 4.f, 0.75f, 4.f, 6.f, 3.f};
    const float sum[] = {0.f, -4.f, 0.75f, 4.f, 0.f, 1.f};
    const float sq[] = {2.f, 8.f, 0.3125f, 16.f, 18.f, 5.f};
    for (int i = 0; i < 6; ++i) {
        CHECK(acc.abs_sum()(i / 3, i % 3) == abs_sum[i]);
        CHECK(acc.sum()(i / 3, i % 3) == sum[i]);
        CHECK(acc.sq_sum()(i / 3, i % 3) == sq[i]);
    }
    acc.reset();
    CHECK(acc.samples() == 0);
    CHECK(acc.abs_sum()(1, 1) == 0.f);
}

TEST_CASE("accumulators: SIMD equals scalar twin bit for bit, any thread count, strided") {
    for (auto [R, C] : {std::pair{1, 1}, {3, 7}, {5, 17}, {9, 33}, {17, 129}, {2, 1001}}) {
        const tcq::index_t S = C + 3;  // strided gradient rows
        std::vector<float> ref_abs(R * C, 0.f), ref_sum(R * C, 0.f), ref_sq(R * C, 0.f);
        tcq::grad_accumulator a1(R, C, tcq::grad_stats::all), a2(R, C, tcq::grad_stats::all);
        std::vector<float> only_abs(R * C, 0.f);
        for (unsigned s = 0; s < 5; ++s) {
            const auto g = randn(static_cast<std::size_t>(R * S), 1000u * R + 7u * C + s, 0.1f);
            const auto gv = tcq::make_view(g.data(), R, C, S);
            a1.add(gv, tcq::seq());
            a2.add(gv, tcq::par(2));
            tcq::accumulate_abs(tcq::make_view(only_abs.data(), R, C), gv, tcq::par(2));
            tcq::reference::accumulate_abs(tcq::make_view(ref_abs.data(), R, C), gv);
            tcq::reference::accumulate(tcq::make_view(ref_sum.data(), R, C), gv);
            tcq::reference::accumulate_sq(tcq::make_view(ref_sq.data(), R, C), gv);
        }
        auto vec = [](tcq::matrix_view<const float> v) { return std::vector<float>(v.data(), v.data() + v.size()); };
        CHECK(bits_equal(vec(a1.abs_sum()), ref_abs));
        CHECK(bits_equal(vec(a1.sum()), ref_sum));
        CHECK(bits_equal(vec(a1.sq_sum()), ref_sq));
        CHECK(bits_equal(vec(a2.abs_sum()), ref_abs));
        CHECK(bits_equal(vec(a2.sum()), ref_sum));
        CHECK(bits_equal(vec(a2.sq_sum()), ref_sq));
        CHECK(bits_equal(only_abs, ref_abs));
    }
}

TEST_CASE("accumulators: bad input throws; a failed add poisons until reset") {
    tcq::grad_accumulator acc(3, 5, tcq::grad_stats::abs_sum | tcq::grad_stats::sq_sum, "blk1.w2");
    std::vector<float> g(15, 0.5f);
    acc.add(tcq::make_view(g.data(), 3, 5));
    CHECK(message_of([&] { (void)acc.sum(); }).find("not tracked") != std::string::npos);
    std::vector<float> wrong(12, 0.f);
    CHECK(message_of([&] { acc.add(tcq::make_view(wrong.data(), 3, 4)); }).find("shape mismatch") != std::string::npos);
    g[7] = std::numeric_limits<float>::quiet_NaN();
    const auto msg = message_of([&] { acc.add(tcq::make_view(g.data(), 3, 5), tcq::par(2)); });
    CHECK(msg.find("blk1.w2") != std::string::npos);
    CHECK(msg.find("(1, 2)") != std::string::npos);
    CHECK_THROWS_AS((void)acc.abs_sum(), tcq::error);
    CHECK_THROWS_AS(acc.add(tcq::make_view(g.data(), 3, 5)), tcq::error);
    acc.reset();
    g[7] = 1.f;
    acc.add(tcq::make_view(g.data(), 3, 5));
    CHECK(acc.abs_sum()(1, 2) == 1.f);
    // Overflow of a finite sum is an error too.
    std::vector<float> huge(15, 3e38f), a(15, 3e38f);
    CHECK(message_of([&] { tcq::accumulate_abs(tcq::make_view(a.data(), 3, 5), tcq::make_view(huge.data(), 3, 5)); })
              .find("overflows") != std::string::npos);
    CHECK_THROWS_AS(tcq::grad_accumulator(-1, 3), tcq::error);
}

TEST_CASE("every score against a hand-computed case") {
    const float W[] = {1.f, -2.f, 0.5f}, Q[] = {0.5f, -1.f, 0.5f}, A[] = {2.f, 3.f, 4.f}, G2[] = {4.f, 1.f, 9.f};
    const float U[] = {0.5f, 2.f, 1.f}, H[] = {4.f, 9.f, 16.f};
    tcq::score_inputs in;
    in.W = tcq::make_view(W, 1, 3);
    in.Q = tcq::make_view(Q, 1, 3);
    in.grad_abs = tcq::make_view(A, 1, 3);
    in.grad_sq = tcq::make_view(G2, 1, 3);
    in.u_diag = U;
    in.h_diag = H;
    const std::vector<std::pair<tcq::score_method, std::vector<float>>> cases = {
        {tcq::score_method::tacq, {1.f, 6.f, 0.f}},      {tcq::score_method::grad_delta, {1.f, 3.f, 0.f}},
        {tcq::score_method::fisher, {1.f, 1.f, 0.f}},    {tcq::score_method::spqr, {1.f, 0.25f, 0.f}},
        {tcq::score_method::magnitude, {1.f, 2.f, 0.5f}}, {tcq::score_method::wanda, {2.f, 6.f, 2.f}},
    };
    for (const auto& c : cases) {
        const tcq::score_method m = c.first;
        const std::vector<float>& want = c.second;
        CAPTURE(tcq::to_string(m));
        std::vector<float> out(3, -1.f), ref(3, -1.f);
        tcq::compute_scores(m, in, tcq::make_view(out.data(), 1, 3));
        tcq::reference::compute_scores(m, in, tcq::make_view(ref.data(), 1, 3));
        CHECK(out == want);
        CHECK(ref == want);
    }
    std::vector<float> r1(3), r2(3);
    in.seed = 7;
    tcq::compute_scores(tcq::score_method::random, in, tcq::make_view(r1.data(), 1, 3));
    for (int c = 0; c < 3; ++c) {
        CHECK(r1[c] == tcq::score_math::random_score(7, c));
        CHECK(r1[c] >= 0.f);
        CHECK(r1[c] < 1.f);
    }
    in.seed = 8;
    tcq::compute_scores(tcq::score_method::random, in, tcq::make_view(r2.data(), 1, 3));
    CHECK(r1 != r2);
}

TEST_CASE("scores: SIMD equals scalar twin bit for bit on odd strided sizes, any thread count") {
    for (auto [R, C] : {std::pair{1, 1}, {3, 7}, {5, 15}, {7, 17}, {9, 33}, {13, 129}, {3, 1001}}) {
        const tcq::index_t S = C + 5;
        const unsigned seed = 31u * R + C;
        const auto W = randn(R * S, seed, 0.05f);
        auto Q = W;
        for (auto& q : Q) q = std::nearbyint(q * 40.f) / 40.f;  // a coarse contrast
        const auto A = uniform(R * S, seed + 1, 0.f, 3.f), G2 = uniform(R * S, seed + 2, 0.f, 0.5f);
        const auto U = uniform(C, seed + 3, 0.05f, 2.f), H = uniform(C, seed + 4, 0.f, 10.f);
        tcq::score_inputs in;
        in.W = tcq::make_view(W.data(), R, C, S);
        in.Q = tcq::make_view(Q.data(), R, C, S);
        in.grad_abs = tcq::make_view(A.data(), R, C, S);
        in.grad_sq = tcq::make_view(G2.data(), R, C, S);
        in.u_diag = U;
        in.h_diag = H;
        in.seed = seed;
        for (auto m : tcq::all_score_methods) {
            CAPTURE(tcq::to_string(m));
            std::vector<float> ref(R * C), s1(R * C), s2(R * (C + 2));
            tcq::reference::compute_scores(m, in, tcq::make_view(ref.data(), R, C));
            tcq::compute_scores(m, in, tcq::make_view(s1.data(), R, C), tcq::seq());
            tcq::compute_scores(m, in, tcq::make_view(s2.data(), R, C, C + 2), tcq::par(2));
            CHECK(bits_equal(s1, ref));
            bool same = true;
            for (int r = 0; r < R; ++r)
                for (int c = 0; c < C; ++c) same &= std::memcmp(&s2[r * (C + 2) + c], &ref[r * C + c], 4) == 0;
            CHECK(same);
        }
    }
}

TEST_CASE("scores: bad input throws and names the culprit") {
    const int R = 3, C = 19;
    auto W = randn(R * C, 5, 0.1f), Q = randn(R * C, 6, 0.1f), A = uniform(R * C, 7, 0.f, 1.f);
    auto U = uniform(C, 8, 0.5f, 1.f), H = uniform(C, 9, 0.f, 1.f);
    std::vector<float> out(R * C);
    tcq::score_inputs in;
    in.W = tcq::make_view(W.data(), R, C);
    in.Q = tcq::make_view(Q.data(), R, C);
    in.grad_abs = tcq::make_view(A.data(), R, C);
    in.u_diag = U;
    in.h_diag = H;
    const auto o = tcq::make_view(out.data(), R, C);
    auto run = [&](tcq::score_method m) { return message_of([&] { tcq::compute_scores(m, in, o, tcq::par(2)); }); };
    CHECK(run(tcq::score_method::tacq) == "<no error>");
    // Missing input (grad_sq for fisher) is a shape mismatch naming it.
    CHECK(run(tcq::score_method::fisher).find("grad_sq") != std::string::npos);
    W[2 * C + 18] = std::numeric_limits<float>::quiet_NaN();
    CHECK(run(tcq::score_method::tacq).find("W is not finite") != std::string::npos);
    CHECK(run(tcq::score_method::magnitude).find("(2, 18)") != std::string::npos);
    W[2 * C + 18] = 0.f;
    Q[5] = std::numeric_limits<float>::infinity();
    CHECK(run(tcq::score_method::grad_delta).find("Q is not finite") != std::string::npos);
    Q[5] = 0.f;
    A[4] = -1.f;
    CHECK(run(tcq::score_method::tacq).find("grad_abs is negative") != std::string::npos);
    A[4] = 1e30f;
    W[4] = 1e10f;
    CHECK(run(tcq::score_method::tacq).find("overflows") != std::string::npos);
    A[4] = 1.f;
    W[4] = 0.f;
    U[3] = 0.f;
    CHECK(run(tcq::score_method::spqr).find("u_diag") != std::string::npos);
    U[3] = 1.f;
    in.u_diag = std::span<const float>(U).first(C - 1);
    CHECK(run(tcq::score_method::spqr).find("one per column") != std::string::npos);
    H[0] = -1.f;
    CHECK(run(tcq::score_method::wanda).find("h_diag") != std::string::npos);
    std::vector<float> small(R * (C - 1));
    CHECK_THROWS_AS(tcq::compute_scores(tcq::score_method::magnitude, in, tcq::make_view(small.data(), R, C - 1)),
                    tcq::error);
    CHECK(tcq::parse_score_method("fisher") == tcq::score_method::fisher);
    for (auto m : tcq::all_score_methods) CHECK(tcq::parse_score_method(tcq::to_string(m)) == m);
    CHECK(message_of([] { (void)tcq::parse_score_method("snip"); }).find("snip") != std::string::npos);
}

TEST_CASE("scores of empty matrices are a no-op") {
    tcq::score_inputs in;
    CHECK_NOTHROW(tcq::compute_scores(tcq::score_method::magnitude, in, tcq::matrix_view<float>()));
    std::vector<float> none;
    in.W = tcq::make_view(none.data(), 0, 5);
    CHECK_NOTHROW(tcq::compute_scores(tcq::score_method::magnitude, in, tcq::make_view(none.data(), 0, 5)));
    // An empty input is still checked against the output's shape.
    std::vector<float> one(5, 7.f);
    CHECK_THROWS_AS(tcq::compute_scores(tcq::score_method::magnitude, in, tcq::make_view(one.data(), 1, 5)),
                    tcq::error);
    CHECK(one[0] == 7.f);
}
