#pragma once
/// @file tcq.hpp
/// @brief Umbrella header: includes the whole public API.

#include "tcq/version.hpp"
#include "tcq/core/config.hpp"
#include "tcq/core/error.hpp"
#include "tcq/core/matrix_view.hpp"
#include "tcq/core/eigen.hpp"
#include "tcq/core/half.hpp"
#include "tcq/core/parallel.hpp"
#include "tcq/core/simd.hpp"
#include "tcq/quant/grid.hpp"
#include "tcq/quant/element.hpp"
#include "tcq/quant/fit.hpp"
#include "tcq/quant/fake_quant.hpp"
#include "tcq/quant/quantized.hpp"
#include "tcq/select/mask.hpp"
#include "tcq/pack/cost.hpp"
