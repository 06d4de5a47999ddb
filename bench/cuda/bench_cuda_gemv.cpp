// CUDA fused dequant GEMV on packed matrices (include/tcq/cuda/pack.cuh) at
// LLM shapes, beside a device-to-device copy over the same bytes. The GEMV
// rotates over device copies of the matrix totalling >= 1 GB, so it streams
// from device memory rather than L2. Counters:
//   GB/s       packed bytes (codes + stats + kept weights) per second
//   copy_frac  GB/s ÷ the traffic rate of a device-to-device copy (bytes read +
//              bytes written per second): 1.0 means the GEMV reads as fast as
//              the copy moves memory
// Without a device every benchmark reports an error instead of a time. Run on
// a GPU machine with scripts/cuda-check.sh.
#include <benchmark/benchmark.h>

#include <string>

#include "../packed_fixture.hpp"
#include "cuda_runner.hpp"

namespace {

using tcq::index_t;


void BM_CudaPackedGemv(benchmark::State& state) {
    std::string why;
    if (!tcq::cuda_runner::device_available(why)) {
        state.SkipWithError(("no usable CUDA device: " + why).c_str());
        return;
    }
    const index_t rows = state.range(0), cols = state.range(1);
    const int bits = static_cast<int>(state.range(2));
    const tcq::packed_matrix P = bench_fixture::make_packed(rows, cols, bits, static_cast<unsigned>(rows * 31 + cols + bits));
    const auto& v = P.view();
    const auto& i = v.info();
    const auto& p = v.parts();
    tcq::cuda_runner::host_packed h{p.codes, p.scales, p.zeros, p.g_idx, p.kept.values, p.kept.low_cols,
                                    p.kept.bitmap, p.kept.skips, i.rows, i.cols, i.groups(), i.group_size,
                                    i.bits, i.act_order, false};
    const std::size_t bytes = i.code_bytes() + i.scale_bytes() + i.zero_bytes() + i.value_bytes() +
                              i.low_col_bytes() + i.bitmap_bytes() + i.skip_bytes();
    const int copies = static_cast<int>((std::size_t{1} << 30) / bytes + 1);
    double gemv = 0, copy = 0;
    for (auto _ : state) {
        gemv = tcq::cuda_runner::gemv_seconds(h, 200, copies);
        state.SetIterationTime(gemv);
    }
    copy = tcq::cuda_runner::copy_seconds(bytes * static_cast<std::size_t>(copies) / 4, 20) /
           (static_cast<double>(copies) / 4);
    state.counters["GB/s"] = static_cast<double>(bytes) / gemv * 1e-9;
    state.counters["copy_frac"] = copy / (2 * gemv);
    state.counters["bits/w"] = v.bits_used().per_weight();
}

}  // namespace

BENCHMARK(BM_CudaPackedGemv)
    ->ArgNames({"rows", "cols", "bits"})
    ->Args({4096, 4096, 2})
    ->Args({4096, 4096, 3})
    ->Args({4096, 4096, 4})
    ->Args({11008, 4096, 3})
    ->Args({4096, 11008, 3})
    ->UseManualTime()
    ->Iterations(5)
    ->Unit(benchmark::kMicrosecond);
