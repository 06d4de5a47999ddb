#pragma once
/// @file cuda/pack.cuh
/// @brief CUDA kernels on packed matrices: dequantize to fp32 and the fused
/// GEMV. Thin: codes, scales and kept weights are decoded with the element
/// math of pack/blocks.hpp, pack/outliers.hpp and quant/element.hpp, which the
/// CPU tests cover (reference::dequantize uses the same walk_outlier_row).
/// Compile-only here (no GPU on the build machines).
///
/// Results: dequantize is bit for bit the CPU one. The GEMV sums each row
/// with a warp in a fixed order (lane-strided partial sums, shuffle tree
/// 16, 8, 4, 2, 1), then adds kept weights in column order in a second
/// kernel: deterministic, within the tolerance of pack/gemm.hpp of the exact
/// product, but not bit-identical to the CPU order. gemm (1–8 vectors) runs
/// the same order per vector, so its vector i equals gemv of vector i.

#include <cuda_runtime.h>

#include <cstdint>

#include "tcq/pack/blocks.hpp"
#include "tcq/pack/outliers.hpp"
#include "tcq/quant/element.hpp"

namespace tcq::cuda {

/// Device pointers to the arrays of a validated packed matrix (validate on
/// the host with packed_view::make or a packed_file, then copy the arrays).
struct packed_device_view {
    const std::uint8_t* codes = nullptr;     ///< rows × row_bytes
    const std::uint16_t* scales = nullptr;   ///< rows × groups fp16
    const std::uint8_t* zeros = nullptr;     ///< rows × groups
    const std::uint16_t* g_idx = nullptr;    ///< cols, act-order only
    const std::uint16_t* values = nullptr;   ///< kept weights, or null when none
    const std::uint8_t* low_cols = nullptr;  ///< kept low columns
    const std::uint64_t* bitmap = nullptr;   ///< unary high-column bitmap
    const std::uint32_t* skips = nullptr;    ///< two u32 per 64 rows
    index_t rows = 0, cols = 0, groups = 0, group_size = 0;
    /// @var rows
    /// Number of rows (output features).

    /// @var cols
    /// Number of columns (input features).

    /// @var groups
    /// Scale/zero pairs per row (packed_info::groups()).

    /// @var group_size
    /// Columns per group; 0 means one scale/zero per row.

    int bits = 0;            ///< code width: 2, 3, 4 or 8
    bool act_order = false;  ///< g_idx gives each column's group
    bool bf16 = false;       ///< kept weights are bf16 bits (fp16 otherwise)

    /// Bytes of one row of codes (whole 64-weight blocks).
    [[nodiscard]] TCQ_HOST_DEVICE index_t row_bytes() const {
        return (cols + block_weights - 1) / block_weights * block_bytes(bits);
    }
    /// Group of column c (act-order aware).
    [[nodiscard]] TCQ_HOST_DEVICE index_t group_of(index_t c) const {
        if (act_order) return g_idx[c];
        return group_size == 0 ? 0 : c / group_size;
    }
    /// Dequantized quantized weight (r, c): s·(q − z), the CPU element math.
    [[nodiscard]] TCQ_HOST_DEVICE float weight(index_t r, index_t c) const {
        const index_t g = group_of(c);
        const float q = static_cast<float>(row_code(codes + r * row_bytes(), bits, c));
        return dequant_code(q, half_to_float(scales[r * groups + g]), static_cast<float>(zeros[r * groups + g]));
    }
};

/// One thread per element: out[r·ldo + c] = s·(q − z) (0 at kept positions).
__global__ void dequantize_dense_kernel(packed_device_view W, float* __restrict__ out, index_t ldo) {
    const index_t c = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
    const index_t r = blockIdx.y;
    if (c >= W.cols || r >= W.rows) return;
    out[r * ldo + c] = W.weight(r, c);
}

/// One thread per 64-row skip group: writes the kept weights of its rows.
__global__ void dequantize_outliers_kernel(packed_device_view W, float* __restrict__ out, index_t ldo) {
    const index_t s = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
    const index_t r0 = s * cost::skip_rows;
    if (W.values == nullptr || r0 >= W.rows) return;
    std::uint64_t k = W.skips[2 * s], pos = W.skips[2 * s + 1];
    const index_t r1 = r0 + cost::skip_rows < W.rows ? r0 + cost::skip_rows : W.rows;
    for (index_t r = r0; r < r1; ++r)
        walk_outlier_row(W.bitmap, W.low_cols, W.values, outlier_buckets(W.cols), k, pos,
                         [&](index_t c, std::uint16_t v) {
                             out[r * ldo + c] = decode_value(v, W.bf16 ? value_format::bf16 : value_format::fp16);
                         });
}

/// One warp per row: y[r] = Σ_c s·(q − z)·x[c] over quantized positions.
__global__ void gemv_dense_kernel(packed_device_view W, const float* __restrict__ x, float* __restrict__ y) {
    const index_t r = blockIdx.x * static_cast<index_t>(blockDim.x / 32) + threadIdx.x / 32;
    const int lane = static_cast<int>(threadIdx.x % 32);
    if (r >= W.rows) return;
    float acc = 0.f;
    for (index_t c = lane; c < W.cols; c += 32) acc = fmaf(W.weight(r, c), x[c], acc);
    for (int off = 16; off >= 1; off /= 2) acc += __shfl_down_sync(0xffffffffu, acc, off);
    if (lane == 0) y[r] = acc;
}

/// One thread per 64-row skip group: y[r] += v·x[c] for the kept weights, in column order.
__global__ void gemv_outliers_kernel(packed_device_view W, const float* __restrict__ x, float* __restrict__ y) {
    const index_t s = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
    const index_t r0 = s * cost::skip_rows;
    if (W.values == nullptr || r0 >= W.rows) return;
    std::uint64_t k = W.skips[2 * s], pos = W.skips[2 * s + 1];
    const index_t r1 = r0 + cost::skip_rows < W.rows ? r0 + cost::skip_rows : W.rows;
    for (index_t r = r0; r < r1; ++r) {
        float acc = y[r];
        walk_outlier_row(W.bitmap, W.low_cols, W.values, outlier_buckets(W.cols), k, pos,
                         [&](index_t c, std::uint16_t v) {
                             acc = fmaf(decode_value(v, W.bf16 ? value_format::bf16 : value_format::fp16), x[c], acc);
                         });
        y[r] = acc;
    }
}

/// Most vectors of one gemm call (as the CPU kernel, pack/gemm.hpp).
inline constexpr int max_vectors = 8;

/// One warp per row: Y[i][r] = Σ_c s·(q − z)·X[i][c] for i < n, the GEMV's
/// order per vector, so row r of vector i equals gemv of vector i bit for bit.
__global__ void gemm_dense_kernel(packed_device_view W, const float* __restrict__ X, index_t ldx,
                                  float* __restrict__ Y, index_t ldy, int n) {
    const index_t r = blockIdx.x * static_cast<index_t>(blockDim.x / 32) + threadIdx.x / 32;
    const int lane = static_cast<int>(threadIdx.x % 32);
    if (r >= W.rows) return;
    float acc[max_vectors] = {};
    for (index_t c = lane; c < W.cols; c += 32) {
        const float w = W.weight(r, c);
        for (int i = 0; i < n; ++i) acc[i] = fmaf(w, X[i * ldx + c], acc[i]);
    }
    for (int i = 0; i < n; ++i) {
        float a = acc[i];
        for (int off = 16; off >= 1; off /= 2) a += __shfl_down_sync(0xffffffffu, a, off);
        if (lane == 0) Y[i * ldy + r] = a;
    }
}

/// One thread per 64-row skip group: Y[i][r] += v·X[i][c] for the kept weights, in column order.
__global__ void gemm_outliers_kernel(packed_device_view W, const float* __restrict__ X, index_t ldx,
                                     float* __restrict__ Y, index_t ldy, int n) {
    const index_t s = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
    const index_t r0 = s * cost::skip_rows;
    if (W.values == nullptr || r0 >= W.rows) return;
    std::uint64_t k = W.skips[2 * s], pos = W.skips[2 * s + 1];
    const index_t r1 = r0 + cost::skip_rows < W.rows ? r0 + cost::skip_rows : W.rows;
    for (index_t r = r0; r < r1; ++r) {
        float acc[max_vectors];
        for (int i = 0; i < n; ++i) acc[i] = Y[i * ldy + r];
        walk_outlier_row(W.bitmap, W.low_cols, W.values, outlier_buckets(W.cols), k, pos,
                         [&](index_t c, std::uint16_t v) {
                             const float w = decode_value(v, W.bf16 ? value_format::bf16 : value_format::fp16);
                             for (int i = 0; i < n; ++i) acc[i] = fmaf(w, X[i * ldx + c], acc[i]);
                         });
        for (int i = 0; i < n; ++i) Y[i * ldy + r] = acc[i];
    }
}

/// out (rows × cols, row stride ldo, device memory) = Ŵ. Launches on `stream`.
inline cudaError_t dequantize(const packed_device_view& W, float* out, index_t ldo, cudaStream_t stream = nullptr) {
    if (W.rows == 0 || W.cols == 0) return cudaSuccess;
    const dim3 grid_dim(static_cast<unsigned>((W.cols + 255) / 256), static_cast<unsigned>(W.rows));
    dequantize_dense_kernel<<<grid_dim, 256, 0, stream>>>(W, out, ldo);
    if (W.values != nullptr) {
        const index_t groups = outlier_skips(W.rows);
        dequantize_outliers_kernel<<<static_cast<unsigned>((groups + 127) / 128), 128, 0, stream>>>(W, out, ldo);
    }
    return cudaGetLastError();
}

/// y = Ŵx (device memory). Launches on `stream`.
inline cudaError_t gemv(const packed_device_view& W, const float* x, float* y, cudaStream_t stream = nullptr) {
    if (W.rows == 0 || W.cols == 0) return cudaSuccess;
    constexpr unsigned warps = 8;
    gemv_dense_kernel<<<static_cast<unsigned>((W.rows + warps - 1) / warps), warps * 32, 0, stream>>>(W, x, y);
    if (W.values != nullptr) {
        const index_t groups = outlier_skips(W.rows);
        gemv_outliers_kernel<<<static_cast<unsigned>((groups + 127) / 128), 128, 0, stream>>>(W, x, y);
    }
    return cudaGetLastError();
}

/// Y = X Ŵᵀ for n ∈ 1…8 vectors (device memory): X is n × cols with row
/// stride ldx, Y is n × rows with row stride ldy. Launches on `stream`;
/// cudaErrorInvalidValue for n outside 1…8.
inline cudaError_t gemm(const packed_device_view& W, const float* X, index_t ldx, float* Y, index_t ldy, int n,
                        cudaStream_t stream = nullptr) {
    if (n < 1 || n > max_vectors) return cudaErrorInvalidValue;
    if (W.rows == 0 || W.cols == 0) return cudaSuccess;
    constexpr unsigned warps = 8;
    gemm_dense_kernel<<<static_cast<unsigned>((W.rows + warps - 1) / warps), warps * 32, 0, stream>>>(W, X, ldx, Y,
                                                                                                     ldy, n);
    if (W.values != nullptr) {
        const index_t groups = outlier_skips(W.rows);
        gemm_outliers_kernel<<<static_cast<unsigned>((groups + 127) / 128), 128, 0, stream>>>(W, X, ldx, Y, ldy, n);
    }
    return cudaGetLastError();
}

}  // namespace tcq::cuda
