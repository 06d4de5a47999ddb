#pragma once
/// @file cuda/pack.cuh
/// @brief CUDA kernels on packed matrices: dequantize to fp32, the fused
/// GEMV, and the int8-activation GEMV (pack/gemv_batch_int8.hpp). Thin: codes, scales and kept weights are decoded with the element
/// math of pack/blocks.hpp, pack/kept.hpp and quant/element.hpp, which the
/// CPU tests cover (reference::dequantize uses the same walk_kept_row).
/// Compile-only here (no GPU on the build machines).
///
/// Results: dequantize is bit for bit the CPU one. The GEMV sums each row
/// with a warp in a fixed order (lane-strided partial sums, shuffle tree
/// 16, 8, 4, 2, 1), then adds kept weights in column order in a second
/// kernel: deterministic, within the tolerance of pack/gemv_batch.hpp of the exact
/// product, but not bit-identical to the CPU order. gemv_batch (1–8 vectors) runs
/// the same order per vector, so its vector i equals gemv of vector i.

#include <cuda_runtime.h>

#include <cstdint>

#include "tcq/pack/blocks.hpp"
#include "tcq/pack/int8_math.hpp"
#include "tcq/pack/kept.hpp"
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

/// Rows [r0, r1) of 64-row skip group s and the walk state (k, pos) at its
/// first row; false when s is past the end or there are no kept weights.
__device__ inline bool skip_group(const packed_device_view& W, index_t s, index_t& r0, index_t& r1, std::uint64_t& k,
                                  std::uint64_t& pos) {
    r0 = s * cost::skip_rows;
    if (W.values == nullptr || r0 >= W.rows) return false;
    k = W.skips[2 * s];
    pos = W.skips[2 * s + 1];
    r1 = r0 + cost::skip_rows < W.rows ? r0 + cost::skip_rows : W.rows;
    return true;
}

/// One thread per element: out[r·ldo + c] = s·(q − z) (0 at kept positions).
__global__ void dequantize_dense_kernel(packed_device_view W, float* __restrict__ out, index_t ldo) {
    const index_t c = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
    const index_t r = blockIdx.y;
    if (c >= W.cols || r >= W.rows) return;
    out[r * ldo + c] = W.weight(r, c);
}

/// One thread per 64-row skip group: writes the kept weights of its rows.
__global__ void dequantize_kept_kernel(packed_device_view W, float* __restrict__ out, index_t ldo) {
    index_t r0, r1;
    std::uint64_t k, pos;
    if (!skip_group(W, blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x, r0, r1, k, pos)) return;
    for (index_t r = r0; r < r1; ++r)
        walk_kept_row(W.bitmap, W.low_cols, W.values, kept_buckets(W.cols), k, pos,
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
__global__ void gemv_kept_kernel(packed_device_view W, const float* __restrict__ x, float* __restrict__ y) {
    index_t r0, r1;
    std::uint64_t k, pos;
    if (!skip_group(W, blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x, r0, r1, k, pos)) return;
    for (index_t r = r0; r < r1; ++r) {
        float acc = y[r];
        walk_kept_row(W.bitmap, W.low_cols, W.values, kept_buckets(W.cols), k, pos,
                         [&](index_t c, std::uint16_t v) {
                             acc = fmaf(decode_value(v, W.bf16 ? value_format::bf16 : value_format::fp16), x[c], acc);
                         });
        y[r] = acc;
    }
}

/// Device buffers of int8 activations for one vector, laid out as
/// tcq::int8_activations (pack/gemv_batch_int8.hpp); quantize_activations fills them.
struct int8_device_activations {
    std::int8_t* xq = nullptr;  ///< padded codes, each 64-column block in int8_slot_code order
    float* sx = nullptr;        ///< xblocks scales
    float* xz = nullptr;        ///< groups16 zero-point sums XZ_g, zero padded
    const float* xf = nullptr;  ///< padded fp32 x, zero padded (input; kept weights use it)
};

/// One thread per group: quantizes the group's x-blocks in order (the element
/// math of pack/int8_math.hpp) and chains XZ_g. groups16 − groups pad entries
/// of xz must be zeroed by the caller.
__global__ void int8_quantize_kernel(packed_device_view W, int8_device_activations A) {
    const index_t g = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
    if (g >= W.groups) return;
    const index_t nb = (W.cols + block_weights - 1) / block_weights, padded = nb * block_weights;
    const int kx = int8_xblock_codes(W.group_size);
    const index_t xcols = kx * block_weights, gcols = W.group_size ? W.group_size : padded;
    float xz = 0.f;
    for (index_t c0 = g * gcols; c0 < (g + 1) * gcols && c0 < padded; c0 += xcols) {
        const index_t len = c0 + xcols < padded ? xcols : padded - c0;
        float amax = 0.f;
        bool finite = true;
        for (index_t c = c0; c < c0 + len; ++c) {
            amax = fmaxf(amax, fabsf(A.xf[c]));
            finite = finite && isfinite(A.xf[c]);
        }
        const float sx = finite ? int8_scale(amax) : __int_as_float(0x7fc00000);
        A.sx[c0 / xcols] = sx;
        int sum = 0;
        for (index_t b = c0; b < c0 + len; b += block_weights)
            for (int p = 0; p < block_weights; ++p) {
                const std::int8_t q = finite && amax > 0.f ? int8_quantize(A.xf[b + int8_slot_code(W.bits, p)], sx) : 0;
                A.xq[b + p] = q;
                sum += q;
            }
        xz = int8_block_step(static_cast<float>(sum), sx, xz);
    }
    A.xz[g] = xz;
}

/// One warp per row, dense part of the int8 GEMV in the CPU order: thread t
/// keeps canonical lane t % 16 of chain Y_{t/16} (x-blocks j with j % 2 = t/16),
/// with exact integer lane sums; folds with the shuffle tree 16, 8, 4, 2, 1
/// (= fold(Y0 + Y1) of simd::fold_lanes), minus the folded zero-point term.
__global__ void gemv_int8_dense_kernel(packed_device_view W, int8_device_activations A, float* __restrict__ y) {
    const index_t r = blockIdx.x * static_cast<index_t>(blockDim.x / 32) + threadIdx.x / 32;
    const int t = static_cast<int>(threadIdx.x % 32), l = t % 16;
    if (r >= W.rows) return;
    const index_t nb = (W.cols + block_weights - 1) / block_weights;
    const int kx = int8_xblock_codes(W.group_size);
    const index_t nx = (nb + kx - 1) / kx, bpg = W.group_size ? W.group_size / block_weights : nb;
    const std::uint8_t* row = W.codes + r * W.row_bytes();
    float Y = 0.f;
    for (index_t j = t / 16; j < nx; j += 2) {
        int D = 0;
        for (index_t b = j * kx; b < j * kx + kx && b < nb; ++b)
            for (int p = 4 * l; p < 4 * l + 4; ++p)
                D += static_cast<int>(block_code(row + b * block_bytes(W.bits), W.bits, int8_slot_code(W.bits, p))) *
                     A.xq[b * block_weights + p];
        const float w = int8_scale_product(half_to_float(W.scales[r * W.groups + j * kx / bpg]), A.sx[j]);
        Y = int8_xblock_step(static_cast<float>(D), w, Y);
    }
    float C = 0.f;
    if (t < 16)
        for (index_t g = l; g < (W.groups + 15) / 16 * 16; g += 16) {
            const float zw = g < W.groups ? int8_zero_weight(half_to_float(W.scales[r * W.groups + g]),
                                                             static_cast<float>(W.zeros[r * W.groups + g]))
                                          : 0.f;
            C = int8_zero_step(zw, A.xz[g], C);
        }
    for (int off = 16; off >= 1; off /= 2) {
        Y += __shfl_down_sync(0xffffffffu, Y, off);
        if (off < 16) C += __shfl_down_sync(0xffffffffu, C, off);
    }
    if (t == 0) y[r] = Y - C;
}

/// One thread per 64-row skip group: y[r] += fold of the CPU lanes o[j % 16]
/// of the row's kept weights against fp32 x (the order of row_kept).
__global__ void gemv_int8_kept_kernel(packed_device_view W, const float* __restrict__ x, float* __restrict__ y) {
    index_t r0, r1;
    std::uint64_t k, pos;
    if (!skip_group(W, blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x, r0, r1, k, pos)) return;
    for (index_t r = r0; r < r1; ++r) {
        float o[16] = {};
        int j = 0;
        walk_kept_row(W.bitmap, W.low_cols, W.values, kept_buckets(W.cols), k, pos,
                         [&](index_t c, std::uint16_t v) {
                             o[j % 16] = fmaf(decode_value(v, W.bf16 ? value_format::bf16 : value_format::fp16), x[c],
                                              o[j % 16]);
                             ++j;
                         });
        for (int h = 8; h >= 1; h /= 2)
            for (int i = 0; i < h; ++i) o[i] = o[i] + o[i + h];
        y[r] = y[r] + o[0];
    }
}

/// y = Ŵx with int8 activations (device memory; A.xf holds the zero-padded x,
/// A.xz is zeroed by the caller). Regular grouping only (tcq::int8_supported).
/// Same bits as tcq::gemv_int8 on the CPU when built with --fmad=false.
inline cudaError_t gemv_int8(const packed_device_view& W, const int8_device_activations& A, float* y,
                             cudaStream_t stream = nullptr) {
    if (W.rows == 0 || W.cols == 0) return cudaSuccess;
    int8_quantize_kernel<<<static_cast<unsigned>((W.groups + 63) / 64), 64, 0, stream>>>(W, A);
    constexpr unsigned warps = 8;
    gemv_int8_dense_kernel<<<static_cast<unsigned>((W.rows + warps - 1) / warps), warps * 32, 0, stream>>>(W, A, y);
    if (W.values != nullptr) {
        const index_t groups = kept_skips(W.rows);
        gemv_int8_kept_kernel<<<static_cast<unsigned>((groups + 127) / 128), 128, 0, stream>>>(W, A.xf, y);
    }
    return cudaGetLastError();
}

/// Most vectors of one gemv_batch call (as the CPU kernel, pack/gemv_batch.hpp).
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
__global__ void gemm_kept_kernel(packed_device_view W, const float* __restrict__ X, index_t ldx,
                                     float* __restrict__ Y, index_t ldy, int n) {
    index_t r0, r1;
    std::uint64_t k, pos;
    if (!skip_group(W, blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x, r0, r1, k, pos)) return;
    for (index_t r = r0; r < r1; ++r) {
        float acc[max_vectors];
        for (int i = 0; i < n; ++i) acc[i] = Y[i * ldy + r];
        walk_kept_row(W.bitmap, W.low_cols, W.values, kept_buckets(W.cols), k, pos,
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
        const index_t groups = kept_skips(W.rows);
        dequantize_kept_kernel<<<static_cast<unsigned>((groups + 127) / 128), 128, 0, stream>>>(W, out, ldo);
    }
    return cudaGetLastError();
}

/// y = Ŵx (device memory). Launches on `stream`.
inline cudaError_t gemv(const packed_device_view& W, const float* x, float* y, cudaStream_t stream = nullptr) {
    if (W.rows == 0 || W.cols == 0) return cudaSuccess;
    constexpr unsigned warps = 8;
    gemv_dense_kernel<<<static_cast<unsigned>((W.rows + warps - 1) / warps), warps * 32, 0, stream>>>(W, x, y);
    if (W.values != nullptr) {
        const index_t groups = kept_skips(W.rows);
        gemv_kept_kernel<<<static_cast<unsigned>((groups + 127) / 128), 128, 0, stream>>>(W, x, y);
    }
    return cudaGetLastError();
}

/// Y = X Ŵᵀ for n ∈ 1…8 vectors (device memory): X is n × cols with row
/// stride ldx, Y is n × rows with row stride ldy. Launches on `stream`;
/// cudaErrorInvalidValue for n outside 1…8.
inline cudaError_t gemv_batch(const packed_device_view& W, const float* X, index_t ldx, float* Y, index_t ldy, int n,
                        cudaStream_t stream = nullptr) {
    if (n < 1 || n > max_vectors) return cudaErrorInvalidValue;
    if (W.rows == 0 || W.cols == 0) return cudaSuccess;
    constexpr unsigned warps = 8;
    gemm_dense_kernel<<<static_cast<unsigned>((W.rows + warps - 1) / warps), warps * 32, 0, stream>>>(W, X, ldx, Y,
                                                                                                     ldy, n);
    if (W.values != nullptr) {
        const index_t groups = kept_skips(W.rows);
        gemm_kept_kernel<<<static_cast<unsigned>((groups + 127) / 128), 128, 0, stream>>>(W, X, ldx, Y, ldy, n);
    }
    return cudaGetLastError();
}

}  // namespace tcq::cuda
