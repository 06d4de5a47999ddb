// Chunked accumulation (core/chunk_tree.hpp): the tree and therefore the bits
// do not depend on how the chunks are split over workers.
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "tcq/core/chunk_tree.hpp"
#include "tcq/gptq/hessian.hpp"
#include "tcq/saliency/accumulator.hpp"
#include "test_util.hpp"

using namespace tcq;

namespace {
// P = the expression of the combination, so equal strings mean equal trees.
struct paren {
    void operator()(std::string& a, const std::string& b) const { a = "(" + a + "+" + b + ")"; }
};

std::string whole(index_t C) {
    tree_reducer<std::string, paren> t(C, {});
    for (index_t c = 0; c < C; ++c) t.push_leaf(std::to_string(c));
    return t.root();
}

// The tree finished from the nodes of `parts` contiguous ranges.
std::string split(index_t C, index_t parts) {
    std::vector<tree_node<std::string>> all;
    for (index_t p = 0; p < parts; ++p) {
        const auto [a, b] = part_range(C, parts, p);
        tree_reducer<std::string, paren> t(C, {}, a);
        for (index_t c = a; c < b; ++c) t.push_leaf(std::to_string(c));
        for (auto& n : t.take()) all.push_back(std::move(n));
    }
    return reduce_nodes(C, std::move(all), paren{});
}

template <class T>
bool same_bits(matrix_view<const T> a, matrix_view<const T> b) {
    return a.rows() == b.rows() && a.cols() == b.cols() &&
           std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(T)) == 0;
}
}  // namespace

TEST_CASE("part_range tiles the items in balanced contiguous parts") {
    for (index_t n : {0, 1, 5, 17})
        for (index_t P : {1, 2, 3, 7}) {
            index_t next = 0;
            for (index_t p = 0; p < P; ++p) {
                const auto [a, b] = part_range(n, P, p);
                CHECK(a == next);
                CHECK(b - a >= n / P);
                CHECK(b - a <= n / P + 1);
                next = b;
            }
            CHECK(next == n);
        }
    CHECK_THROWS_AS((void)part_range(4, 0, 0), tcq::error);
    CHECK_THROWS_AS((void)part_range(4, 2, 2), tcq::error);
}

TEST_CASE("the chunk tree is the same for any split of the chunks") {
    CHECK(whole(1) == "0");
    CHECK(whole(3) == "((0+1)+2)");
    CHECK(whole(5) == "(((0+1)+2)+(3+4))");
    for (index_t C : {1, 2, 3, 7, 13, 16, 37})
        for (index_t P : {1, 2, 3, 4, 5, 64}) CHECK_MESSAGE(split(C, P) == whole(C), "C=", C, " P=", P);
    CHECK(is_tree_node(5, 3, 5));
    CHECK_FALSE(is_tree_node(5, 2, 4));
    tree_reducer<std::string, paren> t(5, {});
    t.push_leaf("0");
    CHECK_THROWS_AS(t.push(2, 3, "2"), tcq::error);  // skips chunk 1
    CHECK_THROWS_AS((void)t.root(), tcq::error);     // incomplete
}

TEST_CASE("chunked Hessian: one chunk equals the plain accumulator; any split gives the same bits") {
    const index_t cols = 37, tokens = 5, S = 23;
    const auto x = test_util::randn(static_cast<std::size_t>(S * tokens * cols), 7);
    auto X = [&](index_t s) { return matrix_view<const float>(x.data() + s * tokens * cols, tokens, cols); };
    auto make = [&] { return hessian_accumulator<float>(cols); };
    auto chunked = [&](index_t chunk, index_t parts) {
        const chunk_plan plan{S, chunk};
        std::vector<tree_node<hessian_accumulator<float>>> all;
        for (index_t p = 0; p < parts; ++p) {
            chunked_sum<hessian_accumulator<float>, decltype(make), merge_combine> cs(
                plan, part_range(plan.chunks(), parts, p), make, {});
            const auto [c0, c1] = part_range(plan.chunks(), parts, p);
            for (index_t s = plan.first_sample(c0); s < plan.first_sample(c1); ++s) cs.at(s).add(X(s));
            for (auto& n : cs.finish()) all.push_back(std::move(n));
        }
        return reduce_nodes(plan.chunks(), std::move(all), merge_combine{});
    };
    hessian_accumulator<float> plain(cols);
    for (index_t s = 0; s < S; ++s) plain.add(X(s));
    CHECK(same_bits(chunked(S, 1).view(), plain.view()));
    CHECK(same_bits(chunked(100, 1).view(), plain.view()));
    const auto ref = chunked(4, 1);
    CHECK(ref.samples() == S);
    for (index_t P : {2, 3, 5, 6, 9}) CHECK_MESSAGE(same_bits(chunked(4, P).view(), ref.view()), "parts ", P);
    // The merge tree differs from the running rescale only by rounding.
    double dmax = 0;
    for (index_t i = 0; i < cols; ++i)
        for (index_t j = 0; j < cols; ++j) dmax = std::max(dmax, std::abs(double(ref.view()(i, j)) - plain.view()(i, j)));
    CHECK(dmax < 1e-4);
}

TEST_CASE("chunked gradient sums: any split gives the same bits") {
    const index_t R = 9, C = 13, S = 19;
    const auto g = test_util::randn(static_cast<std::size_t>(S * R * C), 11, 3.f);
    auto G = [&](index_t s) { return matrix_view<const float>(g.data() + s * R * C, R, C); };
    const auto stats = grad_stats::abs_sum | grad_stats::sq_sum;
    auto make = [&] { return grad_accumulator(R, C, stats, "g"); };
    auto chunked = [&](index_t chunk, index_t parts) {
        const chunk_plan plan{S, chunk};
        std::vector<tree_node<grad_accumulator>> all;
        for (index_t p = 0; p < parts; ++p) {
            const auto rg = part_range(plan.chunks(), parts, p);
            chunked_sum<grad_accumulator, decltype(make), merge_combine> cs(plan, rg, make, {});
            for (index_t s = plan.first_sample(rg.first); s < plan.first_sample(rg.second); ++s) cs.at(s).add(G(s));
            for (auto& n : cs.finish()) all.push_back(std::move(n));
        }
        return reduce_nodes(plan.chunks(), std::move(all), merge_combine{});
    };
    grad_accumulator plain(R, C, stats, "g");
    for (index_t s = 0; s < S; ++s) plain.add(G(s));
    CHECK(same_bits(chunked(S, 1).abs_sum(), plain.abs_sum()));
    const auto ref = chunked(3, 1);
    for (index_t P : {2, 3, 4, 7}) {
        const auto d = chunked(3, P);
        CHECK(same_bits(d.abs_sum(), ref.abs_sum()));
        CHECK(same_bits(d.sq_sum(), ref.sq_sum()));
        CHECK(d.samples() == S);
    }
}

TEST_CASE("chunked_sum rejects out-of-order and missing samples") {
    auto make = [] { return grad_accumulator(1, 1); };
    const chunk_plan plan{6, 2};
    const std::vector<float> one{1.f};
    const matrix_view<const float> g(one.data(), 1, 1);
    chunked_sum<grad_accumulator, decltype(make), merge_combine> cs(plan, {1, 3}, make, {});
    CHECK_THROWS_AS(cs.at(1), tcq::error);  // chunk 0 is not in the range
    cs.at(2).add(g);
    CHECK_THROWS_AS(cs.at(6), tcq::error);
    cs.at(5).add(g);  // chunk 2 ... but chunk 1 had sample 2 only: fine
    CHECK_THROWS_AS(cs.at(3), tcq::error);  // back to a closed chunk
    const auto nodes = cs.finish();
    CHECK(nodes.size() == 2);  // [1,2) and [2,3) are not siblings in the tree over 3 chunks
    chunked_sum<grad_accumulator, decltype(make), merge_combine> gap(plan, {0, 3}, make, {});
    gap.at(0).add(g);
    CHECK_THROWS_AS(gap.at(4), tcq::error);  // chunk 1 skipped
}

TEST_CASE("accumulator state round trips and validation") {
    const std::vector<float> h{2.f, 1.f, 1.f, 3.f}, asym{2.f, 1.f, 0.f, 3.f}, nan{2.f, 1.f, 1.f, NAN};
    const auto a = hessian_accumulator<float>::from_state(2, 4, h);
    CHECK(a.samples() == 4);
    CHECK(a.view()(1, 0) == 1.f);
    CHECK_THROWS_AS((void)hessian_accumulator<float>::from_state(2, 4, asym), tcq::error);
    CHECK_THROWS_AS((void)hessian_accumulator<float>::from_state(2, 4, nan), tcq::error);
    CHECK_THROWS_AS((void)hessian_accumulator<float>::from_state(2, 0, h), tcq::error);
    CHECK_THROWS_AS((void)hessian_accumulator<float>::from_state(3, 4, h), tcq::error);
    const std::vector<float> s{1.f, 2.f};
    auto g = grad_accumulator::from_sums(1, 2, grad_stats::abs_sum, 3, s, {}, {}, "x");
    CHECK(g.samples() == 3);
    CHECK_THROWS_AS((void)grad_accumulator::from_sums(1, 2, grad_stats::abs_sum, 3, {}, {}, {}, "x"), tcq::error);
    g.merge(g);
    CHECK(g.abs_sum()(0, 1) == 4.f);
    CHECK(g.samples() == 6);
    const std::vector<float> big{3e38f, 3e38f};
    auto b = grad_accumulator::from_sums(1, 2, grad_stats::abs_sum, 1, big, {}, {}, "big");
    CHECK_THROWS_AS(b.merge(b), tcq::error);
    CHECK_THROWS_AS(g.merge(grad_accumulator(2, 1)), tcq::error);
}
