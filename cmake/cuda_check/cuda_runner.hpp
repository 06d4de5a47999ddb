#pragma once
// Host-side entry points to tcq's CUDA kernels, for the `cuda` tests and the
// CUDA benchmark: plain C++ (no CUDA headers), host arrays in, host arrays
// out. Every function throws tcq::error naming the CUDA call and its error
// string on failure. Built only with TCQ_ENABLE_CUDA (cmake/cuda_check).

#include <cstdint>
#include <span>
#include <string>

#include "tcq/core/config.hpp"
#include "tcq/quant/grid.hpp"

namespace tcq::cuda_runner {

/// The arrays of a validated packed matrix, in host memory (packed_view parts).
struct host_packed {
    std::span<const std::uint8_t> codes;     ///< rows × row_bytes
    std::span<const std::uint16_t> scales;   ///< rows × groups fp16
    std::span<const std::uint8_t> zeros;     ///< rows × groups
    std::span<const std::uint16_t> g_idx;    ///< cols under act-order, else empty
    std::span<const std::uint16_t> values;   ///< kept weights (empty: none)
    std::span<const std::uint8_t> low_cols;  ///< kept low columns
    std::span<const std::uint64_t> bitmap;   ///< unary bitmap
    std::span<const std::uint32_t> skips;    ///< two per 64 rows
    index_t rows = 0, cols = 0, groups = 0, group_size = 0;
    int bits = 0;
    bool act_order = false, bf16 = false;
};

/// True when a CUDA device can run kernels; otherwise false with the reason.
bool device_available(std::string& why);

/// out = fake_quantize(W) on the device (rows × cols, dense, row-major;
/// params rows × groups, group_cols columns per group).
void fake_quantize(const float* W, index_t rows, index_t cols, std::span<const grid_param> params, index_t groups,
                   index_t group_cols, float maxq, float* out);

/// out (rows × cols, dense) = dequantize(W) on the device.
void dequantize(const host_packed& W, float* out);

/// Y (n × rows) = X (n × cols) Ŵᵀ on the device, n ∈ 1…8.
void gemv_batch(const host_packed& W, const float* X, int n, float* Y);

/// y (rows) = Ŵx with int8 activations on the device (cuda::gemv_int8);
/// regular grouping only (tcq::int8_supported).
void gemv_int8(const host_packed& W, const float* x, float* y);

/// Mean seconds of one device GEMV over `iters` launches that rotate over
/// `copies` device copies of W (so the weights stream from device memory, not
/// L2), timed with CUDA events; transfers excluded.
double gemv_seconds(const host_packed& W, int iters, int copies);

/// Mean seconds of one device-to-device copy of `bytes` (the baseline: it
/// reads `bytes` once and writes them once).
double copy_seconds(std::size_t bytes, int iters);

}  // namespace tcq::cuda_runner
