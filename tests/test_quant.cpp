#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "tcq/reference/quant.hpp"
#include "tcq/tcq.hpp"

namespace {
std::vector<float> randn(std::size_t n, unsigned seed, float sd = 1.f) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.f, sd);
    std::vector<float> v(n);
    for (auto& x : v) x = d(g);
    return v;
}
}  // namespace

TEST_CASE("fit_segment SIMD equals scalar twin bit for bit on odd sizes") {
    for (int bits : {2, 3, 4, 8})
        for (bool sym : {false, true})
            for (std::size_t n : {1u, 7u, 15u, 16u, 17u, 33u, 129u, 1001u}) {
                auto x = randn(n, static_cast<unsigned>(n * 10 + bits), 0.05f);
                tcq::grid_spec s;
                s.bits = bits;
                s.symmetric = sym;
                const auto a = tcq::fit_segment(x, s);
                const auto b = tcq::reference::fit_segment(x, s);
                CHECK(a.scale == b.scale);
                CHECK(a.zero == b.zero);
            }
}
