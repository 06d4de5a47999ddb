// The pipeline on the fixture model through the tcq file: what an engine
// loads back is exactly what the pipeline produced (16-bit weights rounded to fp16).
#include <doctest/doctest.h>

#include <filesystem>

#include "l2c.hpp"
#include "tcq/core/half.hpp"
#include "tcq_adapter.hpp"
#include "tcq_file.hpp"

namespace {
const std::string fx = std::string(TCQ_SOURCE_DIR) + "/examples/fixture/";
}

TEST_CASE("TaCQ on the fixture: tcq file round trip equals the pipeline's values") {
    const auto base = l2c::load_checkpoint(fx + "model/model.bin");
    auto m = base;
    const auto text = l2c::read_text(fx + "data/arith.calib.txt");
    const auto calib = l2c::sample_windows(text, 6, 7, "arith.calib", 64);
    const auto pol = tcq::par(2);
    l2c::tcq_adapter ad(m, calib, pol);
    tcq::pipeline p(ad);
    tcq::pipeline_options o;
    o.method = tcq::quant_method::tacq;
    o.gptq.grid.bits = 3;
    o.outliers = tcq::budget::of_ratio(0.01);
    o.pol = pol;
    const auto r = p.run(o);
    CHECK(r.kept == static_cast<tcq::index_t>(0.01 * static_cast<double>(base.n_linear_weights())));

    const auto path = std::filesystem::temp_directory_path() / "tcq_test_llama2c_tcq.tcq";
    const double bpw = l2c::save_tcq(r, {}, path, pol);
    CHECK(bpw == doctest::Approx(r.bits.per_weight()).epsilon(1e-12));
    auto loaded = base;
    l2c::apply_tcq(loaded, tcq::packed_file::open(path), pol);
    std::filesystem::remove(path);

    tcq::index_t i = 0, kept = 0;
    for (tcq::index_t l = 0; l < base.cfg().n_layers; ++l)
        for (auto k : l2c::all_linear_kinds) {
            const auto& q = r.layers[static_cast<std::size_t>(i++)];
            const auto w = loaded.linear(l, k);
            REQUIRE(w.rows() == q.rows);
            for (tcq::index_t rr = 0; rr < q.rows; ++rr)
                for (tcq::index_t c = 0; c < q.cols; ++c) {
                    const float v = q.values[static_cast<std::size_t>(rr * q.cols + c)];
                    const bool is_kept = q.kept.size() && q.kept.test(rr, c);
                    kept += is_kept;
                    REQUIRE(w(rr, c) == (is_kept ? tcq::round_to_half(v) : v));
                }
        }
    CHECK(kept == r.kept);
    // the model the pipeline left behind holds the same values (before fp16 rounding of kept weights)
    CHECK(l2c::task_loss(m, l2c::read_text(fx + "data/arith.valid.txt"), pol, "arith", 4).loss ==
          doctest::Approx(l2c::task_loss(loaded, l2c::read_text(fx + "data/arith.valid.txt"), pol, "arith", 4).loss).epsilon(1e-4));
}
