#pragma once
/// @file ordered.hpp
/// @brief The llama engine's in-order parallel loop, under the l2c names.

#include "../llama/ordered.hpp"

namespace l2c {
using llama::ordered_for;
using llama::ordered_slots;
}  // namespace l2c
