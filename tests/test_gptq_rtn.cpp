// RTN as a quantized_matrix producer, and the kept-entry grid fit, vs their twins.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "gptq_test_util.hpp"
#include "tcq/quant/masked_fit.hpp"
#include "tcq/quant/rtn.hpp"
#include "tcq/reference/gptq.hpp"

using tcq::index_t;

namespace {
tcq::grid_spec spec_of(int bits, index_t group, bool sym = false) {
    tcq::grid_spec s;
    s.bits = bits;
    s.group_size = group;
    s.symmetric = sym;
    return s;
}
}  // namespace

TEST_CASE("rtn_quantize equals its scalar twin bit for bit, with and without kept weights") {
    const index_t rows = 37, cols = 91;
    auto w = gptq_test::randn(static_cast<std::size_t>(rows * cols), 3, 0.05f);
    const auto W = tcq::make_view(static_cast<const float*>(w.data()), rows, cols);
    tcq::mask m(rows, cols);
    for (index_t f = 7; f < rows * cols; f += 53) m.set(f);
    for (int bits : {2, 3, 4, 8})
        for (index_t g : {index_t{0}, index_t{16}, index_t{32}})
            for (bool use_mask : {false, true}) {
                INFO("bits ", bits, " group ", g, " mask ", use_mask);
                const tcq::mask& k = use_mask ? m : tcq::mask{};
                const auto a = tcq::rtn_quantize(W, spec_of(bits, g, bits == 4), k, tcq::par(2));
                const auto b = tcq::reference::rtn_quantize(W, spec_of(bits, g, bits == 4), k);
                CHECK(a.codes == b.codes);
                CHECK(a.values == b.values);
                CHECK(a.grid.params == b.grid.params);
                CHECK(a.kept == k);
                CHECK(a.g_idx.empty());
                if (use_mask)
                    for (index_t f : m.indices()) {
                        CHECK(a.values[static_cast<std::size_t>(f)] == w[static_cast<std::size_t>(f)]);
                        CHECK(a.codes[static_cast<std::size_t>(f)] == 0);
                    }
            }
}

TEST_CASE("kept-entry rule: masked entries are replaced by the segment mean of the rest") {
    const auto spec = spec_of(3, 8);
    std::vector<float> x{0.1f, -0.2f, 40.f, 0.3f, 0.05f, -0.1f, 0.2f, -30.f, 0.01f};
    auto kept = [](std::size_t i) { return i == 2 || i == 7; };
    std::vector<float> scratch;
    const auto a = tcq::fit_segment_masked(x, kept, spec, scratch);
    double sum = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i)
        if (!kept(i)) sum += x[i];
    std::vector<float> y = x;
    y[2] = y[7] = static_cast<float>(sum / 7.0);
    CHECK(a == tcq::fit_segment(y, spec));
    CHECK(a == tcq::reference::fit_segment_masked(x, kept, spec));
    CHECK(a.scale < 0.2f);  // the ±30..40 outliers would give a scale > 9
    // All kept: the grid of an all-zero segment.
    const auto all = tcq::fit_segment_masked(x, [](std::size_t) { return true; }, spec, scratch);
    CHECK(all == tcq::fit_segment(std::vector<float>(x.size(), 0.f), spec));
    // None kept: plain fit.
    CHECK(tcq::fit_segment_masked(x, [](std::size_t) { return false; }, spec, scratch) == tcq::fit_segment(x, spec));
}

TEST_CASE("rtn_quantize: bad input throws") {
    std::vector<float> w(6 * 5, 0.1f);
    const auto W = tcq::make_view(static_cast<const float*>(w.data()), 6, 5);
    CHECK_THROWS_AS((void)tcq::rtn_quantize(W, spec_of(0, 0)), tcq::error);
    CHECK_THROWS_AS((void)tcq::rtn_quantize(W, spec_of(9, 0)), tcq::error);
    CHECK_THROWS_AS((void)tcq::rtn_quantize(W, spec_of(3, -2)), tcq::error);
    CHECK_THROWS_AS((void)tcq::rtn_quantize(W, spec_of(3, 0), tcq::mask(5, 6)), tcq::error);
    w[4] = std::nanf("");
    CHECK_THROWS_AS((void)tcq::rtn_quantize(W, spec_of(3, 0)), tcq::error);
    tcq::mask m(6, 5);
    m.set(index_t{0}, index_t{0});
    CHECK_THROWS_AS((void)tcq::rtn_quantize(W, spec_of(3, 0), m), tcq::error);
}
