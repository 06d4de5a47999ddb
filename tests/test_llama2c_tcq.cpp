// The pipeline on the fixture model through the tcq file: what an engine
// loads back is exactly what the pipeline produced and left in the model
// (16-bit weights rounded to their stored format), so compare/eval score the
// stored model.
#include <doctest/doctest.h>

#include <filesystem>

#include "l2c.hpp"
#include "tcq/core/half.hpp"
#include "tcq_adapter.hpp"
#include "tcq_file.hpp"

namespace {
const std::string fx = std::string(TCQ_SOURCE_DIR) + "/examples/fixture/";
}

TEST_CASE("TaCQ on the fixture: the in-process model equals the tcq file's model bit for bit") {
    const auto base = l2c::load_checkpoint(fx + "model/model.bin");
    const auto text = l2c::read_text(fx + "data/arith.calib.txt");
    const auto calib = l2c::sample_windows(text, 6, 7, "arith.calib", 64);
    const auto pol = tcq::par(2);
    for (const auto fmt : {tcq::value_format::fp16, tcq::value_format::bf16}) {
        CAPTURE(tcq::to_string(fmt));
        auto m = base;
        l2c::tcq_adapter ad(m, calib, pol);
        tcq::pipeline p(ad);
        tcq::pipeline_options o;
        o.method = tcq::quant_method::tacq;
        o.gptq.grid.bits = 3;
        o.outliers = tcq::budget::of_ratio(0.01);
        o.kept_format = fmt;
        o.pol = pol;
        const auto r = p.run(o);
        CHECK(r.kept == static_cast<tcq::index_t>(0.01 * static_cast<double>(base.n_linear_weights())));
        CHECK(r.kept_format == fmt);

        const auto path = std::filesystem::temp_directory_path() / "tcq_test_llama2c_tcq.tcq";
        const double bpw = l2c::save_tcq(r, {}, path, pol);
        CHECK(bpw == doctest::Approx(r.bits.per_weight()).epsilon(1e-12));
        auto loaded = base;
        const auto file = tcq::packed_file::open(path);
        CHECK(file.find(r.names[0]).info().outlier_format == fmt);
        l2c::apply_tcq(loaded, file, pol);
        std::filesystem::remove(path);

        tcq::index_t i = 0, kept = 0, off_grid = 0;
        for (tcq::index_t l = 0; l < base.cfg().n_layers; ++l)
            for (auto k : l2c::all_linear_kinds) {
                const auto& q = r.layers[static_cast<std::size_t>(i++)];
                const auto w = loaded.linear(l, k), mine = m.linear(l, k);
                REQUIRE(w.rows() == q.rows);
                for (tcq::index_t rr = 0; rr < q.rows; ++rr)
                    for (tcq::index_t c = 0; c < q.cols; ++c) {
                        const float v = q.values[static_cast<std::size_t>(rr * q.cols + c)];
                        const bool is_kept = q.kept.size() && q.kept.test(rr, c);
                        kept += is_kept;
                        // kept values are already 16-bit values of the chosen format
                        if (is_kept)
                            off_grid += v != (fmt == tcq::value_format::bf16 ? tcq::round_to_bf16(v) : tcq::round_to_half(v));
                        REQUIRE(w(rr, c) == v);
                        REQUIRE(mine(rr, c) == v);  // what compare evaluates
                    }
            }
        CHECK(kept == r.kept);
        CHECK(off_grid == 0);
        const auto valid = l2c::read_text(fx + "data/arith.valid.txt");
        CHECK(l2c::task_loss(m, valid, pol, "arith", 4).loss == l2c::task_loss(loaded, valid, pol, "arith", 4).loss);
    }
}
