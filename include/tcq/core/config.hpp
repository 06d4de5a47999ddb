#pragma once
/// @file config.hpp
/// @brief Compiler/platform macros shared by host and device code.

#include <cstddef>
#include <cstdint>

/// Marks element math compiled for both CPU and CUDA, so CPU tests cover GPU math.
#if defined(__CUDACC__)
#define TCQ_HOST_DEVICE __host__ __device__
#else
#define TCQ_HOST_DEVICE
#endif

/// Inline that survives -O0 debug builds in hot element code.
#if defined(_MSC_VER)
#define TCQ_FORCEINLINE __forceinline
#else
#define TCQ_FORCEINLINE inline __attribute__((always_inline))
#endif

namespace tcq {
/// Signed index type used for every extent and stride.
using index_t = std::ptrdiff_t;
}  // namespace tcq
