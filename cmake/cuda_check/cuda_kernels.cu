// Compile-only translation unit: instantiates every CUDA kernel of tcq.
#include "tcq/cuda/fake_quant.cuh"
#include "tcq/cuda/pack.cuh"
