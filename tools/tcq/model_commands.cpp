/// @file model_commands.cpp
/// @brief The model-level subcommands (they pull in the engine, the pipeline
/// and MPI), compiled apart from main.cpp so the two build in parallel.

#include "cmd_compare.hpp"
#include "cmd_convert.hpp"
#include "cmd_eval.hpp"
#include "cmd_generate.hpp"
#include "cmd_quantize.hpp"
#include "model_commands.hpp"

namespace tcq::cli {

std::vector<command> model_commands() {
    return {quantize_command(), compare_command(), eval_command(), generate_command(), convert_command()};
}

}  // namespace tcq::cli
