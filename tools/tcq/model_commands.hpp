#pragma once
/// @file model_commands.hpp
/// @brief quantize, compare, eval, generate, convert (model_commands.cpp).

#include <vector>

#include "command.hpp"

namespace tcq::cli {

/// The model-level subcommands, in the order `tcq --help` lists them.
std::vector<command> model_commands();

}  // namespace tcq::cli
