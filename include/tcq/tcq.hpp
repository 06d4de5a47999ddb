#pragma once
/// @file tcq.hpp
/// @brief Umbrella header: the whole public API of tcq::tcq, layer by layer
/// (docs/architecture.md). Not included: the optional components, which need
/// more than tcq::tcq: tcq/io/safetensors*.hpp (tcq::io, nlohmann-json),
/// tcq/mpi/ (tcq::mpi), tcq/tokenizer/ (tcq::tokenizer), tcq/cuda/ (nvcc) and
/// tcq/reference/ (the scalar twins, for tests).

#include "tcq/version.hpp"

#include "tcq/core/aligned.hpp"
#include "tcq/core/byte_io.hpp"
#include "tcq/core/chunk_tree.hpp"
#include "tcq/core/config.hpp"
#include "tcq/core/eigen.hpp"
#include "tcq/core/error.hpp"
#include "tcq/core/half.hpp"
#include "tcq/core/lane_ops.hpp"
#include "tcq/core/mask.hpp"
#include "tcq/core/matrix_view.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/core/progress.hpp"
#include "tcq/core/simd.hpp"
#include "tcq/core/storage_cost.hpp"
#include "tcq/core/tiles.hpp"
#include "tcq/core/value_format.hpp"

#include "tcq/quant/batched_fit.hpp"
#include "tcq/quant/element.hpp"
#include "tcq/quant/fake_quant.hpp"
#include "tcq/quant/fit.hpp"
#include "tcq/quant/grid.hpp"
#include "tcq/quant/masked_fit.hpp"
#include "tcq/quant/quantized.hpp"
#include "tcq/quant/rtn.hpp"

#include "tcq/gptq/hessian.hpp"
#include "tcq/gptq/inverse_hessian.hpp"
#include "tcq/gptq/options.hpp"
#include "tcq/gptq/report.hpp"
#include "tcq/gptq/solver.hpp"

#include "tcq/saliency/accumulator.hpp"
#include "tcq/saliency/scores.hpp"

#include "tcq/select/budget.hpp"
#include "tcq/select/histogram.hpp"
#include "tcq/select/order.hpp"
#include "tcq/select/row_topk.hpp"
#include "tcq/select/selection.hpp"
#include "tcq/select/streaming.hpp"
#include "tcq/select/topk.hpp"

#include "tcq/pack/blocks.hpp"
#include "tcq/pack/decode.hpp"
#include "tcq/pack/dequantize.hpp"
#include "tcq/pack/gemv.hpp"
#include "tcq/pack/gemv_batch.hpp"
#include "tcq/pack/gemv_batch_int8.hpp"
#include "tcq/pack/int8_math.hpp"
#include "tcq/pack/kept.hpp"
#include "tcq/pack/packed_matrix.hpp"

#include "tcq/io/atomic_file.hpp"
#include "tcq/io/checksum.hpp"
#include "tcq/io/mapped_file.hpp"
#include "tcq/io/tcq_file.hpp"
#include "tcq/io/tcq_file_layout.hpp"
#include "tcq/io/tcq_file_reader.hpp"
#include "tcq/io/tcq_file_writer.hpp"

#include "tcq/pipeline/comparison.hpp"
#include "tcq/pipeline/distribution.hpp"
#include "tcq/pipeline/layer.hpp"
#include "tcq/pipeline/method.hpp"
#include "tcq/pipeline/model_adapter.hpp"
#include "tcq/pipeline/pipeline.hpp"
#include "tcq/pipeline/result_file.hpp"
#include "tcq/pipeline/seed_list.hpp"
#include "tcq/pipeline/stats.hpp"
