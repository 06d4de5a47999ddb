// libFuzzer target for the tcq file loader (io/tcq_file.hpp).
// Each input is parsed twice: with checksums (the production path) and
// without, so mutations reach the structural validation behind the CRCs.
// Accepted files are run through dequantize and gemv: anything the loader
// accepts must be safe for the kernels (ASan/UBSan watch both).
// Run: ./fuzz_tcqfile -max_total_time=60 corpus_dir tests/fuzz/corpus_tcqfile
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tcq/io/tcq_file.hpp"
#include "tcq/pack/dequantize.hpp"
#include "tcq/pack/gemv.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto bytes = std::as_bytes(std::span(data, size));
    for (bool verify : {true, false}) {
        try {
            tcq::open_options o;
            o.verify_checksums = verify;
            const auto f = tcq::packed_file::parse(bytes, o);
            for (tcq::index_t i = 0; i < f.size(); ++i) {
                const auto& W = f.matrix(i);
                if (W.rows() * W.cols() > (1 << 20)) continue;  // keep each run fast
                std::vector<float> out(static_cast<std::size_t>(W.rows() * W.cols()));
                std::vector<float> x(static_cast<std::size_t>(W.cols()), 0.5f), y(static_cast<std::size_t>(W.rows()));
                tcq::dequantize(W, tcq::make_view(out.data(), W.rows(), W.cols()));
                tcq::gemv(W, x, y);
            }
        } catch (const tcq::error&) {
            // Rejection with a clear error is the expected outcome for bad input.
        }
    }
    return 0;
}
