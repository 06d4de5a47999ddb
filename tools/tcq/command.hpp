#pragma once
/// @file command.hpp
/// @brief The description of one `tcq` subcommand: name, usage, options, entry point.

#include <functional>
#include <string>
#include <vector>

#include "args.hpp"

namespace tcq::cli {

/// One subcommand of the tool.
struct command {
    std::string name;                   ///< e.g. "gptq"
    std::string summary;                ///< one line for `tcq --help`
    std::string usage;                  ///< full usage text (synopsis + options)
    std::vector<option_spec> specs;     ///< accepted options
    std::size_t max_positionals = 0;    ///< positional arguments accepted
    std::function<int(const arguments&)> run;  ///< returns the exit status
};

}  // namespace tcq::cli
