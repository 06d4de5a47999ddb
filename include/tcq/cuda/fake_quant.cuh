#pragma once
/// @file cuda/fake_quant.cuh
/// @brief CUDA fake-quantization. Thin: the element math is quant/element.hpp,
/// shared with the CPU kernels and covered by the CPU tests. Compile-only here.

#include <cuda_runtime.h>

#include "tcq/quant/element.hpp"

namespace tcq::cuda {

/// One thread per element: out[r, c] = q(W[r, c]) with grid (r, c / group_cols).
/// `params` holds (scale, zero) pairs, rows × groups, row-major.
__global__ void fake_quantize_kernel(const float* __restrict__ W, index_t ldw, float* __restrict__ out,
                                     index_t ldo, index_t rows, index_t cols, const grid_param* __restrict__ params,
                                     index_t groups, index_t group_cols, float maxq) {
    const index_t c = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x;
    const index_t r = blockIdx.y;
    if (c >= cols || r >= rows) return;
    const grid_param p = params[r * groups + c / group_cols];
    out[r * ldo + c] = fake_quant(W[r * ldw + c], p.scale, p.zero, maxq);
}

/// Launches fake_quantize_kernel on `stream`; device pointers only.
inline cudaError_t fake_quantize(const float* W, index_t ldw, float* out, index_t ldo, index_t rows, index_t cols,
                                 const grid_param* params, index_t groups, index_t group_cols, float maxq,
                                 cudaStream_t stream = nullptr) {
    if (rows == 0 || cols == 0) return cudaSuccess;
    const dim3 block(256);
    const dim3 grid_dim(static_cast<unsigned>((cols + 255) / 256), static_cast<unsigned>(rows));
    fake_quantize_kernel<<<grid_dim, block, 0, stream>>>(W, ldw, out, ldo, rows, cols, params, groups, group_cols, maxq);
    return cudaGetLastError();
}

}  // namespace tcq::cuda
