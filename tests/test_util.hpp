#pragma once
// Seeded random test data (std::mt19937, one draw per element in order).

#include <cstddef>
#include <random>
#include <vector>

namespace test_util {

/// n draws of N(0, sd²).
inline std::vector<float> randn(std::size_t n, unsigned seed, float sd = 1.f) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.f, sd);
    std::vector<float> v(n);
    for (auto& x : v) x = d(g);
    return v;
}

/// n draws of U[lo, hi).
inline std::vector<float> uniform(std::size_t n, unsigned seed, float lo, float hi) {
    std::mt19937 g(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = d(g);
    return v;
}

}  // namespace test_util
