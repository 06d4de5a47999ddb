#pragma once
// A random packed matrix at an LLM shape for the GEMV benchmarks (CPU and
// CUDA): fp16 scales in [0.001, 0.01), random zeros and codes, `density` of
// the weights kept at 16 bits. Only the bytes matter to a benchmark.
#include <random>

#include "tcq/pack/packed_matrix.hpp"

namespace bench_fixture {

inline tcq::packed_matrix make_packed(tcq::index_t rows, tcq::index_t cols, int bits, unsigned seed,
                                      double density = 0.0035, tcq::index_t group_size = 128) {
    using tcq::index_t;
    std::mt19937_64 g(seed);
    tcq::quantized_matrix q;
    tcq::grid_spec spec;
    spec.bits = bits;
    spec.group_size = group_size;
    spec.fp16_scale = true;
    q.grid = tcq::grid(spec, rows, cols);
    std::uniform_real_distribution<float> sd(0.001f, 0.01f);
    for (auto& p : q.grid.params) {
        p.scale = tcq::round_to_half(sd(g));
        p.zero = static_cast<float>(g() % (1u << bits));
    }
    const auto n = static_cast<std::size_t>(rows * cols);
    q.codes.resize(n);
    for (auto& c : q.codes) c = static_cast<std::uint8_t>(g() & ((1u << bits) - 1u));
    q.values.assign(n, 0.f);  // only kept values are read (verify_values off)
    q.kept = tcq::mask(rows, cols);
    const auto k = static_cast<std::size_t>(density * static_cast<double>(n));
    for (std::size_t i = 0; i < k; ++i) {
        const auto f = static_cast<index_t>(g() % n);
        q.kept.set(f);
        q.values[static_cast<std::size_t>(f)] = 0.05f;
    }
    tcq::pack_options o;
    o.verify_values = false;
    return tcq::pack(q, o, tcq::par(2));
}

}  // namespace bench_fixture
