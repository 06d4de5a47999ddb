#pragma once
/// @file l2c.hpp
/// @brief The llama2.c reference engine (namespace l2c): everything.

#include "backward.hpp"    // IWYU pragma: export
#include "checkpoint.hpp"  // IWYU pragma: export
#include "data.hpp"        // IWYU pragma: export
#include "decode.hpp"      // IWYU pragma: export
#include "eval.hpp"        // IWYU pragma: export
#include "forward.hpp"     // IWYU pragma: export
#include "model.hpp"       // IWYU pragma: export
